//! JSON decoding that says where a document went wrong, and the error bodies of the three APIs.

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Decodes `body`, or returns `(json path, detail)` of the first problem (`value[3].id`).
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, (String, String)> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { "$".to_string() } else { path };
        (path, error.into_inner().to_string())
    })
}

/// Graph's `{"error":{"code":…,"message":…}}`; `None` when the body is not that shape.
pub fn graph_error(body: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let outer: Outer = serde_json::from_slice(body).ok()?;
    Some((outer.error.code, outer.error.message))
}

/// The useful text of an Exchange admin API error: the outer message is always
/// "Invalid Operation", so prefer `details[].message`, then
/// `innererror.internalexception.message`. `None` when the body is not that shape.
pub fn exchange_error(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        details: Vec<Detail>,
        #[serde(default)]
        innererror: Option<InnerError>,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        message: Option<String>,
    }
    #[derive(Deserialize)]
    struct InnerError {
        #[serde(default)]
        internalexception: Option<Detail>,
    }
    let outer: Outer = serde_json::from_slice(body).ok()?;
    let details: Vec<String> = outer
        .error
        .details
        .into_iter()
        .filter_map(|d| d.message)
        .filter(|m| !m.trim().is_empty())
        .map(|m| strip_exception_type(&m).to_string())
        .collect();
    if !details.is_empty() {
        return Some(details.join("; "));
    }
    let internal = outer
        .error
        .innererror
        .and_then(|i| i.internalexception)
        .and_then(|e| e.message)
        .filter(|m| !m.trim().is_empty());
    internal.or(outer.error.message)
}

/// `|Microsoft.Exchange…Exception|Parameter set cannot be resolved` → the text after the type.
fn strip_exception_type(message: &str) -> &str {
    message
        .strip_prefix('|')
        .and_then(|rest| rest.split_once('|'))
        .map(|(_, text)| text)
        .unwrap_or(message)
}

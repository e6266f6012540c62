//! Lenient decoding of `Get-Mailbox` results from the Exchange Online admin API.
//!
//! Each mailbox object has ~300 properties plus OData annotations; only the ones writeback uses
//! are read, everything else is ignored. A property of the wrong type fails that one mailbox
//! (reported with its id), never the page.

use crate::error::MailboxError;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use writeback_core::Mailbox;

/// The page envelope: `value`, `@odata.nextLink` and `@adminapi.warnings`.
#[derive(Debug, Deserialize)]
pub struct MailboxPageEnvelope {
    /// Each mailbox with only the properties [`parse_mailbox`] reads (see [`is_read_property`]).
    #[serde(default, deserialize_with = "mailbox_objects")]
    pub value: Vec<Value>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    #[serde(
        rename = "@adminapi.warnings",
        default,
        deserialize_with = "null_as_empty"
    )]
    pub warnings: Vec<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The properties [`parse_mailbox`] reads. A page is 1,000 mailboxes of ~300 properties each
/// (5.8 MB); decoding every property into a JSON value tree cost more than planning the page,
/// so the others are skipped as they are read.
fn is_read_property(key: &str) -> bool {
    const READ: [&str; 11] = [
        "ExternalDirectoryObjectId",
        "Guid",
        "ExchangeGuid",
        "Identity",
        "PrimarySmtpAddress",
        "WindowsEmailAddress",
        "IsExchangeCloudManaged",
        "EmailAddresses",
        "HiddenFromAddressListsEnabled",
        "RecipientTypeDetails",
        "WhenChangedUTC",
    ];
    READ.contains(&key)
        || key
            .strip_prefix("CustomAttribute")
            .or_else(|| key.strip_prefix("ExtensionCustomAttribute"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn mailbox_objects<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    struct Objects;
    impl<'de> Visitor<'de> for Objects {
        type Value = Vec<Value>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of mailbox objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
            let mut objects = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(MailboxObject(object)) = seq.next_element()? {
                objects.push(object);
            }
            Ok(objects)
        }
    }
    d.deserialize_seq(Objects)
}

/// One element of `value`: an object keeps its read properties; anything else is kept whole,
/// for [`parse_mailbox`] to report as that one mailbox's error.
struct MailboxObject(Value);

impl<'de> Deserialize<'de> for MailboxObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Element;
        impl<'de> Visitor<'de> for Element {
            type Value = MailboxObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mailbox object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MailboxObject, A::Error> {
                let mut object = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if is_read_property(&key) {
                        object.insert(key, map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(MailboxObject(Value::Object(object)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MailboxObject, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    items.push(item);
                }
                Ok(MailboxObject(Value::Array(items)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<MailboxObject, E> {
                Ok(MailboxObject(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<MailboxObject, E> {
                Ok(MailboxObject(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<MailboxObject, E> {
                Ok(MailboxObject(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<MailboxObject, E> {
                Ok(MailboxObject(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<MailboxObject, E> {
                Ok(MailboxObject(Value::String(v.to_string())))
            }
            fn visit_unit<E>(self) -> Result<MailboxObject, E> {
                Ok(MailboxObject(Value::Null))
            }
        }
        d.deserialize_any(Element)
    }
}

/// A point in time up to which all mailbox changes have been read (`WhenChangedUTC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark(pub OffsetDateTime);

impl Watermark {
    /// Reads `WhenChangedUTC` as Exchange sends it: RFC 3339 with seven fractional digits
    /// (`2024-04-10T08:56:22.0000000Z`), the same without a zone (it is UTC by name), or the
    /// legacy `/Date(1712739382000)/`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(millis) = text
            .strip_prefix("/Date(")
            .and_then(|rest| rest.strip_suffix(")/"))
        {
            let millis: i64 = millis.parse().ok()?;
            let nanos = i128::from(millis).checked_mul(1_000_000)?;
            return OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .ok()
                .map(Self);
        }
        if let Ok(when) = OffsetDateTime::parse(text, &Rfc3339) {
            return Some(Self(when.to_offset(time::UtcOffset::UTC)));
        }
        OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339)
            .ok()
            .map(Self)
    }

    /// The value for an OPATH filter: whole seconds, rounded down (a little more overlap, never
    /// less), `2024-04-10T08:56:22Z`.
    pub fn to_filter_literal(self) -> String {
        let when = self.0.replace_nanosecond(0).unwrap_or(self.0);
        when.format(&Rfc3339).unwrap_or_else(|_| when.to_string())
    }

    /// This watermark moved back by `overlap` (saturating at the earliest representable time).
    pub fn minus(self, overlap: std::time::Duration) -> Self {
        let overlap = time::Duration::try_from(overlap).unwrap_or(time::Duration::MAX);
        Self(
            self.0
                .checked_sub(overlap)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Watermark {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Watermark {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a timestamp")))
    }
}

/// One decoded mailbox plus its parsed change time (for the watermark).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedMailbox {
    pub mailbox: Mailbox,
    pub when_changed: Option<Watermark>,
}

/// Decodes one element of `value[]` into the normalised record.
pub fn parse_mailbox(object: &Value) -> Result<ParsedMailbox, MailboxError> {
    let Some(map) = object.as_object() else {
        return Err(MailboxError {
            id: None,
            field: "$".into(),
            detail: format!("expected an object, found {}", kind(object)),
        });
    };
    let fallback_id = ["Guid", "ExchangeGuid", "Identity", "PrimarySmtpAddress"]
        .iter()
        .find_map(|key| map.get(*key).and_then(Value::as_str))
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    let fail = |id: Option<String>, field: &str, detail: String| MailboxError {
        id,
        field: field.to_string(),
        detail,
    };

    let cloud_id = match opt_string(map, "ExternalDirectoryObjectId") {
        Ok(Some(id)) if !id.trim().is_empty() => id.trim().to_string(),
        Ok(_) => {
            return Err(fail(
                fallback_id,
                "ExternalDirectoryObjectId",
                "missing or empty: the mailbox cannot be tied to a user".into(),
            ))
        }
        Err(detail) => return Err(fail(fallback_id, "ExternalDirectoryObjectId", detail)),
    };
    let id = Some(cloud_id.clone());

    if let Ok(Some(false)) = opt_bool(map, "IsExchangeCloudManaged") {
        return Err(fail(
            id,
            "IsExchangeCloudManaged",
            "false: the mailbox is mastered on-premises and must not be written back".into(),
        ));
    }

    let primary_smtp = ["WindowsEmailAddress", "PrimarySmtpAddress"]
        .iter()
        .map(|key| opt_string(map, key).map_err(|d| fail(id.clone(), key, d)))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .find(|address| !address.trim().is_empty());

    let proxy_addresses = string_list(map, "EmailAddresses")
        .map_err(|d| fail(id.clone(), "EmailAddresses", d))?
        .unwrap_or_default();

    let mut custom_attributes = BTreeMap::new();
    for n in 1..=15 {
        let key = format!("CustomAttribute{n}");
        if let Some(value) = opt_string(map, &key).map_err(|d| fail(id.clone(), &key, d))? {
            if !value.is_empty() {
                custom_attributes.insert(n.to_string(), value);
            }
        }
    }

    let mut extension_custom_attributes = BTreeMap::new();
    for n in 1..=5 {
        let key = format!("ExtensionCustomAttribute{n}");
        let values = string_list(map, &key).map_err(|d| fail(id.clone(), &key, d))?;
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            extension_custom_attributes.insert(n.to_string(), values);
        }
    }

    let hidden_from_address_lists = opt_bool(map, "HiddenFromAddressListsEnabled")
        .map_err(|d| fail(id.clone(), "HiddenFromAddressListsEnabled", d))?;
    let recipient_type_details = opt_string(map, "RecipientTypeDetails")
        .map_err(|d| fail(id.clone(), "RecipientTypeDetails", d))?
        .filter(|name| !name.is_empty());

    let when_changed_utc =
        opt_string(map, "WhenChangedUTC").map_err(|d| fail(id.clone(), "WhenChangedUTC", d))?;
    let when_changed = match &when_changed_utc {
        Some(text) => Some(Watermark::parse(text).ok_or_else(|| {
            fail(
                id.clone(),
                "WhenChangedUTC",
                format!("{text:?} is not a timestamp"),
            )
        })?),
        None => None,
    };

    Ok(ParsedMailbox {
        mailbox: Mailbox {
            cloud_id,
            primary_smtp,
            proxy_addresses,
            custom_attributes,
            extension_custom_attributes,
            hidden_from_address_lists,
            recipient_type_details,
            anchors: Default::default(),
            when_changed_utc,
        },
        when_changed,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Absent and `null` are `None`.
fn opt_string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("expected a string, found {}", kind(other))),
    }
}

/// A JSON boolean; `"True"`/`"False"` are accepted too (Exchange's string rendering).
fn opt_bool(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(format!("expected a boolean, found {}", kind(other))),
    }
}

/// An array of strings; `null` is `None`, a lone string is a one-element list.
fn string_list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(Some(Vec::new())),
        Some(Value::String(text)) => Ok(Some(vec![text.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(format!(
                    "[{index}]: expected a string, found {}",
                    kind(other)
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(format!(
            "expected an array of strings, found {}",
            kind(other)
        )),
    }
}

#[cfg(test)]
#[path = "exchange_parse_tests.rs"]
mod tests;

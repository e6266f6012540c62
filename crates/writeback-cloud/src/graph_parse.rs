//! Decoding of `users/delta` pages.

use crate::graph::DeltaCursor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A property that may be absent (unchanged, or never set), explicitly `null` (changed to
/// nothing, with `Prefer: return=minimal`), or valued. Absent must not clear what is known;
/// `null` must.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Field<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(value) => Some(value),
            _ => None,
        }
    }

    /// Applies this change to a stored value: absent keeps it, null clears it.
    pub fn apply_to(self, stored: &mut Option<T>) {
        match self {
            Self::Absent => {}
            Self::Null => *stored = None,
            Self::Value(value) => *stored = Some(value),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only called when the key is present; `#[serde(default)]` covers absence.
        Ok(match Option::<T>::deserialize(d)? {
            Some(value) => Self::Value(value),
            None => Self::Null,
        })
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

/// The selected properties of one user in a delta page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    pub id: String,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub on_premises_immutable_id: Field<String>,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub on_premises_security_identifier: Field<String>,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub on_premises_distinguished_name: Field<String>,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub on_premises_sam_account_name: Field<String>,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub on_premises_domain_name: Field<String>,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub on_premises_sync_enabled: Field<bool>,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub mail: Field<String>,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub proxy_addresses: Field<Vec<String>>,
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub user_principal_name: Field<String>,
}

/// Why a user left the delta feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovalReason {
    /// Soft-deleted; can be restored within 30 days.
    Changed,
    /// Permanently deleted.
    Deleted,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedUser {
    pub id: String,
    pub reason: RemovalReason,
}

/// An entry of `value[]` that could not be read (e.g. no `id`); reported, not fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaEntryError {
    /// `value[3]` or `value[3].mail`.
    pub path: String,
    pub detail: String,
}

/// One page of a delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaPage {
    pub users: Vec<GraphUser>,
    pub removed: Vec<RemovedUser>,
    pub entry_errors: Vec<DeltaEntryError>,
    /// What to persist and call next: `Next` (more pages) or `Delta` (round complete).
    pub cursor: DeltaCursor,
    /// The stored cursor was no longer valid and this page starts a new full round.
    pub resynced: bool,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
}

#[derive(Deserialize)]
struct Removed {
    id: String,
    #[serde(rename = "@removed")]
    removed: RemovedInfo,
}

#[derive(Deserialize)]
struct RemovedInfo {
    #[serde(default)]
    reason: Option<String>,
}

/// Decodes a page; `Err((path, detail))` when the envelope itself is unusable.
pub fn parse_delta_page(body: &[u8]) -> Result<DeltaPage, (String, String)> {
    let envelope: Envelope = crate::json::from_slice(body)?;
    let cursor = match (envelope.next_link, envelope.delta_link) {
        // Both should not happen; more pages win, so nothing is skipped.
        (Some(next), _) => DeltaCursor::Next(next),
        (None, Some(delta)) => DeltaCursor::Delta(delta),
        (None, None) => {
            return Err((
                "@odata.nextLink".into(),
                "neither @odata.nextLink nor @odata.deltaLink present".into(),
            ))
        }
    };
    let mut page = DeltaPage {
        users: Vec::new(),
        removed: Vec::new(),
        entry_errors: Vec::new(),
        cursor,
        resynced: false,
    };
    for (index, entry) in envelope.value.into_iter().enumerate() {
        let is_removal = entry.get("@removed").is_some();
        let decoded = if is_removal {
            decode::<Removed>(entry).map(|removed| {
                let reason = match removed.removed.reason.as_deref() {
                    Some(r) if r.eq_ignore_ascii_case("changed") => RemovalReason::Changed,
                    Some(r) if r.eq_ignore_ascii_case("deleted") => RemovalReason::Deleted,
                    other => RemovalReason::Other(other.unwrap_or_default().to_string()),
                };
                page.removed.push(RemovedUser {
                    id: removed.id,
                    reason,
                });
            })
        } else {
            decode::<GraphUser>(entry).and_then(|user| {
                if user.id.is_empty() {
                    return Err(("id".into(), "empty".into()));
                }
                page.users.push(user);
                Ok(())
            })
        };
        if let Err((path, detail)) = decoded {
            let path = if path == "$" {
                format!("value[{index}]")
            } else {
                format!("value[{index}].{path}")
            };
            tracing::warn!(path = %path, detail = %detail, "skipping an unreadable users/delta entry");
            page.entry_errors.push(DeltaEntryError { path, detail });
        }
    }
    Ok(page)
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { "$".to_string() } else { path };
        (path, error.into_inner().to_string())
    })
}

#[cfg(test)]
#[path = "graph_parse_tests.rs"]
mod tests;

//! One change within an LDAP modify request.
//!
//! The planner only ever emits value-specific `Delete` and `Add`: a `Delete` naming the
//! value read fails atomically if someone changed the value since (AD and Samba implement no
//! assertion control, so this is the only optimistic-concurrency check available). `Replace`
//! exists for callers that deliberately want a blind overwrite; the planner never uses it.

use crate::attribute::ManagedAttribute;
use serde::{Deserialize, Serialize};

/// The LDAP modify operation (RFC 4511 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModOp {
    Add,
    Delete,
    Replace,
}

impl ModOp {
    /// The lower-case name, as in the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            ModOp::Add => "add",
            ModOp::Delete => "delete",
            ModOp::Replace => "replace",
        }
    }
}

/// One operation on one attribute. JSON form:
/// `{"attribute": "proxyAddresses", "op": "delete", "values": ["smtp:old@example.com"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Modification {
    pub attribute: ManagedAttribute,
    pub op: ModOp,
    /// For `Delete`, empty means "the whole attribute"; for `Replace`, empty means "clear".
    pub values: Vec<String>,
}

impl Modification {
    pub fn add(attribute: ManagedAttribute, values: Vec<String>) -> Self {
        Modification {
            attribute,
            op: ModOp::Add,
            values,
        }
    }

    pub fn delete(attribute: ManagedAttribute, values: Vec<String>) -> Self {
        Modification {
            attribute,
            op: ModOp::Delete,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_the_documented_shape() {
        let m = Modification::delete(
            ManagedAttribute::ProxyAddresses,
            vec!["smtp:old@example.com".into()],
        );
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"attribute": "proxyAddresses", "op": "delete", "values": ["smtp:old@example.com"]})
        );
        let back: Modification = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
        let replace: ModOp = serde_json::from_str("\"replace\"").unwrap();
        assert_eq!(replace, ModOp::Replace);
    }
}

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

/// The attributes a list of modifications changes, each once, in first-seen order: what a write
/// touches, so what its journal entry keeps the values before of and its audit rows list.
pub fn touched_attributes(mods: &[Modification]) -> Vec<ManagedAttribute> {
    let mut out: Vec<ManagedAttribute> = Vec::new();
    for m in mods {
        if !out.contains(&m.attribute) {
            out.push(m.attribute);
        }
    }
    out
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

    #[test]
    fn touched_attributes_are_unique_in_first_seen_order() {
        let mods = [
            Modification::delete(ManagedAttribute::Mail, vec!["a".into()]),
            Modification::add(ManagedAttribute::ProxyAddresses, vec!["b".into()]),
            Modification::add(ManagedAttribute::Mail, vec!["c".into()]),
        ];
        assert_eq!(
            touched_attributes(&mods),
            [ManagedAttribute::Mail, ManagedAttribute::ProxyAddresses]
        );
        assert!(touched_attributes(&[]).is_empty());
    }
}

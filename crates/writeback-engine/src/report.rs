//! What a cycle or a plan reports: per mailbox and in total. The JSON shapes are what
//! `writeback plan --json` and `sync --json` print, so field names are public.

use serde::Serialize;
use writeback_core::{ModOp, Modification};

/// What became of one mailbox in a cycle.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ObjectReport {
    pub cloud_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// objectGUID (text form) and uSNChanged of the object as read: a saved plan is applied
    /// only to objects that have not changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usn_changed: Option<u64>,
    #[serde(default)]
    pub changes: Vec<Modification>,
    /// Why nothing is (or was) written for this mailbox, if it is not simply in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `planned`, `in_sync`, `skipped`, `invalid`, `quarantined`, `applied`, `failed`, ...
    pub status: String,
    /// For skips: the reason's stable code (`no_match`, `ambiguous`, `protected`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Default for ObjectReport {
    fn default() -> Self {
        ObjectReport {
            cloud_id: String::new(),
            dn: None,
            object_guid: None,
            usn_changed: None,
            changes: Vec::new(),
            error: None,
            status: "in_sync".into(),
            reason: None,
        }
    }
}

/// Totals of a cycle (or a plan).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CycleSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<i64>,
    /// `full` or `incremental`.
    pub pass: &'static str,
    pub mailboxes: u64,
    pub unreadable: u64,
    pub in_sync: u64,
    pub planned: u64,
    pub applied: u64,
    pub conflicts: u64,
    pub failed: u64,
    pub skipped: u64,
    pub invalid: u64,
    pub quarantined: u64,
    pub values_cleared: u64,
    /// Planned changes in a full pass for mailboxes the cloud did not change: on-prem edits
    /// to managed attributes, repaired.
    pub drift: u64,
    pub retried: u64,
    /// Of `planned`: writes sent while the pass was still planning (a full pass whose scope
    /// cannot cross a brake).
    pub streamed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<HeldSummary>,
    pub watermark_advanced: bool,
    pub complete: bool,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeldSummary {
    pub plan_id: i64,
    pub reason: String,
}

/// Values a plan removes without putting another in their place, per attribute:
/// what the "values cleared" brake counts.
pub fn values_cleared(mods: &[Modification]) -> u64 {
    let mut cleared = 0u64;
    for delete in mods.iter().filter(|m| m.op == ModOp::Delete) {
        let added = mods
            .iter()
            .filter(|m| m.op == ModOp::Add && m.attribute == delete.attribute)
            .map(|m| m.values.len())
            .sum::<usize>();
        cleared += delete.values.len().saturating_sub(added) as u64;
    }
    cleared
}

#[cfg(test)]
mod tests {
    use super::*;
    use writeback_core::ManagedAttribute;

    #[test]
    fn a_changed_value_is_not_a_cleared_one() {
        let ext1 = ManagedAttribute::custom_attribute(1).unwrap();
        let proxies = ManagedAttribute::ProxyAddresses;
        let mods = vec![
            Modification::delete(ext1, vec!["old".into()]),
            Modification::add(ext1, vec!["new".into()]),
            Modification::delete(proxies, vec!["smtp:a@x.y".into(), "smtp:b@x.y".into()]),
            Modification::add(proxies, vec!["smtp:c@x.y".into()]),
            Modification::delete(ManagedAttribute::custom_attribute(2).unwrap(), vec!["gone".into()]),
        ];
        assert_eq!(values_cleared(&mods), 2);
    }
}

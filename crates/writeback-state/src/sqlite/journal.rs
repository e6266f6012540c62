//! The write journal: intents recorded before a write is sent, outcomes after. A finished
//! entry is also the write's audit record and the source of the last written values (see
//! `audit.rs` and `joins.rs`), so recording an outcome is one update of one row.

use super::joins::guid_from_blob;
use crate::error::{Result, StateError};
use crate::model::{CycleId, JournalEntry, JournalId, Outcome, WriteIntent};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use writeback_core::{touched_attributes, AdValues, ModOp, Modification};

pub(super) const COLUMNS: &str =
    "id, cycle_id, cloud_id, object_guid, dn, mods, before, recorded_at, \
                       outcome, outcome_code, outcome_message, finished_at";

/// An intent with its JSON columns encoded, done before the lock is taken.
pub(super) struct EncodedIntent<'a> {
    intent: WriteIntent<'a>,
    mods: String,
    before: String,
}

impl<'a> EncodedIntent<'a> {
    pub(super) fn new(intent: &WriteIntent<'a>) -> Result<Self> {
        let encode = |what, e| StateError::Encode { what, cause: e };
        // Only what the write touches: all the audit and crash recovery ever read of it.
        let mut before = AdValues::new();
        for attribute in touched_attributes(intent.mods) {
            before.set(attribute, intent.before.get(attribute).to_vec());
        }
        Ok(EncodedIntent {
            intent: *intent,
            mods: serde_json::to_string(intent.mods).map_err(|e| encode("modifications", e))?,
            before: serde_json::to_string(&before).map_err(|e| encode("values before", e))?,
        })
    }
}

pub(super) fn insert_intents(
    tx: &Transaction<'_>,
    intents: &[EncodedIntent<'_>],
    now: i64,
) -> Result<Vec<JournalId>> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO journal (cycle_id, cloud_id, object_guid, dn, mods, before, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut ids = Vec::with_capacity(intents.len());
    for encoded in intents {
        let i = &encoded.intent;
        stmt.execute(params![
            i.cycle.0,
            i.cloud_id,
            &i.object_guid[..],
            i.dn,
            encoded.mods,
            encoded.before,
            now
        ])?;
        ids.push(JournalId(tx.last_insert_rowid()));
    }
    Ok(ids)
}

pub(super) fn record_outcomes(
    tx: &Transaction<'_>,
    outcomes: &[(JournalId, Outcome)],
    now: i64,
) -> Result<()> {
    // One statement both checks that the entry is still in flight and finishes it.
    let mut finish = tx.prepare_cached(
        "UPDATE journal SET outcome = ?2, outcome_code = ?3, outcome_message = ?4, finished_at = ?5
         WHERE id = ?1 AND outcome IS NULL",
    )?;
    for (id, outcome) in outcomes {
        let (kind, code, message) = (outcome.kind(), outcome.code(), outcome.message());
        if finish.execute(params![id.0, kind, code, message, now])? == 0 {
            return Err(not_in_flight(tx, *id));
        }
    }
    Ok(())
}

/// Why an outcome could not be recorded: no such entry, or it already has one.
fn not_in_flight(conn: &Connection, id: JournalId) -> StateError {
    match entry(conn, id) {
        Ok(Some(entry)) => StateError::InvalidTransition {
            what: "journal entry",
            id: id.to_string(),
            detail: format!(
                "outcome already recorded ({})",
                entry.outcome.as_ref().map_or("none", Outcome::kind)
            ),
        },
        Ok(None) => StateError::not_found("journal entry", id),
        Err(e) => e,
    }
}

pub(super) fn in_flight(conn: &Connection) -> Result<Vec<JournalEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM journal WHERE outcome IS NULL ORDER BY id"
    ))?;
    let rows = stmt.query_map([], RawEntry::from_row)?;
    rows.map(|row| row?.decode()).collect()
}

pub(super) fn entry(conn: &Connection, id: JournalId) -> Result<Option<JournalEntry>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM journal WHERE id = ?1"))?;
    let raw = stmt.query_row([id.0], RawEntry::from_row).optional()?;
    raw.map(RawEntry::decode).transpose()
}

/// The values the modifications produce. AD accepted them when the outcome is `Applied`, so
/// if the simulation disagrees (e.g. values read differently from how they compare) the
/// modifications are applied leniently rather than losing the audit row.
pub(super) fn intended_after(before: &AdValues, mods: &[Modification]) -> AdValues {
    if let Ok(after) = before.apply(mods) {
        return after;
    }
    let mut after = before.clone();
    for m in mods {
        let mut values = after.get(m.attribute).to_vec();
        match m.op {
            ModOp::Replace => values = m.values.clone(),
            ModOp::Delete if m.values.is_empty() => values.clear(),
            ModOp::Delete => values.retain(|v| {
                !m.values
                    .iter()
                    .any(|d| d.to_lowercase() == v.to_lowercase())
            }),
            ModOp::Add => {
                for v in &m.values {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
            }
        }
        after.set(m.attribute, values);
    }
    after
}

/// A journal row as stored, before its JSON and blob columns are decoded.
pub(super) struct RawEntry {
    id: i64,
    cycle: i64,
    cloud_id: String,
    object_guid: Vec<u8>,
    dn: String,
    mods: String,
    before: String,
    recorded_at: i64,
    outcome: Option<String>,
    outcome_code: Option<i64>,
    outcome_message: Option<String>,
    finished_at: Option<i64>,
}

impl RawEntry {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawEntry {
            id: row.get(0)?,
            cycle: row.get(1)?,
            cloud_id: row.get(2)?,
            object_guid: row.get(3)?,
            dn: row.get(4)?,
            mods: row.get(5)?,
            before: row.get(6)?,
            recorded_at: row.get(7)?,
            outcome: row.get(8)?,
            outcome_code: row.get(9)?,
            outcome_message: row.get(10)?,
            finished_at: row.get(11)?,
        })
    }

    pub(super) fn decode(self) -> Result<JournalEntry> {
        let outcome = match self.outcome {
            None => None,
            Some(kind) => Some(
                Outcome::from_parts(&kind, self.outcome_code, self.outcome_message)
                    .ok_or_else(|| StateError::corrupt("journal outcome", &kind))?,
            ),
        };
        Ok(JournalEntry {
            id: JournalId(self.id),
            cycle: CycleId(self.cycle),
            object_guid: guid_from_blob(&self.object_guid)?,
            mods: serde_json::from_str(&self.mods)
                .map_err(|e| StateError::corrupt("journalled modifications", e))?,
            before: serde_json::from_str(&self.before)
                .map_err(|e| StateError::corrupt("journalled values", e))?,
            cloud_id: self.cloud_id,
            dn: self.dn,
            recorded_at: self.recorded_at,
            outcome,
            finished_at: self.finished_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use writeback_core::ManagedAttribute;

    fn values(attr: ManagedAttribute, list: &[&str]) -> AdValues {
        let mut v = AdValues::new();
        v.set(attr, list.iter().map(|s| s.to_string()).collect());
        v
    }

    #[test]
    fn intended_after_follows_ldap_semantics_when_the_simulation_accepts() {
        let before = values(
            ManagedAttribute::ProxyAddresses,
            &["SMTP:a@x.test", "smtp:b@x.test"],
        );
        let mods = [
            Modification::delete(
                ManagedAttribute::ProxyAddresses,
                vec!["smtp:b@x.test".into()],
            ),
            Modification::add(
                ManagedAttribute::ProxyAddresses,
                vec!["smtp:c@x.test".into()],
            ),
        ];
        let after = intended_after(&before, &mods);
        assert_eq!(
            after.get(ManagedAttribute::ProxyAddresses),
            ["SMTP:a@x.test", "smtp:c@x.test"]
        );
    }

    #[test]
    fn intended_after_is_lenient_when_the_simulation_refuses() {
        // Deleting a value the simulation does not see (read differently) would be error 16.
        let before = values(ManagedAttribute::Mail, &["old@x.test"]);
        let mods = [
            Modification::delete(ManagedAttribute::Mail, vec!["other@x.test".into()]),
            Modification::add(ManagedAttribute::Mail, vec!["new@x.test".into()]),
            Modification {
                attribute: ManagedAttribute::ExtensionAttribute1,
                op: ModOp::Replace,
                values: vec!["r".into()],
            },
            Modification::delete(ManagedAttribute::ExtensionAttribute2, vec![]),
        ];
        assert!(before.apply(&mods).is_err());
        let after = intended_after(&before, &mods);
        assert_eq!(
            after.get(ManagedAttribute::Mail),
            ["old@x.test", "new@x.test"]
        );
        assert_eq!(after.get(ManagedAttribute::ExtensionAttribute1), ["r"]);
        assert!(!after.is_present(ManagedAttribute::ExtensionAttribute2));
    }
}

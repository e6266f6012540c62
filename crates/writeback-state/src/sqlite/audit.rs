//! The audit log, read from the journal: every finished entry is one write, and each attribute
//! its modifications touch is one audit row (its values before, and what the write set or
//! would have set). Deriving the rows when they are read keeps recording an outcome to one
//! update of one row; the audit is read by people, a page at a time.
//!
//! An audit row's id is `journal id × 100 + the attribute's position in the write` (a write
//! touches at most the few dozen managed attributes), so ids are unique, ordered like the
//! journal, and a cursor can stop between two attributes of one write.

use super::count;
use super::journal::{intended_after, RawEntry, COLUMNS};
use crate::error::{Result, StateError};
use crate::model::{AuditQuery, AuditRecord, PurgeReport};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, Transaction};
use writeback_core::touched_attributes;

/// Audit row ids per journal entry.
const IDS_PER_ENTRY: i64 = 100;

pub(super) fn query(conn: &Connection, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let mut sql = format!("SELECT {COLUMNS} FROM journal WHERE outcome IS NOT NULL");
    let mut args: Vec<Value> = Vec::new();
    let mut filter = |clause: &str, value: Value| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        args.push(value);
    };
    if let Some(since) = query.since {
        filter("finished_at >= ?", Value::Integer(since));
    }
    if let Some(until) = query.until {
        filter("finished_at < ?", Value::Integer(until));
    }
    if let Some(cloud_id) = &query.cloud_id {
        filter("cloud_id = ?", Value::Text(cloud_id.clone()));
    }
    if let Some(part) = &query.dn_contains {
        // instr, not LIKE: a DN may contain % and _, which LIKE would treat as wildcards.
        filter("instr(lower(dn), lower(?)) > 0", Value::Text(part.clone()));
    }
    if let Some(after_id) = query.after_id {
        filter(
            "id >= ?",
            Value::Integer(after_id.div_euclid(IDS_PER_ENTRY)),
        );
    }
    sql.push_str(" ORDER BY id");
    let limit = query
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    // Stepped lazily: the scan stops as soon as the page is full.
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(row) = rows.next()? {
        let entry = RawEntry::from_row(row)?.decode()?;
        let (Some(outcome), Some(at)) = (entry.outcome, entry.finished_at) else {
            return Err(StateError::corrupt(
                "journal entry",
                format!("{} has no outcome", entry.id),
            ));
        };
        let after = intended_after(&entry.before, &entry.mods);
        for (position, attribute) in touched_attributes(&entry.mods).into_iter().enumerate() {
            let id = i64::try_from(position)
                .ok()
                .filter(|p| *p < IDS_PER_ENTRY)
                .and_then(|p| entry.id.0.checked_mul(IDS_PER_ENTRY)?.checked_add(p))
                .ok_or_else(|| StateError::corrupt("journal entry id", entry.id))?;
            if query.after_id.is_some_and(|after| id <= after) {
                continue;
            }
            out.push(AuditRecord {
                id,
                at,
                cycle: entry.cycle,
                journal_id: Some(entry.id),
                cloud_id: entry.cloud_id.clone(),
                dn: entry.dn.clone(),
                attribute: attribute.ldap_name().to_owned(),
                before: entry.before.get(attribute).to_vec(),
                after: after.get(attribute).to_vec(),
                outcome: outcome.clone(),
            });
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// Journal entries finished before `cutoff`, and with them their audit rows.
pub(super) fn purge_before(tx: &Transaction<'_>, cutoff: i64) -> Result<PurgeReport> {
    let journal_entries = tx.execute(
        "DELETE FROM journal WHERE outcome IS NOT NULL AND finished_at < ?1",
        [cutoff],
    )?;
    Ok(PurgeReport {
        journal_entries: count(journal_entries),
        ..PurgeReport::default()
    })
}

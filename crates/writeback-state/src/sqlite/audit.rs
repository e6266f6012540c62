//! Reading and purging the audit log. Rows are written by the journal (`journal.rs`) when an
//! outcome is recorded.

use super::count;
use crate::error::{Result, StateError};
use crate::model::{AuditQuery, AuditRecord, CycleId, JournalId, Outcome, PurgeReport};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, Row, Transaction};

pub(super) fn query(conn: &Connection, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let mut sql = String::from(
        "SELECT id, at, cycle_id, journal_id, cloud_id, dn, attribute, before, after,
                outcome, outcome_code, outcome_message
         FROM audit WHERE 1 = 1",
    );
    let mut args: Vec<Value> = Vec::new();
    let mut filter = |clause: &str, value: Value| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        args.push(value);
    };
    if let Some(since) = query.since {
        filter("at >= ?", Value::Integer(since));
    }
    if let Some(until) = query.until {
        filter("at < ?", Value::Integer(until));
    }
    if let Some(cloud_id) = &query.cloud_id {
        filter("cloud_id = ?", Value::Text(cloud_id.clone()));
    }
    if let Some(part) = &query.dn_contains {
        // instr, not LIKE: a DN may contain % and _, which LIKE would treat as wildcards.
        filter("instr(lower(dn), lower(?)) > 0", Value::Text(part.clone()));
    }
    if let Some(after_id) = query.after_id {
        filter("id > ?", Value::Integer(after_id));
    }
    sql.push_str(" ORDER BY id");
    if let Some(limit) = query.limit {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(i64::from(limit)));
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), RawAudit::from_row)?;
    rows.map(|row| row?.decode()).collect()
}

pub(super) fn purge_before(tx: &Transaction<'_>, cutoff: i64) -> Result<PurgeReport> {
    let audit_rows = tx.execute("DELETE FROM audit WHERE at < ?1", [cutoff])?;
    let journal_entries = tx.execute(
        "DELETE FROM journal WHERE outcome IS NOT NULL AND finished_at < ?1",
        [cutoff],
    )?;
    Ok(PurgeReport {
        audit_rows: count(audit_rows),
        journal_entries: count(journal_entries),
        ..PurgeReport::default()
    })
}

struct RawAudit {
    id: i64,
    at: i64,
    cycle: i64,
    journal_id: Option<i64>,
    cloud_id: String,
    dn: String,
    attribute: String,
    before: String,
    after: String,
    outcome: String,
    outcome_code: Option<i64>,
    outcome_message: Option<String>,
}

impl RawAudit {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawAudit {
            id: row.get(0)?,
            at: row.get(1)?,
            cycle: row.get(2)?,
            journal_id: row.get(3)?,
            cloud_id: row.get(4)?,
            dn: row.get(5)?,
            attribute: row.get(6)?,
            before: row.get(7)?,
            after: row.get(8)?,
            outcome: row.get(9)?,
            outcome_code: row.get(10)?,
            outcome_message: row.get(11)?,
        })
    }

    fn decode(self) -> Result<AuditRecord> {
        let values = |text: &str| -> Result<Vec<String>> {
            serde_json::from_str(text).map_err(|e| StateError::corrupt("audit values", e))
        };
        Ok(AuditRecord {
            id: self.id,
            at: self.at,
            cycle: CycleId(self.cycle),
            journal_id: self.journal_id.map(JournalId),
            before: values(&self.before)?,
            after: values(&self.after)?,
            outcome: Outcome::from_parts(&self.outcome, self.outcome_code, self.outcome_message)
                .ok_or_else(|| StateError::corrupt("audit outcome", &self.outcome))?,
            cloud_id: self.cloud_id,
            dn: self.dn,
            attribute: self.attribute,
        })
    }
}

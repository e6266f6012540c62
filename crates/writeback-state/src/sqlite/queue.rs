//! The error queue: per-mailbox failures with exponential backoff, then quarantine.

use crate::error::{Result, StateError};
use crate::model::{FailureRecord, FailureState, RetryPolicy};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

const COLUMNS: &str =
    "cloud_id, attempts, first_failed_at, last_failed_at, last_error, next_attempt_at, quarantined";

pub(super) fn record_failure(
    tx: &Transaction<'_>,
    cloud_id: &str,
    error: &str,
    policy: &RetryPolicy,
    now: i64,
) -> Result<FailureState> {
    let previous = one(tx, cloud_id)?;
    let attempts = previous
        .as_ref()
        .map_or(0, |p| p.attempts)
        .saturating_add(1);
    let quarantined = attempts >= policy.quarantine_after;
    let next_attempt_at = (!quarantined).then(|| now.saturating_add(policy.delay_after(attempts)));
    let first_failed_at = previous.as_ref().map_or(now, |p| p.first_failed_at);
    tx.prepare_cached(
        "INSERT INTO failures (cloud_id, attempts, first_failed_at, last_failed_at, last_error, next_attempt_at, quarantined)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (cloud_id) DO UPDATE SET attempts = excluded.attempts, last_failed_at = excluded.last_failed_at,
             last_error = excluded.last_error, next_attempt_at = excluded.next_attempt_at,
             quarantined = excluded.quarantined",
    )?
    .execute(params![cloud_id, attempts, first_failed_at, now, error, next_attempt_at, quarantined])?;
    Ok(FailureState {
        attempts,
        next_attempt_at,
        quarantined,
    })
}

pub(super) fn due(conn: &Connection, now: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT cloud_id FROM failures WHERE quarantined = 0 AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, cloud_id",
    )?;
    let rows = stmt.query_map([now], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn one(conn: &Connection, cloud_id: &str) -> Result<Option<FailureRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM failures WHERE cloud_id = ?1"
    ))?;
    let raw = stmt
        .query_row([cloud_id], RawFailure::from_row)
        .optional()?;
    raw.map(RawFailure::decode).transpose()
}

pub(super) fn all(conn: &Connection) -> Result<Vec<FailureRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM failures ORDER BY cloud_id"))?;
    let rows = stmt.query_map([], RawFailure::from_row)?;
    rows.map(|row| row?.decode()).collect()
}

pub(super) fn release(tx: &Transaction<'_>, cloud_id: &str, now: i64) -> Result<()> {
    let released = tx
        .prepare_cached(
            "UPDATE failures SET attempts = 0, quarantined = 0, next_attempt_at = ?2
             WHERE cloud_id = ?1 AND quarantined = 1",
        )?
        .execute(params![cloud_id, now])?;
    if released == 0 {
        return Err(StateError::not_found("quarantined mailbox", cloud_id));
    }
    Ok(())
}

struct RawFailure {
    cloud_id: String,
    attempts: i64,
    first_failed_at: i64,
    last_failed_at: i64,
    last_error: String,
    next_attempt_at: Option<i64>,
    quarantined: bool,
}

impl RawFailure {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawFailure {
            cloud_id: row.get(0)?,
            attempts: row.get(1)?,
            first_failed_at: row.get(2)?,
            last_failed_at: row.get(3)?,
            last_error: row.get(4)?,
            next_attempt_at: row.get(5)?,
            quarantined: row.get(6)?,
        })
    }

    fn decode(self) -> Result<FailureRecord> {
        Ok(FailureRecord {
            attempts: u32::try_from(self.attempts)
                .map_err(|_| StateError::corrupt("attempt count", self.attempts))?,
            cloud_id: self.cloud_id,
            first_failed_at: self.first_failed_at,
            last_failed_at: self.last_failed_at,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            quarantined: self.quarantined,
        })
    }
}

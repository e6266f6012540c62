//! Graph's identity anchors per cloud user, written one `users/delta` page per transaction.
//!
//! The store keeps merged values only: whether a property was absent (keep) or `null` (clear)
//! in a delta page is resolved by the caller before a page is applied, so a row is always
//! the whole current state of one user.

use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use writeback_core::Anchors;

/// Keys are stored lower-case, so the case the cloud happens to send an id in never splits
/// one user into two rows.
pub(super) fn key(user_id: &str) -> String {
    user_id.to_ascii_lowercase()
}

/// Upserts first, then removals (a user changed and removed in one page ends up removed),
/// then the cursor watermark, all in the caller's transaction.
pub(super) fn apply_page(
    tx: &Transaction<'_>,
    upserts: &[(String, Anchors)],
    removals: &[String],
    cursor: Option<(&str, &str)>,
    now: i64,
) -> Result<()> {
    if !upserts.is_empty() {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO anchors (user_id, immutable_id, sid, dn) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id) DO UPDATE SET immutable_id = excluded.immutable_id,
                 sid = excluded.sid, dn = excluded.dn",
        )?;
        for (user_id, anchors) in upserts {
            upsert.execute(params![
                key(user_id),
                anchors.immutable_id,
                anchors.sid,
                anchors.dn
            ])?;
        }
    }
    if !removals.is_empty() {
        let mut remove = tx.prepare_cached("DELETE FROM anchors WHERE user_id = ?1")?;
        for user_id in removals {
            remove.execute([key(user_id)])?;
        }
    }
    if let Some((name, value)) = cursor {
        tx.prepare_cached(
            "INSERT INTO watermarks (name, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )?
        .execute(params![name, value, now])?;
    }
    Ok(())
}

pub(super) fn get(conn: &Connection, user_id: &str) -> Result<Option<Anchors>> {
    let mut stmt =
        conn.prepare_cached("SELECT immutable_id, sid, dn FROM anchors WHERE user_id = ?1")?;
    Ok(stmt
        .query_row([key(user_id)], |row| {
            Ok(Anchors {
                immutable_id: row.get(0)?,
                sid: row.get(1)?,
                dn: row.get(2)?,
            })
        })
        .optional()?)
}

/// The user holding one of `immutable_ids` (tried in the order given), else the one holding
/// `sid`. When several users claim the same anchor the smallest id wins, so the answer does
/// not depend on the order rows were written in.
pub(super) fn owner(
    conn: &Connection,
    immutable_ids: &[String],
    sid: Option<&str>,
) -> Result<Option<String>> {
    let mut by_immutable_id = conn.prepare_cached(
        "SELECT user_id FROM anchors WHERE immutable_id = ?1 ORDER BY user_id LIMIT 1",
    )?;
    for immutable_id in immutable_ids {
        let found = by_immutable_id
            .query_row([immutable_id], |row| row.get(0))
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let Some(sid) = sid else { return Ok(None) };
    let mut by_sid =
        conn.prepare_cached("SELECT user_id FROM anchors WHERE sid = ?1 ORDER BY user_id LIMIT 1")?;
    Ok(by_sid.query_row([sid], |row| row.get(0)).optional()?)
}

pub(super) fn clear(tx: &Transaction<'_>) -> Result<u64> {
    let removed = tx.prepare_cached("DELETE FROM anchors")?.execute([])?;
    Ok(u64::try_from(removed).unwrap_or(u64::MAX))
}

pub(super) fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM anchors")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

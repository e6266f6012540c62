//! Joins (cloud mailbox → AD object) and the values last written through them (read from the
//! journal's applied entries for the joined object).

use super::journal;
use crate::error::{Result, StateError};
use crate::model::{guid_to_string, Join, LastWritten, MatchedBy};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

const COLUMNS: &str = "cloud_id, object_guid, dn, matched_by, verified_at";

pub(super) fn by_cloud_id(conn: &Connection, cloud_id: &str) -> Result<Option<Join>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM joins WHERE cloud_id = ?1"))?;
    let raw = stmt.query_row([cloud_id], RawJoin::from_row).optional()?;
    raw.map(RawJoin::into_join).transpose()
}

pub(super) fn by_guid(conn: &Connection, object_guid: &[u8; 16]) -> Result<Option<Join>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM joins WHERE object_guid = ?1"
    ))?;
    let raw = stmt
        .query_row([&object_guid[..]], RawJoin::from_row)
        .optional()?;
    raw.map(RawJoin::into_join).transpose()
}

pub(super) fn upsert(tx: &Transaction<'_>, join: &Join) -> Result<()> {
    if let Some(holder) = by_guid(tx, &join.object_guid)? {
        if holder.cloud_id != join.cloud_id {
            return Err(StateError::GuidAlreadyJoined {
                guid: guid_to_string(&join.object_guid),
                cloud_id: join.cloud_id.clone(),
                other_cloud_id: holder.cloud_id,
            });
        }
    }
    // What was in sync with another object says nothing about the new one, so the synced
    // version goes when the object changes. (The last written values need no forgetting: they
    // are read through the current join's object.)
    tx.prepare_cached(
        "INSERT INTO joins (cloud_id, object_guid, dn, matched_by, verified_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (cloud_id) DO UPDATE SET object_guid = excluded.object_guid, dn = excluded.dn,
             matched_by = excluded.matched_by, verified_at = excluded.verified_at,
             synced_when_changed = CASE WHEN joins.object_guid = excluded.object_guid
                                        THEN joins.synced_when_changed END",
    )?
    .execute(params![join.cloud_id, &join.object_guid[..], join.dn, join.matched_by.as_str(), join.verified_at])?;
    Ok(())
}

pub(super) fn remove(tx: &Transaction<'_>, cloud_id: &str) -> Result<bool> {
    let removed = tx
        .prepare_cached("DELETE FROM joins WHERE cloud_id = ?1")?
        .execute([cloud_id])?
        > 0;
    Ok(removed)
}

pub(super) fn synced_version(conn: &Connection, cloud_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT synced_when_changed FROM joins WHERE cloud_id = ?1")?
        .query_row([cloud_id], |row| row.get(0))
        .optional()?
        .flatten())
}

/// The join and the synced version kept with it, in one lookup.
pub(super) fn with_synced(
    conn: &Connection,
    cloud_id: &str,
) -> Result<(Option<Join>, Option<String>)> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, synced_when_changed FROM joins WHERE cloud_id = ?1"
    ))?;
    let raw = stmt
        .query_row([cloud_id], |row| {
            Ok((RawJoin::from_row(row)?, row.get::<_, Option<String>>(5)?))
        })
        .optional()?;
    match raw {
        None => Ok((None, None)),
        Some((join, synced)) => Ok((Some(join.into_join()?), synced)),
    }
}

/// Only for mailboxes with a join: the version is kept with it (and forgotten with it).
pub(super) fn record_synced(tx: &Transaction<'_>, records: &[(&str, &str)]) -> Result<()> {
    let mut stmt =
        tx.prepare_cached("UPDATE joins SET synced_when_changed = ?2 WHERE cloud_id = ?1")?;
    for (cloud_id, when_changed) in records {
        stmt.execute([cloud_id, when_changed])?;
    }
    Ok(())
}

/// Per attribute, the values of the newest applied write to the mailbox's joined object (by
/// journal id: an older entry resolved late never hides a newer one). Nothing without a join.
pub(super) fn last_written(conn: &Connection, cloud_id: &str) -> Result<Vec<LastWritten>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM journal
         WHERE cloud_id = ?1 AND outcome = 'applied'
           AND object_guid = (SELECT object_guid FROM joins WHERE cloud_id = ?1)
         ORDER BY id DESC",
        journal::COLUMNS
    ))?;
    let mut rows = stmt.query([cloud_id])?;
    let mut out: Vec<LastWritten> = Vec::new();
    while let Some(row) = rows.next()? {
        let entry = journal::RawEntry::from_row(row)?.decode()?;
        let after = journal::intended_after(&entry.before, &entry.mods);
        for attribute in writeback_core::touched_attributes(&entry.mods) {
            if out.iter().any(|w| w.attribute == attribute) {
                continue;
            }
            out.push(LastWritten {
                attribute,
                values: after.get(attribute).to_vec(),
                written_at: entry.finished_at.unwrap_or(entry.recorded_at),
                journal_id: entry.id,
            });
        }
    }
    out.sort_by(|a, b| a.attribute.ldap_name().cmp(b.attribute.ldap_name()));
    Ok(out)
}

/// A row as stored, before its text and blob columns are checked.
struct RawJoin {
    cloud_id: String,
    object_guid: Vec<u8>,
    dn: String,
    matched_by: String,
    verified_at: i64,
}

impl RawJoin {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawJoin {
            cloud_id: row.get(0)?,
            object_guid: row.get(1)?,
            dn: row.get(2)?,
            matched_by: row.get(3)?,
            verified_at: row.get(4)?,
        })
    }

    fn into_join(self) -> Result<Join> {
        Ok(Join {
            object_guid: guid_from_blob(&self.object_guid)?,
            matched_by: MatchedBy::parse(&self.matched_by)
                .ok_or_else(|| StateError::corrupt("join match kind", &self.matched_by))?,
            cloud_id: self.cloud_id,
            dn: self.dn,
            verified_at: self.verified_at,
        })
    }
}

pub(super) fn guid_from_blob(blob: &[u8]) -> Result<[u8; 16]> {
    <[u8; 16]>::try_from(blob)
        .map_err(|_| StateError::corrupt("object GUID", format!("{} bytes", blob.len())))
}

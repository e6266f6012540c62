//! Joins (cloud mailbox → AD object) and the values last written through them.

use crate::error::{Result, StateError};
use crate::model::{guid_to_string, Join, JournalId, LastWritten, MatchedBy};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use writeback_core::ManagedAttribute;

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
    if let Some(previous) = by_cloud_id(tx, &join.cloud_id)? {
        if previous.object_guid != join.object_guid {
            forget_last_written(tx, &join.cloud_id)?;
        }
    }
    tx.prepare_cached(
        "INSERT INTO joins (cloud_id, object_guid, dn, matched_by, verified_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (cloud_id) DO UPDATE SET object_guid = excluded.object_guid, dn = excluded.dn,
             matched_by = excluded.matched_by, verified_at = excluded.verified_at",
    )?
    .execute(params![join.cloud_id, &join.object_guid[..], join.dn, join.matched_by.as_str(), join.verified_at])?;
    Ok(())
}

pub(super) fn remove(tx: &Transaction<'_>, cloud_id: &str) -> Result<bool> {
    let removed = tx
        .prepare_cached("DELETE FROM joins WHERE cloud_id = ?1")?
        .execute([cloud_id])?
        > 0;
    forget_last_written(tx, cloud_id)?;
    Ok(removed)
}

fn forget_last_written(tx: &Transaction<'_>, cloud_id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM last_written WHERE cloud_id = ?1")?
        .execute([cloud_id])?;
    // What was in sync with another object says nothing about the new one.
    tx.prepare_cached("DELETE FROM synced WHERE cloud_id = ?1")?
        .execute([cloud_id])?;
    Ok(())
}

pub(super) fn synced_version(conn: &Connection, cloud_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT when_changed FROM synced WHERE cloud_id = ?1")?
        .query_row([cloud_id], |row| row.get(0))
        .optional()?)
}

pub(super) fn record_synced(tx: &Transaction<'_>, records: &[(&str, &str)]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO synced (cloud_id, when_changed) VALUES (?1, ?2)
         ON CONFLICT (cloud_id) DO UPDATE SET when_changed = excluded.when_changed",
    )?;
    for (cloud_id, when_changed) in records {
        stmt.execute([cloud_id, when_changed])?;
    }
    Ok(())
}

pub(super) fn last_written(conn: &Connection, cloud_id: &str) -> Result<Vec<LastWritten>> {
    let mut stmt = conn.prepare_cached(
        "SELECT attribute, value_list, written_at, journal_id FROM last_written WHERE cloud_id = ?1 ORDER BY attribute",
    )?;
    let rows = stmt.query_map([cloud_id], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get(2)?,
            row.get(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (attribute, values, written_at, journal_id) = row?;
        let attribute = ManagedAttribute::from_ldap_name(&attribute)
            .ok_or_else(|| StateError::corrupt("last written attribute", &attribute))?;
        let values = serde_json::from_str(&values)
            .map_err(|e| StateError::corrupt("last written values", e))?;
        out.push(LastWritten {
            attribute,
            values,
            written_at,
            journal_id: JournalId(journal_id),
        });
    }
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

//! Staged writes: a cycle's planned writes on disk, appended in plan order while planning and
//! streamed back in pages once the safety brakes have passed the whole plan.

use super::count;
use super::joins::guid_from_blob;
use crate::codec::{self, CompactMailbox, CompactValues, StagedPayload};
use crate::error::{Result, StateError};
use crate::model::{CycleId, StagedWrite};
use rusqlite::{params, Connection, Row, Transaction};
use std::borrow::Cow;

/// A staged write with its payload encoded, done before the lock is taken.
pub(super) struct EncodedWrite<'a> {
    write: &'a StagedWrite,
    usn_changed: i64,
    payload: Vec<u8>,
}

impl<'a> EncodedWrite<'a> {
    pub(super) fn new(write: &'a StagedWrite) -> Result<Self> {
        let payload = StagedPayload {
            mods: Cow::Borrowed(&write.mods),
            before: CompactValues::new(&write.before),
            mailbox: CompactMailbox::new(&write.mailbox),
        };
        Ok(EncodedWrite {
            write,
            usn_changed: i64::try_from(write.usn_changed).map_err(|_| StateError::TooLarge {
                what: "uSNChanged",
                value: write.usn_changed,
            })?,
            payload: codec::encode("staged write", &payload)?,
        })
    }
}

pub(super) fn append(
    tx: &Transaction<'_>,
    cycle: CycleId,
    writes: &[EncodedWrite<'_>],
) -> Result<()> {
    // One lookup answers both "does the cycle exist" and "where does its stage end"; the
    // primary key index makes max(seq) a single seek however large the stage is.
    let (exists, last_seq): (Option<i64>, Option<i64>) = tx
        .prepare_cached(
            "SELECT (SELECT 1 FROM cycles WHERE id = ?1),
                    (SELECT max(seq) FROM staged_writes WHERE cycle_id = ?1)",
        )?
        .query_row([cycle.0], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if exists.is_none() {
        return Err(StateError::not_found("cycle", cycle));
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO staged_writes
             (cycle_id, seq, cloud_id, object_guid, dn, usn_changed, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut seq = last_seq.unwrap_or(0);
    for encoded in writes {
        seq = seq
            .checked_add(1)
            .ok_or_else(|| StateError::corrupt("staged write seq", "no seq left after i64::MAX"))?;
        let w = encoded.write;
        insert.execute(params![
            cycle.0,
            seq,
            w.cloud_id,
            &w.object_guid[..],
            w.dn,
            encoded.usn_changed,
            encoded.payload,
        ])?;
    }
    Ok(())
}

pub(super) fn page(
    conn: &Connection,
    cycle: CycleId,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<(u64, StagedWrite)>> {
    // Stored seqs are positive i64s: a cursor beyond i64::MAX is past all of them.
    let after_seq = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, cloud_id, object_guid, dn, usn_changed, payload
         FROM staged_writes WHERE cycle_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![cycle.0, after_seq, i64::from(limit)],
        RawStaged::from_row,
    )?;
    rows.map(|row| row?.decode()).collect()
}

pub(super) fn count_of(conn: &Connection, cycle: CycleId) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM staged_writes WHERE cycle_id = ?1")?
        .query_row([cycle.0], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn clear(tx: &Transaction<'_>, cycle: CycleId) -> Result<u64> {
    let removed = tx
        .prepare_cached("DELETE FROM staged_writes WHERE cycle_id = ?1")?
        .execute([cycle.0])?;
    Ok(count(removed))
}

pub(super) fn clear_all_but(tx: &Transaction<'_>, keep: Option<CycleId>) -> Result<u64> {
    let removed = tx
        .prepare_cached("DELETE FROM staged_writes WHERE ?1 IS NULL OR cycle_id <> ?1")?
        .execute([keep.map(|c| c.0)])?;
    Ok(count(removed))
}

/// Retention: stages of cycles begun before `cutoff`, except the latest cycle, which may still
/// be running (an engine idle for longer than the retention period).
pub(super) fn purge_before(tx: &Transaction<'_>, cutoff: i64) -> Result<u64> {
    let removed = tx
        .prepare_cached(
            "DELETE FROM staged_writes WHERE cycle_id IN (
                 SELECT id FROM cycles
                 WHERE started_at < ?1 AND id <> (SELECT max(id) FROM cycles))",
        )?
        .execute([cutoff])?;
    Ok(count(removed))
}

/// A staged row as stored, before its blob columns are decoded.
struct RawStaged {
    seq: i64,
    cloud_id: String,
    object_guid: Vec<u8>,
    dn: String,
    usn_changed: i64,
    payload: Vec<u8>,
}

impl RawStaged {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawStaged {
            seq: row.get(0)?,
            cloud_id: row.get(1)?,
            object_guid: row.get(2)?,
            dn: row.get(3)?,
            usn_changed: row.get(4)?,
            payload: row.get(5)?,
        })
    }

    fn decode(self) -> Result<(u64, StagedWrite)> {
        let seq = u64::try_from(self.seq)
            .map_err(|_| StateError::corrupt("staged write seq", self.seq))?;
        let payload: StagedPayload<'_> = codec::decode("staged write", &self.payload)?;
        let write = StagedWrite {
            object_guid: guid_from_blob(&self.object_guid)?,
            usn_changed: u64::try_from(self.usn_changed)
                .map_err(|_| StateError::corrupt("staged uSNChanged", self.usn_changed))?,
            mods: payload.mods.into_owned(),
            before: payload.before.into_values()?,
            mailbox: payload.mailbox.into_mailbox(),
            cloud_id: self.cloud_id,
            dn: self.dn,
        };
        Ok((seq, write))
    }
}

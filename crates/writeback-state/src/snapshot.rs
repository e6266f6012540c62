//! [`ScopeSnapshot`]: one full pass's copy of the AD objects in scope, on disk.
//!
//! A full pass compares every cloud-managed mailbox with its AD object. Reading those objects
//! one search per mailbox costs a round trip each; one paged search of the scope costs a
//! round trip per thousand. The paged search does not come back in the order the mailboxes
//! do, so its entries are kept here, keyed by the identity attributes the matcher looks
//! objects up by, and each mailbox page then looks its objects up locally. On disk rather
//! than in memory so the pass's memory stays the size of a page whatever the directory's size.
//!
//! The file is scratch: no journal, no fsync, one connection holding it exclusively, removed
//! when the snapshot is dropped (and replaced if a crashed process left one behind). Loading
//! appends rows in arrival order and builds every index once at the end: an insert then costs
//! the same at the millionth row as at the first, which matters because the scan that feeds it
//! is not flow-controlled (an LDAP client buffers whatever is not consumed yet). The payload is
//! opaque to this crate: the engine stores its own serialised object there.

use crate::error::{Result, StateError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// One object to keep: its keys and the caller's serialised record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub object_guid: [u8; 16],
    pub consistency_guid: Option<Vec<u8>>,
    /// `S-1-5-…` text form, compared case-insensitively.
    pub sid: Option<String>,
    pub payload: Vec<u8>,
}

/// The scope's objects as read at the start of a pass.
pub struct ScopeSnapshot {
    conn: Mutex<Connection>,
    path: PathBuf,
    indexed: Mutex<bool>,
}

impl std::fmt::Debug for ScopeSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeSnapshot")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ScopeSnapshot {
    /// Creates an empty snapshot file in `dir` (named after this process, so two agents
    /// sharing a directory do not collide; a leftover from a crashed run is replaced).
    pub fn create_in(dir: &Path) -> Result<Self> {
        let path = dir.join(format!("writeback-scope-{}.snapshot", std::process::id()));
        Self::create(&path)
    }

    /// Creates an empty snapshot at `path`, replacing any file there.
    pub fn create(path: &Path) -> Result<Self> {
        remove_files(path);
        let open_err = |cause| StateError::Open {
            path: path.to_path_buf(),
            cause,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // Scratch data: a crash loses nothing that the next pass does not read again.
        conn.execute_batch(
            "PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -16384;
             PRAGMA temp_store = FILE;
             CREATE TABLE object (
                 guid BLOB NOT NULL,
                 consistency_guid BLOB,
                 sid TEXT COLLATE NOCASE,
                 payload BLOB NOT NULL
             );
             CREATE TABLE delivered (id BLOB PRIMARY KEY) WITHOUT ROWID;",
        )
        .map_err(open_err)?;
        Ok(ScopeSnapshot {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            indexed: Mutex::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a page of objects in one transaction. An object seen twice (two overlapping scope
    /// DNs, a scan started over) keeps its first copy, from [`ScopeSnapshot::finish_loading`] on.
    pub fn insert(&self, rows: &[SnapshotRow]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO object (guid, consistency_guid, sid, payload) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for row in rows {
                stmt.execute(params![
                    &row.object_guid[..],
                    row.consistency_guid,
                    row.sid,
                    row.payload
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops repeated objects and builds the indexes, once everything is in (one sort each
    /// instead of a b-tree insert per row). Lookups work before this too, by scan.
    pub fn finish_loading(&self) -> Result<()> {
        let mut indexed = self.indexed.lock().unwrap_or_else(PoisonError::into_inner);
        if !*indexed {
            self.conn().execute_batch(
                "DELETE FROM object WHERE rowid NOT IN (SELECT min(rowid) FROM object GROUP BY guid);
                 CREATE UNIQUE INDEX object_guid ON object (guid);
                 CREATE INDEX object_cg ON object (consistency_guid) WHERE consistency_guid IS NOT NULL;
                 CREATE INDEX object_sid ON object (sid) WHERE sid IS NOT NULL;",
            )?;
            *indexed = true;
        }
        Ok(())
    }

    pub fn len(&self) -> Result<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM object", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The object with this objectGUID.
    pub fn by_guid(&self, guid: &[u8; 16]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT payload FROM object WHERE guid = ?1")?
            .query_row(params![&guid[..]], |r| r.get(0))
            .optional()?)
    }

    /// Every object whose mS-DS-ConsistencyGuid is these bytes.
    pub fn by_consistency_guid(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.collect("SELECT payload FROM object WHERE consistency_guid = ?1 AND consistency_guid IS NOT NULL", bytes)
    }

    /// Every object with this SID.
    pub fn by_sid(&self, sid: &str) -> Result<Vec<Vec<u8>>> {
        self.collect(
            "SELECT payload FROM object WHERE sid = ?1 AND sid IS NOT NULL",
            sid,
        )
    }

    /// Records that the pass's cloud reader delivered the mailbox with this (normalised) id;
    /// true the first time. Kept here rather than in memory so that a pass over millions of
    /// mailboxes does not hold millions of ids (a restarted Exchange query re-delivers them).
    pub fn first_delivery(&self, id: &[u8]) -> Result<bool> {
        let inserted = self
            .conn()
            .prepare_cached("INSERT OR IGNORE INTO delivered (id) VALUES (?1)")?
            .execute([id])?;
        Ok(inserted == 1)
    }

    /// How many distinct ids [`ScopeSnapshot::first_delivery`] has seen.
    pub fn delivered_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM delivered", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn collect(&self, sql: &str, key: impl rusqlite::ToSql) -> Result<Vec<Vec<u8>>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![key], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<Vec<Vec<u8>>, _>>()?)
    }
}

impl Drop for ScopeSnapshot {
    fn drop(&mut self) {
        remove_files(&self.path);
    }
}

fn remove_files(path: &Path) {
    // Best effort: a file left behind is replaced by the next pass of the same process id,
    // and holds no secret (managed attribute values the DC serves to any reader of them).
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("snapshot-journal"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_id_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = ScopeSnapshot::create_in(dir.path()).unwrap();
        assert!(snapshot.first_delivery(b"a").unwrap());
        assert!(snapshot.first_delivery(b"b").unwrap());
        assert!(!snapshot.first_delivery(b"a").unwrap());
        assert_eq!(snapshot.delivered_count().unwrap(), 2);
        // Independent of the objects.
        assert_eq!(snapshot.len().unwrap(), 0);
    }

    fn row(n: u8, cg: Option<u8>, sid: Option<&str>) -> SnapshotRow {
        SnapshotRow {
            object_guid: [n; 16],
            consistency_guid: cg.map(|b| vec![b; 16]),
            sid: sid.map(str::to_owned),
            payload: vec![n, n, n],
        }
    }

    #[test]
    fn lookups_by_each_key_and_cleanup_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = ScopeSnapshot::create_in(dir.path()).unwrap();
        let path = snapshot.path().to_path_buf();
        snapshot
            .insert(&[
                row(1, Some(9), Some("S-1-5-21-1-2-3-1001")),
                row(2, None, None),
            ])
            .unwrap();
        // A second scope DN over the same object: the first copy stays.
        snapshot
            .insert(&[
                SnapshotRow {
                    payload: vec![0],
                    ..row(1, None, None)
                },
                row(3, Some(9), None),
            ])
            .unwrap();
        snapshot.finish_loading().unwrap();
        snapshot.finish_loading().unwrap();
        assert_eq!(snapshot.len().unwrap(), 3);
        assert_eq!(snapshot.by_guid(&[1; 16]).unwrap(), Some(vec![1, 1, 1]));
        assert_eq!(snapshot.by_guid(&[7; 16]).unwrap(), None);
        let mut by_cg = snapshot.by_consistency_guid(&[9; 16]).unwrap();
        // (object 1's second copy is gone: only objects 1 and 3 carry this CG)
        by_cg.sort();
        assert_eq!(by_cg, vec![vec![1, 1, 1], vec![3, 3, 3]]);
        assert!(snapshot.by_consistency_guid(&[8; 16]).unwrap().is_empty());
        assert_eq!(
            snapshot.by_sid("s-1-5-21-1-2-3-1001").unwrap(),
            vec![vec![1, 1, 1]]
        );
        assert!(snapshot.by_sid("S-1-5-21-1-2-3-1002").unwrap().is_empty());
        assert!(path.exists());
        drop(snapshot);
        assert!(!path.exists());
    }

    #[test]
    fn a_leftover_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.snapshot");
        std::fs::write(&path, b"not a database").unwrap();
        let snapshot = ScopeSnapshot::create(&path).unwrap();
        assert!(snapshot.is_empty().unwrap());
    }
}

//! The SQLite schema and its migrations.
//!
//! The schema version lives in `PRAGMA user_version`. Migration N (1-based) takes a file
//! from version N−1 to N; all pending ones run in one IMMEDIATE transaction together with the
//! version bump, so a crash or a second process opening the file at the same time sees either
//! the old schema or the new one. A file from a newer build is refused untouched.

use crate::error::{Result, StateError};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// Version 1. Times are unix milliseconds; JSON columns hold value lists (`["a","b"]`),
/// modification lists and `AdValues` in writeback-core's JSON forms.
const V1: &str = r#"
CREATE TABLE watermarks (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- AUTOINCREMENT everywhere an id leaves the store: ids are never reused after a purge.
CREATE TABLE cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    summary TEXT
);

CREATE TABLE joins (
    cloud_id TEXT PRIMARY KEY,
    object_guid BLOB NOT NULL UNIQUE CHECK (length(object_guid) = 16),
    dn TEXT NOT NULL,
    matched_by TEXT NOT NULL,
    verified_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE last_written (
    cloud_id TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value_list TEXT NOT NULL,
    written_at INTEGER NOT NULL,
    journal_id INTEGER NOT NULL,
    PRIMARY KEY (cloud_id, attribute)
) WITHOUT ROWID;

-- outcome NULL = in flight. Outcome columns are set once, with finished_at.
CREATE TABLE journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_id INTEGER NOT NULL REFERENCES cycles (id),
    cloud_id TEXT NOT NULL,
    object_guid BLOB NOT NULL CHECK (length(object_guid) = 16),
    dn TEXT NOT NULL,
    mods TEXT NOT NULL,
    before TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    outcome TEXT CHECK (outcome IN ('applied', 'conflict', 'failed', 'unknown')),
    outcome_code INTEGER,
    outcome_message TEXT,
    finished_at INTEGER,
    CHECK ((outcome IS NULL) = (finished_at IS NULL))
);
CREATE INDEX journal_in_flight ON journal (id) WHERE outcome IS NULL;
CREATE INDEX journal_finished ON journal (finished_at) WHERE outcome IS NOT NULL;

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    cycle_id INTEGER NOT NULL REFERENCES cycles (id),
    journal_id INTEGER REFERENCES journal (id) ON DELETE SET NULL,
    cloud_id TEXT NOT NULL,
    dn TEXT NOT NULL,
    attribute TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'conflict', 'failed', 'unknown')),
    outcome_code INTEGER,
    outcome_message TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_cloud_id ON audit (cloud_id);
-- Also what keeps deleting journal rows (ON DELETE SET NULL) from scanning the audit table.
CREATE INDEX audit_journal_id ON audit (journal_id);

CREATE TABLE failures (
    cloud_id TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,
    first_failed_at INTEGER NOT NULL,
    last_failed_at INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    next_attempt_at INTEGER,
    quarantined INTEGER NOT NULL CHECK (quarantined IN (0, 1))
) WITHOUT ROWID;
CREATE INDEX failures_due ON failures (next_attempt_at) WHERE quarantined = 0;

CREATE TABLE held_plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_id INTEGER NOT NULL REFERENCES cycles (id),
    reason TEXT NOT NULL,
    plan TEXT NOT NULL,
    held_at INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'discarded', 'applied')),
    decided_at INTEGER
);
"#;

/// Version 2: staged writes. A cycle's planned writes wait here, in plan order (`seq`, from 1
/// per cycle), until the safety brakes have seen the whole plan; the engine then streams them
/// back to apply them. JSON columns as in V1, `mailbox` in writeback-core's `Mailbox` form.
const V2: &str = r#"
CREATE TABLE staged_writes (
    cycle_id INTEGER NOT NULL REFERENCES cycles (id),
    seq INTEGER NOT NULL,
    cloud_id TEXT NOT NULL,
    object_guid BLOB NOT NULL CHECK (length(object_guid) = 16),
    dn TEXT NOT NULL,
    usn_changed INTEGER NOT NULL,
    mods TEXT NOT NULL,
    before TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    PRIMARY KEY (cycle_id, seq)
);
"#;

/// Version 3: Graph's identity anchors, one row per cloud user (`user_id` lower-case), kept
/// here rather than in memory so that memory does not grow with the tenant and a restart
/// continues from the stored `users/delta` cursor instead of a full round. The indexes serve
/// the reverse lookup from an AD object to its cloud user.
const V3: &str = r#"
CREATE TABLE anchors (
    user_id TEXT PRIMARY KEY,
    immutable_id TEXT,
    sid TEXT,
    dn TEXT
) WITHOUT ROWID;
CREATE INDEX anchors_immutable_id ON anchors (immutable_id) WHERE immutable_id IS NOT NULL;
CREATE INDEX anchors_sid ON anchors (sid) WHERE sid IS NOT NULL;
"#;

/// Version 4: the cloud record each mailbox was last seen in sync with (its WhenChangedUTC), so
/// an incremental pass does not read AD again for a record it has already written or checked
/// (the pass re-lists a window before its watermark on purpose; see writeback-engine).
const V4: &str = r#"
CREATE TABLE synced (
    cloud_id TEXT PRIMARY KEY,
    when_changed TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// Version 5: the journal is the audit trail. A journal entry already holds everything an
/// audit row held (when, which object, the modifications, the values before, the outcome), so
/// the per-attribute `audit` rows and the `last_written` table, written on every outcome (ten
/// rows and thirty index entries for a write touching five attributes), are derived from it
/// when read instead. `journal.before` keeps only the attributes the write touches. Staged
/// writes keep their payload as one compact binary blob (see `codec.rs`); a stage lives for one
/// cycle and no cycle runs during a migration, so the old stage table is dropped, not converted.
/// The synced version (v4's `synced` table) moves into `joins`: it lives and dies with the join,
/// and a pass reads both in one lookup instead of two.
///
/// Every audit row of a v4 file belongs to a journal entry with an outcome (both are written by
/// one transaction and purged by the same cutoff), so dropping the audit table loses nothing;
/// [`check_before_v5`] refuses the migration rather than lose a row if a file says otherwise.
const V5: &str = r#"
DROP TABLE audit;
DROP TABLE last_written;
CREATE INDEX journal_cloud_id ON journal (cloud_id);
ALTER TABLE joins ADD COLUMN synced_when_changed TEXT;
UPDATE joins SET synced_when_changed = (SELECT when_changed FROM synced WHERE synced.cloud_id = joins.cloud_id);
DROP TABLE synced;
DROP TABLE staged_writes;
CREATE TABLE staged_writes (
    cycle_id INTEGER NOT NULL REFERENCES cycles (id),
    seq INTEGER NOT NULL,
    cloud_id TEXT NOT NULL,
    object_guid BLOB NOT NULL CHECK (length(object_guid) = 16),
    dn TEXT NOT NULL,
    usn_changed INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (cycle_id, seq)
);
"#;

/// Migrations in order; the schema version is the number applied. Never edit one that has
/// shipped: files out there are at its version already.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Brings the file to [`SCHEMA_VERSION`], or refuses a file from a newer build.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StateError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let applied =
        usize::try_from(found).map_err(|_| StateError::corrupt("schema version", found))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        if index + 1 == 5 {
            check_before_v5(&tx, path)?;
        }
        tx.execute_batch(migration)?;
    }
    if found != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

/// V5 drops the audit table: only when every row of it can be derived from the journal.
fn check_before_v5(tx: &Connection, path: &Path) -> Result<()> {
    let orphans: i64 = tx.query_row(
        "SELECT count(*) FROM audit LEFT JOIN journal ON journal.id = audit.journal_id
         WHERE journal.id IS NULL OR journal.outcome IS NULL",
        [],
        |row| row.get(0),
    )?;
    if orphans > 0 {
        return Err(StateError::MigrationRefused {
            path: path.to_path_buf(),
            detail: format!(
                "{orphans} audit rows have no finished journal entry and would be lost; export the \
                 audit log with the previous writeback version (writeback audit --format csv), then \
                 purge it, before upgrading"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "schema_v5_tests.rs"]
mod v5_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CycleId, SqliteStore, StagedWrite, StateStore};
    use writeback_core::{AdValues, Anchors, Mailbox};

    /// A file exactly as a version-1 build left it: only migration 1 applied.
    fn create_v1_file(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn
    }

    fn schema_sql(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |row| row.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn schema_version_is_the_number_of_migrations() {
        assert_eq!(usize::try_from(SCHEMA_VERSION).ok(), Some(MIGRATIONS.len()));
    }

    #[test]
    fn a_negative_user_version_is_refused_as_corrupt() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", -3).unwrap();
        let err = migrate(&mut conn, Path::new(":memory:")).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::Corrupt {
                    what: "schema version",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_version_1_file_migrates_to_the_current_version_keeping_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = create_v1_file(&path);
            conn.execute_batch(
                "INSERT INTO watermarks VALUES ('exchange.when_changed', '2024-05-01T10:00:00Z', 1);
                 INSERT INTO cycles (started_at, finished_at, summary) VALUES (100, 200, '{}');
                 INSERT INTO cycles (started_at) VALUES (300);
                 INSERT INTO journal (cycle_id, cloud_id, object_guid, dn, mods, before, recorded_at)
                     VALUES (2, 'cloud-a', zeroblob(16), 'CN=A,DC=t', '[]', '{}', 310);",
            )
            .unwrap();
            let tables: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name = 'staged_writes'",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(tables, 0, "the v1 file must not have the v2 table yet");
        }

        let store = SqliteStore::open(&path).unwrap();
        let raw = Connection::open(&path).unwrap();
        let version: i64 = raw
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(
            store.watermark("exchange.when_changed").unwrap().as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(store.last_cycle().unwrap().map(|c| c.id), Some(CycleId(2)));
        assert_eq!(store.in_flight().unwrap().len(), 1);

        let write = StagedWrite {
            cloud_id: "cloud-a".into(),
            object_guid: [7; 16],
            dn: "CN=A,DC=t".into(),
            usn_changed: 4_242,
            mods: vec![],
            before: AdValues::new(),
            mailbox: Mailbox {
                cloud_id: "cloud-a".into(),
                ..Mailbox::default()
            },
        };
        store
            .stage_writes(CycleId(2), std::slice::from_ref(&write))
            .unwrap();
        assert_eq!(
            store.staged_writes(CycleId(2), 0, 10).unwrap(),
            [(1, write)]
        );
        assert!(store.integrity_check().unwrap().is_empty());
        let mut fk = raw.prepare("PRAGMA foreign_key_check").unwrap();
        assert_eq!(fk.query_map([], |_| Ok(())).unwrap().count(), 0);

        // The migrated file has exactly the schema a fresh file gets.
        let fresh_path = dir.path().join("fresh.db");
        drop(SqliteStore::open(&fresh_path).unwrap());
        assert_eq!(
            schema_sql(&raw),
            schema_sql(&Connection::open(&fresh_path).unwrap())
        );

        // Opening the migrated file again migrates nothing and keeps the stage.
        drop(store);
        drop(SqliteStore::open(&path).unwrap());
        assert_eq!(staged_rows(&raw), 1);
    }

    /// A file exactly as a version-2 build left it: migrations 1 and 2 applied.
    fn create_v2_file(path: &Path) -> Connection {
        let conn = create_v1_file(path);
        conn.execute_batch(V2).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn
    }

    #[test]
    fn a_version_2_file_migrates_to_the_current_version_keeping_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = create_v2_file(&path);
            conn.execute_batch(
                "INSERT INTO watermarks VALUES ('exchange.when_changed', '2024-05-01T10:00:00Z', 1);
                 INSERT INTO cycles (started_at) VALUES (300);
                 INSERT INTO staged_writes VALUES
                     (1, 1, 'cloud-a', zeroblob(16), 'CN=A,DC=t', 7, '[]', '{}', '{\"cloud_id\":\"cloud-a\"}');",
            )
            .unwrap();
            let tables: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name = 'anchors'",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(tables, 0, "the v2 file must not have the v3 table yet");
        }

        let store = SqliteStore::open(&path).unwrap();
        let raw = Connection::open(&path).unwrap();
        let version: i64 = raw
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(
            store.watermark("exchange.when_changed").unwrap().as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        // A stage lives for one cycle; v5 changed its row format and dropped it.
        assert_eq!(staged_rows(&raw), 0);
        assert_eq!(store.anchor_count().unwrap(), 0);

        let anchors = Anchors {
            immutable_id: Some("AAECAwQFBgcICQoLDA0ODw==".into()),
            sid: Some("S-1-5-21-1-2-3-1104".into()),
            dn: None,
        };
        store
            .apply_anchor_page(
                &[("User-A".into(), anchors.clone())],
                &[],
                Some(("graph.delta_cursor", "{}")),
                400,
            )
            .unwrap();
        assert_eq!(store.anchors("user-a").unwrap(), Some(anchors));
        assert!(store.integrity_check().unwrap().is_empty());

        let fresh_path = dir.path().join("fresh.db");
        drop(SqliteStore::open(&fresh_path).unwrap());
        assert_eq!(
            schema_sql(&raw),
            schema_sql(&Connection::open(&fresh_path).unwrap())
        );

        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(reopened.anchor_count().unwrap(), 1);
    }

    fn staged_rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM staged_writes", [], |row| row.get(0))
            .unwrap()
    }
}

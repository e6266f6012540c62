//! The v4 → v5 migration: the audit and last written values read from the journal must be
//! what v4 stored in its own tables.

use super::*;
use crate::{AuditQuery, JournalId, Outcome, SqliteStore, StateStore};
use writeback_core::ManagedAttribute;

/// A v4 file with one applied write (two attributes: audit rows and last written values as a
/// v4 build recorded them), one failed write and one in flight.
fn create_v4_file(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    for migration in &MIGRATIONS[..4] {
        conn.execute_batch(migration).unwrap();
    }
    conn.pragma_update(None, "user_version", 4).unwrap();
    conn.execute_batch(
        r#"INSERT INTO cycles (started_at) VALUES (100);
        INSERT INTO joins VALUES ('cloud-a', x'01010101010101010101010101010101', 'CN=A,DC=t', 'immutable_id', 100);
        INSERT INTO journal (cycle_id, cloud_id, object_guid, dn, mods, before, recorded_at, outcome, finished_at)
            VALUES (1, 'cloud-a', x'01010101010101010101010101010101', 'CN=A,DC=t',
                '[{"attribute":"mail","op":"delete","values":["a@x.test"]},{"attribute":"mail","op":"add","values":["b@x.test"]},{"attribute":"extensionAttribute1","op":"add","values":["one"]}]',
                '{"mail":["a@x.test"],"extensionAttribute9":["untouched"]}', 110, 'applied', 120);
        INSERT INTO audit (at, cycle_id, journal_id, cloud_id, dn, attribute, before, after, outcome)
            VALUES (120, 1, 1, 'cloud-a', 'CN=A,DC=t', 'mail', '["a@x.test"]', '["b@x.test"]', 'applied'),
                   (120, 1, 1, 'cloud-a', 'CN=A,DC=t', 'extensionAttribute1', '[]', '["one"]', 'applied');
        INSERT INTO last_written VALUES ('cloud-a', 'mail', '["b@x.test"]', 120, 1),
                                        ('cloud-a', 'extensionAttribute1', '["one"]', 120, 1);
        INSERT INTO journal (cycle_id, cloud_id, object_guid, dn, mods, before, recorded_at, outcome, outcome_code, outcome_message, finished_at)
            VALUES (1, 'cloud-b', x'02020202020202020202020202020202', 'CN=B,DC=t',
                '[{"attribute":"extensionAttribute2","op":"add","values":["two"]}]', '{}', 130, 'failed', 50, 'insufficient access', 140);
        INSERT INTO audit (at, cycle_id, journal_id, cloud_id, dn, attribute, before, after, outcome, outcome_code, outcome_message)
            VALUES (140, 1, 2, 'cloud-b', 'CN=B,DC=t', 'extensionAttribute2', '[]', '["two"]', 'failed', 50, 'insufficient access');
        INSERT INTO journal (cycle_id, cloud_id, object_guid, dn, mods, before, recorded_at)
            VALUES (1, 'cloud-c', x'03030303030303030303030303030303', 'CN=C,DC=t', '[]', '{}', 150);
        INSERT INTO synced VALUES ('cloud-a', '2026-01-01T00:00:00Z'), ('cloud-unjoined', '2026-01-02T00:00:00Z');
        INSERT INTO staged_writes VALUES (1, 1, 'cloud-a', x'01010101010101010101010101010101', 'CN=A,DC=t', 7, '[]', '{}', '{"cloud_id":"cloud-a"}');"#,
    )
    .unwrap();
    conn
}

/// The audit rows of a v4 file as (attribute, before, after, outcome kind, at, journal id).
type Row = (String, Vec<String>, Vec<String>, String, i64, i64);

fn v4_audit(conn: &Connection) -> Vec<Row> {
    let mut stmt = conn
        .prepare("SELECT attribute, before, after, outcome, at, journal_id FROM audit ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let list = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap();
            Ok((
                r.get(0)?,
                list(r.get(1)?),
                list(r.get(2)?),
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn a_version_4_file_keeps_its_audit_log_and_last_written_values_read_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let expected = v4_audit(&create_v4_file(&path));
    assert_eq!(expected.len(), 3);

    let store = SqliteStore::open(&path).unwrap();
    let records = store.query_audit(&AuditQuery::default()).unwrap();
    let found: Vec<Row> = records
        .iter()
        .map(|r| {
            let journal_id = r.journal_id.unwrap().0;
            (
                r.attribute.clone(),
                r.before.clone(),
                r.after.clone(),
                r.outcome.kind().to_owned(),
                r.at,
                journal_id,
            )
        })
        .collect();
    assert_eq!(found, expected);
    assert_eq!(
        records[2].outcome,
        Outcome::Failed {
            code: 50,
            message: "insufficient access".into()
        }
    );
    // Ids are unique and ordered, and work as a cursor between two attributes of one write.
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let after_first = AuditQuery {
        after_id: Some(ids[0]),
        limit: Some(1),
        ..AuditQuery::default()
    };
    assert_eq!(
        store.query_audit(&after_first).unwrap()[0].attribute,
        "extensionAttribute1"
    );

    let written: Vec<(ManagedAttribute, Vec<String>, i64, JournalId)> = store
        .last_written("cloud-a")
        .unwrap()
        .into_iter()
        .map(|w| (w.attribute, w.values, w.written_at, w.journal_id))
        .collect();
    assert_eq!(
        written,
        [
            (
                ManagedAttribute::ExtensionAttribute1,
                vec!["one".to_owned()],
                120,
                JournalId(1)
            ),
            (
                ManagedAttribute::Mail,
                vec!["b@x.test".to_owned()],
                120,
                JournalId(1)
            ),
        ]
    );
    assert!(
        store.last_written("cloud-b").unwrap().is_empty(),
        "failed writes and unjoined mailboxes wrote nothing"
    );
    // The synced version moved into the join; one without a join had nothing to be in sync with.
    assert_eq!(
        store.synced_version("cloud-a").unwrap().as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
    assert_eq!(store.synced_version("cloud-unjoined").unwrap(), None);
    assert_eq!(store.in_flight().unwrap().len(), 1);
    assert!(store.integrity_check().unwrap().is_empty());

    let raw = Connection::open(&path).unwrap();
    let fresh_path = dir.path().join("fresh.db");
    drop(SqliteStore::open(&fresh_path).unwrap());
    let schema = |conn: &Connection| -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |row| row.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(
        schema(&raw),
        schema(&Connection::open(&fresh_path).unwrap())
    );
}

#[test]
fn an_audit_row_the_journal_cannot_give_back_stops_the_migration_and_the_file_stays_at_version_4() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let conn = create_v4_file(&path);
    // An audit row whose journal entry is gone (no v4 build leaves one, but a hand-edited or
    // partly restored file could).
    conn.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM journal WHERE id = 2;")
        .unwrap();

    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StateError::MigrationRefused { .. }), "{err}");
    assert!(err.to_string().contains("1 audit rows"), "{err}");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 4);
    assert_eq!(v4_audit(&conn).len(), 3, "nothing was dropped");
}

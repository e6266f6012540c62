#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::TempStore;
use writeback_state::{
    Durability, SqliteOptions, SqliteStore, StateError, StateStore, SCHEMA_VERSION,
};

fn user_version(conn: &rusqlite::Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

#[test]
fn a_fresh_file_gets_the_whole_schema_in_wal_mode() {
    let t = TempStore::new();
    let raw = t.raw();
    assert_eq!(user_version(&raw), SCHEMA_VERSION);
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut stmt = raw
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for expected in [
        "anchors",
        "cycles",
        "failures",
        "held_plans",
        "joins",
        "journal",
        "staged_writes",
        "watermarks",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "missing table {expected} in {tables:?}"
        );
    }
    // The audit log and last written values are read from the journal since version 5, and
    // the synced version is kept in `joins`.
    for gone in ["audit", "last_written", "synced"] {
        assert!(!tables.iter().any(|t| t == gone), "{gone} in {tables:?}");
    }
    assert!(t.store.integrity_check().unwrap().is_empty());
}

#[test]
fn reopening_keeps_data_and_does_not_migrate_again() {
    let t = TempStore::new();
    t.store
        .set_watermark("exchange.when_changed", "2024-05-01T10:00:00Z", 1)
        .unwrap();
    let cycle = t.store.begin_cycle(5).unwrap();
    drop(t.store);
    let reopened = SqliteStore::open(t.dir.path().join("state.db")).unwrap();
    assert_eq!(
        reopened
            .watermark("exchange.when_changed")
            .unwrap()
            .as_deref(),
        Some("2024-05-01T10:00:00Z")
    );
    assert_eq!(reopened.last_cycle().unwrap().map(|c| c.id), Some(cycle));
    assert_eq!(
        user_version(&rusqlite::Connection::open(reopened.path()).unwrap()),
        SCHEMA_VERSION
    );
}

#[test]
fn a_file_from_a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future_thing (x INTEGER); PRAGMA user_version = 7;")
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    match &err {
        StateError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, 7);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("schema version 7") && message.contains("upgrade writeback"),
        "{message}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn), 7);
    let watermarks: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'watermarks'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        watermarks, 0,
        "nothing of the older schema may be created in a newer file"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        b"this is not an SQLite file, it is a config file by mistake.....",
    )
    .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StateError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("state.db"), "{err}");
}

#[test]
fn full_durability_opens_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        durability: Durability::Full,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path().join("state.db"), &options).unwrap();
    store
        .set_watermark("graph.delta_link", "https://graph/delta?token=1", 1)
        .unwrap();
    assert_eq!(
        store.watermark("graph.delta_link").unwrap().as_deref(),
        Some("https://graph/delta?token=1")
    );
}

#[test]
fn a_second_store_on_the_same_file_sees_committed_writes() {
    let t = TempStore::new();
    let other = SqliteStore::open(t.path()).unwrap();
    t.store
        .set_watermark("exchange.when_changed", "a", 1)
        .unwrap();
    assert_eq!(
        other.watermark("exchange.when_changed").unwrap().as_deref(),
        Some("a")
    );
    other
        .set_watermark("exchange.when_changed", "b", 2)
        .unwrap();
    assert_eq!(
        t.store
            .watermark("exchange.when_changed")
            .unwrap()
            .as_deref(),
        Some("b")
    );
}

//! Crash safety with a real `kill -9`: a child process (this test binary, re-executed) journals
//! writes in a loop and is killed at random points; after each kill the file must be sound and
//! every journal entry either complete with its audit rows or still in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use writeback_core::{AdValues, ManagedAttribute, Modification};
use writeback_state::{
    AuditQuery, JournalId, Outcome, RetryPolicy, SqliteStore, StateStore, WriteIntent,
};

/// Set in the child: the database to write to.
const CHILD_DB_ENV: &str = "WRITEBACK_STATE_CRASH_CHILD_DB";
/// The test that is the child's entry point.
const CHILD_TEST: &str = "journal_writer_loop";
const INTENT_BATCH: usize = 40;
const OUTCOME_BATCH: usize = 8;
const ATTRIBUTES: [ManagedAttribute; 3] = [
    ManagedAttribute::Mail,
    ManagedAttribute::ExtensionAttribute1,
    ManagedAttribute::ExtensionAttribute2,
];

/// What the engine would do in a loop: journal a page of writes, then record their outcomes in
/// smaller batches. Every transaction uses its own `now`, so the checker can tell whether any
/// batch was cut in half. On start it resolves what a previous run left in flight, with
/// negative times so those batches are told apart.
fn run_writer(path: &Path, pages: Option<u32>) {
    let store = SqliteStore::open(path).unwrap();
    let mut now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::try_from(now).unwrap());
    let left: Vec<(JournalId, Outcome)> = store
        .in_flight()
        .unwrap()
        .into_iter()
        .map(|e| (e.id, Outcome::Unknown))
        .collect();
    store.record_outcomes(&left, -now).unwrap();

    let mut page = 0;
    while pages.is_none_or(|p| page < p) {
        page += 1;
        now += 1;
        let cycle = store.begin_cycle(now).unwrap();
        let planned: Vec<(String, Vec<Modification>, AdValues)> = (0..INTENT_BATCH)
            .map(|_| {
                let cloud_id = format!("cloud-{:02}", rng.gen_range(0..30));
                let mut before = AdValues::new();
                let mut mods = Vec::new();
                for attr in ATTRIBUTES {
                    if rng.gen_bool(0.5) || mods.is_empty() {
                        let old = format!("old-{}", rng.gen::<u32>());
                        let new = format!("new-{}-{}", now, rng.gen::<u32>());
                        before.set(attr, vec![old.clone()]);
                        mods.push(Modification::delete(attr, vec![old]));
                        mods.push(Modification::add(attr, vec![new]));
                    }
                }
                (cloud_id, mods, before)
            })
            .collect();
        let intents: Vec<WriteIntent> = planned
            .iter()
            .map(|(cloud_id, mods, before)| WriteIntent {
                cycle,
                cloud_id,
                object_guid: [7; 16],
                dn: "CN=Crash Test,OU=Staff,DC=corp,DC=test",
                mods,
                before,
            })
            .collect();
        now += 1;
        let ids = store.record_intents(&intents, now).unwrap();
        for chunk in ids.chunks(OUTCOME_BATCH) {
            let outcomes: Vec<(JournalId, Outcome)> = chunk
                .iter()
                .map(|id| {
                    let outcome = match rng.gen_range(0..10) {
                        0 => Outcome::Conflict,
                        1 => Outcome::Unknown,
                        2 => Outcome::Failed {
                            code: 53,
                            message: "unwilling".into(),
                        },
                        _ => Outcome::Applied,
                    };
                    (*id, outcome)
                })
                .collect();
            now += 1;
            store.record_outcomes(&outcomes, now).unwrap();
        }
        now += 1;
        store
            .record_failure(&planned[0].0, "transient", &RetryPolicy::default(), now)
            .unwrap();
        store
            .set_watermark("exchange.when_changed", &now.to_string(), now)
            .unwrap();
        store
            .finish_cycle(cycle, now, &serde_json::json!({"page": page}))
            .unwrap();
    }
}

struct Summary {
    entries: i64,
    in_flight: i64,
}

/// Everything that must hold in the file whatever instant the writer died at.
fn check_consistency(path: &Path) -> Summary {
    let store = SqliteStore::open(path).unwrap();
    assert_eq!(
        store.integrity_check().unwrap(),
        Vec::<String>::new(),
        "PRAGMA integrity_check"
    );
    let conn = rusqlite::Connection::open(path).unwrap();
    let scalar = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).unwrap() };
    assert_eq!(
        scalar("SELECT count(*) FROM pragma_foreign_key_check"),
        0,
        "foreign keys"
    );

    // No batch cut in half: every intent page and every outcome batch is all there or absent.
    let group_sizes = |sql: &str| -> BTreeSet<i64> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let pages = group_sizes("SELECT count(*) FROM journal GROUP BY recorded_at");
    assert!(
        pages
            .iter()
            .all(|n| usize::try_from(*n).unwrap() == INTENT_BATCH),
        "intent pages {pages:?}"
    );
    let batches =
        group_sizes("SELECT count(*) FROM journal WHERE finished_at > 0 GROUP BY finished_at");
    assert!(
        batches
            .iter()
            .all(|n| usize::try_from(*n).unwrap() == OUTCOME_BATCH),
        "outcome batches {batches:?}"
    );

    // Each entry is in flight, or finished with one audit row per touched attribute carrying
    // its outcome and time (the audit log is read from the journal, so a crash can cut neither
    // apart; last written values are read the same way).
    let mut stmt = conn
        .prepare("SELECT id, mods, outcome, finished_at FROM journal")
        .unwrap();
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<i64>>(3)?,
            ))
        })
        .unwrap();
    let mut audit_by_entry: BTreeMap<i64, Vec<(String, String, i64)>> = BTreeMap::new();
    for record in store.query_audit(&AuditQuery::default()).unwrap() {
        audit_by_entry
            .entry(record.journal_id.unwrap().0)
            .or_default()
            .push((
                record.attribute,
                record.outcome.kind().to_owned(),
                record.at,
            ));
    }
    let (mut entries, mut in_flight) = (0, 0);
    for row in rows {
        let (id, mods, outcome, finished_at) = row.unwrap();
        entries += 1;
        let mods: Vec<Modification> = serde_json::from_str(&mods).unwrap();
        let touched: BTreeSet<_> = mods
            .iter()
            .map(|m| m.attribute.ldap_name().to_owned())
            .collect();
        let audit = audit_by_entry.remove(&id).unwrap_or_default();
        match outcome {
            None => {
                in_flight += 1;
                assert_eq!(
                    (finished_at, audit.len()),
                    (None, 0),
                    "in-flight entry {id}"
                );
            }
            Some(kind) => {
                let attributes: BTreeSet<_> = audit.iter().map(|(a, _, _)| a.clone()).collect();
                assert_eq!(
                    (attributes, audit.len()),
                    (touched.clone(), touched.len()),
                    "audit rows of entry {id}"
                );
                assert!(
                    audit
                        .iter()
                        .all(|(_, k, at)| *k == kind && Some(*at) == finished_at),
                    "audit rows of entry {id} disagree with it"
                );
            }
        }
    }
    assert!(audit_by_entry.is_empty(), "audit rows without an entry");
    assert_eq!(
        in_flight,
        i64::try_from(store.in_flight().unwrap().len()).unwrap()
    );
    Summary { entries, in_flight }
}

/// The child's entry point when re-executed; run directly, a bounded in-process run checked the
/// same way.
#[test]
fn journal_writer_loop() {
    if let Some(path) = std::env::var_os(CHILD_DB_ENV) {
        run_writer(Path::new(&path), None);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    run_writer(&path, Some(5));
    run_writer(&path, Some(3));
    let summary = check_consistency(&path);
    assert_eq!(summary.entries, i64::try_from(8 * INTENT_BATCH).unwrap());
    assert_eq!(summary.in_flight, 0);
}

#[test]
fn kill_9_at_random_points_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let seed: u64 = rand::random();
    println!("kill points seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    let (mut killed_with_in_flight, mut last_entries) = (0, 0);
    for round in 0..10 {
        let stderr =
            std::fs::File::create(dir.path().join(format!("child-{round}.stderr"))).unwrap();
        let mut child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_DB_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        // Kill only once the child is writing, then at a random instant within its work.
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.path().join(format!("child-{round}.stderr")))
                    .unwrap();
                panic!("writer exited by itself ({status}) in round {round}: {log}");
            }
            if journal_rows(&path) > last_entries {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "writer made no progress in round {round}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..60_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let summary = check_consistency(&path);
        assert!(summary.entries > last_entries);
        last_entries = summary.entries;
        if summary.in_flight > 0 {
            killed_with_in_flight += 1;
        }
        println!(
            "round {round}: {} journal entries, {} in flight at the kill",
            summary.entries, summary.in_flight
        );
    }
    println!("{killed_with_in_flight} of 10 kills left writes in flight");
    // A last clean run resolves whatever the final kill left in flight.
    run_writer(&path, Some(1));
    assert_eq!(check_consistency(&path).in_flight, 0);
}

fn journal_rows(path: &Path) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("SELECT count(*) FROM journal", [], |row| row.get(0))
        .unwrap_or(0)
}

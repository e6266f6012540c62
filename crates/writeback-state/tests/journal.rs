//! Journal: intent → outcome, and the audit rows and last written values read from it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{ad_values, change_mail, guid, strings, TempStore};
use writeback_core::{ManagedAttribute, Modification};
use writeback_state::{
    AuditQuery, CycleId, Join, JournalId, MatchedBy, Outcome, SqliteStore, StateError, StateStore,
    WriteIntent,
};

const DN: &str = "CN=Alice,OU=Staff,DC=corp,DC=test";

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

/// Last written values are those written to the mailbox's joined object.
fn join(t: &TempStore, cloud_id: &str, object_guid: [u8; 16]) {
    t.store
        .upsert_join(&Join {
            cloud_id: cloud_id.into(),
            object_guid,
            dn: DN.into(),
            matched_by: MatchedBy::ImmutableId,
            verified_at: 0,
        })
        .unwrap();
}

#[test]
fn an_applied_write_leaves_a_finished_entry_one_audit_row_per_attribute_and_last_written_values() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(1_000).unwrap();
    let before = ad_values(&[
        (ManagedAttribute::Mail, &["alice@old.test"]),
        (
            ManagedAttribute::ProxyAddresses,
            &["SMTP:alice@old.test", "smtp:a@old.test"],
        ),
        (ManagedAttribute::ExtensionAttribute1, &["untouched"]),
    ]);
    let mut mods = change_mail("alice@old.test", "alice@new.test");
    mods.push(Modification::delete(
        ManagedAttribute::ProxyAddresses,
        strings(&["SMTP:alice@old.test"]),
    ));
    mods.push(Modification::add(
        ManagedAttribute::ProxyAddresses,
        strings(&["SMTP:alice@new.test", "smtp:alice@old.test"]),
    ));
    let intent = WriteIntent {
        cycle,
        cloud_id: "cloud-alice",
        object_guid: guid(1),
        dn: DN,
        mods: &mods,
        before: &before,
    };

    let id = t.store.record_intent(&intent, 1_010).unwrap();
    // Durable before the write: a second connection already sees the intent, in flight.
    assert_eq!(
        count(
            &t.raw(),
            "SELECT count(*) FROM journal WHERE outcome IS NULL"
        ),
        1
    );
    let in_flight = t.store.in_flight().unwrap();
    assert_eq!(in_flight.len(), 1);
    // The journal keeps the values before of what the write touches, not the whole object.
    let touched_before = ad_values(&[
        (ManagedAttribute::Mail, &["alice@old.test"]),
        (
            ManagedAttribute::ProxyAddresses,
            &["SMTP:alice@old.test", "smtp:a@old.test"],
        ),
    ]);
    assert_eq!(
        (in_flight[0].id, &in_flight[0].mods, &in_flight[0].before),
        (id, &mods, &touched_before)
    );
    assert_eq!(
        (
            in_flight[0].object_guid,
            in_flight[0].recorded_at,
            in_flight[0].outcome.clone()
        ),
        (guid(1), 1_010, None)
    );

    t.store
        .record_outcome(id, &Outcome::Applied, 1_020)
        .unwrap();
    assert!(t.store.in_flight().unwrap().is_empty());
    let entry = t.store.journal_entry(id).unwrap().unwrap();
    assert_eq!(
        (entry.outcome, entry.finished_at),
        (Some(Outcome::Applied), Some(1_020))
    );

    let audit = t.store.query_audit(&AuditQuery::default()).unwrap();
    assert_eq!(
        audit.len(),
        2,
        "one row per attribute changed, extensionAttribute1 untouched: {audit:?}"
    );
    let mail = &audit[0];
    assert_eq!(
        (
            mail.at,
            mail.cycle,
            mail.journal_id,
            mail.cloud_id.as_str(),
            mail.dn.as_str()
        ),
        (1_020, cycle, Some(id), "cloud-alice", DN)
    );
    assert_eq!(
        (mail.attribute.as_str(), &mail.before, &mail.after),
        (
            "mail",
            &strings(&["alice@old.test"]),
            &strings(&["alice@new.test"])
        )
    );
    assert_eq!(mail.outcome, Outcome::Applied);
    let proxies = &audit[1];
    assert_eq!(proxies.attribute, "proxyAddresses");
    assert_eq!(proxies.before, ["SMTP:alice@old.test", "smtp:a@old.test"]);
    assert_eq!(
        proxies.after,
        [
            "smtp:a@old.test",
            "SMTP:alice@new.test",
            "smtp:alice@old.test"
        ]
    );

    assert!(
        t.store.last_written("cloud-alice").unwrap().is_empty(),
        "no join, nothing written through it"
    );
    join(&t, "cloud-alice", guid(1));
    let written = t.store.last_written("cloud-alice").unwrap();
    let summary: Vec<(ManagedAttribute, Vec<String>, i64, JournalId)> = written
        .into_iter()
        .map(|w| (w.attribute, w.values, w.written_at, w.journal_id))
        .collect();
    assert_eq!(
        summary,
        [
            (
                ManagedAttribute::Mail,
                strings(&["alice@new.test"]),
                1_020,
                id
            ),
            (
                ManagedAttribute::ProxyAddresses,
                proxies.after.clone(),
                1_020,
                id
            ),
        ]
    );
}

#[test]
fn refused_and_unknown_outcomes_are_audited_but_do_not_count_as_written() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let before = ad_values(&[(ManagedAttribute::Mail, &["m@old.test"])]);
    let mods = change_mail("m@old.test", "m@new.test");
    let intents: Vec<WriteIntent> = ["c-conflict", "c-failed", "c-unknown"]
        .iter()
        .enumerate()
        .map(|(i, cloud_id)| WriteIntent {
            cycle,
            cloud_id,
            object_guid: guid(u32::try_from(i).unwrap()),
            dn: DN,
            mods: &mods,
            before: &before,
        })
        .collect();
    let ids = t.store.record_intents(&intents, 5).unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let failed = Outcome::Failed {
        code: 53,
        message: "unwillingToPerform: protected object".into(),
    };
    t.store
        .record_outcomes(
            &[
                (ids[0], Outcome::Conflict),
                (ids[1], failed.clone()),
                (ids[2], Outcome::Unknown),
            ],
            6,
        )
        .unwrap();
    let audit = t.store.query_audit(&AuditQuery::default()).unwrap();
    let outcomes: Vec<(&str, Outcome, Vec<String>)> = audit
        .iter()
        .map(|a| (a.cloud_id.as_str(), a.outcome.clone(), a.after.clone()))
        .collect();
    let intended = strings(&["m@new.test"]);
    assert_eq!(
        outcomes,
        [
            ("c-conflict", Outcome::Conflict, intended.clone()),
            ("c-failed", failed, intended.clone()),
            ("c-unknown", Outcome::Unknown, intended),
        ]
    );
    for cloud_id in ["c-conflict", "c-failed", "c-unknown"] {
        assert!(
            t.store.last_written(cloud_id).unwrap().is_empty(),
            "{cloud_id}"
        );
    }
}

#[test]
fn a_batch_with_a_bad_outcome_records_nothing() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let before = ad_values(&[(ManagedAttribute::Mail, &["x@old.test"])]);
    let mods = change_mail("x@old.test", "x@new.test");
    let intent = WriteIntent {
        cycle,
        cloud_id: "c1",
        object_guid: guid(1),
        dn: DN,
        mods: &mods,
        before: &before,
    };
    let ids = t
        .store
        .record_intents(
            &[
                intent,
                WriteIntent {
                    cloud_id: "c2",
                    ..intent
                },
            ],
            1,
        )
        .unwrap();

    let unknown = t.store.record_outcomes(
        &[
            (ids[0], Outcome::Applied),
            (JournalId(9_999), Outcome::Applied),
        ],
        2,
    );
    assert!(
        matches!(unknown, Err(StateError::NotFound { .. })),
        "{unknown:?}"
    );
    let twice = t.store.record_outcomes(
        &[(ids[0], Outcome::Applied), (ids[0], Outcome::Conflict)],
        2,
    );
    assert!(
        matches!(twice, Err(StateError::InvalidTransition { .. })),
        "{twice:?}"
    );

    assert_eq!(
        t.store.in_flight().unwrap().len(),
        2,
        "the failed batches must have rolled back"
    );
    join(&t, "c1", guid(1));
    assert!(t
        .store
        .query_audit(&AuditQuery::default())
        .unwrap()
        .is_empty());
    assert!(t.store.last_written("c1").unwrap().is_empty());

    t.store
        .record_outcomes(&[(ids[0], Outcome::Applied), (ids[1], Outcome::Applied)], 3)
        .unwrap();
    let again = t
        .store
        .record_outcome(ids[1], &Outcome::Conflict, 4)
        .unwrap_err();
    assert!(again.to_string().contains("already recorded"), "{again}");
    assert_eq!(
        t.store.query_audit(&AuditQuery::default()).unwrap().len(),
        2
    );
}

#[test]
fn an_intent_for_a_cycle_that_was_never_begun_is_refused() {
    let t = TempStore::new();
    let before = ad_values(&[]);
    let mods = change_mail("a", "b");
    let intent = WriteIntent {
        cycle: CycleId(42),
        cloud_id: "c",
        object_guid: guid(1),
        dn: DN,
        mods: &mods,
        before: &before,
    };
    let err = t.store.record_intent(&intent, 1).unwrap_err();
    assert!(matches!(err, StateError::Database(_)), "{err:?}");
    assert!(t.store.in_flight().unwrap().is_empty());
}

#[test]
fn intents_without_outcomes_survive_dropping_the_store_and_reopening() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let before = ad_values(&[(ManagedAttribute::Mail, &["a@old.test"])]);
    let mods = change_mail("a@old.test", "a@new.test");
    let intents: Vec<WriteIntent> = (0..5)
        .map(|n| WriteIntent {
            cycle,
            cloud_id: "c",
            object_guid: guid(n),
            dn: DN,
            mods: &mods,
            before: &before,
        })
        .collect();
    let ids = t.store.record_intents(&intents, 10).unwrap();
    t.store
        .record_outcomes(
            &[(ids[1], Outcome::Applied), (ids[3], Outcome::Conflict)],
            11,
        )
        .unwrap();
    let path = t.path();
    drop(t.store);

    let reopened = SqliteStore::open(&path).unwrap();
    let in_flight = reopened.in_flight().unwrap();
    assert_eq!(
        in_flight.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[0], ids[2], ids[4]]
    );
    assert!(in_flight
        .iter()
        .all(|e| e.mods == mods && e.before == before && e.cycle == cycle && e.dn == DN));
    assert_eq!(
        in_flight.iter().map(|e| e.object_guid).collect::<Vec<_>>(),
        [guid(0), guid(2), guid(4)]
    );
    // The restarted engine resolves them.
    let resolved: Vec<(JournalId, Outcome)> =
        in_flight.iter().map(|e| (e.id, Outcome::Unknown)).collect();
    reopened.record_outcomes(&resolved, 20).unwrap();
    assert!(reopened.in_flight().unwrap().is_empty());
}

#[test]
fn an_older_write_resolved_late_does_not_replace_a_newer_last_written_value() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let old_mods = change_mail("v0@x.test", "v1@x.test");
    let new_mods = change_mail("v1@x.test", "v2@x.test");
    let before_old = ad_values(&[(ManagedAttribute::Mail, &["v0@x.test"])]);
    let before_new = ad_values(&[(ManagedAttribute::Mail, &["v1@x.test"])]);
    let base = WriteIntent {
        cycle,
        cloud_id: "c",
        object_guid: guid(1),
        dn: DN,
        mods: &old_mods,
        before: &before_old,
    };
    let older = t.store.record_intent(&base, 1).unwrap();
    let newer = t
        .store
        .record_intent(
            &WriteIntent {
                mods: &new_mods,
                before: &before_new,
                ..base
            },
            2,
        )
        .unwrap();
    t.store.record_outcome(newer, &Outcome::Applied, 3).unwrap();
    t.store.record_outcome(older, &Outcome::Applied, 4).unwrap();
    join(&t, "c", guid(1));
    let written = t.store.last_written("c").unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(
        (written[0].values.clone(), written[0].journal_id),
        (strings(&["v2@x.test"]), newer)
    );
}

#[test]
fn a_write_that_clears_an_attribute_records_an_empty_value_list() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let before = ad_values(&[(ManagedAttribute::ExtensionAttribute5, &["cost-centre-7"])]);
    let mods = [Modification::delete(
        ManagedAttribute::ExtensionAttribute5,
        strings(&["cost-centre-7"]),
    )];
    let intent = WriteIntent {
        cycle,
        cloud_id: "c",
        object_guid: guid(1),
        dn: DN,
        mods: &mods,
        before: &before,
    };
    let id = t.store.record_intent(&intent, 1).unwrap();
    t.store.record_outcome(id, &Outcome::Applied, 2).unwrap();
    join(&t, "c", guid(1));
    let written = t.store.last_written("c").unwrap();
    assert_eq!(
        (written[0].attribute, written[0].values.is_empty()),
        (ManagedAttribute::ExtensionAttribute5, true)
    );
    let audit = t.store.query_audit(&AuditQuery::default()).unwrap();
    assert_eq!(
        (audit[0].before.clone(), audit[0].after.is_empty()),
        (strings(&["cost-centre-7"]), true)
    );
}

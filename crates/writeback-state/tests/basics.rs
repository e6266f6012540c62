//! Watermarks, cycles, joins and last written values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{change_mail, guid, TempStore};
use serde_json::json;
use writeback_core::ManagedAttribute;
use writeback_state::{Join, MatchedBy, Outcome, StateError, StateStore, WriteIntent};

#[test]
fn watermarks_are_set_together_read_and_removed() {
    let t = TempStore::new();
    assert_eq!(t.store.watermark("graph.delta_link").unwrap(), None);
    t.store
        .set_watermarks(&[("graph.delta_link", "d1"), ("graph.next_link", "n1")], 10)
        .unwrap();
    t.store.set_watermark("graph.next_link", "n2", 11).unwrap();
    assert_eq!(
        t.store.watermark("graph.delta_link").unwrap().as_deref(),
        Some("d1")
    );
    assert_eq!(
        t.store.watermark("graph.next_link").unwrap().as_deref(),
        Some("n2")
    );
    assert!(t.store.remove_watermark("graph.next_link").unwrap());
    assert!(!t.store.remove_watermark("graph.next_link").unwrap());
    assert_eq!(t.store.watermark("graph.next_link").unwrap(), None);
    let updated: i64 = t
        .raw()
        .query_row(
            "SELECT updated_at FROM watermarks WHERE name = 'graph.delta_link'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(updated, 10);
}

#[test]
fn cycles_begin_finish_once_and_the_last_one_is_reported() {
    let t = TempStore::new();
    assert_eq!(t.store.last_cycle().unwrap(), None);
    let first = t.store.begin_cycle(100).unwrap();
    t.store
        .finish_cycle(first, 150, &json!({"written": 3}))
        .unwrap();
    let second = t.store.begin_cycle(200).unwrap();
    assert!(second > first);
    let last = t.store.last_cycle().unwrap().unwrap();
    assert_eq!(
        (last.id, last.started_at, last.finished_at, last.summary),
        (second, 200, None, None)
    );
    t.store
        .finish_cycle(second, 260, &json!({"written": 0, "held": true}))
        .unwrap();
    let last = t.store.last_cycle().unwrap().unwrap();
    assert_eq!(last.finished_at, Some(260));
    assert_eq!(last.summary, Some(json!({"written": 0, "held": true})));
    let again = t.store.finish_cycle(second, 300, &json!({})).unwrap_err();
    assert!(
        matches!(again, StateError::InvalidTransition { .. }),
        "{again:?}"
    );
    let missing = t
        .store
        .finish_cycle(writeback_state::CycleId(999), 300, &json!({}))
        .unwrap_err();
    assert!(
        matches!(missing, StateError::NotFound { .. }),
        "{missing:?}"
    );
}

fn join(cloud_id: &str, n: u32, dn: &str) -> Join {
    Join {
        cloud_id: cloud_id.into(),
        object_guid: guid(n),
        dn: dn.into(),
        matched_by: MatchedBy::ImmutableId,
        verified_at: 1_000,
    }
}

#[test]
fn joins_are_upserted_found_by_either_side_counted_and_removed() {
    let t = TempStore::new();
    assert_eq!(t.store.join_count().unwrap(), 0);
    let alice = join("cloud-alice", 1, "CN=Alice,OU=Staff,DC=corp,DC=test");
    t.store.upsert_join(&alice).unwrap();
    t.store
        .upsert_join(&join("cloud-bob", 2, "CN=Bob,OU=Staff,DC=corp,DC=test"))
        .unwrap();
    assert_eq!(t.store.join("cloud-alice").unwrap(), Some(alice.clone()));
    assert_eq!(
        t.store
            .join_by_guid(&guid(2))
            .unwrap()
            .map(|j| j.cloud_id)
            .as_deref(),
        Some("cloud-bob")
    );
    assert_eq!(t.store.join_by_guid(&guid(3)).unwrap(), None);
    assert_eq!(t.store.join_count().unwrap(), 2);

    // The object moved: the join is re-verified with its new DN.
    let moved = Join {
        dn: "CN=Alice,OU=Leavers,DC=corp,DC=test".into(),
        matched_by: MatchedBy::Sid,
        verified_at: 2_000,
        ..alice
    };
    t.store.upsert_join(&moved).unwrap();
    assert_eq!(t.store.join("cloud-alice").unwrap(), Some(moved));
    assert_eq!(t.store.join_count().unwrap(), 2);

    assert!(t.store.remove_join("cloud-bob").unwrap());
    assert!(!t.store.remove_join("cloud-bob").unwrap());
    assert_eq!(t.store.join("cloud-bob").unwrap(), None);
    assert_eq!(t.store.join_count().unwrap(), 1);
}

#[test]
fn one_ad_object_cannot_be_joined_to_two_mailboxes() {
    let t = TempStore::new();
    t.store
        .upsert_join(&join("cloud-alice", 1, "CN=Alice,DC=corp,DC=test"))
        .unwrap();
    let err = t
        .store
        .upsert_join(&join("cloud-mallory", 1, "CN=Alice,DC=corp,DC=test"))
        .unwrap_err();
    match err {
        StateError::GuidAlreadyJoined {
            other_cloud_id,
            cloud_id,
            guid,
        } => {
            assert_eq!(
                (other_cloud_id.as_str(), cloud_id.as_str()),
                ("cloud-alice", "cloud-mallory")
            );
            assert_eq!(guid, writeback_state::guid_to_string(&common::guid(1)));
        }
        other => panic!("expected GuidAlreadyJoined, got {other:?}"),
    }
    assert_eq!(t.store.join("cloud-mallory").unwrap(), None);
}

fn write_mail(t: &TempStore, cloud_id: &str, n: u32, old: &str, new: &str, now: i64) {
    let cycle = t.store.begin_cycle(now).unwrap();
    let mods = change_mail(old, new);
    let before = common::ad_values(&[(ManagedAttribute::Mail, &[old])]);
    let intent = WriteIntent {
        cycle,
        cloud_id,
        object_guid: guid(n),
        dn: "CN=X,DC=corp,DC=test",
        mods: &mods,
        before: &before,
    };
    let id = t.store.record_intent(&intent, now).unwrap();
    t.store
        .record_outcome(id, &Outcome::Applied, now + 1)
        .unwrap();
}

#[test]
fn last_written_values_are_forgotten_when_the_join_points_elsewhere_or_goes() {
    let t = TempStore::new();
    t.store
        .upsert_join(&join("cloud-alice", 1, "CN=Alice,DC=corp,DC=test"))
        .unwrap();
    write_mail(&t, "cloud-alice", 1, "a@old.test", "a@new.test", 10);
    assert_eq!(t.store.last_written("cloud-alice").unwrap().len(), 1);

    // Same object, new DN: what was written there still holds.
    t.store
        .upsert_join(&join("cloud-alice", 1, "CN=Alice B,DC=corp,DC=test"))
        .unwrap();
    assert_eq!(
        t.store.last_written("cloud-alice").unwrap()[0].values,
        ["a@new.test"]
    );

    // Re-matched to another object: the old object's values say nothing about it.
    t.store
        .upsert_join(&join("cloud-alice", 9, "CN=Alice,DC=corp,DC=test"))
        .unwrap();
    assert!(t.store.last_written("cloud-alice").unwrap().is_empty());

    write_mail(&t, "cloud-alice", 9, "a@old.test", "a@newer.test", 20);
    assert_eq!(t.store.last_written("cloud-alice").unwrap().len(), 1);
    t.store.remove_join("cloud-alice").unwrap();
    assert!(t.store.last_written("cloud-alice").unwrap().is_empty());
}

#[test]
fn the_store_is_shared_across_threads_as_a_trait_object() {
    let t = TempStore::new();
    let path = t.path();
    drop(t.store);
    let store: std::sync::Arc<dyn StateStore> =
        std::sync::Arc::new(writeback_state::SqliteStore::open(&path).unwrap());
    let policy = writeback_state::RetryPolicy::default();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for n in 0..50 {
                    store
                        .record_failure(&format!("w{w}-m{n}"), "busy", &policy, n)
                        .unwrap();
                    store
                        .set_watermark(&format!("worker.{w}"), &n.to_string(), n)
                        .unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(store.failures().unwrap().len(), 200);
    for w in 0..4 {
        assert_eq!(
            store.watermark(&format!("worker.{w}")).unwrap().as_deref(),
            Some("49")
        );
    }
}

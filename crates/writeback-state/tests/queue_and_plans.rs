//! Error queue (backoff, quarantine) and held plans (safety brakes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::TempStore;
use serde_json::json;
use writeback_state::{FailureState, PlanId, PlanStatus, RetryPolicy, StateError, StateStore};

const POLICY: RetryPolicy = RetryPolicy {
    base_delay_ms: 1_000,
    max_delay_ms: 5_000,
    quarantine_after: 5,
};

#[test]
fn failures_back_off_exponentially_up_to_the_cap_then_quarantine() {
    let t = TempStore::new();
    let mut now = 10_000;
    let mut schedule = Vec::new();
    for attempt in 1..=5 {
        let state = t
            .store
            .record_failure(
                "cloud-x",
                &format!("LDAP 51 busy, try {attempt}"),
                &POLICY,
                now,
            )
            .unwrap();
        schedule.push(state);
        now = state.next_attempt_at.unwrap_or(now) + 7;
    }
    let expected = [
        FailureState {
            attempts: 1,
            next_attempt_at: Some(11_000),
            quarantined: false,
        },
        FailureState {
            attempts: 2,
            next_attempt_at: Some(11_007 + 2_000),
            quarantined: false,
        },
        FailureState {
            attempts: 3,
            next_attempt_at: Some(13_014 + 4_000),
            quarantined: false,
        },
        FailureState {
            attempts: 4,
            next_attempt_at: Some(17_021 + 5_000),
            quarantined: false,
        },
        FailureState {
            attempts: 5,
            next_attempt_at: None,
            quarantined: true,
        },
    ];
    assert_eq!(schedule, expected);

    let record = t.store.failure("cloud-x").unwrap().unwrap();
    assert_eq!(
        (
            record.attempts,
            record.first_failed_at,
            record.last_failed_at
        ),
        (5, 10_000, 22_028)
    );
    assert_eq!(record.last_error, "LDAP 51 busy, try 5");
    assert!(record.quarantined);
    assert!(
        t.store.due_retries(i64::MAX).unwrap().is_empty(),
        "quarantined mailboxes are never due"
    );
}

#[test]
fn due_retries_lists_only_mailboxes_whose_time_has_come_earliest_first() {
    let t = TempStore::new();
    t.store.record_failure("late", "e", &POLICY, 5_000).unwrap(); // due 6_000
    t.store
        .record_failure("early", "e", &POLICY, 1_000)
        .unwrap(); // due 2_000
    t.store.record_failure("twice", "e", &POLICY, 0).unwrap();
    t.store
        .record_failure("twice", "e", &POLICY, 1_000)
        .unwrap(); // due 3_000
    assert!(t.store.due_retries(1_999).unwrap().is_empty());
    assert_eq!(t.store.due_retries(2_000).unwrap(), ["early"]);
    assert_eq!(
        t.store.due_retries(6_000).unwrap(),
        ["early", "twice", "late"]
    );

    t.store.clear_failure("early").unwrap();
    t.store.clear_failure("never-failed").unwrap();
    assert_eq!(t.store.due_retries(6_000).unwrap(), ["twice", "late"]);
    assert_eq!(t.store.failure("early").unwrap(), None);
    let all: Vec<(String, u32)> = t
        .store
        .failures()
        .unwrap()
        .into_iter()
        .map(|f| (f.cloud_id, f.attempts))
        .collect();
    assert_eq!(all, [("late".to_string(), 1), ("twice".to_string(), 2)]);
}

#[test]
fn clear_failures_removes_a_batch_and_ignores_unknown_ids() {
    let t = TempStore::new();
    for id in ["a", "b", "c"] {
        t.store.record_failure(id, "e", &POLICY, 0).unwrap();
    }
    t.store.clear_failures(&[]).unwrap();
    t.store.clear_failures(&["a", "c", "never-failed"]).unwrap();
    let left: Vec<String> = t
        .store
        .failures()
        .unwrap()
        .into_iter()
        .map(|f| f.cloud_id)
        .collect();
    assert_eq!(left, ["b"]);
}

#[test]
fn releasing_a_quarantine_resets_the_count_and_makes_the_mailbox_due() {
    let t = TempStore::new();
    let policy = RetryPolicy {
        quarantine_after: 2,
        ..POLICY
    };
    t.store
        .record_failure("q", "bad value", &policy, 0)
        .unwrap();
    t.store
        .record_failure("ok", "transient", &policy, 0)
        .unwrap();
    assert!(
        t.store
            .record_failure("q", "bad value", &policy, 10)
            .unwrap()
            .quarantined
    );

    let not_quarantined = t.store.release_quarantine("ok", 50).unwrap_err();
    assert!(
        matches!(not_quarantined, StateError::NotFound { .. }),
        "{not_quarantined:?}"
    );
    assert!(t.store.release_quarantine("nobody", 50).is_err());

    t.store.release_quarantine("q", 100).unwrap();
    let released = t.store.failure("q").unwrap().unwrap();
    assert_eq!(
        (
            released.attempts,
            released.quarantined,
            released.next_attempt_at
        ),
        (0, false, Some(100))
    );
    assert_eq!(
        released.last_error, "bad value",
        "the last error stays visible until the mailbox succeeds"
    );
    assert!(t.store.due_retries(100).unwrap().contains(&"q".to_string()));
    // It gets the full number of attempts again.
    let state = t
        .store
        .record_failure("q", "bad value", &policy, 200)
        .unwrap();
    assert_eq!(
        (state.attempts, state.quarantined, state.next_attempt_at),
        (1, false, Some(1_200))
    );
}

#[test]
fn held_plans_are_approved_or_discarded_once_and_applied_only_when_approved() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let plan = json!({"writes": [{"cloud_id": "c1", "mods": [{"attribute": "mail", "op": "add", "values": ["a@x"]}]}]});
    let first = t
        .store
        .hold_plan(cycle, "412 deletions exceed the limit of 100", &plan, 10)
        .unwrap();
    let second = t
        .store
        .hold_plan(
            cycle,
            "30% of mailboxes changed",
            &json!({"writes": []}),
            11,
        )
        .unwrap();

    let held = t.store.held_plans().unwrap();
    assert_eq!(
        held.iter().map(|p| (p.id, p.status)).collect::<Vec<_>>(),
        [(first, PlanStatus::Pending), (second, PlanStatus::Pending)]
    );
    assert_eq!(
        (
            held[0].cycle,
            held[0].reason.as_str(),
            &held[0].plan,
            held[0].held_at
        ),
        (cycle, "412 deletions exceed the limit of 100", &plan, 10)
    );

    t.store.approve_plan(first, 20).unwrap();
    let approved = t.store.held_plan(first).unwrap().unwrap();
    assert_eq!(
        (approved.status, approved.decided_at),
        (PlanStatus::Approved, Some(20))
    );
    assert!(matches!(
        t.store.approve_plan(first, 21),
        Err(StateError::InvalidTransition { .. })
    ));
    t.store.mark_plan_applied(first, 30).unwrap();
    assert_eq!(
        t.store.held_plan(first).unwrap().unwrap().status,
        PlanStatus::Applied
    );
    assert!(matches!(
        t.store.discard_plan(first, 31),
        Err(StateError::InvalidTransition { .. })
    ));

    assert!(matches!(
        t.store.mark_plan_applied(second, 40),
        Err(StateError::InvalidTransition { .. })
    ));
    t.store.discard_plan(second, 41).unwrap();
    let discarded = t.store.held_plan(second).unwrap().unwrap();
    assert_eq!(
        (discarded.status, discarded.decided_at),
        (PlanStatus::Discarded, Some(41))
    );
    let err = t.store.approve_plan(second, 42).unwrap_err();
    assert!(
        err.to_string()
            .contains("is discarded, cannot become approved"),
        "{err}"
    );

    assert!(matches!(
        t.store.approve_plan(PlanId(99), 50),
        Err(StateError::NotFound { .. })
    ));
    assert_eq!(t.store.held_plan(PlanId(99)).unwrap(), None);
}

#[test]
fn an_approved_plan_can_still_be_discarded_before_it_is_applied() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let id = t.store.hold_plan(cycle, "too many", &json!([]), 1).unwrap();
    t.store.approve_plan(id, 2).unwrap();
    t.store.discard_plan(id, 3).unwrap();
    assert_eq!(
        t.store.held_plan(id).unwrap().unwrap().status,
        PlanStatus::Discarded
    );
}

#[test]
fn the_synced_version_is_kept_per_mailbox_and_forgotten_with_its_join() {
    use writeback_state::{Join, MatchedBy};
    let t = TempStore::new();
    let join = |cloud_id: &str, guid: u8| Join {
        cloud_id: cloud_id.into(),
        object_guid: [guid; 16],
        dn: "CN=A,DC=x".into(),
        matched_by: MatchedBy::Sid,
        verified_at: 1,
    };
    assert_eq!(t.store.synced_version("m1").unwrap(), None);
    t.store.record_synced(&[]).unwrap();
    // Without a join there is no object to be in sync with: nothing is kept.
    t.store
        .record_synced(&[("m1", "2026-11-27T09:00:00Z")])
        .unwrap();
    assert_eq!(t.store.synced_version("m1").unwrap(), None);

    t.store.upsert_join(&join("m1", 1)).unwrap();
    t.store.upsert_join(&join("m2", 3)).unwrap();
    assert_eq!(
        t.store.synced_version("m1").unwrap(),
        None,
        "a new join starts out of sync"
    );
    t.store
        .record_synced(&[
            ("m1", "2026-11-27T10:00:00Z"),
            ("m2", "2026-11-27T10:00:01Z"),
        ])
        .unwrap();
    t.store
        .record_synced(&[("m1", "2026-11-27T11:00:00Z")])
        .unwrap();
    assert_eq!(
        t.store.synced_version("m1").unwrap().as_deref(),
        Some("2026-11-27T11:00:00Z")
    );
    assert_eq!(
        t.store.synced_version("m2").unwrap().as_deref(),
        Some("2026-11-27T10:00:01Z")
    );
    let states = t
        .store
        .mailbox_states(&[("m1", "m1"), ("m3", "m3")])
        .unwrap();
    assert_eq!(
        (
            states[0].join.as_ref().map(|j| j.object_guid),
            states[0].synced.as_deref()
        ),
        (Some([1; 16]), Some("2026-11-27T11:00:00Z"))
    );
    assert_eq!(
        (states[1].join.as_ref(), states[1].synced.as_deref()),
        (None, None)
    );

    t.store.upsert_join(&join("m1", 1)).unwrap();
    assert!(
        t.store.synced_version("m1").unwrap().is_some(),
        "the same object: still in sync"
    );
    t.store.upsert_join(&join("m1", 2)).unwrap();
    assert_eq!(
        t.store.synced_version("m1").unwrap(),
        None,
        "joined to another object: forgotten"
    );
    t.store.remove_join("m2").unwrap();
    assert_eq!(
        t.store.synced_version("m2").unwrap(),
        None,
        "join removed: forgotten"
    );
    t.store.upsert_join(&join("m2", 3)).unwrap();
    assert_eq!(
        t.store.synced_version("m2").unwrap(),
        None,
        "and not back with a new join"
    );
}

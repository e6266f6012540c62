//! Full passes that write while they plan: when no brake can trip for the scope, and only then.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cycle, World};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use writeback_core::ManagedAttribute;
use writeback_engine::report::ObjectReport;
use writeback_engine::{Brakes, CycleOptions, EngineSection, Shutdown};
use writeback_state::{AuditQuery, StateStore};

/// Limits no cycle of a dozen users can cross (what an operator sets for a reviewed import).
fn raised_brakes() -> Brakes {
    Brakes {
        max_objects_changed: 100_000,
        max_objects_changed_share: 1.0,
        max_values_cleared: 100_000,
        max_values_cleared_share: 1000.0,
        share_min_objects: 50,
    }
}

/// A world of `count` cloud-managed mailboxes, each with a change to write, read two to an
/// Exchange page whose every page answers 300 ms late: planning the pass takes seconds, and
/// writes made while it plans show up between its pages' reports.
async fn slow_world(name: &str, count: usize) -> World {
    let mut world = World::new(name, count).await;
    world.exchange_page_size = Some(2);
    for (i, smtp) in world.cloud_ids.keys().enumerate() {
        world.make_cloud_managed(smtp).await;
        world.set_mailbox(smtp, json!({"CustomAttribute7": format!("value {i}")})).await;
    }
    let pages = count.div_ceil(2) + 1;
    world.control("POST", "faults", json!([{"path_prefix": "/adminapi/", "fault": "slow", "delay_ms": 300, "count": pages}])).await;
    world
}

/// Where the first write's report and the last plan's report came, in the order the sink saw them.
fn first_applied_and_last_planned(reports: &[ObjectReport]) -> (usize, usize) {
    let first_applied = reports.iter().position(|r| r.status == "applied").expect("something applied");
    let last_planned = reports.iter().rposition(|r| r.status == "planned").expect("something planned");
    (first_applied, last_planned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_that_cannot_cross_a_brake_is_written_while_the_pass_is_still_planning() {
    let world = slow_world("stream", 12).await;
    let engine = world.engine(EngineSection::default(), raised_brakes()).await;
    let (summary, reports) = cycle(&engine, true).await;
    assert_eq!((summary.planned, summary.streamed, summary.applied, summary.failed), (12, 12, 12, 0), "{summary:?}");
    let (first_applied, last_planned) = first_applied_and_last_planned(&reports);
    assert!(first_applied < last_planned, "a write landed before the last page was planned: {first_applied} < {last_planned}");
    assert!(summary.watermark_advanced && summary.complete, "{summary:?}");
    assert!(world.differences().await.is_empty());
    // Every mailbox written once (one journal entry), recorded as applied.
    let audit = engine.store().query_audit(&AuditQuery::default()).unwrap();
    let mut entries: BTreeMap<&str, BTreeSet<Option<i64>>> = BTreeMap::new();
    for row in &audit {
        assert_eq!(row.outcome.kind(), "applied", "{row:?}");
        entries.entry(row.cloud_id.as_str()).or_default().insert(row.journal_id.map(|id| id.0));
    }
    assert_eq!(entries.len(), 12, "{audit:?}");
    assert!(entries.values().all(|ids| ids.len() == 1), "{entries:?}");
    // Nothing left to do, and nothing staged behind.
    let (again, _) = cycle(&engine, true).await;
    assert_eq!((again.planned, again.in_sync, again.streamed), (0, 12, 0), "{again:?}");
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_that_could_cross_a_brake_is_planned_whole_before_anything_is_written() {
    let world = slow_world("nostream", 12).await;
    // The dozen users hold more than 20 managed values: clearing them all would cross
    // max_values_cleared, so the pass cannot prove it stays within (it clears none, and
    // passes the brakes once planned).
    let brakes = Brakes { max_values_cleared: 20, ..Brakes::default() };
    let engine = world.engine(EngineSection::default(), brakes).await;
    let (summary, reports) = cycle(&engine, true).await;
    assert_eq!((summary.planned, summary.streamed, summary.applied), (12, 0, 12), "{summary:?}");
    let (first_applied, last_planned) = first_applied_and_last_planned(&reports);
    assert!(first_applied > last_planned, "nothing written before the whole plan passed the brakes");
    assert!(world.differences().await.is_empty());
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_only_the_live_matcher_can_decide_is_staged_and_written_after_the_brakes() {
    let world = slow_world("deferred", 12).await;
    // Renamed after Graph read its anchors: its onPremisesDistinguishedName no longer names
    // the object whose objectGUID is its immutable id, so the snapshot leaves the first
    // match to the live matcher.
    let (smtp, dn) = world.users.iter().next().map(|(s, d)| (s.clone(), d.clone())).unwrap();
    let renamed = world.ou.rename(&dn, "CN=Renamed Meanwhile", None).await.unwrap();
    let engine = world.engine(EngineSection::default(), raised_brakes()).await;
    let (summary, reports) = cycle(&engine, true).await;
    assert_eq!((summary.planned, summary.streamed, summary.applied), (12, 11, 12), "{summary:?}");
    let cloud_id = &world.cloud_ids[&smtp];
    let last_applied = reports.iter().rposition(|r| r.status == "applied").unwrap();
    assert_eq!(&reports[last_applied].cloud_id, cloud_id, "the staged write goes last, after the brakes");
    assert_eq!(reports[last_applied].dn.as_deref().map(str::to_lowercase), Some(renamed.to_lowercase()));
    let user = world.ad().await.read(&renamed).await.unwrap().unwrap();
    assert_eq!(user.values.get(ManagedAttribute::ExtensionAttribute7), ["value 0"], "the first mailbox's change");
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_writing_and_planning_ends_the_cycle_cleanly_and_loses_nothing() {
    let world = slow_world("stopped", 12).await;
    let engine = world.engine(EngineSection::default(), raised_brakes()).await;
    // Asked to stop as the first write leaves: the writes already sent finish, the planner
    // stops at its page, and what it had queued is neither sent nor journalled.
    let shutdown = Shutdown::default();
    let trigger = shutdown.clone();
    engine.set_before_apply_hook(Some(Arc::new(move |_dn: String| {
        trigger.trigger();
        Box::pin(async {})
    })));
    let mut reports = Vec::new();
    let mut sink = |r: &ObjectReport| reports.push(r.clone());
    let options = CycleOptions { full: true, ..CycleOptions::default() };
    let stopped = engine.run_cycle(&options, &mut sink, &shutdown).await.expect("a stop is not an error");
    assert!(!stopped.complete && !stopped.watermark_advanced, "{stopped:?}");
    assert!(stopped.applied >= 1 && stopped.applied < 12 && stopped.failed == 0, "{stopped:?}");
    assert!(engine.store().in_flight().unwrap().is_empty(), "every journalled write settled");
    engine.set_before_apply_hook(None);
    let (rest, _) = cycle(&engine, true).await;
    assert_eq!((rest.applied, rest.in_sync), (12 - stopped.applied, stopped.applied), "{rest:?}");
    assert!(world.differences().await.is_empty());
    world.ou.remove().await.ok();
}

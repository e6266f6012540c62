//! What incremental polls list: the look-back before the watermark, once per watermark.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cycle, cycle_with, World};
use serde_json::json;
use std::time::Duration;
use writeback_engine::{Brakes, CycleOptions, EngineSection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_looks_back_once_per_watermark_not_on_every_poll() {
    let world = World::new("lookback", 3).await;
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    let smtps: Vec<String> = world.cloud_ids.keys().cloned().collect();
    for smtp in &smtps {
        world.make_cloud_managed(smtp).await;
    }
    let (full, _) = cycle(&engine, true).await;
    assert_eq!(full.mailboxes, 3, "{full:?}");
    // Their last change (made cloud-managed) falls out of every window below.
    tokio::time::sleep(Duration::from_secs(7)).await;
    world.set_mailbox(&smtps[0], json!({"CustomAttribute4": "early"})).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    world.set_mailbox(&smtps[1], json!({"CustomAttribute4": "late"})).await;

    // The first incremental cycle is a catch-up; it writes both and moves the watermark to
    // the later change.
    let (catch_up, _) = cycle(&engine, false).await;
    assert_eq!(catch_up.applied, 2, "{catch_up:?}");
    // The first poll after that looks a few seconds back and lists both again (in sync now)...
    let (first, _) = cycle(&engine, false).await;
    assert_eq!((first.pass, first.mailboxes, first.in_sync, first.planned), ("incremental", 2, 2, 0), "{first:?}");
    // ...the next ones start at the watermark's second: only the later change, however many
    // polls pass before anything else changes.
    for _ in 0..2 {
        let (poll, _) = cycle(&engine, false).await;
        assert_eq!((poll.mailboxes, poll.planned), (1, 0), "{poll:?}");
    }
    // A change after the watermark is listed (with the watermark's second) and applied.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    world.set_mailbox(&smtps[2], json!({"CustomAttribute4": "newest"})).await;
    let (moved, _) = cycle(&engine, false).await;
    assert_eq!((moved.mailboxes, moved.applied), (2, 1), "{moved:?}");
    assert!(world.differences().await.is_empty());
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reads_a_catch_up_a_slice_per_cycle_and_new_changes_do_not_wait_for_it() {
    let mut world = World::new("slices", 4).await;
    world.overlap_secs = 120;
    world.exchange_page_size = Some(1);
    let smtps: Vec<String> = world.cloud_ids.keys().cloned().collect();
    for smtp in &smtps {
        world.make_cloud_managed(smtp).await;
    }
    let first_engine = world.engine(EngineSection::default(), Brakes::default()).await;
    cycle(&first_engine, true).await;
    tokio::time::sleep(Duration::from_millis(6500)).await;
    world.set_mailbox(&smtps[0], json!({"CustomAttribute4": "moves the watermark"})).await;
    let (one_shot, _) = cycle(&first_engine, false).await;
    assert_eq!(one_shot.applied, 1, "{one_shot:?}");
    drop(first_engine);

    // A restarted service: its first cycle starts a catch-up, whose window (two minutes back)
    // holds the mailboxes created before the change; its polls list only what changed since.
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    let slices = CycleOptions { catch_up_slice: Some(Duration::ZERO), ..CycleOptions::default() };
    // Never changed after their creation: only the catch-up lists these two.
    let only_caught_up = [&world.cloud_ids[&smtps[1]], &world.cloud_ids[&smtps[2]]];
    let mut caught_up = 0;
    let mut applied = 0;
    for round in 0..6 {
        if round == 1 {
            // A change while the catch-up is under way: this very cycle's poll writes it.
            world.set_mailbox(&smtps[3], json!({"CustomAttribute4": "during the catch-up"})).await;
        }
        let (summary, reports) = cycle_with(&engine, &slices).await;
        assert_eq!(summary.pass, "incremental");
        let from_catch_up = reports.iter().filter(|r| only_caught_up.contains(&&r.cloud_id)).count();
        assert!(from_catch_up <= 1, "one page of one mailbox a cycle: round {round}: {reports:?}");
        caught_up += from_catch_up;
        applied += summary.applied;
        if round == 1 {
            assert_eq!(summary.applied, 1, "the change made during the catch-up: {summary:?}");
        }
    }
    assert_eq!(caught_up, 2, "the catch-up went through its whole window, a page a cycle");
    assert_eq!(applied, 1, "nothing written twice");
    assert!(world.differences().await.is_empty());
    world.ou.remove().await.ok();
}

//! `kill -9` at random points during large cycles, repeated; then the final state equals
//! the cloud's, nothing is left in flight, and the journal and audit agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{build_engine, cycle, EngineSpec, World};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;
use writeback_engine::{Brakes, EngineSection};
use writeback_state::StateStore;

const CHILD_SPEC: &str = "WB_CRASH_CHILD_SPEC";

/// The child's body: run cycles until killed. A no-op when run as a normal test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(path) = std::env::var(CHILD_SPEC) else { return };
    let spec: EngineSpec = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    // Few writes in flight: the cycle lasts long enough to be killed in every phase.
    let section = EngineSection { max_in_flight: 4, ..EngineSection::default() };
    let engine = build_engine(&spec, section, mass_change_allowed()).await;
    loop {
        cycle(&engine, false).await;
    }
}

/// Every round changes every mailbox: the brakes would (rightly) hold that.
fn mass_change_allowed() -> Brakes {
    Brakes { max_objects_changed: 1_000_000, max_objects_changed_share: 1.0, ..Brakes::default() }
}

/// A pseudo-random number from the clock: no seed to manage, different every run.
fn jitter(max_ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    u64::from(nanos) % max_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_nothing() {
    let world = World::new("crash", 120).await;
    for smtp in world.cloud_ids.keys() {
        world.make_cloud_managed(smtp).await;
    }
    let spec = world.spec();
    let spec_file = world.dir.join("crash-spec.json");
    std::fs::write(&spec_file, serde_json::to_vec(&spec).unwrap()).unwrap();

    let mut interrupted_writes = 0;
    for round in 0..6u64 {
        // New cloud values every round, so every round has writes to interrupt.
        for (i, smtp) in world.cloud_ids.keys().enumerate() {
            let params = json!({
                "CustomAttribute7": format!("round {round} value {i}"),
                "ExtensionCustomAttribute2": [format!("r{round}"), format!("m{i}")],
                "HiddenFromAddressListsEnabled": (round as usize + i) % 2 == 0,
            });
            world.set_mailbox(smtp, params).await;
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture"])
            .env(CHILD_SPEC, &spec_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if round % 2 == 0 {
            // Even rounds: wait until writes are in flight (journalled, not yet settled),
            // then kill a moment later, somewhere in the apply phase.
            let store = writeback_state::SqliteStore::open(&spec.state_file).unwrap();
            for _ in 0..600 {
                if !store.in_flight().unwrap().is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(jitter(150))).await;
        } else {
            // Odd rounds: anywhere, planning included.
            tokio::time::sleep(Duration::from_millis(200 + jitter(3000))).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let store = writeback_state::SqliteStore::open(&spec.state_file).unwrap();
        interrupted_writes += store.in_flight().unwrap().len();
    }

    // A normal start: recovery settles what was in flight, a full pass finishes the job.
    let engine = build_engine(&spec, EngineSection::default(), mass_change_allowed()).await;
    let (summary, reports) = cycle(&engine, true).await;
    assert_eq!(summary.failed + summary.skipped + summary.invalid, 0, "{reports:?}");
    assert!(engine.store().in_flight().unwrap().is_empty(), "nothing left in flight");
    let differ = world.differences().await;
    assert!(differ.is_empty(), "AD equals the cloud after the crashes: {summary:?} {differ:?}");
    let (again, _) = cycle(&engine, true).await;
    assert_eq!(again.planned, 0, "{again:?}");
    assert!(engine.store().integrity_check().unwrap().is_empty(), "the state file is sound");
    assert!(interrupted_writes > 0, "some kill landed while writes were in flight");
    world.ou.remove().await.ok();
}

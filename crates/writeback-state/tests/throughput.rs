//! A quick figure for the bookkeeping cost per mailbox (journal intent + outcome + audit +
//! last written), written the way the engine will: a page of mailboxes per transaction.
//! Prints the rate; asserts only that everything was recorded (timings vary by machine and
//! build profile — run with `--release` for a meaningful number).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{ad_values, change_mail, guid, TempStore};
use std::time::{Duration, Instant};
use writeback_core::ManagedAttribute;
use writeback_state::{AuditQuery, JournalId, Outcome, StateStore, WriteIntent};

const MAILBOXES: usize = 20_000;
const PAGE: usize = 1_000;

#[test]
fn bookkeeping_throughput_in_pages() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();
    let cloud_ids: Vec<String> = (0..MAILBOXES).map(|n| format!("cloud-{n:06}")).collect();
    let mods = change_mail("user@old.test", "user@new.test");
    let before = ad_values(&[(ManagedAttribute::Mail, &["user@old.test"])]);

    let (mut journalling, mut recording) = (Duration::ZERO, Duration::ZERO);
    let started = Instant::now();
    for (page_no, page) in cloud_ids.chunks(PAGE).enumerate() {
        let now = i64::try_from(page_no).unwrap() * 10;
        let intents: Vec<WriteIntent> = page
            .iter()
            .enumerate()
            .map(|(i, cloud_id)| WriteIntent {
                cycle,
                cloud_id,
                object_guid: guid(u32::try_from(page_no * PAGE + i).unwrap()),
                dn: "CN=User,OU=Staff,DC=corp,DC=test",
                mods: &mods,
                before: &before,
            })
            .collect();
        let step = Instant::now();
        let ids = t.store.record_intents(&intents, now).unwrap();
        journalling += step.elapsed();
        let outcomes: Vec<(JournalId, Outcome)> =
            ids.into_iter().map(|id| (id, Outcome::Applied)).collect();
        let step = Instant::now();
        t.store.record_outcomes(&outcomes, now + 1).unwrap();
        recording += step.elapsed();
    }
    let elapsed = started.elapsed();
    let rate = MAILBOXES as f64 / elapsed.as_secs_f64();
    println!(
        "state bookkeeping: {MAILBOXES} mailboxes in {:.3}s = {rate:.0} mailboxes/s ({} build, pages of {PAGE})",
        elapsed.as_secs_f64(),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!(
        "  of which intents {journalling:?}, outcomes with audit and last written {recording:?}"
    );

    assert!(t.store.in_flight().unwrap().is_empty());
    let audit = t
        .store
        .query_audit(&AuditQuery {
            since: Some(0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(audit.len(), MAILBOXES);
    assert_eq!(
        t.store.last_written("cloud-012345").unwrap()[0].values,
        ["user@new.test"]
    );
}

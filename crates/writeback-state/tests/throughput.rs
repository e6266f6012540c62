//! Quick figures for the bookkeeping cost per mailbox (journal intent + outcome + audit +
//! last written) and for staging a cycle's plan, written the way the engine will: a page of
//! mailboxes per transaction. Prints the rates; asserts only that everything was recorded
//! (timings vary by machine and build profile — run with
//! `cargo test --release -p writeback-state --test throughput -- --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{ad_values, change_mail, guid, TempStore};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use writeback_core::{Mailbox, ManagedAttribute};
use writeback_state::{AuditQuery, JournalId, Outcome, StagedWrite, StateStore, WriteIntent};

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
    println!("  of which intents {journalling:?}, outcomes {recording:?}");

    assert!(t.store.in_flight().unwrap().is_empty());
    let audit = t
        .store
        .query_audit(&AuditQuery {
            since: Some(0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(audit.len(), MAILBOXES);
    t.store
        .upsert_join(&writeback_state::Join {
            cloud_id: "cloud-012345".into(),
            object_guid: guid(12_345),
            dn: "CN=x".into(),
            matched_by: writeback_state::MatchedBy::ImmutableId,
            verified_at: 0,
        })
        .unwrap();
    assert_eq!(
        t.store.last_written("cloud-012345").unwrap()[0].values,
        ["user@new.test"]
    );
}

const STAGED: u32 = 100_000;
const STAGE_BATCH: u32 = 1_000;

/// A staged write about the size the planner produces for a typical mailbox.
fn typical_staged_write(n: u32) -> StagedWrite {
    let cloud_id = format!("{n:08x}-1c2c-4000-8000-0123456789ab");
    let new = format!("user{n}@corp.test");
    let old = format!("user{n}@old.test");
    let mut custom_attributes = BTreeMap::new();
    custom_attributes.insert("1".to_string(), format!("CC-{n}"));
    custom_attributes.insert("7".to_string(), "Building 4".to_string());
    let mut mods = change_mail(&old, &new);
    mods.extend(change_mail(&old, &new).into_iter().map(|mut m| {
        m.attribute = ManagedAttribute::ProxyAddresses;
        m.values = vec![format!("SMTP:{}", m.values[0])];
        m
    }));
    StagedWrite {
        object_guid: guid(n),
        dn: format!("CN=User {n},OU=Staff,OU=Site {},DC=corp,DC=test", n % 50),
        usn_changed: 1_000_000 + u64::from(n),
        mods,
        before: ad_values(&[
            (ManagedAttribute::Mail, &[old.as_str()]),
            (
                ManagedAttribute::ProxyAddresses,
                &[format!("SMTP:{old}").as_str(), "smtp:alias@old.test"],
            ),
            (ManagedAttribute::ExtensionAttribute1, &["CC-1"]),
        ]),
        mailbox: Mailbox {
            cloud_id: cloud_id.clone(),
            primary_smtp: Some(new.clone()),
            proxy_addresses: vec![format!("SMTP:{new}"), "smtp:alias@old.test".into()],
            custom_attributes,
            recipient_type_details: Some("UserMailbox".into()),
            when_changed_utc: Some("2024-05-01T10:00:00Z".into()),
            ..Mailbox::default()
        },
        cloud_id,
    }
}

#[test]
fn staging_throughput_in_batches() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(0).unwrap();

    // Batches are built one at a time, as the planner would: never the whole plan in memory.
    let mut staging = Duration::ZERO;
    for start in (0..STAGED).step_by(STAGE_BATCH as usize) {
        let batch: Vec<StagedWrite> = (start..start + STAGE_BATCH)
            .map(typical_staged_write)
            .collect();
        let step = Instant::now();
        t.store.stage_writes(cycle, &batch).unwrap();
        staging += step.elapsed();
    }
    let count_started = Instant::now();
    assert_eq!(t.store.staged_count(cycle).unwrap(), u64::from(STAGED));
    let counting = count_started.elapsed();

    let reading_started = Instant::now();
    let (mut after_seq, mut read) = (0_u64, 0_u32);
    loop {
        let page = t
            .store
            .staged_writes(cycle, after_seq, STAGE_BATCH)
            .unwrap();
        let Some((last_seq, _)) = page.last() else {
            break;
        };
        after_seq = *last_seq;
        read += u32::try_from(page.len()).unwrap();
    }
    let reading = reading_started.elapsed();
    assert_eq!((read, after_seq), (STAGED, u64::from(STAGED)));

    let file_bytes: u64 = ["state.db", "state.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(t.dir.path().join(name)).ok())
        .map(|m| m.len())
        .sum();
    let clear_started = Instant::now();
    assert_eq!(t.store.clear_staged(cycle).unwrap(), u64::from(STAGED));
    let clearing = clear_started.elapsed();

    let per_second = |d: Duration| f64::from(STAGED) / d.as_secs_f64();
    println!(
        "staging: {STAGED} writes in batches of {STAGE_BATCH} in {:.3}s = {:.0} writes/s ({} build)",
        staging.as_secs_f64(),
        per_second(staging),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!(
        "  read back in pages of {STAGE_BATCH}: {:.3}s = {:.0} writes/s; count {counting:?}; \
         clear {clearing:?}; file with WAL {:.1} MiB",
        reading.as_secs_f64(),
        per_second(reading),
        file_bytes as f64 / (1024.0 * 1024.0)
    );
}

//! Staged writes: a cycle's plan appended in order, streamed back in pages, cleared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{ad_values, change_mail, guid, strings, TempStore};
use std::collections::BTreeMap;
use writeback_core::{Anchors, Mailbox, ManagedAttribute, ModOp, Modification};
use writeback_state::{CycleId, SqliteStore, StagedWrite, StateError, StateStore};

/// A plain staged mail change for mailbox number `n`.
fn write(n: u32) -> StagedWrite {
    let cloud_id = format!("cloud-{n:06}");
    StagedWrite {
        object_guid: guid(n),
        dn: format!("CN=User {n},OU=Staff,DC=corp,DC=test"),
        usn_changed: 10_000 + u64::from(n),
        mods: change_mail(&format!("u{n}@old.test"), &format!("u{n}@new.test")),
        before: ad_values(&[(ManagedAttribute::Mail, &[&format!("u{n}@old.test")])]),
        mailbox: Mailbox {
            cloud_id: cloud_id.clone(),
            primary_smtp: Some(format!("u{n}@new.test")),
            proxy_addresses: vec![format!("SMTP:u{n}@new.test")],
            ..Mailbox::default()
        },
        cloud_id,
    }
}

fn writes(range: std::ops::Range<u32>) -> Vec<StagedWrite> {
    range.map(write).collect()
}

/// The whole stage, read in one page.
fn all_staged(store: &SqliteStore, cycle: CycleId) -> Vec<(u64, StagedWrite)> {
    store.staged_writes(cycle, 0, u32::MAX).unwrap()
}

#[test]
fn staging_across_calls_keeps_plan_order_and_continues_the_seq() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(1_000).unwrap();
    let other = t.store.begin_cycle(2_000).unwrap();

    t.store.stage_writes(cycle, &writes(0..3)).unwrap();
    t.store.stage_writes(other, &writes(100..102)).unwrap();
    t.store.stage_writes(cycle, &[]).unwrap();
    t.store.stage_writes(cycle, &writes(3..8)).unwrap();
    t.store.stage_writes(other, &writes(102..103)).unwrap();
    t.store.stage_writes(cycle, &writes(8..10)).unwrap();

    let staged = all_staged(&t.store, cycle);
    let seqs: Vec<u64> = staged.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
    let staged_writes: Vec<StagedWrite> = staged.into_iter().map(|(_, w)| w).collect();
    assert_eq!(staged_writes, writes(0..10));
    assert_eq!(t.store.staged_count(cycle).unwrap(), 10);

    // Each cycle has its own sequence; the stages do not mix.
    let other_staged = all_staged(&t.store, other);
    assert_eq!(
        other_staged
            .iter()
            .map(|(seq, w)| (*seq, w.cloud_id.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, "cloud-000100"),
            (2, "cloud-000101"),
            (3, "cloud-000102")
        ]
    );
    assert_eq!(t.store.staged_count(other).unwrap(), 3);
    assert_eq!(t.store.staged_count(CycleId(999)).unwrap(), 0);
}

#[test]
fn paging_with_after_seq_and_limit_returns_every_write_exactly_once() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(1).unwrap();
    let expected = writes(0..1_037);
    // Uneven batches, so page edges and batch edges do not line up.
    for batch in expected.chunks(97) {
        t.store.stage_writes(cycle, batch).unwrap();
    }

    for limit in [1_u32, 7, 100, 1_000, 5_000] {
        let mut after_seq = 0;
        let mut seen: Vec<StagedWrite> = Vec::new();
        let mut pages = 0;
        loop {
            let page = t.store.staged_writes(cycle, after_seq, limit).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= limit as usize, "limit {limit}: page too long");
            for (seq, write) in page {
                assert!(
                    seq > after_seq,
                    "limit {limit}: seq {seq} not after {after_seq}"
                );
                after_seq = seq;
                seen.push(write);
            }
            pages += 1;
        }
        assert_eq!(seen.len(), expected.len(), "limit {limit}");
        assert!(
            seen == expected,
            "limit {limit}: pages differ from the plan"
        );
        assert_eq!(
            pages,
            expected.len().div_ceil(limit as usize),
            "limit {limit}"
        );
    }

    assert!(t.store.staged_writes(cycle, 0, 0).unwrap().is_empty());
    assert!(t.store.staged_writes(cycle, 1_037, 10).unwrap().is_empty());
    assert!(t
        .store
        .staged_writes(cycle, u64::MAX, 10)
        .unwrap()
        .is_empty());
    let middle = t.store.staged_writes(cycle, 500, 3).unwrap();
    assert_eq!(
        middle.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [501, 502, 503]
    );
    assert_eq!(middle[0].1, expected[500]);
}

#[test]
fn mailbox_modifications_and_values_round_trip_exactly() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(1).unwrap();
    let mut custom_attributes = BTreeMap::new();
    custom_attributes.insert("1".to_string(), "Cost centre \"42\"".to_string());
    custom_attributes.insert("15".to_string(), String::new());
    let mut extension_custom_attributes = BTreeMap::new();
    extension_custom_attributes.insert("1".to_string(), strings(&["a", "b,c", "ü ✓"]));
    extension_custom_attributes.insert("5".to_string(), Vec::new());
    let mailbox = Mailbox {
        cloud_id: "6f1c2c8e-0000-4000-8000-0123456789ab".into(),
        primary_smtp: Some("zoë@corp.test".into()),
        proxy_addresses: strings(&["SMTP:zoë@corp.test", "smtp:z@corp.test", "X500:/o=Org/cn=Z"]),
        custom_attributes,
        extension_custom_attributes,
        hidden_from_address_lists: Some(false),
        recipient_type_details: Some("SharedMailbox".into()),
        anchors: Anchors {
            immutable_id: Some("AAECAwQFBgcICQoLDA0ODw==".into()),
            sid: Some("S-1-5-21-1-2-3-1104".into()),
            dn: Some("CN=Zoë\\, Z,OU=Staff,DC=corp,DC=test".into()),
        },
        when_changed_utc: Some("2024-05-01T10:00:00.1234567Z".into()),
    };
    let mods = vec![
        Modification::delete(ManagedAttribute::Mail, strings(&["z@old.test"])),
        Modification::add(ManagedAttribute::Mail, strings(&["zoë@corp.test"])),
        Modification::delete(ManagedAttribute::ExtensionAttribute15, vec![]),
        Modification {
            attribute: ManagedAttribute::ProxyAddresses,
            op: ModOp::Replace,
            values: strings(&["SMTP:zoë@corp.test", "smtp:z@corp.test"]),
        },
        Modification {
            attribute: ManagedAttribute::ExtensionAttribute1,
            op: ModOp::Replace,
            values: vec![],
        },
    ];
    let before = ad_values(&[
        (ManagedAttribute::Mail, &["z@old.test"]),
        (
            ManagedAttribute::ProxyAddresses,
            &["SMTP:z@old.test", "smtp:x@old.test"],
        ),
        (
            ManagedAttribute::ExtensionAttribute15,
            &["tab\there", "line\nbreak"],
        ),
    ]);
    let mut every_byte = [0_u8; 16];
    for (i, b) in every_byte.iter_mut().enumerate() {
        *b = u8::try_from(i * 17).unwrap();
    }
    let rich = StagedWrite {
        cloud_id: mailbox.cloud_id.clone(),
        object_guid: every_byte,
        dn: "CN=Zoë\\, Z,OU=Staff,DC=corp,DC=test".into(),
        usn_changed: u64::try_from(i64::MAX).unwrap(),
        mods,
        before,
        mailbox,
    };
    let bare = StagedWrite {
        cloud_id: "bare".into(),
        object_guid: [0; 16],
        dn: "CN=Bare,DC=t".into(),
        usn_changed: 0,
        mods: vec![],
        before: ad_values(&[]),
        mailbox: Mailbox {
            cloud_id: "bare".into(),
            ..Mailbox::default()
        },
    };
    t.store
        .stage_writes(cycle, &[rich.clone(), bare.clone()])
        .unwrap();
    drop(t.store);
    let reopened = SqliteStore::open(t.dir.path().join("state.db")).unwrap();
    assert_eq!(all_staged(&reopened, cycle), [(1, rich), (2, bare)]);
}

#[test]
fn staging_fails_whole_for_an_unknown_cycle_or_a_usn_sqlite_cannot_hold() {
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(1).unwrap();
    let err = t
        .store
        .stage_writes(CycleId(cycle.0 + 1), &writes(0..2))
        .unwrap_err();
    assert!(
        matches!(err, StateError::NotFound { what: "cycle", .. }),
        "{err:?}"
    );

    let mut batch = writes(0..3);
    batch[1].usn_changed = u64::MAX;
    let err = t.store.stage_writes(cycle, &batch).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::TooLarge {
                value: u64::MAX,
                ..
            }
        ),
        "{err:?}"
    );
    let count: i64 = t
        .raw()
        .query_row("SELECT count(*) FROM staged_writes", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 0, "a failed batch stages nothing");
}

#[test]
fn clearing_a_stage_removes_only_that_cycle_and_restaging_starts_over() {
    let t = TempStore::new();
    let first = t.store.begin_cycle(1).unwrap();
    let second = t.store.begin_cycle(2).unwrap();
    t.store.stage_writes(first, &writes(0..5)).unwrap();
    t.store.stage_writes(second, &writes(10..13)).unwrap();

    assert_eq!(t.store.clear_staged(first).unwrap(), 5);
    assert_eq!(t.store.staged_count(first).unwrap(), 0);
    assert_eq!(t.store.staged_count(second).unwrap(), 3);
    assert_eq!(t.store.clear_staged(first).unwrap(), 0);
    assert_eq!(t.store.clear_staged(CycleId(999)).unwrap(), 0);

    t.store.stage_writes(first, &writes(20..22)).unwrap();
    assert_eq!(
        all_staged(&t.store, first)
            .into_iter()
            .map(|(seq, w)| (seq, w.cloud_id))
            .collect::<Vec<_>>(),
        [
            (1, "cloud-000020".to_string()),
            (2, "cloud-000021".to_string())
        ]
    );
}

#[test]
fn clearing_stale_stages_keeps_only_the_named_cycle() {
    let t = TempStore::new();
    let crashed = t.store.begin_cycle(1).unwrap();
    let finished = t.store.begin_cycle(2).unwrap();
    let current = t.store.begin_cycle(3).unwrap();
    t.store.stage_writes(crashed, &writes(0..4)).unwrap();
    t.store.stage_writes(finished, &writes(4..6)).unwrap();
    t.store
        .finish_cycle(finished, 3, &serde_json::json!({}))
        .unwrap();
    t.store.stage_writes(current, &writes(6..9)).unwrap();

    assert_eq!(t.store.clear_stale_stages(Some(current)).unwrap(), 6);
    assert_eq!(t.store.staged_count(crashed).unwrap(), 0);
    assert_eq!(t.store.staged_count(finished).unwrap(), 0);
    assert_eq!(all_staged(&t.store, current).len(), 3);
    assert_eq!(t.store.clear_stale_stages(Some(current)).unwrap(), 0);

    // Keeping a cycle that has no stage, or none at all, drops everything.
    assert_eq!(t.store.clear_stale_stages(Some(crashed)).unwrap(), 3);
    t.store.stage_writes(current, &writes(0..2)).unwrap();
    assert_eq!(t.store.clear_stale_stages(None).unwrap(), 2);
    assert_eq!(t.store.staged_count(current).unwrap(), 0);
}

#[test]
fn retention_drops_stages_of_old_cycles_but_not_the_latest_cycle() {
    let t = TempStore::new();
    let old = t.store.begin_cycle(1_000).unwrap();
    let also_old = t.store.begin_cycle(2_000).unwrap();
    let latest = t.store.begin_cycle(3_000).unwrap();
    for (cycle, range) in [(old, 0..4), (also_old, 4..6), (latest, 6..9)] {
        t.store.stage_writes(cycle, &writes(range)).unwrap();
    }

    let report = t.store.purge_before(2_000).unwrap();
    assert_eq!(report.staged_writes, 4);
    assert_eq!(
        (
            t.store.staged_count(old).unwrap(),
            t.store.staged_count(also_old).unwrap(),
            t.store.staged_count(latest).unwrap()
        ),
        (0, 2, 3)
    );

    // The latest cycle may still be running, however old it is.
    let report = t.store.purge_before(i64::MAX).unwrap();
    assert_eq!(report.staged_writes, 2);
    assert_eq!(t.store.staged_count(latest).unwrap(), 3);
    assert!(t.store.integrity_check().unwrap().is_empty());
}

#[test]
fn a_staged_cycle_cannot_be_deleted_from_under_its_stage() {
    // The foreign key is enforced: a stage never points at a cycle that is gone.
    let t = TempStore::new();
    let cycle = t.store.begin_cycle(1).unwrap();
    t.store.stage_writes(cycle, &writes(0..1)).unwrap();
    let raw = t.raw();
    raw.pragma_update(None, "foreign_keys", "ON").unwrap();
    assert!(raw
        .execute("DELETE FROM cycles WHERE id = ?1", [cycle.0])
        .is_err());
    t.store.clear_staged(cycle).unwrap();
    assert_eq!(
        raw.execute("DELETE FROM cycles WHERE id = ?1", [cycle.0])
            .unwrap(),
        1
    );
}

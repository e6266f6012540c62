//! Graph identity anchors: page writes with their cursor, lookups, reverse lookups, resync.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::TempStore;
use writeback_core::Anchors;
use writeback_state::StateStore;

const CURSOR: &str = "graph.delta_cursor";

fn anchors(immutable_id: Option<&str>, sid: Option<&str>, dn: Option<&str>) -> Anchors {
    Anchors {
        immutable_id: immutable_id.map(str::to_owned),
        sid: sid.map(str::to_owned),
        dn: dn.map(str::to_owned),
    }
}

#[test]
fn a_page_writes_its_users_and_its_cursor_together() {
    let t = TempStore::new();
    let a = anchors(
        Some("imm-a"),
        Some("S-1-5-21-1-2-3-1001"),
        Some("CN=A,DC=t"),
    );
    let b = anchors(None, None, None);
    t.store
        .apply_anchor_page(
            &[("U-A".into(), a.clone()), ("u-b".into(), b.clone())],
            &[],
            Some((CURSOR, "next-1")),
            10,
        )
        .unwrap();
    assert_eq!(t.store.anchors("u-a").unwrap(), Some(a.clone()));
    assert_eq!(
        t.store.anchors("U-A").unwrap(),
        Some(a),
        "ids compare without case"
    );
    assert_eq!(
        t.store.anchors("u-b").unwrap(),
        Some(b),
        "a user without anchors is still known"
    );
    assert_eq!(t.store.anchors("u-c").unwrap(), None);
    assert_eq!(t.store.anchor_count().unwrap(), 2);
    assert_eq!(
        t.store.watermark(CURSOR).unwrap().as_deref(),
        Some("next-1")
    );
    let stored: Vec<String> = {
        let raw = t.raw();
        let mut stmt = raw
            .prepare("SELECT user_id FROM anchors ORDER BY user_id")
            .unwrap();
        let rows = stmt.query_map([], |row| row.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(stored, ["u-a", "u-b"], "keys are stored lower-case");
}

#[test]
fn upserts_replace_whole_rows_and_removals_win_within_a_page() {
    let t = TempStore::new();
    t.store
        .apply_anchor_page(
            &[
                (
                    "u-a".into(),
                    anchors(Some("imm-a"), Some("S-1"), Some("CN=A")),
                ),
                ("u-b".into(), anchors(Some("imm-b"), None, None)),
            ],
            &[],
            None,
            1,
        )
        .unwrap();
    t.store
        .apply_anchor_page(
            &[
                ("u-a".into(), anchors(Some("imm-a"), None, Some("CN=A2"))),
                ("u-b".into(), anchors(Some("imm-b2"), None, None)),
            ],
            &["U-B".into(), "never-seen".into()],
            Some((CURSOR, "delta-1")),
            2,
        )
        .unwrap();
    assert_eq!(
        t.store.anchors("u-a").unwrap(),
        Some(anchors(Some("imm-a"), None, Some("CN=A2")))
    );
    assert_eq!(t.store.anchors("u-b").unwrap(), None);
    assert_eq!(t.store.anchor_count().unwrap(), 1);
    assert_eq!(
        t.store.watermark(CURSOR).unwrap().as_deref(),
        Some("delta-1")
    );
}

#[test]
fn a_failing_page_leaves_neither_anchors_nor_cursor_behind() {
    let t = TempStore::new();
    t.store
        .apply_anchor_page(
            &[("u-a".into(), anchors(Some("old"), None, None))],
            &[],
            Some((CURSOR, "next-1")),
            1,
        )
        .unwrap();
    // A trigger makes the cursor write fail after the anchors of the page were written.
    t.raw()
        .execute_batch(
            "CREATE TRIGGER refuse_cursor BEFORE UPDATE ON watermarks
             BEGIN SELECT RAISE(ABORT, 'disk full, say'); END;",
        )
        .unwrap();
    let result = t.store.apply_anchor_page(
        &[
            ("u-a".into(), anchors(Some("new"), None, None)),
            ("u-b".into(), anchors(None, None, None)),
        ],
        &[],
        Some((CURSOR, "next-2")),
        2,
    );
    assert!(result.is_err());
    assert_eq!(
        t.store.anchors("u-a").unwrap(),
        Some(anchors(Some("old"), None, None))
    );
    assert_eq!(t.store.anchor_count().unwrap(), 1);
    assert_eq!(
        t.store.watermark(CURSOR).unwrap().as_deref(),
        Some("next-1")
    );
}

#[test]
fn the_owner_of_an_ad_object_is_found_by_immutable_id_first_then_sid() {
    let t = TempStore::new();
    t.store
        .apply_anchor_page(
            &[
                (
                    "u-cg".into(),
                    anchors(Some("from-consistency-guid"), None, None),
                ),
                (
                    "u-guid".into(),
                    anchors(Some("from-object-guid"), Some("S-1-5-21-9"), None),
                ),
                ("u-sid".into(), anchors(None, Some("S-1-5-21-7"), None)),
            ],
            &[],
            None,
            1,
        )
        .unwrap();
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        t.store
            .anchor_owner(
                &ids(&["from-object-guid", "from-consistency-guid"]),
                Some("S-1-5-21-7")
            )
            .unwrap()
            .as_deref(),
        Some("u-guid"),
        "the immutable ids are tried in the order given, before the SID"
    );
    assert_eq!(
        t.store
            .anchor_owner(&ids(&["nobody", "from-consistency-guid"]), None)
            .unwrap()
            .as_deref(),
        Some("u-cg")
    );
    assert_eq!(
        t.store
            .anchor_owner(&ids(&["nobody"]), Some("S-1-5-21-7"))
            .unwrap()
            .as_deref(),
        Some("u-sid")
    );
    assert_eq!(
        t.store
            .anchor_owner(&ids(&["nobody"]), Some("S-1-5-21-404"))
            .unwrap(),
        None
    );
    assert_eq!(t.store.anchor_owner(&[], None).unwrap(), None);
    // Immutable ids are base64: case matters.
    assert_eq!(
        t.store
            .anchor_owner(&ids(&["FROM-OBJECT-GUID"]), None)
            .unwrap(),
        None
    );
}

#[test]
fn two_users_claiming_one_anchor_resolve_to_the_smallest_id() {
    let t = TempStore::new();
    t.store
        .apply_anchor_page(
            &[
                (
                    "u-z".into(),
                    anchors(Some("shared"), Some("S-1-5-21-5"), None),
                ),
                (
                    "u-m".into(),
                    anchors(Some("shared"), Some("S-1-5-21-5"), None),
                ),
            ],
            &[],
            None,
            1,
        )
        .unwrap();
    let shared = vec!["shared".to_string()];
    assert_eq!(
        t.store.anchor_owner(&shared, None).unwrap().as_deref(),
        Some("u-m")
    );
    assert_eq!(
        t.store
            .anchor_owner(&[], Some("S-1-5-21-5"))
            .unwrap()
            .as_deref(),
        Some("u-m")
    );
}

#[test]
fn clearing_forgets_every_anchor_but_keeps_the_cursor_and_the_rest() {
    let t = TempStore::new();
    t.store
        .set_watermark("exchange.when_changed", "w", 1)
        .unwrap();
    t.store
        .apply_anchor_page(
            &[
                ("u-a".into(), anchors(Some("a"), None, None)),
                ("u-b".into(), anchors(Some("b"), None, None)),
            ],
            &[],
            Some((CURSOR, "delta-1")),
            1,
        )
        .unwrap();
    assert_eq!(t.store.clear_anchors().unwrap(), 2);
    assert_eq!(t.store.anchor_count().unwrap(), 0);
    assert_eq!(t.store.anchors("u-a").unwrap(), None);
    assert_eq!(
        t.store.anchor_owner(&["a".to_string()], None).unwrap(),
        None
    );
    assert_eq!(
        t.store.watermark(CURSOR).unwrap().as_deref(),
        Some("delta-1")
    );
    assert_eq!(
        t.store
            .watermark("exchange.when_changed")
            .unwrap()
            .as_deref(),
        Some("w")
    );
    assert_eq!(t.store.clear_anchors().unwrap(), 0);
}

#[test]
fn reverse_lookups_use_the_indexes() {
    let t = TempStore::new();
    let raw = t.raw();
    for (sql, index) in [
        (
            "SELECT user_id FROM anchors WHERE immutable_id = 'x' ORDER BY user_id LIMIT 1",
            "anchors_immutable_id",
        ),
        (
            "SELECT user_id FROM anchors WHERE sid = 'x' ORDER BY user_id LIMIT 1",
            "anchors_sid",
        ),
    ] {
        let mut stmt = raw.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{sql}: {plan:?}"
        );
    }
}

#[test]
fn a_page_of_thousands_is_one_transaction_and_survives_reopening() {
    let t = TempStore::new();
    let page: Vec<(String, Anchors)> = (0..5_000)
        .map(|i| {
            (
                format!("user-{i:05}"),
                anchors(
                    Some(&format!("imm-{i}")),
                    Some(&format!("S-1-5-21-{i}")),
                    None,
                ),
            )
        })
        .collect();
    t.store
        .apply_anchor_page(&page, &[], Some((CURSOR, "delta")), 1)
        .unwrap();
    drop(t.store);
    let reopened = writeback_state::SqliteStore::open(t.dir.path().join("state.db")).unwrap();
    assert_eq!(reopened.anchor_count().unwrap(), 5_000);
    assert_eq!(
        reopened
            .anchor_owner(&["imm-4321".to_string()], None)
            .unwrap()
            .as_deref(),
        Some("user-04321")
    );
    assert_eq!(
        reopened.anchors("USER-00007").unwrap(),
        Some(anchors(Some("imm-7"), Some("S-1-5-21-7"), None))
    );
}

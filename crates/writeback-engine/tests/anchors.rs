//! Graph's identity anchors live in the state store: a restarted engine continues from the
//! stored users/delta cursor, changes and removals arrive through delta, a resync starts over.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::World;
use serde_json::json;
use writeback_cloud::DeltaCursor;
use writeback_core::Anchors;
use writeback_engine::{Brakes, EngineSection};
use writeback_state::StateStore;

const CURSOR: &str = "graph.delta_cursor";

fn stored_cursor(store: &impl StateStore) -> DeltaCursor {
    serde_json::from_str(&store.watermark(CURSOR).unwrap().expect("a stored cursor")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_are_kept_in_the_store_and_a_restart_continues_from_the_delta_link() {
    let world = World::new("anchors", 3).await;
    let smtp = |i: usize| format!("anchors-{i}@example.test");
    let id0 = world.cloud_ids[&smtp(0)].clone();
    let id1 = world.cloud_ids[&smtp(1)].clone();

    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    assert_eq!(engine.refresh_anchors().await.unwrap(), 3, "the first refresh is a full round");
    assert_eq!(engine.store().anchor_count().unwrap(), 3);
    assert!(stored_cursor(engine.store()).is_round_complete(), "the deltaLink is stored");
    let first: Anchors = engine.store().anchors(&id0.to_uppercase()).unwrap().expect("user 0");
    assert!(first.immutable_id.is_some() && first.sid.is_some(), "{first:?}");
    assert!(
        first.dn.as_deref().is_some_and(|dn| dn.eq_ignore_ascii_case(&world.users[&smtp(0)])),
        "{first:?}"
    );
    drop(engine);

    // A new engine on the same state file: no full round, nothing changed since.
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    assert_eq!(engine.refresh_anchors().await.unwrap(), 0);
    assert_eq!(engine.store().anchor_count().unwrap(), 3);

    // A moved user arrives as a change; a removed one as a removal.
    let moved = format!("CN=moved,{}", world.ou.dn);
    world.control("PATCH", &format!("users/{id0}"), json!({"onPremisesDistinguishedName": moved})).await;
    world.control("DELETE", &format!("users/{id1}?reason=deleted"), json!({})).await;
    assert_eq!(engine.refresh_anchors().await.unwrap(), 1, "only the changed user is read");
    let changed = engine.store().anchors(&id0).unwrap().expect("user 0");
    assert_eq!(changed.dn.as_deref(), Some(moved.as_str()));
    assert_eq!((changed.immutable_id, changed.sid), (first.immutable_id.clone(), first.sid.clone()));
    assert_eq!(engine.store().anchors(&id1).unwrap(), None, "a removed user's anchors go");
    assert_eq!(engine.store().anchor_count().unwrap(), 2);

    // A property cleared in Entra arrives as null (minimal mode) and is cleared here too.
    world.control("PATCH", &format!("users/{id0}"), json!({"onPremisesDistinguishedName": null})).await;
    assert_eq!(engine.refresh_anchors().await.unwrap(), 1);
    let cleared = engine.store().anchors(&id0).unwrap().expect("user 0");
    assert_eq!(cleared.dn, None, "a cleared DN hint does not linger");
    assert_eq!(cleared.immutable_id, first.immutable_id, "the other anchors stay");

    // The reverse lookup provision-by-DN uses finds user 0 by its immutable id.
    let immutable_ids = vec![first.immutable_id.clone().unwrap()];
    assert_eq!(engine.store().anchor_owner(&immutable_ids, None).unwrap(), Some(id0.to_lowercase()));

    // A resync enumerates again from nothing: rows the new round does not list are gone.
    engine
        .store()
        .apply_anchor_page(&[("stale-user".into(), Anchors::default())], &[], None, 0)
        .unwrap();
    world.control("POST", "delta/resync", json!({})).await;
    assert_eq!(engine.refresh_anchors().await.unwrap(), 2);
    assert_eq!(engine.store().anchors("stale-user").unwrap(), None);
    assert_eq!(engine.store().anchor_count().unwrap(), 2);
    assert!(stored_cursor(engine.store()).is_round_complete());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_cut_short_is_continued_from_its_next_link_not_restarted() {
    let world = World::new("anchorcut", 30).await;
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    // What a crash after the first page leaves: its users and its nextLink.
    let first_page = engine.cloud().graph.next_page(&DeltaCursor::Initial).await.unwrap();
    let DeltaCursor::Next(_) = &first_page.cursor else { panic!("30 users take more than one page of 25") };
    let changes = writeback_cloud::merge_delta_page(&first_page, |_| Ok::<_, std::convert::Infallible>(None)).unwrap();
    let cursor_json = serde_json::to_string(&first_page.cursor).unwrap();
    engine.store().apply_anchor_page(&changes.upserts, &changes.removals, Some((CURSOR, &cursor_json)), 0).unwrap();
    let on_first_page = u64::try_from(first_page.users.len()).unwrap();

    let read = engine.refresh_anchors().await.unwrap();
    assert_eq!(read, 30 - on_first_page, "only the rest of the round is read");
    assert_eq!(engine.store().anchor_count().unwrap(), 30);
    assert!(stored_cursor(engine.store()).is_round_complete());
}

//! A full pass reads its scope in parts at once (`[ad] scan_streams`, split by uSNCreated) and
//! keeps where it split them, so the next pass's parts are about even whatever the DC's USNs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cycle, cycle_with, World};
use writeback_ad::scan::{LearnedBounds, PARTS_PER_STREAM};
use writeback_engine::{Brakes, CycleOptions, EngineSection, WATERMARK_SCAN_BOUNDS};
use writeback_state::StateStore;

fn learned(engine: &writeback_engine::Engine<writeback_state::SqliteStore>) -> Option<LearnedBounds> {
    let text = engine.store().watermark(WATERMARK_SCAN_BOUNDS).unwrap()?;
    Some(serde_json::from_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pass_scans_in_parts_and_learns_where_to_split_the_next() {
    let world = World::new("scansplit", 6).await;
    for smtp in world.cloud_ids.keys() {
        world.make_cloud_managed(smtp).await;
    }
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    assert_eq!(engine.directory().config().scan_streams, 3, "the default: three searches at once");

    // `plan` changes nothing, not even where the next scan splits.
    let (dry, _) = cycle_with(&engine, &CycleOptions { full: true, dry_run: true, ..CycleOptions::default() }).await;
    assert_eq!(dry.mailboxes, 6, "{dry:?}");
    assert_eq!(learned(&engine), None);

    // A full pass reads all six users (first split evenly over the DC's USNs, where these new
    // users are all in the last part) and keeps bounds placed between their creation USNs.
    let (first, _) = cycle(&engine, true).await;
    assert_eq!((first.mailboxes, first.in_sync + first.applied), (6, 6), "{first:?}");
    assert!(world.differences().await.is_empty());
    let bounds = learned(&engine).expect("bounds learned by the full pass");
    let ad = world.ad().await;
    assert_eq!(bounds.dc, ad.root_dse().await.unwrap().ds_service_name);
    // Three searches at once, four parts each: twelve parts asked for, and six users to place
    // them between, so each part the bounds make holds one user.
    assert_eq!(bounds.parts, 3 * PARTS_PER_STREAM, "{bounds:?}");
    let mut created: Vec<u64> = Vec::new();
    ad.for_each_user(&world.ou.dn, "(objectClass=user)", |u| {
        created.push(u.usn_created);
        Ok::<(), writeback_ad::AdError>(())
    })
    .await
    .unwrap();
    assert_eq!(created.len(), 6);
    let mut per_part = vec![0usize; bounds.bounds.len() + 1];
    for usn in &created {
        per_part[bounds.bounds.iter().filter(|bound| *usn > **bound).count()] += 1;
    }
    assert_eq!(per_part, vec![1; 6], "the bounds fall between the scope's users: {created:?} at {bounds:?}");

    // The next pass splits there, reads everything again, and keeps the same bounds.
    world.set_mailbox(world.cloud_ids.keys().next().unwrap(), serde_json::json!({"CustomAttribute3": "after the split"})).await;
    let (second, _) = cycle(&engine, true).await;
    assert_eq!((second.mailboxes, second.applied, second.in_sync), (6, 1, 5), "{second:?}");
    assert_eq!(learned(&engine), Some(bounds));
    assert!(world.differences().await.is_empty());
}

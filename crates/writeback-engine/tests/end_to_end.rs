//! The engine against the real DC and the tenant emulator: changes made with Set-Mailbox
//! land in AD, nothing else does, and the safety machinery holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cycle, unmanaged, World};
use serde_json::json;
use std::sync::Arc;
use writeback_core::{ManagedAttribute, Modification};
use writeback_engine::{Brakes, EngineSection};
use writeback_state::{AuditQuery, StateStore};

fn attr(name: &str) -> ManagedAttribute {
    ManagedAttribute::from_ldap_name(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_mailbox_changes_land_in_ad_and_nothing_else_changes() {
    let world = World::new("e2e", 6).await;
    let smtp = |i: usize| format!("e2e-{i}@example.test");
    for i in 0..4 {
        world.make_cloud_managed(&smtp(i)).await;
    }
    // Every managed property, on one mailbox.
    let mut every = serde_json::Map::new();
    for n in 1..=15 {
        every.insert(format!("CustomAttribute{n}"), json!(format!("custom {n}")));
    }
    for n in 1..=5 {
        every.insert(format!("ExtensionCustomAttribute{n}"), json!([format!("ext {n} a"), format!("ext {n} b")]));
    }
    every.insert("HiddenFromAddressListsEnabled".into(), json!(true));
    every.insert("EmailAddresses".into(), json!({"Add": ["smtp:alias0@example.test"]}));
    every.insert("Type".into(), json!("Shared"));
    world.set_mailbox(&smtp(0), serde_json::Value::Object(every)).await;
    // A new primary address, a removed secondary and a cleared attribute.
    world.set_mailbox(&smtp(1), json!({"WindowsEmailAddress": "primary1@example.test"})).await;
    world.set_mailbox(&smtp(2), json!({"EmailAddresses": {"Remove": ["smtp:e2e.2@corp.example.test"]}, "CustomAttribute1": ""})).await;
    // A mailbox that is NOT cloud-managed: mastered on-prem, never touched.
    world.set_mailbox(&smtp(4), json!({"CustomAttribute5": "cloud only"})).await;

    let before = world.snapshots().await;
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    let (summary, reports) = cycle(&engine, false).await;
    assert_eq!(summary.pass, "full", "the first cycle is a full pass");
    assert_eq!(summary.mailboxes, 4, "only the cloud-managed mailboxes are read: {reports:?}");
    assert_eq!(summary.failed + summary.skipped + summary.invalid, 0, "{reports:?}");
    assert!(summary.applied >= 3);
    assert!(summary.watermark_advanced);
    assert!(world.differences().await.is_empty(), "AD holds exactly the cloud's values");

    let after = world.snapshots().await;
    for (mail, snapshot) in &before {
        assert_eq!(unmanaged(snapshot), unmanaged(&after[mail]), "{mail}: only managed attributes changed");
    }
    for i in [4, 5] {
        assert_eq!(before[&smtp(i)], after[&smtp(i)], "not cloud-managed: untouched, byte for byte");
    }
    let ad = world.ad().await;
    let user0 = ad.read(&world.users[&smtp(0)]).await.unwrap().unwrap();
    assert_eq!(user0.values.get(attr("extensionAttribute15")), ["custom 15"]);
    assert_eq!(user0.values.get(attr("msExchRecipientTypeDetails")), ["34359738368"]);
    assert_eq!(user0.values.get(attr("msExchHideFromAddressLists")), ["TRUE"]);
    let user1 = ad.read(&world.users[&smtp(1)]).await.unwrap().unwrap();
    assert_eq!(user1.values.get(attr("mail")), ["primary1@example.test"]);
    let user2 = ad.read(&world.users[&smtp(2)]).await.unwrap().unwrap();
    assert!(user2.values.get(attr("extensionAttribute1")).is_empty());

    // Idempotent: the next cycle writes nothing.
    let (again, _) = cycle(&engine, false).await;
    assert_eq!((again.planned, again.applied), (0, 0), "{again:?}");
    assert_eq!(again.pass, "incremental");

    // A later change is picked up by an incremental pass.
    world.set_mailbox(&smtp(3), json!({"CustomAttribute3": "changed later"})).await;
    let (later, _) = cycle(&engine, false).await;
    assert_eq!(later.pass, "incremental");
    assert_eq!(later.applied, 1, "{later:?}");
    let user3 = ad.read(&world.users[&smtp(3)]).await.unwrap().unwrap();
    assert_eq!(user3.values.get(attr("extensionAttribute3")), ["changed later"]);

    // Every write is in the audit log with before and after.
    let audit = engine.store().query_audit(&AuditQuery { cloud_id: Some(world.cloud_ids[&smtp(3)].clone()), ..AuditQuery::default() }).unwrap();
    assert!(audit.iter().any(|r| r.attribute == "extensionAttribute3" && r.after == ["changed later"] && r.outcome.kind() == "applied"));
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_clear_is_held_until_approved() {
    let world = World::new("brake", 12).await;
    for smtp in world.cloud_ids.keys() {
        world.make_cloud_managed(smtp).await;
    }
    let brakes = Brakes { max_values_cleared: 5, ..Brakes::default() };
    let engine = world.engine(EngineSection::default(), brakes).await;
    let (first, _) = cycle(&engine, false).await;
    assert!(first.held.is_none(), "types written, nothing cleared: {first:?}");

    for smtp in world.cloud_ids.keys() {
        world.set_mailbox(smtp, json!({"CustomAttribute1": ""})).await;
    }
    let (held, _) = cycle(&engine, false).await;
    let plan = held.held.clone().expect("held by the brake");
    assert!(plan.reason.contains("max_values_cleared"), "{}", plan.reason);
    assert_eq!((held.applied, held.streamed), (0, 0));
    let ad = world.ad().await;
    for dn in world.users.values() {
        let user = ad.read(dn).await.unwrap().unwrap();
        assert_eq!(user.values.get(attr("extensionAttribute1")).len(), 1, "nothing of the held cycle applied");
    }
    // Held again next time, without piling up plans, and the watermark did not move.
    let (still, _) = cycle(&engine, false).await;
    assert_eq!(still.held.as_ref().map(|h| h.plan_id), Some(plan.plan_id));
    assert!(!still.watermark_advanced);

    engine.store().approve_plan(writeback_state::PlanId(plan.plan_id), 0).unwrap();
    let (approved, _) = cycle(&engine, false).await;
    assert!(approved.held.is_none());
    assert_eq!(approved.applied, 12, "{approved:?}");
    for dn in world.users.values() {
        let user = ad.read(dn).await.unwrap().unwrap();
        assert!(user.values.get(attr("extensionAttribute1")).is_empty());
    }
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_mailbox_is_quarantined_while_the_others_sync() {
    let world = World::new("quarantine", 3).await;
    for smtp in world.cloud_ids.keys() {
        world.make_cloud_managed(smtp).await;
    }
    // A cloud-managed mailbox whose anchor matches no AD object.
    world
        .control(
            "POST",
            "mailboxes",
            json!({"userPrincipalName": "ghost@example.test", "displayName": "Ghost", "alias": "ghost",
                   "emailAddresses": ["SMTP:ghost@example.test"], "onPremisesImmutableId": "AAECAwQFBgcICQoLDA0ODw==",
                   "isExchangeCloudManaged": true}),
        )
        .await;
    let section = EngineSection { retry_base_secs: 0, quarantine_after: 3, ..EngineSection::default() };
    let engine = world.engine(section, Brakes::default()).await;
    let (first, reports) = cycle(&engine, false).await;
    assert_eq!(first.skipped, 1, "{reports:?}");
    assert_eq!(first.applied, 3, "the others sync");
    assert!(reports.iter().any(|r| r.reason.as_deref() == Some("no_match")));
    // The first incremental pass re-reads the overlap window (a catch-up), which still holds
    // the ghost... (the change below lands well over the 5 s a poll between catch-ups looks back)
    tokio::time::sleep(std::time::Duration::from_millis(7000)).await;
    let other = world.cloud_ids.keys().next().unwrap().clone();
    world.set_mailbox(&other, json!({"CustomAttribute4": "moves the watermark"})).await;
    let (second, _) = cycle(&engine, false).await;
    assert_eq!(second.skipped, 1);
    // ...the next poll does not: only the retry queue brings the ghost back, by identity.
    let (third, _) = cycle(&engine, false).await;
    assert_eq!(third.retried, 1, "due retry fetched by identity: {third:?}");
    let failures = engine.store().failures().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].attempts, 3);
    assert!(failures[0].quarantined, "{failures:?}");
    assert!(failures[0].last_error.contains("no AD object"), "{failures:?}");
    let (fourth, _) = cycle(&engine, true).await;
    assert_eq!(fourth.quarantined, 1, "{fourth:?}");
    assert_eq!(fourth.in_sync, 3);
    assert!(world.differences().await.is_empty());
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_on_prem_edit_is_detected_and_re_planned() {
    let world = World::new("conflict", 2).await;
    let smtp = "conflict-0@example.test";
    world.make_cloud_managed(smtp).await;
    world.make_cloud_managed("conflict-1@example.test").await;
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    cycle(&engine, false).await;

    world.set_mailbox(smtp, json!({"CustomAttribute2": "from the cloud"})).await;
    // Another admin writes the same attribute between the engine's read and its write.
    let other_admin = Arc::new(world.ad().await);
    let dn = world.users[smtp].clone();
    let edits = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (hook_dn, hook_edits) = (dn.clone(), edits.clone());
    engine.set_before_apply_hook(Some(Arc::new(move |target: String| {
        let (admin, dn, edits) = (other_admin.clone(), hook_dn.clone(), hook_edits.clone());
        Box::pin(async move {
            if target == dn && edits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                let user = admin.read(&dn).await.unwrap().unwrap();
                let edit = Modification::add(attr("extensionAttribute2"), vec!["edited on-prem".into()]);
                admin.apply(&user, &[edit]).await.unwrap();
            }
        })
    })));
    let (summary, _) = cycle(&engine, false).await;
    assert_eq!(summary.conflicts, 1, "{summary:?}");
    assert_eq!(summary.applied, 1);
    let user = world.ad().await.read(&dn).await.unwrap().unwrap();
    assert_eq!(user.values.get(attr("extensionAttribute2")), ["from the cloud"]);
    // The audit shows the conflicted attempt, then the re-planned write over the on-prem value.
    let audit = engine.store().query_audit(&AuditQuery { cloud_id: Some(world.cloud_ids[smtp].clone()), ..AuditQuery::default() }).unwrap();
    let ext2: Vec<_> = audit.iter().filter(|r| r.attribute == "extensionAttribute2").collect();
    assert!(ext2.iter().any(|r| r.outcome.kind() == "conflict"), "{ext2:?}");
    assert!(ext2.iter().any(|r| r.outcome.kind() == "applied" && r.before == ["edited on-prem"]), "{ext2:?}");
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_faults_during_a_cycle_lose_nothing() {
    let world = World::new("faults", 30).await;
    for (i, smtp) in world.cloud_ids.keys().enumerate() {
        world.make_cloud_managed(smtp).await;
        world.set_mailbox(smtp, json!({"CustomAttribute9": format!("value {i}")})).await;
    }
    world
        .control(
            "POST",
            "faults",
            json!([
                {"path_prefix": "/v1.0/users/delta", "fault": "throttle", "retry_after": "0.2", "count": 1},
                {"path_prefix": "/v1.0/users/delta", "fault": "drop", "count": 1},
                {"path_prefix": "/adminapi/", "fault": "status", "status": 503, "count": 1},
                {"path_prefix": "/adminapi/", "fault": "truncate", "count": 1},
                {"path_prefix": "/adminapi/", "fault": "expire_page", "count": 1},
                {"path_prefix": "/adminapi/", "fault": "throttle", "retry_after": "0.5", "count": 1},
            ]),
        )
        .await;
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    let (summary, _) = cycle(&engine, false).await;
    assert_eq!(summary.mailboxes, 30, "{summary:?}");
    assert_eq!(summary.applied, 30);
    assert!(world.differences().await.is_empty());
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_applied_except_where_ad_changed_since() {
    use writeback_engine::{CycleOptions, ObjectReport, Shutdown};
    let world = World::new("saved", 3).await;
    for (i, smtp) in world.cloud_ids.keys().enumerate() {
        world.make_cloud_managed(smtp).await;
        world.set_mailbox(smtp, json!({"CustomAttribute6": format!("planned {i}")})).await;
    }
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    let mut planned: Vec<ObjectReport> = Vec::new();
    let mut sink = |r: &ObjectReport| planned.push(r.clone());
    let summary = engine.run_cycle(&CycleOptions { full: true, dry_run: true, ..CycleOptions::default() }, &mut sink, &Shutdown::default()).await.unwrap();
    assert_eq!(summary.planned, 3);
    let ad = world.ad().await;
    for dn in world.users.values() {
        assert!(ad.read(dn).await.unwrap().unwrap().values.get(attr("extensionAttribute6")).is_empty(), "plan writes nothing");
    }
    // An on-prem edit to one object after the plan was made.
    let edited = world.users.values().next().unwrap().clone();
    let user = ad.read(&edited).await.unwrap().unwrap();
    ad.apply(&user, &[Modification::add(attr("extensionAttribute12"), vec!["on-prem".into()])]).await.unwrap();

    let mut results: Vec<ObjectReport> = Vec::new();
    let mut sink = |r: &ObjectReport| results.push(r.clone());
    let applied = engine.apply_saved(&planned, &mut sink).await.unwrap();
    assert_eq!((applied.applied, applied.failed), (2, 1), "{results:?}");
    let refused = results.iter().find(|r| r.status == "refused").unwrap();
    assert_eq!(refused.dn.as_deref(), Some(edited.as_str()));
    assert!(refused.error.as_deref().unwrap().contains("AD changed since the plan"));
    let still = ad.read(&edited).await.unwrap().unwrap();
    assert!(still.values.get(attr("extensionAttribute6")).is_empty(), "the refused object was not written");
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_one_mailbox_by_address_cloud_id_or_dn() {
    use writeback_engine::ProvisionOutcome;
    let world = World::new("provision", 2).await;
    let smtp = "provision-0@example.test";
    world.make_cloud_managed(smtp).await;
    world.set_mailbox(smtp, json!({"CustomAttribute8": "on demand"})).await;
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;

    let mut steps: Vec<(String, String)> = Vec::new();
    let mut sink = |name: &str, text: String| steps.push((name.to_owned(), text));
    assert_eq!(engine.provision(smtp, true, &mut sink).await.unwrap(), ProvisionOutcome::Planned);
    let mut sink = |name: &str, text: String| steps.push((name.to_owned(), text));
    assert_eq!(engine.provision(smtp, false, &mut sink).await.unwrap(), ProvisionOutcome::Written);
    for step in ["read", "match", "plan", "write", "verify"] {
        assert!(steps.iter().any(|(s, _)| s == step), "step {step} reported: {steps:?}");
    }
    assert!(steps.iter().any(|(s, t)| s == "verify" && t.contains("matches")), "{steps:?}");
    let user = world.ad().await.read(&world.users[smtp]).await.unwrap().unwrap();
    assert_eq!(user.values.get(attr("extensionAttribute8")), ["on demand"]);

    let mut ignore = |_: &str, _: String| {};
    let by_id = world.cloud_ids[smtp].clone();
    assert_eq!(engine.provision(&by_id, false, &mut ignore).await.unwrap(), ProvisionOutcome::AlreadyInSync);
    let by_dn = world.users[smtp].clone();
    assert_eq!(engine.provision(&by_dn, false, &mut ignore).await.unwrap(), ProvisionOutcome::AlreadyInSync);
    assert_eq!(engine.provision("nobody@example.test", false, &mut ignore).await.unwrap(), ProvisionOutcome::NotFound);
    // Not cloud-managed: mastered on-prem, not provisioned.
    let other = "provision-1@example.test";
    assert_eq!(engine.provision(other, false, &mut ignore).await.unwrap(), ProvisionOutcome::NotFound);
    world.ou.remove().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_follow_moves_and_renames_and_drift_is_repaired() {
    let world = World::new("moves", 2).await;
    let smtp = "moves-0@example.test";
    world.make_cloud_managed(smtp).await;
    world.make_cloud_managed("moves-1@example.test").await;
    let engine = world.engine(EngineSection::default(), Brakes::default()).await;
    cycle(&engine, false).await;
    let join = engine.store().join(&world.cloud_ids[smtp]).unwrap().unwrap();

    // An admin renames the user and moves it to a sub-OU (still inside the scope).
    let sub = world.ou.add_child_ou("Moved").await.unwrap();
    let moved = world.ou.rename(&world.users[smtp], "CN=Renamed User", Some(&sub)).await.unwrap();
    world.set_mailbox(smtp, json!({"CustomAttribute11": "after the move"})).await;
    let (summary, _) = cycle(&engine, false).await;
    assert_eq!(summary.applied, 1, "{summary:?}");
    let user = world.ad().await.read(&moved).await.unwrap().unwrap();
    assert_eq!(user.values.get(attr("extensionAttribute11")), ["after the move"]);
    let rejoined = engine.store().join(&world.cloud_ids[smtp]).unwrap().unwrap();
    assert_eq!(rejoined.object_guid, join.object_guid, "the same object, followed by GUID");
    assert_eq!(rejoined.dn.to_lowercase(), moved.to_lowercase(), "the join's DN was refreshed");

    // On-prem drift on a managed attribute: a full reconcile repairs it and reports it.
    let ad = world.ad().await;
    let user = ad.read(&moved).await.unwrap().unwrap();
    ad.apply(
        &user,
        &[
            Modification::delete(attr("extensionAttribute11"), vec!["after the move".into()]),
            Modification::add(attr("extensionAttribute11"), vec!["drifted on-prem".into()]),
        ],
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // An incremental pass lists the mailbox again (it changed within the overlap window) but
    // knows that record is in sync: it reads nothing from AD for it, and so leaves the drift to
    // the full pass.
    let (incremental, reports) = cycle(&engine, false).await;
    assert_eq!(incremental.pass, "incremental");
    assert!(incremental.mailboxes >= 1 && incremental.planned == 0, "{incremental:?} {reports:?}");
    assert!(reports.iter().any(|r| r.cloud_id == world.cloud_ids[smtp] && r.status == "in_sync" && r.dn.is_none()), "{reports:?}");
    let user = ad.read(&moved).await.unwrap().unwrap();
    assert_eq!(user.values.get(attr("extensionAttribute11")), ["drifted on-prem"]);
    let (full, _) = cycle(&engine, true).await;
    assert_eq!(full.pass, "full");
    assert_eq!(full.drift, 1, "{full:?}");
    let user = ad.read(&moved).await.unwrap().unwrap();
    assert_eq!(user.values.get(attr("extensionAttribute11")), ["after the move"]);
    world.ou.remove().await.ok();
}

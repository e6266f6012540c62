//! The snapshot planner's rules, with no network: a real SqliteStore and ScopeSnapshot in a
//! temp dir per case. Each case lists the directory (the snapshot), the configured scope, the
//! state it starts from (joins, Graph anchors, the error queue) and one Exchange record, next
//! to what `SnapshotPlanner::assess` must decide and which join the store holds afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use writeback_ad::{ids, AdUser};
use writeback_cloud::anchor_key;
use writeback_core::{AdValues, Anchors, Mailbox, ManagedAttribute as A, Modification, PlanPolicy};
use writeback_engine::scope_snapshot::snapshot_row;
use writeback_engine::{Assessment, Resolution, SnapshotPlanner};
use writeback_state::{Join, MatchedBy, RetryPolicy, ScopeSnapshot, SqliteStore, StateStore};

const SCOPE: &str = "OU=Staff,DC=corp,DC=test";
const NOW: i64 = 1_700_000_000_000;
/// When the pre-existing joins of a case were verified.
const EARLIER: i64 = 1_600_000_000_000;
const CG: [u8; 16] = [0xC1; 16];
const OTHER_CG: [u8; 16] = [0xC2; 16];

fn guid(n: u8) -> [u8; 16] {
    [n; 16]
}

fn sid(n: u8) -> String {
    format!("S-1-5-21-1111-2222-3333-{}", 1000 + u32::from(n))
}

fn dn(n: u8) -> String {
    format!("CN=user{n},{SCOPE}")
}

fn cloud_id(n: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
}

/// User `n`, in scope, without a ConsistencyGuid, whose managed values are what `mailbox(n)`
/// asks for.
fn object(n: u8) -> AdUser {
    let mut values = AdValues::new();
    values.set(A::ExtensionAttribute1, vec![format!("dept-{n}")]);
    values.set(A::ProxyAddresses, vec![format!("SMTP:user{n}@corp.test")]);
    values.set(A::Mail, vec![format!("user{n}@corp.test")]);
    AdUser {
        dn: dn(n),
        object_guid: guid(n),
        object_sid: Some(sid(n)),
        consistency_guid: None,
        sam_account_name: Some(format!("user{n}")),
        object_classes: vec!["top".into(), "person".into(), "organizationalPerson".into(), "user".into()],
        admin_count: false,
        critical_system_object: false,
        usn_changed: 100,
        usn_created: 50 + u64::from(n),
        values,
    }
}

fn with_cg(mut user: AdUser, cg: [u8; 16]) -> AdUser {
    user.consistency_guid = Some(cg.to_vec());
    user
}

/// The Exchange record of user `n`'s mailbox: no anchors of its own (Graph's come from the store).
fn mailbox(n: u8) -> Mailbox {
    let mut mailbox = Mailbox {
        cloud_id: cloud_id(n),
        primary_smtp: Some(format!("user{n}@corp.test")),
        proxy_addresses: vec![format!("SMTP:user{n}@corp.test")],
        ..Mailbox::default()
    };
    mailbox.custom_attributes.insert("1".into(), format!("dept-{n}"));
    mailbox
}

fn immutable(bytes: [u8; 16]) -> Option<String> {
    Some(ids::bytes_to_immutable_id(&bytes))
}

fn graph(immutable_id: Option<String>, sid: Option<String>, dn: Option<String>) -> Option<Anchors> {
    Some(Anchors { immutable_id, sid, dn })
}

fn join(cloud_id: String, n: u8, matched_by: MatchedBy) -> Join {
    Join { cloud_id, object_guid: guid(n), dn: dn(n), matched_by, verified_at: EARLIER }
}

#[derive(Debug)]
enum Expect {
    Live,
    InSync { object: [u8; 16] },
    Planned { object: [u8; 16], mods: Vec<Modification> },
    Skipped(&'static str),
    Invalid,
    Quarantined,
}

#[derive(Clone, Copy)]
enum Queue {
    Empty,
    /// One failure, retry pending.
    Failed,
    Quarantined,
}

struct Case {
    name: &'static str,
    objects: Vec<AdUser>,
    scope: &'static str,
    joins: Vec<Join>,
    /// Graph's anchors for the mailbox, as the anchor refresh stored them.
    graph: Option<Anchors>,
    queue: Queue,
    mailbox: Mailbox,
    expect: Expect,
    had_failure: bool,
    /// The mailbox's join after the call, whole.
    join_after: Option<Join>,
}

/// Mailbox 1 against user 1, nothing known yet; cases override what they are about.
fn case(name: &'static str, expect: Expect) -> Case {
    Case {
        name,
        objects: vec![object(1)],
        scope: SCOPE,
        joins: vec![],
        graph: None,
        queue: Queue::Empty,
        mailbox: mailbox(1),
        expect,
        had_failure: false,
        join_after: None,
    }
}

/// The join a first match records now.
fn recorded(n: u8, matched_by: MatchedBy) -> Option<Join> {
    Some(Join { verified_at: NOW, ..join(cloud_id(1), n, matched_by) })
}

fn cases() -> Vec<Case> {
    let remembered = join(cloud_id(1), 1, MatchedBy::ImmutableId);
    let by_guid_anchors = graph(immutable(guid(1)), Some(sid(1)), Some(dn(1)));
    let cg_anchors = graph(immutable(CG), Some(sid(1)), None);
    let mut changed = mailbox(1);
    changed.custom_attributes.insert("1".into(), "dept-new".into());
    let mut two_primaries = mailbox(1);
    two_primaries.proxy_addresses.push("SMTP:second@corp.test".into());
    let moved = AdUser { dn: format!("CN=user1,OU=Moved,{SCOPE}"), ..object(1) };
    let computer = AdUser {
        object_classes: vec!["top".into(), "person".into(), "user".into(), "computer".into()],
        ..with_cg(object(1), CG)
    };

    vec![
        Case {
            joins: vec![remembered.clone()],
            graph: by_guid_anchors.clone(),
            join_after: Some(remembered.clone()),
            ..case("remembered join, in sync: the join is not rewritten", Expect::InSync { object: guid(1) })
        },
        Case {
            joins: vec![remembered.clone()],
            graph: by_guid_anchors.clone(),
            mailbox: changed,
            join_after: Some(remembered.clone()),
            ..case(
                "remembered join, changed cloud value: value-specific delete + add",
                Expect::Planned {
                    object: guid(1),
                    mods: vec![
                        Modification::delete(A::ExtensionAttribute1, vec!["dept-1".into()]),
                        Modification::add(A::ExtensionAttribute1, vec!["dept-new".into()]),
                    ],
                },
            )
        },
        Case {
            objects: vec![moved.clone()],
            joins: vec![remembered.clone()],
            graph: graph(immutable(guid(1)), None, None),
            join_after: Some(Join { dn: moved.dn.clone(), verified_at: NOW, ..remembered.clone() }),
            ..case(
                "remembered join, object moved within scope: the join's DN follows",
                Expect::InSync { object: guid(1) },
            )
        },
        Case {
            objects: vec![object(2)],
            joins: vec![remembered.clone()],
            graph: by_guid_anchors.clone(),
            join_after: Some(remembered.clone()),
            ..case("remembered join, object not in the snapshot", Expect::Live)
        },
        Case {
            joins: vec![remembered.clone()],
            graph: graph(immutable([0xEE; 16]), None, None),
            join_after: Some(remembered.clone()),
            ..case("remembered join, immutable id no longer the object's", Expect::Live)
        },
        Case {
            joins: vec![remembered.clone()],
            graph: graph(None, Some(sid(9)), None),
            join_after: Some(remembered.clone()),
            ..case("remembered join, SID no longer the object's", Expect::Live)
        },
        Case {
            objects: vec![with_cg(object(1), CG), object(2)],
            graph: cg_anchors.clone(),
            join_after: recorded(1, MatchedBy::ImmutableId),
            ..case("first match by ConsistencyGuid", Expect::InSync { object: guid(1) })
        },
        Case {
            objects: vec![with_cg(object(1), CG)],
            mailbox: Mailbox { anchors: Anchors { immutable_id: immutable(CG), sid: None, dn: None }, ..mailbox(1) },
            join_after: recorded(1, MatchedBy::ImmutableId),
            ..case(
                "first match by the Exchange record's own immutable id, none in the store",
                Expect::InSync { object: guid(1) },
            )
        },
        Case {
            objects: vec![with_cg(object(1), CG), with_cg(object(2), CG)],
            graph: cg_anchors.clone(),
            ..case("two objects with the same ConsistencyGuid", Expect::Live)
        },
        Case {
            graph: graph(immutable(guid(1)), None, Some(dn(1).to_lowercase())),
            join_after: recorded(1, MatchedBy::ImmutableId),
            ..case(
                "immutable id = objectGUID, no CG, Graph's DN names the object (any case)",
                Expect::InSync { object: guid(1) },
            )
        },
        Case {
            graph: graph(immutable(guid(1)), Some(sid(1)), None),
            ..case("immutable id = objectGUID, no DN anchor", Expect::Live)
        },
        Case {
            graph: graph(immutable(guid(1)), None, Some(dn(2))),
            ..case("immutable id = objectGUID, Graph's DN names another object", Expect::Live)
        },
        Case {
            objects: vec![with_cg(object(1), OTHER_CG)],
            graph: by_guid_anchors.clone(),
            ..case("immutable id = objectGUID, but the object carries another ConsistencyGuid", Expect::Live)
        },
        Case {
            objects: vec![with_cg(object(1), CG), object(2)],
            graph: graph(None, Some(sid(1).to_lowercase()), None),
            join_after: recorded(1, MatchedBy::Sid),
            ..case("SID only (any case)", Expect::InSync { object: guid(1) })
        },
        Case {
            objects: vec![object(1), AdUser { object_guid: guid(2), ..object(1) }],
            graph: graph(None, Some(sid(1)), None),
            ..case("SID only, two objects carry it", Expect::Live)
        },
        Case { objects: vec![with_cg(object(1), CG)], ..case("no anchors at all", Expect::Live) },
        Case {
            graph: graph(Some("not base64!".into()), None, Some(dn(1))),
            ..case("an immutable id that is not base64: the live matcher reports it", Expect::Live)
        },
        Case {
            objects: vec![AdUser { dn: "CN=user1,OU=Contractors,DC=corp,DC=test".into(), ..with_cg(object(1), CG) }],
            graph: cg_anchors.clone(),
            ..case("object in the snapshot but outside the configured scope", Expect::Skipped("out_of_scope"))
        },
        Case {
            objects: vec![with_cg(object(1), CG)],
            scope: "OU=Managers,OU=Staff,DC=corp,DC=test",
            graph: cg_anchors.clone(),
            ..case("scope narrower than the snapshot", Expect::Skipped("out_of_scope"))
        },
        Case {
            objects: vec![with_cg(object(1), CG)],
            joins: vec![join(cloud_id(7), 1, MatchedBy::ImmutableId)],
            graph: cg_anchors.clone(),
            ..case("object already joined to another mailbox", Expect::Skipped("joined_elsewhere"))
        },
        Case {
            objects: vec![AdUser { admin_count: true, ..with_cg(object(1), CG) }],
            graph: cg_anchors.clone(),
            ..case("protected object (adminCount)", Expect::Skipped("protected"))
        },
        Case {
            objects: vec![AdUser { critical_system_object: true, ..with_cg(object(1), CG) }],
            graph: cg_anchors.clone(),
            ..case("protected object (isCriticalSystemObject)", Expect::Skipped("protected"))
        },
        Case {
            objects: vec![computer],
            graph: cg_anchors.clone(),
            ..case("a computer is not a user", Expect::Skipped("not_a_user"))
        },
        Case {
            // Nothing in the snapshot would match: only the error queue decides.
            objects: vec![],
            graph: cg_anchors.clone(),
            queue: Queue::Quarantined,
            had_failure: true,
            ..case("quarantined mailbox: decided without looking at AD", Expect::Quarantined)
        },
        Case {
            joins: vec![remembered.clone()],
            graph: by_guid_anchors.clone(),
            queue: Queue::Failed,
            had_failure: true,
            join_after: Some(remembered.clone()),
            ..case("mailbox in the error queue, now in sync", Expect::InSync { object: guid(1) })
        },
        Case {
            objects: vec![with_cg(object(1), CG), with_cg(object(2), CG)],
            graph: cg_anchors.clone(),
            queue: Queue::Failed,
            had_failure: true,
            ..case("mailbox in the error queue, ambiguous: live, not decided", Expect::Live)
        },
        Case {
            objects: vec![with_cg(object(1), CG)],
            graph: cg_anchors,
            mailbox: two_primaries,
            join_after: recorded(1, MatchedBy::ImmutableId),
            ..case("invalid cloud data (two primary SMTP addresses)", Expect::Invalid)
        },
    ]
}

/// Runs one case in a fresh store and snapshot; the mismatches found, if any.
fn run(case: &Case) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let snapshot = ScopeSnapshot::create_in(dir.path()).unwrap();
    let rows: Vec<_> = case.objects.iter().map(|u| snapshot_row(u).unwrap()).collect();
    snapshot.insert(&rows).unwrap();
    snapshot.finish_loading().unwrap();
    for join in &case.joins {
        store.upsert_join(join).unwrap();
    }
    if let Some(anchors) = &case.graph {
        store.apply_anchor_page(&[(anchor_key(&case.mailbox.cloud_id), anchors.clone())], &[], None, EARLIER).unwrap();
    }
    let quarantine_now = RetryPolicy { quarantine_after: 1, ..RetryPolicy::default() };
    match case.queue {
        Queue::Empty => {}
        Queue::Failed => {
            let state = store
                .record_failure(&case.mailbox.cloud_id, "earlier failure", &RetryPolicy::default(), EARLIER)
                .unwrap();
            assert!(!state.quarantined);
        }
        Queue::Quarantined => {
            let state =
                store.record_failure(&case.mailbox.cloud_id, "failed too often", &quarantine_now, EARLIER).unwrap();
            assert!(state.quarantined);
        }
    }

    let scope = vec![case.scope.to_owned()];
    let policy = PlanPolicy::default();
    let planner = SnapshotPlanner { store: &store, snapshot: &snapshot, scope: &scope, policy: &policy };
    let mut mailbox = case.mailbox.clone();
    let resolution = match planner.assess(&mut mailbox, NOW) {
        Ok(resolution) => resolution,
        Err(e) => return vec![format!("assess failed: {e}")],
    };

    let mut problems = Vec::new();
    let decided = match (&case.expect, resolution) {
        (Expect::Live, Resolution::Live) => None,
        (_, Resolution::Live) => {
            problems.push("got Live".to_owned());
            None
        }
        (expect, Resolution::Decided { assessment, had_failure }) => {
            if had_failure != case.had_failure {
                problems.push(format!("had_failure = {had_failure}, expected {}", case.had_failure));
            }
            if !assessment_matches(expect, &assessment) {
                problems.push(format!("got {assessment:?}"));
            }
            Some(assessment)
        }
    };
    if matches!(case.expect, Expect::Live) && decided.is_some() {
        problems.push("expected Live".to_owned());
    }
    let join_after = store.join(&case.mailbox.cloud_id).unwrap();
    if join_after != case.join_after {
        problems.push(format!("join afterwards {join_after:?}, expected {:?}", case.join_after));
    }
    // Other mailboxes' joins are left alone, and nothing else is recorded.
    let others = case.joins.iter().filter(|j| j.cloud_id != case.mailbox.cloud_id).count();
    let expected_joins = u64::try_from(others).unwrap() + u64::from(case.join_after.is_some());
    let joins = store.join_count().unwrap();
    if joins != expected_joins {
        problems.push(format!("{joins} joins in the store, expected {expected_joins}"));
    }
    let queued = store.failure(&case.mailbox.cloud_id).unwrap().is_some();
    if queued != !matches!(case.queue, Queue::Empty) {
        problems.push("the planner changed the error queue".to_owned());
    }
    problems
}

fn assessment_matches(expect: &Expect, assessment: &Assessment) -> bool {
    match (expect, assessment) {
        (Expect::InSync { object }, Assessment::InSync { user }) => user.object_guid == *object,
        (Expect::Planned { object, mods }, Assessment::Planned { user, mods: got }) => {
            user.object_guid == *object && got == mods
        }
        (Expect::Skipped(code), Assessment::Skipped(reason)) => reason.code() == *code,
        (Expect::Invalid, Assessment::Invalid { dn: Some(dn), error }) => *dn == object(1).dn && !error.is_empty(),
        (Expect::Quarantined, Assessment::Quarantined { error }) => error == "failed too often",
        _ => false,
    }
}

#[test]
fn snapshot_planner_rules() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        for problem in run(case) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn anchors_from_the_store_fill_only_what_the_exchange_record_lacks() {
    // The record's own immutable id (the object's CG) wins over a stale one in the store; the
    // store still supplies the SID the record lacks, and it must agree too.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let snapshot = ScopeSnapshot::create_in(dir.path()).unwrap();
    snapshot.insert(&[snapshot_row(&with_cg(object(1), CG)).unwrap()]).unwrap();
    snapshot.finish_loading().unwrap();
    let stale = Anchors { immutable_id: immutable(OTHER_CG), sid: Some(sid(1)), dn: None };
    store.apply_anchor_page(&[(anchor_key(&cloud_id(1)), stale)], &[], None, EARLIER).unwrap();
    let scope = vec![SCOPE.to_owned()];
    let policy = PlanPolicy::default();
    let planner = SnapshotPlanner { store: &store, snapshot: &snapshot, scope: &scope, policy: &policy };

    let mut own = Mailbox { anchors: Anchors { immutable_id: immutable(CG), sid: None, dn: None }, ..mailbox(1) };
    let resolution = planner.assess(&mut own, NOW).unwrap();
    assert!(
        matches!(&resolution, Resolution::Decided { assessment: Assessment::InSync { .. }, had_failure: false }),
        "{resolution:?}"
    );
    assert_eq!(own.anchors.immutable_id, immutable(CG));
    assert_eq!(own.anchors.sid, Some(sid(1)), "the SID came from the store");

    // The store's stale immutable id alone finds nothing by CG nor by objectGUID.
    let mut bare = mailbox(1);
    store.remove_join(&cloud_id(1)).unwrap();
    assert!(matches!(planner.assess(&mut bare, NOW).unwrap(), Resolution::Live));
}

#[test]
fn a_page_keeps_its_order_and_lets_only_the_first_of_two_mailboxes_claim_one_object() {
    // Mailboxes 1 and 2 both carry user 1's SID (a mistake in the cloud); mailbox 3 matches
    // user 3; mailbox 4 has nothing in the snapshot (live). In one page the store has no join
    // for user 1 when mailbox 2 is looked at: the page itself must remember mailbox 1's claim.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let snapshot = ScopeSnapshot::create_in(dir.path()).unwrap();
    snapshot.insert(&[snapshot_row(&object(1)).unwrap(), snapshot_row(&object(3)).unwrap()]).unwrap();
    snapshot.finish_loading().unwrap();
    let anchors = |n: u8, sid_of: u8| (anchor_key(&cloud_id(n)), Anchors { immutable_id: None, sid: Some(sid(sid_of)), dn: None });
    store.apply_anchor_page(&[anchors(1, 1), anchors(2, 1), anchors(3, 3), anchors(4, 4)], &[], None, EARLIER).unwrap();
    let scope = vec![SCOPE.to_owned()];
    let policy = PlanPolicy::default();
    let planner = SnapshotPlanner { store: &store, snapshot: &snapshot, scope: &scope, policy: &policy };

    let page = planner.assess_page(vec![mailbox(1), mailbox(2), mailbox(3), mailbox(4)], NOW).unwrap();
    let ids: Vec<&str> = page.iter().map(|(m, _)| m.cloud_id.as_str()).collect();
    assert_eq!(ids, [cloud_id(1), cloud_id(2), cloud_id(3), cloud_id(4)]);
    let codes: Vec<String> = page
        .iter()
        .map(|(_, r)| match r {
            Resolution::Live => "live".to_owned(),
            Resolution::Decided { assessment: Assessment::InSync { user }, .. } => format!("in_sync {}", user.dn),
            Resolution::Decided { assessment: Assessment::Skipped(reason), .. } => format!("skipped {reason}"),
            Resolution::Decided { assessment, .. } => format!("{assessment:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            format!("in_sync {}", dn(1)),
            format!("skipped {} is already joined to mailbox {}", dn(1), cloud_id(1)),
            format!("in_sync {}", dn(3)),
            "live".to_owned(),
        ]
    );
    assert_eq!(store.join(&cloud_id(1)).unwrap(), Some(Join { verified_at: NOW, ..join(cloud_id(1), 1, MatchedBy::Sid) }));
    assert_eq!(store.join(&cloud_id(2)).unwrap(), None);
    assert_eq!(store.join(&cloud_id(3)).unwrap(), Some(Join { verified_at: NOW, ..join(cloud_id(3), 3, MatchedBy::Sid) }));
    assert_eq!(store.join_count().unwrap(), 2);

    // The next page finds mailbox 1's join in the store: mailbox 2 is refused the same way.
    let page = planner.assess_page(vec![mailbox(2)], NOW).unwrap();
    assert!(
        matches!(&page[0].1, Resolution::Decided { assessment: Assessment::Skipped(reason), .. } if reason.code() == "joined_elsewhere"),
        "{page:?}"
    );
}

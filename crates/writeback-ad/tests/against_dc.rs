//! The AD connector against the project's real Samba AD DC (`scripts/ad-dc`).
//! Each test works in an OU of its own, so they run in parallel.
// Test helpers outside #[test] functions may fail loudly: that is what a test is for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ldap3::Mod;
use std::collections::{BTreeMap, HashSet};
use writeback_ad::{AdDirectory, AdError, AdUser, UserKey};
use writeback_ad::scan::{LearnedBounds, PARTS_PER_STREAM};
use writeback_core::attribute::ManagedAttribute;
use writeback_core::{plan, PlanPolicy};
use writeback_core::Mailbox;
use writeback_testkit::{ensure_dc, EntrySnapshot, TestOu};

async fn setup(name: &str) -> (AdDirectory, TestOu) {
    let env = ensure_dc().expect("the test DC starts");
    let ou = TestOu::create(&env, name).await.expect("test OU");
    let dir = AdDirectory::connect(env.ad_config().unwrap()).await.expect("connect");
    (dir, ou)
}

async fn read(dir: &AdDirectory, dn: &str) -> AdUser {
    dir.read(dn).await.expect("read").expect("object exists")
}

/// Plans `mailbox` against the object's current values and applies it; returns the plan size.
async fn sync(dir: &AdDirectory, dn: &str, mailbox: &Mailbox) -> usize {
    let user = read(dir, dn).await;
    let mods = plan(mailbox, &user.values, &PlanPolicy::default()).expect("valid mailbox");
    dir.apply(&user, &mods).await.expect("apply");
    mods.len()
}

fn mailbox(primary: &str, extra: &[&str]) -> Mailbox {
    let mut proxies = vec![format!("SMTP:{primary}")];
    proxies.extend(extra.iter().map(|s| s.to_string()));
    Mailbox {
        cloud_id: "00000000-0000-0000-0000-000000000001".into(),
        primary_smtp: Some(primary.into()),
        proxy_addresses: proxies,
        ..Mailbox::default()
    }
}

/// The attributes that legitimately change on any modify.
const CHANGE_TRACKING: [&str; 2] = ["whenChanged", "uSNChanged"];

fn without_managed(snapshot: &EntrySnapshot) -> EntrySnapshot {
    snapshot
        .iter()
        .filter(|(k, _)| ManagedAttribute::from_ldap_name(k).is_none())
        .filter(|(k, _)| !CHANGE_TRACKING.iter().any(|c| c.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn full_mailbox() -> Mailbox {
    let mut m = mailbox("ada.lovelace@example.test", &["smtp:ada@example.test", "X500:/o=Example/cn=ada"]);
    m.custom_attributes = (1..=15).map(|i| (i.to_string(), format!("custom {i} é"))).collect();
    m.extension_custom_attributes = (1..=5)
        .map(|i| (i.to_string(), vec![format!("ext{i}-a"), format!("ext{i}-b")]))
        .collect();
    m.hidden_from_address_lists = Some(true);
    m.recipient_type_details = Some("UserMailbox".into());
    m
}

#[tokio::test]
async fn every_managed_attribute_is_written_changed_and_cleared() {
    let (dir, ou) = setup("every-attr").await;
    let dn = ou.add_user("Ada Lovelace", &[("givenName", &["Ada"])]).await.unwrap();

    // Written from nothing.
    let desired = full_mailbox();
    assert!(sync(&dir, &dn, &desired).await > 0);
    let user = read(&dir, &dn).await;
    for i in 1..=15 {
        let attr = ManagedAttribute::from_ldap_name(&format!("extensionAttribute{i}")).unwrap();
        assert_eq!(user.values.get(attr), [format!("custom {i} é")], "{attr:?}");
    }
    for i in 1..=5 {
        let attr = ManagedAttribute::from_ldap_name(&format!("msExchExtensionCustomAttribute{i}")).unwrap();
        let got: HashSet<_> = user.values.get(attr).iter().cloned().collect();
        assert_eq!(got, HashSet::from([format!("ext{i}-a"), format!("ext{i}-b")]));
    }
    let value = |name: &str| user.values.get(ManagedAttribute::from_ldap_name(name).unwrap()).to_vec();
    assert_eq!(value("mail"), ["ada.lovelace@example.test"]);
    assert_eq!(value("msExchHideFromAddressLists"), ["TRUE"]);
    assert_eq!(value("msExchRecipientTypeDetails"), ["2147483648"]);
    assert_eq!(value("msExchRecipientDisplayType"), ["-2147483642"]);
    assert_eq!(value("proxyAddresses").len(), 3);
    assert_eq!(sync(&dir, &dn, &desired).await, 0, "a second plan is empty");

    // Changed.
    let mut changed = desired.clone();
    changed.custom_attributes = (1..=15).map(|i| (i.to_string(), format!("new {i}"))).collect();
    changed.extension_custom_attributes =
        (1..=5).map(|i| (i.to_string(), vec![format!("ext{i}-b"), format!("ext{i}-c")])).collect();
    changed.hidden_from_address_lists = Some(false);
    changed.recipient_type_details = Some("SharedMailbox".into());
    changed.primary_smtp = Some("ada@example.test".into());
    changed.proxy_addresses = vec![
        "smtp:ada.lovelace@example.test".into(),
        "SMTP:ada@example.test".into(),
        "X500:/o=Example/cn=ada".into(),
    ];
    assert!(sync(&dir, &dn, &changed).await > 0);
    let user = read(&dir, &dn).await;
    let value = |name: &str| user.values.get(ManagedAttribute::from_ldap_name(name).unwrap()).to_vec();
    assert_eq!(value("extensionAttribute7"), ["new 7"]);
    assert_eq!(value("mail"), ["ada@example.test"]);
    assert_eq!(value("msExchHideFromAddressLists"), ["FALSE"]);
    assert_eq!(value("msExchRecipientTypeDetails"), ["34359738368"]);
    let proxies: HashSet<_> = value("proxyAddresses").into_iter().collect();
    assert!(proxies.contains("SMTP:ada@example.test") && proxies.contains("smtp:ada.lovelace@example.test"));
    assert_eq!(sync(&dir, &dn, &changed).await, 0);

    // Cleared: "", missing key and [] all clear.
    let mut cleared = changed.clone();
    cleared.custom_attributes = BTreeMap::from([("1".to_string(), String::new())]);
    cleared.extension_custom_attributes = BTreeMap::from([("2".to_string(), Vec::new())]);
    assert!(sync(&dir, &dn, &cleared).await > 0);
    let user = read(&dir, &dn).await;
    for attr in ManagedAttribute::ALL {
        let name = attr.ldap_name();
        if name.starts_with("extensionAttribute") || name.starts_with("msExchExtensionCustomAttribute") {
            assert!(user.values.get(attr).is_empty(), "{name} cleared");
        }
    }
    assert_eq!(sync(&dir, &dn, &cleared).await, 0);
    ou.remove().await.ok();
}

#[tokio::test]
async fn proxy_addresses_change_per_value_and_others_stay() {
    let (dir, ou) = setup("proxies").await;
    let dn = ou
        .add_user(
            "Grace Hopper",
            &[(
                "proxyAddresses",
                &["SMTP:grace@example.test", "smtp:g.hopper@example.test", "X500:/o=Old/cn=grace"],
            )],
        )
        .await
        .unwrap();
    let desired = mailbox(
        "grace@example.test",
        &["smtp:g.hopper@example.test", "X500:/o=Old/cn=grace", "smtp:amazing.grace@example.test"],
    );
    let user = read(&dir, &dn).await;
    let mods = plan(&desired, &user.values, &PlanPolicy::default()).unwrap();
    let proxy_mods: Vec<_> = mods
        .iter()
        .filter(|m| m.attribute == ManagedAttribute::from_ldap_name("proxyAddresses").unwrap())
        .collect();
    assert_eq!(proxy_mods.len(), 1, "only an add: {mods:?}");
    dir.apply(&user, &mods).await.unwrap();

    // Someone adds an on-prem value meanwhile; it is not in the cloud, so the next plan removes
    // exactly that value and nothing else.
    ou.modify_raw(&dn, vec![Mod::Add("proxyAddresses", HashSet::from(["smtp:onprem@example.test"]))])
        .await
        .unwrap();
    sync(&dir, &dn, &desired).await;
    let user = read(&dir, &dn).await;
    let got: HashSet<_> = user
        .values
        .get(ManagedAttribute::from_ldap_name("proxyAddresses").unwrap())
        .iter()
        .cloned()
        .collect();
    let want: HashSet<_> = desired.proxy_addresses.iter().cloned().collect();
    assert_eq!(got, want);
    ou.remove().await.ok();
}

#[tokio::test]
async fn a_concurrent_edit_is_a_conflict_and_nothing_is_written() {
    let (dir, ou) = setup("conflict").await;
    let dn = ou
        .add_user(
            "Alan Turing",
            &[("extensionAttribute3", &["before"]), ("proxyAddresses", &["SMTP:alan@example.test"])],
        )
        .await
        .unwrap();
    let mut desired = mailbox("alan@example.test", &[]);
    desired.custom_attributes.insert("3".into(), "from cloud".into());
    desired.custom_attributes.insert("4".into(), "also from cloud".into());
    let user = read(&dir, &dn).await;
    let mods = plan(&desired, &user.values, &PlanPolicy::default()).unwrap();

    // An on-prem admin edits the same attribute between our read and our write.
    ou.modify_raw(&dn, vec![Mod::Replace("extensionAttribute3", HashSet::from(["edited on-prem"]))])
        .await
        .unwrap();
    let before = ou.snapshot(&dn).await.unwrap();
    let err = dir.apply(&user, &mods).await.unwrap_err();
    assert!(matches!(err, AdError::Conflict { .. }), "{err}");
    assert!(err.needs_reread());
    assert_eq!(ou.snapshot(&dn).await.unwrap(), before, "nothing written, not even attribute 4");

    // Re-read and re-plan: now it goes through.
    assert!(sync(&dir, &dn, &desired).await > 0);
    let user = read(&dir, &dn).await;
    assert_eq!(
        user.values.get(ManagedAttribute::from_ldap_name("extensionAttribute3").unwrap()),
        ["from cloud"]
    );
    ou.remove().await.ok();
}

#[tokio::test]
async fn attributes_outside_the_managed_set_are_untouched() {
    let (dir, ou) = setup("untouched").await;
    let dn = ou
        .add_user(
            "Katherine Johnson",
            &[
                ("givenName", &["Katherine"]),
                ("sn", &["Johnson"]),
                ("description", &["keep me"]),
                ("telephoneNumber", &["+1 555 0100"]),
                ("extensionAttribute1", &["old"]),
                ("proxyAddresses", &["SMTP:kj@example.test"]),
            ],
        )
        .await
        .unwrap();
    let before = ou.snapshot(&dn).await.unwrap();
    assert!(sync(&dir, &dn, &full_mailbox()).await > 0);
    let after = ou.snapshot(&dn).await.unwrap();
    assert_ne!(before, after, "managed attributes did change");
    assert_eq!(without_managed(&before), without_managed(&after));
    ou.remove().await.ok();
}

#[tokio::test]
async fn protected_objects_are_refused() {
    let (dir, ou) = setup("protected").await;
    let dn = ou.add_user("Domain Hero", &[("adminCount", &["1"])]).await.unwrap();
    let user = read(&dir, &dn).await;
    assert!(user.protection().is_some());
    let before = ou.snapshot(&dn).await.unwrap();
    let mods = plan(&full_mailbox(), &user.values, &PlanPolicy::default()).unwrap();
    let err = dir.apply(&user, &mods).await.unwrap_err();
    assert!(matches!(err, AdError::Protected { .. }), "{err}");
    assert_eq!(ou.snapshot(&dn).await.unwrap(), before);
    ou.remove().await.ok();
}

#[tokio::test]
async fn lookups_by_every_anchor_with_escaping() {
    let (dir, ou) = setup("lookup").await;
    let consistency = [0x28u8, 0x2a, 0x29, 0x5c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    // A CN full of filter and DN metacharacters.
    let dn = ou.add_user("Smith, John (*test*) \\ #1", &[]).await.unwrap();
    let user = read(&dir, &dn).await;
    assert!(user.is_user());

    let by_guid = dir.find(&UserKey::ObjectGuid(user.object_guid)).await.unwrap();
    assert_eq!(by_guid.len(), 1);
    assert_eq!(by_guid[0].dn.to_lowercase(), user.dn.to_lowercase());
    let sid = user.object_sid.clone().expect("users have a SID");
    assert!(sid.starts_with("S-1-5-21-"));
    let by_sid = dir.find(&UserKey::Sid(sid)).await.unwrap();
    assert_eq!(by_sid.len(), 1);
    assert_eq!(by_sid[0].object_guid, user.object_guid);
    let by_dn = dir.find(&UserKey::Dn(dn.clone())).await.unwrap();
    assert_eq!(by_dn.len(), 1);

    // mS-DS-ConsistencyGuid whose bytes include filter metacharacters and NUL.
    assert!(dir.find(&UserKey::ConsistencyGuid(consistency.to_vec())).await.unwrap().is_empty());
    ou.modify_raw_bytes(
        &dn,
        vec![Mod::Replace(b"mS-DS-ConsistencyGuid".to_vec(), HashSet::from([consistency.to_vec()]))],
    )
    .await
    .unwrap();
    let by_cg = dir.find(&UserKey::ConsistencyGuid(consistency.to_vec())).await.unwrap();
    assert_eq!(by_cg.len(), 1);
    assert_eq!(by_cg[0].consistency_guid.as_deref(), Some(&consistency[..]));
    assert_eq!(by_cg[0].object_guid, user.object_guid);

    // Absent keys find nothing rather than erroring; malformed keys are errors.
    assert!(dir.find(&UserKey::ObjectGuid([0xee; 16])).await.unwrap().is_empty());
    assert!(dir.find(&UserKey::Dn(format!("CN=nobody,{}", ou.dn))).await.unwrap().is_empty());
    assert!(dir.find(&UserKey::Sid("S-1-nonsense".into())).await.is_err());
    assert!(dir.find(&UserKey::Dn("<GUID=x>".into())).await.is_err());
    ou.remove().await.ok();
}

#[tokio::test]
async fn paged_search_streams_every_user() {
    let (_, ou) = setup("paged").await;
    let mut config = ou.env.ad_config().unwrap();
    config.page_size = 7;
    let dir = AdDirectory::connect(config).await.unwrap();
    for i in 0..25 {
        ou.add_user(&format!("Paged User {i:02}"), &[]).await.unwrap();
    }
    let mut seen = HashSet::new();
    let count = dir
        .for_each_user(&ou.dn, "(objectClass=user)", |u| {
            assert!(seen.insert(u.object_guid), "no user twice");
            Ok::<(), writeback_ad::AdError>(())
        })
        .await
        .unwrap();
    assert_eq!(count, 25);
    assert_eq!(seen.len(), 25);
    ou.remove().await.ok();
}

#[tokio::test]
async fn tls_is_validated_and_plain_ldap_needs_opt_in() {
    let env = ensure_dc().unwrap();
    // The right CA over LDAPS and over StartTLS.
    let dir = AdDirectory::connect(env.ad_config().unwrap()).await.unwrap();
    assert!(dir.root_dse().await.unwrap().highest_committed_usn > 0);
    let mut start_tls = env.ad_config().unwrap();
    start_tls.url = env.ldap_url.clone();
    start_tls.transport = writeback_ad::Transport::StartTls;
    AdDirectory::connect(start_tls).await.expect("StartTLS with the right CA");

    // A CA that did not sign the DC's certificate: the system's public roots.
    let mut wrong_ca = env.ad_config().unwrap();
    wrong_ca.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let err = AdDirectory::connect(wrong_ca.clone()).await.err().expect("refused");
    assert!(matches!(err, AdError::Connect { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    wrong_ca.url = env.ldap_url.clone();
    wrong_ca.transport = writeback_ad::Transport::StartTls;
    assert!(AdDirectory::connect(wrong_ca).await.is_err(), "StartTLS with a wrong CA");

    // Plain LDAP is a configuration error unless explicitly allowed.
    assert!(writeback_ad::config::transport_for(&env.ldap_url, false, false).is_err());

    // A wrong password is a bind error, not a hang.
    let mut wrong_pw = env.ad_config().unwrap();
    wrong_pw.bind_password = writeback_ad::Secret::new("not the password");
    let err = AdDirectory::connect(wrong_pw).await.err().expect("refused");
    assert!(matches!(err, AdError::Bind { code: 49, .. }), "{err}");
}

#[tokio::test]
async fn a_scan_split_by_usn_reads_every_user_once() {
    let (_, ou) = setup("usnsplit").await;
    let mut config = ou.env.ad_config().unwrap();
    config.page_size = 4;
    config.scan_streams = 3;
    let dir = AdDirectory::connect(config).await.unwrap();
    for i in 0..12 {
        ou.add_user(&format!("Split User {i:02}"), &[]).await.unwrap();
    }
    let read_all = |filter: String| {
        let dir = dir.clone();
        let base = ou.dn.clone();
        async move {
            let mut users = Vec::new();
            dir.for_each_user(&base, &filter, |u| {
                users.push(u);
                Ok::<(), writeback_ad::AdError>(())
            })
            .await
            .unwrap();
            users
        }
    };
    let filter = "(objectClass=user)";

    // Bounds between the users' creation USNs: every part holds exactly the users created in
    // its range, and no user is in two.
    let mut users = read_all(filter.to_owned()).await;
    assert_eq!(users.len(), 12);
    users.sort_by_key(|u| u.usn_created);
    for u in &users {
        assert!(u.usn_created > 0 && u.usn_created <= u.usn_changed, "{}: {} / {}", u.dn, u.usn_created, u.usn_changed);
    }
    let bounds = vec![users[3].usn_created, users[7].usn_created];
    let mut seen = HashSet::new();
    let mut sizes = Vec::new();
    for part in writeback_ad::scan::usn_partitions(filter, &bounds) {
        let found = read_all(part).await;
        sizes.push(found.len());
        for u in found {
            assert!(seen.insert(u.object_guid), "{} in two parts", u.dn);
        }
    }
    assert_eq!(sizes, vec![4, 4, 4]);
    assert_eq!(seen.len(), 12);

    // Bounds learned from a scan of this DC are used; those of another DC are not.
    let dse = dir.root_dse().await.unwrap();
    let learned = LearnedBounds { dc: dse.ds_service_name.clone(), parts: 3 * PARTS_PER_STREAM, bounds };
    let parts = dir.scan_parts(filter, Some(&learned)).await.unwrap();
    assert_eq!(parts.dc, dse.ds_service_name);
    assert_eq!(parts.filters, writeback_ad::scan::usn_partitions(filter, &learned.bounds));
    let elsewhere = LearnedBounds { dc: "CN=NTDS Settings,CN=OTHER-DC".into(), ..learned.clone() };
    let parts = dir.scan_parts(filter, Some(&elsewhere)).await.unwrap();
    assert_ne!(parts.filters, writeback_ad::scan::usn_partitions(filter, &learned.bounds));

    // The parts the directory picks without learned bounds (even over the DC's USNs; a user created after it
    // read the highest USN falls in the last part) also read every user exactly once.
    let parts = dir.scan_parts(filter, None).await.unwrap();
    assert_eq!((parts.parts, parts.filters.len()), (12, 12), "{parts:?}");
    ou.add_user("Split User late", &[]).await.unwrap();
    let mut seen = HashSet::new();
    for part in parts.filters {
        for u in read_all(part).await {
            assert!(seen.insert(u.object_guid), "{} in two parts", u.dn);
        }
    }
    assert_eq!(seen.len(), 13);
    ou.remove().await.ok();
}

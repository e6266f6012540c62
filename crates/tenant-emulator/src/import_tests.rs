use super::*;

fn entry() -> AdEntry {
    let mut attrs = HashMap::new();
    let mut bin = HashMap::new();
    attrs.insert("sAMAccountName".into(), vec!["jdoe".into()]);
    attrs.insert(
        "userPrincipalName".into(),
        vec!["jdoe@corp.example.com".into()],
    );
    attrs.insert("displayName".into(), vec!["John Doe".into()]);
    attrs.insert(
        "proxyAddresses".into(),
        vec![
            "SMTP:john.doe@example.com".into(),
            "smtp:jdoe@example.com".into(),
        ],
    );
    attrs.insert("extensionAttribute3".into(), vec!["Finance".into()]);
    attrs.insert(
        "msExchExtensionCustomAttribute2".into(),
        vec!["a".into(), "b".into()],
    );
    attrs.insert("msExchHideFromAddressLists".into(), vec!["TRUE".into()]);
    bin.insert("objectGUID".into(), vec![(1u8..=16).collect::<Vec<u8>>()]);
    // S-1-5-21-1-2-3-1104
    let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 1, 2, 3, 1104] {
        sid.extend_from_slice(&sub.to_le_bytes());
    }
    bin.insert("objectSid".into(), vec![sid]);
    AdEntry {
        dn: "CN=John Doe,OU=Staff,DC=corp,DC=example,DC=com".into(),
        attrs,
        bin_attrs: bin,
    }
}

#[test]
fn maps_anchor_sid_and_exchange_attributes() {
    let m = map_entry(&entry()).unwrap();
    assert_eq!(
        m.on_premises_immutable_id.as_deref(),
        Some("AQIDBAUGBwgJCgsMDQ4PEA==")
    );
    assert_eq!(
        m.on_premises_security_identifier.as_deref(),
        Some("S-1-5-21-1-2-3-1104")
    );
    assert_eq!(
        m.on_premises_domain_name.as_deref(),
        Some("corp.example.com")
    );
    assert_eq!(m.on_premises_sam_account_name.as_deref(), Some("jdoe"));
    assert_eq!(
        m.email_addresses,
        vec!["SMTP:john.doe@example.com", "smtp:jdoe@example.com"]
    );
    assert_eq!(
        m.custom_attributes.get(2).map(String::as_str),
        Some("Finance")
    );
    assert_eq!(
        m.extension_custom_attributes.get(1),
        Some(&vec!["a".to_owned(), "b".to_owned()])
    );
    assert!(m.hidden_from_address_lists_enabled);
    assert!(!m.is_exchange_cloud_managed);
}

#[test]
fn consistency_guid_wins_and_binary_in_attrs_is_read() {
    let mut e = entry();
    // A GUID whose bytes happen to be UTF-8 arrives in attrs, not bin_attrs.
    e.attrs.insert(
        "mS-DS-ConsistencyGuid".into(),
        vec!["ABCDEFGHIJKLMNOP".into()],
    );
    let m = map_entry(&e).unwrap();
    assert_eq!(
        m.on_premises_immutable_id.as_deref(),
        Some("QUJDREVGR0hJSktMTU5PUA==")
    );
}

#[test]
fn missing_primary_uses_mail_and_missing_anchor_fails() {
    let mut e = entry();
    e.attrs.insert(
        "proxyAddresses".into(),
        vec!["smtp:other@example.com".into()],
    );
    e.attrs.insert("mail".into(), vec!["jd@example.com".into()]);
    assert_eq!(
        map_entry(&e).unwrap().email_addresses,
        vec!["SMTP:jd@example.com", "smtp:other@example.com"]
    );
    e.bin_attrs.remove("objectGUID");
    assert!(map_entry(&e).is_err());
}

#[test]
fn reimport_updates_by_anchor_and_respects_cloud_managed() {
    let mut tenant = Tenant::default();
    let first = apply_import(&mut tenant, &[entry()], ImportOptions::default());
    assert_eq!((first.created, first.updated), (1, 0), "{:?}", first.errors);
    let again = apply_import(&mut tenant, &[entry()], ImportOptions::default());
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 1));
    let mut changed = entry();
    changed
        .attrs
        .insert("extensionAttribute3".into(), vec!["Legal".into()]);
    let third = apply_import(&mut tenant, &[changed.clone()], ImportOptions::default());
    assert_eq!(third.updated, 1);
    assert_eq!(tenant.users.len(), 1);
    let mb = tenant.mailboxes.values().next().unwrap().clone();
    assert_eq!(mb.custom_attributes[2], "Legal");
    let mut cloud = mb.clone();
    cloud.is_exchange_cloud_managed = true;
    tenant.put_mailbox(cloud);
    changed
        .attrs
        .insert("extensionAttribute3".into(), vec!["Ignored".into()]);
    apply_import(&mut tenant, &[changed], ImportOptions::default());
    assert_eq!(
        tenant.mailboxes.values().next().unwrap().custom_attributes[2],
        "Legal"
    );
}

#[test]
fn sid_rejects_truncated_bytes() {
    assert_eq!(sid_to_string(&[1, 5, 0, 0, 0, 0, 0, 5, 21, 0]), None);
    assert_eq!(sid_to_string(&[]), None);
}

#[test]
fn duplicate_addresses_are_quarantined_not_fatal() {
    let mut tenant = Tenant::default();
    apply_import(&mut tenant, &[entry()], ImportOptions::default());
    let mut twin = entry();
    twin.dn = "CN=Jane Doe,OU=Staff,DC=corp,DC=example,DC=com".into();
    twin.bin_attrs.insert(
        "objectGUID".into(),
        vec![(101u8..=116).collect::<Vec<u8>>()],
    );
    twin.attrs.insert(
        "userPrincipalName".into(),
        vec!["jane@corp.example.com".into()],
    );
    twin.attrs
        .insert("sAMAccountName".into(), vec!["jane".into()]);
    twin.attrs.insert(
        "proxyAddresses".into(),
        vec![
            "SMTP:john.doe@example.com".into(),
            "smtp:jane@example.com".into(),
        ],
    );
    let summary = apply_import(&mut tenant, &[twin], ImportOptions::default());
    assert_eq!(summary.created, 1, "{summary:?}");
    assert_eq!(summary.quarantined.len(), 1);
    let jane = tenant
        .resolve_mailbox("jane@corp.example.com")
        .unwrap()
        .to_owned();
    assert_eq!(
        tenant.mailboxes[&jane].email_addresses,
        vec!["SMTP:jane@example.com"]
    );
    // Re-importing the first user does not quarantine its own addresses.
    let again = apply_import(&mut tenant, &[entry()], ImportOptions::default());
    assert!(again.quarantined.is_empty(), "{again:?}");
}

#[test]
fn cloud_managed_import_creates_and_converts_mailboxes() {
    let cloud = ImportOptions {
        cloud_managed: true,
    };
    let mut tenant = Tenant::default();
    let mut other = entry();
    other.dn = "CN=Other,OU=Staff,DC=corp,DC=example,DC=com".into();
    other.bin_attrs.insert(
        "objectGUID".into(),
        vec![(201u8..=216).collect::<Vec<u8>>()],
    );
    other.attrs.insert(
        "userPrincipalName".into(),
        vec!["other@corp.example.com".into()],
    );
    other.attrs.insert(
        "proxyAddresses".into(),
        vec!["SMTP:other@example.com".into()],
    );
    // John exists already, not cloud-managed; Other is new.
    apply_import(&mut tenant, &[entry()], ImportOptions::default());
    let john = tenant
        .resolve_mailbox("jdoe@corp.example.com")
        .unwrap()
        .to_owned();
    let before = tenant.mailboxes[&john].clone();
    assert!(!before.is_exchange_cloud_managed);

    let mut changed = entry();
    changed
        .attrs
        .insert("extensionAttribute3".into(), vec!["Legal".into()]);
    let summary = apply_import(&mut tenant, &[changed.clone(), other.clone()], cloud);
    assert_eq!(
        (summary.created, summary.updated, summary.unchanged),
        (1, 1, 0),
        "{summary:?}"
    );
    let john_now = &tenant.mailboxes[&john];
    assert!(john_now.is_exchange_cloud_managed);
    assert_eq!(
        john_now.custom_attributes[2], "Legal",
        "AD's values land first"
    );
    assert!(john_now.when_changed > before.when_changed);
    let other_guid = tenant.resolve_mailbox("other@example.com").unwrap();
    assert!(tenant.mailboxes[other_guid].is_exchange_cloud_managed);

    // From now on the cloud masters the Exchange attributes: AD's change is not applied.
    changed
        .attrs
        .insert("extensionAttribute3".into(), vec!["Ignored".into()]);
    let again = apply_import(&mut tenant, &[changed, other], cloud);
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));
    assert_eq!(tenant.mailboxes[&john].custom_attributes[2], "Legal");
}

#[test]
fn import_of_many_users_is_linear() {
    let users = |from: u32, count: u32| -> Vec<AdEntry> {
        (from..from + count)
            .map(|n| {
                let mut e = entry();
                e.dn = format!("CN=User {n},OU=Staff,DC=corp,DC=example,DC=com");
                let mut guid = [0u8; 16];
                guid[..4].copy_from_slice(&n.to_be_bytes());
                e.bin_attrs.insert("objectGUID".into(), vec![guid.to_vec()]);
                e.attrs.insert(
                    "userPrincipalName".into(),
                    vec![format!("u{n}@corp.example.com")],
                );
                e.attrs
                    .insert("sAMAccountName".into(), vec![format!("u{n}")]);
                e.attrs.insert(
                    "proxyAddresses".into(),
                    vec![
                        format!("SMTP:u{n}@example.com"),
                        format!("smtp:u{n}@corp.example.com"),
                    ],
                );
                e
            })
            .collect()
    };
    let cloud = ImportOptions {
        cloud_managed: true,
    };
    let mut tenant = Tenant::default();
    let small = std::time::Instant::now();
    let summary = apply_import(&mut tenant, &users(0, 1_000), cloud);
    let small = small.elapsed();
    assert_eq!(summary.created, 1_000, "{:?}", summary.errors.first());
    let large = std::time::Instant::now();
    let summary = apply_import(&mut tenant, &users(1_000, 10_000), cloud);
    let large = large.elapsed();
    assert_eq!(summary.created, 10_000, "{:?}", summary.errors.first());
    assert!(summary.quarantined.is_empty());
    assert_eq!(
        tenant
            .mailboxes
            .values()
            .filter(|m| m.is_exchange_cloud_managed)
            .count(),
        11_000
    );
    // Ten times the users into a tenant eleven times the size: a quadratic step would take
    // ~100x as long; linear work takes ~10x. The bound leaves room for a noisy machine.
    println!("import: 1,000 users in {small:?}, 10,000 more in {large:?}");
    assert!(large < small * 40, "{small:?} vs {large:?}");
}

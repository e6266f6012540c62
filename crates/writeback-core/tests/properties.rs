//! Property tests of the planner against the LDAP modify simulator.
//!
//! For arbitrary valid cloud records and arbitrary current AD states (single-valued
//! attributes hold at most one value, multi-valued string attributes hold no two values
//! equal ignoring case, as AD enforces; proxyAddresses may hold case variants, which Samba
//! allows):
//! - the plan is accepted by the simulator, uses no `Replace`, passes `ensure_writable`;
//! - the resulting state plans to nothing, and equals the desired state under the
//!   comparison rules (checked by an oracle written independently of the planner);
//! - attributes the record leaves undecided are unchanged, and excluded address types are
//!   neither added nor removed.
//!
//! For arbitrary (mostly invalid) records and arbitrary AD contents, planning never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use writeback_core::attribute::ManagedAttribute as A;
use writeback_core::normalise::nfc;
use writeback_core::{
    ensure_writable, plan, AdValues, Mailbox, ModOp, Modification, PlanPolicy, ProxyAddress,
};

/// Small alphabets on purpose: they make case-only differences and collisions frequent.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-cA-C]{1,3}",
        Just("Caf\u{e9}".to_string()),
        Just("Cafe\u{301}".to_string()),
        Just("\u{1F600}".to_string()),
    ]
}

fn smtp_address() -> impl Strategy<Value = String> {
    (
        "[a-cA-C]{1,3}",
        prop_oneof![Just("x.com"), Just("X.com"), Just("y.org")],
    )
        .prop_map(|(l, d)| format!("{l}@{d}"))
}

/// A secondary (non-primary-SMTP) proxy address of some type, in either role.
fn other_proxy() -> impl Strategy<Value = String> {
    prop_oneof![
        smtp_address().prop_map(|a| format!("smtp:{a}")),
        (prop_oneof![Just("SIP"), Just("sip")], smtp_address())
            .prop_map(|(p, a)| format!("{p}:{a}")),
        (prop_oneof![Just("X500"), Just("x500")], "[a-cA-C]{1,3}")
            .prop_map(|(p, a)| format!("{p}:/o={a}")),
        (prop_oneof![Just("SPO"), Just("spo")], "[a-b]{1,2}")
            .prop_map(|(p, a)| format!("{p}:SPO_{a}@SPO_{a}")),
    ]
}

fn exchange_key(value: &str) -> (String, String) {
    let p = ProxyAddress::parse(value).unwrap();
    (p.prefix.to_lowercase(), nfc(&p.address).to_lowercase())
}

const TYPE_NAMES: [&str; 8] = [
    "UserMailbox",
    "SharedMailbox",
    "RoomMailbox",
    "EquipmentMailbox",
    "RemoteUserMailbox",
    "RemoteSharedMailbox",
    "RemoteRoomMailbox",
    "RemoteEquipmentMailbox",
];

/// The published numbers, restated here so the oracle does not reuse the crate's table.
fn expected_type_numbers(name: &str) -> (&'static str, &'static str) {
    match name.trim_start_matches("Remote") {
        "UserMailbox" => ("2147483648", "-2147483642"),
        "SharedMailbox" => ("34359738368", "-2147483642"),
        "RoomMailbox" => ("8589934592", "-2147481850"),
        "EquipmentMailbox" => ("17179869184", "-2147481594"),
        other => panic!("no numbers for {other}"),
    }
}

fn valid_mailbox() -> impl Strategy<Value = Mailbox> {
    (
        smtp_address(),
        vec(other_proxy(), 0..5),
        any::<bool>(),
        btree_map(1u8..=15, option::of(word()), 0..6),
        btree_map(1u8..=5, vec(word(), 0..4), 0..4),
        option::of(any::<bool>()),
        option::of(prop::sample::select(TYPE_NAMES.to_vec())),
    )
        .prop_flat_map(
            |(primary, others, give_primary_smtp, custom, extension, hidden, kind)| {
                let mut seen = HashSet::new();
                let mut proxies = vec![format!("SMTP:{primary}")];
                seen.insert(exchange_key(&proxies[0]));
                for o in others {
                    if seen.insert(exchange_key(&o)) {
                        proxies.push(o);
                    }
                }
                let extension: BTreeMap<String, Vec<String>> = extension
                    .into_iter()
                    .map(|(k, vs)| {
                        let mut seen = HashSet::new();
                        (
                            k.to_string(),
                            vs.into_iter()
                                .filter(|v| seen.insert(nfc(v).to_lowercase()))
                                .collect(),
                        )
                    })
                    .collect();
                let mailbox = Mailbox {
                    cloud_id: "id".into(),
                    primary_smtp: give_primary_smtp.then(|| primary.to_uppercase()),
                    proxy_addresses: proxies.clone(),
                    custom_attributes: custom
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.unwrap_or_default()))
                        .collect(),
                    extension_custom_attributes: extension,
                    hidden_from_address_lists: hidden,
                    recipient_type_details: kind.map(str::to_string),
                    ..Mailbox::default()
                };
                Just(proxies)
                    .prop_shuffle()
                    .prop_map(move |shuffled| Mailbox {
                        proxy_addresses: shuffled,
                        ..mailbox.clone()
                    })
            },
        )
}

/// Unique values ignoring case (what AD enforces on multi-valued string attributes).
fn unique_ci(values: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values
        .into_iter()
        .filter(|v| seen.insert(v.to_lowercase()))
        .collect()
}

fn unique_exact(values: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

fn ad_state() -> impl Strategy<Value = AdValues> {
    (
        btree_map(1u8..=15, word(), 0..6),
        btree_map(1u8..=5, vec(word(), 1..4), 0..4),
        vec(
            prop_oneof![
                smtp_address().prop_map(|a| format!("SMTP:{a}")),
                other_proxy(),
                Just("junk".to_string())
            ],
            0..6,
        ),
        option::of(smtp_address()),
        option::of(prop::sample::select(vec![
            "1",
            "2147483648",
            "34359738368",
            "8589934592",
            "17179869184",
        ])),
        option::of(prop::sample::select(vec![
            "0",
            "1073741824",
            "-2147483642",
            "-2147481850",
            "-2147481594",
        ])),
        option::of(prop::sample::select(vec!["TRUE", "FALSE"])),
    )
        .prop_map(
            |(custom, extension, proxies, mail, details, display, hidden)| {
                let mut ad = AdValues::new();
                for (n, v) in custom {
                    ad.set(A::custom_attribute(n).unwrap(), vec![nfc(&v)]);
                }
                for (n, vs) in extension {
                    ad.set(A::extension_custom_attribute(n).unwrap(), unique_ci(vs));
                }
                ad.set(A::ProxyAddresses, unique_exact(proxies));
                ad.set(A::Mail, mail.into_iter().collect());
                ad.set(
                    A::MsExchRecipientTypeDetails,
                    details.into_iter().map(str::to_string).collect(),
                );
                ad.set(
                    A::MsExchRecipientDisplayType,
                    display.into_iter().map(str::to_string).collect(),
                );
                ad.set(
                    A::MsExchHideFromAddressLists,
                    hidden.into_iter().map(str::to_string).collect(),
                );
                ad
            },
        )
}

fn policy() -> impl Strategy<Value = PlanPolicy> {
    prop_oneof![
        3 => Just(PlanPolicy::default()),
        1 => Just(PlanPolicy { excluded_address_types: vec![] }),
        1 => Just(PlanPolicy { excluded_address_types: vec!["x500".into(), "SPO".into()] }),
    ]
}

fn is_excluded(value: &str, policy: &PlanPolicy) -> bool {
    ProxyAddress::parse(value).is_ok_and(|p| {
        policy
            .excluded_address_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&p.prefix))
    })
}

fn sorted(values: &[String]) -> Vec<String> {
    let mut v = values.to_vec();
    v.sort();
    v
}

/// Independent statement of "the AD state is what the record asks for".
fn check_matches_desired(
    mailbox: &Mailbox,
    before: &AdValues,
    after: &AdValues,
    policy: &PlanPolicy,
) -> Result<(), TestCaseError> {
    for n in 1..=15u8 {
        let attr = A::custom_attribute(n).unwrap();
        let want: Vec<String> = mailbox
            .custom_attributes
            .get(&n.to_string())
            .map(|v| nfc(v))
            .filter(|v| !v.is_empty())
            .into_iter()
            .collect();
        prop_assert_eq!(after.get(attr).to_vec(), want, "{}", attr);
    }
    for n in 1..=5u8 {
        let attr = A::extension_custom_attribute(n).unwrap();
        let want: Vec<String> = mailbox
            .extension_custom_attributes
            .get(&n.to_string())
            .map(|vs| vs.iter().map(|v| nfc(v)).collect())
            .unwrap_or_default();
        prop_assert_eq!(sorted(after.get(attr)), sorted(&want), "{}", attr);
    }

    let desired: Vec<String> = mailbox.proxy_addresses.iter().map(|v| nfc(v)).collect();
    let owned_wanted: Vec<&String> = desired.iter().filter(|v| !is_excluded(v, policy)).collect();
    let owned_have: Vec<&String> = after
        .get(A::ProxyAddresses)
        .iter()
        .filter(|v| !is_excluded(v, policy))
        .collect();
    prop_assert_eq!(
        owned_have.len(),
        owned_wanted.len(),
        "proxyAddresses count: {:?}",
        owned_have
    );
    let mut unused: Vec<&String> = owned_have.clone();
    for w in &owned_wanted {
        let wp = ProxyAddress::parse(w).unwrap();
        let found = unused
            .iter()
            .position(|h| ProxyAddress::parse(h).is_ok_and(|hp| hp.same_value(&wp)));
        prop_assert!(found.is_some(), "{} missing from {:?}", w, owned_have);
        if let Some(i) = found {
            unused.remove(i);
        }
    }
    let excluded = |s: &AdValues| {
        sorted(
            &s.get(A::ProxyAddresses)
                .iter()
                .filter(|v| is_excluded(v, policy))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    prop_assert_eq!(
        excluded(after),
        excluded(before),
        "excluded types must be left alone"
    );

    let primary = desired.iter().find(|v| v.starts_with("SMTP:")).unwrap();
    prop_assert_eq!(
        after.get(A::Mail).to_vec(),
        vec![primary["SMTP:".len()..].to_string()]
    );

    match &mailbox.recipient_type_details {
        Some(name) => {
            let (details, display) = expected_type_numbers(name);
            prop_assert_eq!(
                after.get(A::MsExchRecipientTypeDetails).to_vec(),
                vec![details.to_string()]
            );
            prop_assert_eq!(
                after.get(A::MsExchRecipientDisplayType).to_vec(),
                vec![display.to_string()]
            );
        }
        None => {
            prop_assert_eq!(
                after.get(A::MsExchRecipientTypeDetails),
                before.get(A::MsExchRecipientTypeDetails)
            );
            prop_assert_eq!(
                after.get(A::MsExchRecipientDisplayType),
                before.get(A::MsExchRecipientDisplayType)
            );
        }
    }
    let hidden = after.get(A::MsExchHideFromAddressLists);
    match mailbox.hidden_from_address_lists {
        Some(true) => prop_assert_eq!(hidden.to_vec(), vec!["TRUE".to_string()]),
        Some(false) => prop_assert!(hidden.is_empty() || hidden == ["FALSE"]),
        None => prop_assert_eq!(hidden, before.get(A::MsExchHideFromAddressLists)),
    }
    Ok(())
}

fn check_shape(mods: &[Modification]) -> Result<(), TestCaseError> {
    prop_assert!(ensure_writable(mods).is_ok());
    let mut last: Option<(A, ModOp)> = None;
    for m in mods {
        prop_assert!(m.op != ModOp::Replace, "Replace planned: {:?}", m);
        prop_assert!(
            !m.values.is_empty(),
            "value-less modification planned: {:?}",
            m
        );
        if let Some((attr, op)) = last {
            // Stable attribute order; per attribute one Delete, then one Add.
            prop_assert!(
                attr < m.attribute
                    || (attr == m.attribute && op == ModOp::Delete && m.op == ModOp::Add)
            );
        }
        last = Some((m.attribute, m.op));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn plans_are_accepted_converge_and_reach_the_desired_state(
        mailbox in valid_mailbox(),
        before in ad_state(),
        policy in policy(),
    ) {
        let mods = plan(&mailbox, &before, &policy);
        prop_assert!(mods.is_ok(), "generator produced an invalid mailbox: {:?}", mods);
        let mods = mods.unwrap();
        check_shape(&mods)?;
        let after = before.apply(&mods);
        prop_assert!(after.is_ok(), "simulator refused {:?}: {:?}", mods, after);
        let after = after.unwrap();
        let again = plan(&mailbox, &after, &policy).unwrap();
        prop_assert!(again.is_empty(), "second plan not empty: {:?}", again);
        check_matches_desired(&mailbox, &before, &after, &policy)?;
        if after == before {
            prop_assert!(mods.is_empty(), "a plan that changes nothing must be empty: {:?}", mods);
        }
    }

    #[test]
    fn arbitrary_records_and_ad_contents_never_panic(
        proxy_addresses in vec(prop_oneof![any::<String>(), other_proxy(), "(SMTP|smtp|X500|):[ -~]{0,12}"], 0..5),
        primary_smtp in option::of(any::<String>()),
        custom in btree_map(prop_oneof![any::<String>(), "[0-9]{1,2}"], any::<String>(), 0..4),
        extension in btree_map(prop_oneof![any::<String>(), "[0-9]"], vec(any::<String>(), 0..3), 0..3),
        kind in option::of(prop_oneof![any::<String>(), prop::sample::select(TYPE_NAMES.to_vec()).prop_map(str::to_string)]),
        raw_ad in vec((prop::sample::select(writeback_core::WRITABLE_ATTRIBUTES.to_vec()), vec(any::<String>(), 0..3)), 0..6),
    ) {
        let mailbox = Mailbox {
            cloud_id: "id".into(),
            primary_smtp,
            proxy_addresses,
            custom_attributes: custom,
            extension_custom_attributes: extension,
            recipient_type_details: kind,
            ..Mailbox::default()
        };
        let before = AdValues::from_ldap(raw_ad.into_iter().map(|(n, v)| (n.to_string(), v)));
        match plan(&mailbox, &before, &PlanPolicy::default()) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(mods) => {
                check_shape(&mods)?;
                // Even from garbage AD contents a plan must apply and converge.
                let after = before.apply(&mods);
                prop_assert!(after.is_ok(), "simulator refused {:?}: {:?}", mods, after);
                let again = plan(&mailbox, &after.unwrap(), &PlanPolicy::default()).unwrap();
                prop_assert!(again.is_empty(), "second plan not empty: {:?}", again);
            }
        }
    }
}

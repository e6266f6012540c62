//! The fast planner against the reference copy of the planner as it was before it was made
//! fast (`tests/reference/mod.rs`): every fast path (ASCII shortcuts, borrowing instead of
//! NFC copies, parsing proxy addresses once, pairwise duplicate checks, the allocation-free
//! in-sync check) must give exactly what the slow path gives, errors included.
//!
//! Strings are drawn from pieces chosen to break shortcuts: non-NFC sequences, characters
//! whose lower case is ASCII (KELVIN SIGN) or longer than one character (capital I with dot),
//! sharp s in both cases, final sigma, astral characters, control characters, and lengths
//! at AD's limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

mod inputs;
mod reference;

use inputs::{ad_for, mailbox, policy, proxy, text, TRICKY};
use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;
use writeback_core::normalise::{
    eq_ignore_case, first_control_char, fold_case, is_nfc, is_normalised, nfc, nfc_cow,
    normalise_mailbox, utf16_len,
};
use writeback_core::{
    check_smtp_address, plan, plan_desired, validate, AdValues, Mailbox, ManagedAttribute as A,
    PlanPolicy, ProxyAddress,
};

/// The fast and the reference planner agree on `mailbox` and `ad`, through `plan`,
/// `validate` and `plan_desired`.
fn assert_same_as_reference(mailbox: &Mailbox, ad: &AdValues, policy: &PlanPolicy) {
    let fast = plan(mailbox, ad, policy);
    let slow = reference::plan(mailbox, ad, policy);
    assert_eq!(fast, slow, "plan differs for {mailbox:?} / {ad:?}");

    match (validate(mailbox), reference::validate(mailbox)) {
        (Ok(state), Ok(expected)) => {
            for attr in A::ALL {
                assert_eq!(state.values(attr), expected.values(attr), "{attr}");
            }
            let proxies: Vec<(String, String)> = state
                .proxy_addresses()
                .iter()
                .map(|p| (p.prefix.clone(), p.address.clone()))
                .collect();
            let expected_proxies: Vec<(String, String)> = expected
                .proxy_addresses
                .iter()
                .map(|p| (p.prefix.clone(), p.address.clone()))
                .collect();
            assert_eq!(proxies, expected_proxies);
            assert_eq!(state.recipient_type(), expected.recipient_type);
            assert_eq!(state.hidden_from_address_lists(), expected.hidden);
            assert_eq!(
                plan_desired(&state, ad, policy),
                reference::plan_desired(&expected, ad, policy)
            );
        }
        (fast, slow) => assert_eq!(fast.err(), slow.err()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn planner_matches_the_reference(
        (mailbox, ad) in mailbox().prop_flat_map(|m| { let ad = ad_for(&m); (Just(m), ad) }),
        policy in policy(),
    ) {
        assert_same_as_reference(&mailbox, &ad, &policy);
        // Its normalised form takes the path that borrows instead of copying.
        assert_same_as_reference(&normalise_mailbox(&mailbox), &ad, &policy);
        // The record planned against its own (normalised) values, and against nothing.
        assert_same_as_reference(&mailbox, &AdValues::new(), &policy);
        if let Ok(mods) = reference::plan(&mailbox, &ad, &policy) {
            if let Ok(after) = ad.apply(&mods) {
                assert_same_as_reference(&mailbox, &after, &policy);
            }
        }
    }

    #[test]
    fn string_functions_match_the_reference(a in text(), b in text()) {
        assert_strings_match_reference(&a, &b);
    }

    #[test]
    fn string_functions_match_the_reference_on_any_string(a in any::<String>(), b in any::<String>()) {
        assert_strings_match_reference(&a, &b);
    }

    #[test]
    fn smtp_check_matches_the_reference(a in "[a-zA-Z0-9.@_!'+-]{0,12}", d in "[a-zA-Z0-9.-]{0,12}") {
        for candidate in [a.clone(), format!("{a}@{d}"), format!("{a}.{d}")] {
            prop_assert_eq!(check_smtp_address(&candidate), reference::check_smtp_address(&candidate), "{}", candidate);
        }
    }

    #[test]
    fn proxy_parsing_matches_the_reference(value in prop_oneof![proxy(), any::<String>()]) {
        let fast = ProxyAddress::parse(&value).map(|p| (p.prefix, p.address));
        let slow = reference::ProxyAddress::parse(&value).map(|p| (p.prefix, p.address));
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn is_normalised_says_whether_normalising_changes_anything(mailbox in mailbox()) {
        prop_assert_eq!(is_normalised(&mailbox), normalise_mailbox(&mailbox) == mailbox);
        prop_assert_eq!(normalise_mailbox(&mailbox), reference::normalise_mailbox(&mailbox));
    }
}

fn assert_strings_match_reference(a: &str, b: &str) {
    assert_eq!(nfc(a), reference::nfc(a), "nfc {a:?}");
    assert_eq!(nfc_cow(a), reference::nfc(a), "nfc_cow {a:?}");
    assert_eq!(is_nfc(a), reference::nfc(a) == a, "is_nfc {a:?}");
    assert_eq!(fold_case(a), reference::fold_case(a), "fold_case {a:?}");
    assert_eq!(
        first_control_char(a),
        reference::first_control_char(a),
        "control {a:?}"
    );
    assert_eq!(utf16_len(a), reference::utf16_len(a), "utf16_len {a:?}");
    assert_eq!(
        eq_ignore_case(a, b),
        reference::eq_ignore_case(a, b),
        "eq_ignore_case {a:?} {b:?}"
    );
    assert_eq!(eq_ignore_case(a, a), reference::eq_ignore_case(a, a));
    let upper = a.to_uppercase();
    assert_eq!(
        eq_ignore_case(a, &upper),
        reference::eq_ignore_case(a, &upper),
        "eq_ignore_case {a:?} {upper:?}"
    );
}

#[test]
fn tricky_strings_match_the_reference_pairwise() {
    for a in TRICKY {
        for b in TRICKY {
            assert_strings_match_reference(a, b);
        }
    }
}

#[test]
fn fast_paths_keep_unicode_semantics() {
    // Not ASCII, so the shortcuts must not apply; what the crate did before still holds.
    assert_eq!(nfc("Cafe\u{301}"), "Caf\u{e9}");
    assert!(!is_nfc("Cafe\u{301}"));
    assert!(is_nfc("Caf\u{e9}"));
    assert!(matches!(
        nfc_cow("plain ascii"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert!(matches!(
        nfc_cow("Caf\u{e9}"),
        std::borrow::Cow::Borrowed(_)
    ));
    // Simple lower-casing, char by char: sharp s is not SS.
    assert!(!eq_ignore_case("STRASSE", "stra\u{df}e"));
    assert!(eq_ignore_case("STRA\u{1e9e}E", "stra\u{df}e"));
    // KELVIN SIGN lower-cases to ASCII 'k': one ASCII side is not enough for the shortcut.
    assert!(eq_ignore_case("\u{212a}", "k"));
    assert!(eq_ignore_case("k", "\u{212a}"));
    assert_eq!(fold_case("\u{212a}"), "k");
    // Capital I with dot lower-cases to two characters; dotless i is its own letter.
    assert_eq!(fold_case("\u{130}"), "i\u{307}");
    assert!(eq_ignore_case("\u{130}stanbul", "i\u{307}stanbul"));
    assert!(!eq_ignore_case("\u{130}stanbul", "istanbul"));
    assert!(!eq_ignore_case("\u{131}", "i"));
    assert_eq!(fold_case("ISTANBUL"), "istanbul");
    assert_eq!(first_control_char("x\u{85}"), Some('\u{85}'));
    assert_eq!(first_control_char("x\u{7f}y\0"), Some('\u{7f}'));
    assert_eq!(utf16_len("\u{1f600}a"), 3);
}

#[test]
fn a_record_not_in_nfc_plans_as_its_normalised_form() {
    let mut mailbox = Mailbox {
        cloud_id: "id".into(),
        proxy_addresses: vec!["SMTP:jose\u{301}@x.com".into()],
        primary_smtp: Some("JOSE\u{301}@X.COM".into()),
        ..Mailbox::default()
    };
    mailbox
        .custom_attributes
        .insert("1".into(), "Cafe\u{301}".into());
    assert!(!is_normalised(&mailbox));
    let mods = plan(&mailbox, &AdValues::new(), &PlanPolicy::default()).unwrap();
    assert_eq!(
        mods,
        reference::plan(&mailbox, &AdValues::new(), &PlanPolicy::default()).unwrap()
    );
    let written: Vec<&str> = mods
        .iter()
        .flat_map(|m| m.values.iter().map(String::as_str))
        .collect();
    assert!(written.contains(&"Caf\u{e9}"), "{written:?}");
    assert!(written.contains(&"SMTP:jos\u{e9}@x.com"), "{written:?}");
    assert!(written.contains(&"jos\u{e9}@x.com"), "{written:?}");
}

#[test]
fn data_driven_cases_match_the_reference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("cases");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mailbox: Mailbox = serde_json::from_value(case["mailbox"].clone()).unwrap();
        let ad: AdValues = serde_json::from_value(case["ad"].clone()).unwrap();
        let policy: PlanPolicy = match case.get("policy") {
            None | Some(Value::Null) => PlanPolicy::default(),
            Some(p) => serde_json::from_value(p.clone()).unwrap(),
        };
        assert_same_as_reference(&mailbox, &ad, &policy);
        count += 1;
    }
    assert!(count >= 90, "only {count} case files found");
}

/// Long lists take the hash-set duplicate checks and skip the bit-set in-sync check.
#[test]
fn long_lists_match_the_reference() {
    for n in [31usize, 32, 33, 63, 64, 65, 100] {
        let mut proxies: Vec<String> = (0..n).map(|i| format!("smtp:a{i}@x.com")).collect();
        proxies.push("SMTP:p@x.com".into());
        let mut mailbox = Mailbox {
            cloud_id: "id".into(),
            proxy_addresses: proxies.clone(),
            ..Mailbox::default()
        };
        let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
        mailbox
            .extension_custom_attributes
            .insert("1".into(), values.clone());
        let policy = PlanPolicy::default();
        let mut ad = AdValues::new();
        assert_same_as_reference(&mailbox, &ad, &policy);
        ad.set(A::ProxyAddresses, proxies.clone());
        ad.set(A::MsExchExtensionCustomAttribute1, values.clone());
        assert_same_as_reference(&mailbox, &ad, &policy);
        // A duplicate at the very end, ignoring case.
        let mut duplicated = mailbox.clone();
        duplicated
            .proxy_addresses
            .push("SMTP:A0@X.COM".replace("SMTP", "smtp"));
        assert_same_as_reference(&duplicated, &ad, &policy);
        let mut duplicated = mailbox.clone();
        let mut with_duplicate = values.clone();
        with_duplicate.push("V0".into());
        duplicated
            .extension_custom_attributes
            .insert("1".into(), with_duplicate);
        assert_same_as_reference(&duplicated, &ad, &policy);
        // Case variants in AD next to the desired values: the collision rule.
        let mut variants = proxies.clone();
        variants.extend(proxies.iter().take(3).map(|p| p.to_uppercase()));
        ad.set(A::ProxyAddresses, variants);
        assert_same_as_reference(&mailbox, &ad, &policy);
    }
}

#[test]
fn custom_attribute_maps_keyed_unusually_match_the_reference() {
    let keys = [
        "1", "2", "9", "10", "15", "16", "0", "01", "\u{661}", "e\u{301}", "\u{e9}",
    ];
    for key in keys {
        for other in keys {
            let mut mailbox = Mailbox {
                cloud_id: "id".into(),
                proxy_addresses: vec!["SMTP:a@x.com".into()],
                ..Mailbox::default()
            };
            mailbox.custom_attributes.insert(key.into(), "v".into());
            mailbox.custom_attributes.insert(other.into(), "w".into());
            mailbox
                .extension_custom_attributes
                .insert(other.into(), vec!["x".into()]);
            assert_same_as_reference(&mailbox, &AdValues::new(), &PlanPolicy::default());
        }
    }
}

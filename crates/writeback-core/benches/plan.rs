//! Cost of `writeback_core::plan()` alone (issue 5): validation, normalisation and the diff,
//! with no I/O and no state store.
//!
//! `cargo bench -p writeback-core --bench plan` (N from `PLAN_BENCH_N`, default 200,000).
//! The mailboxes and AD values have the shapes of writeback-engine's `engine_alone` bench
//! (`user()` and `mailbox()` there): five shared proxy addresses plus one removed and one
//! added, custom attributes 1..5 and 10, extension custom attribute 1 on every third
//! mailbox, the hidden flag and the recipient type. Two cases are timed:
//! - **first pass**: five attributes differ (custom attributes 2..4, proxyAddresses, hidden);
//! - **in sync**: the AD values are those the first pass's plan leaves (`AdValues::apply`).
//!
//! Building the inputs happens outside the timed loops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench may fail loudly

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use writeback_core::{plan, AdValues, Anchors, Mailbox, ManagedAttribute as A, PlanPolicy};

const DEFAULT_N: usize = 200_000;

fn primary(i: usize) -> String {
    format!("user{i:07}@bench.test")
}

/// The proxy addresses both sides share; AD also has `u.old`, the cloud instead `.b1`.
fn shared_proxies(i: usize) -> Vec<String> {
    vec![
        format!("SMTP:{}", primary(i)),
        format!("smtp:user{i:07}@benchtenant.mail.onmicrosoft.com"),
        format!("smtp:u{i}.alias@bench.test"),
        format!(
            "X500:/o=Bench/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=user{i:07}"
        ),
        format!("SIP:{}", primary(i)),
    ]
}

/// The AD values of user `i` before the first pass.
fn ad_values(i: usize) -> AdValues {
    let mut values = AdValues::new();
    values.set(A::ExtensionAttribute1, vec![format!("Dept-{:02}", i % 97)]);
    values.set(A::ExtensionAttribute2, vec![format!("old-ca2-user{i:07}")]);
    values.set(A::ExtensionAttribute3, vec![format!("old-ca3-{i}")]);
    values.set(A::ExtensionAttribute4, vec!["old-ca4".to_owned()]);
    values.set(A::ExtensionAttribute5, vec![format!("Cost-{:03}", i % 211)]);
    values.set(A::ExtensionAttribute10, vec![format!("Site-{:02}", i % 13)]);
    if i % 3 == 0 {
        values.set(
            A::MsExchExtensionCustomAttribute1,
            vec![format!("skill-{}", i % 7), "lang-en".to_owned()],
        );
    }
    let mut proxies = shared_proxies(i);
    proxies.insert(3, format!("smtp:u{i}.old@bench.test"));
    values.set(A::ProxyAddresses, proxies);
    values.set(A::Mail, vec![primary(i)]);
    values.set(A::MsExchRecipientTypeDetails, vec!["2147483648".to_owned()]);
    values.set(
        A::MsExchRecipientDisplayType,
        vec!["-2147483642".to_owned()],
    );
    match i % 4 {
        0 => values.set(A::MsExchHideFromAddressLists, vec!["TRUE".to_owned()]),
        1 => values.set(A::MsExchHideFromAddressLists, vec!["FALSE".to_owned()]),
        _ => {}
    }
    values
}

/// The Exchange record of user `i`'s mailbox.
fn mailbox(i: usize) -> Mailbox {
    let mut proxy_addresses = shared_proxies(i);
    proxy_addresses.push(format!("smtp:user{i:07}.b1@bench.test"));
    let mut custom_attributes = BTreeMap::new();
    custom_attributes.insert("1".to_owned(), format!("Dept-{:02}", i % 97));
    custom_attributes.insert("2".to_owned(), format!("b1-ca2-user{i:07}"));
    custom_attributes.insert("3".to_owned(), format!("b1-ca3-{}", i + 1));
    custom_attributes.insert("4".to_owned(), "b1-ca4".to_owned());
    custom_attributes.insert("5".to_owned(), format!("Cost-{:03}", i % 211));
    custom_attributes.insert("10".to_owned(), format!("Site-{:02}", i % 13));
    let mut extension_custom_attributes = BTreeMap::new();
    if i % 3 == 0 {
        extension_custom_attributes.insert(
            "1".to_owned(),
            vec![format!("skill-{}", i % 7), "lang-en".to_owned()],
        );
    }
    Mailbox {
        cloud_id: format!("00000000-0000-4000-8000-{i:012}"),
        primary_smtp: Some(primary(i)),
        proxy_addresses,
        custom_attributes,
        extension_custom_attributes,
        hidden_from_address_lists: Some(i % 4 != 0),
        recipient_type_details: Some("UserMailbox".to_owned()),
        anchors: Anchors::default(),
        when_changed_utc: Some("2025-11-27T12:00:00.0000000Z".to_owned()),
    }
}

/// Plans every pair once; returns the elapsed time and the total number of modifications.
fn time_plans(pairs: &[(Mailbox, AdValues)], policy: &PlanPolicy) -> (Duration, usize) {
    let start = Instant::now();
    let mut modifications = 0usize;
    for (mailbox, current) in pairs {
        let mods = plan(black_box(mailbox), black_box(current), policy).expect("valid record");
        modifications += black_box(mods).len();
    }
    (start.elapsed(), modifications)
}

fn report(label: &str, n: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let per_call_us = secs * 1e6 / n as f64;
    println!(
        "{label:<12} {n:>8} calls  {secs:>7.3} s  {per_call_us:>7.3} µs/call  {:>10.0} calls/s",
        n as f64 / secs
    );
}

fn main() {
    let n = std::env::var("PLAN_BENCH_N")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_N);
    let policy = PlanPolicy::default();

    let generation = Instant::now();
    let first: Vec<(Mailbox, AdValues)> = (0..n).map(|i| (mailbox(i), ad_values(i))).collect();
    let in_sync: Vec<(Mailbox, AdValues)> = first
        .iter()
        .map(|(mailbox, before)| {
            let mods = plan(mailbox, before, &policy).expect("valid record");
            let after = before.apply(&mods).expect("plan accepted by the simulator");
            (mailbox.clone(), after)
        })
        .collect();
    println!(
        "plan bench: N = {n}; inputs built in {:.2} s (not timed)",
        generation.elapsed().as_secs_f64()
    );

    // One untimed warm-up pass over a slice, so the first timed loop does not pay page faults.
    let warm = &first[..n.min(10_000)];
    black_box(time_plans(warm, &policy));

    let (elapsed, mods) = time_plans(&first, &policy);
    // Five changed attributes: custom attributes 2..4 and proxyAddresses are a delete plus an
    // add each; the hidden flag is too where AD has a value, and an add alone where it has none.
    let expected_first: usize = (0..n).map(|i| if i % 4 >= 2 { 9 } else { 10 }).sum();
    assert_eq!(mods, expected_first, "first-pass modifications");
    report("first pass", n, elapsed);

    let (elapsed, mods) = time_plans(&in_sync, &policy);
    assert_eq!(mods, 0, "in-sync pairs plan nothing");
    report("in sync", n, elapsed);
}

//! Input generators for the equivalence tests: strings drawn from pieces chosen to break
//! shortcuts, records valid and wild, and AD values derived from a record.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use writeback_core::normalise::nfc;
use writeback_core::{AdValues, Mailbox, ManagedAttribute as A, PlanPolicy};

/// Pieces that trip up ASCII and "already normalised" shortcuts.
pub const TRICKY: [&str; 40] = [
    "",
    "a",
    "A",
    "b",
    "B",
    "Cafe\u{301}",
    "Caf\u{e9}",
    "CAF\u{c9}",
    "STRASSE",
    "strasse",
    "stra\u{df}e",
    "STRA\u{1e9e}E",
    "\u{130}stanbul",
    "i\u{307}stanbul",
    "istanbul",
    "ISTANBUL",
    "\u{131}",
    "\u{212a}",
    "k",
    "K",
    "\u{212b}",
    "\u{c5}",
    "\u{2126}",
    "\u{3c9}",
    "\u{3a3}",
    "\u{3c3}",
    "\u{3c2}",
    "\u{1f600}",
    "\u{1c5}",
    "\u{fb00}",
    "\u{ff21}",
    "\u{958}",
    "\u{1e0a}\u{323}",
    "\u{1100}\u{1161}",
    "e\u{301}\u{301}",
    "a\0b",
    "a\tb",
    "\u{7f}",
    "\u{85}",
    "x\u{9f}y",
];

fn tricky() -> impl Strategy<Value = String> {
    prop::sample::select(TRICKY.to_vec()).prop_map(str::to_owned)
}

/// Concatenations of tricky pieces and plain ASCII.
pub fn text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![3 => tricky(), 2 => "[a-zA-Z0-9 .@:-]{1,4}"],
        0..4,
    )
    .prop_map(|p| p.concat())
}

/// Strings at and around AD's length limits, in and out of NFC.
fn long_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["a", "\u{e9}", "e\u{301}", "\u{1f600}", "\u{130}"]),
        prop::sample::select(vec![255usize, 256, 512, 513, 1023, 1024, 1025, 2048, 2049]),
    )
        .prop_map(|(piece, n)| piece.repeat(n))
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![8 => text(), 1 => long_text()]
}

fn domain() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "x.com",
        "X.COM",
        "y.org",
        "b\u{fc}cher.example",
        "bu\u{308}cher.example",
        "localhost",
        "1.2.3.4",
        "-a.com",
        "a..com",
        "[192.0.2.1]",
        "xn--bcher-kva.example",
    ])
    .prop_map(str::to_owned)
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => ("[a-cA-C]{1,3}", domain()).prop_map(|(l, d)| format!("{l}@{d}")),
        3 => (tricky(), "[a-c]{0,2}", domain()).prop_map(|(t, l, d)| format!("{t}{l}@{d}")),
        1 => text(),
        1 => Just(format!("{}@x.com", "a".repeat(64))),
        1 => Just(format!("{}@x.com", "a".repeat(65))),
        1 => Just(format!("a@{}.com", "d".repeat(63))),
        1 => Just(format!("a@{}.com", "d".repeat(64))),
        1 => Just("a.b@x.com".to_owned()),
        1 => Just(".a@x.com".to_owned()),
        1 => Just("a@b@x.com".to_owned()),
        1 => Just("o'brien+tag@x.com".to_owned()),
    ]
}

pub fn proxy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => address().prop_map(|a| format!("smtp:{a}")),
        2 => address().prop_map(|a| format!("SMTP:{a}")),
        2 => (prop::sample::select(vec!["SIP", "sip", "Sip"]), address())
            .prop_map(|(p, a)| format!("{p}:{a}")),
        2 => (prop::sample::select(vec!["X500", "x500"]), text())
            .prop_map(|(p, a)| format!("{p}:/o={a}")),
        1 => (prop::sample::select(vec!["SPO", "spo"]), "[a-b]{1,2}")
            .prop_map(|(p, a)| format!("{p}:SPO_{a}@SPO_{a}")),
        1 => (prop::sample::select(vec!["X400", "eum", "sm tp", "smtp\u{e9}", ""]), text())
            .prop_map(|(p, a)| format!("{p}:{a}")),
        1 => text(),
    ]
}

/// Keys, valid and not (NFC-sensitive ones included).
fn key(max: u8) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (1..=max).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "0", "16", "6", "01", " 1", "+1", "1 ", "one", "", "\u{661}", "\u{ff11}", "e\u{301}",
            "\u{e9}", "99", "100",
        ])
        .prop_map(str::to_owned),
    ]
}

fn recipient_type() -> impl Strategy<Value = Option<String>> {
    option::of(
        prop::sample::select(vec![
            "UserMailbox",
            "usermailbox",
            "SharedMailbox",
            "RemoteRoomMailbox",
            "EquipmentMailbox",
            "MailUser",
            "",
            "User\u{301}Mailbox",
        ])
        .prop_map(str::to_owned),
    )
}

/// Tricky pieces a valid record may hold (no control characters).
fn clean_text() -> impl Strategy<Value = String> {
    let pieces: Vec<&str> = TRICKY
        .iter()
        .copied()
        .filter(|p| !p.chars().any(char::is_control))
        .collect();
    vec(
        prop_oneof![
            3 => prop::sample::select(pieces).prop_map(str::to_owned),
            2 => "[a-zA-Z0-9 .-]{1,4}",
        ],
        0..4,
    )
    .prop_map(|p| p.concat())
}

fn clean_address() -> impl Strategy<Value = String> {
    let letters: Vec<&str> = TRICKY
        .iter()
        .copied()
        .filter(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric())
        })
        .filter(|p| p.chars().all(|c| !c.is_whitespace() && !c.is_control()))
        .collect();
    (
        vec(
            prop_oneof![
                2 => "[a-cA-C]{1,2}",
                1 => prop::sample::select(letters).prop_map(str::to_owned),
            ],
            1..3,
        ),
        prop::sample::select(vec![
            "x.com",
            "X.COM",
            "y.org",
            "b\u{fc}cher.example",
            "bu\u{308}cher.example",
        ]),
    )
        .prop_map(|(local, domain)| format!("{}@{domain}", local.concat()))
}

fn clean_proxy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => clean_address().prop_map(|a| format!("smtp:{a}")),
        2 => (prop::sample::select(vec!["SIP", "sip"]), clean_address())
            .prop_map(|(p, a)| format!("{p}:{a}")),
        2 => (prop::sample::select(vec!["X500", "x500"]), clean_text())
            .prop_map(|(p, a)| format!("{p}:/o={a}")),
        1 => (prop::sample::select(vec!["SPO", "spo"]), "[a-b]{1,2}")
            .prop_map(|(p, a)| format!("{p}:SPO_{a}@SPO_{a}")),
        1 => Just(String::new()),
    ]
}

/// Records that mostly pass validation, so the diff is exercised on tricky values.
fn clean_mailbox() -> impl Strategy<Value = Mailbox> {
    (
        clean_address(),
        prop_oneof![
            8 => vec(clean_proxy(), 0..7),
            1 => vec(clean_proxy(), 30..70),
        ],
        option::of(0u8..6),
        btree_map(1u8..=15, clean_text(), 0..7),
        btree_map(1u8..=5, vec(clean_text(), 0..4), 0..3),
        option::of(any::<bool>()),
        option::of(
            prop::sample::select(vec!["UserMailbox", "SharedMailbox", "RoomMailbox", ""])
                .prop_map(str::to_owned),
        ),
        any::<prop::sample::Index>(),
    )
        .prop_map(
            |(primary, others, windows, custom, extension, hidden, kind, at)| {
                let mut proxies = others;
                let at = at.index(proxies.len() + 1);
                proxies.insert(at, format!("SMTP:{primary}"));
                Mailbox {
                    cloud_id: "id".into(),
                    primary_smtp: windows.map(|how| variant(&primary, how)),
                    proxy_addresses: proxies,
                    custom_attributes: custom
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                    extension_custom_attributes: extension
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                    hidden_from_address_lists: hidden,
                    recipient_type_details: kind,
                    ..Mailbox::default()
                }
            },
        )
}

pub fn mailbox() -> impl Strategy<Value = Mailbox> {
    prop_oneof![3 => clean_mailbox(), 1 => wild_mailbox()]
}

/// Anything goes: most of these fail validation, on every rule.
fn wild_mailbox() -> impl Strategy<Value = Mailbox> {
    (
        address(),
        prop_oneof![
            8 => vec(proxy(), 0..7),
            1 => vec(proxy(), 30..70),
        ],
        option::of(prop_oneof![address(), Just(String::new())]),
        btree_map(key(15), value(), 0..6),
        btree_map(
            key(5),
            prop_oneof![8 => vec(value(), 0..4), 1 => vec(text(), 30..40)],
            0..3,
        ),
        option::of(any::<bool>()),
        recipient_type(),
        0usize..8,
    )
        .prop_map(
            |(primary, others, windows, custom, extension, hidden, kind, at)| {
                let mut proxies = others;
                // Usually one primary SMTP address somewhere in the list, so records pass
                // validation often enough to reach the diff.
                if at < 7 {
                    let at = at.min(proxies.len());
                    proxies.insert(at, format!("SMTP:{primary}"));
                }
                Mailbox {
                    cloud_id: "id".into(),
                    primary_smtp: windows,
                    proxy_addresses: proxies,
                    custom_attributes: custom,
                    extension_custom_attributes: extension,
                    hidden_from_address_lists: hidden,
                    recipient_type_details: kind,
                    ..Mailbox::default()
                }
            },
        )
}

/// A case or form variant of `value`, as AD might hold it.
fn variant(value: &str, how: u8) -> String {
    match how % 6 {
        0 => value.to_owned(),
        1 => value.to_uppercase(),
        2 => value.to_lowercase(),
        3 => nfc(value),
        4 => match value.split_once(':') {
            Some((p, a)) => format!("{}:{a}", p.to_lowercase()),
            None => value.to_uppercase(),
        },
        _ => match value.split_once(':') {
            Some((p, a)) => format!("{}:{}", p.to_uppercase(), a.to_uppercase()),
            None => value.to_lowercase(),
        },
    }
}

/// AD values derived from the record (variants of its values, so lists overlap, collide and
/// differ by case) plus unrelated ones.
pub fn ad_for(mailbox: &Mailbox) -> impl Strategy<Value = AdValues> {
    let proxies = mailbox.proxy_addresses.clone();
    let custom = mailbox.custom_attributes.clone();
    let extension = mailbox.extension_custom_attributes.clone();
    (
        vec((any::<prop::sample::Index>(), any::<u8>()), 0..9),
        vec(proxy(), 0..3),
        btree_map(
            1u8..=15,
            (option::of(value()), any::<u8>(), any::<bool>()),
            0..8,
        ),
        btree_map(1u8..=5, (vec(text(), 0..3), any::<u8>()), 0..3),
        option::of(address()),
        option::of(prop::sample::select(vec![
            "2147483648",
            "02147483648",
            "1",
            "x",
        ])),
        option::of(prop::sample::select(vec![
            "-2147483642",
            "-2147481850",
            "0",
        ])),
        option::of(prop::sample::select(vec!["TRUE", "FALSE", "true"])),
    )
        .prop_map(
            move |(picks, extra, custom_ad, ext_ad, mail, details, display, hidden)| {
                let mut ad = AdValues::new();
                let mut ad_proxies: Vec<String> = Vec::new();
                if !proxies.is_empty() {
                    for (index, how) in &picks {
                        ad_proxies.push(variant(index.get::<String>(&proxies), *how));
                    }
                }
                ad_proxies.extend(extra);
                ad.set(A::ProxyAddresses, ad_proxies);
                for (n, (other, how, second)) in custom_ad {
                    let from_record = custom.get(&n.to_string()).map(|v| variant(v, how));
                    let mut values: Vec<String> = other
                        .into_iter()
                        .chain(from_record)
                        .filter(|v| !v.is_empty())
                        .collect();
                    if !second {
                        values.truncate(1);
                    }
                    ad.set(A::custom_attribute(n).unwrap(), values);
                }
                for (n, (others, how)) in ext_ad {
                    let from_record = extension
                        .get(&n.to_string())
                        .into_iter()
                        .flatten()
                        .map(|v| variant(v, how));
                    let values: Vec<String> = from_record
                        .chain(others)
                        .filter(|v| !v.is_empty())
                        .collect();
                    ad.set(A::extension_custom_attribute(n).unwrap(), values);
                }
                ad.set(A::Mail, mail.into_iter().collect());
                ad.set(
                    A::MsExchRecipientTypeDetails,
                    details.into_iter().map(str::to_owned).collect(),
                );
                ad.set(
                    A::MsExchRecipientDisplayType,
                    display.into_iter().map(str::to_owned).collect(),
                );
                ad.set(
                    A::MsExchHideFromAddressLists,
                    hidden.into_iter().map(str::to_owned).collect(),
                );
                ad
            },
        )
}

pub fn policy() -> impl Strategy<Value = PlanPolicy> {
    prop_oneof![
        3 => Just(PlanPolicy::default()),
        1 => Just(PlanPolicy { excluded_address_types: vec![] }),
        1 => Just(PlanPolicy { excluded_address_types: vec!["x500".into(), "SPO".into(), "sip".into()] }),
    ]
}

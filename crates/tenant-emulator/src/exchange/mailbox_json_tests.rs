use super::*;
use crate::model::Mailbox;

const CASES: [&str; 4] = [
    include_str!("../../tests/fixtures/get-mailbox/user-cloud-managed.json"),
    include_str!("../../tests/fixtures/get-mailbox/shared.json"),
    include_str!("../../tests/fixtures/get-mailbox/room-odd-values.json"),
    include_str!("../../tests/fixtures/get-mailbox/equipment-no-addresses.json"),
];

/// The fixtures' `expected` is what the emulator answered when it built a `serde_json::Value`
/// per mailbox; the streamed answer must be byte for byte the same text.
#[test]
fn streamed_mailbox_matches_the_recorded_answer_byte_for_byte() {
    for case in CASES {
        let case: Value = serde_json::from_str(case).unwrap();
        let mailbox: Mailbox = serde_json::from_value(case["mailbox"].clone()).unwrap();
        let domain = case["tenantDomain"].as_str().unwrap();
        let streamed = serde_json::to_string(&MailboxJson {
            mailbox: &mailbox,
            tenant_domain: domain,
        })
        .unwrap();
        let expected = serde_json::to_string(&case["expected"]).unwrap();
        assert_eq!(streamed, expected, "{}", mailbox.name);
        assert_eq!(mailbox_json(&mailbox, domain), case["expected"]);
    }
}

#[test]
fn every_mailbox_has_the_same_property_names_in_name_order() {
    let mut names = Vec::new();
    for case in CASES {
        let case: Value = serde_json::from_str(case).unwrap();
        let mailbox: Mailbox = serde_json::from_value(case["mailbox"].clone()).unwrap();
        let props = properties(&mailbox, "contoso.onmicrosoft.com");
        let ordered: Vec<&str> = name_order(&props).iter().map(|i| props[*i].0).collect();
        assert!(
            ordered.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        names.push(ordered);
    }
    assert!(names.windows(2).all(|w| w[0] == w[1]));
}

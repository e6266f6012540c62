use super::*;
use std::path::Path;

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    input: Value,
    expected: Expected,
}

#[derive(serde::Deserialize)]
struct Expected {
    mailbox: Option<Mailbox>,
    watermark: Option<String>,
    error: Option<ExpectedError>,
}

#[derive(serde::Deserialize)]
struct ExpectedError {
    id: Option<String>,
    field: String,
}

fn cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exchange_mailboxes.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("cases file")).expect("cases json")
}

#[test]
fn every_mailbox_case_decodes_as_expected() {
    let cases = cases();
    assert!(cases.len() >= 10);
    for case in cases {
        let result = parse_mailbox(&case.input);
        match (case.expected, result) {
            (
                Expected {
                    mailbox: Some(mailbox),
                    watermark,
                    error: None,
                },
                Ok(parsed),
            ) => {
                assert_eq!(parsed.mailbox, mailbox, "{}", case.name);
                assert_eq!(
                    parsed.when_changed.map(|w| w.to_string()),
                    watermark,
                    "{}",
                    case.name
                );
            }
            (
                Expected {
                    mailbox: None,
                    error: Some(expected),
                    ..
                },
                Err(error),
            ) => {
                assert_eq!(error.id, expected.id, "{}", case.name);
                assert_eq!(
                    error.field, expected.field,
                    "{}: {}",
                    case.name, error.detail
                );
                assert!(!error.detail.is_empty());
            }
            (_, other) => panic!("{}: unexpected {other:?}", case.name),
        }
    }
}

#[test]
fn envelope_reads_links_and_warnings() {
    let page: MailboxPageEnvelope = serde_json::from_str(
        r##"{"@odata.context":"https://outlook.office365.com/adminapi/beta/t/$metadata#Collection(Exchange.GenericHashTable)",
            "adminapi.warnings@odata.type":"#Collection(String)",
            "@adminapi.warnings":["There are more results available than are currently displayed."],
            "@odata.nextLink":"https://outlook.office365.com/adminapi/beta/t/InvokeCommand?$skiptoken=abc",
            "value":[{"ExternalDirectoryObjectId":"x"}]}"##,
    )
    .expect("envelope");
    assert_eq!(page.value.len(), 1);
    assert_eq!(page.warnings.len(), 1);
    assert!(page
        .next_link
        .as_deref()
        .is_some_and(|l| l.ends_with("skiptoken=abc")));

    let last: MailboxPageEnvelope =
        serde_json::from_str(r#"{"@adminapi.warnings":null,"value":[]}"#).expect("envelope");
    assert!(last.warnings.is_empty() && last.next_link.is_none());
}

#[test]
fn watermark_filter_literal_rounds_down_and_overlap_subtracts() {
    let mark = Watermark::parse("2024-04-10T08:56:22.9999999Z").expect("parses");
    assert_eq!(mark.to_filter_literal(), "2024-04-10T08:56:22Z");
    let earlier = mark.minus(std::time::Duration::from_secs(600));
    assert_eq!(earlier.to_filter_literal(), "2024-04-10T08:46:22Z");
    assert!(earlier < mark);
    assert_eq!(
        Watermark::parse("2024-04-10T10:56:22+02:00"),
        Watermark::parse("2024-04-10T08:56:22Z")
    );
}

#[test]
fn watermark_round_trips_through_serde() {
    let mark = Watermark::parse("2024-04-10T08:56:22.1234567Z").expect("parses");
    let json = serde_json::to_string(&mark).expect("serialise");
    assert_eq!(json, "\"2024-04-10T08:56:22.1234567Z\"");
    let back: Watermark = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, mark);
    assert!(serde_json::from_str::<Watermark>("\"never\"").is_err());
}

#[test]
fn a_page_keeps_only_the_read_properties_and_decodes_every_case_the_same() {
    let mut inputs: Vec<Value> = cases().into_iter().map(|case| case.input).collect();
    // Elements that are not objects stay whole, to fail as one mailbox each.
    inputs.push(Value::String("not a mailbox".into()));
    inputs.push(serde_json::json!([1, {"a": null}]));
    inputs.push(serde_json::json!({
        "ExternalDirectoryObjectId": "00000000-0000-0000-0000-00000000000a",
        "DisplayName": "skipped", "CustomAttributes": ["skipped"], "CustomAttribute": "skipped",
        "Nested": {"deep": [1, 2, {"x": "skipped"}]}, "CustomAttribute7": "kept"
    }));
    let page = serde_json::json!({ "value": inputs, "@odata.nextLink": "https://next" });
    let body = serde_json::to_vec(&page).expect("page");
    let envelope: MailboxPageEnvelope = crate::json::from_slice(&body).expect("decodes");
    assert_eq!(envelope.value.len(), inputs.len());
    assert_eq!(envelope.next_link.as_deref(), Some("https://next"));
    for (full, kept) in inputs.iter().zip(&envelope.value) {
        if let (Some(full), Some(kept)) = (full.as_object(), kept.as_object()) {
            assert!(kept.keys().all(|k| is_read_property(k)), "{kept:?}");
            assert_eq!(
                kept.len(),
                full.keys().filter(|k| is_read_property(k)).count()
            );
        } else {
            assert_eq!(full, kept, "a non-object element is kept whole");
        }
        assert_eq!(
            format!("{:?}", parse_mailbox(full)),
            format!("{:?}", parse_mailbox(kept)),
            "{full}"
        );
    }
    let last = envelope
        .value
        .last()
        .and_then(Value::as_object)
        .expect("object");
    assert_eq!(
        last.keys().collect::<Vec<_>>(),
        ["CustomAttribute7", "ExternalDirectoryObjectId"]
    );
}

use super::*;
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/graph")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn page(name: &str) -> DeltaPage {
    parse_delta_page(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e:?}"))
}

fn ids(page: &DeltaPage) -> Vec<&str> {
    page.users.iter().map(|u| u.id.as_str()).collect()
}

#[test]
fn delta_round_pages_one_to_three() {
    let first = page("graph_delta-query-users_1_initial_response.json");
    assert_eq!(
        ids(&first),
        [
            "ffff7b1a-13b6-477b-8c0c-380905cd99f7",
            "605d1257-ffff-40b6-8e6f-528a53f5dc55"
        ]
    );
    assert_eq!(
        first.cursor,
        DeltaCursor::Next("https://graph.microsoft.com/v1.0/users/delta?$skiptoken=oEBwdSP6uehIAxQOWq_3Ksh_TLol6KIm3stvdc6hGhZRi1hQ7Spe__dpvm3U4zReE4CYXC2zOtaKdi7KHlUtC2CbRiBIUwOxPKLa".into())
    );
    assert!(first.removed.is_empty() && first.entry_errors.is_empty() && !first.resynced);

    let second = page("graph_delta-query-users_2_nextlink_response.json");
    assert_eq!(
        ids(&second),
        [
            "d8c37826-ffff-4cae-b348-e2725b1e814b",
            "8b1ee412-cd8f-4d59-ffff-24010edb9f1f"
        ]
    );
    assert!(
        matches!(&second.cursor, DeltaCursor::Next(link) if link.contains("$skiptoken=pqwSUjGY"))
    );

    let third = page("graph_delta-query-users_3_final_nextlink_response_with_deltalink.json");
    assert_eq!(
        ids(&third),
        [
            "25dcffff-959e-4ece-9973-e5d9b800e8cc",
            "f6ede700-27d0-4c42-bfb9-4dffff43c74a"
        ]
    );
    assert!(third.cursor.is_round_complete());
    assert!(
        matches!(&third.cursor, DeltaCursor::Delta(link) if link.contains("$deltatoken=oEcOySpF"))
    );
    // Properties that were not selected are ignored; selected ones absent stay Absent.
    assert!(third
        .users
        .iter()
        .all(|u| u.mail.is_absent() && u.on_premises_immutable_id.is_absent()));
}

#[test]
fn delta_link_without_changes() {
    let page = page("graph_delta-query-users_4a_deltalink_response_no_changes.json");
    assert!(page.users.is_empty() && page.removed.is_empty());
    assert!(page.cursor.is_round_complete());
}

#[test]
fn delta_link_with_changes_and_removed() {
    let page = page("graph_delta-query-users_4b_deltalink_response_changes_and_removed.json");
    assert_eq!(ids(&page), ["25dcffff-959e-4ece-9973-e5d9b800e8cc"]);
    assert_eq!(
        page.removed,
        [RemovedUser {
            id: "8ffff70c-1c63-4860-b963-e34ec660931d".into(),
            reason: RemovalReason::Changed
        }]
    );
    assert!(page.cursor.is_round_complete());
}

#[test]
fn example1_default_properties() {
    let page = page("graph_user-delta_v1_example1_default_properties.json");
    let user = page.users.first().expect("one user");
    assert_eq!(user.id, "87d349ed-44d7-43e1-9a83-5f2406dee5bd");
    assert_eq!(
        user.mail,
        Field::Value("AdeleV@contoso.onmicrosoft.com".into())
    );
    assert_eq!(
        user.user_principal_name,
        Field::Value("AdeleV@contoso.onmicrosoft.com".into())
    );
    assert!(user.on_premises_security_identifier.is_absent());
    assert!(matches!(page.cursor, DeltaCursor::Next(_)));
}

#[test]
fn entries_without_id_are_reported_not_fatal() {
    // The doc samples for $select and return=minimal abbreviate away the id.
    for name in [
        "graph_user-delta_v1_example2_select_default_behavior.json",
        "graph_user-delta_v1_example3_prefer_return_minimal.json",
        "graph_user-delta_v1_example3_minimal_OLDER_null_variant.json",
    ] {
        let page = page(name);
        assert!(page.users.is_empty(), "{name}");
        assert_eq!(page.entry_errors.len(), 1, "{name}");
        let error = &page.entry_errors[0];
        assert_eq!(error.path, "value[0]", "{name}");
        assert!(error.detail.contains("id"), "{name}: {}", error.detail);
        assert!(matches!(page.cursor, DeltaCursor::Next(_)), "{name}");
    }
}

#[test]
fn null_clears_absent_keeps() {
    // The OLDER return=minimal sample sends `"jobTitle": null` for a property changed to null;
    // the same shape on an anchor property must clear it, and absence must keep it.
    let body = br#"{"@odata.deltaLink":"https://g/d","value":[
        {"id":"87d349ed-44d7-43e1-9a83-5f2406dee5bd","onPremisesSecurityIdentifier":null,
         "onPremisesImmutableId":"AAECAwQFBgcICQoLDA0ODw==","proxyAddresses":null,"onPremisesSyncEnabled":true}]}"#;
    let page = parse_delta_page(body).expect("parses");
    let user = page.users[0].clone();
    assert_eq!(user.on_premises_security_identifier, Field::Null);
    assert_eq!(user.proxy_addresses, Field::Null);
    assert_eq!(user.on_premises_sync_enabled, Field::Value(true));
    assert!(user.on_premises_distinguished_name.is_absent());

    let mut sid = Some("S-1-5-21-1-2-3-1104".to_string());
    let mut dn = Some("CN=Adele,OU=Users,DC=contoso,DC=com".to_string());
    let mut immutable = None;
    user.on_premises_security_identifier.apply_to(&mut sid);
    user.on_premises_distinguished_name.apply_to(&mut dn);
    user.on_premises_immutable_id.apply_to(&mut immutable);
    assert_eq!(sid, None);
    assert_eq!(dn.as_deref(), Some("CN=Adele,OU=Users,DC=contoso,DC=com"));
    assert_eq!(immutable.as_deref(), Some("AAECAwQFBgcICQoLDA0ODw=="));

    // Serialising keeps the distinction for whoever stores pages.
    let json = serde_json::to_value(&page.users[0]).expect("serialise");
    assert_eq!(
        json["onPremisesSecurityIdentifier"],
        serde_json::Value::Null
    );
    assert!(json.get("onPremisesDistinguishedName").is_none());
}

#[test]
fn wrong_types_and_missing_links_are_located() {
    let body = br#"{"@odata.nextLink":"https://g/n","value":[{"id":"a","mail":5},{"id":"b"}]}"#;
    let page = parse_delta_page(body).expect("page still usable");
    assert_eq!(ids(&page), ["b"]);
    assert_eq!(page.entry_errors[0].path, "value[0].mail");

    let (path, detail) = parse_delta_page(br#"{"value":[]}"#).expect_err("no link");
    assert_eq!(path, "@odata.nextLink");
    assert!(detail.contains("deltaLink"));
    let (path, _) =
        parse_delta_page(br#"{"@odata.nextLink":"x","value":{}}"#).expect_err("value not a list");
    assert_eq!(path, "value");
    assert!(parse_delta_page(b"<html>").is_err());
}

#[test]
fn removed_reasons() {
    let body = br#"{"@odata.deltaLink":"https://g/d","value":[
        {"id":"1","@removed":{"reason":"deleted"}},{"id":"2","@removed":{}},{"@removed":{"reason":"changed"}}]}"#;
    let page = parse_delta_page(body).expect("parses");
    assert_eq!(page.removed[0].reason, RemovalReason::Deleted);
    assert_eq!(page.removed[1].reason, RemovalReason::Other(String::new()));
    assert_eq!(
        page.entry_errors.len(),
        1,
        "a removal without id is reported"
    );
}

#[test]
fn cursor_is_serde_able_for_the_state_store() {
    for cursor in [
        DeltaCursor::Initial,
        DeltaCursor::Next("https://graph.microsoft.com/v1.0/users/delta?$skiptoken=a".into()),
        DeltaCursor::Delta("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=b".into()),
    ] {
        let json = serde_json::to_string(&cursor).expect("serialise");
        assert_eq!(
            serde_json::from_str::<DeltaCursor>(&json).expect("deserialise"),
            cursor
        );
    }
    assert_eq!(
        serde_json::to_string(&DeltaCursor::Initial).expect("json"),
        r#"{"kind":"initial"}"#
    );
}

#[test]
fn graph_error_samples_parse() {
    let generic =
        crate::json::graph_error(&fixture("graph_error_generic_example.json")).expect("shape");
    assert_eq!(
        generic,
        (
            "invalidRange".into(),
            "Uploaded fragment overlaps with existing data.".into()
        )
    );
    let not_supported = crate::json::graph_error(&fixture(
        "graph_error_501_delta_property_not_supported.json",
    ))
    .expect("shape");
    assert_eq!(not_supported.0, "NotImplemented");
    let throttled =
        crate::json::graph_error(&fixture("graph_error_429_throttling_body.json")).expect("shape");
    assert_eq!(
        throttled,
        ("TooManyRequests".into(), "Please retry again later.".into())
    );
}

#[test]
fn throttling_headers_sample_has_a_fractional_retry_after() {
    let text = String::from_utf8(fixture("graph_error_429_throttling_headers.txt")).expect("utf8");
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("Retry-After:"))
        .expect("header present");
    assert_eq!(
        crate::http::parse_retry_after(value, std::time::SystemTime::now()),
        Some(std::time::Duration::from_millis(2128))
    );
}

#[test]
fn exchange_error_shape_prefers_details_then_internal_exception() {
    let body = br#"{"error":{"code":"BadRequest","message":"Invalid Operation","details":[{"code":"Client","target":"","message":"|Microsoft.Exchange.AdminApi.CommandInvocation.AmbiguousParameterSetException|Parameter set cannot be resolved using the specified named parameters."}],"innererror":{"message":"Invalid Operation","type":"Microsoft.Exchange.AdminApi.ODataServiceException","internalexception":{"message":"Parameter set cannot be resolved (inner)","type":"AmbiguousParameterSetException"}}}}"#;
    assert_eq!(
        crate::json::exchange_error(body).as_deref(),
        Some("Parameter set cannot be resolved using the specified named parameters.")
    );
    let inner_only = br#"{"error":{"message":"Invalid Operation","details":[],"innererror":{"internalexception":{"message":"The operation couldn't be performed because object 'x' couldn't be found."}}}}"#;
    assert_eq!(
        crate::json::exchange_error(inner_only).as_deref(),
        Some("The operation couldn't be performed because object 'x' couldn't be found.")
    );
    assert_eq!(
        crate::json::exchange_error(br#"{"error":{"message":"Invalid Operation"}}"#).as_deref(),
        Some("Invalid Operation")
    );
    assert_eq!(crate::json::exchange_error(b"Forbidden"), None);
}

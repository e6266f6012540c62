use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::exchange_get::assert_exchange_error;
use crate::{Harness, EXCHANGE_SCOPE};

async fn get(h: &Harness, t: &str, id: &str) -> Value {
    let (status, body) = h.exo(t, "Get-Mailbox", json!({"Identity": id}), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"][0].clone()
}

async fn set(h: &Harness, t: &str, params: Value) -> (StatusCode, Value) {
    h.exo(t, "Set-Mailbox", params, None).await
}

async fn set_ok(h: &Harness, t: &str, params: Value) -> Value {
    let (status, body) = set(h, t, params.clone()).await;
    assert_eq!(status, StatusCode::OK, "{params}: {body}");
    assert_eq!(body["value"], json!([]));
    body
}

#[tokio::test]
async fn each_parameter_changes_the_mailbox_and_when_changed() {
    let h = Harness::start(3).await;
    let t = h.token(EXCHANGE_SCOPE).await;
    let id = "user000001";
    let before = get(&h, &t, id).await;

    set_ok(
        &h,
        &t,
        json!({"Identity": id, "CustomAttribute1": "Sales", "CustomAttribute15": "fifteen"}),
    )
    .await;
    let m = get(&h, &t, id).await;
    assert_eq!(
        (
            m["CustomAttribute1"].as_str(),
            m["CustomAttribute15"].as_str()
        ),
        (Some("Sales"), Some("fifteen"))
    );
    let changed = m["WhenChangedUTC"].as_str().unwrap().to_owned();
    assert!(changed.as_str() > before["WhenChangedUTC"].as_str().unwrap());
    assert_eq!(changed.len(), "2024-04-10T08:56:22.0000000Z".len());
    assert!(changed.ends_with('Z'));
    set_ok(&h, &t, json!({"Identity": id, "CustomAttribute1": null})).await;
    assert_eq!(get(&h, &t, id).await["CustomAttribute1"], "");

    set_ok(
        &h,
        &t,
        json!({"Identity": id, "ExtensionCustomAttribute3": ["a", "b"]}),
    )
    .await;
    set_ok(
        &h,
        &t,
        json!({"Identity": id, "ExtensionCustomAttribute3": {"Add": ["c"], "Remove": ["a"]}}),
    )
    .await;
    assert_eq!(
        get(&h, &t, id).await["ExtensionCustomAttribute3"],
        json!(["b", "c"])
    );

    set_ok(&h, &t, json!({"Identity": id, "EmailAddresses": ["SMTP:first@contoso.com", "smtp:second@contoso.com", "SIP:first@contoso.com"]})).await;
    let m = get(&h, &t, id).await;
    assert_eq!(
        m["EmailAddresses"],
        json!([
            "SMTP:first@contoso.com",
            "smtp:second@contoso.com",
            "SIP:first@contoso.com"
        ])
    );
    assert_eq!(m["PrimarySmtpAddress"], "first@contoso.com");
    set_ok(&h, &t, json!({"Identity": id, "EmailAddresses": {"Add": ["third@contoso.com"], "Remove": ["smtp:second@contoso.com"]}})).await;
    assert_eq!(
        get(&h, &t, id).await["EmailAddresses"],
        json!([
            "SMTP:first@contoso.com",
            "SIP:first@contoso.com",
            "smtp:third@contoso.com"
        ])
    );
    set_ok(
        &h,
        &t,
        json!({"Identity": id, "EmailAddresses": {"Add": ["SMTP:boss@contoso.com"]}}),
    )
    .await;
    let m = get(&h, &t, id).await;
    assert_eq!(m["PrimarySmtpAddress"], "boss@contoso.com");
    assert!(m["EmailAddresses"]
        .as_array()
        .unwrap()
        .contains(&json!("smtp:first@contoso.com")));

    set_ok(
        &h,
        &t,
        json!({"Identity": id, "WindowsEmailAddress": "third@contoso.com"}),
    )
    .await;
    let m = get(&h, &t, id).await;
    assert_eq!(m["WindowsEmailAddress"], "third@contoso.com");
    assert_eq!(m["PrimarySmtpAddress"], "third@contoso.com");
    let addresses = m["EmailAddresses"].as_array().unwrap();
    assert!(
        addresses.contains(&json!("SMTP:third@contoso.com"))
            && addresses.contains(&json!("smtp:boss@contoso.com"))
    );
    assert_eq!(
        addresses
            .iter()
            .filter(|a| a.as_str().unwrap().starts_with("SMTP:"))
            .count(),
        1
    );
    set_ok(
        &h,
        &t,
        json!({"Identity": id, "WindowsEmailAddress": "brand.new@contoso.com"}),
    )
    .await;
    let m = get(&h, &t, id).await;
    assert_eq!(m["PrimarySmtpAddress"], "brand.new@contoso.com");
    assert!(m["EmailAddresses"]
        .as_array()
        .unwrap()
        .contains(&json!("smtp:third@contoso.com")));

    set_ok(
        &h,
        &t,
        json!({"Identity": id, "HiddenFromAddressListsEnabled": true}),
    )
    .await;
    assert_eq!(get(&h, &t, id).await["HiddenFromAddressListsEnabled"], true);
    for (kind, details) in [
        ("Shared", "SharedMailbox"),
        ("Room", "RoomMailbox"),
        ("Equipment", "EquipmentMailbox"),
        ("Regular", "UserMailbox"),
    ] {
        set_ok(&h, &t, json!({"Identity": id, "Type": kind})).await;
        assert_eq!(get(&h, &t, id).await["RecipientTypeDetails"], details);
    }
    set_ok(
        &h,
        &t,
        json!({"Identity": id, "IsExchangeCloudManaged": true}),
    )
    .await;
    assert_eq!(get(&h, &t, id).await["IsExchangeCloudManaged"], true);
    set_ok(
        &h,
        &t,
        json!({"Identity": id, "IsExchangeCloudManaged": "False"}),
    )
    .await;
    assert_eq!(get(&h, &t, id).await["IsExchangeCloudManaged"], false);

    let body = set_ok(
        &h,
        &t,
        json!({"Identity": id, "IsExchangeCloudManaged": false}),
    )
    .await;
    assert!(body["@adminapi.warnings"][0]
        .as_str()
        .unwrap()
        .contains("no settings of 'user000001' have been modified"));
}

#[tokio::test]
async fn exchange_rules_are_enforced() {
    let h = Harness::start(3).await;
    let t = h.token(EXCHANGE_SCOPE).await;
    let before = get(&h, &t, "user000001").await;
    for (params, status, needle) in [
        (
            json!({"Identity": "user000001", "EmailAddresses": ["SMTP:a@contoso.com", "SMTP:b@contoso.com"]}),
            400,
            "multiple primary SMTP addresses",
        ),
        (
            json!({"Identity": "user000001", "EmailAddresses": ["smtp:a@contoso.com", "SMTP:b@contoso.com", "SMTP:c@contoso.com"]}),
            400,
            "multiple primary",
        ),
        (
            json!({"Identity": "user000001", "EmailAddresses": ["SIP:a@contoso.com"]}),
            400,
            "primary SMTP address is missing",
        ),
        (
            json!({"Identity": "user000001", "EmailAddresses": {"Add": ["smtp:user000002@contoso.com"]}}),
            400,
            "is already being used",
        ),
        (
            json!({"Identity": "user000001", "EmailAddresses": {"Add": ["smtp:USER000002@CONTOSO.ONMICROSOFT.COM"]}}),
            400,
            "is already being used",
        ),
        (
            json!({"Identity": "user000001", "WindowsEmailAddress": "user000003@contoso.com"}),
            400,
            "is already being used",
        ),
        (
            json!({"Identity": "user000001", "EmailAddresses": {"Remove": ["SMTP:user000001@contoso.com"]}}),
            400,
            "can't be removed",
        ),
        (
            json!({"Identity": "user000001", "EmailAddresses": ["SMTP:not-an-address"]}),
            400,
            "invalid",
        ),
        (
            json!({"Identity": "user000001", "Type": "Spaceship"}),
            400,
            "Regular, Room, Equipment, Shared",
        ),
        (
            json!({"Identity": "user000001", "CustomAttribute3": "x".repeat(1025)}),
            400,
            "maximum length is 1024",
        ),
        (
            json!({"Identity": "user000001", "FavouriteColour": "blue"}),
            400,
            "FavouriteColour",
        ),
        (
            json!({"Identity": "user000001", "HiddenFromAddressListsEnabled": "perhaps"}),
            400,
            "System.Boolean",
        ),
        (json!({"Identity": "nobody"}), 404, "couldn't be found"),
        (json!({"CustomAttribute1": "x"}), 400, "Identity"),
    ] {
        let (got, body) = set(&h, &t, params.clone()).await;
        assert_eq!(got.as_u16(), status, "{params}: {body}");
        assert_exchange_error(&body, needle);
    }
    // Nothing was half-applied.
    assert_eq!(get(&h, &t, "user000001").await, before);
    // A failed call in the middle of valid parameters changes nothing either.
    let (got, _) = set(&h, &t, json!({"Identity": "user000001", "CustomAttribute1": "changed", "EmailAddresses": ["SIP:x@y.z"]})).await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    assert_eq!(
        get(&h, &t, "user000001").await["CustomAttribute1"],
        before["CustomAttribute1"]
    );
}

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{Harness, EXCHANGE_SCOPE};

pub fn assert_exchange_error(body: &Value, needle: &str) {
    assert_eq!(body["error"]["message"], "Invalid Operation", "{body}");
    let detail = body["error"]["details"][0]["message"].as_str().unwrap();
    assert!(detail.starts_with('|'), "{detail}");
    let inner = body["error"]["innererror"]["internalexception"]["message"]
        .as_str()
        .unwrap();
    assert!(inner.contains(needle), "{inner} should contain {needle}");
    assert!(detail.contains(needle));
}

async fn count(h: &Harness, token: &str, filter: &str) -> usize {
    let (status, body) = h
        .exo(
            token,
            "Get-Mailbox",
            json!({"Filter": filter, "ResultSize": "Unlimited"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{filter}: {body}");
    body["value"].as_array().unwrap().len()
}

#[tokio::test]
async fn envelope_and_mailbox_shape() {
    let h = Harness::start(10).await;
    let token = h.token(EXCHANGE_SCOPE).await;
    let (status, body) = h
        .exo(
            &token,
            "Get-Mailbox",
            json!({"Identity": "user000010"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        crate::keys(&body),
        vec![
            "@adminapi.warnings",
            "@odata.context",
            "adminapi.warnings@odata.type",
            "value"
        ]
    );
    assert_eq!(body["@odata.context"], format!("{}/adminapi/beta/contoso.onmicrosoft.com/$metadata#Collection(Exchange.GenericHashTable)", h.emu.base_url()));
    assert_eq!(body["adminapi.warnings@odata.type"], "#Collection(String)");
    assert_eq!(body["@adminapi.warnings"], json!([]));
    let m = &body["value"][0];
    assert!(
        m.as_object().unwrap().len() > 100,
        "a realistic property set"
    );
    assert_eq!(m["EmailAddresses@odata.type"], "#Collection(String)");
    assert_eq!(m["Guid@data.type"], "System.Guid");
    assert_eq!(m["WhenChangedUTC@data.type"], "System.DateTime");
    assert_eq!(m["WhenChangedUTC"], "2024-01-01T00:00:10.0000000Z");
    assert_eq!(m["CustomAttribute1"], "Dept-10");
    assert_eq!(m["CustomAttribute2"], "");
    assert_eq!(m["ExtensionCustomAttribute2"], json!([]));
    assert_eq!(m["ExtensionCustomAttribute1"], json!(["project-3"]));
    assert_eq!(m["IsExchangeCloudManaged"], true);
    assert_eq!(m["HiddenFromAddressListsEnabled"], false);
    assert_eq!(m["RecipientTypeDetails"], "UserMailbox");
    assert_eq!(m["PrimarySmtpAddress"], "user000010@contoso.com");
    assert_eq!(
        m["EmailAddresses"],
        json!([
            "SMTP:user000010@contoso.com",
            "smtp:user000010@contoso.onmicrosoft.com"
        ])
    );
}

#[tokio::test]
async fn identity_forms_resolve_to_the_same_mailbox() {
    let h = Harness::start(4).await;
    let token = h.token(EXCHANGE_SCOPE).await;
    let (_, body) = h
        .exo(
            &token,
            "Get-Mailbox",
            json!({"Identity": "user000002@contoso.com"}),
            None,
        )
        .await;
    let m = body["value"][0].clone();
    let guid = m["Guid"].as_str().unwrap();
    for identity in [
        m["Guid"].clone(),
        m["ExternalDirectoryObjectId"].clone(),
        m["ExchangeGuid"].clone(),
        json!("USER000002"),
        json!("smtp:user000002@contoso.onmicrosoft.com"),
        m["UserPrincipalName"].clone(),
    ] {
        let (status, body) = h
            .exo(&token, "Get-Mailbox", json!({"Identity": identity}), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{identity}");
        assert_eq!(body["value"][0]["Guid"], guid, "{identity}");
    }
    let (status, body) = h
        .exo(
            &token,
            "Get-Mailbox",
            json!({"Identity": "nobody@contoso.com"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_exchange_error(&body, "couldn't be found");
    let (status, body) = h
        .exo(
            &token,
            "Get-Mailbox",
            json!({"Identity": "x", "Filter": "Alias -eq 'x'"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_exchange_error(&body, "Parameter set cannot be resolved");
    let (status, body) = h.exo(&token, "Get-Nothing", json!({}), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_exchange_error(&body, "is not recognized as the name of a cmdlet");
    let (status, body) = h
        .exo(&token, "Get-Mailbox", json!({"Bogus": 1}), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_exchange_error(&body, "Bogus");
}

#[tokio::test]
async fn filter_operators() {
    let h = Harness::start(30).await;
    let t = h.token(EXCHANGE_SCOPE).await;
    // Synthetic: mailbox n changed at 2024-01-01T00:00:nn; every 10th cloud-managed.
    assert_eq!(count(&h, &t, "IsExchangeCloudManaged -eq 'True'").await, 3);
    assert_eq!(count(&h, &t, "IsExchangeCloudManaged -eq $true").await, 3);
    assert_eq!(count(&h, &t, "IsExchangeCloudManaged -ne $true").await, 27);
    assert_eq!(
        count(&h, &t, "isexchangecloudmanaged -EQ \"False\"").await,
        27
    );
    assert_eq!(
        count(&h, &t, "WhenChangedUTC -gt '2024-01-01T00:00:20Z'").await,
        10
    );
    assert_eq!(
        count(&h, &t, "WhenChangedUTC -ge '2024-01-01T00:00:20Z'").await,
        11
    );
    assert_eq!(
        count(&h, &t, "WhenChangedUTC -lt '2024-01-01T00:00:05.0000000Z'").await,
        4
    );
    assert_eq!(
        count(&h, &t, "WhenChangedUTC -le '2024-01-01 00:00:05'").await,
        5
    );
    assert_eq!(
        count(&h, &t, "WhenChangedUTC -eq '01/01/2024 00:00:07'").await,
        1
    );
    assert_eq!(
        count(&h, &t, "WhenChangedUTC -ne '1/1/2024 12:00:07 AM'").await,
        29
    );
    assert_eq!(
        count(&h, &t, "RecipientTypeDetails -eq 'UserMailbox'").await,
        30
    );
    assert_eq!(
        count(&h, &t, "RecipientTypeDetails -eq 'SharedMailbox'").await,
        0
    );
    assert_eq!(count(&h, &t, "Alias -like 'user00001*'").await, 10);
    assert_eq!(
        count(
            &h,
            &t,
            "EmailAddresses -eq 'user000004@contoso.onmicrosoft.com'"
        )
        .await,
        1
    );
    assert_eq!(count(&h, &t, "CustomAttribute1 -eq 'Dept-03'").await, 1);
    assert_eq!(
        count(&h, &t, "(IsExchangeCloudManaged -eq $true -or WhenChangedUTC -le '2024-01-01T00:00:02Z') -and -not (Alias -eq 'user000010')").await,
        4
    );
    assert_eq!(
        count(
            &h,
            &t,
            "{IsExchangeCloudManaged -eq $true -and WhenChangedUTC -gt '2024-01-01T00:00:15Z'}"
        )
        .await,
        2
    );
    let (_, one) = h
        .exo(&t, "Get-Mailbox", json!({"Identity": "user000007"}), None)
        .await;
    let ext = one["value"][0]["ExternalDirectoryObjectId"]
        .as_str()
        .unwrap();
    assert_eq!(
        count(&h, &t, &format!("ExternalDirectoryObjectId -eq '{ext}'")).await,
        1
    );
}

#[tokio::test]
async fn bad_filters_get_exchange_errors() {
    let h = Harness::start(2).await;
    let t = h.token(EXCHANGE_SCOPE).await;
    for (filter, needle) in [
        ("IsExchangeCloudManaged -eq", "Invalid filter syntax"),
        ("(IsExchangeCloudManaged -eq $true", "Invalid filter syntax"),
        (
            "IsExchangeCloudManaged -bogus $true",
            "Invalid filter syntax",
        ),
        ("Alias -eq 'unterminated", "Invalid filter syntax"),
        ("Alias -eq 'a' -and", "Invalid filter syntax"),
        (
            "Frobnicate -eq 'x'",
            "is not a recognized filterable property",
        ),
        ("WhenChangedUTC -gt 'yesterday'", "System.DateTime"),
        ("IsExchangeCloudManaged -eq 'maybe'", "System.Boolean"),
        (
            "RecipientTypeDetails -eq 'Spaceship'",
            "RecipientTypeDetails",
        ),
    ] {
        let (status, body) = h
            .exo(&t, "Get-Mailbox", json!({"Filter": filter}), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filter}");
        assert_exchange_error(&body, needle);
    }
}

async fn read_all(
    h: &Harness,
    token: &str,
    params: Value,
    page: usize,
    follow_with_get: bool,
) -> (Vec<Value>, usize, Value) {
    let (status, mut body) = h
        .exo(token, "Get-Mailbox", params.clone(), Some(page))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut items = Vec::new();
    let mut pages = 1;
    loop {
        items.extend(body["value"].as_array().unwrap().iter().cloned());
        let Some(next) = body
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return (items, pages, body);
        };
        pages += 1;
        body = if follow_with_get {
            let r = h
                .http
                .get(&next)
                .bearer_auth(token)
                .header("Prefer", format!("odata.maxpagesize={page}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json().await.unwrap()
        } else {
            let (status, b) = h
                .exo_at(&next, token, "Get-Mailbox", params.clone(), Some(page))
                .await;
            assert_eq!(status, StatusCode::OK, "{b}");
            b
        };
    }
}

#[tokio::test]
async fn paging_with_maxpagesize_and_result_size() {
    let h = Harness::start(25).await;
    let t = h.token(EXCHANGE_SCOPE).await;
    for follow_with_get in [false, true] {
        let (items, pages, last) = read_all(
            &h,
            &t,
            json!({"ResultSize": "Unlimited"}),
            10,
            follow_with_get,
        )
        .await;
        assert_eq!((items.len(), pages), (25, 3));
        let guids: Vec<String> = items
            .iter()
            .map(|m| m["Guid"].as_str().unwrap().to_owned())
            .collect();
        let unique: BTreeSet<&String> = guids.iter().collect();
        assert_eq!(unique.len(), 25);
        let mut sorted = guids.clone();
        sorted.sort();
        assert_eq!(guids, sorted, "stable Guid order");
        assert_eq!(last["@adminapi.warnings"], json!([]));
    }
    let (items, pages, last) = read_all(&h, &t, json!({"ResultSize": 12}), 5, false).await;
    assert_eq!((items.len(), pages), (12, 3));
    assert!(last["@adminapi.warnings"][0]
        .as_str()
        .unwrap()
        .contains("increase the value for the ResultSize"));
    let (items, _, last) = read_all(&h, &t, json!({"ResultSize": "25"}), 10, false).await;
    assert_eq!(items.len(), 25);
    assert_eq!(last["@adminapi.warnings"], json!([]));
    let (status, body) = h
        .exo(&t, "Get-Mailbox", json!({"ResultSize": "lots"}), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_exchange_error(&body, "ResultSize");
}

#[tokio::test]
async fn default_result_size_is_1000() {
    let h = Harness::start(1003).await;
    let t = h.token(EXCHANGE_SCOPE).await;
    let (status, body) = h.exo(&t, "Get-Mailbox", json!({}), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"].as_array().unwrap().len(), 1000);
    assert!(body.get("@odata.nextLink").is_none());
    assert!(body["@adminapi.warnings"][0]
        .as_str()
        .unwrap()
        .contains("more results available"));
}

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::exchange_get::assert_exchange_error;
use crate::{fixture, keys, Harness, EXCHANGE_SCOPE, GRAPH_SCOPE};

#[tokio::test]
async fn throttle_and_status_faults() {
    let h = Harness::start(3).await;
    let g = h.token(GRAPH_SCOPE).await;
    let x = h.token(EXCHANGE_SCOPE).await;
    let delta = h.url("/v1.0/users/delta");
    h.fault(json!({"path_prefix": "/v1.0/users/delta", "fault": "throttle", "retry_after": "2.128", "count": 2})).await;
    for _ in 0..2 {
        let (status, headers, body) = h.graph_get(&delta, &g, &[]).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["retry-after"], "2.128");
        let sample = fixture("graph_error_429_throttling_body.json");
        assert_eq!(keys(&body["error"]), keys(&sample["error"]));
        assert_eq!(
            keys(&body["error"]["innerError"]),
            keys(&sample["error"]["innerError"])
        );
        assert_eq!(body["error"]["code"], "TooManyRequests");
    }
    assert_eq!(
        h.graph_get(&delta, &g, &[]).await.0,
        StatusCode::OK,
        "count exhausted"
    );

    h.fault(
        json!({"path_prefix": "/adminapi/", "fault": "status", "status": 503, "retry_after": 1}),
    )
    .await;
    let (status, body) = h.exo(&x, "Get-Mailbox", json!({}), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["message"], "Invalid Operation");
    h.fault(json!({"path_prefix": "/adminapi/", "fault": "throttle", "retry_after": 3}))
        .await;
    let r = h
        .http
        .post(h.exo_url())
        .bearer_auth(&x)
        .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "3");
    for code in [500u16, 504] {
        h.fault(json!({"path_prefix": "/v1.0/", "fault": code.to_string()}))
            .await;
        let (status, _, body) = h.graph_get(&delta, &g, &[]).await;
        assert_eq!(status.as_u16(), code);
        assert!(body["error"]["code"].is_string());
    }
    h.fault(json!({"path_prefix": "/contoso.onmicrosoft.com/oauth2/", "fault": "503"}))
        .await;
    let r = h
        .http
        .post(h.token_url())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let (status, stats) = h.control(Method::GET, "/_emulator/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["faults_injected"], 7);
}

#[tokio::test]
async fn drop_slow_and_malformed() {
    let h = Harness::start(3).await;
    let g = h.token(GRAPH_SCOPE).await;
    let delta = h.url("/v1.0/users/delta");
    h.fault(json!({"path_prefix": "/v1.0/users/delta", "fault": "drop"}))
        .await;
    let error = h.http.get(&delta).bearer_auth(&g).send().await.unwrap_err();
    assert!(
        !error.is_status(),
        "the connection closed without an answer: {error}"
    );
    assert_eq!(h.graph_get(&delta, &g, &[]).await.0, StatusCode::OK);

    h.fault(json!({"path_prefix": "/v1.0/users/delta", "fault": "slow", "delay_ms": 400}))
        .await;
    let started = std::time::Instant::now();
    assert_eq!(h.graph_get(&delta, &g, &[]).await.0, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));

    h.fault(json!({"path_prefix": "/v1.0/users/delta", "fault": "malformed"}))
        .await;
    let r = h.http.get(&delta).bearer_auth(&g).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(!text.is_empty());
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn truncated_pages_lose_nothing() {
    let h = Harness::start(25).await;
    let x = h.token(EXCHANGE_SCOPE).await;
    h.fault(json!({"path_prefix": "/adminapi/beta/", "fault": "truncate"}))
        .await;
    let params = json!({"ResultSize": "Unlimited"});
    let (status, body) = h.exo(&x, "Get-Mailbox", params.clone(), Some(10)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"].as_array().unwrap().len(), 5);
    assert!(!body["@adminapi.warnings"].as_array().unwrap().is_empty());
    let mut total = 5;
    let mut next = body["@odata.nextLink"].as_str().unwrap().to_owned();
    loop {
        let (status, page) = h
            .exo_at(&next, &x, "Get-Mailbox", params.clone(), Some(10))
            .await;
        assert_eq!(status, StatusCode::OK);
        total += page["value"].as_array().unwrap().len();
        match page["@odata.nextLink"].as_str() {
            Some(n) => next = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(total, 25);

    let g = h.token(GRAPH_SCOPE).await;
    h.fault(json!({"path_prefix": "/v1.0/users/delta", "fault": "truncate"}))
        .await;
    let (_, _, body) = h
        .graph_get(&h.url("/v1.0/users/delta"), &g, &["odata.maxpagesize=10"])
        .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 5);
    assert!(body["@odata.nextLink"].is_string());
}

#[tokio::test]
async fn expired_page_links() {
    let h = Harness::start(12).await;
    let x = h.token(EXCHANGE_SCOPE).await;
    h.fault(json!({"path_prefix": "/adminapi/beta/", "fault": "expire_page"}))
        .await;
    let (status, body) = h
        .exo(
            &x,
            "Get-Mailbox",
            json!({"ResultSize": "Unlimited"}),
            Some(5),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a first page has no link to expire");
    let next = body["@odata.nextLink"].as_str().unwrap().to_owned();
    let (status, body) = h
        .exo_at(
            &next,
            &x,
            "Get-Mailbox",
            json!({"ResultSize": "Unlimited"}),
            Some(5),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_exchange_error(&body, "Expired or Invalid pagination request");
    let (status, _) = h
        .exo_at(
            &next,
            &x,
            "Get-Mailbox",
            json!({"ResultSize": "Unlimited"}),
            Some(5),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the fault was for one request");
    let (status, body) = h
        .exo_at(
            &format!("{}?$skiptoken=garbage", h.exo_url()),
            &x,
            "Get-Mailbox",
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_exchange_error(&body, "Expired or Invalid pagination request");

    let g = h.token(GRAPH_SCOPE).await;
    let (_, _, first) = h
        .graph_get(&h.url("/v1.0/users/delta"), &g, &["odata.maxpagesize=5"])
        .await;
    h.fault(json!({"path_prefix": "/v1.0/users/delta", "fault": "expire_page"}))
        .await;
    let (status, _, body) = h
        .graph_get(first["@odata.nextLink"].as_str().unwrap(), &g, &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn stats_count_requests_per_path_and_cmdlet() {
    let h = Harness::start(2).await;
    let x = h.token(EXCHANGE_SCOPE).await;
    h.exo(&x, "Get-Mailbox", json!({}), None).await;
    h.exo(&x, "Get-Mailbox", json!({}), None).await;
    h.exo(
        &x,
        "Set-Mailbox",
        json!({"Identity": "user000001", "CustomAttribute2": "x"}),
        None,
    )
    .await;
    let (_, stats) = h.control(Method::GET, "/_emulator/stats", None).await;
    assert_eq!(
        stats["by_path"]["/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand"],
        3
    );
    assert_eq!(
        stats["by_path"]["/contoso.onmicrosoft.com/oauth2/v2.0/token"],
        1
    );
    assert_eq!(stats["by_cmdlet"]["Get-Mailbox"], 2);
    assert_eq!(stats["by_cmdlet"]["Set-Mailbox"], 1);
    assert_eq!(stats["tokens_issued"], 1);
    h.control(Method::POST, "/_emulator/stats/reset", None)
        .await;
    let (_, stats) = h.control(Method::GET, "/_emulator/stats", None).await;
    assert_eq!(stats["total"], 0);
    // The control API needs its token.
    let r = h.http.get(h.url("/_emulator/stats")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = h
        .control(
            Method::POST,
            "/_emulator/faults",
            Some(json!({"path_prefix": "/", "fault": "explode"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

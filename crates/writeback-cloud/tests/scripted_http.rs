//! Retry policy against a real local HTTP server.
// Helpers below are test code: a failed step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod common;

use common::{Reply, ScriptedServer};
use reqwest::Method;
use std::time::{Duration, Instant};
use writeback_cloud::http::{HttpClient, RetryPolicy};
use writeback_cloud::CloudError;

fn client(max_total_wait: Duration) -> HttpClient {
    let reqwest = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    HttpClient::with_policy(
        reqwest,
        RetryPolicy {
            max_total_wait,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
    )
}

async fn get(
    client: &HttpClient,
    url: &str,
) -> Result<writeback_cloud::http::HttpResponse, CloudError> {
    client.execute(Method::GET, url, |r| r).await
}

#[tokio::test]
async fn throttled_429_waits_the_fractional_retry_after_then_succeeds() {
    let server = ScriptedServer::start().await;
    server.push(
        "/r",
        Reply::json(429, common::fixture("graph_error_429_throttling_body.json"))
            .with_header("retry-after", "0.35"),
    );
    server.push("/r", Reply::json(200, "{\"ok\":true}"));
    let started = Instant::now();
    let response = get(&client(Duration::from_secs(5)), &server.url("/r"))
        .await
        .expect("succeeds");
    assert_eq!(response.status.as_u16(), 200);
    assert_eq!(response.body, b"{\"ok\":true}");
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests("/r").len(), 2);
}

#[tokio::test]
async fn server_errors_503_504_500_are_retried() {
    let server = ScriptedServer::start().await;
    server.push("/r", Reply::json(503, "{}").with_header("retry-after", "0"));
    server.push("/r", Reply::json(504, "{}"));
    server.push("/r", Reply::json(500, "{}"));
    server.push("/r", Reply::json(200, "{}"));
    let response = get(&client(Duration::from_secs(5)), &server.url("/r"))
        .await
        .expect("succeeds");
    assert_eq!(response.status.as_u16(), 200);
    assert_eq!(server.requests("/r").len(), 4);
}

#[tokio::test]
async fn connection_dropped_mid_body_is_retried() {
    let server = ScriptedServer::start().await;
    server.push("/r", Reply::DropMidBody);
    server.push("/r", Reply::json(200, "{\"value\":[]}"));
    let response = get(&client(Duration::from_secs(5)), &server.url("/r"))
        .await
        .expect("succeeds");
    assert_eq!(response.body, b"{\"value\":[]}");
    assert_eq!(server.requests("/r").len(), 2);
}

#[tokio::test]
async fn client_errors_and_501_are_not_retried() {
    let server = ScriptedServer::start().await;
    for status in [400u16, 401, 403, 404, 410, 501] {
        let path = format!("/s{status}");
        server.push(&path, Reply::json(status, "{}"));
        server.push(&path, Reply::json(200, "{}"));
        let response = get(&client(Duration::from_secs(5)), &server.url(&path))
            .await
            .expect("answer");
        assert_eq!(response.status.as_u16(), status);
        assert_eq!(
            server.requests(&path).len(),
            1,
            "{status} must not be retried"
        );
    }
}

#[tokio::test]
async fn retry_after_beyond_the_budget_fails_at_once_naming_endpoint_and_status() {
    let server = ScriptedServer::start().await;
    server.push(
        "/slow",
        Reply::json(429, "{}").with_header("retry-after", "30"),
    );
    let started = Instant::now();
    let error = get(
        &client(Duration::from_secs(1)),
        &format!("{}?$skiptoken=abc", server.url("/slow")),
    )
    .await
    .expect_err("budget");
    assert!(started.elapsed() < Duration::from_secs(1));
    match &error {
        CloudError::RetryBudgetExhausted {
            endpoint,
            attempts,
            last,
            ..
        } => {
            assert_eq!(endpoint, &format!("GET {}", server.url("/slow")));
            assert_eq!(*attempts, 1);
            assert_eq!(last, "HTTP 429");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("/slow"));
}

#[tokio::test]
async fn repeated_503_exhausts_the_total_wait() {
    let server = ScriptedServer::start().await;
    server.always(
        "/down",
        Reply::json(503, "{}").with_header("retry-after", "0.1"),
    );
    let started = Instant::now();
    let error = get(&client(Duration::from_millis(550)), &server.url("/down"))
        .await
        .expect_err("budget");
    match error {
        CloudError::RetryBudgetExhausted {
            attempts,
            waited,
            last,
            ..
        } => {
            assert_eq!(
                attempts, 6,
                "five waits of 100 ms fit in 550 ms, the sixth does not"
            );
            assert_eq!(waited, Duration::from_millis(500));
            assert_eq!(last, "HTTP 503");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(server.requests("/down").len(), 6);
}

#[tokio::test]
async fn refused_connections_back_off_then_fail_with_the_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/x", listener.local_addr().expect("addr"));
    drop(listener);
    let error = get(&client(Duration::from_millis(300)), &url)
        .await
        .expect_err("refused");
    match error {
        CloudError::RetryBudgetExhausted { attempts, last, .. } => {
            assert!(attempts >= 2, "{attempts}");
            assert!(last.to_lowercase().contains("connect"), "{last}");
        }
        other => panic!("{other:?}"),
    }
}

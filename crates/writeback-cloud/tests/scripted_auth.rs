//! Token acquisition and caching against a real local HTTP server.
// Helpers below are test code: a failed step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod common;

use common::{Reply, ScriptedServer, CLIENT_ID};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use writeback_cloud::auth::first_certificate_der;
use writeback_cloud::{CertificateAlgorithm, CloudError, Credential, Secret};

/// Field names of a form-encoded request body in a docs sample (`.http` file).
fn sample_form_keys(name: &str) -> BTreeSet<String> {
    let text = common::fixture(name);
    let body = text.split("\n\n").nth(1).expect("body after blank line");
    let joined: String = body.lines().map(str::trim).collect();
    common::url_decode_form(&joined)
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

#[tokio::test]
async fn secret_token_is_requested_once_per_resource_and_cached() {
    let server = ScriptedServer::start().await;
    server.always(
        &common::token_path(),
        Reply::Token {
            expires_in: 3599,
            delay: Duration::ZERO,
        },
    );
    let config = common::config_for(&server, "");
    let readers = common::secret_readers(&config);

    let graph = readers
        .tokens
        .token("https://graph.example")
        .await
        .expect("token");
    let again = readers
        .tokens
        .token("https://graph.example")
        .await
        .expect("token");
    let exchange = readers
        .tokens
        .token("https://outlook.example/")
        .await
        .expect("token");
    assert_eq!(graph.expose(), again.expose());
    assert_ne!(graph.expose(), exchange.expose(), "one token per resource");

    let requests = server.requests(&common::token_path());
    assert_eq!(requests.len(), 2);
    let form = requests[0].form();
    let keys: BTreeSet<String> = form.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        sample_form_keys("entra_token_request_client_secret.http")
    );
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(get("grant_type").as_deref(), Some("client_credentials"));
    assert_eq!(get("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        get("scope").as_deref(),
        Some("https://graph.example/.default")
    );
    assert_eq!(get("client_secret").as_deref(), Some("sampleCredentials"));
    let exchange_scope = requests[1]
        .form()
        .into_iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v);
    assert_eq!(
        exchange_scope.as_deref(),
        Some("https://outlook.example/.default")
    );
}

async fn certificate_flow(algorithm: CertificateAlgorithm, alg: jsonwebtoken::Algorithm) {
    let server = ScriptedServer::start().await;
    server.always(
        &common::token_path(),
        Reply::Token {
            expires_in: 3599,
            delay: Duration::ZERO,
        },
    );
    let config = common::config_for(&server, "");
    let credential = Credential::Certificate {
        certificate_der: first_certificate_der(&common::test_data("test_app_cert.pem"))
            .expect("cert"),
        private_key_pem: Secret::new(common::test_data("test_app_key.pem")),
        algorithm,
    };
    let readers = common::readers_with(&config, credential);
    readers.tokens.token(&server.base_url).await.expect("token");

    let request = server
        .requests(&common::token_path())
        .pop()
        .expect("one request");
    let form = request.form();
    let keys: BTreeSet<String> = form.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        sample_form_keys("entra_token_request_certificate.http")
    );
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect(name)
    };
    assert_eq!(
        get("client_assertion_type"),
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let assertion = get("client_assertion");
    let public = jsonwebtoken::DecodingKey::from_rsa_pem(
        common::test_data("test_app_pubkey.pem").as_bytes(),
    )
    .expect("public key");
    let token_url = server.url(&common::token_path());
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&[token_url.as_str()]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    let decoded = jsonwebtoken::decode::<serde_json::Value>(&assertion, &public, &validation)
        .expect("valid assertion");
    assert_eq!(decoded.claims["sub"], CLIENT_ID);
    assert!(uuid::Uuid::parse_str(decoded.claims["jti"].as_str().expect("jti")).is_ok());
    match algorithm {
        CertificateAlgorithm::RS256 => {
            assert!(decoded.header.x5t.is_some() && decoded.header.x5t_s256.is_none())
        }
        CertificateAlgorithm::PS256 => {
            assert!(decoded.header.x5t_s256.is_some() && decoded.header.x5t.is_none())
        }
    }
}

#[tokio::test]
async fn a_retried_certificate_request_carries_a_fresh_assertion() {
    let server = ScriptedServer::start().await;
    server.push(
        &common::token_path(),
        Reply::json(503, "{}").with_header("retry-after", "0"),
    );
    server.push(
        &common::token_path(),
        Reply::Token {
            expires_in: 3599,
            delay: Duration::ZERO,
        },
    );
    let config = common::config_for(&server, "");
    let credential = Credential::Certificate {
        certificate_der: first_certificate_der(&common::test_data("test_app_cert.pem"))
            .expect("cert"),
        private_key_pem: Secret::new(common::test_data("test_app_key.pem")),
        algorithm: CertificateAlgorithm::RS256,
    };
    let readers = common::readers_with(&config, credential);
    readers
        .tokens
        .token(&server.base_url)
        .await
        .expect("token after one retry");
    let assertions: BTreeSet<String> = server
        .requests(&common::token_path())
        .iter()
        .filter_map(|r| {
            r.form()
                .into_iter()
                .find(|(k, _)| k == "client_assertion")
                .map(|(_, v)| v)
        })
        .collect();
    assert_eq!(
        assertions.len(),
        2,
        "each attempt signs a new assertion (single-use jti)"
    );
}

#[tokio::test]
async fn certificate_assertion_rs256() {
    certificate_flow(CertificateAlgorithm::RS256, jsonwebtoken::Algorithm::RS256).await;
}

#[tokio::test]
async fn certificate_assertion_ps256() {
    certificate_flow(CertificateAlgorithm::PS256, jsonwebtoken::Algorithm::PS256).await;
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let server = ScriptedServer::start().await;
    server.always(
        &common::token_path(),
        Reply::Token {
            expires_in: 3599,
            delay: Duration::from_millis(200),
        },
    );
    let config = common::config_for(&server, "");
    let readers = Arc::new(common::secret_readers(&config));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let readers = readers.clone();
        tasks.push(tokio::spawn(async move {
            readers
                .tokens
                .token("https://graph.example")
                .await
                .map(|t| t.expose().to_string())
        }));
    }
    let mut tokens = BTreeSet::new();
    for task in tasks {
        tokens.insert(task.await.expect("join").expect("token"));
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(server.requests(&common::token_path()).len(), 1);
}

#[tokio::test]
async fn a_short_lived_token_is_refreshed_before_it_expires() {
    let server = ScriptedServer::start().await;
    // 2 s lifetime: refreshed after 80 % (1.6 s), i.e. before it can die in flight.
    server.always(
        &common::token_path(),
        Reply::Token {
            expires_in: 2,
            delay: Duration::ZERO,
        },
    );
    let config = common::config_for(&server, "");
    let readers = common::secret_readers(&config);
    let first = readers
        .tokens
        .token("https://graph.example")
        .await
        .expect("token");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let still = readers
        .tokens
        .token("https://graph.example")
        .await
        .expect("token");
    assert_eq!(first.expose(), still.expose());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let refreshed = readers
        .tokens
        .token("https://graph.example")
        .await
        .expect("token");
    assert_ne!(first.expose(), refreshed.expose());
    assert_eq!(server.requests(&common::token_path()).len(), 2);
}

#[tokio::test]
async fn entra_error_becomes_an_auth_error_with_the_aadsts_code() {
    let server = ScriptedServer::start().await;
    server.push(
        &common::token_path(),
        Reply::json(400, common::fixture("entra_token_response_error_400.json")),
    );
    let config = common::config_for(&server, "");
    let readers = common::secret_readers(&config);
    let error = readers
        .tokens
        .token("https://foo.microsoft.com")
        .await
        .expect_err("refused");
    match &error {
        CloudError::Auth {
            code,
            description,
            endpoint,
        } => {
            assert_eq!(code, "AADSTS70011");
            assert!(description
                .starts_with("The provided value for the input parameter 'scope' is not valid."));
            assert!(endpoint.ends_with("/oauth2/v2.0/token"));
        }
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    assert!(
        !text.contains("Trace ID") && !text.contains("sampleCredentials"),
        "{text}"
    );
}

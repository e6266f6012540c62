use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use sha1::Digest;

use crate::{fixture, keys, Harness, EXCHANGE_SCOPE, GRAPH_SCOPE};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Assertion {
    alg: Algorithm,
    aud: String,
    iss: String,
    nbf: i64,
    exp: i64,
    jti: String,
}

impl Assertion {
    fn valid(h: &Harness, alg: Algorithm) -> Assertion {
        Assertion {
            alg,
            aud: h.token_url(),
            iss: h.emu.client_id().to_owned(),
            nbf: now(),
            exp: now() + 600,
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn sign(&self, h: &Harness) -> String {
        let (cert_path, key_path) = h.emu.client_cert_paths();
        let der = rustls_pki_types::CertificateDer::from_pem_file(&cert_path).unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut header = Header::new(self.alg);
        header.typ = Some("JWT".into());
        match self.alg {
            Algorithm::PS256 => {
                header.x5t_s256 = Some(b64.encode(sha2::Sha256::digest(der.as_ref())))
            }
            _ => header.x5t = Some(b64.encode(sha1::Sha1::digest(der.as_ref()))),
        }
        let claims = json!({"aud": self.aud, "iss": self.iss, "sub": self.iss, "jti": self.jti, "nbf": self.nbf, "exp": self.exp});
        let key = EncodingKey::from_rsa_pem(&std::fs::read(key_path).unwrap()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }
}

async fn with_assertion(h: &Harness, assertion: &str) -> (StatusCode, serde_json::Value) {
    h.token_response(&[
        ("grant_type", "client_credentials"),
        ("client_id", h.emu.client_id()),
        ("scope", GRAPH_SCOPE),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ])
    .await
}

fn assert_entra_error(body: &serde_json::Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}:")),
        "{body}"
    );
    let fixture_keys = keys(&fixture("entra_token_response_error_400.json"));
    let got = keys(body);
    for k in fixture_keys {
        assert!(got.contains(&k), "missing {k} in {body}");
    }
}

#[tokio::test]
async fn secret_ok_has_fixture_shape_and_bad_secret_is_7000215() {
    let h = Harness::start(0).await;
    let (status, body) = h
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", h.emu.client_id()),
            ("client_secret", h.emu.client_secret()),
            ("scope", GRAPH_SCOPE),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    for k in keys(&fixture("entra_token_response_success.json")) {
        assert!(body.get(&k).is_some(), "missing {k}");
    }
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);

    let (status, body) = h
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", h.emu.client_id()),
            ("client_secret", "wrong"),
            ("scope", GRAPH_SCOPE),
        ])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 7_000_215);
}

#[tokio::test]
async fn bad_scope_unknown_client_and_tenant_are_refused() {
    let h = Harness::start(0).await;
    let (status, body) = h
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", h.emu.client_id()),
            ("client_secret", h.emu.client_secret()),
            ("scope", "https://foo.microsoft.com/.default"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_scope", 70_011);
    let (status, body) = h
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", "00000000-1111-2222-3333-444444444444"),
            ("client_secret", "x"),
            ("scope", GRAPH_SCOPE),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "unauthorized_client", 700_016);
    let r = h
        .http
        .post(h.url("/fabrikam.onmicrosoft.com/oauth2/v2.0/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_entra_error(&r.json().await.unwrap(), "invalid_request", 90_002);
}

#[tokio::test]
async fn certificate_assertions_rs256_and_ps256_work() {
    let h = Harness::start(0).await;
    for alg in [Algorithm::RS256, Algorithm::PS256] {
        let (status, body) = with_assertion(&h, &Assertion::valid(&h, alg).sign(&h)).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
        assert_eq!(body["token_type"], "Bearer");
    }
}

#[tokio::test]
async fn bad_assertions_are_refused() {
    let h = Harness::start(0).await;
    // Wrong signature: flip a character of the signature.
    let good = Assertion::valid(&h, Algorithm::RS256).sign(&h);
    let (head, sig) = good.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{head}.{}", sig.into_iter().collect::<String>());
    let (status, body) = with_assertion(&h, &tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 700_027);

    let mut wrong_aud = Assertion::valid(&h, Algorithm::PS256);
    wrong_aud.aud = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token".into();
    let (status, body) = with_assertion(&h, &wrong_aud.sign(&h)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 700_027);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("audience"));

    let mut expired = Assertion::valid(&h, Algorithm::RS256);
    expired.nbf = now() - 1200;
    expired.exp = now() - 600;
    let (status, body) = with_assertion(&h, &expired.sign(&h)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 700_024);

    let mut wrong_iss = Assertion::valid(&h, Algorithm::RS256);
    wrong_iss.iss = "someone-else".into();
    let (status, body) = with_assertion(&h, &wrong_iss.sign(&h)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 700_021);

    let once = Assertion::valid(&h, Algorithm::PS256).sign(&h);
    assert_eq!(with_assertion(&h, &once).await.0, StatusCode::OK);
    let (status, body) = with_assertion(&h, &once).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 700_027);
    assert!(body["error_description"].as_str().unwrap().contains("jti"));
}

#[tokio::test]
async fn tokens_are_bound_to_one_resource_and_expire() {
    let h = Harness::start_with(1, |c| c.token_lifetime = std::time::Duration::from_secs(1)).await;
    let graph = h.token(GRAPH_SCOPE).await;
    let exchange = h.token(EXCHANGE_SCOPE).await;
    let delta = h.url("/v1.0/users/delta");
    assert_eq!(h.graph_get(&delta, &graph, &[]).await.0, StatusCode::OK);
    let (status, _) = h.exo(&graph, "Get-Mailbox", json!({}), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a Graph token must not open Exchange"
    );
    let (status, _, body) = h.graph_get(&delta, &exchange, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        h.exo(&exchange, "Get-Mailbox", json!({}), None).await.0,
        StatusCode::OK
    );

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, body) = h.graph_get(&delta, &graph, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    let (status, body) = h.exo(&exchange, "Get-Mailbox", json!({}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn emulator_base_url_is_a_valid_resource_for_both_apis() {
    let h = Harness::start(1).await;
    let token = h.token(&format!("{}/.default", h.emu.base_url())).await;
    assert_eq!(
        h.graph_get(&h.url("/v1.0/users/delta"), &token, &[])
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        h.exo(&token, "Get-Mailbox", json!({}), None).await.0,
        StatusCode::OK
    );
    let (status, _, body) = h
        .graph_get(&h.url("/v1.0/users/delta"), "garbage", &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
}

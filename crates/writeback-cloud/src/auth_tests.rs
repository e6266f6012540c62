use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/graph")
        .join(name)
}

fn test_data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn thumbprint(name: &str) -> String {
    test_data("test_app_thumbprints.txt")
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")).map(str::to_string))
        .expect("thumbprint listed")
}

/// Header and claims of a decoded-assertion sample from the Entra docs.
fn decoded_sample(name: &str) -> (Value, Value) {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture");
    let parts: Vec<&str> = text.split("\n.\n").collect();
    assert_eq!(parts.len(), 3, "header . claims . signature");
    (
        serde_json::from_str(parts[0]).expect("header json"),
        serde_json::from_str(parts[1]).expect("claims json"),
    )
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

fn decode_segment(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("json")
}

fn make_assertion(algorithm: CertificateAlgorithm) -> (String, u64) {
    let certificate_der = first_certificate_der(&test_data("test_app_cert.pem")).expect("cert");
    let key = Secret::new(test_data("test_app_key.pem"));
    let now = 1_700_000_000;
    let assertion = client_assertion(&AssertionInput {
        client_id: "97e0a5b7-d745-40b6-94fe-5f77d35c6e05",
        token_url: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
        certificate_der: &certificate_der,
        private_key_pem: &key,
        algorithm,
        now,
        jti: "22b3bb26-e046-42df-9c96-65dbd72c1c81".into(),
    })
    .expect("signed");
    (assertion.expose().to_string(), now)
}

fn check_assertion(algorithm: CertificateAlgorithm, sample: &str, thumb_key: &str, alg: Algorithm) {
    let (jwt, now) = make_assertion(algorithm);
    let segments: Vec<&str> = jwt.split('.').collect();
    assert_eq!(segments.len(), 3);
    let header = decode_segment(segments[0]);
    let claims = decode_segment(segments[1]);
    let (sample_header, sample_claims) = decoded_sample(sample);

    // Same header fields as Microsoft's sample, the thumbprint computed by openssl.
    assert_eq!(keys(&header), keys(&sample_header));
    assert_eq!(header["alg"], sample_header["alg"]);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header[thumb_key], Value::String(thumbprint(thumb_key)));
    assert_eq!(keys(&claims), keys(&sample_claims));
    assert_eq!(claims["iss"], claims["sub"]);
    assert_eq!(claims["iss"], "97e0a5b7-d745-40b6-94fe-5f77d35c6e05");
    assert_eq!(claims["jti"], "22b3bb26-e046-42df-9c96-65dbd72c1c81");
    assert_eq!(claims["nbf"], now);
    assert_eq!(claims["exp"], now + 600);
    // Entra's sample is valid for 10 minutes too.
    assert_eq!(
        sample_claims["exp"].as_u64().expect("exp") - sample_claims["nbf"].as_u64().expect("nbf"),
        600
    );

    // The signature verifies with the certificate's public key.
    let public =
        jsonwebtoken::DecodingKey::from_rsa_pem(test_data("test_app_pubkey.pem").as_bytes())
            .expect("public key");
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&[
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
    ]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(&jwt, &public, &validation).expect("signature verifies");
}

#[test]
fn rs256_assertion_matches_the_legacy_docs_sample() {
    check_assertion(
        CertificateAlgorithm::RS256,
        "entra_client_assertion_decoded_RS256_x5t_legacy_docs.txt",
        "x5t",
        Algorithm::RS256,
    );
}

#[test]
fn ps256_assertion_matches_the_current_docs_sample() {
    check_assertion(
        CertificateAlgorithm::PS256,
        "entra_client_assertion_decoded_PS256_x5tS256_current_docs.txt",
        "x5t#S256",
        Algorithm::PS256,
    );
}

#[test]
fn thumbprint_samples_are_unpadded_base64url() {
    for (name, key, hash_len) in [
        (
            "entra_client_assertion_decoded_RS256_x5t_legacy_docs.txt",
            "x5t",
            20,
        ),
        (
            "entra_client_assertion_decoded_PS256_x5tS256_current_docs.txt",
            "x5t#S256",
            0,
        ),
    ] {
        let (header, _) = decoded_sample(name);
        let value = header[key].as_str().expect("thumbprint");
        let bytes = URL_SAFE_NO_PAD
            .decode(value)
            .expect("base64url without padding");
        // The PS256 sample is visibly a placeholder; the legacy one is a real SHA-1.
        if hash_len > 0 {
            assert_eq!(bytes.len(), hash_len, "{name}");
        }
    }
}

#[test]
fn a_key_that_is_not_pem_is_a_certificate_error() {
    let result = client_assertion(&AssertionInput {
        client_id: "c",
        token_url: "https://login/t/oauth2/v2.0/token",
        certificate_der: &[0x30],
        private_key_pem: &Secret::new("not a key"),
        algorithm: CertificateAlgorithm::RS256,
        now: 0,
        jti: "j".into(),
    });
    assert!(
        matches!(result, Err(CloudError::Certificate(_))),
        "{result:?}"
    );
}

#[test]
fn token_success_sample_parses() {
    let body = std::fs::read(fixture("entra_token_response_success.json")).expect("fixture");
    let token = parse_token_response(&body).expect("parses");
    assert_eq!(token.expires_in, 3599);
    assert!(token.access_token.expose().starts_with("eyJ0eXAiOiJKV1Qi"));
    assert!(
        !format!("{token:?}").contains("eyJ0"),
        "token never in Debug"
    );
}

#[test]
fn token_response_accepts_string_lifetime_and_rejects_junk() {
    let token =
        parse_token_response(br#"{"token_type":"Bearer","expires_in":"3600","access_token":"x"}"#)
            .expect("string seconds");
    assert_eq!(token.expires_in, 3600);
    let (path, _) =
        parse_token_response(br#"{"token_type":"Bearer","expires_in":true,"access_token":"x"}"#)
            .expect_err("boolean lifetime");
    assert_eq!(path, "expires_in");
    let (path, _) =
        parse_token_response(br#"{"token_type":"Bearer","expires_in":5}"#).expect_err("no token");
    assert_eq!(path, "$");
    let (path, _) =
        parse_token_response(br#"{"token_type":"mac","expires_in":5,"access_token":"x"}"#)
            .expect_err("not bearer");
    assert_eq!(path, "token_type");
}

#[test]
fn token_error_sample_gives_aadsts_code_and_first_line() {
    let body = std::fs::read(fixture("entra_token_response_error_400.json")).expect("fixture");
    let (code, description) = parse_token_error(400, &body);
    assert_eq!(code, "AADSTS70011");
    assert_eq!(
        description,
        "The provided value for the input parameter 'scope' is not valid. The scope https://foo.microsoft.com/.default is not valid."
    );
}

#[test]
fn token_error_without_codes_or_json_still_says_something() {
    let (code, description) =
        parse_token_error(401, br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#);
    assert_eq!(
        (code.as_str(), description.as_str()),
        ("AADSTS7000215", "Invalid client secret provided.")
    );
    let (code, description) = parse_token_error(400, br#"{"error":"unauthorized_client"}"#);
    assert_eq!(
        (code.as_str(), description.as_str()),
        ("unauthorized_client", "unauthorized_client")
    );
    let (code, description) = parse_token_error(503, b"<html>Service Unavailable</html>\nmore");
    assert_eq!(
        (code.as_str(), description.as_str()),
        ("HTTP 503", "<html>Service Unavailable</html>")
    );
}

#[test]
fn first_certificate_der_rejects_non_certificates() {
    assert!(first_certificate_der("hello").is_err());
    assert!(first_certificate_der(&test_data("test_app_key.pem")).is_err());
}

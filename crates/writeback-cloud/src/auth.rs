//! OAuth2 client-credentials tokens from Entra, one cache per resource.
//!
//! Graph and Exchange each need their own token (`scope` names one resource). A cached token is
//! refreshed ahead of expiry, at `expires - min(5 min, 20% of lifetime)`, so long passes never
//! send a token that dies in flight. Concurrent callers of one resource queue on that resource's
//! lock, so only the first one fetches and the others reuse its token.

use crate::config::{CertificateAlgorithm, CloudConfig, Credential, Secret};
use crate::error::CloudError;
use crate::http::{endpoint_label, HttpClient};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha1::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Lifetime of a client assertion; Entra accepts at most 10 minutes.
const ASSERTION_LIFETIME_SECS: u64 = 600;
const MAX_TOKEN_LIFETIME_SECS: u64 = 86_400;
const REFRESH_MARGIN_MAX: Duration = Duration::from_secs(300);
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct CachedToken {
    access_token: Secret,
    refresh_at: Instant,
}

type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Hands out bearer tokens for a resource (`https://graph.microsoft.com`, ...).
pub struct TokenProvider {
    http: HttpClient,
    token_url: String,
    client_id: String,
    credential: Credential,
    slots: Mutex<HashMap<String, TokenSlot>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    pub fn new(http: HttpClient, config: &CloudConfig, credential: Credential) -> Self {
        let token_url = format!(
            "{}/{}/oauth2/v2.0/token",
            config.endpoints().login,
            config.tenant_id
        );
        Self {
            http: http.for_service("login"),
            token_url,
            client_id: config.client_id.clone(),
            credential,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// A valid access token for `resource` (a base URL; the scope is `{resource}/.default`).
    pub async fn token(&self, resource: &str) -> Result<Secret, CloudError> {
        let slot = self.slot(resource);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(token.access_token.clone());
            }
        }
        let fresh = self.request_token(resource).await?;
        let access_token = fresh.access_token.clone();
        *cached = Some(fresh);
        Ok(access_token)
    }

    /// Forgets `token` if it is still the cached one (the API answered 401: revoked or the
    /// clock is off), so the next call fetches a new one.
    pub async fn invalidate(&self, resource: &str, token: &Secret) {
        let slot = self.slot(resource);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|c| &c.access_token == token) {
            *cached = None;
        }
    }

    fn slot(&self, resource: &str) -> TokenSlot {
        // A poisoned map only means another thread panicked while inserting; the map itself is
        // still consistent, so keep using it.
        let mut slots = match self.slots.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots.entry(resource.to_string()).or_default().clone()
    }

    fn token_form(&self, scope: &str) -> Result<Vec<(&'static str, String)>, CloudError> {
        let mut form: Vec<(&'static str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.client_id.clone()),
            ("scope", scope.to_string()),
        ];
        match &self.credential {
            Credential::ClientSecret(secret) => {
                form.push(("client_secret", secret.expose().to_string()));
            }
            Credential::Certificate {
                certificate_der,
                private_key_pem,
                algorithm,
            } => {
                let assertion = client_assertion(&AssertionInput {
                    client_id: &self.client_id,
                    token_url: &self.token_url,
                    certificate_der,
                    private_key_pem,
                    algorithm: *algorithm,
                    now: unix_now(),
                    jti: uuid::Uuid::new_v4().to_string(),
                })?;
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.into()));
                form.push(("client_assertion", assertion.expose().to_string()));
            }
        }
        Ok(form)
    }

    async fn request_token(&self, resource: &str) -> Result<CachedToken, CloudError> {
        let scope = format!("{}/.default", resource.trim_end_matches('/'));
        let endpoint = endpoint_label(&Method::POST, &self.token_url);
        tracing::debug!(endpoint = %endpoint, scope = %scope, "requesting access token");
        let requested_at = Instant::now();
        // Built per attempt: a retried certificate request needs a fresh assertion (new `jti`,
        // new `nbf`), since Entra may already have seen the first one.
        let response = self
            .http
            .execute_with(Method::POST, &self.token_url, |request| {
                Ok(request.form(&self.token_form(&scope)?))
            })
            .await?;
        if !response.status.is_success() {
            let (code, description) = parse_token_error(response.status.as_u16(), &response.body);
            return Err(CloudError::Auth {
                endpoint,
                code,
                description,
            });
        }
        let token = parse_token_response(&response.body).map_err(|(path, detail)| {
            CloudError::MalformedResponse {
                endpoint: endpoint.clone(),
                path,
                detail,
            }
        })?;
        // Capped so that a nonsensical `expires_in` cannot overflow the clock arithmetic.
        let lifetime = Duration::from_secs(token.expires_in.min(MAX_TOKEN_LIFETIME_SECS));
        let margin = REFRESH_MARGIN_MAX.min(lifetime / 5);
        Ok(CachedToken {
            access_token: token.access_token,
            refresh_at: requested_at + lifetime.saturating_sub(margin),
        })
    }
}

/// A parsed successful token answer.
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub expires_in: u64,
}

/// Parses `{"token_type":"Bearer","expires_in":3599,"access_token":"…"}`; `expires_in` may also
/// be a string (older endpoints send `"3599"`). Errors are `(json path, detail)`.
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse, (String, String)> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Text(String),
    }
    #[derive(Deserialize)]
    struct Raw {
        token_type: Option<String>,
        expires_in: Seconds,
        access_token: String,
    }
    let raw: Raw = crate::json::from_slice(body)?;
    if let Some(kind) = &raw.token_type {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(("token_type".into(), format!("{kind:?} is not Bearer")));
        }
    }
    let expires_in = match raw.expires_in {
        Seconds::Number(n) => n,
        Seconds::Text(text) => text.trim().parse().map_err(|_| {
            (
                "expires_in".to_string(),
                format!("{text:?} is not a number of seconds"),
            )
        })?,
    };
    if raw.access_token.is_empty() {
        return Err(("access_token".into(), "empty".into()));
    }
    Ok(TokenResponse {
        access_token: Secret::new(raw.access_token),
        expires_in,
    })
}

/// `(code, description)` from Entra's error shape: the AADSTS code when there is one, and the
/// first line of `error_description` without the repeated code (the rest is trace ids).
pub fn parse_token_error(status: u16, body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct Raw {
        error: Option<String>,
        error_description: Option<String>,
        #[serde(default)]
        error_codes: Vec<u64>,
    }
    let Ok(raw) = serde_json::from_slice::<Raw>(body) else {
        let text = String::from_utf8_lossy(body);
        let first = text.lines().next().unwrap_or_default().trim().to_string();
        return (format!("HTTP {status}"), first);
    };
    let description = raw.error_description.unwrap_or_default();
    let first_line = description.lines().next().unwrap_or_default().trim();
    let (prefix_code, message) = match first_line.split_once(':') {
        Some((code, rest)) if code.starts_with("AADSTS") => (Some(code), rest.trim()),
        _ => (None, first_line),
    };
    let code = match (raw.error_codes.first(), prefix_code) {
        (Some(number), _) => format!("AADSTS{number}"),
        (None, Some(code)) => code.to_string(),
        (None, None) => raw
            .error
            .clone()
            .unwrap_or_else(|| format!("HTTP {status}")),
    };
    let message = match (message.is_empty(), raw.error) {
        (true, Some(error)) => error,
        _ => message.to_string(),
    };
    (code, message)
}

/// What a client assertion is made of; `now` and `jti` are inputs so tests can pin them.
pub struct AssertionInput<'a> {
    pub client_id: &'a str,
    pub token_url: &'a str,
    pub certificate_der: &'a [u8],
    pub private_key_pem: &'a Secret,
    pub algorithm: CertificateAlgorithm,
    pub now: u64,
    pub jti: String,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: &'a str,
    nbf: u64,
    exp: u64,
}

/// The signed JWT Entra accepts instead of a secret (RFC 7523): RS256 + `x5t` (SHA-1
/// thumbprint) or PS256 + `x5t#S256` (SHA-256 thumbprint), both base64url of the cert DER hash.
pub fn client_assertion(input: &AssertionInput<'_>) -> Result<Secret, CloudError> {
    let mut header = match input.algorithm {
        CertificateAlgorithm::RS256 => {
            let mut header = Header::new(Algorithm::RS256);
            header.x5t = Some(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(input.certificate_der)));
            header
        }
        CertificateAlgorithm::PS256 => {
            let mut header = Header::new(Algorithm::PS256);
            header.x5t_s256 =
                Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(input.certificate_der)));
            header
        }
    };
    header.typ = Some("JWT".into());
    let claims = AssertionClaims {
        aud: input.token_url,
        iss: input.client_id,
        sub: input.client_id,
        jti: &input.jti,
        nbf: input.now,
        exp: input.now.saturating_add(ASSERTION_LIFETIME_SECS),
    };
    let key = EncodingKey::from_rsa_pem(input.private_key_pem.expose().as_bytes())
        .map_err(|e| CloudError::Certificate(format!("private key is not an RSA PEM key: {e}")))?;
    jsonwebtoken::encode(&header, &claims, &key)
        .map(Secret::new)
        .map_err(|e| CloudError::Certificate(format!("cannot sign the client assertion: {e}")))
}

/// DER of the first certificate in a PEM file.
pub fn first_certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(cert)) => Ok(cert.as_ref().to_vec()),
        Some(Err(e)) => Err(format!("not a PEM certificate: {e}")),
        None => Err("no PEM certificate in the file".into()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;

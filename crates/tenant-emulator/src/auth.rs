//! The Entra token endpoint (client credentials with a secret or a certificate assertion) and
//! the bearer-token check of the Graph and Exchange endpoints.

// Handlers fail with the finished HTTP error response (built only on the error path), so
// `Result<_, Response>` is the natural type here despite Response's size.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::{format_entra_timestamp, now_ticks, now_unix_seconds};
use crate::model::Tenant;
use crate::state::Shared;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew tolerated on client assertions.
const ASSERTION_LEEWAY_SECS: u64 = 60;

/// Which API a token was minted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Graph,
    Exchange,
    /// The emulator's own base URL: it serves both APIs, so such a token is good for both.
    Emulator,
}

const GRAPH_RESOURCES: [&str; 5] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
    "00000003-0000-0000-c000-000000000000",
];
const EXCHANGE_RESOURCES: [&str; 5] = [
    "https://outlook.office365.com",
    "https://outlook.office365.us",
    "https://webmail.apps.mil",
    "https://partner.outlook.cn",
    "00000002-0000-0ff1-ce00-000000000000",
];

pub fn classify_resource(resource: &str, base_url: &str) -> Option<Resource> {
    let r = resource.trim_end_matches('/');
    if GRAPH_RESOURCES.iter().any(|g| g.eq_ignore_ascii_case(r)) {
        Some(Resource::Graph)
    } else if EXCHANGE_RESOURCES.iter().any(|e| e.eq_ignore_ascii_case(r)) {
        Some(Resource::Exchange)
    } else if r.eq_ignore_ascii_case(base_url.trim_end_matches('/')) {
        Some(Resource::Emulator)
    } else {
        None
    }
}

/// Entra's error body: `error`, `error_description` (with trace/correlation/timestamp lines),
/// `error_codes`, `timestamp`, `trace_id`, `correlation_id`.
pub fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let timestamp = format_entra_timestamp(now_ticks());
    let body = json!({
        "error": error,
        "error_description": format!(
            "{description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
}

fn bad_request(error: &str, code: u32, description: &str) -> Response {
    entra_error(StatusCode::BAD_REQUEST, error, code, description)
}

fn invalid_client(code: u32, description: &str) -> Response {
    entra_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        code,
        description,
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub appid: String,
    pub tid: String,
    pub idtyp: String,
    pub roles: Vec<String>,
    pub uti: String,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    exp: i64,
}

/// The HMAC key of the access tokens the emulator mints, prepared once: it never changes while
/// serving (a reset keeps it), and every Graph/Exchange request checks a token with it.
pub(crate) struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    pub(crate) fn new(tenant: &Tenant) -> TokenKeys {
        let secret = tenant.token_signing_key.as_bytes();
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

pub(crate) async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    Path(tenant_segment): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return bad_request(
            "invalid_request",
            900_144,
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
        );
    };
    let tenant = shared.read();
    if !tenant_segment.eq_ignore_ascii_case(&shared.config.tenant_id)
        && !tenant_segment.eq_ignore_ascii_case(&tenant.tenant_guid)
    {
        return bad_request(
            "invalid_request",
            90_002,
            &format!("AADSTS90002: Tenant '{tenant_segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    for required in ["grant_type", "client_id", "scope"] {
        if param(required).is_none() {
            return bad_request(
                "invalid_request",
                900_144,
                &format!("AADSTS900144: The request body must contain the following parameter: '{required}'."),
            );
        }
    }
    if param("grant_type") != Some("client_credentials") {
        return bad_request(
            "unsupported_grant_type",
            70_003,
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    let client_id = param("client_id").unwrap_or_default();
    let Some(app) = tenant
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    else {
        return bad_request(
            "unauthorized_client",
            700_016,
            &format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", shared.config.tenant_id),
        );
    };
    let scope = param("scope").unwrap_or_default();
    let resource = scope
        .strip_suffix("/.default")
        .filter(|_| !scope.contains(' '))
        .and_then(|r| classify_resource(r, &shared.base_url).map(|kind| (r, kind)));
    let Some((resource, _)) = resource else {
        return bad_request(
            "invalid_scope",
            70_011,
            &format!("AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
        );
    };
    match (param("client_secret"), param("client_assertion")) {
        (Some(secret), None) => {
            if !constant_time_eq(secret.as_bytes(), app.client_secret.as_bytes()) {
                return invalid_client(
                    7_000_215,
                    &format!("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id),
                );
            }
        }
        (None, Some(assertion)) => {
            if param("client_assertion_type") != Some(JWT_BEARER) {
                return bad_request(
                    "invalid_request",
                    50_027,
                    "AADSTS50027: Invalid JWT token. The client_assertion_type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
                );
            }
            let token_url = format!("{}/{}/oauth2/v2.0/token", shared.base_url, tenant_segment);
            if let Err(response) = verify_assertion(&shared, app, assertion, &token_url) {
                return response;
            }
        }
        (Some(_), Some(_)) => {
            return bad_request(
                "invalid_request",
                700_025,
                "AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented, or both were: send exactly one credential.",
            )
        }
        (None, None) => {
            return invalid_client(
                7_000_216,
                "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        }
    }
    let now = now_unix_seconds();
    let lifetime = i64::try_from(shared.config.token_lifetime.as_secs()).unwrap_or(3599);
    let claims = AccessClaims {
        aud: resource.trim_end_matches('/').to_owned(),
        iss: format!("https://sts.windows.net/{}/", tenant.tenant_guid),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        appid: app.client_id.clone(),
        tid: tenant.tenant_guid.clone(),
        idtyp: "app".to_owned(),
        roles: vec![
            "User.Read.All".to_owned(),
            "Exchange.ManageAsApp".to_owned(),
        ],
        uti: uuid::Uuid::new_v4().simple().to_string(),
    };
    drop(tenant);
    let Ok(access_token) = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &shared.token_keys.encoding,
    ) else {
        return entra_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50_000,
            "AADSTS50000: There was an error issuing a token.",
        );
    };
    shared.stats().tokens_issued += 1;
    let mut response = axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn verify_assertion(
    shared: &Shared,
    app: &crate::model::RegisteredApp,
    assertion: &str,
    token_url: &str,
) -> Result<(), Response> {
    let malformed = |detail: &str| {
        bad_request(
            "invalid_request",
            50_027,
            &format!("AADSTS50027: JWT token is invalid or malformed. {detail}"),
        )
    };
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| malformed(&e.to_string()))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(malformed(
            "The assertion must be signed with RS256 or PS256.",
        ));
    }
    let thumbprint = header
        .x5t
        .clone()
        .or_else(|| header.x5t_s256.clone())
        .unwrap_or_default();
    let certificate = app.certificates.iter().find(|c| {
        header.x5t.as_deref() == Some(c.x5t.as_str())
            || header.x5t_s256.as_deref() == Some(c.x5t_s256.as_str())
    });
    let Some(certificate) = certificate else {
        return Err(invalid_client(
            700_027,
            &format!("AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}']"),
        ));
    };
    let der = base64::engine::general_purpose::STANDARD
        .decode(&certificate.public_key_pkcs1_der)
        .map_err(|_| malformed("registered key unreadable"))?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = ASSERTION_LEEWAY_SECS;
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &DecodingKey::from_rsa_der(&der), &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid_client(
                700_027,
                "AADSTS700027: Client assertion failed signature validation.",
            ),
            jsonwebtoken::errors::ErrorKind::ExpiredSignature
            | jsonwebtoken::errors::ErrorKind::ImmatureSignature => invalid_client(
                700_024,
                &format!("AADSTS700024: Client assertion is not within its valid time range. Current time: {}.", format_entra_timestamp(now_ticks())),
            ),
            other => malformed(&format!("{other:?}")),
        })?;
    let claims = data.claims;
    let aud_ok = match &claims.aud {
        Some(serde_json::Value::String(a)) => a == token_url,
        Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(token_url)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_client(
            700_027,
            &format!("AADSTS700027: Client assertion contains an invalid audience claim. Expected '{token_url}'."),
        ));
    }
    if claims.iss.as_deref() != Some(app.client_id.as_str())
        || claims.sub.as_deref() != Some(app.client_id.as_str())
    {
        return Err(invalid_client(
            700_021,
            "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    let Some(jti) = claims.jti.filter(|j| !j.is_empty()) else {
        return Err(malformed("The assertion has no 'jti' claim."));
    };
    let now = now_unix_seconds();
    let mut seen = shared.seen_jti();
    seen.retain(|_, exp| *exp + 600 > now);
    if seen.contains_key(&jti) {
        return Err(invalid_client(
            700_027,
            &format!(
                "AADSTS700027: Client assertion has already been used (replayed 'jti' {jti})."
            ),
        ));
    }
    seen.insert(jti, claims.exp);
    Ok(())
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Malformed,
    Expired,
    WrongAudience,
}

impl TokenProblem {
    pub fn graph_message(self) -> &'static str {
        match self {
            TokenProblem::Missing => "Access token is empty.",
            TokenProblem::Malformed => "IDX14100: JWT is not well formed, there are no dots (.).",
            TokenProblem::Expired => "Lifetime validation failed, the token is expired.",
            TokenProblem::WrongAudience => "Invalid audience.",
        }
    }
}

/// Checks `Authorization: Bearer …` for an API.
pub(crate) fn check_bearer(
    shared: &Shared,
    headers: &HeaderMap,
    wanted: Resource,
) -> Result<AccessClaims, TokenProblem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(TokenProblem::Missing)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    let data =
        jsonwebtoken::decode::<AccessClaims>(token, &shared.token_keys.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenProblem::Expired,
                _ => TokenProblem::Malformed,
            })?;
    match classify_resource(&data.claims.aud, &shared.base_url) {
        Some(Resource::Emulator) => Ok(data.claims),
        Some(kind) if kind == wanted => Ok(data.claims),
        _ => Err(TokenProblem::WrongAudience),
    }
}

//! Fault injection: each rule hits the next N requests whose path starts with its prefix.
//! Generic faults (throttle, status, drop, slow, malformed) are applied by a middleware;
//! endpoint faults (truncate, expire_page) are taken by the handlers that understand them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::state::Shared;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After`.
    Throttle,
    /// Any status (500, 503, 504, …) with the host's error body; `Retry-After` if given.
    Status,
    /// Close the connection without a response.
    Drop,
    /// Answer normally after `delay_ms`.
    Slow,
    /// Exchange: a short page with a warning and a nextLink. Graph: a short page with a nextLink.
    Truncate,
    /// Exchange: 400 "Expired or Invalid pagination request"; Graph: `syncStateNotFound`.
    /// Only requests that carry a page/delta token are hit (a first page cannot be expired).
    ExpirePage,
    /// 200 with half of the real JSON body.
    Malformed,
}

impl FaultKind {
    fn is_endpoint_specific(self) -> bool {
        matches!(self, FaultKind::Truncate | FaultKind::ExpirePage)
    }
}

/// The JSON accepted by `POST /_emulator/faults`.
#[derive(Clone, Debug, Deserialize)]
pub struct FaultSpec {
    pub path_prefix: String,
    /// A kind name, or a bare status code ("500", "503", "504") as shorthand for `status`.
    pub fault: String,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub retry_after: Option<serde_json::Value>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FaultRule {
    pub path_prefix: String,
    pub kind: FaultKind,
    pub remaining: u32,
    pub retry_after: Option<String>,
    pub status: u16,
    pub delay_ms: u64,
}

impl FaultRule {
    pub fn from_spec(spec: FaultSpec) -> Result<FaultRule, String> {
        let (kind, status) = match spec.fault.to_ascii_lowercase().as_str() {
            "throttle" | "429" => (FaultKind::Throttle, 429),
            "status" | "error" => (FaultKind::Status, spec.status.unwrap_or(500)),
            "drop" | "dropped_connection" => (FaultKind::Drop, 0),
            "slow" | "delay" => (FaultKind::Slow, 0),
            "truncate" | "truncated_page" => (FaultKind::Truncate, 0),
            "expire_page" | "expired_link" | "expire" => (FaultKind::ExpirePage, 0),
            "malformed" | "malformed_json" => (FaultKind::Malformed, 0),
            other => match other.parse::<u16>() {
                Ok(code) if (400..600).contains(&code) => (FaultKind::Status, code),
                _ => return Err(format!("unknown fault kind '{}'", spec.fault)),
            },
        };
        if StatusCode::from_u16(status).is_err() && kind == FaultKind::Status {
            return Err(format!("invalid status {status}"));
        }
        let retry_after = match spec.retry_after {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(format!(
                    "retry_after must be a string or number, not {other}"
                ))
            }
        };
        if let Some(value) = &retry_after {
            if HeaderValue::from_str(value).is_err() {
                return Err("retry_after is not a valid header value".to_owned());
            }
        }
        Ok(FaultRule {
            path_prefix: spec.path_prefix,
            kind,
            remaining: spec.count.unwrap_or(1),
            retry_after: retry_after
                .or_else(|| (kind == FaultKind::Throttle).then(|| "2".to_owned())),
            status,
            delay_ms: spec.delay_ms.unwrap_or(1000),
        })
    }
}

#[derive(Debug, Default)]
pub struct FaultStore {
    pub rules: Vec<FaultRule>,
}

impl FaultStore {
    fn take_where(&mut self, path: &str, wanted: impl Fn(FaultKind) -> bool) -> Option<FaultRule> {
        let position = self
            .rules
            .iter()
            .position(|r| r.remaining > 0 && wanted(r.kind) && path.starts_with(&r.path_prefix))?;
        let rule = self.rules.get_mut(position)?;
        rule.remaining -= 1;
        let taken = rule.clone();
        if rule.remaining == 0 {
            self.rules.remove(position);
        }
        Some(taken)
    }

    fn take_generic(&mut self, path: &str) -> Option<FaultRule> {
        self.take_where(path, |k| !k.is_endpoint_specific())
    }

    /// For handlers: consume one `kind` fault for this path, if one is armed.
    pub fn take(&mut self, path: &str, kind: FaultKind) -> Option<FaultRule> {
        self.take_where(path, |k| k == kind)
    }
}

/// Put into each request's extensions by the connection loop: notifying it drops the
/// connection without an answer.
#[derive(Clone, Debug)]
pub struct ConnectionKiller(pub Arc<Notify>);

/// Which of Microsoft's hosts a path belongs to, for error shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    Login,
    Graph,
    Exchange,
    Control,
}

pub fn host_of(path: &str) -> Host {
    if path.starts_with("/_emulator") {
        Host::Control
    } else if path.starts_with("/adminapi/") {
        Host::Exchange
    } else if path.contains("/oauth2/") {
        Host::Login
    } else {
        Host::Graph
    }
}

fn error_body(host: Host, status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    match host {
        Host::Exchange => crate::exchange::errors::exchange_error(
            status,
            if status == StatusCode::TOO_MANY_REQUESTS {
                "TooManyRequests"
            } else {
                "InternalServerError"
            },
            "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
            &format!("The server returned {} {reason}.", status.as_u16()),
        ),
        Host::Login => crate::auth::entra_error(
            status,
            "temporarily_unavailable",
            90_033,
            "AADSTS90033: A transient error has occurred. Please try again.",
        ),
        Host::Graph | Host::Control => {
            let code = match status.as_u16() {
                429 => "TooManyRequests",
                503 => "serviceNotAvailable",
                504 => "gatewayTimeout",
                _ => "generalException",
            };
            let message = if status == StatusCode::TOO_MANY_REQUESTS {
                "Please retry again later."
            } else {
                "The service encountered an error. Please try again later."
            };
            crate::graph::graph_error_with_inner(status, code, message)
        }
    }
}

/// Counts every cloud request, then applies the first armed generic fault for its path.
pub(crate) async fn fault_middleware(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let host = host_of(&path);
    // The control API is neither counted nor faulted: tests read stats through it.
    if host == Host::Control {
        return next.run(request).await;
    }
    {
        let mut stats = shared.stats();
        stats.total += 1;
        *stats.by_path.entry(path.clone()).or_insert(0) += 1;
    }
    let Some(rule) = shared.faults().take_generic(&path) else {
        return next.run(request).await;
    };
    shared.stats().faults_injected += 1;
    match rule.kind {
        FaultKind::Throttle | FaultKind::Status => {
            let status =
                StatusCode::from_u16(rule.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error_body(host, status);
            if let Some(value) = rule
                .retry_after
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        FaultKind::Drop => match request.extensions().get::<ConnectionKiller>() {
            Some(killer) => {
                killer.0.notify_one();
                std::future::pending::<Response>().await
            }
            None => StatusCode::BAD_GATEWAY.into_response(),
        },
        FaultKind::Slow => {
            tokio::time::sleep(Duration::from_millis(rule.delay_ms)).await;
            next.run(request).await
        }
        FaultKind::Malformed => {
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = if bytes.len() > 1 {
                bytes.slice(0..bytes.len() / 2)
            } else {
                axum::body::Bytes::from_static(b"{\"value\":[")
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Response::from_parts(parts, Body::from(cut))
        }
        FaultKind::Truncate | FaultKind::ExpirePage => next.run(request).await,
    }
}

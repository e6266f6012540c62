//! The one HTTPS client all readers share, and the retry policy around every request.
//!
//! Retried: 429 and 503/504 (waiting what `Retry-After` asks), other 5xx except 501, and
//! transport failures (refused, reset, dropped mid-body, timed out), with exponential backoff
//! and full jitter. Not retried: every other 4xx, and 501 (Graph's "not supported"), which no
//! amount of waiting fixes. The total time spent waiting for one request is bounded; past it
//! the request fails naming the endpoint and the last thing seen.

use crate::config::CloudConfig;
use crate::error::CloudError;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long and how often a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound on the sum of all waits of one request.
    pub max_total_wait: Duration,
    /// First backoff ceiling; doubles per attempt.
    pub base_delay: Duration,
    /// Largest backoff ceiling (a server's Retry-After is honoured even above it).
    pub max_delay: Duration,
}

impl RetryPolicy {
    pub fn from_config(config: &CloudConfig) -> Self {
        Self {
            max_total_wait: Duration::from_secs(config.max_retry_wait_secs),
            base_delay: Duration::from_millis(config.retry_base_delay_ms),
            max_delay: Duration::from_secs(config.retry_max_delay_secs),
        }
    }

    /// The ceiling of the backoff before retry number `retry` (1-based): `base * 2^(retry-1)`,
    /// capped at `max_delay`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Full jitter: a uniformly random wait between zero and the ceiling, so that many clients
    /// throttled together do not come back together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
    }
}

/// A fully read answer. Bodies are pages of at most a few MB, so reading them whole keeps the
/// retry logic able to cover a connection dropped mid-body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Start of the body as text, for error messages about non-JSON answers; the status's
    /// reason phrase when the body is empty (Exchange's 401 has none).
    pub fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return self
                .status
                .canonical_reason()
                .unwrap_or("(empty body)")
                .to_string();
        }
        match trimmed.char_indices().nth(200) {
            Some((cut, _)) => format!("{}…", &trimmed[..cut]),
            None => trimmed.to_string(),
        }
    }
}

/// The shared client plus its retry policy, and which service it talks to (the `service`
/// label of the request metrics).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: RetryPolicy,
    service: &'static str,
}

impl HttpClient {
    /// Builds the client from the config: rustls with the ring provider, trusting the webpki
    /// roots, the system roots and the optional `ca_file`.
    pub fn from_config(config: &CloudConfig) -> Result<Self, CloudError> {
        let extra_ca = match &config.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                CloudError::ClientSetup(format!("ca_file {}: {e}", path.display()))
            })?),
            None => None,
        };
        let client = build_reqwest_client(
            extra_ca.as_deref(),
            config.request_timeout(),
            config.connect_timeout(),
        )?;
        Ok(Self::with_policy(client, RetryPolicy::from_config(config)))
    }

    pub fn with_policy(client: reqwest::Client, policy: RetryPolicy) -> Self {
        Self {
            client,
            policy,
            service: "cloud",
        }
    }

    /// The same client (one connection pool), counted under `service` (`login`, `graph`,
    /// `exchange`) in `writeback_cloud_requests_total` and `writeback_cloud_retries_total`.
    pub fn for_service(mut self, service: &'static str) -> Self {
        self.service = service;
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Sends the request `build` makes (called again for every attempt) and retries per the
    /// policy. Returns the first answer that is not retried, whatever its status: callers map
    /// error bodies, which differ per API.
    pub async fn execute<F>(
        &self,
        method: Method,
        url: &str,
        build: F,
    ) -> Result<HttpResponse, CloudError>
    where
        F: Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    {
        self.execute_with(method, url, |request| Ok(build(request)))
            .await
    }

    /// Like [`execute`](Self::execute), for requests whose building can fail and must be
    /// rebuilt per attempt (a client assertion's `jti` is single-use).
    pub async fn execute_with<F>(
        &self,
        method: Method,
        url: &str,
        build: F,
    ) -> Result<HttpResponse, CloudError>
    where
        F: Fn(reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, CloudError>,
    {
        let endpoint = endpoint_label(&method, url);
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let request = build(self.client.request(method.clone(), url))?;
            let answer = send_and_read(request).await;
            metrics::counter!(
                "writeback_cloud_requests_total",
                "service" => self.service,
                "status" => status_class(answer.as_ref().map(|r| r.status).ok()),
            )
            .increment(1);
            let (delay, last) = match answer {
                Ok(response) if is_retryable_status(response.status) => {
                    let delay = retry_after(&response.headers, SystemTime::now())
                        .unwrap_or_else(|| self.policy.backoff(attempt));
                    (delay, format!("HTTP {}", response.status.as_u16()))
                }
                Ok(response) => return Ok(response),
                Err(error) if error.is_builder() => {
                    return Err(CloudError::Transport {
                        endpoint,
                        message: error_chain(&error),
                    })
                }
                Err(error) => (self.policy.backoff(attempt), error_chain(&error)),
            };
            let total = waited.saturating_add(delay);
            if total > self.policy.max_total_wait {
                return Err(CloudError::RetryBudgetExhausted {
                    endpoint,
                    attempts: attempt,
                    waited,
                    last,
                });
            }
            metrics::counter!("writeback_cloud_retries_total", "service" => self.service)
                .increment(1);
            tracing::warn!(
                endpoint = %endpoint,
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                last = %last,
                "retrying cloud request"
            );
            tokio::time::sleep(delay).await;
            waited = total;
        }
    }
}

async fn send_and_read(request: reqwest::RequestBuilder) -> Result<HttpResponse, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// 429, and 5xx other than 501 Not Implemented.
/// The help text of the request metrics, for the scrape endpoint.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "writeback_cloud_requests_total",
        "HTTP requests to the cloud (attempts, retries included), by service (login, graph, \
         exchange) and status class (2xx, 4xx, 429, 5xx, transport_error)"
    );
    metrics::describe_counter!(
        "writeback_cloud_retries_total",
        "Cloud requests retried after throttling, a server error or a transport error, by service"
    );
}

/// The `status` label: a class, not the code, to keep the series few; 429 on its own because
/// throttling is what an operator watches for.
fn status_class(status: Option<StatusCode>) -> &'static str {
    match status.map(|s| s.as_u16()) {
        None => "transport_error",
        Some(429) => "429",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
    }
}

pub fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// The wait a `Retry-After` header asks for: whole or fractional seconds (`2.128`) or an
/// HTTP-date. `None` when absent or unreadable (the caller then backs off on its own).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        // `try_from` refuses negatives, NaN and overflow instead of panicking.
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `POST https://host/path`, without the query (page tokens are long and say nothing).
pub fn endpoint_label(method: &Method, url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    format!("{method} {without_query}")
}

/// reqwest's top-level message is often just "error sending request"; the cause is below.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn build_reqwest_client(
    extra_ca_pem: Option<&[u8]>,
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<reqwest::Client, CloudError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "skipping unreadable system trust store entry");
    }
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(pem) = extra_ca_pem {
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| CloudError::ClientSetup(format!("ca_file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| CloudError::ClientSetup(format!("ca_file: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(CloudError::ClientSetup(
                "ca_file holds no PEM certificate".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CloudError::ClientSetup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("writeback/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CloudError::ClientSetup(error_chain(&e)))
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;

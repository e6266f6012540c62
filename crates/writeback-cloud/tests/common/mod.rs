//! A real HTTP server on 127.0.0.1 that answers from a script, for the reader tests.
// Test support: a failed setup step should stop the test loudly.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use writeback_cloud::auth::TokenProvider;
use writeback_cloud::http::HttpClient;
use writeback_cloud::{CloudConfig, CloudReaders, Credential, ExchangeReader, GraphReader, Secret};

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "535fb089-9ff3-47b6-9bfb-4f1264799865";

/// What the server answers to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// A fresh `tok-N` access token valid `expires_in` seconds, sent after `delay`.
    Token { expires_in: u64, delay: Duration },
    /// Headers promise more body than is sent: the connection dies mid-answer.
    DropMidBody,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::Status {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
        }
    }

    pub fn with_header(self, name: &'static str, value: &str) -> Self {
        match self {
            Self::Status {
                status,
                mut headers,
                body,
            } => {
                headers.push((name, value.to_string()));
                Self::Status {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url_decode_form(&String::from_utf8_lossy(&self.body))
    }
}

#[derive(Default)]
struct Script {
    queued: HashMap<String, VecDeque<Reply>>,
    always: HashMap<String, Reply>,
    requests: Vec<Recorded>,
    tokens_issued: u64,
}

#[derive(Clone)]
pub struct ScriptedServer {
    pub base_url: String,
    script: Arc<Mutex<Script>>,
}

impl ScriptedServer {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{address}"),
            script,
        }
    }

    /// Answers the next request to `path` (query ignored) with `reply`, in order.
    pub fn push(&self, path: &str, reply: Reply) {
        let mut script = self.script.lock().expect("lock");
        script
            .queued
            .entry(path.to_string())
            .or_default()
            .push_back(reply);
    }

    /// Answers requests to `path` with `reply` once its queue is empty.
    pub fn always(&self, path: &str, reply: Reply) {
        self.script
            .lock()
            .expect("lock")
            .always
            .insert(path.to_string(), reply);
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        let script = self.script.lock().expect("lock");
        script
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let (reply, token_number) = {
        let mut script = script.lock().expect("lock");
        script.requests.push(Recorded {
            method,
            path: path.clone(),
            query: uri.query().map(str::to_string),
            headers,
            body: body.to_vec(),
        });
        let reply = script
            .queued
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .or_else(|| script.always.get(&path).cloned());
        if matches!(reply, Some(Reply::Token { .. })) {
            script.tokens_issued += 1;
        }
        (reply, script.tokens_issued)
    };
    match reply {
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unscripted {path}"),
        )
            .into_response(),
        Some(Reply::Status {
            status,
            headers,
            body,
        }) => {
            let mut response =
                (StatusCode::from_u16(status).expect("status"), body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, HeaderValue::from_str(&value).expect("header"));
            }
            response
        }
        Some(Reply::Token { expires_in, delay }) => {
            tokio::time::sleep(delay).await;
            let body = format!(
                r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"tok-{token_number}"}}"#
            );
            ([("content-type", "application/json")], body).into_response()
        }
        Some(Reply::DropMidBody) => {
            let mut response = (StatusCode::OK, "{\"value\":[").into_response();
            response
                .headers_mut()
                .insert("content-length", HeaderValue::from_static("5000"));
            response
        }
    }
}

pub fn url_decode_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key.trim()), percent_decode(value.trim()))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf8")
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/graph")
        .join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).expect("fixture")
}

pub fn test_data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .expect("test data")
}

pub fn token_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

pub fn invoke_path() -> String {
    format!("/adminapi/beta/{TENANT}/InvokeCommand")
}

/// A config pointing all three hosts at the scripted server, with fast retries.
pub fn config_for(server: &ScriptedServer, extra: &str) -> CloudConfig {
    let base = &server.base_url;
    let mut config = CloudConfig::from_toml_document(&format!(
        "[cloud]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret_env = \"UNUSED_IN_THESE_TESTS\"\n\
         login_url = \"{base}\"\ngraph_url = \"{base}\"\nexchange_url = \"{base}\"\n\
         retry_base_delay_ms = 20\nretry_max_delay_secs = 1\nmax_retry_wait_secs = 5\n\
         exchange_page_size = 2\nwatermark_overlap_secs = 300\n{extra}"
    ))
    .expect("config");
    config.validate().expect("valid");
    config.client_secret_env = None;
    config.client_secret_file = None;
    config
}

pub fn readers_with(config: &CloudConfig, credential: Credential) -> CloudReaders {
    let http = HttpClient::from_config(config).expect("client");
    let tokens = Arc::new(TokenProvider::new(http.clone(), config, credential));
    CloudReaders {
        exchange: ExchangeReader::new(http.clone(), tokens.clone(), config),
        graph: GraphReader::new(http, tokens.clone(), config),
        tokens,
    }
}

pub fn secret_readers(config: &CloudConfig) -> CloudReaders {
    readers_with(
        config,
        Credential::ClientSecret(Secret::new("sampleCredentials")),
    )
}

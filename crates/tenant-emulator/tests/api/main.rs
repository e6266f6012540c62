//! Real HTTPS (reqwest + rustls/ring trusting the generated CA) against in-process emulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

mod auth;
mod bench_change;
mod exchange_get;
mod exchange_set;
mod faults;
mod graph_delta;
mod persistence;

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenant_emulator::{EmulatorConfig, RunningEmulator};

pub const FIXTURES: &str = "/work/shared/fixtures/graph";
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const EXCHANGE_SCOPE: &str = "https://outlook.office365.com/.default";

pub struct Harness {
    pub emu: RunningEmulator,
    pub http: reqwest::Client,
    _dir: TempDir,
}

/// A temp dir removed on drop (no tempfile dependency needed).
pub struct TempDir(pub PathBuf);

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl TempDir {
    pub fn new() -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("tenant-emulator-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn client_for(ca_path: &std::path::Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_path).unwrap()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

impl Harness {
    pub async fn start(mailboxes: usize) -> Harness {
        Harness::start_with(mailboxes, |_| {}).await
    }

    pub async fn start_with(mailboxes: usize, tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
        let dir = TempDir::new();
        let mut config = EmulatorConfig::new(&dir.0);
        config.synthetic_mailboxes = mailboxes;
        tweak(&mut config);
        let emu = RunningEmulator::start(config).await.unwrap();
        let http = client_for(&emu.ca_cert_path());
        Harness {
            emu,
            http,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.base_url())
    }

    pub fn token_url(&self) -> String {
        self.url(&format!("/{}/oauth2/v2.0/token", self.emu.tenant_id()))
    }

    pub async fn token_response(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.token_url())
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub async fn token(&self, scope: &str) -> String {
        let (status, body) = self
            .token_response(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.emu.client_id()),
                ("client_secret", self.emu.client_secret()),
                ("scope", scope),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub fn exo_url(&self) -> String {
        self.url(&format!(
            "/adminapi/beta/{}/InvokeCommand",
            self.emu.tenant_id()
        ))
    }

    /// POSTs a cmdlet; returns status and JSON (Null for an empty body).
    pub async fn exo(
        &self,
        token: &str,
        cmdlet: &str,
        params: Value,
        page_size: Option<usize>,
    ) -> (StatusCode, Value) {
        self.exo_at(&self.exo_url(), token, cmdlet, params, page_size)
            .await
    }

    pub async fn exo_at(
        &self,
        url: &str,
        token: &str,
        cmdlet: &str,
        params: Value,
        page_size: Option<usize>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(url)
            .bearer_auth(token)
            .header("X-CmdletName", cmdlet)
            .header("X-ResponseFormat", "json")
            .json(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}}));
        if let Some(n) = page_size {
            request = request.header("Prefer", format!("odata.maxpagesize={n}"));
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    pub async fn graph_get(
        &self,
        url: &str,
        token: &str,
        prefer: &[&str],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.get(url).bearer_auth(token);
        for p in prefer {
            request = request.header("Prefer", *p);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap())
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.emu.control_token());
        if let Some(b) = body {
            request = request.json(&b);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    pub async fn fault(&self, spec: Value) {
        let (status, body) = self
            .control(reqwest::Method::POST, "/_emulator/faults", Some(spec))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

pub fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
}

/// The set of keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

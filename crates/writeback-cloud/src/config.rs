//! The `[cloud]` section of the writeback configuration file.

use crate::error::CloudError;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use writeback_core::Secret;

/// Which Microsoft cloud the tenant lives in; picks the login, Graph and Exchange hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloudEnvironment {
    /// Worldwide and GCC.
    #[default]
    Worldwide,
    GccHigh,
    Dod,
    /// Operated by 21Vianet.
    China,
}

impl CloudEnvironment {
    fn preset(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Worldwide => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
                "https://outlook.office365.com",
            ),
            Self::GccHigh => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
                "https://outlook.office365.us",
            ),
            Self::Dod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
                "https://webmail.apps.mil",
            ),
            Self::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "https://partner.outlook.cn",
            ),
        }
    }
}

/// How a certificate client assertion is signed and which thumbprint header it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum CertificateAlgorithm {
    /// RSASSA-PKCS1-v1_5 with `x5t` (SHA-1 thumbprint): accepted everywhere.
    #[default]
    RS256,
    /// RSASSA-PSS with `x5t#S256` (SHA-256 thumbprint): what current docs show.
    PS256,
}

/// The `[cloud]` table as written in the file. Call [`CloudConfig::resolve_paths`] and
/// [`CloudConfig::validate`] (or use [`CloudConfig::load`]) before handing it to a reader.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    pub tenant_id: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Name of an environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// PEM certificate (the first certificate in the file is the one registered in Entra).
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// PEM private key (PKCS#8 or PKCS#1 RSA) of `certificate_file`.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// PKCS#12 file holding the app certificate and its RSA private key (instead of
    /// `certificate_file` + `private_key_file`); see [`crate::pfx`].
    #[serde(default)]
    pub certificate_pfx_file: Option<PathBuf>,
    /// The PFX password (one trailing newline ignored); absent means an empty password.
    #[serde(default)]
    pub certificate_pfx_password_file: Option<PathBuf>,
    #[serde(default)]
    pub certificate_algorithm: CertificateAlgorithm,
    #[serde(default)]
    pub environment: CloudEnvironment,
    #[serde(default)]
    pub login_url: Option<String>,
    #[serde(default)]
    pub graph_url: Option<String>,
    #[serde(default)]
    pub exchange_url: Option<String>,
    /// Extra PEM trust anchor(s), added to the system and webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,

    /// `Prefer: odata.maxpagesize` for Get-Mailbox.
    #[serde(default = "defaults::exchange_page_size")]
    pub exchange_page_size: u32,
    /// Whole-request timeout (connect + answer + body).
    #[serde(default = "defaults::request_timeout_secs")]
    pub request_timeout_secs: u64,
    #[serde(default = "defaults::connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Upper bound on the time one request may spend waiting between retries.
    #[serde(default = "defaults::max_retry_wait_secs")]
    pub max_retry_wait_secs: u64,
    /// First backoff step; doubles per attempt, with full jitter.
    #[serde(default = "defaults::retry_base_delay_ms")]
    pub retry_base_delay_ms: u64,
    /// Largest single backoff step (a server's Retry-After may ask for more and is honoured).
    #[serde(default = "defaults::retry_max_delay_secs")]
    pub retry_max_delay_secs: u64,
    /// How far before the stored watermark an incremental Exchange pass starts (clock skew and
    /// replication lag).
    #[serde(default = "defaults::watermark_overlap_secs")]
    pub watermark_overlap_secs: u64,
    /// How often an incremental schedule is replaced by a full Exchange pass.
    #[serde(default = "defaults::full_pass_interval_hours")]
    pub full_pass_interval_hours: u64,
    /// How often one pass may restart a paged query (expired pagination) before giving up.
    #[serde(default = "defaults::max_query_restarts")]
    pub max_query_restarts: u32,
}

mod defaults {
    pub fn exchange_page_size() -> u32 {
        1000
    }
    pub fn request_timeout_secs() -> u64 {
        120
    }
    pub fn connect_timeout_secs() -> u64 {
        15
    }
    pub fn max_retry_wait_secs() -> u64 {
        600
    }
    pub fn retry_base_delay_ms() -> u64 {
        500
    }
    pub fn retry_max_delay_secs() -> u64 {
        60
    }
    pub fn watermark_overlap_secs() -> u64 {
        600
    }
    pub fn full_pass_interval_hours() -> u64 {
        24
    }
    pub fn max_query_restarts() -> u32 {
        5
    }
}

/// The three base URLs in effect, without trailing slashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub login: String,
    pub graph: String,
    pub exchange: String,
}

/// The credential the app authenticates with, loaded from the files/env the config names.
#[derive(Clone)]
pub enum Credential {
    ClientSecret(Secret),
    Certificate {
        /// DER of the leaf certificate (its hash is the thumbprint Entra matches).
        certificate_der: Vec<u8>,
        /// The PEM text of the private key (PKCS#8 when it came from a PFX).
        private_key_pem: Secret,
        algorithm: CertificateAlgorithm,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientSecret(_) => f.write_str("ClientSecret(<redacted>)"),
            Self::Certificate { algorithm, .. } => f
                .debug_struct("Certificate")
                .field("algorithm", algorithm)
                .field("private_key_pem", &"<redacted>")
                .finish_non_exhaustive(),
        }
    }
}

impl CloudConfig {
    /// Parses a whole configuration file's text and returns its `[cloud]` table, unresolved.
    pub fn from_toml_document(text: &str) -> Result<Self, CloudError> {
        #[derive(Deserialize)]
        struct Document {
            cloud: Option<toml::Value>,
        }
        let document: Document =
            toml::from_str(text).map_err(|e| CloudError::Config(e.to_string()))?;
        let table = document
            .cloud
            .ok_or_else(|| CloudError::Config("the [cloud] section is missing".into()))?;
        table
            .try_into()
            .map_err(|e: toml::de::Error| CloudError::Config(format!("[cloud]: {e}")))
    }

    /// Reads the file, takes its `[cloud]` table, resolves relative paths against the file's
    /// directory and validates it.
    pub fn load(path: &Path) -> Result<Self, CloudError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CloudError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut config = Self::from_toml_document(&text)?;
        let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base_dir);
        config.validate()?;
        Ok(config)
    }

    /// Makes every relative file path relative to `base_dir` (the config file's directory), so
    /// the tool behaves the same whatever directory it is started from.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        for path in [
            &mut self.client_secret_file,
            &mut self.certificate_file,
            &mut self.private_key_file,
            &mut self.certificate_pfx_file,
            &mut self.certificate_pfx_password_file,
            &mut self.ca_file,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base_dir.join(&*path);
            }
        }
    }

    /// Checks what can be checked without touching the network or the secret files.
    pub fn validate(&self) -> Result<(), CloudError> {
        let fail = |msg: String| Err(CloudError::Config(msg));
        if self.tenant_id.trim().is_empty() {
            return fail("tenant_id is empty".into());
        }
        if self.tenant_id.contains(['/', '?', '#', ' ']) {
            return fail(format!(
                "tenant_id {:?} is not a tenant id or domain",
                self.tenant_id
            ));
        }
        if self.client_id.trim().is_empty() {
            return fail("client_id is empty".into());
        }
        let has_pem = self.certificate_file.is_some() || self.private_key_file.is_some();
        let has_pfx =
            self.certificate_pfx_file.is_some() || self.certificate_pfx_password_file.is_some();
        let sources = [
            self.client_secret_file.is_some(),
            self.client_secret_env.is_some(),
            has_pem,
            has_pfx,
        ]
        .into_iter()
        .filter(|present| *present)
        .count();
        if sources == 0 {
            return fail(
                "no credential: set client_secret_file, client_secret_env, certificate_file \
                 + private_key_file, or certificate_pfx_file"
                    .into(),
            );
        }
        if sources > 1 {
            return fail(
                "more than one credential: set exactly one of client_secret_file, \
                 client_secret_env, certificate_file + private_key_file, certificate_pfx_file"
                    .into(),
            );
        }
        if has_pem && (self.certificate_file.is_none() || self.private_key_file.is_none()) {
            return fail("certificate_file and private_key_file must be set together".into());
        }
        if has_pfx && self.certificate_pfx_file.is_none() {
            return fail(
                "certificate_pfx_password_file is set but certificate_pfx_file is not".into(),
            );
        }
        if let Some(name) = &self.client_secret_env {
            if name.is_empty() {
                return fail("client_secret_env names no variable".into());
            }
        }
        for (key, url) in [
            ("login_url", &self.login_url),
            ("graph_url", &self.graph_url),
            ("exchange_url", &self.exchange_url),
        ] {
            if let Some(url) = url {
                check_base_url(key, url)?;
            }
        }
        if self.exchange_page_size == 0 || self.exchange_page_size > 10_000 {
            return fail(format!(
                "exchange_page_size {} is outside 1..=10000",
                self.exchange_page_size
            ));
        }
        if self.request_timeout_secs == 0 || self.connect_timeout_secs == 0 {
            return fail("request_timeout_secs and connect_timeout_secs must be positive".into());
        }
        Ok(())
    }

    /// The base URLs: the environment's presets with any overrides applied.
    pub fn endpoints(&self) -> Endpoints {
        let (login, graph, exchange) = self.environment.preset();
        let pick = |over: &Option<String>, preset: &str| {
            over.as_deref()
                .unwrap_or(preset)
                .trim_end_matches('/')
                .to_string()
        };
        Endpoints {
            login: pick(&self.login_url, login),
            graph: pick(&self.graph_url, graph),
            exchange: pick(&self.exchange_url, exchange),
        }
    }

    /// Reads the secret or the certificate and key the config points at.
    pub fn load_credential(&self) -> Result<Credential, CloudError> {
        if let Some(path) = &self.client_secret_file {
            let text = read_text(path, "client_secret_file")?;
            let secret = text.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                return Err(CloudError::Config(format!(
                    "client_secret_file {} is empty",
                    path.display()
                )));
            }
            return Ok(Credential::ClientSecret(Secret::new(secret)));
        }
        if let Some(name) = &self.client_secret_env {
            return match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Credential::ClientSecret(Secret::new(value))),
                _ => Err(CloudError::Config(format!(
                    "environment variable {name} (client_secret_env) is not set or empty"
                ))),
            };
        }
        if let (Some(cert_path), Some(key_path)) = (&self.certificate_file, &self.private_key_file)
        {
            let certificate_der =
                crate::auth::first_certificate_der(&read_text(cert_path, "certificate_file")?)
                    .map_err(|e| CloudError::Config(format!("{}: {e}", cert_path.display())))?;
            let private_key_pem = Secret::new(read_text(key_path, "private_key_file")?);
            return Ok(Credential::Certificate {
                certificate_der,
                private_key_pem,
                algorithm: self.certificate_algorithm,
            });
        }
        if let Some(pfx_path) = &self.certificate_pfx_file {
            return self.load_pfx_credential(pfx_path);
        }
        self.validate()?;
        Err(CloudError::Config("no usable credential configured".into()))
    }

    fn load_pfx_credential(&self, pfx_path: &Path) -> Result<Credential, CloudError> {
        let pfx = std::fs::read(pfx_path).map_err(|e| {
            CloudError::Config(format!("certificate_pfx_file {}: {e}", pfx_path.display()))
        })?;
        let password_text = match &self.certificate_pfx_password_file {
            Some(path) => Secret::new(read_text(path, "certificate_pfx_password_file")?),
            None => Secret::new(""),
        };
        let password = crate::pfx::password_from_file_text(password_text.expose());
        let loaded = crate::pfx::read_pfx(&pfx, password).map_err(|detail| {
            CloudError::Certificate(format!(
                "certificate_pfx_file {}: {detail}",
                pfx_path.display()
            ))
        })?;
        Ok(Credential::Certificate {
            certificate_der: loaded.certificate_der,
            private_key_pem: loaded.private_key_pem,
            algorithm: self.certificate_algorithm,
        })
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    pub fn watermark_overlap(&self) -> Duration {
        Duration::from_secs(self.watermark_overlap_secs)
    }

    pub fn full_pass_interval(&self) -> Duration {
        Duration::from_secs(self.full_pass_interval_hours.saturating_mul(3600))
    }
}

fn read_text(path: &Path, key: &str) -> Result<String, CloudError> {
    std::fs::read_to_string(path)
        .map_err(|e| CloudError::Config(format!("{key} {}: {e}", path.display())))
}

/// Tokens must not travel in clear text, except to a test server on this machine.
fn check_base_url(key: &str, url: &str) -> Result<(), CloudError> {
    if url.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        if host == "localhost" || host.starts_with("127.") || rest.starts_with("[::1]") {
            return Ok(());
        }
    }
    Err(CloudError::Config(format!(
        "{key} {url:?} must be an https:// URL (plain http only to a loopback address)"
    )))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

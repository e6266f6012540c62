//! Connection settings for one domain controller, and the `[ad]` section of the config file.

use crate::error::AdError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use writeback_core::Secret;

/// How the connection is secured, derived from the URL and the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` + StartTLS.
    StartTls,
    /// `ldap://` in the clear: only with `insecure = true` (labs).
    Plain,
}

/// Runtime settings of the AD connector (secrets resolved, paths absolute).
#[derive(Debug, Clone)]
pub struct AdConfig {
    pub url: String,
    pub transport: Transport,
    pub bind_dn: String,
    pub bind_password: Secret,
    /// PEM file of the CA that signed the DC's certificate; `None` = the system's trust store.
    pub ca_file: Option<PathBuf>,
    pub base_dn: String,
    /// Only objects under these DNs may be matched/written (empty = the whole base).
    pub scope: Vec<String>,
    /// Connections kept open: writes are pipelined over one, reads use the others.
    pub pool_size: usize,
    /// Per-request timeout. A modify that times out has an unknown outcome.
    pub timeout: Duration,
    pub page_size: i32,
    /// Searches a scope scan runs at once, each on a reader connection of its own, over parts of
    /// the scope split by uSNCreated. A DC serves a search with one process (Samba: the worker
    /// that took the connection, so two connections may share one; three readers rarely all do).
    pub scan_streams: usize,
    /// Write to adminCount=1 / critical system objects. Off unless the operator opts in.
    pub allow_protected: bool,
}

impl AdConfig {
    /// Settings with defaults; the transport is derived from the URL (`ldaps://` or StartTLS).
    pub fn new(
        url: &str,
        bind_dn: &str,
        bind_password: Secret,
        base_dn: &str,
    ) -> Result<Self, AdError> {
        let transport = transport_for(url, true, false)?;
        Ok(AdConfig {
            url: url.to_owned(),
            transport,
            bind_dn: bind_dn.to_owned(),
            bind_password,
            ca_file: None,
            base_dn: base_dn.to_owned(),
            scope: Vec::new(),
            pool_size: 4,
            timeout: Duration::from_secs(30),
            page_size: 500,
            scan_streams: 3,
            allow_protected: false,
        })
    }
}

/// Decides the transport and refuses a clear-text bind unless explicitly allowed.
pub fn transport_for(url: &str, start_tls: bool, insecure: bool) -> Result<Transport, AdError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("ldaps://") {
        Ok(Transport::Ldaps)
    } else if lower.starts_with("ldap://") {
        if start_tls {
            Ok(Transport::StartTls)
        } else if insecure {
            Ok(Transport::Plain)
        } else {
            Err(AdError::Config(format!(
                "{url} is plain LDAP: use ldaps://, or set start_tls = true, \
                 or (labs only) insecure = true"
            )))
        }
    } else {
        Err(AdError::Config(format!(
            "url {url:?} must start with ldaps:// or ldap://"
        )))
    }
}

/// The `[ad]` section of writeback's TOML config, as written by the operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdSection {
    pub url: String,
    #[serde(default)]
    pub start_tls: bool,
    #[serde(default)]
    pub insecure: bool,
    pub bind_dn: String,
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// Name of an environment variable holding the password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub base_dn: String,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub pool_size: Option<usize>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub page_size: Option<i32>,
    #[serde(default)]
    pub scan_streams: Option<usize>,
    #[serde(default)]
    pub allow_protected: bool,
}

impl AdSection {
    /// Resolves secrets and relative paths (relative to `base_dir`, the config file's folder).
    pub fn resolve(&self, base_dir: &Path) -> Result<AdConfig, AdError> {
        let transport = transport_for(&self.url, self.start_tls, self.insecure)?;
        let password = match (&self.bind_password_file, &self.bind_password_env) {
            (Some(_), Some(_)) => {
                return Err(AdError::Config(
                    "set only one of bind_password_file and bind_password_env".into(),
                ))
            }
            (Some(file), None) => {
                let path = base_dir.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    AdError::Config(format!("cannot read bind_password_file {}: {e}", path.display()))
                })?;
                Secret::new(text.trim_end_matches(['\r', '\n']))
            }
            (None, Some(var)) => Secret::new(std::env::var(var).map_err(|_| {
                AdError::Config(format!("environment variable {var} (bind_password_env) is not set"))
            })?),
            (None, None) => {
                return Err(AdError::Config(
                    "set bind_password_file or bind_password_env".into(),
                ))
            }
        };
        let page_size = self.page_size.unwrap_or(500);
        if !(1..=1000).contains(&page_size) {
            return Err(AdError::Config(format!(
                "page_size {page_size} out of range 1..=1000 (AD's MaxPageSize is 1000)"
            )));
        }
        let pool_size = self.pool_size.unwrap_or(4);
        if !(1..=64).contains(&pool_size) {
            return Err(AdError::Config(format!("pool_size {pool_size} out of range 1..=64")));
        }
        let scan_streams = self.scan_streams.unwrap_or(3);
        if !(1..=8).contains(&scan_streams) {
            return Err(AdError::Config(format!("scan_streams {scan_streams} out of range 1..=8")));
        }
        Ok(AdConfig {
            url: self.url.clone(),
            transport,
            bind_dn: self.bind_dn.clone(),
            bind_password: password,
            ca_file: self.ca_file.as_ref().map(|p| base_dir.join(p)),
            base_dn: self.base_dn.clone(),
            scope: self.scope.clone(),
            pool_size,
            timeout: Duration::from_secs(self.timeout_seconds.unwrap_or(30).max(1)),
            page_size,
            scan_streams,
            allow_protected: self.allow_protected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ldap_needs_explicit_opt_in() {
        assert!(transport_for("ldap://dc1", false, false).is_err());
        assert_eq!(transport_for("ldap://dc1", true, false).ok(), Some(Transport::StartTls));
        assert_eq!(transport_for("ldap://dc1", false, true).ok(), Some(Transport::Plain));
        assert_eq!(transport_for("LDAPS://dc1", false, false).ok(), Some(Transport::Ldaps));
        assert!(transport_for("http://dc1", true, true).is_err());
    }

    #[test]
    fn secret_is_redacted_in_debug() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let cfg = AdConfig::new("ldaps://dc", "cn=a", s, "dc=x").unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn section_resolves_password_file_relative_to_config() {
        let dir = std::env::temp_dir().join(format!("wb-ad-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        let section: AdSection = toml_like(
            r#"{"url":"ldaps://dc","bind_dn":"cn=a","bind_password_file":"pw","base_dn":"dc=x","ca_file":"ca.pem"}"#,
        );
        let cfg = section.resolve(&dir).unwrap();
        assert_eq!(cfg.bind_password.expose(), "s3cret");
        assert_eq!(cfg.ca_file, Some(dir.join("ca.pem")));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn section_rejects_missing_password_and_out_of_range_numbers() {
        let s: AdSection = toml_like(r#"{"url":"ldaps://dc","bind_dn":"cn=a","base_dn":"dc=x"}"#);
        assert!(s.resolve(Path::new("/")).unwrap_err().to_string().contains("bind_password"));
        std::env::set_var("WB_TEST_PW_ENV", "x");
        let s: AdSection = toml_like(
            r#"{"url":"ldaps://dc","bind_dn":"cn=a","base_dn":"dc=x","bind_password_env":"WB_TEST_PW_ENV","page_size":5000}"#,
        );
        assert!(s.resolve(Path::new("/")).unwrap_err().to_string().contains("page_size"));
        for bad in [0, 9] {
            let s: AdSection = toml_like(&format!(
                r#"{{"url":"ldaps://dc","bind_dn":"cn=a","base_dn":"dc=x","bind_password_env":"WB_TEST_PW_ENV","scan_streams":{bad}}}"#
            ));
            let err = s.resolve(Path::new("/")).unwrap_err().to_string();
            assert!(err.contains("scan_streams") && err.contains(&bad.to_string()), "{err}");
        }
    }

    fn toml_like(json: &str) -> AdSection {
        serde_json::from_str(json).unwrap()
    }
}

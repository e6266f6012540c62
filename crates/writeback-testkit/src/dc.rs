//! Starting the DC and reading its connection settings.

use crate::{Result, TestkitError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use writeback_ad::{AdConfig, Secret};

/// The connection settings `scripts/ad-dc` writes to `.ad-dc/env`.
#[derive(Clone)]
pub struct DcEnv {
    pub ldap_url: String,
    pub ldaps_url: String,
    pub base_dn: String,
    pub bind_dn: String,
    pub bind_password: Secret,
    pub ca_cert: PathBuf,
}

impl std::fmt::Debug for DcEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DcEnv")
            .field("ldaps_url", &self.ldaps_url)
            .field("base_dn", &self.base_dn)
            .field("bind_dn", &self.bind_dn)
            .finish_non_exhaustive()
    }
}

impl DcEnv {
    /// Parses the `KEY=value` file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TestkitError::Dc(format!("cannot read {}: {e}", path.display())))?;
        let map: HashMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |k: &str| {
            map.get(k)
                .map(|v| v.to_string())
                .ok_or_else(|| TestkitError::Dc(format!("{} lacks {k}", path.display())))
        };
        Ok(DcEnv {
            ldap_url: get("LDAP_URL")?,
            ldaps_url: get("LDAPS_URL")?,
            base_dn: get("BASE_DN")?,
            bind_dn: get("BIND_DN")?,
            bind_password: Secret::new(get("BIND_PASSWORD")?),
            ca_cert: PathBuf::from(get("CA_CERT")?),
        })
    }

    /// Connector settings for LDAPS with the DC's CA, rooted at `base_dn`.
    pub fn ad_config(&self) -> Result<AdConfig> {
        let mut config = AdConfig::new(
            &self.ldaps_url,
            &self.bind_dn,
            self.bind_password.clone(),
            &self.base_dn,
        )?;
        config.ca_file = Some(self.ca_cert.clone());
        Ok(config)
    }
}

/// The repository root (this crate lives at `crates/writeback-testkit`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts the DC if it is not running (idempotent, safe from parallel test processes: the
/// script serialises with a lock) and returns its settings. Once per process.
pub fn ensure_dc() -> Result<DcEnv> {
    static STARTED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let root = project_root();
    STARTED
        .get_or_init(|| {
            let out = Command::new(root.join("scripts/ad-dc"))
                .arg("start")
                .output()
                .map_err(|e| format!("cannot run scripts/ad-dc: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`scripts/ad-dc start` failed ({}):\n{}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })
        .clone()
        .map_err(TestkitError::Dc)?;
    DcEnv::load(&root.join(".ad-dc/env"))
}

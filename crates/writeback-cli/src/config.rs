//! The TOML config file: one section per edge of the pipeline.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use writeback_ad::{AdConfig, AdSection};
use writeback_cloud::CloudConfig;
use writeback_engine::{Brakes, EngineSection};

/// The whole file. Each section is validated by the command that uses it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub ad: Option<AdSection>,
    pub cloud: Option<CloudConfig>,
    #[serde(default)]
    pub state: StateSection,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub brakes: Brakes,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// `[state]`: where writeback keeps its state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// SQLite file, relative to the config file.
    #[serde(default = "default_state_path")]
    pub path: PathBuf,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection { path: default_state_path() }
    }
}

fn default_state_path() -> PathBuf {
    PathBuf::from("writeback.db")
}

/// `[log]`: logging.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `human` (default) or `json`.
    #[serde(default)]
    pub format: Option<String>,
    /// A tracing filter, e.g. `info` or `writeback_engine=debug,info`.
    #[serde(default)]
    pub level: Option<String>,
}

/// `[metrics]`: the Prometheus scrape endpoint of `writeback run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `host:port` to serve `/metrics` on (plain HTTP: bind it to loopback or a management
    /// network). Absent: no endpoint. The metrics carry counts only, never a name or a secret.
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
}

/// A loaded config and the folder relative paths are resolved against.
pub struct Config {
    pub file: ConfigFile,
    pub base_dir: PathBuf,
    pub path: PathBuf,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let file: ConfigFile = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Config {
            file,
            base_dir,
            path: path.to_path_buf(),
        })
    }

    /// The `[cloud]` section with paths resolved and checked.
    pub fn cloud(&self) -> Result<CloudConfig> {
        let mut cloud = self
            .file
            .cloud
            .clone()
            .with_context(|| format!("{} has no [cloud] section", self.path.display()))?;
        cloud.resolve_paths(&self.base_dir);
        cloud
            .validate()
            .with_context(|| format!("[cloud] section of {}", self.path.display()))?;
        Ok(cloud)
    }

    /// The state file's path, resolved against the config file's folder.
    pub fn state_path(&self) -> PathBuf {
        self.base_dir.join(&self.file.state.path)
    }

    /// Opens (creating if needed) the state store.
    pub fn open_state(&self) -> Result<writeback_state::SqliteStore> {
        let path = self.state_path();
        writeback_state::SqliteStore::open(&path)
            .with_context(|| format!("cannot open the state store {}", path.display()))
    }

    pub fn ad(&self) -> Result<AdConfig> {
        let section = self
            .file
            .ad
            .as_ref()
            .with_context(|| format!("{} has no [ad] section", self.path.display()))?;
        section
            .resolve(&self.base_dir)
            .with_context(|| format!("[ad] section of {}", self.path.display()))
    }
}

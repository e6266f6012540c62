//! The TOML config file: one section per edge of the pipeline.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use writeback_ad::{AdConfig, AdSection};

/// The whole file. Each section is validated by the command that uses it.
#[derive(Debug, Deserialize)]
pub struct ConfigFile {
    pub ad: Option<AdSection>,
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

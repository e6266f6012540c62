//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while starting, running or feeding the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("I/O error on {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot bind {addr}: {cause}")]
    Bind {
        addr: std::net::SocketAddr,
        cause: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    #[error("state file {path} is invalid: {message}")]
    StateFile { path: PathBuf, message: String },
    #[error("JSON error: {0}")]
    Json(serde_json::Error),
    #[error("environment file {path}: {message}")]
    EnvFile { path: PathBuf, message: String },
    #[error("LDAP error: {0}")]
    Ldap(String),
    #[error("AD entry {dn} cannot be imported: {message}")]
    Import { dn: String, message: String },
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl EmulatorError {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        EmulatorError::Io {
            path: path.into(),
            cause,
        }
    }
}

// Each variant prints its cause in its message, so none is also a `source()`.
impl From<serde_json::Error> for EmulatorError {
    fn from(error: serde_json::Error) -> Self {
        EmulatorError::Json(error)
    }
}

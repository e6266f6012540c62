//! Test kit: boots the project's real Samba AD DC (`scripts/ad-dc start`) and gives each
//! integration test its own OU, so tests run in parallel against one real server.
//!
//! Writes made here (creating OUs and users, simulating on-prem edits) go around writeback's
//! guarded write path on purpose: they play the part of other administrators and tools.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dc;
mod ou;

pub use dc::{ensure_dc, project_root, DcEnv};
pub use ou::{EntrySnapshot, TestOu};

/// Errors of the test kit: enough text to tell why the test bed is not there.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("scripts/ad-dc: {0}")]
    Dc(String),
    #[error("LDAP: {0}")]
    Ldap(String),
    #[error(transparent)]
    Ad(#[from] writeback_ad::AdError),
}

pub type Result<T> = std::result::Result<T, TestkitError>;

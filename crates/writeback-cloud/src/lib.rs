//! Cloud readers of writeback: OAuth2 client credentials against Entra, the Exchange Online
//! admin API (`Get-Mailbox` of cloud-managed mailboxes) and Microsoft Graph `users/delta`
//! (identity anchors), producing [`writeback_core::Mailbox`] records.
//!
//! Use: build [`CloudReaders`] from a validated [`CloudConfig`] (or call [`pull()`]); then
//! - Exchange: `readers.exchange.pass(kind)` and `next_page()` until `None`, or `read_all`; pick
//!   `kind` with [`exchange::choose_pass`]; persist `PassSummary::watermark` (and the time of the
//!   last full pass) only once the caller has applied the pass;
//! - Graph: `readers.graph.next_page(&cursor)` from the stored [`DeltaCursor`], persisting
//!   `page.cursor` after every page; `page.resynced` means the round started over.
//!
//! Credentials: a client secret (file or environment variable), or a certificate registered on
//! the app, either as PEM certificate + key files or as one PKCS#12 `.pfx` export
//! (`certificate_pfx_file`, password in `certificate_pfx_password_file`). PFX files with the
//! legacy 3DES/RC2 ciphers and with PBES2/AES-256 are read (see [`pfx`]); the certificate used
//! is the one matching the RSA private key, so CA certificates in the export do no harm.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod auth;
pub mod config;
pub mod error;
pub mod exchange;
pub mod exchange_parse;
pub mod graph;
pub mod graph_parse;
pub mod http;
mod json;
pub mod pfx;
pub mod pull;

use std::sync::Arc;

pub use config::{CertificateAlgorithm, CloudConfig, CloudEnvironment, Credential, Secret};
pub use error::{CloudError, MailboxError};
pub use exchange::{DeliveredIds, ExchangeReader, MailboxPage, PassKind, PassSummary};
pub use exchange_parse::Watermark;
pub use graph::{DeltaCursor, GraphReader};
pub use graph_parse::{DeltaPage, Field, GraphUser, RemovalReason, RemovedUser};
pub use pull::{
    anchor_key, merge_delta_page, pull, pull_with, pull_with_anchors, AnchorChanges, AnchorIndex,
    AnchorStore, PullSummary,
};
pub use writeback_core::{Anchors, Mailbox};

/// The readers of one tenant, sharing one HTTPS client and one token cache.
#[derive(Debug, Clone)]
pub struct CloudReaders {
    pub tokens: Arc<auth::TokenProvider>,
    pub exchange: ExchangeReader,
    pub graph: GraphReader,
}

impl CloudReaders {
    /// Validates `config` (paths must already be resolved), loads the credential and builds
    /// the client. Sends nothing yet.
    pub fn from_config(config: &CloudConfig) -> Result<Self, CloudError> {
        config.validate()?;
        let credential = config.load_credential()?;
        let http = http::HttpClient::from_config(config)?;
        let tokens = Arc::new(auth::TokenProvider::new(http.clone(), config, credential));
        Ok(Self {
            exchange: ExchangeReader::new(http.clone(), tokens.clone(), config),
            graph: GraphReader::new(http, tokens.clone(), config),
            tokens,
        })
    }
}

//! The one error type of the cloud readers, plus the per-mailbox error that does not fail a run.

use std::time::Duration;

/// Everything that can make a cloud read fail as a whole.
///
/// Endpoints are printed without their query string: page tokens are long and say nothing useful
/// to an operator, and nothing secret is ever part of an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The `[cloud]` configuration is missing something, has a contradiction, or a file it names
    /// cannot be read.
    #[error("cloud configuration: {0}")]
    Config(String),

    /// The HTTP client could not be built (TLS roots, extra CA file).
    #[error("cannot build the HTTPS client: {0}")]
    ClientSetup(String),

    /// Entra refused to issue a token.
    #[error("authentication against {endpoint} failed: {code}: {description}")]
    Auth {
        endpoint: String,
        /// `AADSTS70011`-style code when Entra gave one, else the OAuth2 `error` value or the
        /// HTTP status.
        code: String,
        /// First line of `error_description` (the rest is trace/correlation ids).
        description: String,
    },

    /// The client certificate or its private key could not be used to sign an assertion.
    #[error("client certificate: {0}")]
    Certificate(String),

    /// A request got an HTTP status that is not retried.
    #[error("{endpoint} answered HTTP {status}: {message}")]
    HttpStatus {
        endpoint: String,
        status: u16,
        /// The most useful message found in the error body (Graph `error.message`, Exchange
        /// `details[].message`, or the start of a non-JSON body).
        message: String,
    },

    /// Retries (throttling, 5xx, connection errors) used up the configured total wait.
    #[error(
        "{endpoint} still failing after {attempts} attempts and {waited:?} of waiting: last {last}"
    )]
    RetryBudgetExhausted {
        endpoint: String,
        attempts: u32,
        waited: Duration,
        /// The last status (`HTTP 429`) or transport error seen.
        last: String,
    },

    /// The request could not be sent or the answer not read, and it is not worth retrying.
    #[error("{endpoint}: {message}")]
    Transport { endpoint: String, message: String },

    /// A response was not the JSON shape expected; `path` says where it went wrong.
    #[error("malformed response from {endpoint} at {path}: {detail}")]
    MalformedResponse {
        endpoint: String,
        path: String,
        detail: String,
    },

    /// A paged query had to be restarted more often than allowed (e.g. pagination tokens keep
    /// expiring), so the pass was abandoned rather than loop forever.
    #[error("{endpoint}: gave up after {restarts} restarts of the paged query: {reason}")]
    TooManyRestarts {
        endpoint: String,
        restarts: u32,
        reason: String,
    },

    /// The Graph delta token is no longer valid and a resync would be needed, but the caller
    /// asked not to restart automatically.
    #[error("Graph delta sync state lost ({reason}); a full resync is required")]
    ResyncRequired { reason: String },

    /// The record of the mailboxes a pass delivered (kept by the caller) failed.
    #[error("cannot record the mailboxes this pass delivered: {0}")]
    DeliveredIds(String),
}

/// One mailbox that could not be turned into a [`writeback_core::Mailbox`].
///
/// Reported beside the good ones so that one odd object never fails a whole pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailbox {}: {field}: {detail}", id.as_deref().unwrap_or("<unknown id>"))]
pub struct MailboxError {
    /// `ExternalDirectoryObjectId`, else `Guid`/`Identity`, when the object had one.
    pub id: Option<String>,
    /// The property (JSON path inside the mailbox object) that was wrong.
    pub field: String,
    pub detail: String,
}

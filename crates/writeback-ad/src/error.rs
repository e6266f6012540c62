//! The AD connector's one error type.

use thiserror::Error;

/// Everything that can go wrong talking to Active Directory.
///
/// The variants are shaped by what the caller must do next: a [`AdError::Conflict`] means
/// "re-read and re-plan", [`AdError::OutcomeUnknown`] means "re-read before deciding", the
/// rest are reported.
#[derive(Debug, Error)]
pub enum AdError {
    #[error("AD configuration: {0}")]
    Config(String),

    #[error("TLS setup: {0}")]
    Tls(String),

    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },

    #[error("bind as {bind_dn} refused (LDAP {code}): {message}")]
    Bind { bind_dn: String, code: u32, message: String },

    /// The object changed between read and write: the value-specific modify no longer
    /// matched (16 noSuchAttribute / 20 attributeOrValueExists). Nothing was written.
    #[error("conflict on {dn}: the object changed since it was read (LDAP {code}: {message})")]
    Conflict { dn: String, code: u32, message: String },

    /// The DC does not know an attribute: the schema lacks the Exchange extension.
    #[error("the AD schema lacks an attribute written to {dn} (LDAP {code}): {message}")]
    SchemaMissing { dn: String, code: u32, message: String },

    /// The object is gone (deleted, or its DN/GUID no longer resolves).
    #[error("no such object: {dn}")]
    NoSuchObject { dn: String },

    /// adminCount=1 or isCriticalSystemObject: writeback never writes to such objects.
    #[error("refused to write to protected object {dn} ({reason})")]
    Protected { dn: String, reason: &'static str },

    #[error("access denied writing {dn} (LDAP {code}): {message}")]
    AccessDenied { dn: String, code: u32, message: String },

    /// The DC refused a value (syntax, range, constraint): a data problem for this object.
    #[error("the DC rejected a value for {dn} (LDAP {code}): {message}")]
    ValueRejected { dn: String, code: u32, message: String },

    /// A modification names an attribute outside the managed set. This is a bug upstream;
    /// the guard stops it before anything leaves the process.
    #[error("refused: {0}")]
    NotWritable(writeback_core::CoreError),

    /// The request may or may not have been applied (timeout, connection cut mid-request):
    /// re-read the object before deciding anything.
    #[error("outcome unknown for {dn}: {reason}")]
    OutcomeUnknown { dn: String, reason: String },

    #[error("invalid value for lookup: {0}")]
    InvalidKey(String),

    #[error("malformed entry from the DC: {0}")]
    MalformedEntry(String),

    #[error("LDAP {operation} failed (LDAP {code}): {message}")]
    Ldap { operation: &'static str, code: u32, message: String },

    #[error("LDAP {operation}: {reason}")]
    Transport { operation: &'static str, reason: String },
}

impl AdError {
    /// Whether the engine should re-read the object and plan again.
    pub fn needs_reread(&self) -> bool {
        matches!(self, AdError::Conflict { .. } | AdError::OutcomeUnknown { .. })
    }
}

// Not `#[from]`: the message already prints the cause, so it is not also a `source()`.
impl From<writeback_core::CoreError> for AdError {
    fn from(error: writeback_core::CoreError) -> Self {
        AdError::NotWritable(error)
    }
}

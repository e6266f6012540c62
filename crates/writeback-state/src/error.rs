//! The one error type of the state store.

use std::path::PathBuf;

/// Everything the state store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database could not be opened or configured.
    #[error("cannot open the state store {path}: {cause}")]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },

    /// Crash safety relies on WAL; SQLite refuses it on some network file systems.
    #[error(
        "the state store {path} cannot use WAL journaling (SQLite answered journal_mode={mode}); \
         put it on a local file system"
    )]
    NoWal { path: PathBuf, mode: String },

    /// The file was written by a newer writeback; migrating it down is not possible and
    /// writing to it with an older schema could damage it.
    #[error(
        "the state store {path} has schema version {found}, newer than the {supported} this build \
         of writeback understands; upgrade writeback or point it at another state file"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// A schema migration that would lose data; the file is left as it was.
    #[error("cannot upgrade the state store {path}: {detail}")]
    MigrationRefused { path: PathBuf, detail: String },

    #[error("state store database error: {0}")]
    Database(rusqlite::Error),

    /// A stored value that this code cannot read back (hand-edited file, or a bug).
    #[error("state store holds an unreadable {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },

    #[error("no {what} with id {id} in the state store")]
    NotFound { what: &'static str, id: String },

    /// An operation that is not allowed in the record's current state, e.g. approving a plan
    /// that was discarded or recording a second outcome for one journal entry.
    #[error("{what} {id}: {detail}")]
    InvalidTransition {
        what: &'static str,
        id: String,
        detail: String,
    },

    /// One AD object can belong to one cloud mailbox only; two mailboxes writing to the same
    /// object would overwrite each other.
    #[error("AD object {guid} is already joined to cloud mailbox {other_cloud_id}, cannot join it to {cloud_id}")]
    GuidAlreadyJoined {
        guid: String,
        cloud_id: String,
        other_cloud_id: String,
    },

    /// A number SQLite cannot hold: its integers are signed 64-bit.
    #[error("{what} {value} is too large for the state store")]
    TooLarge { what: &'static str, value: u64 },

    #[error("cannot encode {what} as JSON: {cause}")]
    Encode {
        what: &'static str,
        cause: serde_json::Error,
    },

    #[error("audit export failed: {0}")]
    Export(csv::Error),

    #[error("audit export failed: {0}")]
    Io(std::io::Error),
}

// The wrapping variants print their cause in their message, so none of them is also a
// `source()` (a chain-walking printer would say it twice): plain `From`s, not `#[from]`.
impl From<rusqlite::Error> for StateError {
    fn from(error: rusqlite::Error) -> Self {
        StateError::Database(error)
    }
}

impl From<csv::Error> for StateError {
    fn from(error: csv::Error) -> Self {
        StateError::Export(error)
    }
}

impl From<std::io::Error> for StateError {
    fn from(error: std::io::Error) -> Self {
        StateError::Io(error)
    }
}

impl StateError {
    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        StateError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Self {
        StateError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

pub type Result<T, E = StateError> = std::result::Result<T, E>;

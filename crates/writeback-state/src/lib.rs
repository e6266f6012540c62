//! The writeback state store: what the engine must remember between cycles and across
//! crashes.
//!
//! - **watermarks**: how far the cloud readers got;
//! - **cycles**: one row per engine run, with its summary;
//! - **joins**: which AD object (by objectGUID) each cloud mailbox writes to;
//! - **journal**: every write is recorded *before* it is sent and its outcome after, so a
//!   restart after `kill -9` knows exactly which writes were in flight; its finished entries
//!   are also the values writeback last wrote per mailbox;
//! - **audit log**: one row per attribute written, derived from the journal, queryable,
//!   exportable ([`export`]), purged by retention with the journal;
//! - **error queue**: per-mailbox failures with exponential backoff, then quarantine;
//! - **held plans**: plans a safety brake stopped, waiting for an operator's decision;
//! - **anchors**: Graph's identity anchors per cloud user, refreshed page by page from
//!   `users/delta`;
//! - **staged writes**: a cycle's planned writes, kept on disk between planning and applying
//!   so the brakes can see the whole cycle without it being held in memory;
//! - **scope snapshots** ([`ScopeSnapshot`]): a full pass's scratch copy of the AD objects in
//!   scope, in a file of its own, so every mailbox's object is looked up locally.
//!
//! [`StateStore`] is the interface; [`SqliteStore`] implements it in one SQLite file. The
//! store has no clock: every time is unix milliseconds passed in by the caller.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod codec;
pub mod error;
pub mod export;
pub mod model;
pub mod snapshot;
mod sqlite;
pub mod store;

pub use error::{Result, StateError};
pub use export::{write_audit_csv, write_audit_jsonl};
pub use model::{
    guid_to_string, AuditQuery, AuditRecord, Cycle, CycleId, FailureRecord, FailureState, HeldPlan,
    Join, JournalEntry, JournalId, LastWritten, MailboxState, MatchedBy, Outcome, PlanId,
    PlanStatus, PurgeReport, RetryPolicy, StagedWrite, WriteIntent,
};
pub use snapshot::{ScopeSnapshot, SnapshotRow};
pub use sqlite::{Durability, SqliteOptions, SqliteStore, SCHEMA_VERSION};
pub use store::StateStore;

//! The writeback engine: matches cloud-managed mailboxes to AD users, plans with
//! `writeback-core`, applies through `writeback-ad`'s guarded write path, and records
//! everything in the state store.
//!
//! A cycle is: refresh Graph anchors → read the Exchange pass (incremental by
//! `WhenChangedUTC` watermark, or full) → match, read and plan each mailbox, staging the
//! writes → check the safety brakes → apply (journal before, outcome after) → advance the
//! watermark. See ARCHITECTURE.md for the invariants this keeps.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apply;
mod cycle;
mod engine;
pub mod error;
mod matcher;
mod metrics;
mod provision;
mod recovery;
pub mod report;
pub mod scope_snapshot;
pub mod settings;

pub use cycle::{
    staged_write, CycleOptions, ObjectSink, Shutdown, WATERMARK_LAST_FULL_PASS, WATERMARK_SCAN_BOUNDS, WATERMARK_WHEN_CHANGED,
};
pub use engine::{Assessment, BeforeApplyHook, Engine};
pub use error::EngineError;
pub use matcher::{Matched, SkipReason};
pub use metrics::describe_metrics;
pub use provision::{ProvisionOutcome, StepSink};
pub use recovery::RecoveryReport;
pub use report::{CycleSummary, HeldSummary, ObjectReport};
pub use scope_snapshot::{Resolution, SnapshotPlanner};
pub use settings::{Brakes, EngineSection, EngineSettings};

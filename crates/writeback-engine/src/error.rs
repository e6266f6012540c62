//! The engine's one error type: what stops a cycle (as opposed to what stops one mailbox,
//! which is a [`crate::report::MailboxOutcome`]).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("AD: {0}")]
    Ad(#[from] writeback_ad::AdError),
    #[error("cloud: {0}")]
    Cloud(#[from] writeback_cloud::CloudError),
    #[error("state store: {0}")]
    State(#[from] writeback_state::StateError),
    #[error("scope snapshot: {0}")]
    Snapshot(String),
    #[error("plan file: {0}")]
    PlanFile(String),
    #[error("stopped: {0}")]
    Stopped(&'static str),
}

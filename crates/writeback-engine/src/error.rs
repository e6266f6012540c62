//! The engine's one error type: what stops a cycle (as opposed to what stops one mailbox,
//! which is a [`crate::report::MailboxOutcome`]).
//!
//! Convention of every crate here: an error that wraps another prints it in its own message
//! (logs show one `Display`) and so does not also hand it out as `source()`; otherwise a
//! chain-walking printer (anyhow's `{:#}`) says everything twice.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("AD: {0}")]
    Ad(writeback_ad::AdError),
    #[error("cloud: {0}")]
    Cloud(writeback_cloud::CloudError),
    #[error("state store: {0}")]
    State(writeback_state::StateError),
    #[error("scope snapshot: {0}")]
    Snapshot(String),
    #[error("plan file: {0}")]
    PlanFile(String),
    #[error("stopped: {0}")]
    Stopped(&'static str),
    /// The task applying a full pass's writes beside its planning ended abnormally.
    #[error("apply task: {0}")]
    ApplyTask(String),
}

impl From<writeback_ad::AdError> for EngineError {
    fn from(error: writeback_ad::AdError) -> Self {
        EngineError::Ad(error)
    }
}

impl From<writeback_cloud::CloudError> for EngineError {
    fn from(error: writeback_cloud::CloudError) -> Self {
        EngineError::Cloud(error)
    }
}

impl From<writeback_state::StateError> for EngineError {
    fn from(error: writeback_state::StateError) -> Self {
        EngineError::State(error)
    }
}

#[cfg(test)]
mod tests {
    use super::EngineError;
    use std::error::Error as _;

    #[test]
    fn a_wrapped_error_is_printed_once_and_not_chained() {
        let error = EngineError::from(writeback_state::StateError::NotFound { what: "plan", id: "7".into() });
        assert_eq!(error.to_string(), "state store: no plan with id 7 in the state store");
        assert!(error.source().is_none());
    }
}

//! The pure core of writeback: the mailbox model, normalisation, validation and the planner
//! that turns (desired cloud record, current AD values) into LDAP modifications.
//!
//! Nothing in this crate does I/O: no network, no files, no clock. That is what lets it be
//! tested exhaustively.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod mailbox;

pub use mailbox::{Anchors, Mailbox};

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A faithful stand-in for the parts of Microsoft 365 that writeback talks to: the Entra token
//! endpoint, Graph `users/delta` and the Exchange Online admin API, on one HTTPS port, plus a
//! control API for tests (see README.md).

pub mod auth;
pub mod bench;
mod change_index;
pub mod clock;
mod control;
pub mod error;
pub mod exchange;
pub mod faults;
pub mod graph;
pub mod import;
pub mod model;
pub mod opath;
pub mod provisioning;
mod server;
pub mod state;
pub mod tls;

pub use error::EmulatorError;
pub use server::RunningEmulator;
pub use state::EmulatorConfig;

//! The Active Directory connector: async LDAP (ldap3) over LDAPS or StartTLS with the
//! DC's certificate validated, a small reconnecting pool, anchor lookups with RFC 4515
//! escaping, paged reads, and the single write path ([`AdDirectory::apply`]).
//!
//! Writes are optimistic-concurrency modifies planned by `writeback-core`; AD has no
//! assertion control, so a value-specific delete+add is what detects an on-prem edit made
//! between read and write.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod config;
mod directory;
mod entry;
pub mod error;
pub mod ids;
mod pool;
pub mod scan;
pub mod tls;
mod write;

pub use config::{AdConfig, AdSection, Secret, Transport};
pub use directory::{AdDirectory, RootDse, UserKey};
pub use entry::{read_attributes, AdUser, IDENTITY_ATTRIBUTES};
pub use error::AdError;
pub use write::describe_metrics;

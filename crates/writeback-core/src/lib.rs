//! The pure core of writeback: the mailbox model, normalisation, validation and the planner
//! that turns (desired cloud record, current AD values) into LDAP modifications.
//!
//! Nothing in this crate does I/O: no network, no files, no clock. That is what lets it be
//! tested exhaustively.
//!
//! The flow is: a cloud reader produces a [`Mailbox`]; [`validate()`] normalises it (Unicode
//! NFC) and checks it against the rules Exchange enforces and AD does not, giving a
//! [`DesiredState`]; [`plan()`] compares that with the object's current [`AdValues`] and
//! returns the minimal list of [`Modification`]s; the AD connector calls
//! [`ensure_writable`] on that list right before it leaves the process.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod address;
mod apply;
pub mod attribute;
pub mod error;
pub mod mailbox;
pub mod modification;
pub mod normalise;
pub mod plan;
pub mod policy;
pub mod recipient;
pub mod secret;
pub mod validate;
pub mod values;

pub use address::{check_smtp_address, AddressProblem, ProxyAddress};
pub use attribute::{ensure_writable, is_writable, ManagedAttribute, WRITABLE_ATTRIBUTES};
pub use error::{ApplyError, CoreError, Rule, ValidationError};
pub use mailbox::{Anchors, Mailbox};
pub use modification::{touched_attributes, ModOp, Modification};
pub use plan::{plan, plan_desired};
pub use policy::PlanPolicy;
pub use recipient::RemoteRecipientType;
pub use secret::Secret;
pub use validate::{validate, DesiredState};
pub use values::AdValues;

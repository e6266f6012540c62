//! The normalised cloud record of one cloud-managed mailbox.
//!
//! This is the shape every cloud reader produces and the planner consumes. Its JSON form is
//! the one `writeback cloud pull --json` prints (one object per line), so field names are part
//! of the public interface: rename nothing without a migration note.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One Exchange Online mailbox as read from the cloud, before validation.
///
/// Values are kept as the cloud sent them; `""`, `[]` and `null` all mean "clear" and are
/// treated alike by the planner.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mailbox {
    /// `ExternalDirectoryObjectId`: the Entra user's object id.
    pub cloud_id: String,
    /// `WindowsEmailAddress` / `PrimarySmtpAddress` (the address, without `SMTP:`).
    #[serde(default)]
    pub primary_smtp: Option<String>,
    /// `EmailAddresses`: `TYPE:address` values, upper-case type = primary.
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    /// `CustomAttribute1..15`, keyed `"1"`..`"15"`; a missing key means "clear".
    #[serde(default)]
    pub custom_attributes: BTreeMap<String, String>,
    /// `ExtensionCustomAttribute1..5`, keyed `"1"`..`"5"`; a missing key means "clear".
    #[serde(default)]
    pub extension_custom_attributes: BTreeMap<String, Vec<String>>,
    /// `HiddenFromAddressListsEnabled`.
    #[serde(default)]
    pub hidden_from_address_lists: Option<bool>,
    /// `RecipientTypeDetails` as Exchange names it (`UserMailbox`, `SharedMailbox`, ...).
    #[serde(default)]
    pub recipient_type_details: Option<String>,
    /// Identity anchors from Graph (and the DN hint), as far as they are known.
    #[serde(default)]
    pub anchors: Anchors,
    /// `WhenChangedUTC` as the cloud sent it (kept for watermarks and audit, not planned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_changed_utc: Option<String>,
}

/// What ties a cloud user to its AD object, strongest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Anchors {
    /// `onPremisesImmutableId`: base64 of mS-DS-ConsistencyGuid (or objectGUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable_id: Option<String>,
    /// `onPremisesSecurityIdentifier`: the objectSid in `S-1-5-21-...` form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `onPremisesDistinguishedName`: a hint only; objects move and get renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
}

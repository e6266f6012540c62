//! The tenant: Entra users (as Graph shows them), Exchange mailboxes and registered apps.
//! Everything here is plain data plus the invariants-preserving mutators; HTTP shapes live elsewhere.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::change_index::ChangeIndex;

/// The user properties the emulator keeps, in Graph's spelling. `id` is always returned and is
/// not in this list.
pub const GRAPH_PROPERTIES: [&str; 12] = [
    "displayName",
    "givenName",
    "surname",
    "mail",
    "proxyAddresses",
    "userPrincipalName",
    "onPremisesImmutableId",
    "onPremisesSecurityIdentifier",
    "onPremisesDistinguishedName",
    "onPremisesSamAccountName",
    "onPremisesDomainName",
    "onPremisesSyncEnabled",
];

/// What Graph returns when a delta query has no `$select` (a subset of Graph's default set,
/// limited to what the emulator models).
pub const GRAPH_DEFAULT_SELECT: [&str; 5] = [
    "displayName",
    "givenName",
    "surname",
    "mail",
    "userPrincipalName",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserProp {
    DisplayName = 0,
    GivenName = 1,
    Surname = 2,
    Mail = 3,
    ProxyAddresses = 4,
    UserPrincipalName = 5,
    OnPremisesImmutableId = 6,
    OnPremisesSecurityIdentifier = 7,
    OnPremisesDistinguishedName = 8,
    OnPremisesSamAccountName = 9,
    OnPremisesDomainName = 10,
    OnPremisesSyncEnabled = 11,
}

impl UserProp {
    pub const ALL: [UserProp; 12] = [
        UserProp::DisplayName,
        UserProp::GivenName,
        UserProp::Surname,
        UserProp::Mail,
        UserProp::ProxyAddresses,
        UserProp::UserPrincipalName,
        UserProp::OnPremisesImmutableId,
        UserProp::OnPremisesSecurityIdentifier,
        UserProp::OnPremisesDistinguishedName,
        UserProp::OnPremisesSamAccountName,
        UserProp::OnPremisesDomainName,
        UserProp::OnPremisesSyncEnabled,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn graph_name(self) -> &'static str {
        GRAPH_PROPERTIES.get(self.index()).copied().unwrap_or("id")
    }

    /// Graph property names are case-insensitive in `$select`.
    pub fn from_graph_name(name: &str) -> Option<UserProp> {
        UserProp::ALL
            .into_iter()
            .find(|p| p.graph_name().eq_ignore_ascii_case(name))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemovedReason {
    /// Soft-deleted (restorable): Graph says `"reason":"changed"`.
    Changed,
    /// Permanently deleted.
    Deleted,
}

impl RemovedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RemovedReason::Changed => "changed",
            RemovedReason::Deleted => "deleted",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    // Short on-disk keys keep tenant.json small for 200k-user tenants.
    #[serde(rename = "i")]
    pub id: String,
    /// `None` = never set or set to null.
    #[serde(rename = "v")]
    pub values: [Option<Value>; 12],
    /// Change sequence of each property (0 = never set since creation).
    #[serde(rename = "c", with = "compact_seq")]
    pub changed_seq: [u64; 12],
    /// Highest change sequence of this user, including creation and removal.
    #[serde(rename = "s")]
    pub seq: u64,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<RemovedReason>,
}

/// Writes a `changed_seq` whose entries are all equal as one number.
mod compact_seq {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Compact {
        Same(u64),
        Each([u64; 12]),
    }

    pub fn serialize<S: Serializer>(seqs: &[u64; 12], serializer: S) -> Result<S::Ok, S::Error> {
        match seqs.first() {
            Some(first) if seqs.iter().all(|s| s == first) => {
                Compact::Same(*first).serialize(serializer)
            }
            _ => Compact::Each(*seqs).serialize(serializer),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u64; 12], D::Error> {
        Ok(match Compact::deserialize(deserializer)? {
            Compact::Same(seq) => [seq; 12],
            Compact::Each(seqs) => seqs,
        })
    }
}

impl User {
    pub fn get(&self, prop: UserProp) -> Option<&Value> {
        self.values.get(prop.index()).and_then(Option::as_ref)
    }

    pub fn get_str(&self, prop: UserProp) -> Option<&str> {
        self.get(prop).and_then(Value::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientTypeDetails {
    UserMailbox,
    SharedMailbox,
    RoomMailbox,
    EquipmentMailbox,
}

impl RecipientTypeDetails {
    pub const ALL: [RecipientTypeDetails; 4] = [
        RecipientTypeDetails::UserMailbox,
        RecipientTypeDetails::SharedMailbox,
        RecipientTypeDetails::RoomMailbox,
        RecipientTypeDetails::EquipmentMailbox,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecipientTypeDetails::UserMailbox => "UserMailbox",
            RecipientTypeDetails::SharedMailbox => "SharedMailbox",
            RecipientTypeDetails::RoomMailbox => "RoomMailbox",
            RecipientTypeDetails::EquipmentMailbox => "EquipmentMailbox",
        }
    }

    pub fn parse(name: &str) -> Option<RecipientTypeDetails> {
        RecipientTypeDetails::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// `Set-Mailbox -Type` values.
    pub fn from_set_mailbox_type(value: &str) -> Option<RecipientTypeDetails> {
        match value.to_ascii_lowercase().as_str() {
            "regular" => Some(RecipientTypeDetails::UserMailbox),
            "shared" => Some(RecipientTypeDetails::SharedMailbox),
            "room" => Some(RecipientTypeDetails::RoomMailbox),
            "equipment" => Some(RecipientTypeDetails::EquipmentMailbox),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mailbox {
    // Short on-disk keys keep tenant.json small for 200k-mailbox tenants.
    #[serde(rename = "g")]
    pub guid: String,
    #[serde(rename = "x")]
    pub exchange_guid: String,
    /// `ExternalDirectoryObjectId` = the Entra user's id.
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "a")]
    pub alias: String,
    #[serde(rename = "n")]
    pub name: String,
    #[serde(rename = "d")]
    pub display_name: String,
    #[serde(rename = "p")]
    pub user_principal_name: String,
    #[serde(rename = "e")]
    pub email_addresses: Vec<String>,
    #[serde(rename = "c")]
    pub custom_attributes: [String; 15],
    #[serde(rename = "xc")]
    pub extension_custom_attributes: [Vec<String>; 5],
    #[serde(rename = "h")]
    pub hidden_from_address_lists: bool,
    #[serde(rename = "t")]
    pub recipient_type_details: RecipientTypeDetails,
    #[serde(rename = "m")]
    pub is_exchange_cloud_managed: bool,
    #[serde(rename = "ds")]
    pub is_dir_synced: bool,
    #[serde(rename = "wc")]
    pub when_created: i64,
    #[serde(rename = "wm")]
    pub when_changed: i64,
}

impl Mailbox {
    /// The address behind the one `SMTP:` (upper-case) proxy address.
    pub fn primary_smtp(&self) -> Option<&str> {
        self.email_addresses
            .iter()
            .find_map(|a| a.strip_prefix("SMTP:"))
    }

    /// Lower-cased SMTP addresses (primary and secondary), for the uniqueness index.
    pub fn smtp_keys(&self) -> Vec<String> {
        self.email_addresses
            .iter()
            .filter_map(|a| smtp_address(a))
            .map(str::to_ascii_lowercase)
            .collect()
    }

    fn identity_keys(&self) -> Vec<String> {
        [
            &self.guid,
            &self.exchange_guid,
            &self.user_id,
            &self.alias,
            &self.name,
            &self.user_principal_name,
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
        .collect()
    }
}

/// The address of an `SMTP:`/`smtp:` proxy address, `None` for other types.
pub fn smtp_address(proxy: &str) -> Option<&str> {
    let (prefix, address) = proxy.split_once(':')?;
    prefix.eq_ignore_ascii_case("smtp").then_some(address)
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AppCertificate {
    /// base64url(SHA-1(cert DER)), the `x5t` header of RS256 assertions.
    pub x5t: String,
    /// base64url(SHA-256(cert DER)), the `x5t#S256` header of PS256 assertions.
    pub x5t_s256: String,
    /// RSA public key as PKCS#1 DER, base64 (standard alphabet).
    pub public_key_pkcs1_der: String,
    pub cert_pem: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RegisteredApp {
    pub client_id: String,
    pub display_name: String,
    pub client_secret: String,
    pub certificates: Vec<AppCertificate>,
}

impl std::fmt::Debug for RegisteredApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredApp")
            .field("client_id", &self.client_id)
            .field("display_name", &self.display_name)
            .field("client_secret", &"<redacted>")
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_guid: String,
    /// Last change sequence number handed out; a delta token remembers the value it saw.
    pub seq: u64,
    pub users: BTreeMap<String, User>,
    /// Keyed by mailbox Guid, which is also Get-Mailbox's stable result order.
    pub mailboxes: BTreeMap<String, Mailbox>,
    pub apps: Vec<RegisteredApp>,
    /// HMAC key for the access tokens the emulator mints (persisted so tokens survive a restart).
    pub token_signing_key: String,
    /// Delta tokens minted before this epoch answer `syncStateNotFound`.
    pub delta_epoch: u64,
    /// Delta tokens minted before this epoch answer `410 Gone` / `resyncRequired`.
    pub resync_epoch: u64,
    #[serde(skip)]
    smtp_owner: HashMap<String, String>,
    #[serde(skip)]
    identity: HashMap<String, String>,
    #[serde(skip)]
    changes: ChangeIndex,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("tenant_guid", &self.tenant_guid)
            .field("seq", &self.seq)
            .field("users", &self.users.len())
            .field("mailboxes", &self.mailboxes.len())
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn rebuild_indexes(&mut self) {
        self.smtp_owner.clear();
        self.identity.clear();
        self.changes.clear();
        for user in self.users.values() {
            self.changes.user_changed(&user.id, None, user.seq);
        }
        for mailbox in self.mailboxes.values() {
            self.changes
                .mailbox_changed(&mailbox.guid, None, Some(mailbox.when_changed));
            for key in mailbox.smtp_keys() {
                self.smtp_owner.insert(key, mailbox.guid.clone());
            }
            for key in mailbox.identity_keys() {
                self.identity.insert(key, mailbox.guid.clone());
            }
        }
    }

    /// Ids of the users changed after delta sequence `since`, in id order; `None` when there are
    /// more than `cap` of them (walking `users` is then the cheaper way).
    pub fn users_changed_after(&self, since: u64, cap: usize) -> Option<Vec<&str>> {
        self.changes.users_after(since, cap)
    }

    /// Guids of the mailboxes whose WhenChangedUTC is `from` (ticks) or later, in Guid order;
    /// `None` when there are more than `cap` of them.
    pub fn mailboxes_changed_from(&self, from: i64, cap: usize) -> Option<Vec<&str>> {
        self.changes.mailboxes_from(from, cap)
    }

    /// Which mailbox (Guid) owns an SMTP address, compared case-insensitively.
    pub fn smtp_owner(&self, address: &str) -> Option<&str> {
        self.smtp_owner
            .get(&address.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Resolves an `-Identity` value: Guid, ExchangeGuid, ExternalDirectoryObjectId, alias, name,
    /// UPN or any SMTP address (with or without the `smtp:` prefix).
    pub fn resolve_mailbox(&self, identity: &str) -> Option<&str> {
        let key = identity.trim().to_ascii_lowercase();
        let key = smtp_address(&key).map(str::to_owned).unwrap_or(key);
        self.identity
            .get(&key)
            .or_else(|| self.smtp_owner.get(&key))
            .map(String::as_str)
    }

    pub fn mailbox_for_user(&self, user_id: &str) -> Option<&Mailbox> {
        self.identity
            .get(&user_id.to_ascii_lowercase())
            .and_then(|g| self.mailboxes.get(g))
            .filter(|m| m.user_id == user_id)
    }

    /// Inserts or replaces a mailbox, keeping the indexes right. Callers validate first.
    /// Replacing touches only the index entries whose keys changed: a Set-Mailbox (or a
    /// bench-change of 200,000 mailboxes) mostly leaves the identity keys as they were.
    pub fn put_mailbox(&mut self, mailbox: Mailbox) {
        let guid = mailbox.guid.clone();
        let old = self.mailboxes.insert(guid.clone(), mailbox);
        let Some(new) = self.mailboxes.get(&guid) else {
            return;
        };
        self.changes.mailbox_changed(
            &guid,
            old.as_ref().map(|o| o.when_changed),
            Some(new.when_changed),
        );
        let same_identity = old.as_ref().is_some_and(|o| {
            (
                &o.exchange_guid,
                &o.user_id,
                &o.alias,
                &o.name,
                &o.user_principal_name,
            ) == (
                &new.exchange_guid,
                &new.user_id,
                &new.alias,
                &new.name,
                &new.user_principal_name,
            )
        });
        let same_addresses = old
            .as_ref()
            .is_some_and(|o| o.email_addresses == new.email_addresses);
        if !same_addresses {
            let new_keys = new.smtp_keys();
            if let Some(old) = &old {
                for key in old.smtp_keys() {
                    if !new_keys.contains(&key) && self.smtp_owner.get(&key) == Some(&guid) {
                        self.smtp_owner.remove(&key);
                    }
                }
            }
            for key in new_keys {
                if self.smtp_owner.get(&key) != Some(&guid) {
                    self.smtp_owner.insert(key, guid.clone());
                }
            }
        }
        if !same_identity {
            let new_keys = new.identity_keys();
            if let Some(old) = &old {
                for key in old.identity_keys() {
                    if !new_keys.contains(&key) && self.identity.get(&key) == Some(&guid) {
                        self.identity.remove(&key);
                    }
                }
            }
            for key in new_keys {
                if self.identity.get(&key) != Some(&guid) {
                    self.identity.insert(key, guid.clone());
                }
            }
        }
    }

    pub fn remove_mailbox(&mut self, guid: &str) -> Option<Mailbox> {
        let old = self.mailboxes.remove(guid)?;
        self.unindex(&old);
        self.changes
            .mailbox_changed(guid, Some(old.when_changed), None);
        Some(old)
    }

    fn unindex(&mut self, mailbox: &Mailbox) {
        for key in mailbox.smtp_keys() {
            if self.smtp_owner.get(&key) == Some(&mailbox.guid) {
                self.smtp_owner.remove(&key);
            }
        }
        for key in mailbox.identity_keys() {
            if self.identity.get(&key) == Some(&mailbox.guid) {
                self.identity.remove(&key);
            }
        }
    }

    /// Creates (or replaces) a user whose properties all count as changed now.
    pub fn insert_user(&mut self, id: String, values: [Option<Value>; 12]) -> u64 {
        let seq = self.next_seq();
        // A property never set has never "changed": minimal delta responses must not send it as null.
        let changed_seq = values.clone().map(|v| if v.is_some() { seq } else { 0 });
        let user = User {
            id: id.clone(),
            values,
            changed_seq,
            seq,
            removed: None,
        };
        let old = self.users.insert(id.clone(), user);
        self.changes.user_changed(&id, old.map(|u| u.seq), seq);
        seq
    }

    /// Sets one Graph property; bumps the user's sequence only when the value really changes.
    /// Returns whether it changed. An empty array or string counts as null.
    pub fn set_user_prop(&mut self, user_id: &str, prop: UserProp, value: Option<Value>) -> bool {
        let value = value.filter(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty() || prop == UserProp::ProxyAddresses,
            _ => true,
        });
        // One lookup: this runs for every address change, 200,000 times in a bench-change.
        let Some(user) = self.users.get_mut(user_id) else {
            return false;
        };
        let Some(slot) = user.values.get_mut(prop.index()) else {
            return false;
        };
        if slot.as_ref() == value.as_ref() {
            return false;
        }
        self.seq += 1;
        let seq = self.seq;
        *slot = value;
        if let Some(changed) = user.changed_seq.get_mut(prop.index()) {
            *changed = seq;
        }
        self.changes.user_changed(user_id, Some(user.seq), seq);
        user.seq = seq;
        true
    }

    /// Marks a user removed (soft or hard) and drops its mailbox.
    pub fn remove_user(&mut self, user_id: &str, reason: RemovedReason) -> bool {
        if !self.users.contains_key(user_id) {
            return false;
        }
        let seq = self.next_seq();
        if let Some(user) = self.users.get_mut(user_id) {
            user.removed = Some(reason);
            self.changes.user_changed(user_id, Some(user.seq), seq);
            user.seq = seq;
        }
        if let Some(guid) = self.mailbox_for_user(user_id).map(|m| m.guid.clone()) {
            self.remove_mailbox(&guid);
        }
        true
    }

    /// Copies a mailbox's Graph-visible values (mail, proxyAddresses, UPN, displayName) to its user,
    /// as Exchange's forward sync into Entra would.
    pub fn sync_mailbox_to_user(&mut self, guid: &str) {
        let Some(mailbox) = self.mailboxes.get(guid) else {
            return;
        };
        let user_id = mailbox.user_id.clone();
        let mail = mailbox.primary_smtp().map(|s| Value::String(s.to_owned()));
        let proxies = Value::Array(
            mailbox
                .email_addresses
                .iter()
                .cloned()
                .map(Value::String)
                .collect(),
        );
        self.set_user_prop(&user_id, UserProp::Mail, mail);
        self.set_user_prop(&user_id, UserProp::ProxyAddresses, Some(proxies));
    }
}

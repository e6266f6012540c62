//! Turning LDAP search entries into [`AdUser`] records.

use crate::error::AdError;
use crate::ids;
use ldap3::{ResultEntry, SearchEntry};
use std::collections::HashMap;
use writeback_core::attribute::ManagedAttribute;
use writeback_core::AdValues;

/// Attributes read for every user besides the managed ones.
pub const IDENTITY_ATTRIBUTES: [&str; 9] = [
    "objectGUID",
    "objectSid",
    "mS-DS-ConsistencyGuid",
    "objectClass",
    "adminCount",
    "isCriticalSystemObject",
    "uSNChanged",
    "uSNCreated",
    "sAMAccountName",
];

/// The attribute list of every user read: identity attributes plus the managed set.
pub fn read_attributes() -> Vec<&'static str> {
    let mut attrs: Vec<&'static str> = IDENTITY_ATTRIBUTES.to_vec();
    attrs.extend(ManagedAttribute::ALL.iter().map(|a| a.ldap_name()));
    attrs
}

/// One AD object as writeback sees it: who it is, whether it may be written, and the
/// current values of the managed attributes. Serialisable so a full pass can keep the scope's
/// objects in a scratch file (`writeback_state::ScopeSnapshot`) instead of memory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdUser {
    pub dn: String,
    pub object_guid: [u8; 16],
    pub object_sid: Option<String>,
    pub consistency_guid: Option<Vec<u8>>,
    pub sam_account_name: Option<String>,
    pub object_classes: Vec<String>,
    pub admin_count: bool,
    pub critical_system_object: bool,
    /// The DC's change counter for the object when read (per-DC).
    pub usn_changed: u64,
    /// The DC's counter when it created the object (per-DC, never changes): what a scope scan
    /// is split by. 0 when not read.
    #[serde(default)]
    pub usn_created: u64,
    pub values: AdValues,
}

impl AdUser {
    /// A user account (not a computer, which is also of class `user`).
    pub fn is_user(&self) -> bool {
        let has = |c: &str| self.object_classes.iter().any(|o| o.eq_ignore_ascii_case(c));
        has("user") && !has("computer")
    }

    /// Why writeback must not write this object, if it must not.
    pub fn protection(&self) -> Option<&'static str> {
        if self.admin_count {
            Some("adminCount=1: protected by AdminSDHolder")
        } else if self.critical_system_object {
            Some("isCriticalSystemObject=TRUE")
        } else {
            None
        }
    }

    /// `objectGUID` in text form.
    pub fn guid_string(&self) -> String {
        ids::guid_to_string(&self.object_guid)
    }

    /// The DN form that survives renames and moves: writes address the object by GUID so a
    /// rename between read and write cannot redirect them.
    pub fn guid_dn(&self) -> String {
        ids::guid_dn(&self.object_guid)
    }
}

/// Raw attribute maps of one entry, with case-insensitive lookup.
pub(crate) struct RawEntry {
    pub dn: String,
    text: HashMap<String, Vec<String>>,
    binary: HashMap<String, Vec<Vec<u8>>>,
}

impl RawEntry {
    /// Parses a wire entry. ldap3's parser panics on a malformed entry; a DC (or anything
    /// on the path to it) must not be able to crash the engine, so the panic is contained
    /// here and becomes an error.
    pub(crate) fn parse(entry: ResultEntry) -> Result<Self, AdError> {
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            SearchEntry::construct(entry)
        }))
        .map_err(|_| AdError::MalformedEntry("unparseable search entry".into()))?;
        Ok(RawEntry {
            dn: parsed.dn,
            text: lower_keys(parsed.attrs),
            binary: lower_keys(parsed.bin_attrs),
        })
    }

    pub(crate) fn text(&self, name: &str) -> &[String] {
        self.text
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// A binary attribute's first value. ldap3 puts values that happen to be valid UTF-8 in
    /// the text map, so both maps are consulted.
    pub(crate) fn first_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let key = name.to_ascii_lowercase();
        if let Some(v) = self.binary.get(&key).and_then(|v| v.first()) {
            return Some(v.clone());
        }
        self.text
            .get(&key)
            .and_then(|v| v.first())
            .map(|s| s.as_bytes().to_vec())
    }

    /// Attributes returned with range retrieval (`name;range=0-1499`): (base name, key, end).
    pub(crate) fn ranged_attributes(&self) -> Vec<(String, String, Option<u64>)> {
        self.text
            .keys()
            .filter_map(|key| {
                let (base, range) = key.split_once(";range=")?;
                let (_, end) = range.split_once('-')?;
                let end = if end == "*" { None } else { Some(end.parse().ok()?) };
                Some((base.to_owned(), key.clone(), end))
            })
            .collect()
    }

    /// Folds values fetched by range retrieval into the plain attribute.
    pub(crate) fn merge_range(&mut self, base: &str, values: Vec<String>) {
        self.text
            .entry(base.to_ascii_lowercase())
            .or_default()
            .extend(values);
    }

    pub(crate) fn remove(&mut self, key: &str) -> Vec<String> {
        self.text.remove(key).unwrap_or_default()
    }

    pub(crate) fn into_user(self) -> Result<AdUser, AdError> {
        let guid_bytes = self
            .first_bytes("objectGUID")
            .ok_or_else(|| AdError::MalformedEntry(format!("{}: no objectGUID", self.dn)))?;
        let object_guid = <[u8; 16]>::try_from(guid_bytes.as_slice()).map_err(|_| {
            AdError::MalformedEntry(format!("{}: objectGUID is not 16 bytes", self.dn))
        })?;
        let object_sid = match self.first_bytes("objectSid") {
            Some(bytes) => Some(ids::sid_to_string(&bytes)?),
            None => None,
        };
        let is_true = |name: &str| {
            self.text(name)
                .first()
                .is_some_and(|v| v.eq_ignore_ascii_case("TRUE") || v.trim() == "1")
        };
        let usn = |name: &str| match self.text(name).first() {
            Some(v) => v.trim().parse().map_err(|_| {
                AdError::MalformedEntry(format!("{}: {name} {v:?} is not a number", self.dn))
            }),
            None => Ok(0),
        };
        let usn_changed = usn("uSNChanged")?;
        let usn_created = usn("uSNCreated")?;
        let values = AdValues::from_ldap(
            self.text
                .iter()
                .filter(|(k, _)| !k.contains(';'))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        Ok(AdUser {
            object_guid,
            object_sid,
            consistency_guid: self.first_bytes("mS-DS-ConsistencyGuid"),
            sam_account_name: self.text("sAMAccountName").first().cloned(),
            object_classes: self.text("objectClass").to_vec(),
            admin_count: is_true("adminCount"),
            critical_system_object: is_true("isCriticalSystemObject"),
            usn_changed,
            usn_created,
            values,
            dn: self.dn,
        })
    }
}

fn lower_keys<V>(map: HashMap<String, V>) -> HashMap<String, V> {
    map.into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

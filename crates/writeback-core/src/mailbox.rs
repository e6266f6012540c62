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
/// treated alike by the planner. Deserialisation accepts `null` wherever a list, a map or a
/// map value is expected (and drops `null` list elements), so a reader may pass the cloud's
/// nulls through; serialisation is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mailbox {
    /// `ExternalDirectoryObjectId`: the Entra user's object id.
    pub cloud_id: String,
    /// `WindowsEmailAddress` / `PrimarySmtpAddress` (the address, without `SMTP:`).
    #[serde(default)]
    pub primary_smtp: Option<String>,
    /// `EmailAddresses`: `TYPE:address` values, upper-case type = primary.
    #[serde(default, deserialize_with = "lenient::string_list")]
    pub proxy_addresses: Vec<String>,
    /// `CustomAttribute1..15`, keyed `"1"`..`"15"`; a missing key means "clear".
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub custom_attributes: BTreeMap<String, String>,
    /// `ExtensionCustomAttribute1..5`, keyed `"1"`..`"5"`; a missing key means "clear".
    #[serde(default, deserialize_with = "lenient::list_map")]
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

/// Deserialisers that read `null` as "clear" instead of failing.
mod lenient {
    use serde::{Deserialize, Deserializer};
    use std::collections::BTreeMap;

    type NullableList = Option<Vec<Option<String>>>;

    fn flatten(list: NullableList) -> Vec<String> {
        list.unwrap_or_default().into_iter().flatten().collect()
    }

    pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(flatten(NullableList::deserialize(d)?))
    }

    pub fn string_map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, String>, D::Error> {
        let raw: Option<BTreeMap<String, Option<String>>> = Option::deserialize(d)?;
        Ok(raw
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    pub fn list_map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
        let raw: Option<BTreeMap<String, NullableList>> = Option::deserialize(d)?;
        Ok(raw
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, flatten(v)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_deserialise_as_clear() {
        let json = serde_json::json!({
            "cloud_id": "id",
            "proxy_addresses": null,
            "custom_attributes": {"1": null, "2": "x"},
            "extension_custom_attributes": {"1": null, "2": ["a", null]},
        });
        let mailbox: Mailbox = serde_json::from_value(json).unwrap();
        assert!(mailbox.proxy_addresses.is_empty());
        assert_eq!(
            mailbox.custom_attributes.get("1").map(String::as_str),
            Some("")
        );
        assert_eq!(
            mailbox.custom_attributes.get("2").map(String::as_str),
            Some("x")
        );
        assert_eq!(mailbox.extension_custom_attributes.get("1"), Some(&vec![]));
        assert_eq!(
            mailbox.extension_custom_attributes.get("2"),
            Some(&vec!["a".to_string()])
        );
        let null_maps = serde_json::json!({"cloud_id": "id", "custom_attributes": null, "extension_custom_attributes": null});
        let mailbox: Mailbox = serde_json::from_value(null_maps).unwrap();
        assert!(
            mailbox.custom_attributes.is_empty() && mailbox.extension_custom_attributes.is_empty()
        );
    }

    #[test]
    fn serialised_shape_is_unchanged() {
        let mut mailbox = Mailbox {
            cloud_id: "id".into(),
            ..Mailbox::default()
        };
        mailbox.proxy_addresses = vec!["SMTP:a@example.com".into()];
        let json = serde_json::to_value(&mailbox).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cloud_id": "id",
                "primary_smtp": null,
                "proxy_addresses": ["SMTP:a@example.com"],
                "custom_attributes": {},
                "extension_custom_attributes": {},
                "hidden_from_address_lists": null,
                "recipient_type_details": null,
                "anchors": {},
            })
        );
        let back: Mailbox = serde_json::from_value(json).unwrap();
        assert_eq!(back, mailbox);
    }
}

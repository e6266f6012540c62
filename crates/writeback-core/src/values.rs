//! The current values of the managed attributes on one AD object, as LDAP returns them.
//!
//! Values are kept as strings exactly as read: `msExchRecipientTypeDetails` and
//! `msExchRecipientDisplayType` as decimal text, `msExchHideFromAddressLists` as
//! `TRUE`/`FALSE`. An attribute with no values is absent; there is no "present but empty".
//! [`AdValues::apply`] (in `apply.rs`) simulates an LDAP modify on these values.

use crate::attribute::ManagedAttribute;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Current values of the managed attributes on one AD object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdValues {
    values: BTreeMap<ManagedAttribute, Vec<String>>,
}

impl AdValues {
    /// No managed attribute present.
    pub fn new() -> Self {
        AdValues::default()
    }

    /// From the (name, values) pairs of an LDAP search entry. Attributes that are not
    /// managed are dropped; names match case-insensitively. Range-retrieval names
    /// (`proxyAddresses;range=0-1499`) are not managed names: the reader must assemble the
    /// full value list before handing it here. A name appearing twice has its values joined.
    pub fn from_ldap<I: IntoIterator<Item = (String, Vec<String>)>>(attributes: I) -> Self {
        let mut out = AdValues::new();
        for (name, values) in attributes {
            if let Some(attr) = ManagedAttribute::from_ldap_name(&name) {
                if !values.is_empty() {
                    out.values.entry(attr).or_default().extend(values);
                }
            }
        }
        out
    }

    /// The attribute's values; empty when absent.
    pub fn get(&self, attr: ManagedAttribute) -> &[String] {
        self.values.get(&attr).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Sets the attribute's values; an empty list removes the attribute.
    pub fn set(&mut self, attr: ManagedAttribute, values: Vec<String>) {
        if values.is_empty() {
            self.values.remove(&attr);
        } else {
            self.values.insert(attr, values);
        }
    }

    pub fn is_present(&self, attr: ManagedAttribute) -> bool {
        !self.get(attr).is_empty()
    }

    /// Present attributes in the stable planning order.
    pub fn iter(&self) -> impl Iterator<Item = (ManagedAttribute, &[String])> {
        self.values.iter().map(|(a, v)| (*a, v.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// JSON form: an object from LDAP name to the list of values, e.g.
/// `{"mail": ["a@example.com"], "proxyAddresses": ["SMTP:a@example.com"]}`.
impl Serialize for AdValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.values.iter().map(|(a, v)| (a.ldap_name(), v)))
    }
}

/// Strict: an unknown attribute name is an error (a typo must not silently mean "absent");
/// `null` and `[]` mean absent.
impl<'de> Deserialize<'de> for AdValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: BTreeMap<String, Option<Vec<String>>> = BTreeMap::deserialize(deserializer)?;
        let mut out = AdValues::new();
        for (name, values) in raw {
            let attr = ManagedAttribute::from_ldap_name(&name).ok_or_else(|| {
                D::Error::custom(format!("'{name}' is not an attribute writeback manages"))
            })?;
            let mut joined = out.get(attr).to_vec();
            joined.extend(values.unwrap_or_default());
            out.set(attr, joined);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_ldap_keeps_only_managed_attributes_matching_case_insensitively() {
        let entry = vec![
            (
                "PROXYADDRESSES".to_string(),
                vec!["SMTP:a@example.com".to_string()],
            ),
            ("mail".to_string(), vec!["a@example.com".to_string()]),
            ("userAccountControl".to_string(), vec!["512".to_string()]),
            (
                "proxyAddresses;range=0-1499".to_string(),
                vec!["smtp:x@example.com".to_string()],
            ),
            ("extensionAttribute3".to_string(), vec![]),
        ];
        let values = AdValues::from_ldap(entry);
        assert_eq!(
            values.get(ManagedAttribute::ProxyAddresses),
            ["SMTP:a@example.com"]
        );
        assert_eq!(values.get(ManagedAttribute::Mail), ["a@example.com"]);
        assert!(!values.is_present(ManagedAttribute::ExtensionAttribute3));
        assert_eq!(values.iter().count(), 2);
    }

    #[test]
    fn set_with_no_values_removes_the_attribute() {
        let mut values = AdValues::new();
        values.set(ManagedAttribute::Mail, vec!["a@example.com".into()]);
        assert!(values.is_present(ManagedAttribute::Mail));
        values.set(ManagedAttribute::Mail, vec![]);
        assert!(!values.is_present(ManagedAttribute::Mail));
        assert!(values.is_empty());
        assert_eq!(values, AdValues::new());
    }

    #[test]
    fn json_round_trip_uses_ldap_names_and_rejects_unknown_ones() {
        let json = serde_json::json!({"mail": ["a@example.com"], "extensionAttribute1": null, "proxyAddresses": []});
        let values: AdValues = serde_json::from_value(json).unwrap();
        assert_eq!(values.iter().count(), 1);
        assert_eq!(
            serde_json::to_value(&values).unwrap(),
            serde_json::json!({"mail": ["a@example.com"]})
        );
        let bad = serde_json::json!({"displayName": ["x"]});
        assert!(serde_json::from_value::<AdValues>(bad).is_err());
    }
}

//! The 25 AD attributes writeback owns, and THE allow-list that guards every write.
//!
//! Microsoft's own writeback job writes 24 of them (extensionAttribute1–15,
//! msExchExtensionCustomAttribute1–5, proxyAddresses, mail, msExchRecipientTypeDetails,
//! msExchRecipientDisplayType); writeback also owns msExchHideFromAddressLists. Every other
//! attribute of a user object is mastered on-premises and must stay byte-for-byte as it was,
//! so [`ensure_writable`] checks each outgoing modification against [`WRITABLE_ATTRIBUTES`]
//! by name, independently of the type system: a bug elsewhere that builds a modification
//! for another attribute is caught at the last moment before it reaches the DC.

use crate::error::CoreError;
use crate::modification::Modification;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The LDAP names of the attributes writeback may write, in the schema's spelling. This is
/// the one list the AD connector's last-moment check uses.
pub const WRITABLE_ATTRIBUTES: [&str; 25] = [
    "extensionAttribute1",
    "extensionAttribute2",
    "extensionAttribute3",
    "extensionAttribute4",
    "extensionAttribute5",
    "extensionAttribute6",
    "extensionAttribute7",
    "extensionAttribute8",
    "extensionAttribute9",
    "extensionAttribute10",
    "extensionAttribute11",
    "extensionAttribute12",
    "extensionAttribute13",
    "extensionAttribute14",
    "extensionAttribute15",
    "msExchExtensionCustomAttribute1",
    "msExchExtensionCustomAttribute2",
    "msExchExtensionCustomAttribute3",
    "msExchExtensionCustomAttribute4",
    "msExchExtensionCustomAttribute5",
    "proxyAddresses",
    "mail",
    "msExchRecipientTypeDetails",
    "msExchRecipientDisplayType",
    "msExchHideFromAddressLists",
];

/// Whether `name` is one of [`WRITABLE_ATTRIBUTES`] (LDAP names are case-insensitive).
pub fn is_writable(name: &str) -> bool {
    WRITABLE_ATTRIBUTES
        .iter()
        .any(|w| w.eq_ignore_ascii_case(name))
}

/// Refuses the whole list if any modification names an attribute outside
/// [`WRITABLE_ATTRIBUTES`]. Called by the AD connector right before every LDAP modify.
pub fn ensure_writable(mods: &[Modification]) -> Result<(), CoreError> {
    for m in mods {
        let name = m.attribute.ldap_name();
        if !is_writable(name) {
            return Err(CoreError::NotWritable {
                attribute: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// One of the attributes writeback owns. The declaration order is the stable order the
/// planner emits modifications in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ManagedAttribute {
    ExtensionAttribute1,
    ExtensionAttribute2,
    ExtensionAttribute3,
    ExtensionAttribute4,
    ExtensionAttribute5,
    ExtensionAttribute6,
    ExtensionAttribute7,
    ExtensionAttribute8,
    ExtensionAttribute9,
    ExtensionAttribute10,
    ExtensionAttribute11,
    ExtensionAttribute12,
    ExtensionAttribute13,
    ExtensionAttribute14,
    ExtensionAttribute15,
    MsExchExtensionCustomAttribute1,
    MsExchExtensionCustomAttribute2,
    MsExchExtensionCustomAttribute3,
    MsExchExtensionCustomAttribute4,
    MsExchExtensionCustomAttribute5,
    ProxyAddresses,
    Mail,
    MsExchRecipientTypeDetails,
    MsExchRecipientDisplayType,
    MsExchHideFromAddressLists,
}

/// How AD encodes an attribute's values; decides syntax checks and value matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeSyntax {
    /// Unicode string (2.5.5.12): matched case-insensitively.
    UnicodeString,
    /// Large integer (2.5.5.16): 64-bit signed, decimal text on the wire.
    LargeInteger,
    /// Integer (2.5.5.9): 32-bit signed, decimal text on the wire.
    Integer,
    /// Boolean (2.5.5.8): `TRUE` / `FALSE` on the wire.
    Boolean,
}

impl ManagedAttribute {
    /// All 25, in the stable planning order; `ALL[i].ldap_name() == WRITABLE_ATTRIBUTES[i]`.
    pub const ALL: [ManagedAttribute; 25] = [
        ManagedAttribute::ExtensionAttribute1,
        ManagedAttribute::ExtensionAttribute2,
        ManagedAttribute::ExtensionAttribute3,
        ManagedAttribute::ExtensionAttribute4,
        ManagedAttribute::ExtensionAttribute5,
        ManagedAttribute::ExtensionAttribute6,
        ManagedAttribute::ExtensionAttribute7,
        ManagedAttribute::ExtensionAttribute8,
        ManagedAttribute::ExtensionAttribute9,
        ManagedAttribute::ExtensionAttribute10,
        ManagedAttribute::ExtensionAttribute11,
        ManagedAttribute::ExtensionAttribute12,
        ManagedAttribute::ExtensionAttribute13,
        ManagedAttribute::ExtensionAttribute14,
        ManagedAttribute::ExtensionAttribute15,
        ManagedAttribute::MsExchExtensionCustomAttribute1,
        ManagedAttribute::MsExchExtensionCustomAttribute2,
        ManagedAttribute::MsExchExtensionCustomAttribute3,
        ManagedAttribute::MsExchExtensionCustomAttribute4,
        ManagedAttribute::MsExchExtensionCustomAttribute5,
        ManagedAttribute::ProxyAddresses,
        ManagedAttribute::Mail,
        ManagedAttribute::MsExchRecipientTypeDetails,
        ManagedAttribute::MsExchRecipientDisplayType,
        ManagedAttribute::MsExchHideFromAddressLists,
    ];

    /// The attribute's name exactly as the schema spells it.
    pub fn ldap_name(self) -> &'static str {
        use ManagedAttribute::*;
        match self {
            ExtensionAttribute1 => "extensionAttribute1",
            ExtensionAttribute2 => "extensionAttribute2",
            ExtensionAttribute3 => "extensionAttribute3",
            ExtensionAttribute4 => "extensionAttribute4",
            ExtensionAttribute5 => "extensionAttribute5",
            ExtensionAttribute6 => "extensionAttribute6",
            ExtensionAttribute7 => "extensionAttribute7",
            ExtensionAttribute8 => "extensionAttribute8",
            ExtensionAttribute9 => "extensionAttribute9",
            ExtensionAttribute10 => "extensionAttribute10",
            ExtensionAttribute11 => "extensionAttribute11",
            ExtensionAttribute12 => "extensionAttribute12",
            ExtensionAttribute13 => "extensionAttribute13",
            ExtensionAttribute14 => "extensionAttribute14",
            ExtensionAttribute15 => "extensionAttribute15",
            MsExchExtensionCustomAttribute1 => "msExchExtensionCustomAttribute1",
            MsExchExtensionCustomAttribute2 => "msExchExtensionCustomAttribute2",
            MsExchExtensionCustomAttribute3 => "msExchExtensionCustomAttribute3",
            MsExchExtensionCustomAttribute4 => "msExchExtensionCustomAttribute4",
            MsExchExtensionCustomAttribute5 => "msExchExtensionCustomAttribute5",
            ProxyAddresses => "proxyAddresses",
            Mail => "mail",
            MsExchRecipientTypeDetails => "msExchRecipientTypeDetails",
            MsExchRecipientDisplayType => "msExchRecipientDisplayType",
            MsExchHideFromAddressLists => "msExchHideFromAddressLists",
        }
    }

    /// The attribute with this LDAP name, matched case-insensitively as LDAP does.
    pub fn from_ldap_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.ldap_name().eq_ignore_ascii_case(name))
    }

    /// The index in [`ManagedAttribute::ALL`] (which is declaration order).
    pub(crate) fn position(self) -> usize {
        self as usize
    }

    /// `extensionAttribute<n>` (Exchange `CustomAttribute<n>`), n in 1..=15.
    pub fn custom_attribute(n: u8) -> Option<Self> {
        let index = usize::from(n.checked_sub(1)?);
        if index < 15 {
            Self::ALL.get(index).copied()
        } else {
            None
        }
    }

    /// `msExchExtensionCustomAttribute<n>` (Exchange `ExtensionCustomAttribute<n>`), n in 1..=5.
    pub fn extension_custom_attribute(n: u8) -> Option<Self> {
        let index = usize::from(n.checked_sub(1)?);
        if index < 5 {
            Self::ALL.get(15 + index).copied()
        } else {
            None
        }
    }

    /// Whether the schema allows more than one value.
    pub fn is_multi_valued(self) -> bool {
        self.is_extension_custom_attribute() || self == ManagedAttribute::ProxyAddresses
    }

    /// `extensionAttribute1..15`.
    pub fn is_custom_attribute(self) -> bool {
        self <= ManagedAttribute::ExtensionAttribute15
    }

    /// `msExchExtensionCustomAttribute1..5`.
    pub fn is_extension_custom_attribute(self) -> bool {
        (ManagedAttribute::MsExchExtensionCustomAttribute1
            ..=ManagedAttribute::MsExchExtensionCustomAttribute5)
            .contains(&self)
    }

    /// The schema's rangeUpper, per value, in characters (UTF-16 code units, as AD stores
    /// Unicode strings). The msExchExtensionCustomAttribute bound is an inference (not
    /// published); the others are from the Exchange schema.
    pub fn range_upper(self) -> Option<usize> {
        use ManagedAttribute::*;
        match self {
            ExtensionAttribute1 | ExtensionAttribute2 | ExtensionAttribute3
            | ExtensionAttribute4 | ExtensionAttribute5 | ExtensionAttribute6
            | ExtensionAttribute7 | ExtensionAttribute8 | ExtensionAttribute9
            | ExtensionAttribute10 => Some(1024),
            ExtensionAttribute11 | ExtensionAttribute12 | ExtensionAttribute13
            | ExtensionAttribute14 | ExtensionAttribute15 => Some(2048),
            MsExchExtensionCustomAttribute1
            | MsExchExtensionCustomAttribute2
            | MsExchExtensionCustomAttribute3
            | MsExchExtensionCustomAttribute4
            | MsExchExtensionCustomAttribute5 => Some(2048),
            ProxyAddresses => Some(1123),
            Mail => Some(256),
            MsExchRecipientTypeDetails
            | MsExchRecipientDisplayType
            | MsExchHideFromAddressLists => None,
        }
    }

    /// How AD encodes the attribute's values.
    pub fn syntax(self) -> AttributeSyntax {
        match self {
            ManagedAttribute::MsExchRecipientTypeDetails => AttributeSyntax::LargeInteger,
            ManagedAttribute::MsExchRecipientDisplayType => AttributeSyntax::Integer,
            ManagedAttribute::MsExchHideFromAddressLists => AttributeSyntax::Boolean,
            _ => AttributeSyntax::UnicodeString,
        }
    }
}

impl fmt::Display for ManagedAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ldap_name())
    }
}

/// Serialised as its LDAP name, the form every JSON report and test case uses.
impl Serialize for ManagedAttribute {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.ldap_name())
    }
}

impl<'de> Deserialize<'de> for ManagedAttribute {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ManagedAttribute::from_ldap_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("'{name}' is not an attribute writeback manages"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modification::ModOp;

    #[test]
    fn all_and_writable_attributes_agree_in_order() {
        for (attr, name) in ManagedAttribute::ALL.iter().zip(WRITABLE_ATTRIBUTES.iter()) {
            assert_eq!(attr.ldap_name(), *name);
        }
        for (i, attr) in ManagedAttribute::ALL.iter().enumerate() {
            assert_eq!(attr.position(), i, "{attr}");
        }
        let mut sorted = ManagedAttribute::ALL;
        sorted.sort();
        assert_eq!(
            sorted,
            ManagedAttribute::ALL,
            "ALL must be in declaration (planning) order"
        );
    }

    #[test]
    fn from_ldap_name_ignores_case_and_rejects_others() {
        assert_eq!(
            ManagedAttribute::from_ldap_name("PROXYADDRESSES"),
            Some(ManagedAttribute::ProxyAddresses)
        );
        assert_eq!(
            ManagedAttribute::from_ldap_name("msexchextensioncustomattribute5"),
            Some(ManagedAttribute::MsExchExtensionCustomAttribute5)
        );
        assert_eq!(
            ManagedAttribute::from_ldap_name("extensionAttribute16"),
            None
        );
        assert_eq!(ManagedAttribute::from_ldap_name("userPrincipalName"), None);
        assert_eq!(ManagedAttribute::from_ldap_name(""), None);
    }

    #[test]
    fn numbered_constructors_cover_exactly_their_ranges() {
        assert_eq!(ManagedAttribute::custom_attribute(0), None);
        assert_eq!(
            ManagedAttribute::custom_attribute(1),
            Some(ManagedAttribute::ExtensionAttribute1)
        );
        assert_eq!(
            ManagedAttribute::custom_attribute(15),
            Some(ManagedAttribute::ExtensionAttribute15)
        );
        assert_eq!(ManagedAttribute::custom_attribute(16), None);
        assert_eq!(ManagedAttribute::extension_custom_attribute(0), None);
        assert_eq!(
            ManagedAttribute::extension_custom_attribute(5),
            Some(ManagedAttribute::MsExchExtensionCustomAttribute5)
        );
        assert_eq!(ManagedAttribute::extension_custom_attribute(6), None);
    }

    #[test]
    fn multi_valued_and_range_upper_follow_the_schema() {
        let multi: Vec<_> = ManagedAttribute::ALL
            .into_iter()
            .filter(|a| a.is_multi_valued())
            .collect();
        assert_eq!(multi.len(), 6);
        assert!(ManagedAttribute::ProxyAddresses.is_multi_valued());
        assert!(!ManagedAttribute::Mail.is_multi_valued());
        assert_eq!(
            ManagedAttribute::ExtensionAttribute10.range_upper(),
            Some(1024)
        );
        assert_eq!(
            ManagedAttribute::ExtensionAttribute11.range_upper(),
            Some(2048)
        );
        assert_eq!(
            ManagedAttribute::MsExchExtensionCustomAttribute1.range_upper(),
            Some(2048)
        );
        assert_eq!(ManagedAttribute::ProxyAddresses.range_upper(), Some(1123));
        assert_eq!(ManagedAttribute::Mail.range_upper(), Some(256));
        assert_eq!(
            ManagedAttribute::MsExchHideFromAddressLists.range_upper(),
            None
        );
    }

    #[test]
    fn is_writable_is_case_insensitive_and_closed() {
        assert!(is_writable("MAIL"));
        assert!(is_writable("msExchHideFromAddressLists"));
        assert!(!is_writable("userAccountControl"));
        assert!(!is_writable("mailNickname"));
        assert!(!is_writable("targetAddress"));
    }

    #[test]
    fn ensure_writable_accepts_managed_modifications() {
        let mods = vec![Modification {
            attribute: ManagedAttribute::Mail,
            op: ModOp::Add,
            values: vec!["a@example.com".into()],
        }];
        assert_eq!(ensure_writable(&mods), Ok(()));
        assert_eq!(ensure_writable(&[]), Ok(()));
    }

    #[test]
    fn serde_uses_the_ldap_name() {
        let json = serde_json::to_string(&ManagedAttribute::MsExchRecipientDisplayType).unwrap();
        assert_eq!(json, "\"msExchRecipientDisplayType\"");
        let back: ManagedAttribute = serde_json::from_str("\"MAIL\"").unwrap();
        assert_eq!(back, ManagedAttribute::Mail);
        assert!(serde_json::from_str::<ManagedAttribute>("\"description\"").is_err());
    }
}

//! From a cloud [`Mailbox`] to a validated [`DesiredState`].
//!
//! Every string is put in Unicode NFC first. Then the record is checked against what
//! Exchange enforces and AD does not (so a bad value would otherwise be copied on-prem
//! silently): exactly one primary SMTP address, well-formed SMTP addresses, no duplicate
//! addresses, `WindowsEmailAddress` equal to the primary SMTP address, values within the
//! schema's rangeUpper (UTF-16 code units, as AD counts), no control characters (NUL
//! included), only known attribute numbers and recipient types. The first failure is
//! returned, in a fixed order (custom attributes, extension custom attributes, proxy
//! addresses, WindowsEmailAddress, recipient type), so the same record always gives the
//! same error.
//!
//! Clearing: for the 15 custom attributes and 5 extension custom attributes the record is
//! complete, so `""`, `[]`, `null` and a missing key all mean "clear in AD". Empty strings
//! inside a list are dropped (Exchange stores no empty values). Empty `proxy_addresses`
//! fails the exactly-one-primary rule: writeback never clears a mailbox's addresses. An
//! empty or missing recipient type leaves the two type attributes untouched (the type is
//! never "cleared"), and a missing hidden flag leaves msExchHideFromAddressLists untouched.

use crate::address::{check_smtp_address, ProxyAddress};
use crate::attribute::ManagedAttribute;
use crate::error::{quote, Rule, ValidationError};
use crate::mailbox::Mailbox;
use crate::normalise::{
    eq_ignore_case, first_control_char, fold_case, normalise_mailbox, utf16_len,
};
use crate::recipient::RemoteRecipientType;
use std::collections::{BTreeMap, HashSet};

/// What the cloud says the managed attributes should be, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredState {
    /// Attributes the record decides and their values (empty = absent). An attribute not
    /// in the map is left untouched. msExchHideFromAddressLists is kept apart in `hidden`
    /// because an absent AD value already means FALSE.
    decided: BTreeMap<ManagedAttribute, Vec<String>>,
    proxy_addresses: Vec<ProxyAddress>,
    recipient_type: Option<RemoteRecipientType>,
    hidden: Option<bool>,
}

impl DesiredState {
    /// The desired values, or `None` when the record leaves the attribute untouched.
    /// For msExchHideFromAddressLists see [`DesiredState::hidden_from_address_lists`].
    pub fn values(&self, attr: ManagedAttribute) -> Option<&[String]> {
        self.decided.get(&attr).map(Vec::as_slice)
    }

    /// The proxy addresses, parsed, in the record's order.
    pub fn proxy_addresses(&self) -> &[ProxyAddress] {
        &self.proxy_addresses
    }

    /// The primary SMTP address (the value of `mail`).
    pub fn primary_smtp_address(&self) -> Option<&str> {
        self.values(ManagedAttribute::Mail)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub fn recipient_type(&self) -> Option<RemoteRecipientType> {
        self.recipient_type
    }

    pub fn hidden_from_address_lists(&self) -> Option<bool> {
        self.hidden
    }
}

/// Normalises and validates one cloud record.
pub fn validate(mailbox: &Mailbox) -> Result<DesiredState, ValidationError> {
    let mailbox = normalise_mailbox(mailbox);
    let mut decided = BTreeMap::new();

    for key in mailbox.custom_attributes.keys() {
        parse_key(key, 15, "custom_attributes")?;
    }
    for n in 1..=15u8 {
        let Some(attr) = ManagedAttribute::custom_attribute(n) else {
            continue;
        };
        let value = mailbox
            .custom_attributes
            .get(&n.to_string())
            .map(String::as_str)
            .unwrap_or_default();
        let values = if value.is_empty() {
            vec![]
        } else {
            vec![value.to_owned()]
        };
        check_values(attr, &values)?;
        decided.insert(attr, values);
    }

    for key in mailbox.extension_custom_attributes.keys() {
        parse_key(key, 5, "extension_custom_attributes")?;
    }
    for n in 1..=5u8 {
        let Some(attr) = ManagedAttribute::extension_custom_attribute(n) else {
            continue;
        };
        let values: Vec<String> = mailbox
            .extension_custom_attributes
            .get(&n.to_string())
            .map(|vs| vs.iter().filter(|v| !v.is_empty()).cloned().collect())
            .unwrap_or_default();
        check_values(attr, &values)?;
        check_no_duplicate_values(attr, &values)?;
        decided.insert(attr, values);
    }

    let proxy_values: Vec<String> = mailbox
        .proxy_addresses
        .iter()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    let proxy_addresses = check_proxy_addresses(&proxy_values)?;
    let primary = primary_smtp(&proxy_addresses)?;
    decided.insert(ManagedAttribute::ProxyAddresses, proxy_values);

    let mail = vec![primary.address.clone()];
    check_values(ManagedAttribute::Mail, &mail)?;
    if let Some(windows_email) = mailbox.primary_smtp.as_deref().filter(|v| !v.is_empty()) {
        check_values(ManagedAttribute::Mail, &[windows_email.to_owned()])?;
        if !eq_ignore_case(windows_email, &primary.address) {
            return Err(ValidationError::new(
                "mail",
                Rule::PrimarySmtpMismatch,
                format!(
                    "WindowsEmailAddress {} differs from the SMTP: address {}",
                    quote(windows_email),
                    quote(&primary.address)
                ),
            ));
        }
    }
    decided.insert(ManagedAttribute::Mail, mail);

    let recipient_type = match mailbox.recipient_type_details.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(name) => Some(RemoteRecipientType::from_exchange_name(name).ok_or_else(|| {
            ValidationError::new(
                ManagedAttribute::MsExchRecipientTypeDetails.ldap_name(),
                Rule::UnknownRecipientType,
                format!(
                    "{} is not a mailbox type writeback maps (UserMailbox, SharedMailbox, RoomMailbox, EquipmentMailbox or their Remote* forms)",
                    quote(name)
                ),
            )
        })?),
    };
    if let Some(t) = recipient_type {
        decided.insert(
            ManagedAttribute::MsExchRecipientTypeDetails,
            vec![t.type_details().to_string()],
        );
        decided.insert(
            ManagedAttribute::MsExchRecipientDisplayType,
            vec![t.display_type().to_string()],
        );
    }

    Ok(DesiredState {
        decided,
        proxy_addresses,
        recipient_type,
        hidden: mailbox.hidden_from_address_lists,
    })
}

/// Keys are the decimal numbers "1"..=max exactly ("01", " 1", "16" are errors, not ignored:
/// a record we do not fully understand must not be half-written).
fn parse_key(key: &str, max: u8, field: &str) -> Result<u8, ValidationError> {
    (1..=max).find(|n| n.to_string() == key).ok_or_else(|| {
        ValidationError::new(
            field,
            Rule::UnknownKey,
            format!("key {} is not one of \"1\"..\"{max}\"", quote(key)),
        )
    })
}

/// Control characters and length, for every value of one attribute.
fn check_values(attr: ManagedAttribute, values: &[String]) -> Result<(), ValidationError> {
    for value in values {
        if let Some(c) = first_control_char(value) {
            return Err(ValidationError::new(
                attr.ldap_name(),
                Rule::ControlCharacter,
                format!(
                    "value {} contains control character U+{:04X}",
                    quote(value),
                    u32::from(c)
                ),
            ));
        }
        if let Some(upper) = attr.range_upper() {
            let len = utf16_len(value);
            if len > upper {
                return Err(ValidationError::new(
                    attr.ldap_name(),
                    Rule::TooLong,
                    format!(
                        "value {} is {len} UTF-16 code units long; the limit is {upper}",
                        quote(value)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// AD refuses two values of a multi-valued string attribute that differ only in case.
fn check_no_duplicate_values(
    attr: ManagedAttribute,
    values: &[String],
) -> Result<(), ValidationError> {
    let mut seen = HashSet::new();
    for value in values {
        if !seen.insert(fold_case(value)) {
            return Err(ValidationError::new(
                attr.ldap_name(),
                Rule::DuplicateValue,
                format!(
                    "value {} appears more than once (compared ignoring case)",
                    quote(value)
                ),
            ));
        }
    }
    Ok(())
}

fn check_proxy_addresses(values: &[String]) -> Result<Vec<ProxyAddress>, ValidationError> {
    let attr = ManagedAttribute::ProxyAddresses;
    check_values(attr, values)?;
    let mut parsed = Vec::with_capacity(values.len());
    let mut seen = HashSet::new();
    for value in values {
        let malformed = |why: &str| {
            ValidationError::new(
                attr.ldap_name(),
                Rule::MalformedAddress,
                format!("value {} {why}", quote(value)),
            )
        };
        let address = ProxyAddress::parse(value).map_err(|p| malformed(p.describe()))?;
        if address.is_smtp() {
            check_smtp_address(&address.address).map_err(|p| malformed(p.describe()))?;
        } else if address.address.is_empty() {
            return Err(ValidationError::new(
                attr.ldap_name(),
                Rule::EmptyAddress,
                format!("value {} has no address after its type", quote(value)),
            ));
        }
        if !seen.insert(address.identity_key()) {
            return Err(ValidationError::new(
                attr.ldap_name(),
                Rule::DuplicateAddress,
                format!(
                    "value {} is the same address as an earlier one (Exchange ignores case)",
                    quote(value)
                ),
            ));
        }
        parsed.push(address);
    }
    Ok(parsed)
}

fn primary_smtp(addresses: &[ProxyAddress]) -> Result<&ProxyAddress, ValidationError> {
    let mut primaries = addresses.iter().filter(|a| a.is_smtp() && a.is_primary());
    match (primaries.next(), primaries.next()) {
        (Some(primary), None) => Ok(primary),
        (None, _) => Err(ValidationError::new(
            ManagedAttribute::ProxyAddresses.ldap_name(),
            Rule::ExactlyOnePrimarySmtp,
            "no SMTP: (primary) address".to_owned(),
        )),
        (Some(first), Some(second)) => Err(ValidationError::new(
            ManagedAttribute::ProxyAddresses.ldap_name(),
            Rule::ExactlyOnePrimarySmtp,
            format!(
                "more than one SMTP: address ({} and {})",
                quote(&first.to_string()),
                quote(&second.to_string())
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(proxies: &[&str]) -> Mailbox {
        Mailbox {
            cloud_id: "id".into(),
            proxy_addresses: proxies.iter().map(|p| p.to_string()).collect(),
            ..Mailbox::default()
        }
    }

    #[test]
    fn desired_state_exposes_what_was_decided() {
        let mut m = mailbox(&["smtp:b@contoso.com", "SMTP:a@contoso.com"]);
        m.recipient_type_details = Some("RoomMailbox".into());
        m.hidden_from_address_lists = Some(false);
        let state = validate(&m).unwrap();
        assert_eq!(state.primary_smtp_address(), Some("a@contoso.com"));
        assert_eq!(
            state.recipient_type(),
            Some(RemoteRecipientType::RemoteRoomMailbox)
        );
        assert_eq!(state.hidden_from_address_lists(), Some(false));
        assert_eq!(state.proxy_addresses().len(), 2);
        assert_eq!(
            state.values(ManagedAttribute::ExtensionAttribute7),
            Some(&[][..]),
            "missing key = clear"
        );
        assert_eq!(
            state.values(ManagedAttribute::MsExchRecipientDisplayType),
            Some(&["-2147481850".to_string()][..])
        );
        assert_eq!(
            state.values(ManagedAttribute::MsExchHideFromAddressLists),
            None
        );
    }

    #[test]
    fn errors_read_well_for_an_administrator() {
        let err = validate(&mailbox(&["SMTP:a@contoso.com", "smtp:foo"])).unwrap_err();
        assert_eq!(err.rule, Rule::MalformedAddress);
        assert_eq!(
            err.to_string(),
            "proxyAddresses: malformed address: value 'smtp:foo' has no '@'"
        );

        let mut m = mailbox(&["SMTP:a@contoso.com"]);
        m.custom_attributes.insert("2".into(), "a\0b".into());
        let err = validate(&m).unwrap_err();
        assert_eq!(err.attribute, "extensionAttribute2");
        assert_eq!(err.to_string(), "extensionAttribute2: value contains a control character: value 'a\\0b' contains control character U+0000");

        m.custom_attributes.clear();
        m.recipient_type_details = Some("MailUser".into());
        let err = validate(&m).unwrap_err();
        assert!(err.to_string().starts_with(
            "msExchRecipientTypeDetails: recipient type cannot be written back: 'MailUser'"
        ));
    }

    #[test]
    fn custom_keys_must_be_exact_numbers() {
        for key in ["0", "16", "01", " 1", "+1", "one", ""] {
            let mut m = mailbox(&["SMTP:a@contoso.com"]);
            m.custom_attributes.insert(key.into(), "x".into());
            assert_eq!(validate(&m).unwrap_err().rule, Rule::UnknownKey, "{key:?}");
        }
        let mut m = mailbox(&["SMTP:a@contoso.com"]);
        m.extension_custom_attributes
            .insert("5".into(), vec!["x".into()]);
        assert!(validate(&m).is_ok());
    }
}

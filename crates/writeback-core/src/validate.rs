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

use crate::address::{check_smtp_address, ProxyAddress, ProxyRef};
use crate::attribute::ManagedAttribute;
use crate::error::{quote, Rule, ValidationError};
use crate::mailbox::Mailbox;
use crate::normalise::{
    eq_ignore_case, first_control_char, fold_case, is_normalised, normalise_mailbox, utf16_len,
};
use crate::recipient::RemoteRecipientType;
use std::collections::{BTreeMap, HashSet};

/// Up to this many values, duplicates are looked for pairwise (no allocation); above, with
/// a hash set of case-folded keys. Both find the same first duplicate.
const PAIRWISE_DUPLICATE_CHECK_MAX: usize = 32;

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

    fn from_checked(checked: &Checked<'_>) -> DesiredState {
        DesiredState {
            decided: ManagedAttribute::ALL
                .into_iter()
                .filter_map(|attr| {
                    let values = checked.wanted(attr)?;
                    Some((attr, values.iter().map(|v| (*v).to_owned()).collect()))
                })
                .collect(),
            proxy_addresses: checked
                .proxies
                .iter()
                .map(|p| p.to_proxy_address())
                .collect(),
            recipient_type: checked.recipient_type,
            hidden: checked.hidden,
        }
    }
}

/// A validated record borrowing its strings from the (NFC) [`Mailbox`]: what [`plan`]
/// works from, so planning copies only the values it writes. [`DesiredState`] is the owned
/// form.
///
/// [`plan`]: crate::plan::plan
pub(crate) struct Checked<'a> {
    /// Every decided value, attribute after attribute.
    values: Vec<&'a str>,
    /// Per attribute, in [`ManagedAttribute::ALL`] order: its values' range in `values`, or
    /// `None` when the record leaves it untouched.
    decided: [Option<(usize, usize)>; ManagedAttribute::ALL.len()],
    proxies: Vec<ProxyRef<'a>>,
    recipient_type: Option<RemoteRecipientType>,
    hidden: Option<bool>,
}

impl<'a> Checked<'a> {
    /// See [`DesiredState::values`].
    pub(crate) fn wanted(&self, attr: ManagedAttribute) -> Option<&[&'a str]> {
        let (start, end) = (*self.decided.get(attr.position())?)?;
        self.values.get(start..end)
    }

    /// See [`DesiredState::hidden_from_address_lists`].
    pub(crate) fn hidden(&self) -> Option<bool> {
        self.hidden
    }

    fn decide(&mut self, attr: ManagedAttribute, values: impl IntoIterator<Item = &'a str>) {
        let start = self.values.len();
        self.values.extend(values);
        if let Some(slot) = self.decided.get_mut(attr.position()) {
            *slot = Some((start, self.values.len()));
        }
    }
}

/// Normalises and validates one cloud record.
pub fn validate(mailbox: &Mailbox) -> Result<DesiredState, ValidationError> {
    with_checked(mailbox, DesiredState::from_checked)
}

/// Normalises and validates `mailbox` and hands the result to `then`. Nearly every record is
/// already in NFC and is checked in place; only one that is not pays for a normalised copy.
pub(crate) fn with_checked<R>(
    mailbox: &Mailbox,
    then: impl FnOnce(&Checked<'_>) -> R,
) -> Result<R, ValidationError> {
    if is_normalised(mailbox) {
        Ok(then(&check(mailbox)?))
    } else {
        let normalised = normalise_mailbox(mailbox);
        Ok(then(&check(&normalised)?))
    }
}

/// Validates a record whose strings are all in NFC.
fn check(mailbox: &Mailbox) -> Result<Checked<'_>, ValidationError> {
    let mut checked = Checked {
        values: Vec::with_capacity(
            mailbox.custom_attributes.len() + mailbox.proxy_addresses.len() + 8,
        ),
        decided: [None; ManagedAttribute::ALL.len()],
        proxies: Vec::new(),
        recipient_type: None,
        hidden: mailbox.hidden_from_address_lists,
    };

    // Index 0 unused: keys are 1-based.
    let mut custom = [""; 16];
    for (key, value) in &mailbox.custom_attributes {
        let n = parse_key(key, 15, "custom_attributes")?;
        if let Some(slot) = custom.get_mut(usize::from(n)) {
            *slot = value;
        }
    }
    for (n, value) in (1..=15u8).zip(custom.iter().skip(1)) {
        let Some(attr) = ManagedAttribute::custom_attribute(n) else {
            continue;
        };
        let values = Some(*value).filter(|v| !v.is_empty());
        check_values(attr, values)?;
        checked.decide(attr, values);
    }

    let mut extension: [&[String]; 6] = [&[]; 6];
    for (key, values) in &mailbox.extension_custom_attributes {
        let n = parse_key(key, 5, "extension_custom_attributes")?;
        if let Some(slot) = extension.get_mut(usize::from(n)) {
            *slot = values;
        }
    }
    for (n, values) in (1..=5u8).zip(extension.iter().skip(1)) {
        let Some(attr) = ManagedAttribute::extension_custom_attribute(n) else {
            continue;
        };
        let values = || non_empty(values);
        check_values(attr, values())?;
        check_no_duplicate_values(attr, values())?;
        checked.decide(attr, values());
    }

    checked.proxies = check_proxy_addresses(non_empty(&mailbox.proxy_addresses))?;
    let primary = primary_smtp(&checked.proxies)?.address;
    checked.decide(
        ManagedAttribute::ProxyAddresses,
        non_empty(&mailbox.proxy_addresses),
    );

    check_values(ManagedAttribute::Mail, [primary])?;
    if let Some(windows_email) = mailbox.primary_smtp.as_deref().filter(|v| !v.is_empty()) {
        check_values(ManagedAttribute::Mail, [windows_email])?;
        if !eq_ignore_case(windows_email, primary) {
            return Err(ValidationError::new(
                "mail",
                Rule::PrimarySmtpMismatch,
                format!(
                    "WindowsEmailAddress {} differs from the SMTP: address {}",
                    quote(windows_email),
                    quote(primary)
                ),
            ));
        }
    }
    checked.decide(ManagedAttribute::Mail, [primary]);

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
        checked.decide(
            ManagedAttribute::MsExchRecipientTypeDetails,
            [t.type_details_text()],
        );
        checked.decide(
            ManagedAttribute::MsExchRecipientDisplayType,
            [t.display_type_text()],
        );
    }
    checked.recipient_type = recipient_type;
    Ok(checked)
}

/// The non-empty values of a list (Exchange stores no empty values).
fn non_empty(values: &[String]) -> impl Iterator<Item = &str> + Clone {
    values.iter().map(String::as_str).filter(|v| !v.is_empty())
}

/// Keys are the decimal numbers "1"..=max exactly ("01", " 1", "16" are errors, not ignored:
/// a record we do not fully understand must not be half-written).
fn parse_key(key: &str, max: u8, field: &str) -> Result<u8, ValidationError> {
    decimal_key(key).filter(|n| *n <= max).ok_or_else(|| {
        ValidationError::new(
            field,
            Rule::UnknownKey,
            format!("key {} is not one of \"1\"..\"{max}\"", quote(key)),
        )
    })
}

/// `key` as a number from 1 to 99 written the canonical way (no sign, space or leading
/// zero), as `n.to_string()` would write it.
fn decimal_key(key: &str) -> Option<u8> {
    let digit = |b: u8| b.is_ascii_digit().then(|| b - b'0');
    match *key.as_bytes() {
        [units] => digit(units).filter(|n| *n != 0),
        [tens, units] => {
            let tens = digit(tens).filter(|n| *n != 0)?;
            Some(tens * 10 + digit(units)?)
        }
        _ => None,
    }
}

/// Control characters and length, for every value of one attribute.
fn check_values<'v>(
    attr: ManagedAttribute,
    values: impl IntoIterator<Item = &'v str>,
) -> Result<(), ValidationError> {
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
fn check_no_duplicate_values<'v>(
    attr: ManagedAttribute,
    values: impl Iterator<Item = &'v str> + Clone,
) -> Result<(), ValidationError> {
    let duplicate = if values.clone().nth(PAIRWISE_DUPLICATE_CHECK_MAX).is_none() {
        values
            .clone()
            .enumerate()
            .find(|(j, value)| values.clone().take(*j).any(|v| eq_ignore_case(v, value)))
            .map(|(_, value)| value)
    } else {
        let mut seen = HashSet::new();
        values.clone().find(|value| !seen.insert(fold_case(value)))
    };
    match duplicate {
        None => Ok(()),
        Some(value) => Err(ValidationError::new(
            attr.ldap_name(),
            Rule::DuplicateValue,
            format!(
                "value {} appears more than once (compared ignoring case)",
                quote(value)
            ),
        )),
    }
}

fn check_proxy_addresses<'v>(
    values: impl Iterator<Item = &'v str> + Clone,
) -> Result<Vec<ProxyRef<'v>>, ValidationError> {
    let attr = ManagedAttribute::ProxyAddresses;
    check_values(attr, values.clone())?;
    let pairwise = values.clone().nth(PAIRWISE_DUPLICATE_CHECK_MAX).is_none();
    let mut parsed: Vec<ProxyRef<'v>> = Vec::with_capacity(values.size_hint().1.unwrap_or(0));
    let mut seen = HashSet::new();
    for value in values {
        let malformed = |why: &str| {
            ValidationError::new(
                attr.ldap_name(),
                Rule::MalformedAddress,
                format!("value {} {why}", quote(value)),
            )
        };
        let address = ProxyRef::parse(value).map_err(|p| malformed(p.describe()))?;
        if address.is_smtp() {
            check_smtp_address(address.address).map_err(|p| malformed(p.describe()))?;
        } else if address.address.is_empty() {
            return Err(ValidationError::new(
                attr.ldap_name(),
                Rule::EmptyAddress,
                format!("value {} has no address after its type", quote(value)),
            ));
        }
        let duplicate = if pairwise {
            parsed.iter().any(|earlier| earlier.same_address(&address))
        } else {
            !seen.insert(address.identity_key())
        };
        if duplicate {
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

fn primary_smtp<'p, 'v>(
    addresses: &'p [ProxyRef<'v>],
) -> Result<&'p ProxyRef<'v>, ValidationError> {
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
    fn keys_parse_exactly_as_decimal_formatting_writes_them() {
        // The slow definition the parser replaces: a key is n.to_string() for some n.
        let reference = |key: &str, max: u8| (1..=max).find(|n| n.to_string() == key);
        let alphabet = [
            "0", "1", "5", "9", " ", "+", "-", "a", "\u{661}", "\u{ff11}",
        ];
        let mut keys = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = keys
                .iter()
                .flat_map(|k| alphabet.iter().map(move |c| format!("{k}{c}")))
                .collect();
            keys.extend(longer);
        }
        keys.extend((0..=300).map(|n| n.to_string()));
        keys.extend((0..=20).map(|n| format!("{n:02}")));
        for key in &keys {
            for max in [5, 15] {
                assert_eq!(
                    parse_key(key, max, "f").ok(),
                    reference(key, max),
                    "{key:?} max {max}"
                );
            }
        }
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

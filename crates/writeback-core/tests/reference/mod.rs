//! The planner as it was before it was made fast (normalisation, address checks, validation
//! and the diff), kept verbatim apart from using only the crate's public types. It is the
//! oracle the equivalence tests compare the real planner with: the optimisation promised
//! the same result, error included, for every input. Do not "fix" or speed up this copy.
#![allow(dead_code)]

mod planner;

pub use planner::{plan, plan_desired, validate};
use unicode_normalization::UnicodeNormalization;
use writeback_core::{AddressProblem, Mailbox, Rule, ValidationError};

// --- normalise.rs

pub fn nfc(value: &str) -> String {
    value.nfc().collect()
}

pub fn utf16_len(value: &str) -> usize {
    value.encode_utf16().count()
}

pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

pub fn fold_case(value: &str) -> String {
    value.chars().flat_map(char::to_lowercase).collect()
}

pub fn first_control_char(value: &str) -> Option<char> {
    value.chars().find(|c| c.is_control())
}

pub fn normalise_mailbox(mailbox: &Mailbox) -> Mailbox {
    Mailbox {
        cloud_id: mailbox.cloud_id.clone(),
        primary_smtp: mailbox.primary_smtp.as_deref().map(nfc),
        proxy_addresses: mailbox.proxy_addresses.iter().map(|v| nfc(v)).collect(),
        custom_attributes: mailbox
            .custom_attributes
            .iter()
            .map(|(k, v)| (nfc(k), nfc(v)))
            .collect(),
        extension_custom_attributes: mailbox
            .extension_custom_attributes
            .iter()
            .map(|(k, vs)| (nfc(k), vs.iter().map(|v| nfc(v)).collect()))
            .collect(),
        hidden_from_address_lists: mailbox.hidden_from_address_lists,
        recipient_type_details: mailbox.recipient_type_details.as_deref().map(nfc),
        anchors: mailbox.anchors.clone(),
        when_changed_utc: mailbox.when_changed_utc.clone(),
    }
}

// --- error.rs

pub(super) fn error(
    attribute: impl Into<String>,
    rule: Rule,
    detail: impl Into<String>,
) -> ValidationError {
    ValidationError {
        attribute: attribute.into(),
        rule,
        detail: detail.into(),
    }
}

pub(super) fn quote(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut out = String::from("'");
    let mut chars = value.chars();
    for c in chars.by_ref().take(MAX_CHARS) {
        out.extend(c.escape_debug());
    }
    if chars.next().is_some() {
        out.push_str("...");
    }
    out.push('\'');
    out
}

// --- address.rs

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyAddress {
    pub prefix: String,
    pub address: String,
}

impl ProxyAddress {
    pub fn parse(value: &str) -> Result<ProxyAddress, AddressProblem> {
        let (prefix, address) = value.split_once(':').ok_or(AddressProblem::MissingPrefix)?;
        if prefix.is_empty() {
            return Err(AddressProblem::MissingPrefix);
        }
        if !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(AddressProblem::InvalidPrefix);
        }
        Ok(ProxyAddress {
            prefix: prefix.to_owned(),
            address: address.to_owned(),
        })
    }

    pub fn is_primary(&self) -> bool {
        !self.prefix.chars().any(|c| c.is_ascii_lowercase())
    }

    pub fn address_type(&self) -> String {
        self.prefix.to_ascii_uppercase()
    }

    pub fn is_smtp(&self) -> bool {
        self.prefix.eq_ignore_ascii_case("smtp")
    }

    pub fn same_address(&self, other: &ProxyAddress) -> bool {
        self.prefix.eq_ignore_ascii_case(&other.prefix)
            && eq_ignore_case(&self.address, &other.address)
    }

    pub fn same_value(&self, other: &ProxyAddress) -> bool {
        self.same_address(other) && self.is_primary() == other.is_primary()
    }

    pub fn identity_key(&self) -> (String, String) {
        (self.address_type(), fold_case(&self.address))
    }
}

impl std::fmt::Display for ProxyAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.prefix, self.address)
    }
}

pub fn check_smtp_address(address: &str) -> Result<(), AddressProblem> {
    const MAX_ADDRESS_OCTETS: usize = 254;
    const MAX_LOCAL_OCTETS: usize = 64;
    const MAX_DOMAIN_OCTETS: usize = 255;

    let mut parts = address.split('@');
    let local = parts.next().unwrap_or_default();
    let domain = parts.next().ok_or(AddressProblem::NoAt)?;
    if parts.next().is_some() {
        return Err(AddressProblem::MultipleAt);
    }
    if local.is_empty() {
        return Err(AddressProblem::EmptyLocalPart);
    }
    if domain.is_empty() {
        return Err(AddressProblem::EmptyDomain);
    }
    check_local_part(local)?;
    check_domain(domain)?;
    if local.len() > MAX_LOCAL_OCTETS {
        return Err(AddressProblem::LocalPartTooLong);
    }
    if domain.len() > MAX_DOMAIN_OCTETS {
        return Err(AddressProblem::DomainTooLong);
    }
    if address.len() > MAX_ADDRESS_OCTETS {
        return Err(AddressProblem::AddressTooLong);
    }
    Ok(())
}

fn check_local_part(local: &str) -> Result<(), AddressProblem> {
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~".contains(c)
            || (!c.is_ascii() && !c.is_whitespace() && !c.is_control())
    };
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err(AddressProblem::MisplacedDot);
        }
        if !atom.chars().all(allowed) {
            return Err(AddressProblem::InvalidLocalPartCharacter);
        }
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), AddressProblem> {
    const MAX_LABEL_OCTETS: usize = 63;
    if domain.starts_with('[') {
        return Err(AddressProblem::DomainLiteralUnsupported);
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric());
    let mut labels = 0usize;
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty()
            || label.len() > MAX_LABEL_OCTETS
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(allowed)
        {
            return Err(AddressProblem::InvalidDomainLabel);
        }
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Err(AddressProblem::SingleLabelDomain);
    }
    if last.chars().all(|c| c.is_ascii_digit()) {
        return Err(AddressProblem::NumericTopLevelDomain);
    }
    Ok(())
}

//! The reference validator and planner (see the parent module).

use super::{
    check_smtp_address, eq_ignore_case, error, first_control_char, fold_case, normalise_mailbox,
    quote, utf16_len, ProxyAddress,
};
use std::collections::{BTreeMap, HashSet};
use writeback_core::attribute::AttributeSyntax;
use writeback_core::{
    AdValues, Mailbox, ManagedAttribute, Modification, PlanPolicy, RemoteRecipientType, Rule,
    ValidationError,
};

// --- validate.rs

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredState {
    pub decided: BTreeMap<ManagedAttribute, Vec<String>>,
    pub proxy_addresses: Vec<ProxyAddress>,
    pub recipient_type: Option<RemoteRecipientType>,
    pub hidden: Option<bool>,
}

impl DesiredState {
    pub fn values(&self, attr: ManagedAttribute) -> Option<&[String]> {
        self.decided.get(&attr).map(Vec::as_slice)
    }
}

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
            return Err(error(
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
            error(
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

pub fn parse_key(key: &str, max: u8, field: &str) -> Result<u8, ValidationError> {
    (1..=max).find(|n| n.to_string() == key).ok_or_else(|| {
        error(
            field,
            Rule::UnknownKey,
            format!("key {} is not one of \"1\"..\"{max}\"", quote(key)),
        )
    })
}

fn check_values(attr: ManagedAttribute, values: &[String]) -> Result<(), ValidationError> {
    for value in values {
        if let Some(c) = first_control_char(value) {
            return Err(error(
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
                return Err(error(
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

fn check_no_duplicate_values(
    attr: ManagedAttribute,
    values: &[String],
) -> Result<(), ValidationError> {
    let mut seen = HashSet::new();
    for value in values {
        if !seen.insert(fold_case(value)) {
            return Err(error(
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
            error(
                attr.ldap_name(),
                Rule::MalformedAddress,
                format!("value {} {why}", quote(value)),
            )
        };
        let address = ProxyAddress::parse(value).map_err(|p| malformed(p.describe()))?;
        if address.is_smtp() {
            check_smtp_address(&address.address).map_err(|p| malformed(p.describe()))?;
        } else if address.address.is_empty() {
            return Err(error(
                attr.ldap_name(),
                Rule::EmptyAddress,
                format!("value {} has no address after its type", quote(value)),
            ));
        }
        if !seen.insert(address.identity_key()) {
            return Err(error(
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
        (None, _) => Err(error(
            ManagedAttribute::ProxyAddresses.ldap_name(),
            Rule::ExactlyOnePrimarySmtp,
            "no SMTP: (primary) address".to_owned(),
        )),
        (Some(first), Some(second)) => Err(error(
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

// --- apply.rs

fn values_match(attr: ManagedAttribute, a: &str, b: &str) -> bool {
    match attr.syntax() {
        AttributeSyntax::UnicodeString => eq_ignore_case(a, b),
        AttributeSyntax::LargeInteger | AttributeSyntax::Integer => {
            match (a.parse::<i64>(), b.parse::<i64>()) {
                (Ok(x), Ok(y)) => x == y,
                _ => a == b,
            }
        }
        AttributeSyntax::Boolean => a.eq_ignore_ascii_case(b),
    }
}

// --- plan.rs

pub fn plan(
    desired: &Mailbox,
    current: &AdValues,
    policy: &PlanPolicy,
) -> Result<Vec<Modification>, ValidationError> {
    let state = validate(desired)?;
    Ok(plan_desired(&state, current, policy))
}

pub fn plan_desired(
    desired: &DesiredState,
    current: &AdValues,
    policy: &PlanPolicy,
) -> Vec<Modification> {
    let mut mods = Vec::new();
    for attr in ManagedAttribute::ALL {
        let have = current.get(attr);
        let (deletes, adds) = match attr {
            ManagedAttribute::ProxyAddresses => {
                let Some(want) = desired.values(attr) else {
                    continue;
                };
                let excluded =
                    |v: &str| ProxyAddress::parse(v).is_ok_and(|p| policy.excludes_type(&p.prefix));
                let want: Vec<String> = want.iter().filter(|v| !excluded(v)).cloned().collect();
                diff(attr, have, &want, excluded, same_proxy_value)
            }
            ManagedAttribute::MsExchHideFromAddressLists => match desired.hidden {
                None => continue,
                Some(false) if have.is_empty() => continue,
                Some(hidden) => {
                    let want = [if hidden { "TRUE" } else { "FALSE" }.to_owned()];
                    diff(attr, have, &want, |_| false, |a, b| a == b)
                }
            },
            _ => {
                let Some(want) = desired.values(attr) else {
                    continue;
                };
                diff(attr, have, want, |_| false, |a, b| a == b)
            }
        };
        if !deletes.is_empty() {
            mods.push(Modification::delete(attr, deletes));
        }
        if !adds.is_empty() {
            mods.push(Modification::add(attr, adds));
        }
    }
    mods
}

fn same_proxy_value(have: &str, want: &str) -> bool {
    match (ProxyAddress::parse(have), ProxyAddress::parse(want)) {
        (Ok(h), Ok(w)) => h.same_value(&w),
        _ => have == want,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Untouchable,
    KeptFor(usize),
    Delete,
}

fn diff(
    attr: ManagedAttribute,
    have: &[String],
    want: &[String],
    untouchable: impl Fn(&str) -> bool,
    same: impl Fn(&str, &str) -> bool,
) -> (Vec<String>, Vec<String>) {
    let mut claimed = vec![false; want.len()];
    let mut fates = Vec::with_capacity(have.len());
    for h in have {
        let fate = if untouchable(h) {
            Fate::Untouchable
        } else {
            let free_match = want
                .iter()
                .zip(claimed.iter_mut())
                .enumerate()
                .find(|(_, (w, c))| !**c && same(h, w));
            match free_match {
                Some((j, (_, c))) => {
                    *c = true;
                    Fate::KeptFor(j)
                }
                None => Fate::Delete,
            }
        };
        fates.push(fate);
    }

    loop {
        let deleted: Vec<&String> = have
            .iter()
            .zip(&fates)
            .filter(|(_, f)| **f == Fate::Delete)
            .map(|(h, _)| h)
            .collect();
        let mut changed = false;
        for (h, fate) in have.iter().zip(fates.iter_mut()) {
            if let Fate::KeptFor(j) = *fate {
                if deleted.iter().any(|d| values_match(attr, d, h)) {
                    if let Some(c) = claimed.get_mut(j) {
                        *c = false;
                    }
                    *fate = Fate::Delete;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }

    let deletes = have
        .iter()
        .zip(&fates)
        .filter(|(_, f)| **f == Fate::Delete)
        .map(|(h, _)| h.clone())
        .collect();
    let adds = want
        .iter()
        .zip(&claimed)
        .filter(|(_, c)| !**c)
        .map(|(w, _)| w.clone())
        .collect();
    (deletes, adds)
}

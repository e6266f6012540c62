//! Set-Mailbox with Exchange's rules: one primary SMTP address, SMTP addresses unique in the
//! tenant, WindowsEmailAddress promoting an address to primary.

// Handlers fail with the finished HTTP error response (built only on the error path), so
// `Result<_, Response>` is the natural type here despite Response's size.
#![allow(clippy::result_large_err)]

use serde_json::{Map, Value};

use super::errors::{
    bad_request, invalid_parameter_value, not_found, unknown_parameter, DATA_VALIDATION,
    PROXY_ADDRESS_EXISTS,
};
use crate::clock::now_ticks;
use crate::model::{smtp_address, Mailbox, RecipientTypeDetails, Tenant};
use crate::state::Shared;
use axum::response::Response;

const CUSTOM_ATTRIBUTE_MAX: usize = 1024;
const EXTENSION_VALUE_MAX: usize = 2048;

/// Runs Set-Mailbox and answers with the admin API envelope.
pub(crate) fn set_mailbox(
    shared: &Shared,
    tenant_segment: &str,
    params: &Map<String, Value>,
) -> Response {
    let mut tenant = shared.write();
    match apply_set_mailbox(&mut tenant, params) {
        Ok(warnings) => {
            drop(tenant);
            super::envelope(shared, tenant_segment, Vec::<Value>::new(), warnings, None)
        }
        Err(response) => response,
    }
}

fn as_bool(name: &str, value: &Value) -> Result<bool, Response> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("$true") => {
            Ok(true)
        }
        Value::String(s) if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("$false") => {
            Ok(false)
        }
        other => Err(invalid_parameter_value(
            name,
            &format!("Cannot convert value \"{other}\" to type \"System.Boolean\"."),
        )),
    }
}

fn as_string_list(name: &str, value: &Value) -> Result<Vec<String>, Response> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid_parameter_value(name, "Every value must be a string."))
            })
            .collect(),
        _ => Err(invalid_parameter_value(
            name,
            "Expected a string, an array or {\"Add\":[…],\"Remove\":[…]}.",
        )),
    }
}

/// A multi-valued parameter: a full replacement, or the `{"Add":[…],"Remove":[…]}` form.
enum MultiValue {
    Replace(Vec<String>),
    Modify {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

fn as_multi_value(name: &str, value: &Value) -> Result<MultiValue, Response> {
    if let Value::Object(ops) = value {
        let mut add = Vec::new();
        let mut remove = Vec::new();
        for (key, v) in ops {
            match key.to_ascii_lowercase().as_str() {
                "add" | "+" => add.extend(as_string_list(name, v)?),
                "remove" | "-" => remove.extend(as_string_list(name, v)?),
                _ => {
                    return Err(invalid_parameter_value(
                        name,
                        &format!("Unknown operation '{key}'; use Add or Remove."),
                    ))
                }
            }
        }
        return Ok(MultiValue::Modify { add, remove });
    }
    as_string_list(name, value).map(MultiValue::Replace)
}

fn numbered(name: &str, prefix: &str, max: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    lower
        .strip_prefix(prefix)?
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .map(|n| n - 1)
}

/// `x@y` without a prefix is an SMTP address; `TYPE:value` keeps its type.
fn normalize_proxy(raw: &str, make_primary: bool) -> String {
    let raw = raw.trim();
    match raw.split_once(':') {
        Some((prefix, rest)) if !prefix.is_empty() && !prefix.contains('@') => {
            format!("{prefix}:{rest}")
        }
        _ => format!("{}:{raw}", if make_primary { "SMTP" } else { "smtp" }),
    }
}

fn same_proxy(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn validation_error(message: &str) -> Response {
    bad_request(DATA_VALIDATION, message)
}

fn valid_smtp(address: &str) -> bool {
    let mut parts = address.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.contains(char::is_whitespace)
        }
        _ => false,
    }
}

/// Demotes every `SMTP:` to `smtp:` (used before another address becomes primary).
fn demote_primaries(addresses: &mut [String]) {
    for a in addresses.iter_mut() {
        if let Some(rest) = a.strip_prefix("SMTP:") {
            *a = format!("smtp:{rest}");
        }
    }
}

fn apply_email_addresses(mailbox: &mut Mailbox, change: MultiValue) -> Result<(), Response> {
    match change {
        MultiValue::Replace(values) => {
            let any_prefixed_primary = values.iter().any(|v| v.trim().starts_with("SMTP:"));
            let mut list: Vec<String> = Vec::new();
            for (i, raw) in values.iter().enumerate() {
                let proxy = normalize_proxy(raw, !any_prefixed_primary && i == 0);
                if !list.iter().any(|p| same_proxy(p, &proxy)) {
                    list.push(proxy);
                }
            }
            mailbox.email_addresses = list;
        }
        MultiValue::Modify { add, remove } => {
            for raw in &remove {
                let proxy = normalize_proxy(raw, false);
                let before = mailbox.email_addresses.len();
                let removes_primary = mailbox
                    .email_addresses
                    .iter()
                    .any(|p| p.starts_with("SMTP:") && same_proxy(p, &proxy));
                if removes_primary {
                    return Err(validation_error(&format!(
                        "The primary SMTP address \"{}\" can't be removed. Set another address as primary first.",
                        smtp_address(&proxy).unwrap_or(&proxy)
                    )));
                }
                mailbox.email_addresses.retain(|p| !same_proxy(p, &proxy));
                if mailbox.email_addresses.len() == before {
                    // Exchange ignores removal of an absent value.
                }
            }
            for raw in &add {
                let proxy = normalize_proxy(raw, false);
                if proxy.starts_with("SMTP:") {
                    demote_primaries(&mut mailbox.email_addresses);
                }
                mailbox.email_addresses.retain(|p| !same_proxy(p, &proxy));
                mailbox.email_addresses.push(proxy);
            }
        }
    }
    Ok(())
}

fn apply_windows_email_address(mailbox: &mut Mailbox, value: &Value) -> Result<(), Response> {
    let Some(address) = value.as_str().map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(invalid_parameter_value(
            "WindowsEmailAddress",
            "The value must be an SMTP address.",
        ));
    };
    let address = smtp_address(address).unwrap_or(address).to_owned();
    if !valid_smtp(&address) {
        return Err(validation_error(&format!("The email address \"{address}\" isn't correct. Please use this format: user name, the @ sign, followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com.")));
    }
    demote_primaries(&mut mailbox.email_addresses);
    mailbox
        .email_addresses
        .retain(|p| !smtp_address(p).is_some_and(|a| a.eq_ignore_ascii_case(&address)));
    mailbox.email_addresses.insert(0, format!("SMTP:{address}"));
    Ok(())
}

/// Checks the invariants Exchange enforces on EmailAddresses.
fn validate_addresses(tenant: &Tenant, mailbox: &Mailbox) -> Result<(), Response> {
    for proxy in &mailbox.email_addresses {
        let Some((prefix, value)) = proxy.split_once(':') else {
            return Err(validation_error(&format!(
                "The proxy address \"{proxy}\" is invalid: it has no prefix."
            )));
        };
        if prefix.is_empty() || value.is_empty() {
            return Err(validation_error(&format!(
                "The proxy address \"{proxy}\" is invalid."
            )));
        }
        if prefix.eq_ignore_ascii_case("smtp") && !valid_smtp(value) {
            return Err(validation_error(&format!(
                "The SMTP address \"{value}\" is invalid."
            )));
        }
    }
    let primaries = mailbox
        .email_addresses
        .iter()
        .filter(|p| p.starts_with("SMTP:"))
        .count();
    if primaries == 0 {
        return Err(validation_error("The primary SMTP address is missing: exactly one address must have the \"SMTP:\" prefix."));
    }
    if primaries > 1 {
        return Err(validation_error("There are multiple primary SMTP addresses. Please ensure there is only one primary address for each address type."));
    }
    for proxy in &mailbox.email_addresses {
        if let Some(address) = smtp_address(proxy) {
            if let Some(owner) = tenant.smtp_owner(address).filter(|g| *g != mailbox.guid) {
                let owner_name = tenant
                    .mailboxes
                    .get(owner)
                    .map_or(owner, |m| m.name.as_str());
                return Err(bad_request(
                    PROXY_ADDRESS_EXISTS,
                    &format!("The proxy address \"{proxy}\" is already being used by the proxy addresses or LegacyExchangeDN of \"{owner_name}\". Please choose another proxy address."),
                ));
            }
        }
    }
    Ok(())
}

/// Applies Set-Mailbox parameters; returns the warnings of the answer. Nothing is stored unless
/// every parameter is valid.
pub(crate) fn apply_set_mailbox(
    tenant: &mut Tenant,
    params: &Map<String, Value>,
) -> Result<Vec<String>, Response> {
    let Some(identity) = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Identity"))
        .map(|(_, v)| v)
    else {
        return Err(bad_request(
            super::errors::PARAMETER_BINDING,
            "Cannot process command because of one or more missing mandatory parameters: Identity.",
        ));
    };
    let identity = identity
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| identity.to_string());
    let Some(guid) = tenant.resolve_mailbox(&identity).map(str::to_owned) else {
        return Err(not_found(&identity));
    };
    let Some(original) = tenant.mailboxes.get(&guid) else {
        return Err(not_found(&identity));
    };
    let mut mailbox = original.clone();
    let mut windows_email = None;
    for (name, value) in params {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = numbered(name, "customattribute", 15) {
            let text = match value {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => {
                    return Err(invalid_parameter_value(
                        name,
                        &format!("Cannot convert value \"{other}\" to type \"System.String\"."),
                    ))
                }
            };
            if text.chars().count() > CUSTOM_ATTRIBUTE_MAX {
                return Err(validation_error(&format!("The length of the property is too long. The maximum length is {CUSTOM_ATTRIBUTE_MAX} and the length of the value provided is {}.", text.chars().count())));
            }
            if let Some(slot) = mailbox.custom_attributes.get_mut(i) {
                *slot = text;
            }
        } else if let Some(i) = numbered(name, "extensioncustomattribute", 5) {
            let Some(slot) = mailbox.extension_custom_attributes.get_mut(i) else {
                continue;
            };
            match as_multi_value(name, value)? {
                MultiValue::Replace(values) => *slot = values,
                MultiValue::Modify { add, remove } => {
                    slot.retain(|v| !remove.iter().any(|r| r.eq_ignore_ascii_case(v)));
                    for a in add {
                        if !slot.iter().any(|v| v.eq_ignore_ascii_case(&a)) {
                            slot.push(a);
                        }
                    }
                }
            }
            if let Some(long) = slot
                .iter()
                .find(|v| v.chars().count() > EXTENSION_VALUE_MAX || v.is_empty())
            {
                return Err(validation_error(&format!("The value \"{long}\" of {name} must be 1 to {EXTENSION_VALUE_MAX} characters long.")));
            }
        } else {
            match lower.as_str() {
                "identity" | "confirm" | "force" => {}
                "emailaddresses" => {
                    apply_email_addresses(&mut mailbox, as_multi_value(name, value)?)?
                }
                "windowsemailaddress" => windows_email = Some(value),
                "hiddenfromaddresslistsenabled" => {
                    mailbox.hidden_from_address_lists = as_bool(name, value)?
                }
                "isexchangecloudmanaged" => {
                    mailbox.is_exchange_cloud_managed = as_bool(name, value)?
                }
                "type" => {
                    let text = value.as_str().unwrap_or_default();
                    mailbox.recipient_type_details = RecipientTypeDetails::from_set_mailbox_type(text).ok_or_else(|| {
                        invalid_parameter_value("Type", &format!("Cannot convert value \"{text}\" to type \"Microsoft.Exchange.Management.RecipientTasks.ConvertibleMailboxSubType\". Error: \"Unable to match the identifier name {text} to a valid enumerator name. Specify one of the following enumerator names and try again: Regular, Room, Equipment, Shared\""))
                    })?;
                }
                _ => return Err(unknown_parameter(name)),
            }
        }
    }
    // WindowsEmailAddress is applied last so it wins over an EmailAddresses change in the same call.
    if let Some(value) = windows_email {
        apply_windows_email_address(&mut mailbox, value)?;
    }
    validate_addresses(tenant, &mailbox)?;
    if mailbox == *original {
        return Ok(vec![format!(
            "The command completed successfully but no settings of '{}' have been modified.",
            original.name
        )]);
    }
    mailbox.when_changed = now_ticks().max(original.when_changed + 1);
    let addresses_changed = mailbox.email_addresses != original.email_addresses;
    tenant.put_mailbox(mailbox);
    if addresses_changed {
        tenant.sync_mailbox_to_user(&guid);
    }
    Ok(Vec::new())
}

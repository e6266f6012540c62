//! Simulation of one LDAP modify request on [`AdValues`], with the result codes AD and
//! Samba return. The engine uses it to record the state it wrote; the property tests use it
//! to check that every plan would be accepted and converges.
//!
//! Semantics (RFC 4511 §4.6, checked against Samba's `ldb_kv_modify_internal` and the
//! measurements in the project's ldap3-with-samba notes):
//! - The request is atomic: operations apply in order to a working copy; the first failure
//!   discards everything.
//! - `Delete` with values removes each value (the first one matching, case-insensitively for
//!   string attributes, numerically for integers); a value not present fails with
//!   noSuchAttribute (16). `Delete` without values removes the attribute; 16 if absent.
//! - `Add` fails with attributeOrValueExists (20) if a value is already present or given
//!   twice, and if it would give a single-valued attribute a second value. Presence is
//!   checked case-insensitively, EXCEPT for proxyAddresses: Samba's duplicate check on `Add`
//!   of proxyAddresses is case-sensitive (observed), so `smtp:a@x` can be added next to
//!   `SMTP:a@x`. That is why a case-only change is always written as delete + add.
//!   `Add` with no values is a constraintViolation (19), as in Samba.
//! - `Replace` sets the values (none: removes the attribute, absent or not); more than one
//!   value on a single-valued attribute, or a value given twice, is 20.
//! - Value syntax, for `Add` and `Replace`: an empty value is invalidAttributeSyntax (21)
//!   (RFC 4517 Directory String is 1*UTF8); a string longer than the attribute's rangeUpper
//!   (UTF-16 code units) is constraintViolation (19) as AD answers (Samba answers 21);
//!   integers must parse as 64-bit (Large Integer) or 32-bit (Integer) decimals and booleans
//!   must be `TRUE`/`FALSE`, else 21.

use crate::attribute::{AttributeSyntax, ManagedAttribute};
use crate::error::{quote, ApplyError};
use crate::modification::{ModOp, Modification};
use crate::normalise::{eq_ignore_case, utf16_len};
use crate::values::AdValues;

impl AdValues {
    /// The values after the modify request `mods`, or the error AD would return (in which
    /// case nothing was written).
    pub fn apply(&self, mods: &[Modification]) -> Result<AdValues, ApplyError> {
        let mut state = self.clone();
        for m in mods {
            apply_one(&mut state, m)?;
        }
        Ok(state)
    }
}

/// Whether AD's equality matching rule for `attr` considers the two values equal (what
/// `Delete` of a value uses).
pub(crate) fn values_match(attr: ManagedAttribute, a: &str, b: &str) -> bool {
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

/// Whether adding `new` next to `existing` is refused as a duplicate.
fn add_conflicts(attr: ManagedAttribute, existing: &str, new: &str) -> bool {
    if attr == ManagedAttribute::ProxyAddresses {
        existing == new
    } else {
        values_match(attr, existing, new)
    }
}

fn error(code: u32, attr: ManagedAttribute, message: String) -> ApplyError {
    ApplyError {
        code,
        attribute: attr,
        message,
    }
}

fn apply_one(state: &mut AdValues, m: &Modification) -> Result<(), ApplyError> {
    let attr = m.attribute;
    match m.op {
        ModOp::Add => {
            if m.values.is_empty() {
                return Err(error(
                    ApplyError::CONSTRAINT_VIOLATION,
                    attr,
                    "add with no values".into(),
                ));
            }
            check_syntax(attr, &m.values)?;
            if !attr.is_multi_valued() && m.values.len() > 1 {
                return Err(error(
                    ApplyError::ATTRIBUTE_OR_VALUE_EXISTS,
                    attr,
                    "single-valued attribute given more than one value".into(),
                ));
            }
            check_no_repeats(attr, &m.values)?;
            let current = state.get(attr);
            if !attr.is_multi_valued() && !current.is_empty() {
                return Err(error(
                    ApplyError::ATTRIBUTE_OR_VALUE_EXISTS,
                    attr,
                    "single-valued attribute already has a value".into(),
                ));
            }
            if let Some(v) = m
                .values
                .iter()
                .find(|v| current.iter().any(|c| add_conflicts(attr, c, v)))
            {
                return Err(error(
                    ApplyError::ATTRIBUTE_OR_VALUE_EXISTS,
                    attr,
                    format!("value {} already exists", quote(v)),
                ));
            }
            let mut next = current.to_vec();
            next.extend(m.values.iter().cloned());
            state.set(attr, next);
        }
        ModOp::Delete => {
            if !state.is_present(attr) {
                return Err(error(
                    ApplyError::NO_SUCH_ATTRIBUTE,
                    attr,
                    "no such attribute for delete".into(),
                ));
            }
            let mut next = state.get(attr).to_vec();
            if !m.values.is_empty() {
                for v in &m.values {
                    let position = next
                        .iter()
                        .position(|c| values_match(attr, c, v))
                        .ok_or_else(|| {
                            error(
                                ApplyError::NO_SUCH_ATTRIBUTE,
                                attr,
                                format!("no matching value {} to delete", quote(v)),
                            )
                        })?;
                    next.remove(position);
                }
            } else {
                next.clear();
            }
            state.set(attr, next);
        }
        ModOp::Replace => {
            check_syntax(attr, &m.values)?;
            if !attr.is_multi_valued() && m.values.len() > 1 {
                return Err(error(
                    ApplyError::ATTRIBUTE_OR_VALUE_EXISTS,
                    attr,
                    "single-valued attribute given more than one value".into(),
                ));
            }
            check_no_repeats(attr, &m.values)?;
            state.set(attr, m.values.clone());
        }
    }
    Ok(())
}

fn check_no_repeats(attr: ManagedAttribute, values: &[String]) -> Result<(), ApplyError> {
    for (i, v) in values.iter().enumerate() {
        if values.iter().skip(i + 1).any(|w| add_conflicts(attr, v, w)) {
            return Err(error(
                ApplyError::ATTRIBUTE_OR_VALUE_EXISTS,
                attr,
                format!("value {} given twice", quote(v)),
            ));
        }
    }
    Ok(())
}

fn check_syntax(attr: ManagedAttribute, values: &[String]) -> Result<(), ApplyError> {
    for v in values {
        if v.is_empty() {
            return Err(error(
                ApplyError::INVALID_ATTRIBUTE_SYNTAX,
                attr,
                "empty value".into(),
            ));
        }
        let valid = match attr.syntax() {
            AttributeSyntax::UnicodeString => {
                if let Some(upper) = attr.range_upper() {
                    if utf16_len(v) > upper {
                        return Err(error(
                            ApplyError::CONSTRAINT_VIOLATION,
                            attr,
                            format!(
                                "value of {} UTF-16 units exceeds rangeUpper {upper}",
                                utf16_len(v)
                            ),
                        ));
                    }
                }
                true
            }
            AttributeSyntax::LargeInteger => v.parse::<i64>().is_ok(),
            AttributeSyntax::Integer => v.parse::<i32>().is_ok(),
            AttributeSyntax::Boolean => v == "TRUE" || v == "FALSE",
        };
        if !valid {
            return Err(error(
                ApplyError::INVALID_ATTRIBUTE_SYNTAX,
                attr,
                format!("invalid value {}", quote(v)),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ManagedAttribute::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn state(pairs: &[(ManagedAttribute, &[&str])]) -> AdValues {
        let mut out = AdValues::new();
        for (a, v) in pairs {
            out.set(*a, s(v));
        }
        out
    }

    fn add(a: ManagedAttribute, v: &[&str]) -> Modification {
        Modification::add(a, s(v))
    }

    fn del(a: ManagedAttribute, v: &[&str]) -> Modification {
        Modification::delete(a, s(v))
    }

    fn replace(a: ManagedAttribute, v: &[&str]) -> Modification {
        Modification {
            attribute: a,
            op: ModOp::Replace,
            values: s(v),
        }
    }

    fn code(result: Result<AdValues, ApplyError>) -> u32 {
        result.err().map(|e| e.code).unwrap_or(0)
    }

    #[test]
    fn optimistic_single_valued_change_succeeds_when_old_matches() {
        let before = state(&[(ExtensionAttribute3, &["old"])]);
        let after = before
            .apply(&[
                del(ExtensionAttribute3, &["old"]),
                add(ExtensionAttribute3, &["new"]),
            ])
            .unwrap();
        assert_eq!(after.get(ExtensionAttribute3), ["new"]);
    }

    #[test]
    fn stale_delete_fails_with_16_and_writes_nothing() {
        let before = state(&[(ExtensionAttribute3, &["changed on-prem"])]);
        let result = before.apply(&[
            del(ExtensionAttribute3, &["old"]),
            add(ExtensionAttribute3, &["new"]),
        ]);
        assert_eq!(code(result), ApplyError::NO_SUCH_ATTRIBUTE);
    }

    #[test]
    fn delete_of_absent_attribute_fails_with_16() {
        assert_eq!(code(AdValues::new().apply(&[del(Mail, &[])])), 16);
        assert_eq!(code(AdValues::new().apply(&[del(Mail, &["a@b.c"])])), 16);
    }

    #[test]
    fn delete_without_values_removes_the_whole_attribute() {
        let before = state(&[(ProxyAddresses, &["SMTP:a@b.c", "smtp:x@b.c"])]);
        let after = before.apply(&[del(ProxyAddresses, &[])]).unwrap();
        assert!(!after.is_present(ProxyAddresses));
    }

    #[test]
    fn delete_matches_case_insensitively() {
        let before = state(&[
            (ProxyAddresses, &["SMTP:A@B.C", "smtp:x@b.c"]),
            (ExtensionAttribute1, &["Hello"]),
        ]);
        let after = before
            .apply(&[
                del(ProxyAddresses, &["smtp:a@b.c"]),
                del(ExtensionAttribute1, &["HELLO"]),
            ])
            .unwrap();
        assert_eq!(after.get(ProxyAddresses), ["smtp:x@b.c"]);
        assert!(!after.is_present(ExtensionAttribute1));
    }

    #[test]
    fn add_of_a_present_value_fails_with_20() {
        let before = state(&[(MsExchExtensionCustomAttribute1, &["Blue"])]);
        assert_eq!(
            code(before.apply(&[add(MsExchExtensionCustomAttribute1, &["blue"])])),
            20
        );
        assert_eq!(
            code(before.apply(&[add(MsExchExtensionCustomAttribute1, &["red", "RED"])])),
            20
        );
    }

    #[test]
    fn proxy_address_add_check_is_case_sensitive_like_samba() {
        let before = state(&[(ProxyAddresses, &["SMTP:a@b.c"])]);
        assert_eq!(
            code(before.apply(&[add(ProxyAddresses, &["SMTP:a@b.c"])])),
            20
        );
        let after = before
            .apply(&[add(ProxyAddresses, &["smtp:a@b.c"])])
            .unwrap();
        assert_eq!(after.get(ProxyAddresses).len(), 2);
    }

    #[test]
    fn second_value_on_single_valued_attribute_fails_with_20() {
        let before = state(&[(Mail, &["a@b.c"])]);
        assert_eq!(code(before.apply(&[add(Mail, &["x@b.c"])])), 20);
        assert_eq!(
            code(AdValues::new().apply(&[add(Mail, &["a@b.c", "x@b.c"])])),
            20
        );
        assert_eq!(
            code(AdValues::new().apply(&[replace(Mail, &["a@b.c", "x@b.c"])])),
            20
        );
    }

    #[test]
    fn the_request_is_atomic() {
        let before = state(&[(ExtensionAttribute1, &["keep"])]);
        let result = before.apply(&[
            add(ExtensionAttribute2, &["new"]),
            del(ExtensionAttribute3, &["missing"]),
        ]);
        assert_eq!(code(result), 16);
        assert_eq!(before.get(ExtensionAttribute2), [] as [String; 0]);
    }

    #[test]
    fn replace_sets_or_clears() {
        let before = state(&[(ProxyAddresses, &["SMTP:a@b.c"])]);
        let after = before
            .apply(&[replace(ProxyAddresses, &["SMTP:x@b.c", "smtp:y@b.c"])])
            .unwrap();
        assert_eq!(after.get(ProxyAddresses), ["SMTP:x@b.c", "smtp:y@b.c"]);
        let cleared = after
            .apply(&[replace(ProxyAddresses, &[]), replace(Mail, &[])])
            .unwrap();
        assert!(cleared.is_empty());
    }

    #[test]
    fn syntax_and_range_violations_are_refused() {
        assert_eq!(code(AdValues::new().apply(&[add(Mail, &[])])), 19);
        assert_eq!(code(AdValues::new().apply(&[add(Mail, &[""])])), 21);
        assert_eq!(
            code(AdValues::new().apply(&[add(MsExchRecipientTypeDetails, &["lots"])])),
            21
        );
        assert_eq!(
            code(AdValues::new().apply(&[add(MsExchRecipientDisplayType, &["2147483648"])])),
            21
        );
        assert_eq!(
            code(AdValues::new().apply(&[add(MsExchHideFromAddressLists, &["true"])])),
            21
        );
        let at_limit = "x".repeat(1024);
        let over = "x".repeat(1025);
        assert!(AdValues::new()
            .apply(&[add(ExtensionAttribute1, &[&at_limit])])
            .is_ok());
        assert_eq!(
            code(AdValues::new().apply(&[add(ExtensionAttribute1, &[&over])])),
            19
        );
    }

    #[test]
    fn integers_match_numerically_on_delete() {
        let before = state(&[(MsExchRecipientDisplayType, &["-2147483642"])]);
        let after = before
            .apply(&[del(MsExchRecipientDisplayType, &["-02147483642"])])
            .unwrap();
        assert!(after.is_empty());
    }
}

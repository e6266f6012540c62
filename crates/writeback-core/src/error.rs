//! The crate's errors: one enum, [`CoreError`], wrapping the two structured errors callers
//! inspect field by field ([`ValidationError`] for a cloud record that must not be written,
//! [`ApplyError`] for a modification AD would refuse).

use crate::attribute::ManagedAttribute;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every error this crate returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The cloud record breaks a rule; nothing is planned for that mailbox.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A modification list that AD would refuse (simulated).
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A modification names an attribute outside [`crate::WRITABLE_ATTRIBUTES`].
    #[error(
        "refusing to write attribute '{attribute}': it is not one of the attributes writeback owns"
    )]
    NotWritable { attribute: String },
}

/// Which rule a cloud record broke. Serialised in snake_case (`"malformed_address"`), the
/// form the data-driven test cases and JSON reports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// proxyAddresses must hold exactly one `SMTP:` value (Exchange's primary address).
    ExactlyOnePrimarySmtp,
    /// A value is not `TYPE:address`, or an SMTP address is not well-formed.
    MalformedAddress,
    /// A non-SMTP proxy address has nothing after its `TYPE:` prefix.
    EmptyAddress,
    /// Two proxy addresses are the same address under Exchange's comparison.
    DuplicateAddress,
    /// `WindowsEmailAddress` differs from the primary SMTP address.
    PrimarySmtpMismatch,
    /// A value exceeds the attribute's range upper bound (UTF-16 code units).
    TooLong,
    /// A value contains a control character (including NUL).
    ControlCharacter,
    /// A custom attribute key outside "1".."15" or extension key outside "1".."5".
    UnknownKey,
    /// A recipient type writeback has no remote-mailbox mapping for.
    UnknownRecipientType,
    /// A multi-valued attribute lists the same value twice (AD matching is case-insensitive).
    DuplicateValue,
}

impl Rule {
    /// A sentence an administrator can act on.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::ExactlyOnePrimarySmtp => "there must be exactly one primary SMTP address (SMTP:)",
            Rule::MalformedAddress => "malformed address",
            Rule::EmptyAddress => "address is empty after its type prefix",
            Rule::DuplicateAddress => "the same address appears more than once",
            Rule::PrimarySmtpMismatch => {
                "WindowsEmailAddress does not match the primary SMTP address"
            }
            Rule::TooLong => "value is longer than Active Directory allows",
            Rule::ControlCharacter => "value contains a control character",
            Rule::UnknownKey => "unknown attribute number",
            Rule::UnknownRecipientType => "recipient type cannot be written back",
            Rule::DuplicateValue => "the same value appears more than once",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A cloud record that must not be written back, naming the attribute and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{attribute}: {rule}: {detail}")]
pub struct ValidationError {
    /// The LDAP attribute name (or the record field when no attribute exists, e.g. an
    /// unknown custom attribute key).
    pub attribute: String,
    pub rule: Rule,
    /// What exactly was wrong, with the offending value quoted (escaped, shortened).
    pub detail: String,
}

impl ValidationError {
    pub(crate) fn new(attribute: impl Into<String>, rule: Rule, detail: impl Into<String>) -> Self {
        ValidationError {
            attribute: attribute.into(),
            rule,
            detail: detail.into(),
        }
    }
}

/// An LDAP modify that AD (and Samba) would refuse, with the result code it would return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LDAP result {code} on {attribute}: {message}")]
pub struct ApplyError {
    /// The LDAP result code (RFC 4511), e.g. [`ApplyError::NO_SUCH_ATTRIBUTE`].
    pub code: u32,
    pub attribute: ManagedAttribute,
    pub message: String,
}

impl ApplyError {
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    pub const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
    pub const INVALID_ATTRIBUTE_SYNTAX: u32 = 21;
}

/// Quotes a value for an error message: escaped so control characters cannot break a log
/// line, and shortened so one huge value does not drown the message.
pub(crate) fn quote(value: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_control_characters_and_shortens() {
        assert_eq!(quote("a\0b\n"), "'a\\0b\\n'");
        let long = "x".repeat(100);
        let quoted = quote(&long);
        assert!(quoted.ends_with("...'"));
        assert_eq!(quoted.len(), 1 + 80 + 3 + 1);
    }

    #[test]
    fn validation_error_display_names_attribute_rule_and_detail() {
        let err = ValidationError::new(
            "proxyAddresses",
            Rule::MalformedAddress,
            "value 'smtp:foo' has no '@'",
        );
        assert_eq!(
            err.to_string(),
            "proxyAddresses: malformed address: value 'smtp:foo' has no '@'"
        );
    }
}

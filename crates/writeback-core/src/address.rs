//! Proxy addresses (`TYPE:address`) and the SMTP address check.
//!
//! Exchange compares proxy addresses case-insensitively (type and address), while AD stores
//! them as given. The case of the prefix is not noise, though: an upper-case prefix
//! (`SMTP:`, `SIP:`, `X500:`) marks the primary address of that type, lower case a secondary
//! one. So two values are "the same address" when type and address match ignoring case,
//! and "the same value" only when, in addition, both are primary or both secondary; a
//! primary/secondary change is a change to write, a change of address case alone is not.
//!
//! The SMTP check follows RFC 5321's dot-atom form: `local@domain`, exactly one `@`,
//! non-empty parts, local part ≤ 64 octets, domain ≤ 255 octets made of ≥ 2 labels of
//! 1..=63 octets (letters, digits, inner hyphens), whole address ≤ 254 octets, no spaces or
//! control characters. Quoted local parts (`"a b"@example.com`) and domain literals
//! (`user@[192.0.2.1]`) are not supported: Exchange does not use them for recipients.
//! Non-ASCII characters are accepted in both parts (RFC 6531 addresses, IDN U-labels).

use crate::normalise::{eq_ignore_case, fold_case};
use std::fmt;

/// One `proxyAddresses` value split at its first colon.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyAddress {
    /// The type prefix as written (`SMTP`, `smtp`, `X500`, ...), without the colon.
    pub prefix: String,
    /// Everything after the first colon.
    pub address: String,
}

/// Why a proxy address or SMTP address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressProblem {
    MissingPrefix,
    InvalidPrefix,
    NoAt,
    MultipleAt,
    EmptyLocalPart,
    EmptyDomain,
    LocalPartTooLong,
    DomainTooLong,
    AddressTooLong,
    InvalidLocalPartCharacter,
    MisplacedDot,
    DomainLiteralUnsupported,
    InvalidDomainLabel,
    SingleLabelDomain,
    NumericTopLevelDomain,
}

impl AddressProblem {
    pub fn describe(self) -> &'static str {
        use AddressProblem::*;
        match self {
            MissingPrefix => "has no 'TYPE:' prefix",
            InvalidPrefix => "has a type prefix that is not made of letters and digits",
            NoAt => "has no '@'",
            MultipleAt => "has more than one '@' (quoted local parts are not supported)",
            EmptyLocalPart => "has nothing before the '@'",
            EmptyDomain => "has nothing after the '@'",
            LocalPartTooLong => "has a local part longer than 64 octets",
            DomainTooLong => "has a domain longer than 255 octets",
            AddressTooLong => "is longer than 254 octets",
            InvalidLocalPartCharacter => "has a space or a character not allowed before the '@'",
            MisplacedDot => "has a leading, trailing or doubled '.' before the '@'",
            DomainLiteralUnsupported => "uses a domain literal ([...]), which is not supported",
            InvalidDomainLabel => {
                "has a domain label that is empty, longer than 63 octets, starts or ends with '-', or holds a character other than letters, digits and '-'"
            }
            SingleLabelDomain => "has a domain without a dot",
            NumericTopLevelDomain => "has an all-numeric top-level domain",
        }
    }
}

impl fmt::Display for AddressProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl ProxyAddress {
    /// Splits `TYPE:address`. The prefix must be non-empty ASCII letters and digits; the
    /// address may be anything (including empty: the validator decides per type).
    pub fn parse(value: &str) -> Result<ProxyAddress, AddressProblem> {
        ProxyRef::parse(value).map(ProxyRef::to_proxy_address)
    }

    /// Primary address of its type: the prefix has no lower-case letter (`SMTP`, `X500`).
    pub fn is_primary(&self) -> bool {
        !self.prefix.chars().any(|c| c.is_ascii_lowercase())
    }

    /// The address type in canonical upper case (`SMTP` for both `SMTP:` and `smtp:`).
    pub fn address_type(&self) -> String {
        self.prefix.to_ascii_uppercase()
    }

    pub fn is_smtp(&self) -> bool {
        self.prefix.eq_ignore_ascii_case("smtp")
    }

    /// Whether the type is one of `types` (compared case-insensitively).
    pub fn is_type_in(&self, types: &[String]) -> bool {
        types.iter().any(|t| t.eq_ignore_ascii_case(&self.prefix))
    }

    /// Exchange's comparison: same type and same address, both ignoring case. Primary and
    /// secondary forms of one address are the same address.
    pub fn same_address(&self, other: &ProxyAddress) -> bool {
        self.prefix.eq_ignore_ascii_case(&other.prefix)
            && eq_ignore_case(&self.address, &other.address)
    }

    /// Same address and same primary/secondary role: nothing to write between the two.
    pub fn same_value(&self, other: &ProxyAddress) -> bool {
        self.same_address(other) && self.is_primary() == other.is_primary()
    }

    /// A key under which [`ProxyAddress::same_address`] values collide.
    pub fn identity_key(&self) -> (String, String) {
        (self.address_type(), fold_case(&self.address))
    }
}

/// A proxy address borrowed from its value: [`ProxyAddress`] without the two allocations,
/// for the planner's hot path. Same parsing, same comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxyRef<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) address: &'a str,
    primary: bool,
}

impl<'a> ProxyRef<'a> {
    /// See [`ProxyAddress::parse`].
    pub(crate) fn parse(value: &'a str) -> Result<ProxyRef<'a>, AddressProblem> {
        // A byte search: prefixes are a few bytes, where `split_once`'s searcher costs more
        // than it saves. ':' is ASCII, so the split is on a character boundary.
        let colon = value
            .bytes()
            .position(|b| b == b':')
            .ok_or(AddressProblem::MissingPrefix)?;
        let (prefix, colon_address) = value
            .split_at_checked(colon)
            .ok_or(AddressProblem::MissingPrefix)?;
        let address = colon_address.strip_prefix(':').unwrap_or(colon_address);
        if prefix.is_empty() {
            return Err(AddressProblem::MissingPrefix);
        }
        if !prefix.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(AddressProblem::InvalidPrefix);
        }
        Ok(ProxyRef {
            prefix,
            address,
            primary: !prefix.bytes().any(|c| c.is_ascii_lowercase()),
        })
    }

    /// See [`ProxyAddress::is_primary`].
    pub(crate) fn is_primary(&self) -> bool {
        self.primary
    }

    pub(crate) fn is_smtp(&self) -> bool {
        self.prefix.eq_ignore_ascii_case("smtp")
    }

    /// See [`ProxyAddress::same_address`].
    pub(crate) fn same_address(&self, other: &ProxyRef<'_>) -> bool {
        self.prefix.eq_ignore_ascii_case(other.prefix)
            && eq_ignore_case(self.address, other.address)
    }

    /// See [`ProxyAddress::same_value`].
    pub(crate) fn same_value(&self, other: &ProxyRef<'_>) -> bool {
        self.primary == other.primary && self.same_address(other)
    }

    /// See [`ProxyAddress::identity_key`].
    pub(crate) fn identity_key(&self) -> (String, String) {
        (self.prefix.to_ascii_uppercase(), fold_case(self.address))
    }

    pub(crate) fn to_proxy_address(self) -> ProxyAddress {
        ProxyAddress {
            prefix: self.prefix.to_owned(),
            address: self.address.to_owned(),
        }
    }
}

impl fmt::Display for ProxyRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.prefix, self.address)
    }
}

impl fmt::Display for ProxyAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.prefix, self.address)
    }
}

/// Checks an SMTP address (`local@domain`) as described in the module doc.
pub fn check_smtp_address(address: &str) -> Result<(), AddressProblem> {
    if is_plain_ascii_address(address) {
        return Ok(());
    }
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

const MAX_ADDRESS_OCTETS: usize = 254;
const MAX_LOCAL_OCTETS: usize = 64;
const MAX_DOMAIN_OCTETS: usize = 255;
const MAX_LABEL_OCTETS: usize = 63;

/// RFC 5322 atext, the ASCII characters a dot-atom local part is made of (besides '.').
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// One pass over the bytes that accepts exactly the all-ASCII addresses
/// [`check_smtp_address`] accepts, nearly every address there is. Anything else (non-ASCII
/// included) answers false and goes through the full check, which names the problem.
fn is_plain_ascii_address(address: &str) -> bool {
    let bytes = address.as_bytes();
    let Some(at) = bytes.iter().position(|b| *b == b'@') else {
        return false;
    };
    let (local, at_domain) = bytes.split_at(at);
    let domain = at_domain.get(1..).unwrap_or_default();
    if bytes.len() > MAX_ADDRESS_OCTETS
        || local.is_empty()
        || local.len() > MAX_LOCAL_OCTETS
        || domain.is_empty()
        || domain.len() > MAX_DOMAIN_OCTETS
    {
        return false;
    }
    // Local part: atext atoms joined by single dots.
    let mut after_dot = true;
    for &b in local {
        if b == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if is_atext(b) {
            after_dot = false;
        } else {
            return false;
        }
    }
    if after_dot {
        return false;
    }
    // Domain: two or more labels of letters, digits and inner hyphens; the last not numeric.
    let mut labels = 0usize;
    let mut label_len = 0usize;
    let mut label_numeric = true;
    let mut previous = b'.';
    for &b in domain {
        if b == b'.' {
            if label_len == 0 || previous == b'-' {
                return false;
            }
            labels += 1;
            label_len = 0;
            label_numeric = true;
        } else if b.is_ascii_alphanumeric() || b == b'-' {
            if label_len == 0 && b == b'-' {
                return false;
            }
            label_len += 1;
            if label_len > MAX_LABEL_OCTETS {
                return false;
            }
            label_numeric &= b.is_ascii_digit();
        } else {
            return false;
        }
        previous = b;
    }
    if label_len == 0 || previous == b'-' {
        return false;
    }
    labels + 1 >= 2 && !label_numeric
}

fn check_local_part(local: &str) -> Result<(), AddressProblem> {
    // RFC 5322 atext, plus any non-ASCII character that is not a space or control (RFC 6531).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pa(s: &str) -> ProxyAddress {
        ProxyAddress::parse(s).unwrap()
    }

    #[test]
    fn parse_splits_at_the_first_colon() {
        let x = pa("X500:/o=Org/ou=Exchange:Admin/cn=Recipients");
        assert_eq!(x.prefix, "X500");
        assert_eq!(x.address, "/o=Org/ou=Exchange:Admin/cn=Recipients");
        assert_eq!(pa("smtp:").address, "");
        assert_eq!(pa("SMTP:a@b.c").to_string(), "SMTP:a@b.c");
    }

    #[test]
    fn parse_rejects_missing_or_odd_prefixes() {
        assert_eq!(
            ProxyAddress::parse("a@b.c"),
            Err(AddressProblem::MissingPrefix)
        );
        assert_eq!(
            ProxyAddress::parse(":a@b.c"),
            Err(AddressProblem::MissingPrefix)
        );
        assert_eq!(
            ProxyAddress::parse("sm tp:a@b.c"),
            Err(AddressProblem::InvalidPrefix)
        );
        assert_eq!(
            ProxyAddress::parse("smtp\u{e9}:a@b.c"),
            Err(AddressProblem::InvalidPrefix)
        );
    }

    #[test]
    fn primary_is_an_all_upper_case_prefix() {
        assert!(pa("SMTP:a@b.c").is_primary());
        assert!(!pa("smtp:a@b.c").is_primary());
        assert!(!pa("Smtp:a@b.c").is_primary());
        assert!(pa("X500:/o=x").is_primary());
        assert!(!pa("x500:/o=x").is_primary());
        assert!(pa("SIP:a@b.c").is_primary());
    }

    #[test]
    fn exchange_comparison_ignores_case_but_keeps_the_role() {
        let primary = pa("SMTP:John@Example.com");
        let secondary_lower = pa("smtp:john@example.com");
        let primary_lower = pa("SMTP:john@example.com");
        assert!(primary.same_address(&secondary_lower));
        assert!(
            !primary.same_value(&secondary_lower),
            "primary/secondary change is a change"
        );
        assert!(
            primary.same_value(&primary_lower),
            "address case alone is not a change"
        );
        assert!(!pa("SIP:a@b.c").same_address(&pa("SMTP:a@b.c")));
        assert_eq!(primary.identity_key(), secondary_lower.identity_key());
        assert_eq!(primary.address_type(), "SMTP");
        assert!(secondary_lower.is_smtp());
        assert!(pa("spo:x").is_type_in(&["SPO".to_string()]));
    }

    #[test]
    fn well_formed_smtp_addresses_pass() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.com",
            "o'brien@example.ie",
            "x_y-z@a-b.example",
            "jos\u{e9}@b\u{fc}cher.example",
            "a@xn--bcher-kva.example",
        ] {
            assert_eq!(check_smtp_address(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn malformed_smtp_addresses_fail_with_the_reason() {
        use AddressProblem::*;
        let cases = [
            ("foo", NoAt),
            ("a@b@c.d", MultipleAt),
            ("@b.c", EmptyLocalPart),
            ("a@", EmptyDomain),
            ("a b@c.d", InvalidLocalPartCharacter),
            ("a@b c.d", InvalidDomainLabel),
            (".a@b.c", MisplacedDot),
            ("a.@b.c", MisplacedDot),
            ("a..b@c.d", MisplacedDot),
            ("a@[192.0.2.1]", DomainLiteralUnsupported),
            ("a@-b.c", InvalidDomainLabel),
            ("a@b-.c", InvalidDomainLabel),
            ("a@b..c", InvalidDomainLabel),
            ("a@b_c.d", InvalidDomainLabel),
            ("a@localhost", SingleLabelDomain),
            ("a@1.2.3.4", NumericTopLevelDomain),
            ("\"a\"@b.c", InvalidLocalPartCharacter),
        ];
        for (input, expected) in cases {
            assert_eq!(check_smtp_address(input), Err(expected), "{input}");
        }
    }

    #[test]
    fn smtp_length_limits_are_enforced_at_their_boundaries() {
        let local64 = "a".repeat(64);
        assert_eq!(check_smtp_address(&format!("{local64}@b.c")), Ok(()));
        assert_eq!(
            check_smtp_address(&format!("a{local64}@b.c")),
            Err(AddressProblem::LocalPartTooLong)
        );
        let label63 = "d".repeat(63);
        assert_eq!(check_smtp_address(&format!("a@{label63}.c")), Ok(()));
        assert_eq!(
            check_smtp_address(&format!("a@d{label63}.c")),
            Err(AddressProblem::InvalidDomainLabel)
        );
        // 1 + 1 + 252 = 254 octets: at the limit.
        let domain252 = format!(
            "{}.{}.{}.{}",
            "d".repeat(63),
            "d".repeat(63),
            "d".repeat(63),
            "d".repeat(60)
        );
        assert_eq!(domain252.len(), 252);
        assert_eq!(check_smtp_address(&format!("a@{domain252}")), Ok(()));
        assert_eq!(
            check_smtp_address(&format!("ab@{domain252}")),
            Err(AddressProblem::AddressTooLong)
        );
    }
}

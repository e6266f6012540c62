//! String normalisation and the comparisons the rest of the crate shares.
//!
//! Every string from the cloud is put in Unicode NFC before anything else looks at it:
//! Exchange Online and AD both store what they are given, so "é" as one code point and as
//! "e" + combining accent would otherwise compare unequal and be rewritten on every run.
//!
//! Lengths are counted in UTF-16 code units because that is how AD stores Unicode strings
//! and what its rangeUpper bounds count (a character outside the BMP counts twice).
//!
//! Case-insensitive comparison uses Unicode simple lower-casing, char by char; it is the
//! one definition used by the validator, the planner and the apply simulator, so they
//! always agree with each other.

use crate::mailbox::Mailbox;
use std::borrow::Cow;
use unicode_normalization::UnicodeNormalization;

/// The string in Unicode Normalization Form C.
pub fn nfc(value: &str) -> String {
    nfc_cow(value).into_owned()
}

/// The string in Unicode Normalization Form C, borrowed when it already is (ASCII always
/// is, and so is nearly every string the cloud sends), so the common case copies nothing.
pub fn nfc_cow(value: &str) -> Cow<'_, str> {
    if is_nfc(value) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.nfc().collect())
    }
}

/// Whether the string is already in NFC, i.e. [`nfc`] would return it unchanged.
pub fn is_nfc(value: &str) -> bool {
    value.is_ascii() || unicode_normalization::is_nfc(value)
}

/// Length as AD counts it: UTF-16 code units.
pub fn utf16_len(value: &str) -> usize {
    if value.is_ascii() {
        // One code unit per byte.
        value.len()
    } else {
        value.encode_utf16().count()
    }
}

/// Case-insensitive equality (Unicode lower-casing).
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    // Only when BOTH are ASCII: some non-ASCII characters lower-case to ASCII (KELVIN SIGN
    // to 'k'), so one ASCII side says nothing about the other.
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    }
}

/// The key under which case-insensitively equal strings collide.
pub fn fold_case(value: &str) -> String {
    if value.is_ascii() {
        value.to_ascii_lowercase()
    } else {
        value.chars().flat_map(char::to_lowercase).collect()
    }
}

/// The first control character (Unicode category Cc, which includes NUL, tab, CR, LF).
pub fn first_control_char(value: &str) -> Option<char> {
    if value.is_ascii() {
        // In ASCII, category Cc is exactly U+0000..=U+001F and U+007F. A branch-free pass
        // first (it vectorises); the search runs only when there is one to find.
        let bytes = value.as_bytes();
        if !bytes
            .iter()
            .fold(false, |found, b| found | b.is_ascii_control())
        {
            return None;
        }
        bytes
            .iter()
            .copied()
            .find(u8::is_ascii_control)
            .map(char::from)
    } else {
        value.chars().find(|c| c.is_control())
    }
}

/// Whether every string [`normalise_mailbox`] normalises is already in NFC, so the
/// normalised copy would equal the record.
pub fn is_normalised(mailbox: &Mailbox) -> bool {
    mailbox.primary_smtp.as_deref().is_none_or(is_nfc)
        && mailbox.proxy_addresses.iter().all(|v| is_nfc(v))
        && mailbox
            .custom_attributes
            .iter()
            .all(|(k, v)| is_nfc(k) && is_nfc(v))
        && mailbox
            .extension_custom_attributes
            .iter()
            .all(|(k, vs)| is_nfc(k) && vs.iter().all(|v| is_nfc(v)))
        && mailbox.recipient_type_details.as_deref().is_none_or(is_nfc)
}

/// A copy of the record with every string value (and key) in NFC. Nothing else changes:
/// clearing conventions and validation are the validator's business.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfc_composes_combining_sequences() {
        assert_eq!(nfc("Cafe\u{301}"), "Caf\u{e9}");
        assert_eq!(nfc("already \u{e9}"), "already \u{e9}");
    }

    #[test]
    fn utf16_len_counts_astral_characters_twice() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("\u{e9}"), 1);
        assert_eq!(utf16_len("\u{1F600}"), 2);
    }

    #[test]
    fn case_comparison_is_unicode_aware() {
        assert!(eq_ignore_case("ÄBC@Example.COM", "äbc@example.com"));
        assert!(!eq_ignore_case("abc", "abd"));
        assert!(!eq_ignore_case("abc", "abcd"));
        assert_eq!(fold_case("SMTP:A@B"), "smtp:a@b");
    }

    #[test]
    fn control_characters_are_found() {
        assert_eq!(first_control_char("ok"), None);
        assert_eq!(first_control_char("a\0b"), Some('\0'));
        assert_eq!(first_control_char("a\tb"), Some('\t'));
        assert_eq!(first_control_char("a\u{85}b"), Some('\u{85}'));
    }

    #[test]
    fn normalise_mailbox_touches_every_string() {
        let mut mailbox = Mailbox {
            cloud_id: "id".into(),
            ..Mailbox::default()
        };
        mailbox.primary_smtp = Some("jose\u{301}@example.com".into());
        mailbox.proxy_addresses = vec!["SMTP:jose\u{301}@example.com".into()];
        mailbox
            .custom_attributes
            .insert("1".into(), "Cafe\u{301}".into());
        mailbox
            .extension_custom_attributes
            .insert("2".into(), vec!["Cafe\u{301}".into()]);
        let n = normalise_mailbox(&mailbox);
        assert_eq!(n.primary_smtp.as_deref(), Some("jos\u{e9}@example.com"));
        assert_eq!(
            n.proxy_addresses,
            vec!["SMTP:jos\u{e9}@example.com".to_string()]
        );
        assert_eq!(
            n.custom_attributes.get("1").map(String::as_str),
            Some("Caf\u{e9}")
        );
        assert_eq!(
            n.extension_custom_attributes.get("2"),
            Some(&vec!["Caf\u{e9}".to_string()])
        );
    }
}

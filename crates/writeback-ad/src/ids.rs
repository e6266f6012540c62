//! AD identifiers: objectGUID, objectSid, mS-DS-ConsistencyGuid and the cloud's
//! `onPremisesImmutableId`, converted between their binary and text forms.
//!
//! Every parser here takes untrusted input (from the cloud or the wire) and fails with an
//! error, never a panic.

use crate::error::AdError;
use base64::Engine;
use std::fmt::Write;

/// Decodes `onPremisesImmutableId` (base64 of the 16 GUID bytes, as AD stores them).
pub fn immutable_id_to_bytes(immutable_id: &str) -> Result<[u8; 16], AdError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(immutable_id.trim())
        .map_err(|e| AdError::InvalidKey(format!("immutable id {immutable_id:?} is not base64: {e}")))?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
        AdError::InvalidKey(format!(
            "immutable id {immutable_id:?} decodes to {} bytes, not 16",
            bytes.len()
        ))
    })
}

/// The base64 form Entra Connect writes to `onPremisesImmutableId`.
pub fn bytes_to_immutable_id(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// objectGUID bytes → the text form AD uses in `<GUID=...>` DNs (first three fields
/// little-endian, as Microsoft's GUID layout prescribes).
pub fn guid_to_string(bytes: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes_le(*bytes).hyphenated().to_string()
}

/// Text GUID (`00112233-4455-...`, also braced or without hyphens) → objectGUID bytes in AD's
/// order; `None` when the text is not a GUID.
pub fn guid_from_string(text: &str) -> Option<[u8; 16]> {
    uuid::Uuid::parse_str(text.trim()).ok().map(|u| u.to_bytes_le())
}

/// The DN form that addresses an object by objectGUID, surviving renames and moves.
pub fn guid_dn(bytes: &[u8; 16]) -> String {
    format!("<GUID={}>", guid_to_string(bytes))
}

/// Binary objectSid → `S-1-5-21-...`.
pub fn sid_to_string(bytes: &[u8]) -> Result<String, AdError> {
    let bad = || AdError::InvalidKey(format!("objectSid of {} bytes is malformed", bytes.len()));
    let (&revision, rest) = bytes.split_first().ok_or_else(bad)?;
    let (&count, rest) = rest.split_first().ok_or_else(bad)?;
    let authority_bytes = rest.get(..6).ok_or_else(bad)?;
    let subs = rest.get(6..).ok_or_else(bad)?;
    if subs.len() != usize::from(count) * 4 || count > 15 {
        return Err(bad());
    }
    let authority = authority_bytes
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut text = format!("S-{revision}-{authority}");
    for chunk in subs.chunks_exact(4) {
        let value = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let _ = write!(text, "-{value}");
    }
    Ok(text)
}

/// `S-1-5-21-...` → binary objectSid (for an escaped filter value).
pub fn sid_from_string(text: &str) -> Result<Vec<u8>, AdError> {
    let bad = |why: &str| AdError::InvalidKey(format!("SID {text:?}: {why}"));
    let mut parts = text.trim().split('-');
    if !parts.next().is_some_and(|s| s.eq_ignore_ascii_case("S")) {
        return Err(bad("must start with S-"));
    }
    let revision: u8 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad revision"))?;
    let authority: u64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|a| *a < (1u64 << 48))
        .ok_or_else(|| bad("bad identifier authority"))?;
    let subs: Vec<u32> = parts
        .map(|s| s.parse::<u32>().map_err(|_| bad("bad sub-authority")))
        .collect::<Result<_, _>>()?;
    if subs.is_empty() || subs.len() > 15 {
        return Err(bad("needs 1 to 15 sub-authorities"));
    }
    let mut out = Vec::with_capacity(8 + subs.len() * 4);
    out.push(revision);
    out.push(u8::try_from(subs.len()).map_err(|_| bad("too many sub-authorities"))?);
    out.extend_from_slice(&authority.to_be_bytes()[2..]);
    for sub in subs {
        out.extend_from_slice(&sub.to_le_bytes());
    }
    Ok(out)
}

/// RFC 4515 escaping of a binary value: every byte as `\xx`, which AD accepts for
/// objectGUID, objectSid and mS-DS-ConsistencyGuid filters.
pub fn escape_filter_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        let _ = write!(out, "\\{b:02x}");
    }
    out
}

/// RFC 4515 escaping of a string filter value.
pub fn escape_filter_str(value: &str) -> String {
    ldap3::ldap_escape(value).into_owned()
}

/// RFC 4514 escaping of one RDN value (for DNs built from untrusted data).
pub fn escape_rdn_value(value: &str) -> String {
    ldap3::dn_escape(value).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sid_round_trip_known_value() {
        let text = "S-1-5-21-3623811015-3361044348-30300820-1013";
        let bin = sid_from_string(text).unwrap();
        assert_eq!(bin.len(), 8 + 5 * 4);
        assert_eq!(&bin[..8], &[1, 5, 0, 0, 0, 0, 0, 5]);
        assert_eq!(sid_to_string(&bin).unwrap(), text);
    }

    #[test]
    fn malformed_sids_are_errors() {
        for bad in ["", "X-1-5", "S-1", "S-1-5", "S-1-5-x", "S-1-281474976710656-1"] {
            assert!(sid_from_string(bad).is_err(), "{bad}");
        }
        assert!(sid_to_string(&[]).is_err());
        assert!(sid_to_string(&[1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0]).is_err());
    }

    #[test]
    fn guid_text_uses_microsoft_byte_order() {
        let bytes = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(guid_to_string(&bytes), "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(guid_from_string("00112233-4455-6677-8899-aabbccddeeff"), Some(bytes));
        assert_eq!(guid_dn(&bytes), "<GUID=00112233-4455-6677-8899-aabbccddeeff>");
        assert_eq!(guid_from_string("nonsense"), None);
    }

    #[test]
    fn immutable_id_must_be_16_bytes_of_base64() {
        let id = bytes_to_immutable_id(&[7u8; 16]);
        assert_eq!(immutable_id_to_bytes(&id).unwrap(), [7u8; 16]);
        assert!(immutable_id_to_bytes("not base64!").is_err());
        assert!(immutable_id_to_bytes(&bytes_to_immutable_id(&[1, 2, 3])).is_err());
    }

    #[test]
    fn filter_escaping_neutralises_metacharacters() {
        assert_eq!(escape_filter_str("a*)(uid=*"), "a\\2a\\29\\28uid=\\2a");
        assert_eq!(escape_filter_bytes(&[0, 0x2a, 0xff]), "\\00\\2a\\ff");
        assert_eq!(escape_rdn_value("Smith, John"), "Smith\\2c John");
    }

    proptest! {
        #[test]
        fn sid_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), text in ".{0,60}") {
            let _ = sid_to_string(&bytes);
            let _ = sid_from_string(&text);
            let _ = immutable_id_to_bytes(&text);
        }

        #[test]
        fn sid_text_round_trips(rev in 0u8..=255, auth in 0u64..(1u64<<48), subs in proptest::collection::vec(any::<u32>(), 1..15)) {
            let mut text = format!("S-{rev}-{auth}");
            for s in &subs { text.push_str(&format!("-{s}")); }
            let bin = sid_from_string(&text).unwrap();
            prop_assert_eq!(sid_to_string(&bin).unwrap(), text);
        }

        #[test]
        fn escaped_filter_values_have_no_metacharacters(value in ".{0,40}") {
            let escaped = escape_filter_str(&value);
            prop_assert!(!escaped.contains('(') && !escaped.contains(')') && !escaped.contains('*') && !escaped.contains('\0'));
        }
    }
}

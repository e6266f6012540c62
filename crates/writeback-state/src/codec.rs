//! Compact binary forms of the records the store and the scope snapshot keep in bulk.
//!
//! A full pass stages a write per planned mailbox and reads every object in scope into a
//! snapshot: millions of rows. Their JSON forms cost about three times the bytes and the CPU
//! of [postcard](https://docs.rs/postcard)'s, and a JSON row of ~4 KB spills into SQLite
//! overflow pages. The public JSON forms of [`Mailbox`] and [`AdValues`] are lenient on input
//! (`null` means "clear") and skip absent fields, which a non-self-describing format cannot
//! express, so these mirrors carry the same data in plain shapes. Strings are borrowed when
//! encoding and owned when decoding (`Cow`), so encoding copies no string.
//!
//! Not a durable interchange format: staged writes live for one cycle and snapshots for one
//! pass, so a change here needs no migration of old rows (the v5 migration drops the stage).

use crate::error::{Result, StateError};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use writeback_core::{AdValues, Anchors, Mailbox, ManagedAttribute, Modification};

type Text<'a> = Cow<'a, str>;

fn text(value: &str) -> Text<'_> {
    Cow::Borrowed(value)
}

fn texts(values: &[String]) -> Vec<Text<'_>> {
    values.iter().map(|v| text(v)).collect()
}

fn owned(values: Vec<Text<'_>>) -> Vec<String> {
    values.into_iter().map(Cow::into_owned).collect()
}

/// [`AdValues`] as (LDAP name, values) pairs. Names rather than numbers, so that a stored
/// value never silently means another attribute if the managed set changes.
#[derive(Debug, Serialize, Deserialize)]
pub struct CompactValues<'a>(#[serde(borrow)] Vec<(Text<'a>, Vec<Text<'a>>)>);

impl<'a> CompactValues<'a> {
    pub fn new(values: &'a AdValues) -> Self {
        CompactValues(
            values
                .iter()
                .map(|(attribute, list)| (text(attribute.ldap_name()), texts(list)))
                .collect(),
        )
    }

    pub fn into_values(self) -> Result<AdValues> {
        let mut out = AdValues::new();
        for (name, list) in self.0 {
            let attribute = ManagedAttribute::from_ldap_name(&name)
                .ok_or_else(|| StateError::corrupt("stored attribute name", &name))?;
            out.set(attribute, owned(list));
        }
        Ok(out)
    }
}

/// [`Mailbox`], field for field.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CompactMailbox<'a> {
    #[serde(borrow)]
    cloud_id: Text<'a>,
    primary_smtp: Option<Text<'a>>,
    proxy_addresses: Vec<Text<'a>>,
    custom_attributes: Vec<(Text<'a>, Text<'a>)>,
    extension_custom_attributes: Vec<(Text<'a>, Vec<Text<'a>>)>,
    hidden_from_address_lists: Option<bool>,
    recipient_type_details: Option<Text<'a>>,
    immutable_id: Option<Text<'a>>,
    sid: Option<Text<'a>>,
    dn: Option<Text<'a>>,
    when_changed_utc: Option<Text<'a>>,
}

impl<'a> CompactMailbox<'a> {
    pub(crate) fn new(m: &'a Mailbox) -> Self {
        CompactMailbox {
            cloud_id: text(&m.cloud_id),
            primary_smtp: m.primary_smtp.as_deref().map(text),
            proxy_addresses: texts(&m.proxy_addresses),
            custom_attributes: m
                .custom_attributes
                .iter()
                .map(|(k, v)| (text(k), text(v)))
                .collect(),
            extension_custom_attributes: m
                .extension_custom_attributes
                .iter()
                .map(|(k, v)| (text(k), texts(v)))
                .collect(),
            hidden_from_address_lists: m.hidden_from_address_lists,
            recipient_type_details: m.recipient_type_details.as_deref().map(text),
            immutable_id: m.anchors.immutable_id.as_deref().map(text),
            sid: m.anchors.sid.as_deref().map(text),
            dn: m.anchors.dn.as_deref().map(text),
            when_changed_utc: m.when_changed_utc.as_deref().map(text),
        }
    }

    pub(crate) fn into_mailbox(self) -> Mailbox {
        let own = |t: Option<Text<'_>>| t.map(Cow::into_owned);
        Mailbox {
            cloud_id: self.cloud_id.into_owned(),
            primary_smtp: own(self.primary_smtp),
            proxy_addresses: owned(self.proxy_addresses),
            custom_attributes: self
                .custom_attributes
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect::<BTreeMap<_, _>>(),
            extension_custom_attributes: self
                .extension_custom_attributes
                .into_iter()
                .map(|(k, v)| (k.into_owned(), owned(v)))
                .collect::<BTreeMap<_, _>>(),
            hidden_from_address_lists: self.hidden_from_address_lists,
            recipient_type_details: own(self.recipient_type_details),
            anchors: Anchors {
                immutable_id: own(self.immutable_id),
                sid: own(self.sid),
                dn: own(self.dn),
            },
            when_changed_utc: own(self.when_changed_utc),
        }
    }
}

/// What a staged write keeps beyond its key columns.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StagedPayload<'a> {
    pub(crate) mods: Cow<'a, [Modification]>,
    #[serde(borrow)]
    pub(crate) before: CompactValues<'a>,
    pub(crate) mailbox: CompactMailbox<'a>,
}

/// postcard bytes of `value`.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value)
        .map_err(|e| StateError::corrupt(what, format!("cannot encode: {e}")))
}

/// A value back from [`encode`]'s bytes.
pub fn decode<'a, T: Deserialize<'a>>(what: &'static str, bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| StateError::corrupt(what, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use writeback_core::ModOp;

    #[test]
    fn a_mailbox_survives_the_round_trip_with_every_field() {
        let mut mailbox = Mailbox {
            cloud_id: "c-1".into(),
            primary_smtp: Some("a@x.test".into()),
            proxy_addresses: vec!["SMTP:a@x.test".into(), "smtp:b@x.test".into()],
            hidden_from_address_lists: Some(true),
            recipient_type_details: Some("UserMailbox".into()),
            anchors: Anchors {
                immutable_id: Some("AAE=".into()),
                sid: None,
                dn: Some("CN=A,DC=x".into()),
            },
            when_changed_utc: Some("2026-01-01T00:00:00Z".into()),
            ..Mailbox::default()
        };
        mailbox.custom_attributes.insert("1".into(), "é".into());
        mailbox
            .extension_custom_attributes
            .insert("2".into(), vec!["p".into(), "q".into()]);
        let bytes = encode("mailbox", &CompactMailbox::new(&mailbox)).unwrap();
        let back: CompactMailbox<'_> = decode("mailbox", &bytes).unwrap();
        assert_eq!(back.into_mailbox(), mailbox);
        let empty = Mailbox::default();
        let bytes = encode("mailbox", &CompactMailbox::new(&empty)).unwrap();
        assert_eq!(
            decode::<CompactMailbox<'_>>("mailbox", &bytes)
                .unwrap()
                .into_mailbox(),
            empty
        );
    }

    #[test]
    fn values_and_modifications_survive_the_round_trip() {
        let mut values = AdValues::new();
        values.set(
            ManagedAttribute::ProxyAddresses,
            vec!["SMTP:a@x.test".into(), "smtp:b@x.test".into()],
        );
        values.set(ManagedAttribute::ExtensionAttribute7, vec!["seven".into()]);
        let mailbox = Mailbox::default();
        let mods = vec![
            Modification::delete(
                ManagedAttribute::ProxyAddresses,
                vec!["smtp:b@x.test".into()],
            ),
            Modification {
                attribute: ManagedAttribute::Mail,
                op: ModOp::Replace,
                values: vec![],
            },
        ];
        let payload = StagedPayload {
            mods: Cow::Borrowed(&mods),
            before: CompactValues::new(&values),
            mailbox: CompactMailbox::new(&mailbox),
        };
        let bytes = encode("staged write", &payload).unwrap();
        let back: StagedPayload<'_> = decode("staged write", &bytes).unwrap();
        assert_eq!(back.mods.into_owned(), mods);
        assert_eq!(back.before.into_values().unwrap(), values);
    }

    #[test]
    fn unreadable_bytes_are_a_corrupt_error_not_a_panic() {
        let mut values = AdValues::new();
        values.set(ManagedAttribute::Mail, vec!["a@x.test".into()]);
        let bytes = encode("values", &CompactValues::new(&values)).unwrap();
        for cut in 0..bytes.len() {
            let result = decode::<CompactValues<'_>>("values", &bytes[..cut]);
            assert!(
                matches!(result, Err(StateError::Corrupt { what: "values", .. })),
                "cut at {cut}"
            );
        }
        // A name that is not a managed attribute.
        let forged = CompactValues(vec![(text("unicodePwd"), vec![text("x")])]);
        let bytes = encode("values", &forged).unwrap();
        let err = decode::<CompactValues<'_>>("values", &bytes)
            .unwrap()
            .into_values()
            .unwrap_err();
        assert!(err.to_string().contains("unicodePwd"), "{err}");
    }
}

//! A mailbox as Get-Mailbox returns it over the admin API: a realistic subset of Exchange's
//! ~300 properties, with the OData annotations real responses carry.
//!
//! [`MailboxJson`] serialises straight into the response: a page of 1,000 mailboxes has ~150,000
//! properties, and building a `serde_json::Value` map per mailbox only to encode and drop it cost
//! several times the JSON text itself. Properties come out in the byte order of their names, which
//! is the order a `serde_json::Map` (a `BTreeMap`) had, so the wire format is unchanged.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::clock::{format_exchange_local, format_exchange_utc};
use crate::model::{Mailbox, RecipientTypeDetails};

const ORG_DC: &str = "DC=EURPR01A001,DC=PROD,DC=OUTLOOK,DC=COM";
const ORG_CANONICAL: &str = "EURPR01A001.PROD.OUTLOOK.COM";
/// `{ORG_CANONICAL}/Configuration/Schema/Person`, spelled out so it costs no allocation.
const OBJECT_CATEGORY: &str = "EURPR01A001.PROD.OUTLOOK.COM/Configuration/Schema/Person";
const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";
const COLLECTION_OF_STRING: &str = "#Collection(String)";
const OBJECT_CLASS: [&str; 4] = ["top", "person", "organizationalPerson", "user"];

const CUSTOM_ATTRIBUTE: [&str; 15] = [
    "CustomAttribute1",
    "CustomAttribute2",
    "CustomAttribute3",
    "CustomAttribute4",
    "CustomAttribute5",
    "CustomAttribute6",
    "CustomAttribute7",
    "CustomAttribute8",
    "CustomAttribute9",
    "CustomAttribute10",
    "CustomAttribute11",
    "CustomAttribute12",
    "CustomAttribute13",
    "CustomAttribute14",
    "CustomAttribute15",
];
const EXTENSION_CUSTOM_ATTRIBUTE: [(&str, &str); 5] = [
    (
        "ExtensionCustomAttribute1",
        "ExtensionCustomAttribute1@odata.type",
    ),
    (
        "ExtensionCustomAttribute2",
        "ExtensionCustomAttribute2@odata.type",
    ),
    (
        "ExtensionCustomAttribute3",
        "ExtensionCustomAttribute3@odata.type",
    ),
    (
        "ExtensionCustomAttribute4",
        "ExtensionCustomAttribute4@odata.type",
    ),
    (
        "ExtensionCustomAttribute5",
        "ExtensionCustomAttribute5@odata.type",
    ),
];

/// One property value of the answer.
enum Prop<'a> {
    Text(&'a str),
    Owned(String),
    Bool(bool),
    Null,
    List(&'a [String]),
    Words(&'static [&'static str]),
}

impl Serialize for Prop<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Prop::Text(s) => serializer.serialize_str(s),
            Prop::Owned(s) => serializer.serialize_str(s),
            Prop::Bool(b) => serializer.serialize_bool(*b),
            Prop::Null => serializer.serialize_unit(),
            Prop::List(items) => items.serialize(serializer),
            Prop::Words(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in *items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

/// A mailbox in Get-Mailbox's JSON shape, serialised on the fly.
pub struct MailboxJson<'a> {
    pub mailbox: &'a Mailbox,
    pub tenant_domain: &'a str,
}

impl Serialize for MailboxJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let props = properties(self.mailbox, self.tenant_domain);
        let mut map = serializer.serialize_map(Some(props.len()))?;
        for i in name_order(&props).iter() {
            if let Some((name, value)) = props.get(*i) {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// Positions of `props` in name order. Every mailbox has the same property names in the same
/// push order, so the permutation is worked out once.
fn name_order(props: &[(&'static str, Prop<'_>)]) -> Cow<'static, [usize]> {
    static ORDER: OnceLock<Vec<usize>> = OnceLock::new();
    let sort = || {
        let mut order: Vec<usize> = (0..props.len()).collect();
        order.sort_by_key(|i| props.get(*i).map(|(name, _)| *name));
        order
    };
    let order = ORDER.get_or_init(sort);
    if order.len() == props.len() {
        Cow::Borrowed(order.as_slice())
    } else {
        Cow::Owned(sort())
    }
}

/// The same answer as a `Value` (for callers that edit or compare it).
pub fn mailbox_json(mailbox: &Mailbox, tenant_domain: &str) -> Value {
    serde_json::to_value(MailboxJson {
        mailbox,
        tenant_domain,
    })
    .unwrap_or(Value::Null)
}

fn properties<'a>(mailbox: &'a Mailbox, tenant_domain: &str) -> Vec<(&'static str, Prop<'a>)> {
    let mut m: Vec<(&'static str, Prop<'a>)> = Vec::with_capacity(160);
    let primary = mailbox.primary_smtp().unwrap_or_default();
    let kind = mailbox.recipient_type_details;
    let is_resource = matches!(
        kind,
        RecipientTypeDetails::RoomMailbox | RecipientTypeDetails::EquipmentMailbox
    );
    let text = Prop::Text;
    let list = |m: &mut Vec<(&'static str, Prop<'a>)>,
                name: &'static str,
                annotation: &'static str,
                values: Prop<'a>| {
        m.push((annotation, Prop::Text(COLLECTION_OF_STRING)));
        m.push((name, values));
    };
    let guid = |m: &mut Vec<(&'static str, Prop<'a>)>,
                name: &'static str,
                annotation: &'static str,
                value: &'a str| {
        m.push((annotation, Prop::Text("System.Guid")));
        m.push((name, Prop::Text(value)));
    };
    let datetime = |m: &mut Vec<(&'static str, Prop<'a>)>,
                    name: &'static str,
                    annotation: &'static str,
                    value: String| {
        m.push((annotation, Prop::Text("System.DateTime")));
        m.push((name, Prop::Owned(value)));
    };
    let none: &'a [String] = &[];

    m.push(("Name", text(&mailbox.name)));
    m.push(("Alias", text(&mailbox.alias)));
    m.push(("DisplayName", text(&mailbox.display_name)));
    m.push(("Identity", text(&mailbox.name)));
    m.push(("Id", text(&mailbox.name)));
    m.push((
        "DistinguishedName",
        Prop::Owned(format!(
            "CN={},OU={tenant_domain},OU=Microsoft Exchange Hosted Organizations,{ORG_DC}",
            mailbox.name
        )),
    ));
    m.push(("UserPrincipalName", text(&mailbox.user_principal_name)));
    m.push(("PrimarySmtpAddress", text(primary)));
    m.push(("WindowsEmailAddress", text(primary)));
    m.push((
        "MicrosoftOnlineServicesID",
        text(&mailbox.user_principal_name),
    ));
    list(
        &mut m,
        "EmailAddresses",
        "EmailAddresses@odata.type",
        Prop::List(&mailbox.email_addresses),
    );
    for (name, value) in CUSTOM_ATTRIBUTE.iter().zip(&mailbox.custom_attributes) {
        m.push((name, text(value)));
    }
    for ((name, annotation), values) in EXTENSION_CUSTOM_ATTRIBUTE
        .iter()
        .zip(&mailbox.extension_custom_attributes)
    {
        list(&mut m, name, annotation, Prop::List(values));
    }
    m.push((
        "HiddenFromAddressListsEnabled",
        Prop::Bool(mailbox.hidden_from_address_lists),
    ));
    m.push(("RecipientType", text("UserMailbox")));
    m.push(("RecipientTypeDetails", text(kind.as_str())));
    m.push((
        "IsExchangeCloudManaged",
        Prop::Bool(mailbox.is_exchange_cloud_managed),
    ));
    m.push(("IsDirSynced", Prop::Bool(mailbox.is_dir_synced)));
    m.push(("ExternalDirectoryObjectId", text(&mailbox.user_id)));
    guid(&mut m, "Guid", "Guid@data.type", &mailbox.guid);
    guid(
        &mut m,
        "ExchangeGuid",
        "ExchangeGuid@data.type",
        &mailbox.exchange_guid,
    );
    guid(&mut m, "ArchiveGuid", "ArchiveGuid@data.type", ZERO_GUID);
    guid(
        &mut m,
        "DisabledArchiveGuid",
        "DisabledArchiveGuid@data.type",
        ZERO_GUID,
    );
    datetime(
        &mut m,
        "WhenChangedUTC",
        "WhenChangedUTC@data.type",
        format_exchange_utc(mailbox.when_changed),
    );
    datetime(
        &mut m,
        "WhenChanged",
        "WhenChanged@data.type",
        format_exchange_local(mailbox.when_changed),
    );
    datetime(
        &mut m,
        "WhenCreatedUTC",
        "WhenCreatedUTC@data.type",
        format_exchange_utc(mailbox.when_created),
    );
    let created_local = format_exchange_local(mailbox.when_created);
    datetime(
        &mut m,
        "WhenCreated",
        "WhenCreated@data.type",
        created_local.clone(),
    );
    datetime(
        &mut m,
        "WhenMailboxCreated",
        "WhenMailboxCreated@data.type",
        created_local,
    );
    m.push(("ExchangeVersion", text("0.20 (15.0.0.0)")));
    m.push(("ExchangeObjectId", text(&mailbox.guid)));
    m.push(("OrganizationId", Prop::Owned(format!("{ORG_CANONICAL}/Microsoft Exchange Hosted Organizations/{tenant_domain} - {ORG_CANONICAL}/ConfigurationUnits/{tenant_domain}/Configuration"))));
    m.push((
        "OrganizationalUnit",
        Prop::Owned(format!(
            "{ORG_CANONICAL}/Microsoft Exchange Hosted Organizations/{tenant_domain}"
        )),
    ));
    m.push((
        "OriginatingServer",
        text(crate::exchange::errors::SERVER_NAME),
    ));
    m.push(("ObjectCategory", text(OBJECT_CATEGORY)));
    list(
        &mut m,
        "ObjectClass",
        "ObjectClass@odata.type",
        Prop::Words(&OBJECT_CLASS),
    );
    m.push(("Database", text("EURPR01DG045-db123")));
    m.push(("ServerName", text("am0pr01mb1234")));
    m.push((
        "LegacyExchangeDN",
        Prop::Owned(format!(
            "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}-{}",
            mailbox.exchange_guid.replace('-', "").get(..32).unwrap_or_default(),
            mailbox.alias
        )),
    ));
    m.push((
        "SamAccountName",
        Prop::Owned(format!(
            "$X{}",
            mailbox.guid.get(..8).unwrap_or_default().to_uppercase()
        )),
    ));
    m.push(("ImmutableId", text("")));
    m.push((
        "IsShared",
        Prop::Bool(kind == RecipientTypeDetails::SharedMailbox),
    ));
    m.push(("IsResource", Prop::Bool(is_resource)));
    m.push((
        "ResourceType",
        match kind {
            RecipientTypeDetails::RoomMailbox => text("Room"),
            RecipientTypeDetails::EquipmentMailbox => text("Equipment"),
            _ => Prop::Null,
        },
    ));
    m.push(("RoomMailboxAccountEnabled", Prop::Null));
    m.push(("IsLinked", Prop::Bool(false)));
    m.push(("IsMailboxEnabled", Prop::Bool(true)));
    m.push(("IsSoftDeletedByRemove", Prop::Bool(false)));
    m.push(("IsSoftDeletedByDisable", Prop::Bool(false)));
    m.push(("IsInactiveMailbox", Prop::Bool(false)));
    m.push((
        "SKUAssigned",
        if kind == RecipientTypeDetails::UserMailbox {
            Prop::Bool(true)
        } else {
            Prop::Null
        },
    ));
    m.push(("UsageLocation", text("United States")));
    m.push(("ArchiveStatus", text("None")));
    m.push(("ArchiveState", text("None")));
    m.push(("ArchiveDatabase", Prop::Null));
    list(
        &mut m,
        "ArchiveName",
        "ArchiveName@odata.type",
        Prop::List(none),
    );
    m.push(("LitigationHoldEnabled", Prop::Bool(false)));
    m.push(("LitigationHoldDuration", text("Unlimited")));
    list(
        &mut m,
        "InPlaceHolds",
        "InPlaceHolds@odata.type",
        Prop::List(none),
    );
    m.push(("ComplianceTagHoldApplied", Prop::Bool(false)));
    m.push(("DelayHoldApplied", Prop::Bool(false)));
    m.push(("ElcProcessingDisabled", Prop::Bool(false)));
    m.push(("RetentionPolicy", text("Default MRM Policy")));
    m.push(("RetainDeletedItemsFor", text("14.00:00:00")));
    m.push(("SingleItemRecoveryEnabled", Prop::Bool(true)));
    m.push(("ForwardingAddress", Prop::Null));
    m.push(("ForwardingSmtpAddress", Prop::Null));
    m.push(("DeliverToMailboxAndForward", Prop::Bool(false)));
    m.push(("UseDatabaseQuotaDefaults", Prop::Bool(false)));
    m.push(("IssueWarningQuota", text("98 GB (105,226,698,752 bytes)")));
    m.push(("ProhibitSendQuota", text("99 GB (106,300,440,576 bytes)")));
    m.push((
        "ProhibitSendReceiveQuota",
        text("100 GB (107,374,182,400 bytes)"),
    ));
    m.push((
        "RecoverableItemsQuota",
        text("30 GB (32,212,254,720 bytes)"),
    ));
    m.push(("MaxSendSize", text("35 MB (36,700,160 bytes)")));
    m.push(("MaxReceiveSize", text("36 MB (37,748,736 bytes)")));
    m.push(("RecipientLimits", text("500")));
    m.push(("AuditEnabled", Prop::Bool(true)));
    m.push(("AuditLogAgeLimit", text("90.00:00:00")));
    m.push(("AddressBookPolicy", Prop::Null));
    m.push(("EmailAddressPolicyEnabled", Prop::Bool(false)));
    for (name, annotation) in [
        ("GrantSendOnBehalfTo", "GrantSendOnBehalfTo@odata.type"),
        (
            "AcceptMessagesOnlyFrom",
            "AcceptMessagesOnlyFrom@odata.type",
        ),
        (
            "AcceptMessagesOnlyFromDLMembers",
            "AcceptMessagesOnlyFromDLMembers@odata.type",
        ),
        ("RejectMessagesFrom", "RejectMessagesFrom@odata.type"),
        ("ModeratedBy", "ModeratedBy@odata.type"),
    ] {
        list(&mut m, name, annotation, Prop::List(none));
    }
    m.push(("ModerationEnabled", Prop::Bool(false)));
    m.push((
        "RequireSenderAuthenticationEnabled",
        Prop::Bool(is_resource),
    ));
    m.push(("MessageCopyForSentAsEnabled", Prop::Bool(false)));
    m.push(("MessageCopyForSendOnBehalfEnabled", Prop::Bool(false)));
    m.push(("MailTip", Prop::Null));
    for (name, annotation) in [
        ("MailTipTranslations", "MailTipTranslations@odata.type"),
        ("Languages", "Languages@odata.type"),
    ] {
        list(&mut m, name, annotation, Prop::List(none));
    }
    m.push(("ExternalOofOptions", text("External")));
    m.push(("HasPicture", Prop::Bool(false)));
    m.push(("HasSpokenName", Prop::Bool(false)));
    m.push(("UMEnabled", Prop::Bool(false)));
    m.push(("MailboxPlan", text("ExchangeOnlineEnterprise")));
    m.push(("MailboxRegion", Prop::Null));
    m.push(("Office", text("")));
    m.push(("SimpleDisplayName", text("")));
    list(
        &mut m,
        "PersistedCapabilities",
        "PersistedCapabilities@odata.type",
        Prop::List(none),
    );
    m.push((
        "HiddenFromAddressListsValue",
        Prop::Bool(mailbox.hidden_from_address_lists),
    ));
    m.push(("IsValid", Prop::Bool(true)));
    m.push(("ObjectState", text("Unchanged")));
    m
}

#[cfg(test)]
#[path = "mailbox_json_tests.rs"]
mod tests;

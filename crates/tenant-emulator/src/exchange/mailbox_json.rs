//! A mailbox as Get-Mailbox returns it over the admin API: a realistic subset of Exchange's
//! ~300 properties, with the OData annotations real responses carry.

use serde_json::{json, Map, Value};

use crate::clock::{format_exchange_local, format_exchange_utc};
use crate::model::{Mailbox, RecipientTypeDetails};

const ORG_DC: &str = "DC=EURPR01A001,DC=PROD,DC=OUTLOOK,DC=COM";
const ORG_CANONICAL: &str = "EURPR01A001.PROD.OUTLOOK.COM";
const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

fn annotate(
    map: &mut Map<String, Value>,
    name: &str,
    annotation_key: &str,
    annotation: &str,
    value: Value,
) {
    map.insert(
        format!("{name}@{annotation_key}"),
        Value::String(annotation.to_owned()),
    );
    map.insert(name.to_owned(), value);
}

fn string_list(map: &mut Map<String, Value>, name: &str, values: &[String]) {
    annotate(
        map,
        name,
        "odata.type",
        "#Collection(String)",
        json!(values),
    );
}

fn guid(map: &mut Map<String, Value>, name: &str, value: &str) {
    annotate(
        map,
        name,
        "data.type",
        "System.Guid",
        Value::String(value.to_owned()),
    );
}

fn datetime(map: &mut Map<String, Value>, name: &str, value: String) {
    annotate(
        map,
        name,
        "data.type",
        "System.DateTime",
        Value::String(value),
    );
}

pub fn mailbox_json(mailbox: &Mailbox, tenant_domain: &str) -> Value {
    let mut m = Map::new();
    let primary = mailbox.primary_smtp().unwrap_or_default().to_owned();
    let kind = mailbox.recipient_type_details;
    let ou = format!("{ORG_CANONICAL}/Microsoft Exchange Hosted Organizations/{tenant_domain}");
    let dn = format!(
        "CN={},OU={tenant_domain},OU=Microsoft Exchange Hosted Organizations,{ORG_DC}",
        mailbox.name
    );
    let text = |v: &str| Value::String(v.to_owned());

    m.insert("Name".into(), text(&mailbox.name));
    m.insert("Alias".into(), text(&mailbox.alias));
    m.insert("DisplayName".into(), text(&mailbox.display_name));
    m.insert("Identity".into(), text(&mailbox.name));
    m.insert("Id".into(), text(&mailbox.name));
    m.insert("DistinguishedName".into(), text(&dn));
    m.insert(
        "UserPrincipalName".into(),
        text(&mailbox.user_principal_name),
    );
    m.insert("PrimarySmtpAddress".into(), text(&primary));
    m.insert("WindowsEmailAddress".into(), text(&primary));
    m.insert(
        "MicrosoftOnlineServicesID".into(),
        text(&mailbox.user_principal_name),
    );
    string_list(&mut m, "EmailAddresses", &mailbox.email_addresses);
    for (i, value) in mailbox.custom_attributes.iter().enumerate() {
        m.insert(format!("CustomAttribute{}", i + 1), text(value));
    }
    for (i, values) in mailbox.extension_custom_attributes.iter().enumerate() {
        string_list(
            &mut m,
            &format!("ExtensionCustomAttribute{}", i + 1),
            values,
        );
    }
    m.insert(
        "HiddenFromAddressListsEnabled".into(),
        Value::Bool(mailbox.hidden_from_address_lists),
    );
    m.insert("RecipientType".into(), text("UserMailbox"));
    m.insert("RecipientTypeDetails".into(), text(kind.as_str()));
    m.insert(
        "IsExchangeCloudManaged".into(),
        Value::Bool(mailbox.is_exchange_cloud_managed),
    );
    m.insert("IsDirSynced".into(), Value::Bool(mailbox.is_dir_synced));
    m.insert("ExternalDirectoryObjectId".into(), text(&mailbox.user_id));
    guid(&mut m, "Guid", &mailbox.guid);
    guid(&mut m, "ExchangeGuid", &mailbox.exchange_guid);
    guid(&mut m, "ArchiveGuid", ZERO_GUID);
    guid(&mut m, "DisabledArchiveGuid", ZERO_GUID);
    datetime(
        &mut m,
        "WhenChangedUTC",
        format_exchange_utc(mailbox.when_changed),
    );
    datetime(
        &mut m,
        "WhenChanged",
        format_exchange_local(mailbox.when_changed),
    );
    datetime(
        &mut m,
        "WhenCreatedUTC",
        format_exchange_utc(mailbox.when_created),
    );
    datetime(
        &mut m,
        "WhenCreated",
        format_exchange_local(mailbox.when_created),
    );
    datetime(
        &mut m,
        "WhenMailboxCreated",
        format_exchange_local(mailbox.when_created),
    );
    m.insert("ExchangeVersion".into(), text("0.20 (15.0.0.0)"));
    m.insert("ExchangeObjectId".into(), text(&mailbox.guid));
    m.insert("OrganizationId".into(), text(&format!("{ORG_CANONICAL}/Microsoft Exchange Hosted Organizations/{tenant_domain} - {ORG_CANONICAL}/ConfigurationUnits/{tenant_domain}/Configuration")));
    m.insert("OrganizationalUnit".into(), text(&ou));
    m.insert(
        "OriginatingServer".into(),
        text(crate::exchange::errors::SERVER_NAME),
    );
    m.insert(
        "ObjectCategory".into(),
        text(&format!("{ORG_CANONICAL}/Configuration/Schema/Person")),
    );
    string_list(
        &mut m,
        "ObjectClass",
        &["top", "person", "organizationalPerson", "user"].map(String::from),
    );
    m.insert("Database".into(), text("EURPR01DG045-db123"));
    m.insert("ServerName".into(), text("am0pr01mb1234"));
    m.insert(
        "LegacyExchangeDN".into(),
        text(&format!(
        "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}-{}",
        mailbox.exchange_guid.replace('-', "").get(..32).unwrap_or_default(),
        mailbox.alias
    )),
    );
    m.insert(
        "SamAccountName".into(),
        text(&format!(
            "$X{}",
            mailbox.guid.get(..8).unwrap_or_default().to_uppercase()
        )),
    );
    m.insert("ImmutableId".into(), text(""));
    m.insert(
        "IsShared".into(),
        Value::Bool(kind == RecipientTypeDetails::SharedMailbox),
    );
    let is_resource = matches!(
        kind,
        RecipientTypeDetails::RoomMailbox | RecipientTypeDetails::EquipmentMailbox
    );
    m.insert("IsResource".into(), Value::Bool(is_resource));
    m.insert(
        "ResourceType".into(),
        match kind {
            RecipientTypeDetails::RoomMailbox => text("Room"),
            RecipientTypeDetails::EquipmentMailbox => text("Equipment"),
            _ => Value::Null,
        },
    );
    m.insert("RoomMailboxAccountEnabled".into(), Value::Null);
    m.insert("IsLinked".into(), Value::Bool(false));
    m.insert("IsMailboxEnabled".into(), Value::Bool(true));
    m.insert("IsSoftDeletedByRemove".into(), Value::Bool(false));
    m.insert("IsSoftDeletedByDisable".into(), Value::Bool(false));
    m.insert("IsInactiveMailbox".into(), Value::Bool(false));
    m.insert(
        "SKUAssigned".into(),
        if kind == RecipientTypeDetails::UserMailbox {
            Value::Bool(true)
        } else {
            Value::Null
        },
    );
    m.insert("UsageLocation".into(), text("United States"));
    m.insert("ArchiveStatus".into(), text("None"));
    m.insert("ArchiveState".into(), text("None"));
    m.insert("ArchiveDatabase".into(), Value::Null);
    string_list(&mut m, "ArchiveName", &[]);
    m.insert("LitigationHoldEnabled".into(), Value::Bool(false));
    m.insert("LitigationHoldDuration".into(), text("Unlimited"));
    string_list(&mut m, "InPlaceHolds", &[]);
    m.insert("ComplianceTagHoldApplied".into(), Value::Bool(false));
    m.insert("DelayHoldApplied".into(), Value::Bool(false));
    m.insert("ElcProcessingDisabled".into(), Value::Bool(false));
    m.insert("RetentionPolicy".into(), text("Default MRM Policy"));
    m.insert("RetainDeletedItemsFor".into(), text("14.00:00:00"));
    m.insert("SingleItemRecoveryEnabled".into(), Value::Bool(true));
    m.insert("ForwardingAddress".into(), Value::Null);
    m.insert("ForwardingSmtpAddress".into(), Value::Null);
    m.insert("DeliverToMailboxAndForward".into(), Value::Bool(false));
    m.insert("UseDatabaseQuotaDefaults".into(), Value::Bool(false));
    m.insert(
        "IssueWarningQuota".into(),
        text("98 GB (105,226,698,752 bytes)"),
    );
    m.insert(
        "ProhibitSendQuota".into(),
        text("99 GB (106,300,440,576 bytes)"),
    );
    m.insert(
        "ProhibitSendReceiveQuota".into(),
        text("100 GB (107,374,182,400 bytes)"),
    );
    m.insert(
        "RecoverableItemsQuota".into(),
        text("30 GB (32,212,254,720 bytes)"),
    );
    m.insert("MaxSendSize".into(), text("35 MB (36,700,160 bytes)"));
    m.insert("MaxReceiveSize".into(), text("36 MB (37,748,736 bytes)"));
    m.insert("RecipientLimits".into(), text("500"));
    m.insert("AuditEnabled".into(), Value::Bool(true));
    m.insert("AuditLogAgeLimit".into(), text("90.00:00:00"));
    m.insert("AddressBookPolicy".into(), Value::Null);
    m.insert("EmailAddressPolicyEnabled".into(), Value::Bool(false));
    string_list(&mut m, "GrantSendOnBehalfTo", &[]);
    string_list(&mut m, "AcceptMessagesOnlyFrom", &[]);
    string_list(&mut m, "AcceptMessagesOnlyFromDLMembers", &[]);
    string_list(&mut m, "RejectMessagesFrom", &[]);
    string_list(&mut m, "ModeratedBy", &[]);
    m.insert("ModerationEnabled".into(), Value::Bool(false));
    m.insert(
        "RequireSenderAuthenticationEnabled".into(),
        Value::Bool(is_resource),
    );
    m.insert("MessageCopyForSentAsEnabled".into(), Value::Bool(false));
    m.insert(
        "MessageCopyForSendOnBehalfEnabled".into(),
        Value::Bool(false),
    );
    m.insert("MailTip".into(), Value::Null);
    string_list(&mut m, "MailTipTranslations", &[]);
    string_list(&mut m, "Languages", &[]);
    m.insert("ExternalOofOptions".into(), text("External"));
    m.insert("HasPicture".into(), Value::Bool(false));
    m.insert("HasSpokenName".into(), Value::Bool(false));
    m.insert("UMEnabled".into(), Value::Bool(false));
    m.insert("MailboxPlan".into(), text("ExchangeOnlineEnterprise"));
    m.insert("MailboxRegion".into(), Value::Null);
    m.insert("Office".into(), text(""));
    m.insert("SimpleDisplayName".into(), text(""));
    string_list(&mut m, "PersistedCapabilities", &[]);
    m.insert(
        "HiddenFromAddressListsValue".into(),
        Value::Bool(mailbox.hidden_from_address_lists),
    );
    m.insert("IsValid".into(), Value::Bool(true));
    m.insert("ObjectState".into(), text("Unchanged"));
    Value::Object(m)
}

//! Creating tenants, users and their mailboxes: the bootstrap of a new state dir, the synthetic
//! tenant, and the create/update path shared by the control API and the AD import.

use serde::Deserialize;
use serde_json::Value;

use crate::clock::{now_ticks, TICKS_PER_SECOND};
use crate::model::{smtp_address, Mailbox, RecipientTypeDetails, Tenant, UserProp};

/// A user with a mailbox, as the control API or the AD import describes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NewMailbox {
    /// Entra object id; generated when absent.
    pub id: Option<String>,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub alias: Option<String>,
    /// `TYPE:address` values; when empty the UPN becomes the primary SMTP address.
    pub email_addresses: Vec<String>,
    pub on_premises_immutable_id: Option<String>,
    pub on_premises_security_identifier: Option<String>,
    pub on_premises_distinguished_name: Option<String>,
    pub on_premises_sam_account_name: Option<String>,
    pub on_premises_domain_name: Option<String>,
    pub custom_attributes: Vec<String>,
    pub extension_custom_attributes: Vec<Vec<String>>,
    pub hidden_from_address_lists_enabled: bool,
    pub recipient_type_details: Option<String>,
    pub is_exchange_cloud_managed: bool,
    pub when_changed_ticks: Option<i64>,
    /// Mailbox Guid; generated when absent.
    pub mailbox_guid: Option<String>,
}

fn fixed<const N: usize, T: Default + Clone>(items: &[T]) -> [T; N] {
    std::array::from_fn(|i| items.get(i).cloned().unwrap_or_default())
}

fn opt_str(v: &Option<String>) -> Option<Value> {
    v.as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.clone()))
}

/// Creates a user and its mailbox. Fails (with an Exchange-style message) when an SMTP address
/// is already taken or the addresses have no single primary.
pub fn create_user_and_mailbox(
    tenant: &mut Tenant,
    new: NewMailbox,
) -> Result<(String, String), String> {
    let user_id = new
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if tenant
        .users
        .get(&user_id)
        .is_some_and(|u| u.removed.is_none())
    {
        return Err(format!("A user with id '{user_id}' already exists."));
    }
    let alias = new
        .alias
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| {
            new.user_principal_name
                .split('@')
                .next()
                .unwrap_or("user")
                .to_owned()
        });
    let mut addresses = new.email_addresses.clone();
    if addresses.is_empty() && !new.user_principal_name.is_empty() {
        addresses.push(format!("SMTP:{}", new.user_principal_name));
    }
    if addresses.iter().filter(|a| a.starts_with("SMTP:")).count() != 1 {
        return Err("Exactly one primary SMTP address (\"SMTP:\") is required.".to_owned());
    }
    for a in &addresses {
        if let Some(owner) = smtp_address(a).and_then(|s| tenant.smtp_owner(s)) {
            return Err(format!(
                "The proxy address \"{a}\" is already being used by \"{owner}\"."
            ));
        }
    }
    let display_name = new.display_name.clone().unwrap_or_else(|| alias.clone());
    let synced = new.on_premises_immutable_id.is_some();
    let now = new.when_changed_ticks.unwrap_or_else(now_ticks);
    let mailbox = Mailbox {
        guid: new
            .mailbox_guid
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        exchange_guid: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.clone(),
        alias: alias.clone(),
        name: alias,
        display_name: display_name.clone(),
        user_principal_name: new.user_principal_name.clone(),
        email_addresses: addresses,
        custom_attributes: fixed(&new.custom_attributes),
        extension_custom_attributes: fixed(&new.extension_custom_attributes),
        hidden_from_address_lists: new.hidden_from_address_lists_enabled,
        recipient_type_details: new
            .recipient_type_details
            .as_deref()
            .and_then(RecipientTypeDetails::parse)
            .unwrap_or(RecipientTypeDetails::UserMailbox),
        is_exchange_cloud_managed: new.is_exchange_cloud_managed,
        is_dir_synced: synced,
        when_created: now,
        when_changed: now,
    };
    let mut values: [Option<Value>; 12] = Default::default();
    let mut set = |p: UserProp, v: Option<Value>| {
        if let Some(slot) = values.get_mut(p.index()) {
            *slot = v;
        }
    };
    set(UserProp::DisplayName, Some(Value::String(display_name)));
    set(UserProp::GivenName, opt_str(&new.given_name));
    set(UserProp::Surname, opt_str(&new.surname));
    set(
        UserProp::Mail,
        mailbox.primary_smtp().map(|s| Value::String(s.to_owned())),
    );
    set(
        UserProp::ProxyAddresses,
        Some(Value::Array(
            mailbox
                .email_addresses
                .iter()
                .cloned()
                .map(Value::String)
                .collect(),
        )),
    );
    set(
        UserProp::UserPrincipalName,
        opt_str(&Some(new.user_principal_name.clone())),
    );
    set(
        UserProp::OnPremisesImmutableId,
        opt_str(&new.on_premises_immutable_id),
    );
    set(
        UserProp::OnPremisesSecurityIdentifier,
        opt_str(&new.on_premises_security_identifier),
    );
    set(
        UserProp::OnPremisesDistinguishedName,
        opt_str(&new.on_premises_distinguished_name),
    );
    set(
        UserProp::OnPremisesSamAccountName,
        opt_str(&new.on_premises_sam_account_name),
    );
    set(
        UserProp::OnPremisesDomainName,
        opt_str(&new.on_premises_domain_name),
    );
    set(
        UserProp::OnPremisesSyncEnabled,
        synced.then_some(Value::Bool(true)),
    );
    tenant.insert_user(user_id.clone(), values);
    let guid = mailbox.guid.clone();
    tenant.put_mailbox(mailbox);
    Ok((user_id, guid))
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic v4-shaped GUID from a number and a salt.
fn det_guid(n: u64, salt: u64) -> uuid::Uuid {
    let hi = splitmix64(n ^ salt.rotate_left(17));
    let lo = splitmix64(hi ^ n.wrapping_mul(31));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The organisation name of a tenant id such as `contoso.onmicrosoft.com`.
pub fn org_name(tenant_id: &str) -> String {
    let first = tenant_id.split('.').next().unwrap_or("contoso");
    if first.is_empty() || uuid::Uuid::parse_str(tenant_id).is_ok() {
        "contoso".to_owned()
    } else {
        first.to_ascii_lowercase()
    }
}

/// Adds `count` deterministic synced users with mailboxes: names `user000001`…, every 10th
/// cloud-managed (with custom attributes), every 25th hidden, every 100th shared, every 500th a
/// room, every 50th with a cloud-only `SPO:` address. Anchors look like Connect Sync's.
pub fn add_synthetic_mailboxes(tenant: &mut Tenant, tenant_id: &str, count: usize) {
    use base64::Engine;
    let org = org_name(tenant_id);
    let onmicrosoft = format!("{org}.onmicrosoft.com");
    let domain = format!("{org}.com");
    let dc = format!("DC={org},DC=com");
    // 2024-01-01T00:00:00Z
    let base_ticks = crate::clock::days_from_civil(2024, 1, 1) * 86_400 * TICKS_PER_SECOND;
    for n in 1..=u64::try_from(count).unwrap_or(0) {
        let alias = format!("user{n:06}");
        let object_guid = det_guid(n, 1);
        let mut addresses = vec![
            format!("SMTP:{alias}@{domain}"),
            format!("smtp:{alias}@{onmicrosoft}"),
        ];
        if n % 50 == 0 {
            let spo = det_guid(n, 3);
            addresses.push(format!("SPO:SPO_{spo}@SPO_{}", tenant.tenant_guid));
        }
        let cloud_managed = n % 10 == 0;
        let mut custom = Vec::new();
        let mut extension = Vec::new();
        if cloud_managed {
            custom.push(format!("Dept-{:02}", n % 17));
            custom.push(String::new());
            custom.push(format!("CostCenter {}", 1000 + n % 97));
            extension.push(vec![format!("project-{}", n % 7)]);
        }
        let kind = if n % 500 == 0 {
            "RoomMailbox"
        } else if n % 100 == 0 {
            "SharedMailbox"
        } else {
            "UserMailbox"
        };
        let new = NewMailbox {
            id: Some(det_guid(n, 2).to_string()),
            user_principal_name: format!("{alias}@{domain}"),
            display_name: Some(format!("User {n:06}")),
            given_name: Some("User".to_owned()),
            surname: Some(format!("{n:06}")),
            alias: Some(alias.clone()),
            email_addresses: addresses,
            on_premises_immutable_id: Some(
                base64::engine::general_purpose::STANDARD.encode(object_guid.to_bytes_le()),
            ),
            on_premises_security_identifier: Some(format!(
                "S-1-5-21-1004336348-1177238915-682003330-{}",
                1000 + n
            )),
            on_premises_distinguished_name: Some(format!("CN=User {n:06},OU=Users,OU=Synced,{dc}")),
            on_premises_sam_account_name: Some(alias),
            on_premises_domain_name: Some(domain.clone()),
            custom_attributes: custom,
            extension_custom_attributes: extension,
            hidden_from_address_lists_enabled: n % 25 == 0,
            recipient_type_details: Some(kind.to_owned()),
            is_exchange_cloud_managed: cloud_managed,
            when_changed_ticks: Some(base_ticks + i64::try_from(n).unwrap_or(0) * TICKS_PER_SECOND),
            mailbox_guid: Some(det_guid(n, 4).to_string()),
        };
        if let Err(e) = create_user_and_mailbox(tenant, new) {
            tracing::warn!("synthetic mailbox {n} skipped: {e}");
        }
    }
}

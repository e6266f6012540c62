//! Directory import as Entra Connect Sync would do it: users read from AD over LDAPS become Entra
//! users with remote mailboxes, anchored on mS-DS-ConsistencyGuid (else objectGUID).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EmulatorError;
use crate::model::{Tenant, UserProp};
use crate::provisioning::{create_user_and_mailbox, NewMailbox};

/// One AD object as an LDAP search returns it. Binary values may arrive in either map
/// (ldap3 puts values that are valid UTF-8 in `attrs`), so both are consulted.
#[derive(Clone, Debug, Default)]
pub struct AdEntry {
    pub dn: String,
    pub attrs: HashMap<String, Vec<String>>,
    pub bin_attrs: HashMap<String, Vec<Vec<u8>>>,
}

impl AdEntry {
    fn strings(&self, name: &str) -> Vec<String> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn string(&self, name: &str) -> Option<String> {
        self.strings(name)
            .into_iter()
            .next()
            .filter(|s| !s.is_empty())
    }

    fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.bin_attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first().cloned())
            .or_else(|| self.string(name).map(String::into_bytes))
    }
}

pub const IMPORT_ATTRIBUTES: [&str; 35] = [
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "objectSid",
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "givenName",
    "sn",
    "mail",
    "mailNickname",
    "proxyAddresses",
    "msExchHideFromAddressLists",
    "extensionAttribute1",
    "extensionAttribute2",
    "extensionAttribute3",
    "extensionAttribute4",
    "extensionAttribute5",
    "extensionAttribute6",
    "extensionAttribute7",
    "extensionAttribute8",
    "extensionAttribute9",
    "extensionAttribute10",
    "extensionAttribute11",
    "extensionAttribute12",
    "extensionAttribute13",
    "extensionAttribute14",
    "extensionAttribute15",
    "msExchExtensionCustomAttribute1",
    "msExchExtensionCustomAttribute2",
    "msExchExtensionCustomAttribute3",
    "msExchExtensionCustomAttribute4",
    "msExchExtensionCustomAttribute5",
    "msExchRecipientTypeDetails",
    "cn",
    "distinguishedName",
];

/// `S-1-5-21-…` text of a binary objectSid; `None` if the bytes are not a SID.
pub fn sid_to_string(bytes: &[u8]) -> Option<String> {
    let revision = *bytes.first()?;
    let count = usize::from(*bytes.get(1)?);
    let authority = bytes
        .get(2..8)?
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let subs = bytes.get(8..8 + 4 * count)?;
    if bytes.len() != 8 + 4 * count {
        return None;
    }
    let mut text = format!("S-{revision}-{authority}");
    for chunk in subs.chunks_exact(4) {
        let mut le = [0u8; 4];
        le.copy_from_slice(chunk);
        text.push_str(&format!("-{}", u32::from_le_bytes(le)));
    }
    Some(text)
}

/// `DC=corp,DC=example,DC=com` → `corp.example.com`.
pub fn domain_of(dn: &str) -> String {
    dn.split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.trim().split_once('=')?;
            k.eq_ignore_ascii_case("dc").then(|| v.to_owned())
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Maps an AD user to the Entra user + mailbox Connect Sync would provision.
pub fn map_entry(entry: &AdEntry) -> Result<NewMailbox, EmulatorError> {
    let fail = |message: &str| EmulatorError::Import {
        dn: entry.dn.clone(),
        message: message.to_owned(),
    };
    let anchor = entry
        .bytes("mS-DS-ConsistencyGuid")
        .filter(|b| b.len() == 16)
        .or_else(|| entry.bytes("objectGUID").filter(|b| b.len() == 16))
        .ok_or_else(|| fail("no 16-byte mS-DS-ConsistencyGuid or objectGUID"))?;
    let sid = entry.bytes("objectSid").and_then(|b| sid_to_string(&b));
    let domain = domain_of(&entry.dn);
    let sam = entry.string("sAMAccountName");
    let upn = entry
        .string("userPrincipalName")
        .or_else(|| sam.as_ref().map(|s| format!("{s}@{domain}")))
        .ok_or_else(|| fail("neither userPrincipalName nor sAMAccountName"))?;
    let mut addresses = entry.strings("proxyAddresses");
    if !addresses.iter().any(|a| a.starts_with("SMTP:")) {
        let primary = entry.string("mail").unwrap_or_else(|| upn.clone());
        addresses.retain(|a| {
            !crate::model::smtp_address(a).is_some_and(|s| s.eq_ignore_ascii_case(&primary))
        });
        addresses.insert(0, format!("SMTP:{primary}"));
    }
    let custom = (1..=15)
        .map(|i| {
            entry
                .string(&format!("extensionAttribute{i}"))
                .unwrap_or_default()
        })
        .collect();
    let extension = (1..=5)
        .map(|i| entry.strings(&format!("msExchExtensionCustomAttribute{i}")))
        .collect();
    let hidden = entry
        .string("msExchHideFromAddressLists")
        .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
    let kind = match entry
        .string("msExchRecipientTypeDetails")
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(4) | Some(34_359_738_368) => "SharedMailbox",
        Some(16) | Some(8_589_934_592) => "RoomMailbox",
        Some(32) | Some(17_179_869_184) => "EquipmentMailbox",
        _ => "UserMailbox",
    };
    Ok(NewMailbox {
        user_principal_name: upn,
        display_name: entry.string("displayName").or_else(|| entry.string("cn")),
        given_name: entry.string("givenName"),
        surname: entry.string("sn"),
        alias: entry.string("mailNickname").or_else(|| sam.clone()),
        email_addresses: addresses,
        on_premises_immutable_id: Some(base64::engine::general_purpose::STANDARD.encode(anchor)),
        on_premises_security_identifier: sid,
        on_premises_distinguished_name: Some(entry.dn.clone()),
        on_premises_sam_account_name: sam,
        on_premises_domain_name: Some(domain),
        custom_attributes: custom,
        extension_custom_attributes: extension,
        hidden_from_address_lists_enabled: hidden,
        recipient_type_details: Some(kind.to_owned()),
        ..NewMailbox::default()
    })
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Addresses left out because another object already has them (see `quarantine_duplicates`).
    pub quarantined: Vec<String>,
    pub errors: Vec<String>,
}

/// Entra's "duplicate attribute resiliency": an SMTP address another object already owns is
/// quarantined (left out) instead of failing the whole object. If that was the primary, the first
/// remaining SMTP address is promoted. Returns what was left out.
fn quarantine_duplicates(
    tenant: &Tenant,
    new: &mut NewMailbox,
    own_mailbox: Option<&str>,
) -> Vec<String> {
    let taken = |address: &str| {
        crate::model::smtp_address(address)
            .and_then(|a| tenant.smtp_owner(a))
            .is_some_and(|owner| Some(owner) != own_mailbox)
    };
    let (kept, dropped): (Vec<String>, Vec<String>) =
        new.email_addresses.drain(..).partition(|a| !taken(a));
    new.email_addresses = kept;
    if !new.email_addresses.iter().any(|a| a.starts_with("SMTP:")) {
        if let Some(first) = new
            .email_addresses
            .iter_mut()
            .find(|a| a.starts_with("smtp:"))
        {
            *first = format!("SMTP:{}", first.get(5..).unwrap_or_default());
        }
    }
    dropped
        .into_iter()
        .map(|a| {
            format!("proxy address \"{a}\" is already used by another object and was quarantined")
        })
        .collect()
}

/// How an import treats the mailboxes it provisions.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImportOptions {
    /// Every imported mailbox ends up with IsExchangeCloudManaged = true (as if an admin had
    /// switched each one's source of authority to the cloud right after the sync).
    pub cloud_managed: bool,
}

/// Creates or updates (by anchor) the users and mailboxes of the entries. Exchange attributes of
/// a cloud-managed mailbox are left alone, as Connect Sync does once the cloud masters them.
/// Linear in the entries: anchors, SMTP owners and identities are all looked up in maps.
pub fn apply_import(
    tenant: &mut Tenant,
    entries: &[AdEntry],
    options: ImportOptions,
) -> ImportSummary {
    let mut summary = ImportSummary::default();
    let by_anchor: HashMap<String, String> = tenant
        .users
        .values()
        .filter(|u| u.removed.is_none())
        .filter_map(|u| {
            u.get_str(UserProp::OnPremisesImmutableId)
                .map(|a| (a.to_owned(), u.id.clone()))
        })
        .collect();
    for entry in entries {
        let new = match map_entry(entry) {
            Ok(n) => n,
            Err(e) => {
                summary.errors.push(e.to_string());
                continue;
            }
        };
        let anchor = new.on_premises_immutable_id.clone().unwrap_or_default();
        let mut new = new;
        new.is_exchange_cloud_managed = options.cloud_managed;
        let own_mailbox = by_anchor
            .get(&anchor)
            .and_then(|id| tenant.mailbox_for_user(id))
            .map(|m| m.guid.clone());
        for quarantined in quarantine_duplicates(tenant, &mut new, own_mailbox.as_deref()) {
            summary
                .quarantined
                .push(format!("{}: {quarantined}", entry.dn));
        }
        match by_anchor.get(&anchor) {
            None => match create_user_and_mailbox(tenant, new) {
                Ok(_) => summary.created += 1,
                Err(e) => summary.errors.push(format!("{}: {e}", entry.dn)),
            },
            Some(user_id) => match update_existing(tenant, user_id, new) {
                Ok(true) => summary.updated += 1,
                Ok(false) => summary.unchanged += 1,
                Err(e) => summary.errors.push(format!("{}: {e}", entry.dn)),
            },
        }
    }
    summary
}

fn update_existing(tenant: &mut Tenant, user_id: &str, new: NewMailbox) -> Result<bool, String> {
    let s = |v: &Option<String>| v.as_ref().map(|x| Value::String(x.clone()));
    let mut changed = false;
    for (prop, value) in [
        (
            UserProp::UserPrincipalName,
            Some(Value::String(new.user_principal_name.clone())),
        ),
        (UserProp::DisplayName, s(&new.display_name)),
        (UserProp::GivenName, s(&new.given_name)),
        (UserProp::Surname, s(&new.surname)),
        (
            UserProp::OnPremisesSecurityIdentifier,
            s(&new.on_premises_security_identifier),
        ),
        (
            UserProp::OnPremisesDistinguishedName,
            s(&new.on_premises_distinguished_name),
        ),
        (
            UserProp::OnPremisesSamAccountName,
            s(&new.on_premises_sam_account_name),
        ),
        (
            UserProp::OnPremisesDomainName,
            s(&new.on_premises_domain_name),
        ),
    ] {
        changed |= tenant.set_user_prop(user_id, prop, value);
    }
    let Some(mut mailbox) = tenant.mailbox_for_user(user_id).cloned() else {
        return Ok(changed);
    };
    if mailbox.is_exchange_cloud_managed {
        return Ok(changed);
    }
    let before = mailbox.clone();
    // Applied with the AD values, so the mailbox starts its cloud-managed life in step with AD.
    mailbox.is_exchange_cloud_managed = new.is_exchange_cloud_managed;
    mailbox.email_addresses = new.email_addresses.clone();
    mailbox.custom_attributes =
        std::array::from_fn(|i| new.custom_attributes.get(i).cloned().unwrap_or_default());
    mailbox.extension_custom_attributes = std::array::from_fn(|i| {
        new.extension_custom_attributes
            .get(i)
            .cloned()
            .unwrap_or_default()
    });
    mailbox.hidden_from_address_lists = new.hidden_from_address_lists_enabled;
    mailbox.user_principal_name = new.user_principal_name.clone();
    if let Some(name) = &new.display_name {
        mailbox.display_name = name.clone();
    }
    if mailbox == before {
        return Ok(changed);
    }
    for address in mailbox.smtp_keys() {
        if let Some(owner) = tenant.smtp_owner(&address).filter(|g| *g != mailbox.guid) {
            return Err(format!(
                "SMTP address {address} is already used by mailbox {owner}"
            ));
        }
    }
    mailbox.when_changed = crate::clock::now_ticks().max(before.when_changed + 1);
    let guid = mailbox.guid.clone();
    tenant.put_mailbox(mailbox);
    tenant.sync_mailbox_to_user(&guid);
    Ok(true)
}

/// The keys `scripts/ad-dc start` writes to `.ad-dc/env`.
#[derive(Clone)]
pub struct AdEnv {
    pub ldaps_url: String,
    pub bind_dn: String,
    pub bind_password: String,
    pub base_dn: String,
    pub ca_cert: PathBuf,
}

impl std::fmt::Debug for AdEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdEnv")
            .field("ldaps_url", &self.ldaps_url)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"<redacted>")
            .field("base_dn", &self.base_dn)
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

/// Parses `KEY=value` lines (optional `export `, quotes and comments).
pub fn parse_env_file(path: &Path) -> Result<AdEnv, EmulatorError> {
    let text = std::fs::read_to_string(path).map_err(|e| EmulatorError::io(path, e))?;
    let mut values = HashMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            values.insert(k.trim().to_owned(), v.to_owned());
        }
    }
    let get = |k: &str| {
        values
            .get(k)
            .cloned()
            .ok_or_else(|| EmulatorError::EnvFile {
                path: path.to_owned(),
                message: format!("missing {k}"),
            })
    };
    let ca = PathBuf::from(get("CA_CERT")?);
    let ca_cert = if ca.is_relative() && !ca.exists() {
        path.parent().map(|p| p.join(&ca)).unwrap_or(ca)
    } else {
        ca
    };
    Ok(AdEnv {
        ldaps_url: get("LDAPS_URL")?,
        bind_dn: get("BIND_DN")?,
        bind_password: get("BIND_PASSWORD")?,
        base_dn: get("BASE_DN")?,
        ca_cert,
    })
}

fn ldap_err(e: impl std::fmt::Display) -> EmulatorError {
    EmulatorError::Ldap(e.to_string())
}

/// Reads the users under `ou` (or the base DN) over LDAPS with paged results. Referrals (the
/// domain root returns them for the DNS and configuration partitions) are skipped.
pub async fn read_ad(env_path: &Path, ou: Option<&str>) -> Result<Vec<AdEntry>, EmulatorError> {
    use ldap3::adapters::{EntriesOnly, PagedResults};
    use rustls_pki_types::pem::PemObject;

    let env = parse_env_file(env_path)?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(&env.ca_cert).map_err(|e| {
        EmulatorError::EnvFile {
            path: env.ca_cert.clone(),
            message: e.to_string(),
        }
    })?;
    for cert in certs {
        let cert = cert.map_err(|e| EmulatorError::EnvFile {
            path: env.ca_cert.clone(),
            message: e.to_string(),
        })?;
        roots.add(cert).map_err(ldap_err)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ldap_err)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings = ldap3::LdapConnSettings::new()
        .set_config(Arc::new(tls))
        .set_conn_timeout(std::time::Duration::from_secs(10));
    let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(settings, &env.ldaps_url)
        .await
        .map_err(ldap_err)?;
    ldap3::drive!(conn);
    ldap.simple_bind(&env.bind_dn, &env.bind_password)
        .await
        .map_err(ldap_err)?
        .success()
        .map_err(ldap_err)?;
    let base = ou.unwrap_or(&env.base_dn);
    let filter = "(&(objectCategory=person)(objectClass=user)(!(isCriticalSystemObject=TRUE)))";
    let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(500)),
    ];
    let mut stream = ldap
        .streaming_search_with(
            adapters,
            base,
            ldap3::Scope::Subtree,
            filter,
            IMPORT_ATTRIBUTES.to_vec(),
        )
        .await
        .map_err(ldap_err)?;
    let mut entries = Vec::new();
    while let Some(raw) = stream.next().await.map_err(ldap_err)? {
        if raw.is_ref() || raw.is_intermediate() {
            continue;
        }
        let entry = ldap3::SearchEntry::construct(raw);
        entries.push(AdEntry {
            dn: entry.dn,
            attrs: entry.attrs,
            bin_attrs: entry.bin_attrs,
        });
    }
    stream.finish().await.success().map_err(ldap_err)?;
    let _ = ldap.unbind().await;
    Ok(entries)
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;

//! A throwaway OU per test, and raw LDAP operations that stand in for other admins.

use crate::{DcEnv, Result, TestkitError};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Every attribute of one entry, as returned for `*`, for before/after comparisons.
pub type EntrySnapshot = BTreeMap<String, Vec<Vec<u8>>>;

/// An OU of its own for one test, under the domain root.
pub struct TestOu {
    pub dn: String,
    pub env: DcEnv,
    ldap: Ldap,
}

fn ldap_err(e: impl std::fmt::Display) -> TestkitError {
    TestkitError::Ldap(e.to_string())
}

fn check(result: ldap3::LdapResult, what: &str) -> Result<()> {
    if result.rc == 0 {
        Ok(())
    } else {
        Err(TestkitError::Ldap(format!(
            "{what}: rc {} {}",
            result.rc, result.text
        )))
    }
}

impl TestOu {
    /// Creates `OU=<name>-<unique>` under the base DN.
    pub async fn create(env: &DcEnv, name: &str) -> Result<TestOu> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let unique = format!(
            "{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let ldap = connect(env).await?;
        let dn = format!("OU={},{}", ldap3::dn_escape(unique.as_str()), env.base_dn);
        let ou = TestOu {
            dn,
            env: env.clone(),
            ldap,
        };
        let attrs = vec![
            ("objectClass", set(&["organizationalUnit"])),
            ("ou", set(&[unique.as_str()])),
        ];
        check(ou.ldap.clone().add(&ou.dn, attrs).await.map_err(ldap_err)?, "add OU")?;
        Ok(ou)
    }

    /// Adds a user `CN=<cn>` with the given extra attributes; returns its DN.
    pub async fn add_user(&self, cn: &str, extra: &[(&str, &[&str])]) -> Result<String> {
        let dn = format!("CN={},{}", ldap3::dn_escape(cn), self.dn);
        // sAMAccountName is unique per domain and at most 20 characters: a short readable
        // prefix plus a number unique to this process and call.
        static SAM_COUNTER: AtomicU32 = AtomicU32::new(0);
        let prefix: String = cn.chars().filter(|c| c.is_ascii_alphanumeric()).take(6).collect();
        let sam = format!(
            "{prefix}{:07}{:05}",
            std::process::id() % 10_000_000,
            SAM_COUNTER.fetch_add(1, Ordering::Relaxed) % 100_000
        );
        let mut attrs: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", set(&["user"])),
            ("cn", set(&[cn])),
            ("sAMAccountName", set(&[sam.as_str()])),
        ];
        for (name, values) in extra {
            attrs.push((name, values.iter().copied().collect()));
        }
        check(self.ldap.clone().add(&dn, attrs).await.map_err(ldap_err)?, "add user")?;
        Ok(dn)
    }

    /// A raw modify: another admin editing the object, outside writeback.
    pub async fn modify_raw(&self, dn: &str, mods: Vec<Mod<&str>>) -> Result<()> {
        check(self.ldap.clone().modify(dn, mods).await.map_err(ldap_err)?, "modify")
    }

    /// A raw modify with binary values (GUIDs, SIDs).
    pub async fn modify_raw_bytes(&self, dn: &str, mods: Vec<Mod<Vec<u8>>>) -> Result<()> {
        check(self.ldap.clone().modify(dn, mods).await.map_err(ldap_err)?, "modify")
    }

    /// Renames (and optionally moves) an entry, as an admin would; returns the new DN.
    pub async fn rename(&self, dn: &str, new_rdn: &str, new_parent: Option<&str>) -> Result<String> {
        check(
            self.ldap.clone().modifydn(dn, new_rdn, true, new_parent).await.map_err(ldap_err)?,
            "modify DN",
        )?;
        let parent = match new_parent {
            Some(p) => p.to_owned(),
            None => dn.split_once(',').map(|(_, p)| p.to_owned()).unwrap_or_default(),
        };
        Ok(format!("{new_rdn},{parent}"))
    }

    /// Adds a child OU under this one; returns its DN.
    pub async fn add_child_ou(&self, name: &str) -> Result<String> {
        let dn = format!("OU={},{}", ldap3::dn_escape(name), self.dn);
        let attrs = vec![("objectClass", set(&["organizationalUnit"])), ("ou", set(&[name]))];
        check(self.ldap.clone().add(&dn, attrs).await.map_err(ldap_err)?, "add OU")?;
        Ok(dn)
    }

    /// Every attribute (`*`) of the entry.
    pub async fn snapshot(&self, dn: &str) -> Result<EntrySnapshot> {
        let (entries, _) = self
            .ldap
            .clone()
            .search(dn, Scope::Base, "(objectClass=*)", vec!["*"])
            .await
            .map_err(ldap_err)?
            .success()
            .map_err(ldap_err)?;
        let entry = entries
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .ok_or_else(|| TestkitError::Ldap(format!("{dn} not found")))?;
        let mut snapshot = EntrySnapshot::new();
        for (k, v) in entry.attrs {
            snapshot.insert(k, v.into_iter().map(String::into_bytes).collect());
        }
        for (k, v) in entry.bin_attrs {
            snapshot.entry(k).or_default().extend(v);
        }
        for values in snapshot.values_mut() {
            values.sort();
        }
        Ok(snapshot)
    }

    /// Removes the OU and everything under it (tree delete control), best effort.
    pub async fn remove(self) -> Result<()> {
        let tree_delete = ldap3::controls::RawControl {
            ctype: "1.2.840.113556.1.4.805".into(),
            crit: true,
            val: None,
        };
        let mut ldap = self.ldap.clone();
        check(
            ldap.with_controls(tree_delete).delete(&self.dn).await.map_err(ldap_err)?,
            "tree delete",
        )
    }
}

fn set<'a>(values: &[&'a str]) -> HashSet<&'a str> {
    values.iter().copied().collect()
}

async fn connect(env: &DcEnv) -> Result<Ldap> {
    let tls = writeback_ad::tls::client_config(Some(&env.ca_cert))?;
    let settings = LdapConnSettings::new().set_config(tls);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &env.ldaps_url)
        .await
        .map_err(ldap_err)?;
    tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    check(
        ldap.simple_bind(&env.bind_dn, env.bind_password.expose())
            .await
            .map_err(ldap_err)?,
        "bind",
    )?;
    Ok(ldap)
}

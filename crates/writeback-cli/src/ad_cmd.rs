//! `writeback ad ...`: look at and write to the AD side directly (diagnostics, and the
//! on-demand path for one object until the engine's `provision` exists).

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use writeback_ad::{ids, AdDirectory, AdUser, UserKey};
use writeback_core::{plan, ManagedAttribute, Mailbox, PlanPolicy};

#[derive(Debug, Subcommand)]
pub enum AdCommand {
    /// Connect, bind, and check the schema has every managed attribute.
    Check,
    /// Show an object's managed attributes. KEY: a DN, an objectGUID, a SID, or a base64
    /// immutable id.
    Show {
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Plan one mailbox record (JSON, as `cloud pull --json` prints it) against an AD object
    /// and write the changes (or only print them with --dry-run).
    Write {
        /// The object: a DN, objectGUID, SID, or base64 immutable id.
        #[arg(long)]
        target: String,
        /// A file with one mailbox record in JSON.
        #[arg(long)]
        mailbox: PathBuf,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: AdCommand, dir: AdDirectory) -> Result<i32> {
    match command {
        AdCommand::Check => check(&dir).await,
        AdCommand::Show { key, json } => {
            let user = find_one(&dir, &key).await?;
            print_user(&user, json)?;
            Ok(0)
        }
        AdCommand::Write {
            target,
            mailbox,
            dry_run,
            json,
        } => write(&dir, &target, &mailbox, dry_run, json).await,
    }
}

async fn check(dir: &AdDirectory) -> Result<i32> {
    let root = dir.root_dse().await.context("reading the rootDSE")?;
    crate::out::line(format_args!("ok      connected to {} and bound", dir.config().url));
    crate::out::line(format_args!("        naming context {}", root.default_naming_context));
    crate::out::line(format_args!("        highestCommittedUSN {}", root.highest_committed_usn));
    let missing = dir.missing_schema_attributes().await?;
    if missing.is_empty() {
        crate::out::line(format_args!("ok      schema has all {} managed attributes", ManagedAttribute::ALL.len()));
        Ok(0)
    } else {
        crate::out::line(format_args!(
            "failed  schema lacks {}: extend it with Exchange's schema (or scripts/ad-dc's LDIF for a lab)",
            missing.join(", ")
        ));
        Ok(1)
    }
}

/// Parses KEY in the forms an administrator has at hand.
pub fn parse_key(key: &str) -> Result<UserKey> {
    let key = key.trim();
    if key.contains('=') && !key.ends_with('=') {
        return Ok(UserKey::Dn(key.to_owned()));
    }
    if key.to_ascii_uppercase().starts_with("S-1-") {
        return Ok(UserKey::Sid(key.to_owned()));
    }
    if let Some(bytes) = ids::guid_from_string(key) {
        return Ok(UserKey::ObjectGuid(bytes));
    }
    if let Ok(bytes) = ids::immutable_id_to_bytes(key) {
        return Ok(UserKey::ObjectGuid(bytes));
    }
    bail!("{key:?} is not a DN, GUID, SID or immutable id")
}

async fn find_one(dir: &AdDirectory, key: &str) -> Result<AdUser> {
    let key = parse_key(key)?;
    let mut found = dir.find(&key).await?;
    match found.len() {
        0 => bail!("no object matches {key:?}"),
        1 => Ok(found.remove(0)),
        n => bail!("{n} objects match {key:?}; refusing to guess"),
    }
}

fn print_user(user: &AdUser, json: bool) -> Result<()> {
    if json {
        let mut values = serde_json::Map::new();
        for attr in ManagedAttribute::ALL {
            let v = user.values.get(attr);
            if !v.is_empty() {
                values.insert(attr.ldap_name().into(), serde_json::json!(v));
            }
        }
        let out = serde_json::json!({
            "dn": user.dn,
            "objectGUID": user.guid_string(),
            "objectSid": user.object_sid,
            "uSNChanged": user.usn_changed,
            "protected": user.protection(),
            "values": values,
        });
        crate::out::line(format_args!("{}", serde_json::to_string_pretty(&out)?));
    } else {
        crate::out::line(format_args!("dn:          {}", user.dn));
        crate::out::line(format_args!("objectGUID:  {}", user.guid_string()));
        crate::out::line(format_args!("objectSid:   {}", user.object_sid.as_deref().unwrap_or("-")));
        crate::out::line(format_args!("uSNChanged:  {}", user.usn_changed));
        if let Some(reason) = user.protection() {
            crate::out::line(format_args!("protected:   {reason}"));
        }
        for attr in ManagedAttribute::ALL {
            for value in user.values.get(attr) {
                crate::out::line(format_args!("  {}: {value}", attr.ldap_name()));
            }
        }
    }
    Ok(())
}

async fn write(
    dir: &AdDirectory,
    target: &str,
    mailbox_file: &PathBuf,
    dry_run: bool,
    json: bool,
) -> Result<i32> {
    let text = std::fs::read_to_string(mailbox_file)
        .with_context(|| format!("cannot read {}", mailbox_file.display()))?;
    let mailbox: Mailbox = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a mailbox record", mailbox_file.display()))?;
    let user = find_one(dir, target).await?;
    let mods = match plan(&mailbox, &user.values, &PlanPolicy::default()) {
        Ok(mods) => mods,
        Err(e) => {
            eprintln!("mailbox {} is invalid: {e}", mailbox.cloud_id);
            return Ok(2);
        }
    };
    if json {
        crate::out::line(format_args!(
            "{}",
            serde_json::json!({"dn": user.dn, "changes": mods, "applied": !dry_run && !mods.is_empty()})
        ));
    } else if mods.is_empty() {
        crate::out::line(format_args!("{}: nothing to write, AD already matches the cloud record", user.dn));
    } else {
        crate::out::line(format_args!("plan for {} ({} changes):", user.dn, mods.len()));
        for m in &mods {
            crate::out::line(format_args!("  {:<7} {}: {:?}", format!("{:?}", m.op).to_lowercase(), m.attribute.ldap_name(), m.values));
        }
    }
    if dry_run || mods.is_empty() {
        return Ok(0);
    }
    dir.apply(&user, &mods).await?;
    if !json {
        crate::out::line(format_args!("written."));
    }
    Ok(0)
}

//! The `writeback ad ...` commands, run as a user would run them, against the real DC.
// Test helpers outside #[test] functions may fail loudly: that is what a test is for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use writeback_testkit::{ensure_dc, DcEnv, TestOu};

fn writeback(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writeback"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run writeback")
}

/// A config folder with a password file, the way an administrator would set it up.
fn config_dir(env: &DcEnv, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wb-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ad-password"), env.bind_password.expose()).unwrap();
    std::fs::copy(&env.ca_cert, dir.join("dc-ca.pem")).unwrap();
    let toml = format!(
        "[ad]\nurl = \"{}\"\nbind_dn = \"{}\"\nbind_password_file = \"ad-password\"\nca_file = \"dc-ca.pem\"\nbase_dn = \"{}\"\n",
        env.ldaps_url, env.bind_dn, env.base_dn
    );
    std::fs::write(dir.join("writeback.toml"), toml).unwrap();
    dir
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn check_show_and_write_one_mailbox() {
    let env = ensure_dc().unwrap();
    let ou = TestOu::create(&env, "cli").await.unwrap();
    let dn = ou
        .add_user("Mary Jackson", &[("proxyAddresses", &["SMTP:mary@example.test"])])
        .await
        .unwrap();
    let dir = config_dir(&env, "check");
    let config = dir.join("writeback.toml");

    let out = writeback(&config, &["ad", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("schema has all 25 managed attributes"), "{}", text(&out));
    assert!(!text(&out).contains(env.bind_password.expose()), "the password is never printed");

    let record = serde_json::json!({
        "cloud_id": "11111111-2222-3333-4444-555555555555",
        "primary_smtp": "mary@example.test",
        "proxy_addresses": ["SMTP:mary@example.test", "smtp:m.jackson@example.test"],
        "custom_attributes": {"5": "Engineering"},
        "hidden_from_address_lists": true,
        "recipient_type_details": "UserMailbox"
    });
    std::fs::write(dir.join("mary.json"), record.to_string()).unwrap();
    let mailbox = dir.join("mary.json");
    let mailbox = mailbox.to_str().unwrap();

    let out = writeback(&config, &["ad", "write", "--target", &dn, "--mailbox", mailbox, "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["applied"], false);
    let changes = plan["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["attribute"] == "extensionAttribute5" && c["op"] == "add"));

    let shown = writeback(&config, &["ad", "show", &dn, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert!(shown["values"].get("extensionAttribute5").is_none(), "dry run wrote nothing");

    let out = writeback(&config, &["ad", "write", "--target", &dn, "--mailbox", mailbox]);
    assert!(out.status.success(), "{}", text(&out));
    // Looked up by GUID this time: every key form an administrator has at hand works.
    let guid = shown["objectGUID"].as_str().unwrap().to_owned();
    let shown = writeback(&config, &["ad", "show", &guid, "--json"]);
    assert!(shown.status.success(), "{}", text(&shown));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["values"]["extensionAttribute5"], serde_json::json!(["Engineering"]));
    assert_eq!(shown["values"]["msExchRecipientTypeDetails"], serde_json::json!(["2147483648"]));

    // Idempotent: the same record again plans nothing.
    let out = writeback(&config, &["ad", "write", "--target", &guid, "--mailbox", mailbox, "--json"]);
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["changes"].as_array().unwrap().len(), 0);

    // An invalid record stops with a specific error and writes nothing.
    let bad = serde_json::json!({"cloud_id": "x", "proxy_addresses": ["smtp:only-secondary@example.test"]});
    std::fs::write(dir.join("bad.json"), bad.to_string()).unwrap();
    let out = writeback(&config, &["ad", "write", "--target", &dn, "--mailbox", dir.join("bad.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("proxyAddresses"), "{}", text(&out));
    ou.remove().await.ok();
}

#[test]
fn configuration_errors_are_clear() {
    let dir = std::env::temp_dir().join(format!("wb-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("writeback.toml");

    let out = writeback(&dir.join("missing.toml"), &["ad", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot read config file"), "{}", text(&out));

    std::fs::write(&config, "[ad]\nurl = \"ldap://127.0.0.1\"\nbind_dn = \"cn=x\"\nbind_password_env = \"WB_NOPE\"\nbase_dn = \"dc=x\"\n").unwrap();
    let out = writeback(&config, &["ad", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("plain LDAP"), "{}", text(&out));

    std::fs::write(&config, "[ad]\nurl = \"ldaps://127.0.0.1\"\nbind_dn = \"cn=x\"\nbase_dn = \"dc=x\"\ntypo_key = 1\n").unwrap();
    let out = writeback(&config, &["ad", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("typo_key"), "{}", text(&out));
}

//! The AD import against the project's real Samba AD DC (`scripts/ad-dc`), in an OU of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use base64::Engine;
use ldap3::Mod;
use serde_json::Value;
use std::collections::HashSet;
use tenant_emulator::model::UserProp;
use tenant_emulator::{EmulatorConfig, RunningEmulator};
use writeback_testkit::{ensure_dc, project_root, TestOu};

#[tokio::test]
async fn import_reads_users_and_reimport_updates_by_anchor() {
    let env = ensure_dc().expect("the test DC starts");
    let ou = TestOu::create(&env, "emulator-import")
        .await
        .expect("test OU");
    let unique = ou
        .dn
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("OU=")
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let ada_upn = format!("ada.{unique}@example.test");
    let ada_smtp = format!("ada.{unique}@mail.example.test");
    let bob_upn = format!("bob.{unique}@example.test");
    let ada = ou
        .add_user(
            "Ada Import",
            &[
                ("userPrincipalName", &[ada_upn.as_str()]),
                ("displayName", &["Ada Import"]),
                (
                    "proxyAddresses",
                    &[
                        format!("SMTP:{ada_smtp}").as_str(),
                        format!("smtp:a.{unique}@example.test").as_str(),
                    ],
                ),
                ("extensionAttribute5", &["Finance"]),
                ("msExchExtensionCustomAttribute2", &["x", "y"]),
                ("msExchHideFromAddressLists", &["TRUE"]),
            ],
        )
        .await
        .expect("add ada");
    let bob = ou
        .add_user("Bob Import", &[("userPrincipalName", &[bob_upn.as_str()])])
        .await
        .expect("add bob");

    let dir = std::env::temp_dir().join(format!("tenant-emulator-dc-{}", uuid::Uuid::new_v4()));
    let emu = RunningEmulator::start(EmulatorConfig::new(&dir))
        .await
        .unwrap();
    let env_file = project_root().join(".ad-dc/env");
    let summary = emu
        .import_ad(&env_file, Some(&ou.dn))
        .await
        .expect("import");
    assert_eq!((summary.created, summary.updated), (2, 0), "{summary:?}");
    assert!(summary.errors.is_empty(), "{summary:?}");

    // Compare with what AD holds, byte for byte.
    let snapshot = ou.snapshot(&ada).await.unwrap();
    let guid = snapshot.get("objectGUID").unwrap()[0].clone();
    let sid =
        tenant_emulator::import::sid_to_string(&snapshot.get("objectSid").unwrap()[0]).unwrap();
    assert!(sid.starts_with("S-1-5-21-"), "{sid}");

    let http = {
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(emu.ca_cert_path()).unwrap()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(ca)
            .build()
            .unwrap()
    };
    let token = |scope: &'static str| {
        let http = http.clone();
        let url = format!("{}/{}/oauth2/v2.0/token", emu.base_url(), emu.tenant_id());
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", emu.client_id().to_owned()),
            ("client_secret", emu.client_secret().to_owned()),
            ("scope", scope.to_owned()),
        ];
        async move {
            let body: Value = http
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let graph = token("https://graph.microsoft.com/.default").await;
    let delta: Value = http
        .get(format!("{}/v1.0/users/delta?$select=userPrincipalName,onPremisesImmutableId,onPremisesSecurityIdentifier,onPremisesDistinguishedName,onPremisesSamAccountName,onPremisesDomainName,proxyAddresses", emu.base_url()))
        .bearer_auth(&graph)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = delta["value"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    let ada_user = users
        .iter()
        .find(|u| u["userPrincipalName"] == ada_upn.as_str())
        .unwrap();
    assert_eq!(
        ada_user["onPremisesImmutableId"],
        base64::engine::general_purpose::STANDARD.encode(&guid)
    );
    assert_eq!(ada_user["onPremisesSecurityIdentifier"], sid.as_str());
    assert_eq!(
        ada_user["onPremisesDistinguishedName"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        ada.to_lowercase()
    );
    assert_eq!(ada_user["onPremisesDomainName"], "example.test");
    assert!(ada_user["onPremisesSamAccountName"]
        .as_str()
        .unwrap()
        .starts_with("AdaImp"));

    let exchange = token("https://outlook.office365.com/.default").await;
    let get_mailbox = |identity: String| {
        let http = http.clone();
        let url = format!(
            "{}/adminapi/beta/{}/InvokeCommand",
            emu.base_url(),
            emu.tenant_id()
        );
        let exchange = exchange.clone();
        async move {
            let body: Value = http
                .post(url)
                .bearer_auth(exchange)
                .json(&serde_json::json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"Identity": identity}}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["value"][0].clone()
        }
    };
    let mailbox = get_mailbox(ada_upn.clone()).await;
    assert_eq!(mailbox["PrimarySmtpAddress"], ada_smtp.as_str());
    assert_eq!(mailbox["CustomAttribute5"], "Finance");
    let ext: HashSet<&str> = mailbox["ExtensionCustomAttribute2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ext, HashSet::from(["x", "y"]));
    assert_eq!(mailbox["HiddenFromAddressListsEnabled"], true);
    assert_eq!(mailbox["IsExchangeCloudManaged"], false);
    // Bob has no proxyAddresses: his UPN becomes the primary SMTP address.
    assert_eq!(
        get_mailbox(bob_upn.clone()).await["PrimarySmtpAddress"],
        bob_upn.as_str()
    );
    let _ = bob;

    let again = emu.import_ad(&env_file, Some(&ou.dn)).await.unwrap();
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, 2),
        "{again:?}"
    );
    ou.modify_raw(
        &ada,
        vec![Mod::Replace(
            "extensionAttribute5",
            HashSet::from(["Legal"]),
        )],
    )
    .await
    .unwrap();
    let third = emu.import_ad(&env_file, Some(&ou.dn)).await.unwrap();
    assert_eq!((third.created, third.updated), (0, 1), "{third:?}");
    assert_eq!(
        get_mailbox(ada_upn.clone()).await["CustomAttribute5"],
        "Legal"
    );
    assert_eq!(
        UserProp::from_graph_name("onPremisesImmutableId"),
        Some(UserProp::OnPremisesImmutableId)
    );

    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    ou.remove().await.unwrap();
}

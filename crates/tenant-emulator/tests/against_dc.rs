//! The AD import against the project's real Samba AD DC (`scripts/ad-dc`), in an OU of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use base64::Engine;
use ldap3::Mod;
use serde_json::Value;
use std::collections::HashSet;
use tenant_emulator::import::ImportOptions;
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
        .import_ad(&env_file, Some(&ou.dn), ImportOptions::default())
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

    let again = emu
        .import_ad(&env_file, Some(&ou.dn), ImportOptions::default())
        .await
        .unwrap();
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
    let third = emu
        .import_ad(&env_file, Some(&ou.dn), ImportOptions::default())
        .await
        .unwrap();
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

#[tokio::test]
async fn control_api_import_can_make_every_mailbox_cloud_managed() {
    let env = ensure_dc().expect("the test DC starts");
    let ou = TestOu::create(&env, "emulator-cloud-import")
        .await
        .expect("test OU");
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let cy_upn = format!("cy.{unique}@example.test");
    let di_upn = format!("di.{unique}@example.test");
    let cy = ou
        .add_user(
            "Cy Cloud",
            &[
                ("userPrincipalName", &[cy_upn.as_str()]),
                ("extensionAttribute2", &["from AD"]),
            ],
        )
        .await
        .expect("add cy");
    ou.add_user("Di Cloud", &[("userPrincipalName", &[di_upn.as_str()])])
        .await
        .expect("add di");

    let dir = std::env::temp_dir().join(format!("tenant-emulator-dc-{}", uuid::Uuid::new_v4()));
    let emu = RunningEmulator::start(EmulatorConfig::new(&dir))
        .await
        .unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(emu.ca_cert_path()).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let import = || {
        let request = http
            .post(format!("{}/_emulator/import-ad", emu.base_url()))
            .bearer_auth(emu.control_token())
            .json(&serde_json::json!({
                "env": project_root().join(".ad-dc/env"),
                "ou": ou.dn,
                "cloudManaged": true,
            }));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    let summary = import().await;
    assert_eq!(
        (&summary["created"], &summary["updated"]),
        (&2.into(), &0.into()),
        "{summary}"
    );
    assert_eq!(summary["errors"], serde_json::json!([]));

    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", emu.client_id()),
        ("client_secret", emu.client_secret()),
        ("scope", "https://outlook.office365.com/.default"),
    ];
    let token: Value = http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            emu.tenant_id()
        ))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cloud_managed = || {
        let request = http
            .post(format!(
                "{}/adminapi/beta/{}/InvokeCommand",
                emu.base_url(),
                emu.tenant_id()
            ))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .json(
                &serde_json::json!({"CmdletInput": {"CmdletName": "Get-Mailbox",
                "Parameters": {"Filter": "IsExchangeCloudManaged -eq $true"}}}),
            );
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["value"].as_array().unwrap().clone()
        }
    };
    let mailboxes = cloud_managed().await;
    let upns: HashSet<&str> = mailboxes
        .iter()
        .map(|m| m["UserPrincipalName"].as_str().unwrap())
        .collect();
    assert_eq!(upns, HashSet::from([cy_upn.as_str(), di_upn.as_str()]));
    let cy_mailbox = mailboxes
        .iter()
        .find(|m| m["UserPrincipalName"] == cy_upn.as_str())
        .unwrap();
    assert_eq!(cy_mailbox["CustomAttribute2"], "from AD");

    // Once cloud-managed, the cloud masters the Exchange attributes: AD's change stays out.
    ou.modify_raw(
        &cy,
        vec![Mod::Replace(
            "extensionAttribute2",
            HashSet::from(["changed in AD"]),
        )],
    )
    .await
    .unwrap();
    let again = import().await;
    assert_eq!(
        (&again["updated"], &again["unchanged"]),
        (&0.into(), &2.into()),
        "{again}"
    );
    let mailboxes = cloud_managed().await;
    assert_eq!(mailboxes.len(), 2);
    assert!(mailboxes
        .iter()
        .all(|m| m["CustomAttribute2"] != "changed in AD"));

    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    ou.remove().await.unwrap();
}

#[tokio::test]
async fn import_ad_subcommand_with_cloud_managed_flag() {
    let env = ensure_dc().expect("the test DC starts");
    let ou = TestOu::create(&env, "emulator-cli-import")
        .await
        .expect("test OU");
    let upn = format!("ed.{}@example.test", uuid::Uuid::new_v4().simple());
    ou.add_user("Ed Cli", &[("userPrincipalName", &[upn.as_str()])])
        .await
        .expect("add ed");
    let dir = std::env::temp_dir().join(format!("tenant-emulator-dc-{}", uuid::Uuid::new_v4()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenant-emulator"))
        .args(["import-ad", "--cloud-managed", "--ou", &ou.dn])
        .arg("--env")
        .arg(project_root().join(".ad-dc/env"))
        .arg("--state-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("imported: 1 created"), "{stdout}");

    let tenant = tenant_emulator::state::load_tenant(&dir).unwrap().unwrap();
    let guid = tenant.resolve_mailbox(&upn).expect("imported");
    assert!(tenant.mailboxes[guid].is_exchange_cloud_managed);
    let _ = std::fs::remove_dir_all(&dir);
    ou.remove().await.unwrap();
}

//! `writeback cloud pull` against the tenant emulator over HTTPS, through throttling,
//! server errors, dropped connections, truncated and expired pages and a Graph resync.
// Test helpers outside #[test] functions may fail loudly: that is what a test is for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use tenant_emulator::{EmulatorConfig, RunningEmulator};

struct Control {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Control {
    fn new(emu: &RunningEmulator) -> Control {
        let ca = std::fs::read(emu.ca_cert_path()).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        Control { http, base: emu.base_url(), token: emu.control_token().to_owned() }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/_emulator/{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

fn write_config(dir: &Path, emu: &RunningEmulator) -> std::path::PathBuf {
    std::fs::write(dir.join("client-secret"), emu.client_secret()).unwrap();
    let base = emu.base_url();
    let toml = format!(
        r#"[cloud]
tenant_id = "{}"
client_id = "{}"
client_secret_file = "client-secret"
login_url = "{base}"
graph_url = "{base}"
exchange_url = "{base}"
ca_file = "{}"
exchange_page_size = 7
retry_base_delay_ms = 50
"#,
        emu.tenant_id(),
        emu.client_id(),
        emu.ca_cert_path().display()
    );
    let path = dir.join("writeback.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_lists_exactly_the_cloud_managed_mailboxes_through_faults() {
    let dir = std::env::temp_dir().join(format!("wb-cli-cloud-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = EmulatorConfig::new(dir.join("emulator"));
    config.graph_page_size = 9;
    let emu = RunningEmulator::start(config).await.unwrap();
    let control = Control::new(&emu);

    // 40 mailboxes; every third one is cloud-managed.
    let mut expected = BTreeMap::new();
    for i in 0..40u32 {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let smtp = format!("user{i}@contoso.com");
        let immutable = format!("AAAAAAAAAAAAAAAAAAAA{i:02}==");
        let sid = format!("S-1-5-21-1-2-3-{}", 1100 + i);
        let managed = i % 3 == 0;
        let mut custom = vec![String::new(); 15];
        custom[2] = format!("dept {i}");
        control
            .post(
                "mailboxes",
                json!({
                    "id": id, "userPrincipalName": smtp, "displayName": format!("User {i}"),
                    "alias": format!("user{i}"),
                    "emailAddresses": [format!("SMTP:{smtp}"), format!("smtp:u{i}@contoso.mail.onmicrosoft.com")],
                    "onPremisesImmutableId": immutable, "onPremisesSecurityIdentifier": sid,
                    "customAttributes": custom, "isExchangeCloudManaged": managed,
                }),
            )
            .await;
        if managed {
            expected.insert(id, (smtp, immutable, sid, format!("dept {i}")));
        }
    }

    control
        .post(
            "faults",
            json!([
                {"path_prefix": "/v1.0/users/delta", "fault": "throttle", "retry_after": "0.3", "count": 1},
                {"path_prefix": "/v1.0/users/delta", "fault": "status", "status": 503, "count": 1},
                {"path_prefix": "/v1.0/users/delta", "fault": "expire_page", "count": 1},
                {"path_prefix": "/adminapi/", "fault": "throttle", "retry_after": "1", "count": 1},
                {"path_prefix": "/adminapi/", "fault": "drop", "count": 1},
                {"path_prefix": "/adminapi/", "fault": "truncate", "count": 1},
                {"path_prefix": "/adminapi/", "fault": "expire_page", "count": 1},
            ]),
        )
        .await;

    let config_path = write_config(&dir, &emu);
    let binary = env!("CARGO_BIN_EXE_writeback");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(binary).arg("--config").arg(&config_path).args(["cloud", "pull", "--json"]).output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(emu.client_secret()), "the secret is never printed");

    let mut got = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let id = record["cloud_id"].as_str().unwrap().to_owned();
        let previous = got.insert(
            id.clone(),
            (
                record["primary_smtp"].as_str().unwrap().to_owned(),
                record["anchors"]["immutable_id"].as_str().unwrap().to_owned(),
                record["anchors"]["sid"].as_str().unwrap().to_owned(),
                record["custom_attributes"]["3"].as_str().unwrap().to_owned(),
            ),
        );
        assert!(previous.is_none(), "{id} printed twice");
        assert_eq!(record["proxy_addresses"].as_array().unwrap().len(), 2);
    }
    assert_eq!(got, expected, "exactly the cloud-managed mailboxes, with their anchors");

    let faults: Value = control
        .http
        .get(format!("{}/_emulator/faults", control.base))
        .bearer_auth(&control.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults.as_array().map(Vec::len), Some(0), "every injected fault was hit: {faults}");
    emu.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_emulator::{EmulatorConfig, RunningEmulator};

use crate::{client_for, Harness, TempDir, EXCHANGE_SCOPE, GRAPH_SCOPE};

#[tokio::test]
async fn restart_keeps_tenant_app_certificates_and_delta_tokens() {
    let dir = TempDir::new();
    let mut config = EmulatorConfig::new(&dir.0);
    config.synthetic_mailboxes = 5;
    let first = RunningEmulator::start(config.clone()).await.unwrap();
    let http = client_for(&first.ca_cert_path());
    let h = Harness {
        emu: first,
        http,
        _dir: TempDir::new(),
    };
    let x = h.token(EXCHANGE_SCOPE).await;
    let g = h.token(GRAPH_SCOPE).await;
    let (status, _) = h.exo(&x, "Set-Mailbox", json!({"Identity": "user000003", "CustomAttribute9": "persisted", "IsExchangeCloudManaged": true}), None).await;
    assert_eq!(status, StatusCode::OK);
    let (s, created) = h
        .control(
            Method::POST,
            "/_emulator/mailboxes",
            Some(json!({"userPrincipalName": "kept@contoso.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, _, round) = h.graph_get(&h.url("/v1.0/users/delta"), &g, &[]).await;
    let delta = round["@odata.deltaLink"].as_str().unwrap().to_owned();
    let (client_id, secret, ca) = (
        h.emu.client_id().to_owned(),
        h.emu.client_secret().to_owned(),
        std::fs::read(h.emu.ca_cert_path()).unwrap(),
    );
    let Harness { emu, .. } = h;
    emu.shutdown().await;

    // Same port is not required: clients re-read the base URL.
    let second = RunningEmulator::start(config).await.unwrap();
    assert_eq!(second.client_id(), client_id);
    assert_eq!(second.client_secret(), secret);
    assert_eq!(
        std::fs::read(second.ca_cert_path()).unwrap(),
        ca,
        "clients keep trusting the same CA"
    );
    let http = client_for(&second.ca_cert_path());
    let h = Harness {
        emu: second,
        http,
        _dir: TempDir::new(),
    };
    let x = h.token(EXCHANGE_SCOPE).await;
    let (_, body) = h
        .exo(&x, "Get-Mailbox", json!({"Identity": "user000003"}), None)
        .await;
    assert_eq!(body["value"][0]["CustomAttribute9"], "persisted");
    assert_eq!(body["value"][0]["IsExchangeCloudManaged"], true);
    let (status, _) = h
        .exo(
            &x,
            "Get-Mailbox",
            json!({"Identity": created["guid"]}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = h
        .exo(&x, "Get-Mailbox", json!({"ResultSize": "Unlimited"}), None)
        .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 6);
    // The deltaLink minted before the restart still works (on the new base URL).
    let path = delta.split_once("/v1.0/").unwrap().1;
    let g = h.token(GRAPH_SCOPE).await;
    let (status, _, body) = h.graph_get(&h.url(&format!("/v1.0/{path}")), &g, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], json!([]));
    let Harness { emu, .. } = h;
    emu.shutdown().await;
}

#[tokio::test]
async fn debounced_save_writes_the_state_file_while_running() {
    let h = Harness::start_with(2, |c| {
        c.save_debounce = std::time::Duration::from_millis(50)
    })
    .await;
    let x = h.token(EXCHANGE_SCOPE).await;
    h.exo(
        &x,
        "Set-Mailbox",
        json!({"Identity": "user000001", "CustomAttribute4": "on-disk"}),
        None,
    )
    .await;
    let path = h.emu.state_dir().join("tenant.json");
    let mut found = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if std::fs::read_to_string(&path).unwrap().contains("on-disk") {
            found = true;
            break;
        }
    }
    assert!(found, "the change reached tenant.json without a shutdown");
}

#[tokio::test]
async fn synthetic_200k_tenant_builds_quickly() {
    let dir = TempDir::new();
    let started = std::time::Instant::now();
    let mut tenant = tenant_emulator::model::Tenant::default();
    tenant_emulator::provisioning::add_synthetic_mailboxes(
        &mut tenant,
        "contoso.onmicrosoft.com",
        200_000,
    );
    let built = started.elapsed();
    assert_eq!(tenant.mailboxes.len(), 200_000);
    assert_eq!(tenant.users.len(), 200_000);
    assert_eq!(
        tenant
            .mailboxes
            .values()
            .filter(|m| m.is_exchange_cloud_managed)
            .count(),
        20_000
    );
    let started = std::time::Instant::now();
    let bytes = serde_json::to_vec(&tenant).unwrap();
    tenant_emulator::state::write_atomically(&dir.0.join("tenant.json"), &bytes).unwrap();
    let saved = started.elapsed();
    let started = std::time::Instant::now();
    let loaded = tenant_emulator::state::load_tenant(&dir.0)
        .unwrap()
        .unwrap();
    assert_eq!(loaded.mailboxes.len(), 200_000);
    assert!(loaded.resolve_mailbox("user199999@contoso.com").is_some());
    println!(
        "synthetic 200k tenant: built in {built:.2?}, saved ({} MB) in {saved:.2?}, loaded in {:.2?}",
        bytes.len() / 1_000_000,
        started.elapsed()
    );
}

const FILES_KEPT_WITHOUT_PERSISTENCE: [&str; 8] = [
    "ca.pem",
    "server.pem",
    "server-key.pem",
    "app-cert.pem",
    "app-key.pem",
    "client-secret",
    "control-token",
    "emulator.json",
];

#[tokio::test]
async fn without_persistence_tenant_json_is_never_written() {
    let h = Harness::start_with(3, |c| {
        c.persist = false;
        c.save_debounce = std::time::Duration::from_millis(20);
    })
    .await;
    let dir = h.emu.state_dir();
    let x = h.token(EXCHANGE_SCOPE).await;
    let (status, _) = h
        .exo(
            &x,
            "Set-Mailbox",
            json!({"Identity": "user000001", "CustomAttribute4": "memory only"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, body) = h.control(Method::POST, "/_emulator/save", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, body) = h
        .exo(&x, "Get-Mailbox", json!({"Identity": "user000001"}), None)
        .await;
    assert_eq!(body["value"][0]["CustomAttribute4"], "memory only");
    let Harness { emu, _dir, .. } = h;
    emu.shutdown().await;
    assert!(!dir.join("tenant.json").exists());
    for file in FILES_KEPT_WITHOUT_PERSISTENCE {
        assert!(dir.join(file).exists(), "{file}");
    }
}

#[test]
fn serve_no_persist_flag_serves_and_stops_without_saving() {
    use std::io::BufRead;
    let dir = TempDir::new();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tenant-emulator"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--mailboxes",
            "2",
            "--no-persist",
        ])
        .arg("--state-dir")
        .arg(&dir.0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("control token:");
        banner.push(line);
        if done {
            break;
        }
    }
    assert!(
        banner.iter().any(|l| l.starts_with("base URL:")),
        "{banner:?}"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    assert!(
        rest.iter().any(|l| l.contains("not saved (--no-persist)")),
        "{rest:?}"
    );
    assert!(!dir.0.join("tenant.json").exists());
    for file in FILES_KEPT_WITHOUT_PERSISTENCE {
        assert!(dir.0.join(file).exists(), "{file}");
    }
}

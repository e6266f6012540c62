//! The engine's commands as an administrator runs them: check, sync --once, status, and the
//! `run` service stopping cleanly on SIGTERM, against the real DC and the tenant emulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tenant_emulator::{EmulatorConfig, RunningEmulator};
use writeback_testkit::{ensure_dc, project_root, TestOu};

fn writeback(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writeback")).arg("--config").arg(config).args(args).output().unwrap()
}

/// The value of one series (name and labels exactly as rendered) in a Prometheus text page.
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn control(http: &reqwest::Client, emu: &RunningEmulator, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = http
        .request(method, format!("{}/_emulator/{path}", emu.base_url()))
        .bearer_auth(emu.control_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_sync_status_and_a_clean_stop_of_run() {
    let env = ensure_dc().unwrap();
    let ou = TestOu::create(&env, "cli-engine").await.unwrap();
    let mut dns = Vec::new();
    for i in 0..3 {
        let smtp = format!("cli-engine-{i}@example.test");
        let primary = format!("SMTP:{smtp}");
        dns.push(ou.add_user(&format!("CLI Engine {i}"), &[("mail", &[smtp.as_str()]), ("proxyAddresses", &[primary.as_str()])]).await.unwrap());
    }
    let dir = std::env::temp_dir().join(format!("wb-cli-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let emu = RunningEmulator::start(EmulatorConfig::new(dir.join("emulator"))).await.unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(emu.ca_cert_path()).unwrap()).unwrap())
        .build()
        .unwrap();
    let env_file = project_root().join(".ad-dc/env");
    control(&http, &emu, reqwest::Method::POST, "import-ad", json!({"env": env_file, "ou": ou.dn})).await;
    for i in 0..3 {
        let id = format!("cli-engine-{i}@example.test");
        control(&http, &emu, reqwest::Method::POST, &format!("mailboxes/{id}/cloud-managed"), json!({"enabled": true})).await;
        control(&http, &emu, reqwest::Method::PATCH, &format!("mailboxes/{id}"), json!({"CustomAttribute4": format!("from the cloud {i}")})).await;
    }

    std::fs::write(dir.join("secret"), emu.client_secret()).unwrap();
    std::fs::write(dir.join("ad-password"), env.bind_password.expose()).unwrap();
    let base = emu.base_url();
    let config_text = |password_file: &str| {
        format!(
            "[cloud]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"secret\"\nlogin_url = \"{base}\"\ngraph_url = \"{base}\"\nexchange_url = \"{base}\"\nca_file = \"{}\"\n\n[ad]\nurl = \"{}\"\nbind_dn = \"{}\"\nbind_password_file = \"{password_file}\"\nca_file = \"{}\"\nbase_dn = \"{}\"\nscope = [\"{}\"]\n\n[state]\npath = \"state.db\"\n\n[engine]\npoll_interval_secs = 1\n",
            emu.tenant_id(), emu.client_id(), emu.ca_cert_path().display(), env.ldaps_url, env.bind_dn,
            env.ca_cert.display(), env.base_dn, ou.dn
        )
    };
    let config: PathBuf = dir.join("writeback.toml");
    std::fs::write(&config, config_text("ad-password")).unwrap();

    let out = writeback(&config, &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    for item in ["TLS validated", "schema has all 25", "may write every managed attribute", "token for Graph", "token for Exchange Online", "answers Get-Mailbox"] {
        assert!(text(&out).contains(item), "check reports {item:?}:\n{}", text(&out));
    }
    let bad = dir.join("bad.toml");
    std::fs::write(dir.join("wrong-password"), "not the password").unwrap();
    std::fs::write(&bad, config_text("wrong-password")).unwrap();
    let out = writeback(&bad, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("failed") && text(&out).contains("fix:"), "{}", text(&out));
    // A refused token stops the cycle with Entra's reason, said once (it used to be printed
    // twice: once in the engine's message, once more as that message's cause).
    let wrong_secret = dir.join("wrong-secret.toml");
    std::fs::write(dir.join("wrong-secret"), "not the secret").unwrap();
    std::fs::write(&wrong_secret, config_text("ad-password").replace("client_secret_file = \"secret\"", "client_secret_file = \"wrong-secret\"")).unwrap();
    let out = writeback(&wrong_secret, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error_line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(error_line.starts_with("error: cloud: authentication against"), "{error_line}");
    assert_eq!(error_line.matches("AADSTS7000215").count(), 1, "{error_line}");
    assert!(!stderr.contains("not the secret"), "the secret is never printed");

    // The plan, streamed to stdout and to a file: the same document, one object per change.
    let saved = dir.join("plan.json");
    let out = writeback(&config, &["plan", "--json", "--out", saved.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let filed: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(printed, filed);
    assert_eq!(printed["summary"]["planned"], 3, "{printed}");
    let objects = printed["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 3, "{printed}");
    assert!(objects.iter().all(|o| o["status"] == "planned" && o["changes"].as_array().is_some_and(|c| !c.is_empty())), "{printed}");

    let out = writeback(&config, &["sync", "--once", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let applied = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("\"status\":\"applied\"")).count();
    assert_eq!(applied, 3, "{}", text(&out));
    let out = writeback(&config, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The service: a change lands while it runs, the scrape endpoint counts it; SIGTERM stops
    // it cleanly.
    let metrics_addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let service_config = dir.join("service.toml");
    std::fs::write(&service_config, format!("{}\n[metrics]\nlisten = \"{metrics_addr}\"\n", config_text("ad-password"))).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_writeback"))
        .arg("--config")
        .arg(&service_config)
        .arg("run")
        .env("WRITEBACK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    control(&http, &emu, reqwest::Method::PATCH, "mailboxes/cli-engine-0@example.test", json!({"CustomAttribute4": "while running"})).await;
    let ad = writeback_ad::AdDirectory::connect(env.ad_config().unwrap()).await.unwrap();
    let attr = writeback_core::ManagedAttribute::from_ldap_name("extensionAttribute4").unwrap();
    let mut landed = false;
    for _ in 0..100 {
        let user = ad.read(&dns[0]).await.unwrap().unwrap();
        if user.values.get(attr) == ["while running"] {
            landed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut scraped = String::new();
    for _ in 0..50 {
        // Cycles run every second: the one that applied the change is counted once it ends.
        scraped = reqwest::get(format!("http://{metrics_addr}/metrics")).await.unwrap().text().await.unwrap();
        if metric(&scraped, "writeback_mailboxes_total{outcome=\"applied\"}") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = run.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = run.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(landed, "the change reached AD within 10 s:\n{log}");
    assert!(out.status.success(), "run exits 0 on SIGTERM:\n{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    assert!(metric(&scraped, "writeback_mailboxes_total{outcome=\"applied\"}") >= 1.0, "{scraped}");
    assert!(metric(&scraped, "writeback_cycles_total{pass=\"incremental\",result=\"complete\"}") >= 1.0, "{scraped}");
    assert!(metric(&scraped, "writeback_cloud_requests_total{service=\"exchange\",status=\"2xx\"}") >= 1.0, "{scraped}");
    assert!(metric(&scraped, "writeback_last_complete_cycle_timestamp_seconds") > 1.7e9, "{scraped}");
    assert!(metric(&scraped, "writeback_ad_modifies_total{result=\"success\"}") >= 1.0, "{scraped}");
    assert!(metric(&scraped, "writeback_ad_modify_duration_seconds_count") >= 1.0, "{scraped}");
    assert!(scraped.contains("writeback_cycle_duration_seconds_bucket{pass=\"incremental\",le=\"0.5\"}"), "cycle durations are a histogram:\n{scraped}");
    assert!(!scraped.contains(emu.client_secret()) && !scraped.contains("cli-engine-0"), "counts only: no secret, no mailbox");
    emu.shutdown().await;
    ou.remove().await.ok();
}

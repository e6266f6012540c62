//! The readers against the in-process tenant emulator (HTTPS with its own CA, real token
//! endpoint, fault injection). Every test asserts exact id sets: nothing lost, nothing doubled.
// Helpers below are test code: a failed step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tenant_emulator::{EmulatorConfig, RunningEmulator};
use writeback_cloud::{
    CloudConfig, CloudError, CloudReaders, DeltaCursor, Mailbox, MailboxError, PassKind,
    PassSummary, Watermark,
};

const MAILBOXES: usize = 23;

struct Tenant {
    emulator: RunningEmulator,
    dir: PathBuf,
    control: reqwest::Client,
    /// Ids of the cloud-managed mailboxes (the ones a pass must return).
    managed: BTreeSet<String>,
    /// Ids of every user.
    users: BTreeSet<String>,
}

fn user_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

impl Tenant {
    async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> Self {
        let dir = std::env::temp_dir().join(format!("wb-cloud-emu-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("state dir");
        let mut config = EmulatorConfig::new(dir.join("state"));
        config.graph_page_size = 4;
        tweak(&mut config);
        let emulator = RunningEmulator::start(config)
            .await
            .expect("emulator starts");
        let ca = std::fs::read(emulator.ca_cert_path()).expect("ca");
        let control = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca pem"))
            .build()
            .expect("control client");
        let mut tenant = Self {
            emulator,
            dir,
            control,
            managed: BTreeSet::new(),
            users: BTreeSet::new(),
        };
        for n in 0..MAILBOXES {
            let id = user_id(n);
            let managed = n % 5 != 0;
            tenant
                .control(reqwest::Method::POST, "/_emulator/mailboxes", Some(json!({
                    "id": id,
                    "userPrincipalName": format!("user{n}@contoso.com"),
                    "onPremisesSecurityIdentifier": format!("S-1-5-21-1-2-3-{}", 1100 + n),
                    "onPremisesImmutableId": format!("imm{n}"),
                    "onPremisesDistinguishedName": format!("CN=user{n},OU=Users,DC=contoso,DC=com"),
                    "customAttributes": [format!("ca1-{n}")],
                    "isExchangeCloudManaged": managed,
                })))
                .await;
            tenant.users.insert(id.clone());
            if managed {
                tenant.managed.insert(id);
            }
        }
        tenant
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .control
            .request(method, format!("{}{path}", self.emulator.base_url()))
            .bearer_auth(self.emulator.control_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control call");
        let status = response.status();
        let text = response.text().await.expect("control body");
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn fault(&self, spec: Value) {
        self.control(reqwest::Method::POST, "/_emulator/faults", Some(spec))
            .await;
    }

    fn exchange_path(&self) -> String {
        format!("/adminapi/beta/{}/InvokeCommand", self.emulator.tenant_id())
    }

    /// A `[cloud]` config for this tenant; `credential` is the credential lines.
    fn config(&self, credential: &str, extra: &str) -> CloudConfig {
        let base = self.emulator.base_url();
        let extra = if extra.contains("max_retry_wait_secs") {
            extra.to_string()
        } else {
            format!("max_retry_wait_secs = 10\n{extra}")
        };
        let text = format!(
            "[cloud]\ntenant_id = \"{}\"\nclient_id = \"{}\"\n{credential}\n\
             login_url = \"{base}\"\ngraph_url = \"{base}\"\nexchange_url = \"{base}\"\n\
             ca_file = \"{}\"\nexchange_page_size = 5\nretry_base_delay_ms = 20\n\
             retry_max_delay_secs = 1\n{extra}",
            self.emulator.tenant_id(),
            self.emulator.client_id(),
            self.emulator.ca_cert_path().display(),
        );
        let path = self.dir.join("writeback.toml");
        std::fs::write(&path, text).expect("write config");
        CloudConfig::load(&path).expect("config loads")
    }

    fn secret_readers(&self, extra: &str) -> CloudReaders {
        std::fs::write(self.dir.join("secret.txt"), self.emulator.client_secret()).expect("secret");
        let config = self.config("client_secret_file = \"secret.txt\"", extra);
        CloudReaders::from_config(&config).expect("readers")
    }

    fn certificate_readers(&self, algorithm: &str) -> CloudReaders {
        let (cert, key) = self.emulator.client_cert_paths();
        let config = self.config(
            &format!(
                "certificate_file = \"{}\"\nprivate_key_file = \"{}\"\ncertificate_algorithm = \"{algorithm}\"",
                cert.display(),
                key.display()
            ),
            "",
        );
        CloudReaders::from_config(&config).expect("readers")
    }

    async fn stop(self) {
        self.emulator.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn full_pass(
    readers: &CloudReaders,
) -> Result<(Vec<String>, Vec<Mailbox>, PassSummary), CloudError> {
    let mut mailboxes = Vec::new();
    let mut errors: Vec<MailboxError> = Vec::new();
    let summary = readers
        .exchange
        .read_all(PassKind::Full, |page| {
            for item in page.mailboxes {
                match item {
                    Ok(mailbox) => mailboxes.push(mailbox),
                    Err(error) => errors.push(error),
                }
            }
        })
        .await?;
    assert!(errors.is_empty(), "{errors:?}");
    let ids = mailboxes.iter().map(|m| m.cloud_id.clone()).collect();
    Ok((ids, mailboxes, summary))
}

fn assert_exact(ids: &[String], expected: &BTreeSet<String>) {
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "doubled ids: {ids:?}");
    assert_eq!(&set, expected);
}

#[tokio::test]
async fn secret_auth_and_a_multi_page_exchange_pass() {
    let tenant = Tenant::start(|_| {}).await;
    let readers = tenant.secret_readers("");
    let (ids, mailboxes, summary) = full_pass(&readers).await.expect("pass");
    assert_exact(&ids, &tenant.managed);
    assert!(summary.complete && summary.restarts == 0);
    assert!(summary.watermark.is_some());
    let sample = mailboxes
        .iter()
        .find(|m| m.cloud_id == user_id(1))
        .expect("user 1");
    assert_eq!(
        sample.custom_attributes.get("1").map(String::as_str),
        Some("ca1-1")
    );
    let stats = tenant
        .control(reqwest::Method::GET, "/_emulator/stats", None)
        .await;
    let pages = tenant.managed.len().div_ceil(5) as u64;
    assert_eq!(stats["by_cmdlet"]["Get-Mailbox"], json!(pages));
    tenant.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_with_the_aadsts_code() {
    let tenant = Tenant::start(|_| {}).await;
    std::fs::write(tenant.dir.join("wrong.txt"), "not-the-secret\n").expect("secret");
    let config = tenant.config("client_secret_file = \"wrong.txt\"", "");
    let readers = CloudReaders::from_config(&config).expect("readers");
    match full_pass(&readers).await {
        Err(CloudError::Auth { code, .. }) => assert_eq!(code, "AADSTS7000215"),
        other => panic!("{:?}", other.map(|(ids, _, _)| ids)),
    }
    tenant.stop().await;
}

#[tokio::test]
async fn certificate_auth_with_both_algorithms() {
    let tenant = Tenant::start(|_| {}).await;
    for algorithm in ["RS256", "PS256"] {
        let readers = tenant.certificate_readers(algorithm);
        let (ids, _, _) = full_pass(&readers)
            .await
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert_exact(&ids, &tenant.managed);
    }
    tenant.stop().await;
}

#[tokio::test]
async fn a_short_lived_token_is_replaced_before_it_expires() {
    let tenant = Tenant::start(|config| config.token_lifetime = Duration::from_secs(2)).await;
    let readers = tenant.secret_readers("");
    let resource = tenant.emulator.base_url();
    let first = readers.tokens.token(&resource).await.expect("token");
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let second = readers.tokens.token(&resource).await.expect("token");
    assert_ne!(first.expose(), second.expose());
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The first token is dead by now; reads keep working with the refreshed one.
    let (ids, _, _) = full_pass(&readers).await.expect("pass");
    assert_exact(&ids, &tenant.managed);
    tenant.stop().await;
}

#[tokio::test]
async fn truncated_pages_and_expired_pagination_lose_and_double_nothing() {
    let tenant = Tenant::start(|_| {}).await;
    let readers = tenant.secret_readers("");
    tenant
        .fault(json!({"path_prefix": tenant.exchange_path(), "fault": "truncate", "count": 2}))
        .await;
    let (ids, _, summary) = full_pass(&readers).await.expect("truncated pass");
    assert_exact(&ids, &tenant.managed);
    assert!(summary.complete);

    tenant
        .fault(json!({"path_prefix": tenant.exchange_path(), "fault": "expire_page", "count": 1}))
        .await;
    let (ids, _, summary) = full_pass(&readers).await.expect("restarted pass");
    assert_exact(&ids, &tenant.managed);
    assert_eq!(summary.restarts, 1);
    assert_eq!(
        summary.duplicates_skipped, 5,
        "the first page came again and was skipped"
    );
    tenant.stop().await;
}

#[tokio::test]
async fn throttling_server_errors_and_dropped_connections_are_survived() {
    let tenant = Tenant::start(|_| {}).await;
    let readers = tenant.secret_readers("");
    let path = tenant.exchange_path();
    tenant
        .fault(json!([
            {"path_prefix": path, "fault": "throttle", "retry_after": "0.3", "count": 1},
            {"path_prefix": path, "fault": "503", "retry_after": "0", "count": 1},
            {"path_prefix": path, "fault": "drop", "count": 1},
        ]))
        .await;
    let started = Instant::now();
    let (ids, _, _) = full_pass(&readers).await.expect("pass");
    assert_exact(&ids, &tenant.managed);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let faults = tenant
        .control(reqwest::Method::GET, "/_emulator/faults", None)
        .await;
    let remaining: u64 = faults
        .as_array()
        .map(|rules| rules.iter().filter_map(|r| r["remaining"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(remaining, 0, "every armed fault was hit: {faults}");
    tenant.stop().await;
}

#[tokio::test]
async fn malformed_json_is_a_clear_error() {
    let tenant = Tenant::start(|_| {}).await;
    let readers = tenant.secret_readers("");
    tenant
        .fault(json!({"path_prefix": tenant.exchange_path(), "fault": "malformed"}))
        .await;
    match full_pass(&readers).await {
        Err(CloudError::MalformedResponse { endpoint, .. }) => {
            assert!(endpoint.ends_with("/InvokeCommand"))
        }
        other => panic!("{:?}", other.map(|(ids, _, _)| ids)),
    }
    tenant.stop().await;
}

#[tokio::test]
async fn throttling_past_the_budget_names_endpoint_and_status() {
    let tenant = Tenant::start(|_| {}).await;
    let readers = tenant.secret_readers("max_retry_wait_secs = 1\n");
    tenant
        .fault(
            json!({"path_prefix": tenant.exchange_path(), "fault": "throttle", "retry_after": "5"}),
        )
        .await;
    match full_pass(&readers).await {
        Err(CloudError::RetryBudgetExhausted { endpoint, last, .. }) => {
            assert!(endpoint.ends_with("/InvokeCommand"));
            assert_eq!(last, "HTTP 429");
        }
        other => panic!("{:?}", other.map(|(ids, _, _)| ids)),
    }
    tenant.stop().await;
}

async fn round(
    readers: &CloudReaders,
    cursor: DeltaCursor,
) -> (Vec<String>, Vec<String>, DeltaCursor, bool) {
    let mut users = Vec::new();
    let mut removed = Vec::new();
    let (cursor, resynced) = readers
        .graph
        .read_round(cursor, |page| {
            assert!(page.entry_errors.is_empty(), "{:?}", page.entry_errors);
            users.extend(page.users.iter().map(|u| u.id.clone()));
            removed.extend(page.removed.iter().map(|r| r.id.clone()));
        })
        .await
        .expect("round");
    (users, removed, cursor, resynced)
}

#[tokio::test]
async fn graph_delta_rounds_removals_and_resync() {
    let tenant = Tenant::start(|_| {}).await;
    let readers = tenant.secret_readers("");
    tenant
        .fault(
            json!({"path_prefix": "/v1.0/users/delta", "fault": "throttle", "retry_after": "0.2"}),
        )
        .await;
    let (users, removed, delta, resynced) = round(&readers, DeltaCursor::Initial).await;
    assert_exact(&users, &tenant.users);
    assert!(removed.is_empty() && !resynced);
    assert!(delta.is_round_complete());

    // One change, one deletion: the next round has exactly those.
    let changed = user_id(3);
    let deleted = user_id(4);
    tenant
        .control(
            reqwest::Method::PATCH,
            &format!("/_emulator/users/{changed}"),
            Some(json!({"onPremisesDistinguishedName": "CN=moved,OU=Other,DC=contoso,DC=com"})),
        )
        .await;
    tenant
        .control(
            reqwest::Method::DELETE,
            &format!("/_emulator/users/{deleted}?reason=deleted"),
            None,
        )
        .await;
    let (users, removed, delta, resynced) = round(&readers, delta).await;
    assert_eq!(users, std::slice::from_ref(&changed));
    assert_eq!(removed, std::slice::from_ref(&deleted));
    assert!(!resynced);

    // Expired state: the reader starts over and says so; the new round lists everyone left.
    tenant
        .control(reqwest::Method::POST, "/_emulator/delta/expire", None)
        .await;
    let mut remaining = tenant.users.clone();
    remaining.remove(&deleted);
    let (users, _, delta, resynced) = round(&readers, delta).await;
    assert!(resynced);
    assert_exact(&users, &remaining);

    // 410 resyncRequired, the same.
    tenant
        .control(reqwest::Method::POST, "/_emulator/delta/resync", None)
        .await;
    let (users, _, _, resynced) = round(&readers, delta).await;
    assert!(resynced);
    assert_exact(&users, &remaining);
    tenant.stop().await;
}

#[tokio::test]
async fn pull_attaches_anchors_from_graph() {
    let tenant = Tenant::start(|_| {}).await;
    std::fs::write(
        tenant.dir.join("secret.txt"),
        tenant.emulator.client_secret(),
    )
    .expect("secret");
    let config = tenant.config("client_secret_file = \"secret.txt\"", "");
    let mut out = Vec::new();
    let summary = writeback_cloud::pull(&config, |item| out.push(item.expect("mailbox")))
        .await
        .expect("pull");
    let ids: Vec<String> = out.iter().map(|m| m.cloud_id.clone()).collect();
    assert_exact(&ids, &tenant.managed);
    assert_eq!(summary.unanchored, 0);
    let one = out
        .iter()
        .find(|m| m.cloud_id == user_id(7))
        .expect("user 7");
    assert_eq!(one.anchors.sid.as_deref(), Some("S-1-5-21-1-2-3-1107"));
    assert_eq!(one.anchors.immutable_id.as_deref(), Some("imm7"));
    assert_eq!(
        one.anchors.dn.as_deref(),
        Some("CN=user7,OU=Users,DC=contoso,DC=com")
    );
    let mark = summary.exchange.watermark.expect("watermark");
    assert!(mark > Watermark::parse("2000-01-01T00:00:00Z").expect("date"));
    tenant.stop().await;
}

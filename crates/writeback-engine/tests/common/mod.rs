//! A world for engine tests: the real DC (an OU of the test's own, seeded with users), the
//! tenant emulator in-process with those users imported the way Connect Sync would, a real
//! SQLite state file, and an engine wired to all three.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tenant_emulator::{EmulatorConfig, RunningEmulator};
use writeback_ad::AdDirectory;
use writeback_cloud::{CloudConfig, CloudReaders};
use writeback_core::{plan, ManagedAttribute, PlanPolicy};
use writeback_engine::{Brakes, CycleOptions, CycleSummary, Engine, EngineSection, EngineSettings, ObjectReport, Shutdown};
use writeback_state::SqliteStore;
use writeback_testkit::{ensure_dc, DcEnv, EntrySnapshot, TestOu};

pub struct World {
    pub env: DcEnv,
    pub ou: TestOu,
    pub emu: RunningEmulator,
    pub http: reqwest::Client,
    pub dir: PathBuf,
    /// AD DN of each seeded user, by primary SMTP address.
    pub users: BTreeMap<String, String>,
    /// Cloud id of each imported mailbox, by primary SMTP address.
    pub cloud_ids: BTreeMap<String, String>,
    /// `[cloud] watermark_overlap_secs` of the engines made after it is set (default 1).
    pub overlap_secs: u64,
    /// `[cloud] exchange_page_size` of the engines made after it is set (default: the crate's).
    pub exchange_page_size: Option<u32>,
}

impl World {
    /// `count` users `<name>-<i>@example.test` in a fresh OU, imported into a fresh tenant.
    pub async fn new(name: &str, count: usize) -> World {
        let env = ensure_dc().unwrap();
        let ou = TestOu::create(&env, name).await.unwrap();
        let dir = std::env::temp_dir().join(format!("wb-engine-{name}-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut users = BTreeMap::new();
        for i in 0..count {
            let smtp = format!("{name}-{i}@example.test");
            let primary = format!("SMTP:{smtp}");
            let secondary = format!("smtp:{name}.{i}@corp.example.test");
            let ext = format!("seed {i}");
            let dn = ou
                .add_user(
                    &format!("{name} user {i}"),
                    &[
                        ("givenName", &[name]),
                        ("sn", &["Tester"]),
                        ("mail", &[smtp.as_str()]),
                        ("proxyAddresses", &[primary.as_str(), secondary.as_str()]),
                        ("extensionAttribute1", &[ext.as_str()]),
                    ],
                )
                .await
                .unwrap();
            users.insert(smtp, dn);
        }
        let mut config = EmulatorConfig::new(dir.join("emulator"));
        config.graph_page_size = 25;
        config.exchange_page_size = 20;
        let emu = RunningEmulator::start(config).await.unwrap();
        let ca = std::fs::read(emu.ca_cert_path()).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        let mut world = World { env, ou, emu, http, dir, users, cloud_ids: BTreeMap::new(), overlap_secs: 1, exchange_page_size: None };
        let env_file = writeback_testkit::project_root().join(".ad-dc/env");
        let imported = world.control("POST", "import-ad", json!({"env": env_file, "ou": world.ou.dn})).await;
        assert_eq!(imported["errors"].as_array().map_or(0, Vec::len), 0, "import: {imported}");
        for mailbox in world.get_mailboxes().await {
            let smtp = mailbox["PrimarySmtpAddress"].as_str().unwrap().to_lowercase();
            let id = mailbox["ExternalDirectoryObjectId"].as_str().unwrap().to_owned();
            world.cloud_ids.insert(smtp, id);
        }
        assert_eq!(world.cloud_ids.len(), count, "every user imported");
        world
    }

    pub async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/_emulator/{path}", self.emu.base_url());
        let request = match method {
            "POST" => self.http.post(url),
            "PATCH" => self.http.patch(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let response = request.bearer_auth(self.emu.control_token()).json(&body).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Set-Mailbox through the emulator's control API (same rules as the cmdlet).
    pub async fn set_mailbox(&self, smtp: &str, params: Value) {
        let id = &self.cloud_ids[smtp];
        self.control("PATCH", &format!("mailboxes/{id}"), params).await;
    }

    pub async fn make_cloud_managed(&self, smtp: &str) {
        let id = &self.cloud_ids[smtp];
        self.control("POST", &format!("mailboxes/{id}/cloud-managed"), json!({"enabled": true})).await;
    }

    /// Every mailbox in the tenant, as Get-Mailbox returns it.
    pub async fn get_mailboxes(&self) -> Vec<Value> {
        let token_url = format!("{}/{}/oauth2/v2.0/token", self.emu.base_url(), self.emu.tenant_id());
        let token: Value = self
            .http
            .post(token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.emu.client_id()),
                ("client_secret", self.emu.client_secret()),
                ("scope", &format!("{}/.default", self.emu.base_url())),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = format!("{}/adminapi/beta/{}/InvokeCommand", self.emu.base_url(), self.emu.tenant_id());
        let body = json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": "Unlimited"}}});
        let mut out = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let page: Value = self
                .http
                .post(url)
                .bearer_auth(token["access_token"].as_str().unwrap())
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            out.extend(page["value"].as_array().cloned().unwrap_or_default());
            next = page["@odata.nextLink"].as_str().map(str::to_owned);
        }
        out
    }

    pub fn cloud_config(&self) -> CloudConfig {
        let text = self.cloud_config_text();
        let mut config = CloudConfig::from_toml_document(&text).unwrap();
        config.resolve_paths(&self.dir);
        config.validate().unwrap();
        config
    }

    /// The `[cloud]` section for this world (its secret file written beside it).
    pub fn cloud_config_text(&self) -> String {
        std::fs::write(self.dir.join("client-secret"), self.emu.client_secret()).unwrap();
        let base = self.emu.base_url();
        let page_size = self.exchange_page_size.map(|n| format!("exchange_page_size = {n}\n")).unwrap_or_default();
        format!(
            "[cloud]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"client-secret\"\nlogin_url = \"{base}\"\ngraph_url = \"{base}\"\nexchange_url = \"{base}\"\nca_file = \"{}\"\nretry_base_delay_ms = 50\nwatermark_overlap_secs = {}\n{page_size}",
            self.emu.tenant_id(),
            self.emu.client_id(),
            self.emu.ca_cert_path().display(),
            self.overlap_secs
        )
    }

    /// An engine on this world, with its own state file, the OU as scope, and these knobs.
    pub async fn engine(&self, section: EngineSection, brakes: Brakes) -> Engine<SqliteStore> {
        build_engine(&self.spec(), section, brakes).await
    }

    /// What another process needs to run an engine on this world.
    pub fn spec(&self) -> EngineSpec {
        let cloud_file = self.dir.join("cloud.toml");
        std::fs::write(&cloud_file, self.cloud_config_text()).unwrap();
        EngineSpec { cloud_file, state_file: self.dir.join("state.db"), scope: self.ou.dn.clone() }
    }

    /// A direct AD connection for checking results.
    pub async fn ad(&self) -> AdDirectory {
        AdDirectory::connect(self.env.ad_config().unwrap()).await.unwrap()
    }

    /// For every cloud-managed mailbox: does AD hold exactly what the cloud says?
    /// Returns the mailboxes that still differ, with the changes a plan would make.
    pub async fn differences(&self) -> Vec<(String, String)> {
        let ad = self.ad().await;
        let config = self.cloud_config();
        let mut records = Vec::new();
        writeback_cloud::pull(&config, |item| records.push(item.unwrap())).await.unwrap();
        let mut differ = Vec::new();
        for record in records {
            let smtp = record.primary_smtp.clone().unwrap().to_lowercase();
            let Some(dn) = self.users.get(&smtp) else { continue };
            let user = ad.read(dn).await.unwrap().unwrap();
            let mods = plan(&record, &user.values, &PlanPolicy::default()).unwrap();
            if !mods.is_empty() {
                differ.push((smtp, format!("{mods:?}")));
            }
        }
        differ
    }

    pub async fn snapshots(&self) -> BTreeMap<String, EntrySnapshot> {
        let mut out = BTreeMap::new();
        for (smtp, dn) in &self.users {
            out.insert(smtp.clone(), self.ou.snapshot(dn).await.unwrap());
        }
        out
    }
}

/// Where a world's engine finds its config: enough for a child process to build one.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EngineSpec {
    pub cloud_file: PathBuf,
    pub state_file: PathBuf,
    pub scope: String,
}

pub async fn build_engine(spec: &EngineSpec, section: EngineSection, brakes: Brakes) -> Engine<SqliteStore> {
    let env = ensure_dc().unwrap();
    let mut ad = env.ad_config().unwrap();
    ad.scope = vec![spec.scope.clone()];
    let dir = AdDirectory::connect(ad).await.unwrap();
    let text = std::fs::read_to_string(&spec.cloud_file).unwrap();
    let mut cloud = CloudConfig::from_toml_document(&text).unwrap();
    cloud.resolve_paths(spec.cloud_file.parent().unwrap());
    cloud.validate().unwrap();
    let readers = CloudReaders::from_config(&cloud).unwrap();
    let store = Arc::new(SqliteStore::open(&spec.state_file).unwrap());
    let settings = EngineSettings::new(&section, brakes, vec![spec.scope.clone()]);
    Engine::new(dir, readers, store, settings, cloud.full_pass_interval())
}

/// An entry without its managed attributes and the counters every modify bumps.
pub fn unmanaged(snapshot: &EntrySnapshot) -> EntrySnapshot {
    snapshot
        .iter()
        .filter(|(k, _)| ManagedAttribute::from_ldap_name(k).is_none())
        .filter(|(k, _)| !["whenchanged", "usnchanged"].contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub async fn cycle(engine: &Engine<SqliteStore>, full: bool) -> (CycleSummary, Vec<ObjectReport>) {
    cycle_with(engine, &CycleOptions { full, ..CycleOptions::default() }).await
}

pub async fn cycle_with(engine: &Engine<SqliteStore>, options: &CycleOptions) -> (CycleSummary, Vec<ObjectReport>) {
    let mut reports = Vec::new();
    let mut sink = |r: &ObjectReport| reports.push(r.clone());
    let summary = engine.run_cycle(options, &mut sink, &Shutdown::default()).await.unwrap();
    (summary, reports)
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

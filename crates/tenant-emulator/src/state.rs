//! Shared server state, configuration and persistence of the tenant (atomic, debounced saves).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use crate::error::EmulatorError;
use crate::faults::FaultStore;
use crate::model::Tenant;

pub const STATE_FILE: &str = "tenant.json";
pub const CONTROL_TOKEN_FILE: &str = "control-token";
pub const CLIENT_SECRET_FILE: &str = "client-secret";
pub const APP_CERT_FILE: &str = "app-cert.pem";
pub const APP_KEY_FILE: &str = "app-key.pem";
pub const INFO_FILE: &str = "emulator.json";

/// How to run an emulator. `EmulatorConfig::new(dir)` gives test-friendly defaults.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// `127.0.0.1:0` picks a free port.
    pub bind: SocketAddr,
    pub state_dir: PathBuf,
    pub tenant_id: String,
    /// Lifetime of minted access tokens.
    pub token_lifetime: Duration,
    /// Size of the synthetic tenant built when the state dir holds no tenant yet.
    pub synthetic_mailboxes: usize,
    /// How long a users/delta token stays valid (Graph: 7 days for directory objects).
    pub delta_token_lifetime: Duration,
    /// users/delta page size when the client sends no `Prefer: odata.maxpagesize`.
    pub graph_page_size: usize,
    /// Get-Mailbox page size when the client sends no `Prefer: odata.maxpagesize`.
    pub exchange_page_size: usize,
    /// Quiet time before a mutation is written to disk.
    pub save_debounce: Duration,
    /// Write `tenant.json` (debounced after changes, at shutdown, on `/_emulator/save`). `false`
    /// (`serve --no-persist`): the tenant lives in memory only, so a stream of changes to a large
    /// tenant does not keep a core busy re-serialising it; certificates, the app's files and
    /// `emulator.json` are still written.
    pub persist: bool,
}

impl EmulatorConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        EmulatorConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: state_dir.into(),
            tenant_id: "contoso.onmicrosoft.com".to_owned(),
            token_lifetime: Duration::from_secs(3599),
            synthetic_mailboxes: 0,
            delta_token_lifetime: Duration::from_secs(7 * 24 * 3600),
            graph_page_size: 100,
            exchange_page_size: 1000,
            save_debounce: Duration::from_millis(200),
            persist: true,
        }
    }
}

/// Requests seen, per path and per Exchange cmdlet.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub total: u64,
    pub by_path: BTreeMap<String, u64>,
    pub by_cmdlet: BTreeMap<String, u64>,
    pub tokens_issued: u64,
    pub faults_injected: u64,
}

pub(crate) struct Shared {
    pub base_url: String,
    pub config: EmulatorConfig,
    pub control_token: String,
    pub token_keys: crate::auth::TokenKeys,
    pub tenant: RwLock<Tenant>,
    pub faults: Mutex<FaultStore>,
    pub stats: Mutex<Stats>,
    /// `jti` values of accepted client assertions, with their expiry (unix seconds).
    pub seen_jti: Mutex<HashMap<String, i64>>,
    pub delta_token_lifetime_secs: AtomicU64,
    pub unsaved: AtomicBool,
    pub dirty: Notify,
}

fn recover<T>(r: Result<T, std::sync::PoisonError<T>>) -> T {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn read(&self) -> RwLockReadGuard<'_, Tenant> {
        recover(self.tenant.read())
    }

    /// Write access; the caller's changes are saved after the debounce delay.
    pub fn write(&self) -> RwLockWriteGuard<'_, Tenant> {
        self.unsaved.store(true, Ordering::SeqCst);
        self.dirty.notify_one();
        recover(self.tenant.write())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultStore> {
        recover(self.faults.lock())
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        recover(self.stats.lock())
    }

    pub fn seen_jti(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        recover(self.seen_jti.lock())
    }

    pub fn delta_token_lifetime_secs(&self) -> u64 {
        self.delta_token_lifetime_secs.load(Ordering::SeqCst)
    }

    /// Writes the tenant now if anything changed since the last save (never without `persist`).
    pub async fn save_if_unsaved(self: &std::sync::Arc<Self>) -> Result<(), EmulatorError> {
        if !self.unsaved.swap(false, Ordering::SeqCst) || !self.config.persist {
            return Ok(());
        }
        let shared = std::sync::Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            let bytes = {
                let tenant = shared.read();
                serde_json::to_vec(&*tenant)
            }?;
            write_atomically(&shared.config.state_dir.join(STATE_FILE), &bytes)
        })
        .await
        .map_err(|e| EmulatorError::Config(format!("save task failed: {e}")))?;
        if result.is_err() {
            self.unsaved.store(true, Ordering::SeqCst);
        }
        result
    }
}

/// Saves after each burst of mutations, once they have been quiet for the debounce delay.
pub(crate) async fn run_saver(
    shared: std::sync::Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if !shared.config.persist {
        return;
    }
    loop {
        tokio::select! {
            _ = shared.dirty.notified() => {}
            _ = stop.changed() => break,
        }
        tokio::time::sleep(shared.config.save_debounce).await;
        if let Err(e) = shared.save_if_unsaved().await {
            tracing::error!("saving the tenant failed: {e}");
        }
    }
}

pub fn load_tenant(dir: &Path) -> Result<Option<Tenant>, EmulatorError> {
    let path = dir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EmulatorError::io(path, e)),
    };
    let mut tenant: Tenant =
        serde_json::from_slice(&bytes).map_err(|e| EmulatorError::StateFile {
            path: path.clone(),
            message: e.to_string(),
        })?;
    tenant.rebuild_indexes();
    Ok(Some(tenant))
}

/// Temp file + fsync + rename, so a crash leaves either the old or the new file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), EmulatorError> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp).map_err(|e| EmulatorError::io(&tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| EmulatorError::io(&tmp, e))?;
        file.sync_all().map_err(|e| EmulatorError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| EmulatorError::io(path, e))
}

pub fn write_public_file(path: &Path, bytes: &[u8]) -> Result<(), EmulatorError> {
    std::fs::write(path, bytes).map_err(|e| EmulatorError::io(path, e))
}

/// Secrets and keys: readable by the owner only.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), EmulatorError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| EmulatorError::io(path, e))?;
    file.write_all(bytes)
        .map_err(|e| EmulatorError::io(path, e))
}

pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

//! The HTTPS listener (one port for the login, Graph and Exchange "hosts") and the
//! [`RunningEmulator`] handle other crates' tests use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::error::EmulatorError;
use crate::faults::{ConnectionKiller, FaultStore};
use crate::model::{RegisteredApp, Tenant};
use crate::state::{
    load_tenant, random_hex, run_saver, write_private_file, write_public_file, EmulatorConfig,
    Shared, Stats, APP_CERT_FILE, APP_KEY_FILE, CLIENT_SECRET_FILE, CONTROL_TOKEN_FILE, INFO_FILE,
};
use crate::tls::{app_certificate_for_new_tenant, load_or_create_server_config, CA_FILE};

/// A started emulator. Dropping it without [`RunningEmulator::shutdown`] leaves the server running
/// until the runtime ends (and skips the final save).
pub struct RunningEmulator {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    saver: JoinHandle<()>,
    client_id: String,
    client_secret: String,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("base_url", &self.shared.base_url)
            .field("tenant_id", &self.shared.config.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

fn new_tenant(config: &EmulatorConfig) -> Result<Tenant, EmulatorError> {
    let mut tenant = Tenant::default();
    tenant.tenant_guid = uuid::Uuid::new_v4().to_string();
    tenant.token_signing_key = random_hex(32);
    tenant.apps.push(RegisteredApp {
        client_id: uuid::Uuid::new_v4().to_string(),
        display_name: "writeback".to_owned(),
        client_secret: format!("{}8Q~{}", random_hex(2), random_hex(18)),
        certificates: Vec::new(),
    });
    let started = std::time::Instant::now();
    crate::provisioning::add_synthetic_mailboxes(
        &mut tenant,
        &config.tenant_id,
        config.synthetic_mailboxes,
    );
    if config.synthetic_mailboxes > 0 {
        tracing::info!(
            "built {} synthetic mailboxes in {:?}",
            config.synthetic_mailboxes,
            started.elapsed()
        );
    }
    Ok(tenant)
}

/// Makes sure the app has a certificate whose private key is in the state dir.
fn ensure_app_certificate(
    config: &EmulatorConfig,
    tenant: &mut Tenant,
) -> Result<bool, EmulatorError> {
    let cert_path = config.state_dir.join(APP_CERT_FILE);
    let key_path = config.state_dir.join(APP_KEY_FILE);
    let has_cert = tenant
        .apps
        .first()
        .is_some_and(|a| !a.certificates.is_empty());
    if has_cert && cert_path.exists() && key_path.exists() {
        return Ok(false);
    }
    let generated = app_certificate_for_new_tenant()?;
    write_private_file(&key_path, generated.private_key_pem.as_bytes())?;
    write_public_file(&cert_path, generated.certificate.cert_pem.as_bytes())?;
    if let Some(app) = tenant.apps.first_mut() {
        app.certificates.push(generated.certificate);
    }
    Ok(true)
}

fn read_or_create_control_token(config: &EmulatorConfig) -> Result<String, EmulatorError> {
    let path = config.state_dir.join(CONTROL_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => {
            let token = random_hex(24);
            write_private_file(&path, token.as_bytes())?;
            Ok(token)
        }
    }
}

fn build_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(crate::auth::token_endpoint),
        )
        .route("/v1.0/users/delta", get(crate::graph::users_delta))
        .route(
            "/adminapi/beta/{tenant}/InvokeCommand",
            post(crate::exchange::invoke_command).get(crate::exchange::invoke_command),
        )
        .merge(crate::control::router(Arc::clone(&shared)))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            crate::faults::fault_middleware,
        ))
        .with_state(shared)
}

async fn not_found() -> axum::response::Response {
    crate::graph::graph_error_with_inner(
        axum::http::StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        "Resource not found for the segment.",
    )
}

impl RunningEmulator {
    /// Loads (or creates) the tenant in `config.state_dir`, then serves HTTPS on `config.bind`.
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
        let dir = config.state_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| EmulatorError::io(&dir, e))?;
        let tls_config = load_or_create_server_config(&dir)?;
        let (mut tenant, fresh) = match load_tenant(&dir)? {
            Some(t) => (t, false),
            None => (new_tenant(&config)?, true),
        };
        let new_cert = ensure_app_certificate(&config, &mut tenant)?;
        let app = tenant
            .apps
            .first()
            .cloned()
            .ok_or_else(|| EmulatorError::Config("the tenant has no registered app".into()))?;
        write_private_file(&dir.join(CLIENT_SECRET_FILE), app.client_secret.as_bytes())?;
        let control_token = read_or_create_control_token(&config)?;

        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|cause| EmulatorError::Bind {
                addr: config.bind,
                cause,
            })?;
        let addr = listener.local_addr().map_err(|cause| EmulatorError::Bind {
            addr: config.bind,
            cause,
        })?;
        let base_url = format!("https://{addr}");
        let shared = Arc::new(Shared {
            base_url: base_url.clone(),
            delta_token_lifetime_secs: AtomicU64::new(config.delta_token_lifetime.as_secs()),
            config: config.clone(),
            control_token,
            token_keys: crate::auth::TokenKeys::new(&tenant),
            tenant: RwLock::new(tenant),
            faults: Mutex::new(FaultStore::default()),
            stats: Mutex::new(Stats::default()),
            seen_jti: Mutex::new(Default::default()),
            unsaved: AtomicBool::new(fresh || new_cert),
            dirty: Notify::new(),
        });
        shared.save_if_unsaved().await?;
        write_info_file(&shared, &app.client_id)?;

        let (stop, stop_rx) = watch::channel(false);
        let router = build_router(Arc::clone(&shared));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
        let server = tokio::spawn(accept_loop(listener, acceptor, router, stop_rx.clone()));
        let saver = tokio::spawn(run_saver(Arc::clone(&shared), stop_rx));
        Ok(RunningEmulator {
            shared,
            stop,
            server,
            saver,
            client_id: app.client_id,
            client_secret: app.client_secret,
        })
    }

    /// `https://127.0.0.1:PORT`: the login, Graph and Exchange base URL at once.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared
            .base_url
            .strip_prefix("https://")
            .and_then(|a| a.parse().ok())
    }

    /// PEM of the CA that signed the server certificate: trust it.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.shared.config.state_dir.join(CA_FILE)
    }

    pub fn tenant_id(&self) -> &str {
        &self.shared.config.tenant_id
    }

    /// The tenant's GUID (also accepted wherever the tenant id is).
    pub fn tenant_guid(&self) -> String {
        self.shared.read().tenant_guid.clone()
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// (certificate PEM, PKCS#8 private key PEM) of the app's registered RSA certificate.
    pub fn client_cert_paths(&self) -> (PathBuf, PathBuf) {
        let dir = &self.shared.config.state_dir;
        (dir.join(APP_CERT_FILE), dir.join(APP_KEY_FILE))
    }

    /// Bearer token for the `/_emulator/` control API.
    pub fn control_token(&self) -> &str {
        &self.shared.control_token
    }

    pub fn state_dir(&self) -> PathBuf {
        self.shared.config.state_dir.clone()
    }

    /// Imports users from AD (see README) into this tenant.
    pub async fn import_ad(
        &self,
        env_file: &std::path::Path,
        ou: Option<&str>,
        options: crate::import::ImportOptions,
    ) -> Result<crate::import::ImportSummary, EmulatorError> {
        let entries = crate::import::read_ad(env_file, ou).await?;
        let summary = crate::import::apply_import(&mut self.shared.write(), &entries, options);
        Ok(summary)
    }

    /// Stops serving, then writes any unsaved change.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = self.saver.await;
        if let Err(e) = self.shared.save_if_unsaved().await {
            tracing::error!("final save failed: {e}");
        }
    }
}

fn write_info_file(shared: &Shared, client_id: &str) -> Result<(), EmulatorError> {
    let dir = &shared.config.state_dir;
    let info = serde_json::json!({
        "baseUrl": shared.base_url,
        "tenantId": shared.config.tenant_id,
        "clientId": client_id,
        "caCert": dir.join(CA_FILE),
        "clientSecretFile": dir.join(CLIENT_SECRET_FILE),
        "clientCert": dir.join(APP_CERT_FILE),
        "clientKey": dir.join(APP_KEY_FILE),
        "controlTokenFile": dir.join(CONTROL_TOKEN_FILE),
    });
    write_public_file(
        &dir.join(INFO_FILE),
        serde_json::to_string_pretty(&info)?.as_bytes(),
    )
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let Ok((tcp, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Without this, Nagle holds back the tail of a multi-segment response until the client's
        // delayed ACK (~40 ms on Linux): that, not the work, was most of a page's cost.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set: {e}");
        }
        let acceptor = acceptor.clone();
        let router = router.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let killer = Arc::new(Notify::new());
            let extension = ConnectionKiller(Arc::clone(&killer));
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(extension.clone());
                    let router = router.clone();
                    async move { router.oneshot(request.map(axum::body::Body::new)).await }
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                _ = connection => {}
                _ = killer.notified() => {}
                _ = stop.changed() => {}
            }
        });
    }
}

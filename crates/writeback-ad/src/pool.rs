//! A small pool of bound LDAP connections, reconnecting on demand.
//!
//! ldap3 multiplexes many requests over one connection (a cloned `Ldap` handle shares it),
//! so the pool hands out clones round-robin. A connection cut by the DC stays dead
//! (`is_closed()`); the next caller of that slot reconnects and binds again.

use crate::config::{AdConfig, Transport};
use crate::error::AdError;
use crate::tls;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use rustls::ClientConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Mutex;

pub(crate) struct Pool {
    config: Arc<AdConfig>,
    tls: Option<Arc<ClientConfig>>,
    slots: Vec<Mutex<Option<Ldap>>>,
    next: AtomicUsize,
}

impl Pool {
    /// Builds the pool and opens one connection, so a bad URL, CA or password fails here.
    pub(crate) async fn open(config: Arc<AdConfig>) -> Result<Self, AdError> {
        let tls = match config.transport {
            Transport::Plain => None,
            Transport::Ldaps | Transport::StartTls => {
                Some(tls::client_config(config.ca_file.as_deref())?)
            }
        };
        let slots = (0..config.pool_size.max(1)).map(|_| Mutex::new(None)).collect();
        let pool = Pool {
            config,
            tls,
            slots,
            next: AtomicUsize::new(0),
        };
        pool.get().await?;
        Ok(pool)
    }

    /// A live, bound connection for reads: round-robin over every slot but the writer's (all of them when
    /// the pool has one).
    pub(crate) async fn get(&self) -> Result<Ldap, AdError> {
        self.reader(self.next.fetch_add(1, Ordering::Relaxed)).await
    }

    /// Reader connection `index` (modulo their number): what a scan's searches use, one each, so
    /// that searches running at once are on different connections.
    pub(crate) async fn reader(&self, index: usize) -> Result<Ldap, AdError> {
        let readers = self.slots.len().saturating_sub(1).max(1);
        let offset = usize::from(self.slots.len() > 1);
        self.slot(offset + index % readers).await
    }

    /// The connection every write goes over. One writer: Samba serves a connection in one
    /// worker process, and writes spread over several make each process reload its caches
    /// after the others' commits (20,000 modifies cost Samba 5.6 s more CPU over four
    /// connections than over one); modifies are still pipelined on it, so the DC never waits.
    /// Reads keep the other connections.
    pub(crate) async fn get_for_writes(&self) -> Result<Ldap, AdError> {
        self.slot(0).await
    }

    async fn slot(&self, index: usize) -> Result<Ldap, AdError> {
        let slot = self
            .slots
            .get(index)
            .ok_or_else(|| AdError::Config("connection pool is empty".into()))?;
        let mut guard = slot.lock().await;
        if let Some(ldap) = guard.as_mut() {
            if !ldap.is_closed() {
                return Ok(ldap.clone());
            }
            tracing::info!(slot = index, "LDAP connection closed, reconnecting");
        }
        let ldap = self.connect().await?;
        *guard = Some(ldap.clone());
        Ok(ldap)
    }

    async fn connect(&self) -> Result<Ldap, AdError> {
        let config = &self.config;
        let mut settings = LdapConnSettings::new().set_conn_timeout(config.timeout);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        if config.transport == Transport::StartTls {
            settings = settings.set_starttls(true);
        }
        let connect_error = |reason: String| AdError::Connect {
            url: config.url.clone(),
            reason,
        };
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        let result = ldap
            .with_timeout(config.timeout)
            .simple_bind(&config.bind_dn, config.bind_password.expose())
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        if result.rc != 0 {
            return Err(AdError::Bind {
                bind_dn: config.bind_dn.clone(),
                code: result.rc,
                message: result.text,
            });
        }
        Ok(ldap)
    }
}

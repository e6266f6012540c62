//! The engine: one object holding the AD connection, the cloud readers, the state store and
//! the settings; cycles, plans and recovery are methods on it (see `cycle.rs`, `apply.rs`,
//! `recovery.rs`).

use crate::error::EngineError;
use crate::matcher::{Matched, Matcher, SkipReason};
use crate::settings::EngineSettings;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use writeback_ad::{AdDirectory, AdUser};
use writeback_cloud::pull::MAX_DELTA_PAGES;
use crate::scope_snapshot::{attach_anchors, plan_for};
use writeback_cloud::{merge_delta_page, CloudReaders, DeltaCursor};
use writeback_core::{Mailbox, Modification};
use writeback_state::StateStore;

/// The watermark holding the users/delta cursor (a [`DeltaCursor`] as JSON), written in the
/// same transaction as the anchors of the page it follows.
pub(crate) const WATERMARK_DELTA_CURSOR: &str = "graph.delta_cursor";

/// What the planner made of one mailbox.
#[derive(Debug, Clone)]
pub enum Assessment {
    /// Changes to write to this object.
    Planned { user: Box<AdUser>, mods: Vec<Modification> },
    /// AD already matches the cloud.
    InSync { user: Box<AdUser> },
    /// Not matched to exactly one acceptable AD object.
    Skipped(SkipReason),
    /// The cloud record breaks a rule (no primary SMTP, a bad address, a value too long...).
    Invalid { dn: Option<String>, error: String },
    /// Failed too often; waits for an operator (`writeback release`).
    Quarantined { error: String },
}

/// Runs right before a write leaves (given the object's DN). A fault-injection point: tests
/// use it to edit AD between the engine's read and its write; production never sets it.
pub type BeforeApplyHook =
    Arc<dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

pub struct Engine<S: StateStore + ?Sized> {
    pub(crate) dir: AdDirectory,
    pub(crate) cloud: CloudReaders,
    pub(crate) store: Arc<S>,
    pub(crate) settings: EngineSettings,
    pub(crate) full_pass_interval: std::time::Duration,
    /// Held for a whole users/delta round, so two rounds never interleave their pages.
    pub(crate) anchor_round: Mutex<()>,
    pub(crate) before_apply: std::sync::Mutex<Option<BeforeApplyHook>>,
    /// When an incremental pass last re-read the watermark's overlap window.
    pub(crate) last_catch_up: std::sync::Mutex<Option<std::time::Instant>>,
    /// A catch-up `writeback run` is reading a slice per cycle (see `CycleOptions::polling`).
    pub(crate) catch_up: std::sync::Mutex<Option<writeback_cloud::exchange::MailboxPass<'static>>>,
    /// The watermark the last poll between catch-ups started from (see `fast_poll_since`).
    pub(crate) last_polled_watermark: std::sync::Mutex<Option<writeback_cloud::Watermark>>,
}

/// Unix milliseconds now: the engine is the one place with a clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl<S: StateStore + ?Sized> Engine<S> {
    pub fn new(
        dir: AdDirectory,
        cloud: CloudReaders,
        store: Arc<S>,
        settings: EngineSettings,
        full_pass_interval: std::time::Duration,
    ) -> Self {
        Engine {
            dir,
            cloud,
            store,
            settings,
            full_pass_interval,
            anchor_round: Mutex::new(()),
            before_apply: std::sync::Mutex::new(None),
            last_catch_up: std::sync::Mutex::new(None),
            catch_up: std::sync::Mutex::new(None),
            last_polled_watermark: std::sync::Mutex::new(None),
        }
    }

    #[doc(hidden)]
    pub fn set_before_apply_hook(&self, hook: Option<BeforeApplyHook>) {
        if let Ok(mut slot) = self.before_apply.lock() {
            *slot = hook;
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn directory(&self) -> &AdDirectory {
        &self.dir
    }

    pub fn cloud(&self) -> &CloudReaders {
        &self.cloud
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Brings the Graph anchors in the state store up to date, page by page from the stored
    /// users/delta cursor: a full round the first time (or after a resync), the changes since
    /// the last round afterwards, and after a restart mid-round the rest of that round. Each
    /// page's anchors and the cursor after it are one transaction. Returns the users read.
    pub async fn refresh_anchors(&self) -> Result<u64, EngineError> {
        let _round = self.anchor_round.lock().await;
        let mut cursor = match self.store.watermark(WATERMARK_DELTA_CURSOR)? {
            Some(text) => match serde_json::from_str::<DeltaCursor>(&text) {
                Ok(cursor) => cursor,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable stored users/delta cursor; starting a full round");
                    DeltaCursor::Initial
                }
            },
            None => DeltaCursor::Initial,
        };
        if cursor == DeltaCursor::Initial {
            // A full round enumerates everyone: whoever it does not list is gone.
            self.store.clear_anchors()?;
        }
        let mut users = 0u64;
        for _ in 0..MAX_DELTA_PAGES {
            let page = self.cloud.graph.next_page(&cursor).await?;
            if page.resynced {
                // Cleared on its own: a crash before the page below is written leaves the old
                // cursor, which resyncs (and clears) again.
                self.store.clear_anchors()?;
            }
            users += u64::try_from(page.users.len()).unwrap_or(u64::MAX);
            let changes = merge_delta_page(&page, |key| self.store.anchors(key))?;
            let cursor_json = serde_json::to_string(&page.cursor)
                .map_err(|_| EngineError::Stopped("the users/delta cursor could not be encoded"))?;
            self.store.apply_anchor_page(
                &changes.upserts,
                &changes.removals,
                Some((WATERMARK_DELTA_CURSOR, &cursor_json)),
                now_ms(),
            )?;
            cursor = page.cursor;
            if cursor.is_round_complete() {
                return Ok(users);
            }
        }
        Err(EngineError::Stopped("users/delta round did not end"))
    }

    pub(crate) fn scope(&self) -> Vec<String> {
        if self.settings.scope.is_empty() {
            vec![self.dir.config().base_dn.clone()]
        } else {
            self.settings.scope.clone()
        }
    }

    /// Matches, reads and plans one mailbox. Nothing is written.
    pub async fn assess(&self, mut mailbox: Mailbox, now: i64) -> Result<(Mailbox, Assessment), EngineError> {
        attach_anchors(&*self.store, &mut mailbox)?;
        if let Some(failure) = self.store.failure(&mailbox.cloud_id)? {
            if failure.quarantined {
                return Ok((mailbox, Assessment::Quarantined { error: failure.last_error }));
            }
        }
        let scope = self.scope();
        let matcher = Matcher { dir: &self.dir, store: &*self.store, scope: &scope };
        let Matched { user, .. } = match matcher.find(&mailbox, now).await? {
            Ok(matched) => matched,
            Err(reason) => return Ok((mailbox, Assessment::Skipped(reason))),
        };
        let assessment = self.plan_for(&mailbox, user);
        Ok((mailbox, assessment))
    }

    /// Plans `mailbox` against the object as read.
    pub(crate) fn plan_for(&self, mailbox: &Mailbox, user: AdUser) -> Assessment {
        plan_for(&self.settings.policy, mailbox, user)
    }
}

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
use writeback_cloud::pull::AnchorIndex;
use writeback_cloud::{CloudReaders, DeltaCursor};
use writeback_core::{plan, Mailbox, Modification};
use writeback_state::StateStore;

/// Graph's identity anchors, kept in memory and refreshed from users/delta each cycle.
#[derive(Default)]
pub(crate) struct AnchorState {
    pub index: AnchorIndex,
    pub cursor: Option<DeltaCursor>,
}

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
    pub(crate) anchors: Mutex<AnchorState>,
    pub(crate) before_apply: std::sync::Mutex<Option<BeforeApplyHook>>,
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
            anchors: Mutex::new(AnchorState::default()),
            before_apply: std::sync::Mutex::new(None),
        }
    }

    #[doc(hidden)]
    pub fn set_before_apply_hook(&self, hook: Option<BeforeApplyHook>) {
        if let Ok(mut slot) = self.before_apply.lock() {
            *slot = hook;
        }
    }

    pub(crate) async fn run_before_apply_hook(&self, dn: &str) {
        let hook = self.before_apply.lock().ok().and_then(|slot| slot.clone());
        if let Some(hook) = hook {
            hook(dn.to_owned()).await;
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

    /// Brings the in-memory Graph anchors up to date: a full users/delta round the first
    /// time (or after a resync), the changes since the last round afterwards.
    pub async fn refresh_anchors(&self) -> Result<u64, EngineError> {
        let mut state = self.anchors.lock().await;
        let mut cursor = state.cursor.clone().unwrap_or(DeltaCursor::Initial);
        let mut users = 0u64;
        // Bounded: a round is finite; a server that never ends one is an error, not a hang.
        for _ in 0..1_000_000 {
            let page = self.cloud.graph.next_page(&cursor).await?;
            if page.resynced {
                state.index = AnchorIndex::default();
            }
            for user in page.users {
                users += 1;
                state.index.apply(user);
            }
            for removed in &page.removed {
                state.index.remove(&removed.id);
            }
            cursor = page.cursor;
            if cursor.is_round_complete() {
                state.cursor = Some(cursor);
                return Ok(users);
            }
        }
        Err(EngineError::Stopped("users/delta round did not end"))
    }

    /// Fills in the Graph anchors the Exchange record lacks.
    pub(crate) async fn attach_anchors(&self, mailbox: &mut Mailbox) {
        let state = self.anchors.lock().await;
        if let Some(anchors) = state.index.get(&mailbox.cloud_id) {
            let mine = &mut mailbox.anchors;
            if mine.immutable_id.is_none() {
                mine.immutable_id = anchors.immutable_id.clone();
            }
            if mine.sid.is_none() {
                mine.sid = anchors.sid.clone();
            }
            if mine.dn.is_none() {
                mine.dn = anchors.dn.clone();
            }
        }
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
        self.attach_anchors(&mut mailbox).await;
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
        match plan(mailbox, &user.values, &self.settings.policy) {
            Ok(mods) if mods.is_empty() => Assessment::InSync { user: Box::new(user) },
            Ok(mods) => Assessment::Planned { user: Box::new(user), mods },
            Err(e) => Assessment::Invalid { dn: Some(user.dn), error: e.to_string() },
        }
    }
}

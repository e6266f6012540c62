//! The state store interface. SQLite implements it now ([`crate::SqliteStore`]); a PostgreSQL
//! implementation for several agents will fill the same trait.
//!
//! All times are unix milliseconds passed in by the caller: the store has no clock, so the
//! engine and its tests decide what "now" is.

use crate::error::{Result, StateError};
use crate::model::{
    AuditQuery, AuditRecord, Cycle, CycleId, FailureRecord, FailureState, HeldPlan, Join,
    JournalEntry, JournalId, LastWritten, MailboxState, Outcome, PlanId, PurgeReport, RetryPolicy,
    StagedWrite, WriteIntent,
};
use writeback_core::Anchors;

/// Durable engine state: watermarks, cycles, joins, last written values, the write journal,
/// the audit log, the error queue and held plans.
///
/// Methods are synchronous; the engine calls them from a blocking context. Every method is
/// atomic: it either happens completely or not at all, also across a crash.
pub trait StateStore: Send + Sync {
    // --- watermarks: how far the cloud readers got (`exchange.when_changed`, `graph.delta_link`, ...)

    fn watermark(&self, name: &str) -> Result<Option<String>>;

    /// Sets several watermarks at once, so related ones (a delta link and its next link) never
    /// disagree after a crash.
    fn set_watermarks(&self, values: &[(&str, &str)], now: i64) -> Result<()>;

    fn set_watermark(&self, name: &str, value: &str, now: i64) -> Result<()> {
        self.set_watermarks(&[(name, value)], now)
    }

    /// Forgets a watermark (e.g. a delta link the service no longer accepts). True if it existed.
    fn remove_watermark(&self, name: &str) -> Result<bool>;

    // --- cycles

    fn begin_cycle(&self, now: i64) -> Result<CycleId>;

    /// Records the end of a cycle with its summary. A cycle finishes once.
    fn finish_cycle(&self, id: CycleId, now: i64, summary: &serde_json::Value) -> Result<()>;

    /// The most recently begun cycle, finished or not.
    fn last_cycle(&self) -> Result<Option<Cycle>>;

    // --- joins: cloud mailbox → AD object

    fn join(&self, cloud_id: &str) -> Result<Option<Join>>;

    fn join_by_guid(&self, object_guid: &[u8; 16]) -> Result<Option<Join>>;

    /// Creates or updates a join. Joining the mailbox to a different object forgets what was
    /// last written for it (that was written to the other object). Fails with
    /// [`StateError::GuidAlreadyJoined`] if another mailbox holds the object.
    fn upsert_join(&self, join: &Join) -> Result<()>;

    /// [`StateStore::upsert_join`] for many mailboxes in one transaction: all of them or none.
    fn upsert_joins(&self, joins: &[Join]) -> Result<()>;

    /// [`StateStore::join_by_guid`] for many objects in one read, in order.
    fn joins_by_guids(&self, object_guids: &[[u8; 16]]) -> Result<Vec<Option<Join>>>;

    /// Everything a pass needs to know of a page of mailboxes, in one read transaction (one
    /// consistent view, and a page's worth of lookups for the price of one): for each
    /// `(cloud_id, anchor key)`, in order, the user's anchors, the error-queue entry, the join
    /// and the synced version.
    fn mailbox_states(&self, keys: &[(&str, &str)]) -> Result<Vec<MailboxState>>;

    /// Removes a join and the last written values that went with it. True if it existed.
    fn remove_join(&self, cloud_id: &str) -> Result<bool>;

    fn join_count(&self) -> Result<u64>;

    // --- Graph identity anchors, per cloud user id (ids compare case-insensitively)

    /// Writes one `users/delta` page in one transaction: `upserts` replace a user's anchors
    /// whole (merging absent/`null` properties with what was known is the caller's job), then
    /// `removals` go, and `cursor` (a watermark name and value, e.g. the page's delta cursor)
    /// is set in the same transaction, so after a crash the anchors and the cursor agree.
    fn apply_anchor_page(
        &self,
        upserts: &[(String, Anchors)],
        removals: &[String],
        cursor: Option<(&str, &str)>,
        now: i64,
    ) -> Result<()>;

    fn anchors(&self, user_id: &str) -> Result<Option<Anchors>>;

    /// The cloud user anchored to an AD object: the holder of one of `immutable_ids` (tried in
    /// order), else of `sid`. Ties go to the smallest user id.
    fn anchor_owner(&self, immutable_ids: &[String], sid: Option<&str>) -> Result<Option<String>>;

    /// Forgets every anchor (a resync starts over); returns how many users went.
    fn clear_anchors(&self) -> Result<u64>;

    fn anchor_count(&self) -> Result<u64>;

    // --- last written values

    /// What writeback last wrote for the mailbox, one entry per attribute it has written.
    fn last_written(&self, cloud_id: &str) -> Result<Vec<LastWritten>>;

    // --- journal

    /// Journals writes before they are sent, all in one transaction; returns their ids in order.
    fn record_intents(&self, intents: &[WriteIntent<'_>], now: i64) -> Result<Vec<JournalId>>;

    fn record_intent(&self, intent: &WriteIntent<'_>, now: i64) -> Result<JournalId> {
        self.record_intents(std::slice::from_ref(intent), now)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                StateError::corrupt("journal id", "no id returned for a recorded intent")
            })
    }

    /// Records the outcomes of journalled writes in one transaction: each entry is marked done,
    /// gets one audit row per attribute its modifications touch, and, when applied, updates
    /// the last written values. Nothing is recorded if any id is unknown or already has an
    /// outcome.
    fn record_outcomes(&self, outcomes: &[(JournalId, Outcome)], now: i64) -> Result<()>;

    fn record_outcome(&self, id: JournalId, outcome: &Outcome, now: i64) -> Result<()> {
        self.record_outcomes(&[(id, outcome.clone())], now)
    }

    /// Writes journalled without an outcome, oldest first: after a crash these may or may not
    /// have reached the DC, and the engine must re-read the objects and finish or redo them.
    fn in_flight(&self) -> Result<Vec<JournalEntry>>;

    fn journal_entry(&self, id: JournalId) -> Result<Option<JournalEntry>>;

    // --- audit log

    fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>>;

    /// Retention: removes audit rows older than `cutoff` and journal entries finished before it.
    /// Entries still in flight are kept whatever their age. Also drops the staged writes of
    /// cycles that began before `cutoff`, except the latest cycle's (it may still be running).
    fn purge_before(&self, cutoff: i64) -> Result<PurgeReport>;

    // --- error queue

    /// Counts one more failure for the mailbox and schedules its next attempt, or quarantines it.
    fn record_failure(
        &self,
        cloud_id: &str,
        error: &str,
        policy: &RetryPolicy,
        now: i64,
    ) -> Result<FailureState>;

    /// Forgets the mailbox's failures (it succeeded). Does nothing if there were none.
    fn clear_failure(&self, cloud_id: &str) -> Result<()>;

    /// The cloud record (its WhenChangedUTC) the mailbox was last seen in sync with: applied,
    /// or found already equal. Forgotten when the mailbox's join is removed or moves.
    fn synced_version(&self, cloud_id: &str) -> Result<Option<String>>;

    /// Remembers, per mailbox, the cloud record now in sync in AD (`(cloud_id, WhenChangedUTC)`).
    /// Kept with the mailbox's join: a mailbox without one is left out (it has no object to be
    /// in sync with).
    fn record_synced(&self, records: &[(&str, &str)]) -> Result<()>;

    /// [`StateStore::clear_failure`] for many mailboxes in one transaction.
    fn clear_failures(&self, cloud_ids: &[&str]) -> Result<()>;

    /// Mailboxes whose next attempt is due, earliest first; quarantined ones never are.
    fn due_retries(&self, now: i64) -> Result<Vec<String>>;

    fn failure(&self, cloud_id: &str) -> Result<Option<FailureRecord>>;

    /// The whole error queue, quarantined mailboxes included.
    fn failures(&self) -> Result<Vec<FailureRecord>>;

    /// Lets a quarantined mailbox be tried again from `now`, with its failure count reset.
    fn release_quarantine(&self, cloud_id: &str, now: i64) -> Result<()>;

    // --- held plans (safety brakes)

    fn hold_plan(
        &self,
        cycle: CycleId,
        reason: &str,
        plan: &serde_json::Value,
        now: i64,
    ) -> Result<PlanId>;

    /// All held plans, oldest first, whatever their status.
    fn held_plans(&self) -> Result<Vec<HeldPlan>>;

    fn held_plan(&self, id: PlanId) -> Result<Option<HeldPlan>>;

    /// Pending → approved.
    fn approve_plan(&self, id: PlanId, now: i64) -> Result<()>;

    /// Pending or approved (not yet applied) → discarded.
    fn discard_plan(&self, id: PlanId, now: i64) -> Result<()>;

    /// Approved → applied, once the engine has carried the plan out.
    fn mark_plan_applied(&self, id: PlanId, now: i64) -> Result<()>;

    // --- staged writes: a cycle's plan on disk, checked by the brakes before anything is sent

    /// Appends writes to the cycle's stage, in order (seq continues after the last staged one;
    /// the first is 1). Fails with [`StateError::NotFound`] if the cycle does not exist.
    fn stage_writes(&self, cycle: CycleId, writes: &[StagedWrite]) -> Result<()>;

    /// Staged writes of the cycle with seq > after_seq, in seq order, at most `limit`. Pass the
    /// last seq returned as the next `after_seq` to stream the whole stage in pages.
    fn staged_writes(
        &self,
        cycle: CycleId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<(u64, StagedWrite)>>;

    fn staged_count(&self, cycle: CycleId) -> Result<u64>;

    /// Drops the cycle's stage; returns how many rows went. Staging again afterwards starts
    /// over at seq 1.
    fn clear_staged(&self, cycle: CycleId) -> Result<u64>;

    /// Drops every stage of cycles other than `keep` (leftovers of crashed or finished cycles),
    /// returns rows removed. `None` drops all stages.
    fn clear_stale_stages(&self, keep: Option<CycleId>) -> Result<u64>;
}

//! Applying a cycle's staged writes: journalled before they leave, pipelined over the
//! connection pool, each conflict re-read and re-planned a bounded number of times.

use crate::cycle::{ObjectSink, Shutdown};
use crate::engine::{now_ms, Assessment, BeforeApplyHook, Engine};
use crate::error::EngineError;
use crate::report::{CycleSummary, ObjectReport};
use crate::scope_snapshot::plan_for;
use futures_util::stream::{self, StreamExt};
use std::sync::Arc;
use tokio::sync::mpsc;
use writeback_ad::{ids, AdDirectory, AdError, AdUser};
use writeback_core::{AdValues, Modification, PlanPolicy};
use writeback_state::{CycleId, JournalId, Outcome, RetryPolicy, StagedWrite, StateStore, WriteIntent};

/// Staged writes journalled and sent per batch.
const APPLY_BATCH: u32 = 500;
const APPLY_BATCH_USIZE: usize = APPLY_BATCH as usize;

/// Staged writes with their journal entries, ready to send.
type JournalledBatch = Vec<(JournalId, StagedWrite)>;

/// How one mailbox's write ended, after any conflict retries.
pub(crate) enum Final {
    Applied(Vec<Modification>),
    /// A re-read showed AD already matches the cloud.
    InSync,
    Failed(String),
}

/// Where an apply takes its writes from.
pub(crate) enum Source {
    /// The cycle's stage in the state store, once the brakes have passed the whole plan.
    Stage,
    /// Writes as the planner makes them (a full pass whose scope cannot cross a brake: see
    /// `cycle.rs`); the apply ends when the sender is dropped.
    Planner(mpsc::Receiver<StagedWrite>),
}

/// What an apply adds to the cycle's summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ApplyCounts {
    pub applied: u64,
    pub failed: u64,
    pub conflicts: u64,
}

impl ApplyCounts {
    pub(crate) fn add_to(self, summary: &mut CycleSummary) {
        summary.applied += self.applied;
        summary.failed += self.failed;
        summary.conflicts += self.conflicts;
    }
}

/// Everything writing needs, owned: an apply can run on a task of its own, beside the
/// planning that feeds it (the DC must not wait while a page is being planned).
pub(crate) struct Applier<S: ?Sized> {
    dir: AdDirectory,
    store: Arc<S>,
    policy: PlanPolicy,
    retry: RetryPolicy,
    conflict_retries: u32,
    max_in_flight: usize,
    before_apply: Option<BeforeApplyHook>,
    cycle: CycleId,
}

impl<S: StateStore + ?Sized> Engine<S> {
    /// An applier for `cycle`'s writes.
    pub(crate) fn applier(&self, cycle: CycleId) -> Applier<S> {
        Applier {
            dir: self.dir.clone(),
            store: self.store.clone(),
            policy: self.settings.policy.clone(),
            retry: self.settings.retry,
            conflict_retries: self.settings.conflict_retries,
            max_in_flight: self.settings.max_in_flight,
            before_apply: self.before_apply.lock().ok().and_then(|slot| slot.clone()),
            cycle,
        }
    }

    /// Applies the cycle's staged writes (see [`Applier::run`]).
    pub(crate) async fn apply_stage(&self, cycle: CycleId, summary: &mut CycleSummary, sink: ObjectSink<'_>, shutdown: &Shutdown) -> Result<(), EngineError> {
        let counts = self.applier(cycle).run(Source::Stage, shutdown, sink).await?;
        counts.add_to(summary);
        if shutdown.is_triggered() {
            summary.complete = false;
        }
        Ok(())
    }

    /// Sends one journalled write (see [`Applier::apply_one`]).
    pub(crate) async fn apply_one(&self, cycle: CycleId, id: JournalId, write: StagedWrite) -> Result<(JournalId, Outcome, Final, StagedWrite), EngineError> {
        self.applier(cycle).apply_one(id, write).await
    }
}

impl<S: StateStore + ?Sized> Applier<S> {
    /// Sends the writes as one continuous pipeline: batches are journalled ahead while earlier
    /// writes are still in flight, and outcomes are recorded a batch at a time as they come
    /// back, so the DC never waits on writeback's bookkeeping.
    pub(crate) async fn run(&self, source: Source, shutdown: &Shutdown, report: ObjectSink<'_>) -> Result<ApplyCounts, EngineError> {
        // A stop request ends the apply between batches: what was sent is finished and
        // recorded; what was not stays unsent (and un-journalled), the watermark does not move.
        let from_planner = matches!(source, Source::Planner(_));
        let batches = match source {
            Source::Stage => stream::unfold(Some(0u64), move |after| async move {
                let after = after?;
                if shutdown.is_triggered() {
                    return None;
                }
                match self.journal_staged(after) {
                    Ok(Some((last, items))) => Some((Ok(items), Some(last))),
                    Ok(None) => None,
                    Err(e) => Some((Err(e), None)),
                }
            })
            .boxed(),
            Source::Planner(receiver) => stream::unfold(Some(receiver), move |receiver| async move {
                let mut receiver = receiver?;
                if shutdown.is_triggered() {
                    // Unsent, and so never journalled. The queue stays open until the planner,
                    // which stops at its next page, closes it: a stop is not an error to it.
                    while receiver.recv().await.is_some() {}
                    return None;
                }
                let mut writes = Vec::with_capacity(APPLY_BATCH_USIZE);
                if receiver.recv_many(&mut writes, APPLY_BATCH_USIZE).await == 0 {
                    return None;
                }
                match self.journal(writes) {
                    Ok(items) => Some((Ok(items), Some(receiver))),
                    Err(e) => Some((Err(e), None)),
                }
            })
            .boxed(),
        };
        let results = batches
            .flat_map(|batch| match batch {
                Ok(items) => stream::iter(items.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::once(std::future::ready(Err(e))).right_stream(),
            })
            .map(|item| async move {
                let (id, write) = item?;
                self.apply_one(id, write).await
            })
            .buffer_unordered(self.max_in_flight);
        // Outcomes recorded a batch at a time; while the planner feeds the writes, as soon as
        // they are back (the cycle hands on their reports page by page).
        let results = if from_planner {
            results.ready_chunks(APPLY_BATCH_USIZE).boxed()
        } else {
            results.chunks(APPLY_BATCH_USIZE).boxed()
        };
        let started = std::time::Instant::now();
        let mut counts = ApplyCounts::default();
        let mut results = std::pin::pin!(results);
        while let Some(chunk) = results.next().await {
            self.settle(chunk, &mut counts, report)?;
        }
        if counts.applied + counts.failed > 0 {
            tracing::info!(applied = counts.applied, failed = counts.failed, ms = started.elapsed().as_millis() as u64, "writes applied");
        }
        Ok(counts)
    }

    /// The next batch of staged writes after `after`, journalled.
    fn journal_staged(&self, after: u64) -> Result<Option<(u64, JournalledBatch)>, EngineError> {
        let page = self.store.staged_writes(self.cycle, after, APPLY_BATCH)?;
        let Some((last, _)) = page.last() else { return Ok(None) };
        let last = *last;
        let writes: Vec<StagedWrite> = page.into_iter().map(|(_, w)| w).collect();
        Ok(Some((last, self.journal(writes)?)))
    }

    /// Journals a batch: durable before anything is sent, so a crash from here on is
    /// recovered from the journal.
    fn journal(&self, writes: Vec<StagedWrite>) -> Result<JournalledBatch, EngineError> {
        let intents: Vec<WriteIntent<'_>> = writes
            .iter()
            .map(|w| WriteIntent {
                cycle: self.cycle,
                cloud_id: &w.cloud_id,
                object_guid: w.object_guid,
                dn: &w.dn,
                mods: &w.mods,
                before: &w.before,
            })
            .collect();
        let journal_ids = self.store.record_intents(&intents, now_ms())?;
        drop(intents);
        Ok(journal_ids.into_iter().zip(writes).collect())
    }

    /// Records a chunk of finished writes: outcomes in the journal, failures in the error
    /// queue, successes cleared from it, each mailbox's report to the sink.
    fn settle(
        &self,
        results: Vec<Result<(JournalId, Outcome, Final, StagedWrite), EngineError>>,
        counts: &mut ApplyCounts,
        report: ObjectSink<'_>,
    ) -> Result<(), EngineError> {
        let mut outcomes = Vec::with_capacity(results.len());
        let mut finals = Vec::with_capacity(results.len());
        for result in results {
            let (id, outcome, final_state, write) = result?;
            if outcome == Outcome::Conflict {
                counts.conflicts += 1;
            }
            outcomes.push((id, outcome));
            finals.push((final_state, write));
        }
        self.store.record_outcomes(&outcomes, now_ms())?;
        let mut succeeded: Vec<String> = Vec::with_capacity(finals.len());
        let mut synced: Vec<(String, String)> = Vec::with_capacity(finals.len());
        for (final_state, write) in finals {
            let mut object = ObjectReport {
                cloud_id: write.cloud_id.clone(),
                dn: Some(write.dn.clone()),
                status: "applied".into(),
                ..ObjectReport::default()
            };
            match final_state {
                Final::Applied(mods) => {
                    counts.applied += 1;
                    object.changes = mods;
                    succeeded.push(write.cloud_id.clone());
                    synced.extend(write.mailbox.when_changed_utc.clone().map(|v| (write.cloud_id.clone(), v)));
                }
                Final::InSync => {
                    object.status = "in_sync".into();
                    succeeded.push(write.cloud_id.clone());
                    synced.extend(write.mailbox.when_changed_utc.clone().map(|v| (write.cloud_id.clone(), v)));
                }
                Final::Failed(error) => {
                    counts.failed += 1;
                    object.status = "failed".into();
                    object.changes = write.mods.clone();
                    let state = self.store.record_failure(&write.cloud_id, &error, &self.retry, now_ms())?;
                    if state.quarantined {
                        tracing::error!(cloud_id = %write.cloud_id, dn = %write.dn, %error, "mailbox quarantined after repeated failures");
                    }
                    object.error = Some(error);
                }
            }
            report(&object);
        }
        let succeeded: Vec<&str> = succeeded.iter().map(String::as_str).collect();
        self.store.clear_failures(&succeeded)?;
        let synced: Vec<(&str, &str)> = synced.iter().map(|(id, v)| (id.as_str(), v.as_str())).collect();
        self.store.record_synced(&synced)?;
        Ok(())
    }

    /// Sends one journalled write; on a conflict (or an unknown outcome) re-reads the object,
    /// plans again from the same cloud record and retries, each retry journalled on its own.
    /// Returns the first attempt's outcome (for the batch's journal entry) and how it ended.
    pub(crate) async fn apply_one(&self, id: JournalId, write: StagedWrite) -> Result<(JournalId, Outcome, Final, StagedWrite), EngineError> {
        let target = staged_target(&write);
        if let Some(hook) = &self.before_apply {
            hook(write.dn.clone()).await;
        }
        let first = match self.dir.apply(&target, &write.mods).await {
            Ok(()) => {
                let mods = write.mods.clone();
                return Ok((id, Outcome::Applied, Final::Applied(mods), write));
            }
            Err(e) if e.needs_reread() => outcome_of(&e),
            Err(e) => {
                let message = e.to_string();
                return Ok((id, outcome_of(&e), Final::Failed(message), write));
            }
        };
        let final_state = self.retry_after_conflict(&write).await?;
        Ok((id, first, final_state, write))
    }

    async fn retry_after_conflict(&self, write: &StagedWrite) -> Result<Final, EngineError> {
        let guid_dn = ids::guid_dn(&write.object_guid);
        for attempt in 1..=self.conflict_retries {
            let Some(user) = self.dir.read(&guid_dn).await? else {
                return Ok(Final::Failed(format!("{} was deleted before it could be written", write.dn)));
            };
            let (user, mods) = match plan_for(&self.policy, &write.mailbox, user) {
                Assessment::Planned { user, mods } => (user, mods),
                Assessment::InSync { .. } => return Ok(Final::InSync),
                Assessment::Invalid { error, .. } => return Ok(Final::Failed(error)),
                other => return Ok(Final::Failed(format!("unexpected re-plan result {other:?}"))),
            };
            tracing::info!(cloud_id = %write.cloud_id, dn = %user.dn, attempt, "object changed since read; re-planned");
            let intent = WriteIntent {
                cycle: self.cycle,
                cloud_id: &write.cloud_id,
                object_guid: user.object_guid,
                dn: &user.dn,
                mods: &mods,
                before: &user.values,
            };
            let retry_id = self.store.record_intent(&intent, now_ms())?;
            match self.dir.apply(&user, &mods).await {
                Ok(()) => {
                    self.store.record_outcome(retry_id, &Outcome::Applied, now_ms())?;
                    return Ok(Final::Applied(mods));
                }
                Err(e) if e.needs_reread() => {
                    self.store.record_outcome(retry_id, &outcome_of(&e), now_ms())?;
                }
                Err(e) => {
                    self.store.record_outcome(retry_id, &outcome_of(&e), now_ms())?;
                    return Ok(Final::Failed(e.to_string()));
                }
            }
        }
        Ok(Final::Failed(format!(
            "{} kept changing on-prem: gave up after {} re-plans this cycle",
            write.dn, self.conflict_retries
        )))
    }
}

/// The object as it was read for planning. Only objects the matcher accepted (users, not
/// protected) are ever staged; the writer addresses them by GUID.
fn staged_target(write: &StagedWrite) -> AdUser {
    AdUser {
        dn: write.dn.clone(),
        object_guid: write.object_guid,
        object_sid: None,
        consistency_guid: None,
        sam_account_name: None,
        object_classes: vec!["user".into()],
        admin_count: false,
        critical_system_object: false,
        usn_changed: write.usn_changed,
        usn_created: 0,
        values: AdValues::clone(&write.before),
    }
}

pub(crate) fn outcome_of(error: &AdError) -> Outcome {
    match error {
        AdError::Conflict { .. } => Outcome::Conflict,
        AdError::OutcomeUnknown { .. } => Outcome::Unknown,
        other => Outcome::Failed { code: error_code(other), message: other.to_string() },
    }
}

fn error_code(error: &AdError) -> u32 {
    match error {
        AdError::Conflict { code, .. }
        | AdError::SchemaMissing { code, .. }
        | AdError::AccessDenied { code, .. }
        | AdError::ValueRejected { code, .. }
        | AdError::Ldap { code, .. }
        | AdError::Bind { code, .. } => *code,
        AdError::NoSuchObject { .. } => 32,
        // Not from the DC: writeback's own refusals and transport failures.
        _ => 0,
    }
}

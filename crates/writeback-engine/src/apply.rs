//! Applying a cycle's staged writes: journalled before they leave, pipelined over the
//! connection pool, each conflict re-read and re-planned a bounded number of times.

use crate::cycle::{ObjectSink, Shutdown};
use crate::engine::{now_ms, Assessment, Engine};
use crate::error::EngineError;
use crate::report::{CycleSummary, ObjectReport};
use futures_util::stream::{self, StreamExt};
use writeback_ad::{ids, AdError, AdUser};
use writeback_core::{AdValues, Modification};
use writeback_state::{CycleId, JournalId, Outcome, StagedWrite, StateStore, WriteIntent};

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

impl<S: StateStore + ?Sized> Engine<S> {
    /// Sends the cycle's staged writes as one continuous pipeline: batches are read and
    /// journalled ahead while earlier writes are still in flight, and outcomes are recorded a
    /// batch at a time as they come back, so the DC never waits on writeback's bookkeeping.
    pub(crate) async fn apply_stage(
        &self,
        cycle: CycleId,
        summary: &mut CycleSummary,
        sink: ObjectSink<'_>,
        shutdown: &Shutdown,
    ) -> Result<(), EngineError> {
        // A stop request ends the cycle between batches: what was sent is finished and
        // recorded; what was not stays unsent (and un-journalled), the watermark does not move.
        let batches = stream::unfold(Some(0u64), move |after| async move {
            let after = after?;
            if shutdown.is_triggered() {
                return None;
            }
            match self.journal_batch(cycle, after) {
                Ok(Some((last, items))) => Some((Ok(items), Some(last))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        });
        let results = batches
            .flat_map(|batch| match batch {
                Ok(items) => stream::iter(items.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::once(std::future::ready(Err(e))).right_stream(),
            })
            .map(|item| async move {
                let (id, write) = item?;
                self.apply_one(cycle, id, write).await
            })
            .buffer_unordered(self.settings.max_in_flight)
            .chunks(APPLY_BATCH_USIZE);
        let started = std::time::Instant::now();
        let mut results = std::pin::pin!(results);
        while let Some(chunk) = results.next().await {
            self.settle(chunk, summary, sink)?;
        }
        tracing::info!(applied = summary.applied, failed = summary.failed, ms = started.elapsed().as_millis() as u64, "staged writes applied");
        if shutdown.is_triggered() {
            summary.complete = false;
        }
        Ok(())
    }

    /// The next batch of staged writes after `after`, journalled: durable before anything is
    /// sent, so a crash from here on is recovered from the journal.
    fn journal_batch(&self, cycle: CycleId, after: u64) -> Result<Option<(u64, JournalledBatch)>, EngineError> {
        let page = self.store.staged_writes(cycle, after, APPLY_BATCH)?;
        let Some((last, _)) = page.last() else { return Ok(None) };
        let last = *last;
        let writes: Vec<StagedWrite> = page.into_iter().map(|(_, w)| w).collect();
        let intents: Vec<WriteIntent<'_>> = writes
            .iter()
            .map(|w| WriteIntent {
                cycle,
                cloud_id: &w.cloud_id,
                object_guid: w.object_guid,
                dn: &w.dn,
                mods: &w.mods,
                before: &w.before,
            })
            .collect();
        let journal_ids = self.store.record_intents(&intents, now_ms())?;
        drop(intents);
        Ok(Some((last, journal_ids.into_iter().zip(writes).collect())))
    }

    /// Records a chunk of finished writes: outcomes in the journal, failures in the error
    /// queue, successes cleared from it, each mailbox's report to the sink.
    fn settle(
        &self,
        results: Vec<Result<(JournalId, Outcome, Final, StagedWrite), EngineError>>,
        summary: &mut CycleSummary,
        sink: ObjectSink<'_>,
    ) -> Result<(), EngineError> {
        {
            let mut outcomes = Vec::with_capacity(results.len());
            let mut finals = Vec::with_capacity(results.len());
            for result in results {
                let (id, outcome, final_state, write) = result?;
                if outcome == Outcome::Conflict {
                    summary.conflicts += 1;
                }
                outcomes.push((id, outcome));
                finals.push((final_state, write));
            }
            self.store.record_outcomes(&outcomes, now_ms())?;
            let mut succeeded: Vec<String> = Vec::with_capacity(finals.len());
            let mut synced: Vec<(String, String)> = Vec::with_capacity(finals.len());
            for (final_state, write) in finals {
                let mut report = ObjectReport {
                    cloud_id: write.cloud_id.clone(),
                    dn: Some(write.dn.clone()),
                    status: "applied".into(),
                    ..ObjectReport::default()
                };
                match final_state {
                    Final::Applied(mods) => {
                        summary.applied += 1;
                        report.changes = mods;
                        succeeded.push(write.cloud_id.clone());
                        synced.extend(write.mailbox.when_changed_utc.clone().map(|v| (write.cloud_id.clone(), v)));
                    }
                    Final::InSync => {
                        report.status = "in_sync".into();
                        succeeded.push(write.cloud_id.clone());
                        synced.extend(write.mailbox.when_changed_utc.clone().map(|v| (write.cloud_id.clone(), v)));
                    }
                    Final::Failed(error) => {
                        summary.failed += 1;
                        report.status = "failed".into();
                        report.changes = write.mods.clone();
                        let state = self.store.record_failure(&write.cloud_id, &error, &self.settings.retry, now_ms())?;
                        if state.quarantined {
                            tracing::error!(cloud_id = %write.cloud_id, dn = %write.dn, %error, "mailbox quarantined after repeated failures");
                        }
                        report.error = Some(error);
                    }
                }
                sink(&report);
            }
            let succeeded: Vec<&str> = succeeded.iter().map(String::as_str).collect();
            self.store.clear_failures(&succeeded)?;
            let synced: Vec<(&str, &str)> = synced.iter().map(|(id, v)| (id.as_str(), v.as_str())).collect();
            self.store.record_synced(&synced)?;
        }
        Ok(())
    }

    /// Sends one staged write; on a conflict (or an unknown outcome) re-reads the object,
    /// plans again from the same cloud record and retries, each retry journalled on its own.
    /// Returns the first attempt's outcome (for the batch's journal entry) and how it ended.
    pub(crate) async fn apply_one(
        &self,
        cycle: CycleId,
        id: JournalId,
        write: StagedWrite,
    ) -> Result<(JournalId, Outcome, Final, StagedWrite), EngineError> {
        let target = staged_target(&write);
        self.run_before_apply_hook(&write.dn).await;
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
        let final_state = self.retry_after_conflict(cycle, &write).await?;
        Ok((id, first, final_state, write))
    }

    async fn retry_after_conflict(&self, cycle: CycleId, write: &StagedWrite) -> Result<Final, EngineError> {
        let guid_dn = ids::guid_dn(&write.object_guid);
        for attempt in 1..=self.settings.conflict_retries {
            let Some(user) = self.dir.read(&guid_dn).await? else {
                return Ok(Final::Failed(format!("{} was deleted before it could be written", write.dn)));
            };
            let (user, mods) = match self.plan_for(&write.mailbox, user) {
                Assessment::Planned { user, mods } => (user, mods),
                Assessment::InSync { .. } => return Ok(Final::InSync),
                Assessment::Invalid { error, .. } => return Ok(Final::Failed(error)),
                other => return Ok(Final::Failed(format!("unexpected re-plan result {other:?}"))),
            };
            tracing::info!(cloud_id = %write.cloud_id, dn = %user.dn, attempt, "object changed since read; re-planned");
            let intent = WriteIntent {
                cycle,
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
            write.dn, self.settings.conflict_retries
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

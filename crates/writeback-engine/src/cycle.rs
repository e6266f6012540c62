//! One cycle: read what changed in the cloud, match and plan every mailbox (staging the
//! writes), check the brakes, apply, record, and only then advance the watermark.
//!
//! Planning the whole cycle before writing anything is what lets a brake stop a cycle with
//! nothing of it applied. Staged writes live in the state store, not in memory, so a cycle
//! of any size plans in constant memory.
//!
//! One exception, for speed: a full pass whose scope snapshot proves that no brake can trip
//! (its users, and the managed values they hold, are within every limit: the largest change
//! the pass could plan) sends what the snapshot decided to an apply task as it plans, so the
//! DC starts writing after the first page instead of after the whole pass. What only the live
//! matcher could decide (objects not in the snapshot, created since it was read) is still
//! staged, and checked with the cycle's totals at the end: a cycle never writes more than the
//! limits allow without an operator's approval.

use crate::apply::{ApplyCounts, Source};
use crate::engine::{now_ms, Assessment, Engine};
use crate::scope_snapshot::{Resolution, SnapshotDeliveredIds, SnapshotPlanner};
use crate::error::EngineError;
use crate::report::{values_cleared, CycleSummary, HeldSummary, ObjectReport};
use futures_util::stream::{self, StreamExt};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use writeback_cloud::exchange::{choose_pass, MailboxPass};
use writeback_cloud::{Mailbox, MailboxError, PassKind, Watermark};
use writeback_state::{CycleId, PlanStatus, ScopeSnapshot, StagedWrite, StateStore};

/// Watermark names in the state store.
pub const WATERMARK_WHEN_CHANGED: &str = "exchange.when_changed";
pub const WATERMARK_LAST_FULL_PASS: &str = "exchange.last_full_pass";
/// Where the last scope scan split its parts (`writeback_ad::scan::LearnedBounds`, JSON).
pub const WATERMARK_SCAN_BOUNDS: &str = "ad.scan_bounds";

/// Mailboxes matched and read concurrently while planning a page.
const PLAN_CONCURRENCY: usize = 16;
/// How far before the watermark a poll between catch-ups starts.
const FAST_POLL_OVERLAP: std::time::Duration = std::time::Duration::from_secs(5);
/// How often an incremental cycle starts re-reading the watermark's overlap window.
const CATCH_UP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How long one cycle of `writeback run` spends on a catch-up before it leaves the rest of
/// it to the next cycles (see [`CycleOptions::polling`]).
pub const CATCH_UP_SLICE: std::time::Duration = std::time::Duration::from_secs(1);
/// Objects of a held plan kept for the operator's review.
const HELD_PLAN_OBJECTS: usize = 5000;
/// Due retries looked up one by one per cycle at most (the rest wait for the next cycle).
const RETRIES_PER_CYCLE: usize = 500;

/// Asks a running cycle to stop at the next page boundary (in-flight writes finish).
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Default)]
pub struct CycleOptions {
    /// A full pass over every cloud-managed mailbox (also repairs on-prem drift).
    pub full: bool,
    /// Plan only: nothing is written to AD, no watermark moves, no failure is queued.
    pub dry_run: bool,
    /// How long this cycle may spend on a catch-up (the once-a-minute re-read of the
    /// watermark's overlap window, for changes that became visible late). `None`: the whole
    /// catch-up within the cycle, as a one-shot run needs.
    pub catch_up_slice: Option<std::time::Duration>,
}

impl CycleOptions {
    /// The cycles of `writeback run`: a catch-up is spread over several polls, a slice at a
    /// time. After a bulk edit its window holds every edited mailbox for as long as the
    /// overlap lasts (200 pages at 200,000 mailboxes); read in one go, it held back every new
    /// change for as long as it took.
    pub fn polling() -> Self {
        CycleOptions { catch_up_slice: Some(CATCH_UP_SLICE), ..CycleOptions::default() }
    }
}

/// Writes a streaming full pass has handed to its apply task and the task has not taken yet:
/// about a page, so that memory does not grow with the tenant.
const STREAM_QUEUE: usize = 1000;

/// What every page of one pass shares.
#[derive(Clone, Copy)]
struct PageContext<'a> {
    kind: PassKind,
    cycle: Option<CycleId>,
    previous: Option<Watermark>,
    snapshot: Option<&'a ScopeSnapshot>,
    /// A streaming full pass: where the writes the snapshot decided go.
    stream: Option<&'a mpsc::Sender<StagedWrite>>,
}

/// A full pass's apply task, fed as the pass plans.
struct Streaming {
    writes: mpsc::Sender<StagedWrite>,
    reports: mpsc::UnboundedReceiver<ObjectReport>,
    task: tokio::task::JoinHandle<Result<ApplyCounts, EngineError>>,
}

impl Streaming {
    /// Closes the queue, hands on the reports of the writes still finishing, and returns what
    /// the task applied.
    async fn finish(self, sink: ObjectSink<'_>) -> Result<ApplyCounts, EngineError> {
        let Streaming { writes, mut reports, task } = self;
        drop(writes);
        while let Some(report) = reports.recv().await {
            sink(&report);
        }
        task.await.map_err(|e| EngineError::ApplyTask(e.to_string()))?
    }
}

/// Hands on the reports an apply task has sent so far.
fn drain_reports(reports: Option<&mut mpsc::UnboundedReceiver<ObjectReport>>, sink: ObjectSink<'_>) {
    if let Some(reports) = reports {
        while let Ok(report) = reports.try_recv() {
            sink(&report);
        }
    }
}

/// Receives each mailbox's report as the cycle goes.
pub type ObjectSink<'a> = &'a mut (dyn FnMut(&ObjectReport) + Send);

impl<S: StateStore + ?Sized + 'static> Engine<S> {
    /// Runs one cycle (or, with `dry_run`, plans one).
    pub async fn run_cycle(
        &self,
        options: &CycleOptions,
        sink: ObjectSink<'_>,
        shutdown: &Shutdown,
    ) -> Result<CycleSummary, EngineError> {
        let started = Instant::now();
        let result = self.cycle(options, sink, shutdown, started).await;
        if !options.dry_run {
            crate::metrics::record_cycle(&result, started.elapsed());
        }
        result
    }

    async fn cycle(
        &self,
        options: &CycleOptions,
        sink: ObjectSink<'_>,
        shutdown: &Shutdown,
        started: Instant,
    ) -> Result<CycleSummary, EngineError> {
        let now = now_ms();
        if !options.dry_run {
            self.recover_in_flight().await?;
        }
        let previous = self.watermark()?;
        let kind = if options.full {
            PassKind::Full
        } else {
            match choose_pass(previous, self.last_full_pass()?, OffsetDateTime::now_utc(), self.full_pass_interval) {
                PassKind::Incremental { since, .. } => PassKind::Incremental { since: self.fast_poll_since(since), overlap: false },
                PassKind::Full => PassKind::Full,
            }
        };
        if kind == PassKind::Full && !options.dry_run {
            // A full pass reads everything a catch-up under way would still list.
            if let Ok(mut kept) = self.catch_up.lock() {
                *kept = None;
            }
        }
        let stage = Instant::now();
        let anchors = self.refresh_anchors().await?;
        tracing::info!(users = anchors, ms = elapsed_ms(stage), "Graph anchors refreshed");
        // A full pass reads the whole scope first (`[ad] scan_streams` searches at once, each
        // over its own part of the scope). Not while the anchors refresh: the LDAP client
        // buffers whatever the DC sends faster than it is consumed, so the scan gets the task
        // to itself (it consumes several times faster than a DC sends, and memory stays flat).
        let (snapshot, scope_totals) = match kind {
            PassKind::Full => {
                let (snapshot, totals) = self.load_snapshot(options.dry_run).await?;
                (Some(snapshot), Some(totals))
            }
            PassKind::Incremental { .. } => (None, None),
        };
        let cycle = if options.dry_run { None } else { Some(self.store.begin_cycle(now)?) };
        if let Some(cycle) = cycle {
            self.store.clear_stale_stages(Some(cycle))?;
        }
        // The mailboxes in scope the brakes judge against are at least the joins known now.
        let joins_before = match (cycle, kind) {
            (Some(_), PassKind::Full) => self.store.join_count()?,
            _ => 0,
        };
        let streaming = match (cycle, scope_totals) {
            (Some(cycle), Some(totals)) if self.settings.brakes.cannot_trip(totals.objects, totals.values, joins_before) => {
                tracing::info!(objects = totals.objects, values = totals.values, "no brake can trip for this scope: writing while planning");
                Some(self.start_streaming(cycle, shutdown))
            }
            _ => None,
        };
        let mut summary = CycleSummary {
            cycle: cycle.map(|c| c.0),
            pass: if kind == PassKind::Full { "full" } else { "incremental" },
            complete: true,
            ..CycleSummary::default()
        };

        let stage = Instant::now();
        let context = PageContext { kind, cycle, previous, snapshot: snapshot.as_ref(), stream: None };
        let (planned, streamed) = match streaming {
            Some(mut streaming) => {
                let context = PageContext { stream: Some(&streaming.writes), ..context };
                let planned = self.plan_pass(context, &mut summary, sink, shutdown, options.catch_up_slice, Some(&mut streaming.reports)).await;
                (planned, Some(streaming.finish(sink).await))
            }
            None => (self.plan_pass(context, &mut summary, sink, shutdown, options.catch_up_slice, None).await, None),
        };
        // The apply task's error first: a planner that could no longer hand it writes
        // stopped because of it.
        if let Some(counts) = streamed.transpose()? {
            counts.add_to(&mut summary);
            tracing::info!(streamed = summary.streamed, applied = counts.applied, failed = counts.failed, "writes applied while planning");
        }
        let pass_summary = planned?;
        tracing::info!(mailboxes = summary.mailboxes, planned = summary.planned, ms = elapsed_ms(stage), "Exchange pass read and planned");
        drop(snapshot);
        let Some(cycle) = cycle else {
            summary.duration_ms = elapsed_ms(started);
            return Ok(summary);
        };
        if shutdown.is_triggered() {
            summary.complete = false;
            self.store.clear_staged(cycle)?;
            return self.finish(cycle, summary, started);
        }

        // Brakes: nothing of this cycle is applied when a threshold is crossed, unless an
        // operator approved a held plan at least this large. (A streaming pass has applied
        // what its scope proved could not cross one; what is staged is held if it would.)
        let in_scope = summary.mailboxes.max(self.store.join_count()?).max(joins_before);
        if let Some(reason) = self.settings.brakes.check(summary.planned, summary.values_cleared, in_scope) {
            match self.approved_plan_covering(&summary)? {
                Some(plan_id) => {
                    tracing::warn!(plan = plan_id.0, %reason, "threshold crossed, applying under an operator's approval");
                    self.apply_stage(cycle, &mut summary, sink, shutdown).await?;
                    self.store.mark_plan_applied(plan_id, now_ms())?;
                }
                None => {
                    let plan_id = self.hold(cycle, &reason, &summary)?;
                    tracing::warn!(plan = plan_id.0, %reason, "safety brake: cycle held, nothing applied; review with `writeback status`, then `writeback approve {}`", plan_id.0);
                    summary.held = Some(HeldSummary { plan_id: plan_id.0, reason });
                    self.store.clear_staged(cycle)?;
                    return self.finish(cycle, summary, started);
                }
            }
        } else {
            self.apply_stage(cycle, &mut summary, sink, shutdown).await?;
        }
        self.store.clear_staged(cycle)?;

        // The watermark moves only past a pass whose every mailbox was applied, in sync, or
        // recorded in the error queue, and only if the pass itself was complete.
        if summary.complete && !shutdown.is_triggered() {
            let mut marks: Vec<(&str, String)> = Vec::new();
            if let Some(mark) = pass_summary.watermark {
                // Full precision: drift detection compares each mailbox's WhenChangedUTC with
                // it (the OPATH filter rounds down on its own).
                let text = mark.0.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| mark.to_filter_literal());
                marks.push((WATERMARK_WHEN_CHANGED, text));
            }
            if kind == PassKind::Full {
                marks.push((WATERMARK_LAST_FULL_PASS, now.to_string()));
            }
            let refs: Vec<(&str, &str)> = marks.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.store.set_watermarks(&refs, now_ms())?;
            summary.watermark_advanced = !refs.is_empty();
        }
        self.finish(cycle, summary, started)
    }

    fn finish(&self, cycle: CycleId, mut summary: CycleSummary, started: Instant) -> Result<CycleSummary, EngineError> {
        summary.duration_ms = elapsed_ms(started);
        let json = serde_json::to_value(&summary).unwrap_or(serde_json::Value::Null);
        self.store.finish_cycle(cycle, now_ms(), &json)?;
        let retention = i64::try_from(self.settings.audit_retention.as_millis()).unwrap_or(i64::MAX);
        self.store.purge_before(now_ms().saturating_sub(retention))?;
        Ok(summary)
    }

    /// The stored `WhenChangedUTC` watermark.
    pub fn watermark(&self) -> Result<Option<Watermark>, EngineError> {
        Ok(self.store.watermark(WATERMARK_WHEN_CHANGED)?.and_then(|v| Watermark::parse(&v)))
    }

    fn last_full_pass(&self) -> Result<Option<OffsetDateTime>, EngineError> {
        Ok(self
            .store
            .watermark(WATERMARK_LAST_FULL_PASS)?
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()))
    }

    /// Reads the pass page by page and plans every mailbox; then the due retries. `reports`:
    /// a streaming pass's apply task's, handed on to `sink` page by page.
    async fn plan_pass(
        &self,
        context: PageContext<'_>,
        summary: &mut CycleSummary,
        sink: ObjectSink<'_>,
        shutdown: &Shutdown,
        catch_up_slice: Option<std::time::Duration>,
        mut reports: Option<&mut mpsc::UnboundedReceiver<ObjectReport>>,
    ) -> Result<writeback_cloud::PassSummary, EngineError> {
        let PageContext { kind, cycle, previous, snapshot, .. } = context;
        // A full pass keeps the ids Exchange delivered in its scope snapshot, not in memory.
        let mut pass = match snapshot {
            Some(snapshot) => self.cloud.exchange.pass_with(kind, Box::new(SnapshotDeliveredIds::new(snapshot))),
            None => self.cloud.exchange.pass(kind),
        };
        // Mailboxes of the error queue this pass already dealt with (staged, or failed again):
        // the due retries skip them. Bounded by the queue, not the tenant.
        let mut handled_failures: HashSet<String> = HashSet::new();
        // The catch-up this cycle reads after its poll, if any: taken first, so that what the
        // poll lists is marked delivered in it and not planned a second time this cycle.
        let mut catch_up = if kind == PassKind::Full { None } else { self.catch_up_for(cycle, previous) };
        let polled: Result<(), EngineError> = async {
            while let Some(page) = pass.next_page().await? {
                let mailboxes: Vec<Result<Mailbox, MailboxError>> = page.mailboxes;
                if let Some((catch_up, _)) = catch_up.as_mut() {
                    for item in &mailboxes {
                        if let Some(id) = match item { Ok(mailbox) => Some(mailbox.cloud_id.as_str()), Err(error) => error.id.as_deref() } {
                            catch_up.mark_delivered(id)?;
                        }
                    }
                }
                self.plan_page(mailboxes, &context, summary, sink, Some(&mut handled_failures)).await?;
                drain_reports(reports.as_deref_mut(), sink);
                if shutdown.is_triggered() {
                    break;
                }
            }
            Ok(())
        }
        .await;
        if let Some((catch_up, context)) = catch_up {
            if polled.is_err() || shutdown.is_triggered() {
                self.keep_catch_up(cycle, catch_up);
            } else {
                self.plan_catch_up(catch_up, &context, summary, sink, shutdown, &mut handled_failures, catch_up_slice).await?;
            }
        }
        polled?;
        let pass_summary = pass.into_summary();
        summary.complete &= pass_summary.complete;
        if cycle.is_some() && !shutdown.is_triggered() {
            self.plan_due_retries(cycle, &handled_failures, summary, sink).await?;
        }
        Ok(pass_summary)
    }

    /// The catch-up an incremental cycle reads (the once-a-minute re-read of the watermark's
    /// overlap window, for changes that became visible late: clock skew, replication lag): the
    /// one `writeback run` has under way, else a new one when due. A dry run reads one of its own.
    fn catch_up_for<'a>(&self, cycle: Option<CycleId>, previous: Option<Watermark>) -> Option<(MailboxPass<'static>, PageContext<'a>)> {
        let since = previous?;
        let kind = PassKind::Incremental { since, overlap: true };
        let kept = if cycle.is_some() { self.catch_up.lock().ok().and_then(|mut kept| kept.take()) } else { None };
        let pass = match kept {
            Some(pass) => pass,
            None if self.catch_up_due() => self.cloud.exchange.pass(kind),
            None => return None,
        };
        Some((pass, PageContext { kind, cycle, previous, snapshot: None, stream: None }))
    }

    /// Keeps a catch-up for the next cycle (never a dry run's).
    fn keep_catch_up(&self, cycle: Option<CycleId>, pass: MailboxPass<'static>) {
        if let (Some(_), Ok(mut kept)) = (cycle, self.catch_up.lock()) {
            *kept = Some(pass);
        }
    }

    /// Reads a catch-up: all of it, or as much as `slice` allows this cycle, the rest kept for
    /// the next cycles. It does not move the watermark (the poll does), so a catch-up cut short
    /// loses nothing.
    #[allow(clippy::too_many_arguments)]
    async fn plan_catch_up(
        &self,
        mut pass: MailboxPass<'static>,
        context: &PageContext<'_>,
        summary: &mut CycleSummary,
        sink: ObjectSink<'_>,
        shutdown: &Shutdown,
        handled_failures: &mut HashSet<String>,
        slice: Option<std::time::Duration>,
    ) -> Result<(), EngineError> {
        let started = Instant::now();
        // At least a page a cycle, so that a catch-up always gets through.
        while !shutdown.is_triggered() {
            let Some(page) = pass.next_page().await? else { break };
            self.plan_page(page.mailboxes, context, summary, sink, Some(&mut *handled_failures)).await?;
            if context.cycle.is_some() && slice.is_some_and(|slice| started.elapsed() >= slice) {
                self.keep_catch_up(context.cycle, pass);
                return Ok(());
            }
        }
        Ok(())
    }

    /// Mailboxes whose backoff has run out but that the pass did not bring (the cloud did not
    /// change them): fetched one by one and planned again.
    async fn plan_due_retries(
        &self,
        cycle: Option<CycleId>,
        staged: &HashSet<String>,
        summary: &mut CycleSummary,
        sink: ObjectSink<'_>,
    ) -> Result<(), EngineError> {
        let due: Vec<String> = self
            .store
            .due_retries(now_ms())?
            .into_iter()
            .filter(|id| !staged.contains(id))
            .take(RETRIES_PER_CYCLE)
            .collect();
        let mut batch = Vec::new();
        for cloud_id in due {
            summary.retried += 1;
            match self.cloud.exchange.lookup(&cloud_id).await? {
                Some(item) => batch.push(item),
                None => {
                    // Gone from Exchange (or no longer cloud-managed): nothing left to retry.
                    tracing::info!(%cloud_id, "mailbox no longer in Exchange; dropping it from the retry queue");
                    self.store.clear_failure(&cloud_id)?;
                }
            }
        }
        let context = PageContext { kind: PassKind::Full, cycle, previous: None, snapshot: None, stream: None };
        self.plan_page(batch, &context, summary, sink, None).await
    }

    /// Matches and reads a page's mailboxes: from the scope snapshot where it can decide,
    /// live (concurrently) for the rest.
    async fn assess_page(
        &self,
        mailboxes: Vec<Mailbox>,
        snapshot: Option<&ScopeSnapshot>,
        now: i64,
    ) -> Result<Vec<Assessed>, EngineError> {
        let mut decided = Vec::with_capacity(mailboxes.len());
        let mut live = Vec::new();
        match snapshot {
            Some(snapshot) => {
                let scope = self.scope();
                let planner = SnapshotPlanner { store: &*self.store, snapshot, scope: &scope, policy: &self.settings.policy };
                for (mailbox, resolution) in planner.assess_page(mailboxes, now)? {
                    match resolution {
                        Resolution::Decided { assessment, had_failure } => decided.push(Assessed { mailbox, assessment, had_failure, from_snapshot: true }),
                        Resolution::Live => live.push(mailbox),
                    }
                }
            }
            None => live = mailboxes,
        }
        let assessed: Vec<Result<(Mailbox, Assessment), EngineError>> = stream::iter(live)
            .map(|mailbox| self.assess(mailbox, now))
            .buffer_unordered(PLAN_CONCURRENCY)
            .collect()
            .await;
        for result in assessed {
            let (mailbox, assessment) = result?;
            // The live path does not say whether the mailbox was queued: assume it was.
            decided.push(Assessed { mailbox, assessment, had_failure: true, from_snapshot: false });
        }
        Ok(decided)
    }

    async fn plan_page(
        &self,
        items: Vec<Result<Mailbox, MailboxError>>,
        context: &PageContext<'_>,
        summary: &mut CycleSummary,
        sink: ObjectSink<'_>,
        mut handled_failures: Option<&mut HashSet<String>>,
    ) -> Result<(), EngineError> {
        let PageContext { kind, cycle, previous, snapshot, stream } = *context;
        let now = now_ms();
        let dry_run = cycle.is_none();
        let mut mailboxes = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Ok(mailbox) if kind != PassKind::Full && self.already_in_sync(&mailbox)? => {
                    // An incremental pass lists a window before its watermark again on
                    // purpose (clock skew, replication lag); a record already written or found
                    // equal needs no AD read. On-prem drift is what full passes are for.
                    summary.mailboxes += 1;
                    summary.in_sync += 1;
                    sink(&ObjectReport { cloud_id: mailbox.cloud_id, ..ObjectReport::default() });
                }
                Ok(mailbox) => mailboxes.push(mailbox),
                Err(error) => {
                    summary.unreadable += 1;
                    let id = error.id.clone().unwrap_or_default();
                    let message = format!("unreadable mailbox: {}: {}", error.field, error.detail);
                    if !dry_run && !id.is_empty() {
                        self.store.record_failure(&id, &message, &self.settings.retry, now)?;
                        if let Some(set) = handled_failures.as_deref_mut() {
                            set.insert(id.clone());
                        }
                    }
                    sink(&ObjectReport { cloud_id: id, error: Some(message), status: "invalid".into(), ..ObjectReport::default() });
                }
            }
        }
        let mut staged = Vec::new();
        let mut streamed = Vec::new();
        let mut cleared: Vec<String> = Vec::new();
        let mut synced: Vec<(String, String)> = Vec::new();
        for Assessed { mailbox, assessment, had_failure, from_snapshot } in self.assess_page(mailboxes, snapshot, now).await? {
            summary.mailboxes += 1;
            let mut report = ObjectReport { cloud_id: mailbox.cloud_id.clone(), ..ObjectReport::default() };
            match assessment {
                Assessment::Planned { user, mods } => {
                    summary.planned += 1;
                    summary.values_cleared += values_cleared(&mods);
                    let cloud_unchanged = matches!(
                        (previous, mailbox.when_changed_utc.as_deref().and_then(Watermark::parse)),
                        (Some(mark), Some(changed)) if changed <= mark
                    );
                    if kind == PassKind::Full && cloud_unchanged {
                        summary.drift += 1;
                        tracing::warn!(cloud_id = %mailbox.cloud_id, dn = %user.dn, "on-prem drift on managed attributes: repairing from the cloud");
                    }
                    report.dn = Some(user.dn.clone());
                    report.object_guid = Some(user.guid_string());
                    report.usn_changed = Some(user.usn_changed);
                    report.changes = mods.clone();
                    report.status = "planned".into();
                    if had_failure {
                        if let Some(set) = handled_failures.as_deref_mut() {
                            set.insert(mailbox.cloud_id.clone());
                        }
                    }
                    let write = staged_write(mailbox, *user, mods);
                    if stream.is_some() && from_snapshot {
                        streamed.push(write);
                    } else {
                        staged.push(write);
                    }
                }
                Assessment::InSync { user } => {
                    summary.in_sync += 1;
                    report.dn = Some(user.dn.clone());
                    if !dry_run && had_failure {
                        cleared.push(mailbox.cloud_id.clone());
                    }
                    if let (false, Some(version)) = (dry_run, mailbox.when_changed_utc.as_ref()) {
                        synced.push((mailbox.cloud_id.clone(), version.clone()));
                    }
                }
                Assessment::Skipped(reason) => {
                    summary.skipped += 1;
                    report.status = "skipped".into();
                    report.reason = Some(reason.code().into());
                    report.error = Some(reason.to_string());
                    if !dry_run {
                        self.store.record_failure(&mailbox.cloud_id, &reason.to_string(), &self.settings.retry, now)?;
                        if let Some(set) = handled_failures.as_deref_mut() {
                            set.insert(mailbox.cloud_id.clone());
                        }
                    }
                }
                Assessment::Invalid { dn, error } => {
                    summary.invalid += 1;
                    report.status = "invalid".into();
                    report.dn = dn;
                    report.error = Some(error.clone());
                    if !dry_run {
                        self.store.record_failure(&mailbox.cloud_id, &error, &self.settings.retry, now)?;
                        if let Some(set) = handled_failures.as_deref_mut() {
                            set.insert(mailbox.cloud_id.clone());
                        }
                    }
                }
                Assessment::Quarantined { error } => {
                    summary.quarantined += 1;
                    report.status = "quarantined".into();
                    report.error = Some(error);
                }
            }
            sink(&report);
        }
        if let (Some(cycle), false) = (cycle, staged.is_empty()) {
            self.store.stage_writes(cycle, &staged)?;
        }
        let cleared: Vec<&str> = cleared.iter().map(String::as_str).collect();
        self.store.clear_failures(&cleared)?;
        let synced: Vec<(&str, &str)> = synced.iter().map(|(id, v)| (id.as_str(), v.as_str())).collect();
        self.store.record_synced(&synced)?;
        if let Some(stream) = stream {
            summary.streamed += streamed.len() as u64;
            for write in streamed {
                // Waits while the apply task is a queue behind: the planner never runs ahead
                // of the DC by more than that.
                stream.send(write).await.map_err(|_| EngineError::Stopped("the apply task ended before the pass"))?;
            }
        }
        Ok(())
    }

    /// Starts the apply task of a full pass that writes while it plans.
    fn start_streaming(&self, cycle: CycleId, shutdown: &Shutdown) -> Streaming {
        let (writes, queue) = mpsc::channel(STREAM_QUEUE);
        let (report_to, reports) = mpsc::unbounded_channel();
        let applier = self.applier(cycle);
        let shutdown = shutdown.clone();
        let task = tokio::spawn(async move {
            let mut report = move |object: &ObjectReport| {
                // The cycle stops reading only once this task has ended.
                let _ = report_to.send(object.clone());
            };
            applier.run(Source::Planner(queue), &shutdown, &mut report).await
        });
        Streaming { writes, reports, task }
    }

    /// Whether a catch-up starts this cycle. Not every poll: after a mass change the overlap
    /// window holds every changed mailbox for as long as the overlap lasts, and listing them
    /// all each poll would hold back the new changes. Once a minute, and on the first poll.
    fn catch_up_due(&self) -> bool {
        let Ok(mut last) = self.last_catch_up.lock() else { return true };
        let due = last.is_none_or(|at| at.elapsed() >= CATCH_UP_INTERVAL);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// Where a poll between catch-ups starts. A few seconds before the watermark on the first
    /// poll after it moved: two changes committed out of order within a moment of each other
    /// would otherwise wait for the next catch-up. From the watermark's own second after that:
    /// a bulk edit leaves thousands of mailboxes within those seconds, and listing them again
    /// on every poll until the next change moves the watermark would cost a full listing of
    /// the bulk every poll (the catch-up still re-reads the whole overlap window each minute).
    fn fast_poll_since(&self, watermark: Watermark) -> Watermark {
        let Ok(mut polled) = self.last_polled_watermark.lock() else { return watermark.minus(FAST_POLL_OVERLAP) };
        if *polled == Some(watermark) {
            watermark
        } else {
            *polled = Some(watermark);
            watermark.minus(FAST_POLL_OVERLAP)
        }
    }

    /// The mailbox's record is the very one last seen in sync (or an older one: a page read a
    /// while after its query started may hold a record a later poll has already written), and
    /// the mailbox is not in the error queue.
    fn already_in_sync(&self, mailbox: &Mailbox) -> Result<bool, EngineError> {
        let Some(version) = mailbox.when_changed_utc.as_deref() else { return Ok(false) };
        let Some(synced) = self.store.synced_version(&mailbox.cloud_id)? else { return Ok(false) };
        let not_newer = synced == version
            || matches!((Watermark::parse(version), Watermark::parse(&synced)), (Some(listed), Some(synced)) if listed < synced);
        if !not_newer {
            return Ok(false);
        }
        Ok(self.store.failure(&mailbox.cloud_id)?.is_none())
    }

    /// An approved held plan whose size covers this cycle's.
    fn approved_plan_covering(&self, summary: &CycleSummary) -> Result<Option<writeback_state::PlanId>, EngineError> {
        Ok(self
            .store
            .held_plans()?
            .into_iter()
            .filter(|p| p.status == PlanStatus::Approved)
            .find(|p| {
                let approved = |key: &str| p.plan["summary"][key].as_u64().unwrap_or(0);
                summary.planned <= approved("planned") && summary.values_cleared <= approved("values_cleared")
            })
            .map(|p| p.id))
    }

    /// Keeps the staged plan for an operator to review. One pending plan at a time: while one
    /// waits, later cycles that trip the brake refer to it instead of piling up new ones.
    fn hold(&self, cycle: CycleId, reason: &str, summary: &CycleSummary) -> Result<writeback_state::PlanId, EngineError> {
        if let Some(pending) = self.store.held_plans()?.into_iter().find(|p| p.status == PlanStatus::Pending) {
            return Ok(pending.id);
        }
        // The first objects are kept for review; the count of the rest is enough to decide
        // on (the summary has the totals) and keeps a huge held plan from filling memory.
        let mut objects = Vec::new();
        let mut omitted = 0u64;
        let mut after = 0u64;
        loop {
            let page = self.store.staged_writes(cycle, after, 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            for (_, write) in page {
                if objects.len() >= HELD_PLAN_OBJECTS {
                    omitted += 1;
                    continue;
                }
                objects.push(serde_json::json!({
                    "cloud_id": write.cloud_id,
                    "dn": write.dn,
                    "changes": write.mods,
                }));
            }
        }
        let plan = serde_json::json!({ "summary": summary, "objects": objects, "objects_omitted": omitted });
        Ok(self.store.hold_plan(cycle, reason, &plan, now_ms())?)
    }
}

/// One mailbox's assessment, and whether the scope snapshot made it (only those can be
/// written while planning).
struct Assessed {
    mailbox: Mailbox,
    assessment: Assessment,
    had_failure: bool,
    from_snapshot: bool,
}

/// A planned mailbox as the cycle stages it: the object as read, the changes, the cloud record
/// (kept to re-plan after a conflict).
pub fn staged_write(mailbox: Mailbox, user: writeback_ad::AdUser, mods: Vec<writeback_core::Modification>) -> StagedWrite {
    StagedWrite {
        cloud_id: mailbox.cloud_id.clone(),
        object_guid: user.object_guid,
        dn: user.dn,
        usn_changed: user.usn_changed,
        mods,
        before: user.values,
        mailbox,
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

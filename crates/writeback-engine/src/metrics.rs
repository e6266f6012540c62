//! The engine's metrics, recorded once per cycle from what the cycle returned.
//!
//! Through the `metrics` facade: nothing is kept unless the binary installed a recorder
//! (`writeback run` with `[metrics] listen`). Names follow Vector's instrumentation spec
//! (`writeback_<name>_<unit>_total` for counters); labels take a handful of fixed values, never
//! a mailbox, a DN or an error text.

use crate::error::EngineError;
use crate::report::CycleSummary;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The help text of each metric, for the scrape endpoint.
pub fn describe_metrics() {
    metrics::describe_counter!("writeback_cycles_total", "Cycles finished, by pass (full, incremental) and result (complete, interrupted, held)");
    metrics::describe_counter!("writeback_cycle_errors_total", "Cycles stopped by an error, by the stage that failed (cloud, ad, state, snapshot, plan_file, stopped)");
    metrics::describe_histogram!("writeback_cycle_duration_seconds", metrics::Unit::Seconds, "Wall time of a cycle, by pass");
    metrics::describe_counter!("writeback_mailboxes_total", "Mailboxes seen by finished cycles, by outcome");
    metrics::describe_counter!("writeback_drift_mailboxes_total", "Mailboxes the cloud did not change whose AD values were repaired (on-prem edits of managed attributes)");
    metrics::describe_counter!("writeback_cleared_values_total", "Attribute values removed without a replacement");
    metrics::describe_gauge!("writeback_plan_held", "1 while a safety brake holds a plan for an operator's approval");
    metrics::describe_gauge!("writeback_last_complete_cycle_timestamp_seconds", "Unix time at which the last complete cycle ended");
}

/// Records one finished (or failed) cycle that was not a dry run.
pub(crate) fn record_cycle(result: &Result<CycleSummary, EngineError>, elapsed: Duration) {
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            metrics::counter!("writeback_cycle_errors_total", "stage" => error_stage(error)).increment(1);
            return;
        }
    };
    let result = if summary.held.is_some() {
        "held"
    } else if summary.complete {
        "complete"
    } else {
        "interrupted"
    };
    metrics::counter!("writeback_cycles_total", "pass" => summary.pass, "result" => result).increment(1);
    metrics::histogram!("writeback_cycle_duration_seconds", "pass" => summary.pass).record(elapsed.as_secs_f64());
    for (outcome, count) in [
        ("in_sync", summary.in_sync),
        ("applied", summary.applied),
        ("conflict", summary.conflicts),
        ("failed", summary.failed),
        ("skipped", summary.skipped),
        ("invalid", summary.invalid),
        ("unreadable", summary.unreadable),
        ("quarantined", summary.quarantined),
    ] {
        metrics::counter!("writeback_mailboxes_total", "outcome" => outcome).increment(count);
    }
    metrics::counter!("writeback_drift_mailboxes_total").increment(summary.drift);
    metrics::counter!("writeback_cleared_values_total").increment(summary.values_cleared);
    metrics::gauge!("writeback_plan_held").set(if summary.held.is_some() { 1.0 } else { 0.0 });
    if result == "complete" {
        // What an alert on a stalled service watches: `time() - this > a few poll intervals`.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        metrics::gauge!("writeback_last_complete_cycle_timestamp_seconds").set(now.as_secs_f64());
    }
}

fn error_stage(error: &EngineError) -> &'static str {
    match error {
        EngineError::Ad(_) => "ad",
        EngineError::Cloud(_) => "cloud",
        EngineError::State(_) => "state",
        EngineError::Snapshot(_) => "snapshot",
        EngineError::PlanFile(_) => "plan_file",
        EngineError::Stopped(_) => "stopped",
        EngineError::ApplyTask(_) => "apply_task",
    }
}

//! `writeback status`: where the engine stands, and whether an operator is needed.

use super::queue::FailureView;
use super::text::{duration, plural, printable, rfc3339, rfc3339_opt, summary_pairs};
use super::{command_prefix, finish_output, now_ms, open_existing_state};
use crate::config::Config;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;
use writeback_cloud::Watermark;
use writeback_engine::{WATERMARK_LAST_FULL_PASS, WATERMARK_WHEN_CHANGED};
use writeback_state::{guid_to_string, PlanStatus, StateStore};

/// In-flight writes listed one by one in the text output; the rest are counted.
const IN_FLIGHT_SHOWN: usize = 20;

/// Everything `status` reports; `--json` prints exactly this.
#[derive(Debug, Serialize)]
struct StatusReport {
    state_path: String,
    /// True when a quarantined mailbox or a pending held plan waits for an operator.
    needs_operator: bool,
    watermarks: Vec<WatermarkView>,
    last_cycle: Option<CycleView>,
    joins: u64,
    in_flight: Vec<InFlightView>,
    retry_queue: RetryQueueView,
    quarantined: Vec<FailureView>,
    /// Pending and approved plans; discarded and applied ones are history.
    held_plans: Vec<PlanView>,
}

#[derive(Debug, Serialize)]
struct WatermarkView {
    name: &'static str,
    /// As stored; `None` before the first complete pass.
    value: Option<String>,
    /// The value read as a time, when it is one.
    time: Option<String>,
}

#[derive(Debug, Serialize)]
struct CycleView {
    id: i64,
    started_at: String,
    /// `None` while the cycle runs, or if the process died during it.
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    summary: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct InFlightView {
    journal_id: i64,
    cycle: i64,
    cloud_id: String,
    dn: String,
    object_guid: String,
    recorded_at: String,
}

#[derive(Debug, Serialize)]
struct RetryQueueView {
    /// Mailboxes waiting for another attempt (quarantined ones not counted).
    waiting: usize,
    /// Of those, the ones whose next attempt is due now.
    due: usize,
}

#[derive(Debug, Serialize)]
struct PlanView {
    id: i64,
    status: &'static str,
    cycle: i64,
    held_at: String,
    reason: String,
    objects: usize,
    /// The commands to review and decide on a pending plan.
    show_command: String,
    approve_command: Option<String>,
    discard_command: String,
}

pub fn status(config: &Config, json: bool) -> Result<i32> {
    let store = open_existing_state(config)?;
    let report = gather(&store, config, now_ms())?;
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(&report).context("encoding the status")?;
        finish_output(writeln!(out, "{text}"))?;
    } else {
        finish_output(write_text(&report, &command_prefix(config), &mut out))?;
    }
    Ok(i32::from(report.needs_operator))
}

fn gather(store: &dyn StateStore, config: &Config, now: i64) -> Result<StatusReport> {
    let read =
        |what: &'static str| move |e| anyhow::Error::new(e).context(format!("reading {what}"));
    let mut watermarks = Vec::new();
    for name in [WATERMARK_WHEN_CHANGED, WATERMARK_LAST_FULL_PASS] {
        let value = store.watermark(name).map_err(read("watermarks"))?;
        let time = value.as_deref().and_then(|v| watermark_time(name, v));
        watermarks.push(WatermarkView { name, value, time });
    }
    let last_cycle = store
        .last_cycle()
        .map_err(read("the last cycle"))?
        .map(|c| CycleView {
            id: c.id.0,
            started_at: rfc3339(c.started_at),
            finished_at: rfc3339_opt(c.finished_at),
            duration_ms: c.finished_at.map(|f| f.saturating_sub(c.started_at)),
            summary: c.summary,
        });
    let in_flight = store
        .in_flight()
        .map_err(read("the journal"))?
        .into_iter()
        .map(|e| InFlightView {
            journal_id: e.id.0,
            cycle: e.cycle.0,
            object_guid: guid_to_string(&e.object_guid),
            cloud_id: e.cloud_id,
            dn: e.dn,
            recorded_at: rfc3339(e.recorded_at),
        })
        .collect();
    let failures = store.failures().map_err(read("the error queue"))?;
    let retry_queue = RetryQueueView {
        waiting: failures.iter().filter(|f| !f.quarantined).count(),
        due: store
            .due_retries(now)
            .map_err(read("the error queue"))?
            .len(),
    };
    let quarantined: Vec<FailureView> = failures
        .iter()
        .filter(|f| f.quarantined)
        .map(FailureView::from)
        .collect();
    let prefix = command_prefix(config);
    let held_plans: Vec<PlanView> = store
        .held_plans()
        .map_err(read("held plans"))?
        .into_iter()
        .filter(|p| matches!(p.status, PlanStatus::Pending | PlanStatus::Approved))
        .map(|p| PlanView {
            id: p.id.0,
            status: p.status.as_str(),
            cycle: p.cycle.0,
            held_at: rfc3339(p.held_at),
            objects: p
                .plan
                .get("objects")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len)
                .saturating_add(
                    p.plan
                        .get("objects_omitted")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(0),
                ),
            reason: p.reason,
            show_command: format!("{prefix} show-plan {}", p.id),
            approve_command: (p.status == PlanStatus::Pending)
                .then(|| format!("{prefix} approve {}", p.id)),
            discard_command: format!("{prefix} discard {}", p.id),
        })
        .collect();
    let needs_operator =
        !quarantined.is_empty() || held_plans.iter().any(|p| p.approve_command.is_some());
    Ok(StatusReport {
        state_path: config.state_path().display().to_string(),
        needs_operator,
        watermarks,
        last_cycle,
        joins: store.join_count().map_err(read("joins"))?,
        in_flight,
        retry_queue,
        quarantined,
        held_plans,
    })
}

/// The exchange watermark is a `WhenChangedUTC` literal, the full-pass mark unix ms.
fn watermark_time(name: &str, value: &str) -> Option<String> {
    if name == WATERMARK_LAST_FULL_PASS {
        value.parse::<i64>().ok().map(rfc3339)
    } else {
        let ms = Watermark::parse(value)?.0.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms).ok().map(rfc3339)
    }
}

fn write_text(report: &StatusReport, prefix: &str, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "state store    {}", printable(&report.state_path))?;
    for (i, mark) in report.watermarks.iter().enumerate() {
        let label = if i == 0 { "watermarks" } else { "" };
        let shown = match (&mark.time, &mark.value) {
            (Some(time), _) => time.clone(),
            (None, Some(value)) => format!("{} (not a time)", printable(value)),
            (None, None) => "not set".to_string(),
        };
        writeln!(out, "{label:<14} {:<24} {shown}", mark.name)?;
    }
    match &report.last_cycle {
        None => writeln!(out, "last cycle     none yet")?,
        Some(cycle) => {
            let end = match (&cycle.finished_at, cycle.duration_ms) {
                (Some(at), Some(ms)) => format!("finished {at} after {}", duration(ms)),
                _ => "not finished (running, or the process stopped during it)".to_string(),
            };
            writeln!(
                out,
                "last cycle     {} started {}, {end}",
                cycle.id, cycle.started_at
            )?;
            if let Some(summary) = &cycle.summary {
                writeln!(out, "               {}", summary_pairs(summary))?;
            }
        }
    }
    writeln!(out, "joins          {}", report.joins)?;
    if report.in_flight.is_empty() {
        writeln!(out, "in flight      none")?;
    } else {
        writeln!(
            out,
            "in flight      {} journalled without an outcome; the next cycle re-reads their \
             objects and finishes or redoes them",
            plural(report.in_flight.len(), "write")
        )?;
        for entry in report.in_flight.iter().take(IN_FLIGHT_SHOWN) {
            writeln!(
                out,
                "               #{} cycle {} since {}  {}  {}",
                entry.journal_id,
                entry.cycle,
                entry.recorded_at,
                printable(&entry.cloud_id),
                printable(&entry.dn)
            )?;
        }
        if let Some(more) = report
            .in_flight
            .len()
            .checked_sub(IN_FLIGHT_SHOWN)
            .filter(|n| *n > 0)
        {
            writeln!(out, "               ... and {more} more")?;
        }
    }
    writeln!(
        out,
        "retry queue    {} waiting, {} due now{}",
        report.retry_queue.waiting,
        report.retry_queue.due,
        if report.retry_queue.waiting > 0 {
            format!(" (`{prefix} errors` lists them)")
        } else {
            String::new()
        }
    )?;
    if report.quarantined.is_empty() {
        writeln!(out, "quarantined    none")?;
    } else {
        writeln!(
            out,
            "quarantined    {}, not retried until released ({prefix} release <CLOUD_ID>):",
            plural(report.quarantined.len(), "mailbox")
        )?;
        for failure in &report.quarantined {
            writeln!(
                out,
                "               {}  {}, last {}: {}",
                printable(&failure.cloud_id),
                plural(
                    usize::try_from(failure.attempts).unwrap_or(usize::MAX),
                    "attempt"
                ),
                failure.last_failed_at,
                printable(&failure.last_error)
            )?;
        }
    }
    if report.held_plans.is_empty() {
        writeln!(out, "held plans     none")?;
    }
    for (i, plan) in report.held_plans.iter().enumerate() {
        let label = if i == 0 { "held plans" } else { "" };
        writeln!(
            out,
            "{label:<14} plan {} {} since {} ({}): {}",
            plan.id,
            plan.status,
            plan.held_at,
            plural(plan.objects, "object"),
            printable(&plan.reason)
        )?;
        match &plan.approve_command {
            Some(approve) => writeln!(
                out,
                "               review: {}\n               approve: {approve}\n               discard: {}",
                plan.show_command, plan.discard_command
            )?,
            None => writeln!(out, "               approved; the next cycle applies it")?,
        }
    }
    if report.needs_operator {
        writeln!(
            out,
            "\nneeds an operator: see quarantined mailboxes / held plans above"
        )?;
    }
    Ok(())
}

//! `writeback errors` and `writeback release`: the per-mailbox error queue.

use super::text::{rfc3339, rfc3339_opt, Table};
use super::{command_prefix, finish_output, now_ms, open_existing_state};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use writeback_state::{FailureRecord, StateStore};

/// One mailbox of the error queue as `errors --json` prints it.
#[derive(Debug, Serialize)]
pub(super) struct FailureView {
    pub cloud_id: String,
    pub attempts: u32,
    pub first_failed_at: String,
    pub last_failed_at: String,
    /// `None` when quarantined.
    pub next_attempt_at: Option<String>,
    pub quarantined: bool,
    pub last_error: String,
}

impl From<&FailureRecord> for FailureView {
    fn from(record: &FailureRecord) -> Self {
        FailureView {
            cloud_id: record.cloud_id.clone(),
            attempts: record.attempts,
            first_failed_at: rfc3339(record.first_failed_at),
            last_failed_at: rfc3339(record.last_failed_at),
            next_attempt_at: rfc3339_opt(record.next_attempt_at),
            quarantined: record.quarantined,
            last_error: record.last_error.clone(),
        }
    }
}

pub fn errors(config: &Config, json: bool) -> Result<i32> {
    let store = open_existing_state(config)?;
    let failures = store.failures().context("reading the error queue")?;
    let mut out = std::io::stdout().lock();
    if json {
        let views: Vec<FailureView> = failures.iter().map(FailureView::from).collect();
        let text = serde_json::to_string_pretty(&views).context("encoding the error queue")?;
        finish_output(writeln!(out, "{text}"))?;
    } else {
        finish_output(write_errors_table(
            &failures,
            now_ms(),
            &command_prefix(config),
            &mut out,
        ))?;
    }
    Ok(0)
}

fn write_errors_table(
    failures: &[FailureRecord],
    now: i64,
    prefix: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if failures.is_empty() {
        return writeln!(out, "the error queue is empty");
    }
    let mut table = Table::new(&[
        "CLOUD ID",
        "ATTEMPTS",
        "FIRST FAILED",
        "LAST FAILED",
        "NEXT ATTEMPT",
        "LAST ERROR",
    ]);
    for failure in failures {
        let next = match failure.next_attempt_at {
            None => "quarantined".to_string(),
            Some(at) if at <= now => format!("due ({})", rfc3339(at)),
            Some(at) => rfc3339(at),
        };
        table.row(vec![
            failure.cloud_id.clone(),
            failure.attempts.to_string(),
            rfc3339(failure.first_failed_at),
            rfc3339(failure.last_failed_at),
            next,
            failure.last_error.clone(),
        ]);
    }
    table.write(out)?;
    if failures.iter().any(|f| f.quarantined) {
        writeln!(
            out,
            "\nquarantined mailboxes are not retried until released: {prefix} release <CLOUD_ID>"
        )?;
    }
    Ok(())
}

pub fn release(config: &Config, cloud_id: &str) -> Result<i32> {
    let store = open_existing_state(config)?;
    match store.failure(cloud_id).context("reading the error queue")? {
        None => bail!("{cloud_id:?} is not in the error queue"),
        Some(failure) if !failure.quarantined => bail!(
            "{cloud_id:?} is not quarantined; its next attempt is at {}",
            failure
                .next_attempt_at
                .map_or_else(|| "an unknown time".to_string(), rfc3339)
        ),
        Some(_) => {}
    }
    // The store checks again inside its transaction, so a concurrent release cannot count twice.
    store
        .release_quarantine(cloud_id, now_ms())
        .with_context(|| format!("releasing {cloud_id:?}"))?;
    finish_output(writeln!(
        std::io::stdout().lock(),
        "released {}: its failure count is reset and the next cycle tries it again",
        super::text::printable(cloud_id)
    ))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(cloud_id: &str, next: Option<i64>, error: &str) -> FailureRecord {
        FailureRecord {
            cloud_id: cloud_id.into(),
            attempts: if next.is_some() { 2 } else { 8 },
            first_failed_at: 1_000,
            last_failed_at: 61_000,
            last_error: error.into(),
            next_attempt_at: next,
            quarantined: next.is_none(),
        }
    }

    #[test]
    fn table_marks_due_and_quarantined_mailboxes() {
        let failures = [
            failure("due-one", Some(100_000), "no match"),
            failure("later", Some(900_000), "ambiguous"),
            failure("stuck", None, "bad\u{1b}[2J"),
        ];
        let mut out = Vec::new();
        write_errors_table(&failures, 200_000, "writeback", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CLOUD ID"), "{text}");
        assert!(
            lines[1].contains("due (1970-01-01T00:01:40.000Z)"),
            "{text}"
        );
        assert!(
            lines[2].contains("1970-01-01T00:15:00.000Z") && !lines[2].contains("due"),
            "{text}"
        );
        assert!(
            lines[3].contains("quarantined") && lines[3].ends_with("bad\\u{1b}[2J"),
            "{text}"
        );
        assert!(text.contains("writeback release <CLOUD_ID>"), "{text}");
    }

    #[test]
    fn an_empty_queue_says_so() {
        let mut out = Vec::new();
        write_errors_table(&[], 0, "writeback", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "the error queue is empty\n"
        );
    }
}

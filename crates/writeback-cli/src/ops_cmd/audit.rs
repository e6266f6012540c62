//! `writeback audit`: what writeback wrote to AD, attribute by attribute, filtered.

use super::text::{printable, rfc3339, value_list, Table};
use super::{finish_output, now_ms, open_existing_state};
use crate::config::Config;
use anyhow::{anyhow, Context, Result};
use std::io::{BufWriter, Write};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use writeback_state::{AuditQuery, AuditRecord, Outcome, StateStore};

/// Rows read from the store at a time for the table, so a large --limit never holds the
/// store, or memory, for long.
const PAGE_SIZE: u32 = 1_000;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Rows at or after this time: RFC 3339 (2024-05-01T08:00:00Z) or an age (30m, 24h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<TimeSpec>,
    /// Rows before this time: RFC 3339 or an age, as for --since.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<TimeSpec>,
    /// Only this mailbox (its cloud id, as `writeback errors` and the audit show it).
    #[arg(long, value_name = "CLOUD_ID")]
    pub mailbox: Option<String>,
    /// Only objects whose DN contains this text (case-insensitive).
    #[arg(long, value_name = "SUBSTRING")]
    pub dn: Option<String>,
    /// At most this many rows, oldest first.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// One JSON object per line, with full before/after values.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header row; before/after are JSON arrays.
    #[arg(long)]
    pub csv: bool,
}

/// A point in time as given on the command line; ages are resolved when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// Unix milliseconds.
    At(i64),
    /// This many milliseconds before now.
    Ago(i64),
}

impl TimeSpec {
    fn resolve(self, now: i64) -> i64 {
        match self {
            TimeSpec::At(ms) => ms,
            TimeSpec::Ago(ms) => now.saturating_sub(ms),
        }
    }
}

/// RFC 3339, or a number followed by s, m, h, d or w.
pub fn parse_time(text: &str) -> Result<TimeSpec, String> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        let ms = at.unix_timestamp_nanos() / 1_000_000;
        return i64::try_from(ms)
            .map(TimeSpec::At)
            .map_err(|_| format!("{text} is out of range"));
    }
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h, d or w (e.g. 24h)"))?;
    let (number, unit) = text.split_at(unit_at);
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "{text:?} is neither RFC 3339 (2024-05-01T08:00:00Z) nor an age like 30m, 24h, 7d"
            ))
        }
    };
    let count: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: {number:?} is not a number"))?;
    count
        .checked_mul(unit_ms)
        .map(TimeSpec::Ago)
        .ok_or_else(|| format!("{text:?} is too long ago"))
}

pub fn audit(config: &Config, args: &AuditArgs) -> Result<i32> {
    let now = now_ms();
    let query = AuditQuery {
        since: args.since.map(|t| t.resolve(now)),
        until: args.until.map(|t| t.resolve(now)),
        cloud_id: args.mailbox.clone(),
        dn_contains: args.dn.clone(),
        after_id: None,
        limit: Some(args.limit),
    };
    let store = open_existing_state(config)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json || args.csv {
        let mut watched = PipeWatch {
            inner: &mut out,
            closed: false,
        };
        let written = if args.json {
            writeback_state::write_audit_jsonl(&store, &query, &mut watched)
        } else {
            writeback_state::write_audit_csv(&store, &query, &mut watched)
        };
        return match written {
            Ok(_) => Ok(0),
            // The reader went away (`| head`): it has all it wanted.
            Err(_) if watched.closed => Ok(0),
            Err(e) => Err(anyhow!(e).context("audit export")),
        };
    }
    let shown = write_table(&store, &query, &mut out)?;
    finish_output(out.flush())?;
    if shown == u64::from(args.limit) {
        eprintln!(
            "showing the first {shown} rows; narrow with --since/--until/--mailbox/--dn or raise --limit"
        );
    }
    Ok(0)
}

/// Notes whether the reader closed the pipe. The export functions wrap I/O errors in CSV and
/// JSON errors that do not all expose the I/O error as their source, so it is caught here.
struct PipeWatch<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeWatch<W> {
    fn watch<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
        }
        result
    }
}

impl<W: Write> Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

fn write_table(store: &dyn StateStore, query: &AuditQuery, out: &mut dyn Write) -> Result<u64> {
    let mut table = Table::new(&[
        "TIME",
        "CYCLE",
        "CLOUD ID",
        "ATTRIBUTE",
        "OUTCOME",
        "DN",
        "CHANGE",
    ]);
    let mut remaining = query.limit.unwrap_or(u32::MAX);
    let mut cursor = None;
    let mut shown = 0_u64;
    while remaining > 0 {
        let page_size = remaining.min(PAGE_SIZE);
        let page = store
            .query_audit(&AuditQuery {
                after_id: cursor,
                limit: Some(page_size),
                ..query.clone()
            })
            .context("reading the audit log")?;
        let fetched = u32::try_from(page.len()).unwrap_or(u32::MAX);
        for record in page {
            cursor = Some(record.id);
            table.row(audit_row(&record));
            shown += 1;
        }
        remaining = remaining.saturating_sub(fetched);
        if fetched < page_size {
            break;
        }
    }
    if shown == 0 {
        finish_output(writeln!(out, "no audit rows match"))?;
    } else {
        finish_output(table.write(out))?;
    }
    Ok(shown)
}

fn audit_row(record: &AuditRecord) -> Vec<String> {
    let (outcome, error) = match &record.outcome {
        Outcome::Failed { code, message } => (format!("failed:{code}"), Some(message)),
        other => (other.kind().to_string(), None),
    };
    let mut change = change_text(&record.before, &record.after);
    if let Some(message) = error {
        change.push_str(&format!(" ({})", printable(message)));
    }
    vec![
        rfc3339(record.at),
        record.cycle.to_string(),
        record.cloud_id.clone(),
        record.attribute.clone(),
        outcome,
        record.dn.clone(),
        change,
    ]
}

/// What the write did to the attribute's values: `-removed +added`. For a multi-valued
/// attribute the lists can be long; only the difference says what changed.
fn change_text(before: &[String], after: &[String]) -> String {
    let removed: Vec<String> = before
        .iter()
        .filter(|v| !after.contains(v))
        .cloned()
        .collect();
    let added: Vec<String> = after
        .iter()
        .filter(|v| !before.contains(v))
        .cloned()
        .collect();
    let mut parts = Vec::new();
    if !removed.is_empty() {
        parts.push(format!("-{}", value_list(&removed)));
    }
    if !added.is_empty() {
        parts.push(format!("+{}", value_list(&added)));
    }
    if parts.is_empty() {
        "(no change)".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_ages() {
        assert_eq!(
            parse_time("1970-01-01T00:00:01.5Z"),
            Ok(TimeSpec::At(1_500))
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Ok(TimeSpec::At(1_700_000_000_000))
        );
        assert_eq!(parse_time("30m"), Ok(TimeSpec::Ago(1_800_000)));
        assert_eq!(parse_time("24h"), Ok(TimeSpec::Ago(86_400_000)));
        assert_eq!(parse_time("7d"), Ok(TimeSpec::Ago(604_800_000)));
        assert_eq!(parse_time("2w"), Ok(TimeSpec::Ago(1_209_600_000)));
        assert_eq!(parse_time("45s"), Ok(TimeSpec::Ago(45_000)));
        for bad in [
            "",
            "24",
            "h",
            "24x",
            "-3h",
            "1.5h",
            "2024-13-01T00:00:00Z",
            "99999999999999999999d",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(
            parse_time("9223372036854775807w").is_err(),
            "overflow is an error, not a wrap"
        );
    }

    #[test]
    fn ages_count_back_from_now_without_overflow() {
        assert_eq!(TimeSpec::Ago(1_000).resolve(5_000), 4_000);
        assert_eq!(TimeSpec::At(7).resolve(5_000), 7);
        assert_eq!(TimeSpec::Ago(i64::MAX).resolve(-5), i64::MIN);
    }

    #[test]
    fn a_closed_pipe_is_noticed_and_other_errors_are_not() {
        struct Failing(std::io::ErrorKind);
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(self.0.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut pipe = PipeWatch {
            inner: Failing(std::io::ErrorKind::BrokenPipe),
            closed: false,
        };
        assert!(pipe.write_all(b"row").is_err());
        assert!(pipe.closed);
        let mut disk = PipeWatch {
            inner: Failing(std::io::ErrorKind::StorageFull),
            closed: false,
        };
        assert!(disk.write_all(b"row").is_err());
        assert!(!disk.closed, "a full disk is an error to report");
    }

    #[test]
    fn changes_show_only_the_difference() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(
            change_text(&list(&["old"]), &list(&["new"])),
            "-\"old\" +\"new\""
        );
        assert_eq!(
            change_text(
                &list(&["SMTP:a@x", "smtp:b@x"]),
                &list(&["SMTP:a@x", "smtp:c@x"])
            ),
            "-\"smtp:b@x\" +\"smtp:c@x\""
        );
        assert_eq!(change_text(&list(&[]), &list(&["v"])), "+\"v\"");
        assert_eq!(change_text(&list(&["v"]), &list(&["v"])), "(no change)");
    }
}

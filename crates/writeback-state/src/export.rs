//! Audit export as CSV or JSON lines, for any [`StateStore`]. Reads in pages so a large export
//! never holds the store for long, and streams to the writer.

use crate::error::{Result, StateError};
use crate::model::{AuditQuery, AuditRecord, Outcome};
use crate::store::StateStore;
use serde::Serialize;
use std::io::Write;

const PAGE_SIZE: u32 = 1_000;

/// The CSV columns, in order. `before` and `after` are JSON arrays of strings, since an
/// attribute can hold several values.
pub const CSV_HEADER: [&str; 13] = [
    "id",
    "time",
    "at_ms",
    "cycle",
    "journal_id",
    "cloud_id",
    "dn",
    "attribute",
    "before",
    "after",
    "outcome",
    "error_code",
    "error_message",
];

/// Writes the matching audit rows as CSV with a header row; returns how many rows.
///
/// Text that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
/// carriage return) gets a leading `'`: cloud ids, DNs and error messages come from outside.
pub fn write_audit_csv<S: StateStore + ?Sized, W: Write>(
    store: &S,
    query: &AuditQuery,
    out: W,
) -> Result<u64> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(CSV_HEADER)?;
    let written = for_each_page(store, query, |record| {
        let row = ExportRow::new(record);
        let code = row.error_code.map(|c| c.to_string()).unwrap_or_default();
        csv.write_record([
            row.id.to_string(),
            row.time,
            row.at_ms.to_string(),
            row.cycle.to_string(),
            row.journal_id.map(|j| j.to_string()).unwrap_or_default(),
            defuse_formula(row.cloud_id),
            defuse_formula(row.dn),
            defuse_formula(row.attribute),
            json_list(row.before)?,
            json_list(row.after)?,
            row.outcome.to_string(),
            code,
            defuse_formula(row.error_message.unwrap_or_default()),
        ])?;
        Ok(())
    })?;
    csv.flush()?;
    Ok(written)
}

/// Writes the matching audit rows as JSON lines (one object per line, values as arrays);
/// returns how many rows.
pub fn write_audit_jsonl<S: StateStore + ?Sized, W: Write>(
    store: &S,
    query: &AuditQuery,
    mut out: W,
) -> Result<u64> {
    let written = for_each_page(store, query, |record| {
        serde_json::to_writer(&mut out, &ExportRow::new(record)).map_err(|e| {
            StateError::Encode {
                what: "audit row",
                cause: e,
            }
        })?;
        out.write_all(b"\n")?;
        Ok(())
    })?;
    out.flush()?;
    Ok(written)
}

fn for_each_page<S: StateStore + ?Sized>(
    store: &S,
    query: &AuditQuery,
    mut each: impl FnMut(AuditRecord) -> Result<()>,
) -> Result<u64> {
    let mut remaining = query.limit;
    let mut cursor = query.after_id;
    let mut written = 0_u64;
    loop {
        let page_size = remaining.map_or(PAGE_SIZE, |r| r.min(PAGE_SIZE));
        if page_size == 0 {
            return Ok(written);
        }
        let page = store.query_audit(&AuditQuery {
            after_id: cursor,
            limit: Some(page_size),
            ..query.clone()
        })?;
        let fetched = page.len();
        for record in page {
            cursor = Some(record.id);
            each(record)?;
            written += 1;
        }
        let fetched = u32::try_from(fetched).unwrap_or(u32::MAX);
        remaining = remaining.map(|r| r.saturating_sub(fetched));
        if fetched < page_size {
            return Ok(written);
        }
    }
}

#[derive(Serialize)]
struct ExportRow {
    id: i64,
    time: String,
    at_ms: i64,
    cycle: i64,
    journal_id: Option<i64>,
    cloud_id: String,
    dn: String,
    attribute: String,
    before: Vec<String>,
    after: Vec<String>,
    outcome: &'static str,
    error_code: Option<u32>,
    error_message: Option<String>,
}

impl ExportRow {
    fn new(record: AuditRecord) -> Self {
        let outcome = record.outcome.kind();
        let (error_code, error_message) = match record.outcome {
            Outcome::Failed { code, message } => (Some(code), Some(message)),
            _ => (None, None),
        };
        ExportRow {
            id: record.id,
            time: rfc3339_utc(record.at),
            at_ms: record.at,
            cycle: record.cycle.0,
            journal_id: record.journal_id.map(|j| j.0),
            outcome,
            cloud_id: record.cloud_id,
            dn: record.dn,
            attribute: record.attribute,
            before: record.before,
            after: record.after,
            error_code,
            error_message,
        }
    }
}

fn json_list(values: Vec<String>) -> Result<String> {
    serde_json::to_string(&values).map_err(|e| StateError::Encode {
        what: "audit values",
        cause: e,
    })
}

fn defuse_formula(text: String) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text,
    }
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
pub(crate) fn rfc3339_utc(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1_000 % 60,
        ms_of_day % 1_000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// Days since 1970-01-01 to (year, month, day); H. Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_utc_rfc3339() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(rfc3339_utc(ms), text, "{ms}");
        }
        // Must not overflow or panic at the extremes of the input range.
        assert!(!rfc3339_utc(i64::MAX).is_empty());
        assert!(!rfc3339_utc(i64::MIN).is_empty());
    }

    #[test]
    fn formula_prefixes_are_defused() {
        assert_eq!(defuse_formula("=HYPERLINK(1)".into()), "'=HYPERLINK(1)");
        assert_eq!(defuse_formula("-2+3".into()), "'-2+3");
        assert_eq!(defuse_formula("CN=a,DC=x".into()), "CN=a,DC=x");
        assert_eq!(defuse_formula(String::new()), "");
    }
}

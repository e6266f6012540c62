//! Turning stored values into text for a terminal: times, durations, tables, and strings
//! that came from outside and must not drive the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use time::macros::format_description;
use time::OffsetDateTime;

/// Unix milliseconds as RFC 3339 UTC with milliseconds (`2024-05-01T08:00:00.000Z`), the
/// format the audit export uses too. A value outside the years 0000..9999 (only a damaged
/// store holds one) is shown as its raw number rather than failing the command.
pub fn rfc3339(unix_ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("@{unix_ms}ms"))
}

pub fn rfc3339_opt(unix_ms: Option<i64>) -> Option<String> {
    unix_ms.map(rfc3339)
}

/// A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{}.{} s", ms / 1_000, ms % 1_000 / 100),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, ms / 1_000 % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// `1 mailbox`, `2 mailboxes`: the nouns used here all take -s or -es.
pub fn plural(count: usize, noun: &str) -> String {
    match (count, noun.ends_with(['s', 'x'])) {
        (1, _) => format!("{count} {noun}"),
        (_, true) => format!("{count} {noun}es"),
        (_, false) => format!("{count} {noun}s"),
    }
}

/// Text from the cloud, AD or the store with control characters escaped, so a crafted
/// mailbox id or error message cannot move the cursor, recolour or retitle the terminal.
/// Bidirectional overrides are escaped too: they can make text read differently from what
/// it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || is_bidi_control(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A word a POSIX shell reads back as itself: unchanged when it is plain, single-quoted
/// otherwise. Used for commands printed for the operator to paste.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", printable(word).replace('\'', r"'\''"))
    }
}

/// Values of a multi-valued attribute on one line, each quoted.
pub fn value_list(values: &[String]) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "\"{}\"", printable(value));
    }
    out
}

/// A JSON object's scalar members as `key=value` pairs, for one-line summaries of the
/// engine's cycle summaries (whose fields may grow without this code changing).
pub fn summary_pairs(summary: &serde_json::Value) -> String {
    let Some(members) = summary.as_object() else {
        return printable(&summary.to_string()).into_owned();
    };
    let mut out = String::new();
    for (key, value) in members {
        let shown = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => printable(s).into_owned(),
            other => printable(&other.to_string()).into_owned(),
        };
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{}={shown}", printable(key));
    }
    out
}

/// Left-aligned columns sized to their widest cell; the last column is not padded, so a
/// long error message or DN does not push every row wide.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells are made printable here so callers cannot forget.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| printable(&c).into_owned())
                .collect(),
        );
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    let pad = widths.get(i).copied().unwrap_or(0);
                    let _ = write!(line, "{cell:<pad$}  ");
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(i64::MAX), format!("@{}ms", i64::MAX));
        assert_eq!(rfc3339(i64::MIN), format!("@{}ms", i64::MIN));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(245_000), "4 min 05 s");
        assert_eq!(duration(7_380_000), "2 h 03 min");
        assert_eq!(duration(-5), "0 ms");
        assert!(!duration(i64::MAX).is_empty());
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "mailbox"), "1 mailbox");
        assert_eq!(plural(2, "mailbox"), "2 mailboxes");
        assert_eq!(plural(0, "write"), "0 writes");
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped() {
        assert_eq!(printable("plain CN=a,DC=x"), "plain CN=a,DC=x");
        assert_eq!(printable("a\u{1b}[31mred\nb"), "a\\u{1b}[31mred\\nb");
        assert_eq!(printable("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_word("/etc/writeback/writeback.toml"),
            "/etc/writeback/writeback.toml"
        );
        assert_eq!(shell_word("my config.toml"), "'my config.toml'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn summary_pairs_skip_nulls_and_escape() {
        // Keys in sorted order: the same with or without serde_json's preserve_order.
        let summary =
            serde_json::json!({"evil": "a\u{7}", "held": null, "pass": "full", "planned": 3});
        assert_eq!(summary_pairs(&summary), "evil=a\\u{7} pass=full planned=3");
    }

    #[test]
    fn tables_align_all_but_the_last_column() {
        let mut table = Table::new(&["ID", "NAME", "NOTE"]);
        table.row(vec!["1".into(), "long name".into(), "x".into()]);
        table.row(vec!["22".into(), "n".into(), "a\tb".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "ID  NAME       NOTE\n1   long name  x\n22  n          a\\tb\n"
        );
    }
}

//! Time as Exchange and Graph print it. Instants are `i64` ticks of 100 ns since the Unix epoch,
//! which is exactly the precision of Exchange's seven fractional digits.

use std::time::{SystemTime, UNIX_EPOCH};

pub const TICKS_PER_SECOND: i64 = 10_000_000;

pub fn now_ticks() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

pub fn now_unix_seconds() -> i64 {
    now_ticks() / TICKS_PER_SECOND
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if m <= 2 { y + 1 } else { y };
    (
        year,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    fraction_ticks: i64,
}

fn split(ticks: i64) -> Parts {
    let days = ticks.div_euclid(TICKS_PER_SECOND * 86_400);
    let within = ticks.rem_euclid(TICKS_PER_SECOND * 86_400);
    let (year, month, day) = civil_from_days(days);
    let secs = within / TICKS_PER_SECOND;
    Parts {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: (secs / 60) % 60,
        second: secs % 60,
        fraction_ticks: within % TICKS_PER_SECOND,
    }
}

/// `2024-04-10T08:56:22.0000000Z`, Exchange's `WhenChangedUTC` form.
pub fn format_exchange_utc(ticks: i64) -> String {
    let p = split(ticks);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.fraction_ticks
    )
}

/// `2024-04-10T08:56:22.0000000+00:00`, Exchange's local-time `WhenChanged` form on a UTC server.
pub fn format_exchange_local(ticks: i64) -> String {
    let p = split(ticks);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}+00:00",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.fraction_ticks
    )
}

/// `2020-08-18T12:51:51`, the `date` inside Graph's `innerError`.
pub fn format_graph_date(ticks: i64) -> String {
    let p = split(ticks);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    )
}

/// `2016-01-09 02:02:12Z`, the timestamp form of Entra's token errors.
pub fn format_entra_timestamp(ticks: i64) -> String {
    let p = split(ticks);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    )
}

fn take_number(s: &str, max_digits: usize) -> Option<(i64, &str)> {
    let digits = s
        .bytes()
        .take(max_digits)
        .take_while(u8::is_ascii_digit)
        .count();
    if digits == 0 {
        return None;
    }
    let (num, rest) = s.split_at(digits);
    num.parse().ok().map(|n| (n, rest))
}

fn valid_date(year: i64, month: i64, day: i64) -> Option<(i64, u32, u32)> {
    let month = u32::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
    let day = u32::try_from(day).ok().filter(|d| (1..=31).contains(d))?;
    if !(1..=9999).contains(&year) {
        return None;
    }
    // Reject 31 February and the like by a round trip.
    let (y2, m2, d2) = civil_from_days(days_from_civil(year, month, day));
    (y2 == year && m2 == month && d2 == day).then_some((year, month, day))
}

/// Parses a date-time the way an OPATH filter accepts it: ISO 8601 (`2024-04-10T08:56:22.1234567Z`,
/// with an optional offset), `2024-04-10 08:56:22`, or en-US `4/10/2024 8:56:22 AM`; a date alone
/// means midnight. A time without a zone is taken as UTC.
pub fn parse_opath_datetime(input: &str) -> Option<i64> {
    let s = input.trim();
    let (year, month, day, rest) =
        if let Some((y, r)) = take_number(s, 4).filter(|(_, r)| r.starts_with('-')) {
            let (m, r) = take_number(r.get(1..)?, 2)?;
            let (d, r) = take_number(r.strip_prefix('-')?, 2)?;
            (y, m, d, r)
        } else {
            let (m, r) = take_number(s, 2)?;
            let (d, r) = take_number(r.strip_prefix('/')?, 2)?;
            let (y, r) = take_number(r.strip_prefix('/')?, 4)?;
            (y, m, d, r)
        };
    let (year, month, day) = valid_date(year, month, day)?;
    let mut ticks = days_from_civil(year, month, day) * 86_400 * TICKS_PER_SECOND;
    let rest = rest.trim_start_matches(['T', ' ']);
    if rest.is_empty() {
        return Some(ticks);
    }
    let (hour, r) = take_number(rest, 2)?;
    let (minute, mut r) = take_number(r.strip_prefix(':')?, 2)?;
    let mut second = 0;
    if let Some(after) = r.strip_prefix(':') {
        let (sec, r2) = take_number(after, 2)?;
        second = sec;
        r = r2;
    }
    let mut fraction = 0;
    if let Some(after) = r.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let (frac, r2) = after.split_at(digits);
        let mut padded: String = frac.chars().take(7).collect();
        while padded.len() < 7 {
            padded.push('0');
        }
        fraction = padded.parse::<i64>().ok()?;
        r = r2;
    }
    let mut hour = hour;
    let r = r.trim_start();
    let mut offset_minutes = 0;
    if r.eq_ignore_ascii_case("AM") || r.eq_ignore_ascii_case("PM") {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour %= 12;
        if r.eq_ignore_ascii_case("PM") {
            hour += 12;
        }
    } else if r.is_empty() || r == "Z" || r == "z" {
    } else if let Some(sign) = r.chars().next().filter(|c| *c == '+' || *c == '-') {
        let (oh, r2) = take_number(r.get(1..)?, 2)?;
        let (om, r3) = take_number(r2.strip_prefix(':').unwrap_or(r2), 2)?;
        if !r3.is_empty() {
            return None;
        }
        offset_minutes = (oh * 60 + om) * if sign == '-' { -1 } else { 1 };
    } else {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    ticks += ((hour * 60 + minute - offset_minutes) * 60 + second) * TICKS_PER_SECOND + fraction;
    Some(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_format_has_seven_fraction_digits() {
        let t = parse_opath_datetime("2024-04-10T08:56:22.1234567Z").unwrap();
        assert_eq!(format_exchange_utc(t), "2024-04-10T08:56:22.1234567Z");
        assert_eq!(format_graph_date(t), "2024-04-10T08:56:22");
    }

    #[test]
    fn opath_date_forms_agree() {
        let iso = parse_opath_datetime("2024-04-10T08:56:22Z").unwrap();
        assert_eq!(parse_opath_datetime("2024-04-10 08:56:22"), Some(iso));
        assert_eq!(parse_opath_datetime("04/10/2024 08:56:22"), Some(iso));
        assert_eq!(parse_opath_datetime("4/10/2024 8:56:22 AM"), Some(iso));
        assert_eq!(parse_opath_datetime("2024-04-10T10:56:22+02:00"), Some(iso));
        let pm = parse_opath_datetime("4/10/2024 8:56:22 PM").unwrap();
        assert_eq!(pm - iso, 12 * 3600 * TICKS_PER_SECOND);
        assert_eq!(
            parse_opath_datetime("2024-04-10").unwrap(),
            days_from_civil(2024, 4, 10) * 86_400 * TICKS_PER_SECOND
        );
    }

    #[test]
    fn opath_date_rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2024-02-30",
            "13/01/2024",
            "2024-04-10T25:00:00",
            "2024-04-10Tx",
        ] {
            assert_eq!(parse_opath_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 1, 59, 60, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

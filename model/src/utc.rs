//! UTC timestamps without a date crate: ISO-8601 with milliseconds
//! (`2017-05-08T15:29:26.123Z`, Marathon's versions) or whole seconds
//! (`2017-05-08T15:29:26Z`, the CLI's progress lines), from and to
//! milliseconds since the Unix epoch. Proleptic Gregorian calendar, years
//! 1970 to 9999 (Howard Hinnant's civil-date algorithms).

const MS_PER_DAY: u64 = 86_400_000;
/// 9999-12-31T23:59:59.999Z.
pub const MAX_MS: u64 = 253_402_300_799_999;

/// Milliseconds since the Unix epoch → `YYYY-MM-DDTHH:MM:SS.mmmZ`
/// (clamped to year 9999).
pub fn format_ms(ms: u64) -> String {
    let ms = ms.min(MAX_MS);
    let (y, m, d) = civil_from_days(ms / MS_PER_DAY);
    let rem = ms % MS_PER_DAY;
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (fraction truncated to
/// milliseconds) into milliseconds since the Unix epoch; `None` when it is
/// not such a timestamp.
pub fn parse_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = text.get(r)?;
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let sep_ok = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b.last() == Some(&b'Z');
    if !sep_ok {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = text.get(19..b.len() - 1)?;
    let milli = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        None => return None,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            let mut digits = f.to_string();
            digits.truncate(3);
            while digits.len() < 3 {
                digits.push('0');
            }
            digits.parse::<u64>().ok()?
        }
        Some(_) => return None,
    };
    let valid = (1970..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=days_in_month(y, mo)).contains(&d)
        && h < 24
        && mi < 60
        && s < 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(days * MS_PER_DAY + h * 3_600_000 + mi * 60_000 + s * 1000 + milli)
}

fn is_leap(y: u64) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date from 1970 on (Howard Hinnant's algorithm,
/// shifted so every intermediate stays non-negative).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Seconds since the Unix epoch → `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_secs(secs: u64) -> String {
    let full = format_ms(secs.saturating_mul(1000));
    // Drop ".mmm" (always three digits) before the Z.
    format!("{}Z", &full[..full.len() - 5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc_timestamps() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        let v = parse_ms("2017-05-08T15:29:26.123Z").unwrap();
        assert_eq!(format_ms(v), "2017-05-08T15:29:26.123Z");
        assert_eq!(v, 1_494_257_366_123);
        assert_eq!(format_secs(1_494_257_366), "2017-05-08T15:29:26Z");
        assert_eq!(
            parse_ms("2016-02-29T00:00:00Z").map(format_ms),
            Some("2016-02-29T00:00:00.000Z".into())
        );
        for bad in [
            "",
            "2017-05-08",
            "2017-02-30T00:00:00Z",
            "2017-05-08T25:00:00Z",
            "2017-05-08T15:29:26.Z",
            "2017-05-08T15:29:26+01:00",
            "1969-12-31T23:59:59Z",
            "２017-05-08T15:29:26Z",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_millisecond_round_trips(ms in 0..=MAX_MS) {
            proptest::prop_assert_eq!(parse_ms(&format_ms(ms)), Some(ms));
        }
    }
}

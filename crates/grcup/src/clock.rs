//! Time parsing without allocation: RFC 3339 instants and race durations.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Parses an instant into Unix nanoseconds.
///
/// Accepts RFC 3339 (`2025-05-30T08:15:40.118Z`, `T` or a space between date and time, 0-9
/// fraction digits, `Z`, `±hh:mm`, `±hhmm`, or no zone meaning UTC) and plain Unix seconds
/// (`1748592940.118`; a value above 1e11 is read as milliseconds). Surrounding spaces and
/// quotes are ignored. `None` when it is neither.
pub fn parse_timestamp_ns(raw: &[u8]) -> Option<i64> {
    let b = trim(raw);
    if b.is_empty() {
        return None;
    }
    if b.len() >= 19 && b.get(4) == Some(&b'-') {
        return parse_rfc3339(b);
    }
    parse_epoch(b)
}

/// `secs[.frac]` (or milliseconds above 1e11) into nanoseconds, exactly.
fn parse_epoch(b: &[u8]) -> Option<i64> {
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (b.get(..i)?, b.get(i + 1..)?),
        None => (b, &b""[..]),
    };
    if int.is_empty() || int.len() > 15 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let whole = digits(int, 0, int.len())?;
    let (unit_ns, whole_ns) = if whole > 100_000_000_000 {
        (1_000_000i64, whole.checked_mul(1_000_000)?)
    } else {
        (1_000_000_000i64, whole.checked_mul(1_000_000_000)?)
    };
    let mut frac_ns = 0i64;
    let mut scale = unit_ns / 10;
    for &c in frac.iter().take(9) {
        frac_ns += i64::from(c - b'0') * scale;
        scale /= 10;
    }
    whole_ns.checked_add(frac_ns)
}

fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    let y = digits(b, 0, 4)?;
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    if b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let h = digits(b, 11, 2)?;
    let mi = digits(b, 14, 2)?;
    let s = digits(b, 17, 2)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000i64;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            frac_ns += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_s = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2)?;
            let om = match b.len() - (i + 3) {
                0 => 0,
                3 if b[i + 3] == b':' => digits(b, i + 4, 2)?,
                2 => digits(b, i + 3, 2)?,
                _ => return None,
            };
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    // Years past 2262 do not fit in i64 nanoseconds: not a timestamp.
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// Trims ASCII whitespace and surrounding double quotes.
pub(crate) fn trim(b: &[u8]) -> &[u8] {
    let b = b.trim_ascii();
    match b {
        [b'"', inner @ .., b'"'] => inner.trim_ascii(),
        _ => b,
    }
}

/// Parses a race duration into seconds: `ss.fff`, `m:ss.fff`, `h:mm:ss.fff` (fraction
/// optional; a leading `+` is allowed). `None` for empty or malformed text, or when a
/// minutes/seconds part after a colon is 60 or more.
pub fn parse_duration_s(raw: &str) -> Option<f64> {
    let s = raw.trim().trim_start_matches('+').trim();
    if s.is_empty() {
        return None;
    }
    let mut parts = s.rsplit(':');
    let sec_txt = parts.next()?;
    if sec_txt.is_empty() || !sec_txt.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    let secs: f64 = sec_txt.parse().ok()?;
    let mut total = secs;
    let mut n_parts = 1;
    let mut mult = 60.0;
    for p in parts {
        n_parts += 1;
        if n_parts > 3 || p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: f64 = p.parse().ok()?;
        total += v * mult;
        mult *= 60.0;
    }
    if n_parts > 1 && secs >= 60.0 {
        return None;
    }
    if n_parts == 3 {
        // h:mm:ss: the minutes part must be below 60 too.
        let mins: f64 = s.split(':').nth(1)?.parse().ok()?;
        if mins >= 60.0 {
            return None;
        }
    }
    total.is_finite().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        let base = parse_timestamp_ns(b"2025-05-30T08:15:40.118Z").unwrap();
        assert_eq!(base, 1_748_592_940_118_000_000);
        assert_eq!(parse_timestamp_ns(b"2025-05-30 08:15:40.118"), Some(base));
        assert_eq!(
            parse_timestamp_ns(b" \"2025-05-30T08:15:40.118Z\" "),
            Some(base)
        );
        assert_eq!(
            parse_timestamp_ns(b"2025-05-30T10:15:40.118+02:00"),
            Some(base)
        );
        assert_eq!(
            parse_timestamp_ns(b"2025-05-30T10:15:40.118+0200"),
            Some(base)
        );
        assert_eq!(
            parse_timestamp_ns(b"2025-05-30T08:15:40Z"),
            Some(1_748_592_940_000_000_000)
        );
        assert_eq!(
            parse_timestamp_ns(b"1970-01-01T00:00:00.000000001Z"),
            Some(1)
        );
        assert_eq!(
            parse_timestamp_ns(b"1748592940.118"),
            Some(1_748_592_940_118_000_000)
        );
        assert_eq!(
            parse_timestamp_ns(b"1748592940118"),
            Some(1_748_592_940_118_000_000)
        );
        for bad in [
            &b""[..],
            b"2025-05-30T08:1",
            b"2025-13-30T08:15:40Z",
            b"2025-05-30T08:15:40.Z",
            b"2025-05-30T08:15:40.118Zjunk",
            b"hello",
        ] {
            assert_eq!(
                parse_timestamp_ns(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A leap year day.
        assert_eq!(parse_timestamp_ns(b"9999-12-31T23:59:59.999Z"), None);
        assert_eq!(parse_timestamp_ns(b"999999999999999.5"), None);
        assert_eq!(
            parse_timestamp_ns(b"2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000_000_000)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_s("41.020"), Some(41.02));
        assert_eq!(parse_duration_s("2:08.412"), Some(128.412));
        assert_eq!(parse_duration_s("1:02:03.5"), Some(3723.5));
        assert_eq!(parse_duration_s(" 0:41.020 "), Some(41.02));
        assert_eq!(parse_duration_s("+1.234"), Some(1.234));
        assert_eq!(parse_duration_s("10:51.006"), Some(651.006));
        for bad in [
            "",
            "abc",
            "1:60.0",
            "1:75:00.0",
            "1::2",
            "1:2:3:4",
            "-3.0",
            "1 lap",
        ] {
            assert_eq!(parse_duration_s(bad), None, "{bad}");
        }
    }
}

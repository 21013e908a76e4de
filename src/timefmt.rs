//! Formatting of database times (nanoseconds since the epoch) as RFC 3339, UTC.

/// `2026-11-23T10:04:05.123Z`
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let millis = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a point in time: RFC 3339 (`2026-11-23T10:00:00Z`, `...+02:00`, a bare
/// date `2026-11-23` meaning its midnight UTC), a relative age (`90s`, `15m`,
/// `2h`, `3d`, `1w`: that long before `now_ns`), or `now`.
pub fn parse_time(s: &str, now_ns: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ns);
    }
    if let Some(ns) = parse_relative(s) {
        return now_ns
            .checked_sub(ns)
            .ok_or_else(|| format!("age '{s}' reaches before the year 1678"));
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!(
            "cannot read time '{s}': use RFC 3339 (2026-11-23T10:00:00Z, years 1678 to 2261) \
             or an age (90s, 15m, 2h, 3d, 1w)"
        )
    })
}

/// Days in month `m` of year `y` (proleptic Gregorian).
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_relative(s: &str) -> Option<i64> {
    let unit = s.chars().last()?;
    let n: f64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        'w' => 604_800.0,
        _ => return None,
    };
    let ns = n * secs * 1e9;
    // Ages past i64 nanoseconds (292 years) are not ages anyone means.
    (n.is_finite() && n >= 0.0 && ns < 9.2e18).then_some(ns as i64)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
    {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    if s.len() == 10 {
        return days.checked_mul(86_400 * 1_000_000_000);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut pos = 19;
    let mut frac_ns = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let digits = &s[start..pos];
        if digits.is_empty() {
            return None;
        }
        let padded: String = digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        frac_ns = padded.parse().ok()?;
    }
    let offset_secs = match &s[pos..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':' =>
        {
            let oh = num(pos + 1, 2)?;
            let om = num(pos + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// (year, month, day) to days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_and_impossible_times_are_errors() {
        let now = 1_795_000_000_000_000_000;
        for bad in [
            "2262-04-12",
            "1111-11-11",
            "2026-02-31",
            "2026-02-29",
            "2026-04-31",
            "2026-11-23T10:00:00+01x30",
            "2026-11-23T10:00:00+99:99",
            "1e300w",
            "400y",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad} was accepted");
        }
        assert!(parse_time("2024-02-29", now).is_ok());
        assert!(parse_time("2026-11-23T10:00:00+05:30", now).is_ok());
        // 300 weeks is fine; 20,000 weeks reaches before 1678.
        assert!(parse_time("300w", now).is_ok());
        assert!(parse_time("20000w", now).is_err());
    }

    #[test]
    fn times_parse() {
        let now = 1_795_000_000_000_000_000;
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000_000_000);
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("1970-01-01T00:00:00Z", now).unwrap(), 0);
        assert_eq!(
            parse_time("2000-02-29", now).unwrap(),
            951_782_400_000_000_000
        );
        assert_eq!(
            parse_time("2026-11-18T11:06:40.123Z", now).unwrap(),
            1_795_000_000_123_000_000
        );
        assert_eq!(
            parse_time("2026-11-18T13:06:40.123+02:00", now).unwrap(),
            1_795_000_000_123_000_000
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-18T25:00:00Z",
            "5x",
            "-2h",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
        for ns in [0, 951_782_400_000_000_000, 1_795_000_000_123_000_000] {
            assert_eq!(parse_time(&rfc3339(ns), now).unwrap(), ns);
        }
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339(1_795_000_000_123_000_000),
            "2026-11-18T11:06:40.123Z"
        );
    }
}

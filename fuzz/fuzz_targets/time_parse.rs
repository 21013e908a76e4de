//! Times: `timefmt::parse_time` (memfsctl `log --since/--until`, `cat --at`,
//! `rollback --at`) and `timefmt::rfc3339`.
//!
//! Input: the first 8 bytes are a time in ns (little endian) for the
//! `rfc3339` round trip; all of the input (as UTF-8) is given to `parse_time`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use memfs::timefmt::{parse_time, rfc3339};

/// A realistic "now" (2026-11-18T11:06:40Z); the callers pass `ids::now_ns()`.
const NOW: i64 = 1_795_000_000_000_000_000;
const MS: i64 = 1_000_000;

fuzz_target!(|data: &[u8]| {
    let mut ns = [0u8; 8];
    let n = data.len().min(8);
    ns[..n].copy_from_slice(&data[..n]);
    round_trip(i64::from_le_bytes(ns));
    if let Ok(s) = std::str::from_utf8(data) {
        parse(s);
    }
});

/// `rfc3339` keeps milliseconds: parsing its text gives the time cut down to
/// the millisecond, in every spelling RFC 3339 allows for the same instant.
fn round_trip(ns: i64) {
    // Near i64::MIN the whole seconds before `ns` are not representable.
    if ns < i64::MIN + 2_000_000_000 {
        return;
    }
    let text = rfc3339(ns);
    let b = text.as_bytes();
    assert_eq!(b.len(), 24, "{text}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{text}"),
            10 => assert_eq!(*c, b'T', "{text}"),
            13 | 16 => assert_eq!(*c, b':', "{text}"),
            19 => assert_eq!(*c, b'.', "{text}"),
            23 => assert_eq!(*c, b'Z', "{text}"),
            _ => assert!(c.is_ascii_digit(), "{text}"),
        }
    }
    let want = ns - ns.rem_euclid(MS);
    let got = parse_time(&text, NOW);
    assert_eq!(got, Ok(want), "{ns} -> {text}");
    let base = &text[..23];
    for variant in [
        format!("{base}z"),
        format!("{base}+00:00"),
        format!("{base}-00:00"),
        format!(" {} ", text.replacen('T', " ", 1)),
        text.replacen('T', "t", 1),
        // Microseconds and nanoseconds given as zeros change nothing.
        format!("{base}000000Z"),
    ] {
        assert_eq!(parse_time(&variant, NOW), Ok(want), "{ns} -> {variant}");
    }
    // The same instant in another zone.
    if let Some(shifted) = ns.checked_add(5_400_000_000_000) {
        if shifted < i64::MAX - 2_000_000_000 {
            let local = format!("{}+01:30", &rfc3339(shifted)[..23]);
            assert_eq!(parse_time(&local, NOW), Ok(want), "{ns} -> {local}");
        }
    }
}

fn parse(s: &str) {
    let Ok(t) = parse_time(s, NOW) else {
        return;
    };
    let s = s.trim();
    if s == "now" {
        assert_eq!(t, NOW);
        return;
    }
    // An age is a time before now.
    if let Some(unit) = s.chars().last().filter(|c| "smhdw".contains(*c)) {
        if let Ok(n) = s[..s.len() - unit.len_utf8()].parse::<f64>() {
            if n.is_finite() {
                assert!(n >= 0.0, "negative age {s:?} accepted");
                assert!(t <= NOW, "age {s:?} gave {t} after now");
                return;
            }
        }
    }
    // Anything else was RFC 3339: its instant prints and parses back...
    round_trip(t);
    // ...and in UTC it prints as it was written (so the date existed), but
    // for a leap second, which is the next minute's 00.
    let b = s.as_bytes();
    let printed = rfc3339(t);
    if s.len() == 10 {
        assert_eq!(&printed[..10], s, "date {s:?} read as {printed}");
    } else if matches!(b.last(), Some(b'Z' | b'z')) && &s[17..19] != "60" {
        assert_eq!(&printed[..10], &s[..10], "{s:?} read as {printed}");
        assert_eq!(&printed[11..19], &s[11..19], "{s:?} read as {printed}");
    }
    let year: i64 = printed[..4].parse().unwrap();
    assert!((1677..=2262).contains(&year), "{s:?} read as {printed}");
}

//! Numeric detectors: payment cards, US SSNs and phone numbers.

use super::{at, digits_at, ends_clean, finding, is_digit, Finding, Kind};

// ------------------------------------------------------------ credit card

/// 13–19 digits, optionally in groups of 3–7 separated by single spaces or
/// single dashes (one kind per number). When space-separated groups run on
/// ("4111 1111 1111 1111 100"), the longest valid prefix of whole groups is
/// taken; a contiguous run longer than 19 digits is rejected as a whole.
pub(super) fn card(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    let mut buf = [0u8; 19];
    let mut count = 0;
    let mut sep: Option<u8> = None;
    let mut ends = [(0usize, 0usize); 7]; // (end, digit count) after each group
    let mut groups = 0;
    let mut j = i;
    loop {
        let gs = j;
        while is_digit(at(data, j)) {
            if count == 19 {
                if sep.is_none() {
                    return; // part of a longer digit run
                }
                break;
            }
            buf[count] = data[j] - b'0';
            count += 1;
            j += 1;
        }
        let glen = j - gs;
        if is_digit(at(data, j)) || (sep.is_some() && glen < 3) || groups == ends.len() {
            break; // overflow or short trailing group: keep what came before
        }
        ends[groups] = (j, count);
        groups += 1;
        let b = at(data, j);
        let joins =
            (b == b' ' || b == b'-') && sep.is_none_or(|s| s == b) && is_digit(at(data, j + 1));
        if !joins || !(3..=7).contains(&glen) {
            break;
        }
        sep = Some(b);
        j += 1;
    }
    let valid = ends[..groups].iter().rev().find(|&&(end, n)| {
        n >= 13 && ends_clean(data, end) && card_brand_ok(&buf[..n]) && luhn(&buf[..n])
    });
    if let Some(&(end, _)) = valid {
        out.push(finding(Kind::CreditCard, i, end));
    }
}

/// The first `len` digits of `d` as a number.
fn prefix_num(d: &[u8], len: usize) -> u32 {
    d[..len].iter().fold(0, |a, &x| a * 10 + u32::from(x))
}

/// Known IIN ranges with their valid lengths.
fn card_brand_ok(d: &[u8]) -> bool {
    let len = d.len();
    let p2 = prefix_num(d, 2);
    let p3 = prefix_num(d, 3);
    let p4 = prefix_num(d, 4);
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),              // Visa
        5 => (51..=55).contains(&p2) && len == 16,     // Mastercard
        2 => (2221..=2720).contains(&p4) && len == 16, // Mastercard 2-series
        3 if p2 == 34 || p2 == 37 => len == 15,        // Amex
        3 if (3528..=3589).contains(&p4) => (16..=19).contains(&len), // JCB
        3 if (300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39) => (14..=19).contains(&len), // Diners
        6 if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 => (16..=19).contains(&len), // Discover
        6 if p2 == 62 => (16..=19).contains(&len), // UnionPay
        _ => false,
    }
}

/// Luhn (mod-10) checksum over digit values.
fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &x)| {
            let x = u32::from(x);
            if k % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

// -------------------------------------------------------------------- SSN

/// `AAA-GG-SSSS` without area 000/666/900–999, group 00 or serial 0000.
pub(super) fn ssn(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    if at(data, i + 3) != b'-' || at(data, i + 6) != b'-' {
        return;
    }
    let (Some(area), Some(group), Some(serial)) = (
        digits_at(data, i, 3),
        digits_at(data, i + 4, 2),
        digits_at(data, i + 7, 4),
    ) else {
        return;
    };
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return;
    }
    if ends_clean(data, i + 11) {
        out.push(finding(Kind::UsSsn, i, i + 11));
    }
}

// ------------------------------------------------------------------ phone

/// `AAA-EEE-SSSS` / `AAA.EEE.SSSS`, optionally preceded by `1-` / `1.`.
pub(super) fn nanp_dashed(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    let mut j = i;
    if at(data, i) == b'1' && matches!(at(data, i + 1), b'-' | b'.') && is_digit(at(data, i + 2)) {
        j = i + 2;
    }
    let sep = at(data, j + 3);
    if !matches!(sep, b'-' | b'.') || at(data, j + 7) != sep {
        return;
    }
    if j != i && at(data, i + 1) != sep {
        return;
    }
    let ok = digits_at(data, j, 3).is_some_and(|a| a >= 200)
        && digits_at(data, j + 4, 3).is_some()
        && digits_at(data, j + 8, 4).is_some();
    if ok && ends_clean(data, j + 12) {
        out.push(finding(Kind::Phone, i, j + 12));
    }
}

/// `(AAA) EEE-SSSS`, `(AAA)EEE-SSSS`, `(AAA) EEE SSSS`, `(AAA) EEE.SSSS`.
pub(super) fn nanp_paren(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    if digits_at(data, i + 1, 3).is_none_or(|a| a < 200) || at(data, i + 4) != b')' {
        return;
    }
    let mut j = i + 5;
    if at(data, j) == b' ' {
        j += 1;
    }
    if digits_at(data, j, 3).is_none() || !matches!(at(data, j + 3), b'-' | b'.' | b' ') {
        return;
    }
    if digits_at(data, j + 4, 4).is_some() && ends_clean(data, j + 8) {
        out.push(finding(Kind::Phone, i, j + 8));
    }
}

/// Total digit count (country code included) allowed after `+`, from the
/// first two digits: exact for a few fixed-length plans, 8–15 otherwise.
fn e164_len(d1: u8, d2: u8) -> (usize, usize) {
    match (d1, d2) {
        (b'1', _) | (b'7', _) => (11, 11), // NANP, Russia/Kazakhstan
        (b'3', b'3') | (b'3', b'4') | (b'6', b'1') => (11, 11), // France, Spain, Australia
        (b'4', b'4') | (b'8', b'1') => (11, 12), // UK, Japan
        (b'9', b'1') => (12, 12),          // India
        (b'8', b'6') => (12, 13),          // China
        _ => (8, 15),
    }
}

/// `+` then 8–15 digits, groups separated by one of ` -.` or parentheses.
pub(super) fn e164(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    if !matches!(at(data, i + 1), b'1'..=b'9') {
        return;
    }
    let (min, max) = e164_len(at(data, i + 1), at(data, i + 2));
    let mut j = i + 1;
    let mut digits = 0;
    let mut open = false;
    let mut closed = false;
    let mut punct = false; // a `-` or `.` separator was used
    let mut best = None;
    loop {
        // One group of digits.
        while is_digit(at(data, j)) && digits <= max {
            digits += 1;
            j += 1;
        }
        if digits > max {
            break;
        }
        if digits >= min && open == closed && ends_clean(data, j) {
            best = Some(j);
        }
        // Separator: one of ` -.`, or `(`, ` (`, `)`, `) `, `)-`, `).`.
        let (s0, s1) = (at(data, j), at(data, j + 1));
        let k = match s0 {
            b'(' | b' ' if s0 == b'(' || s1 == b'(' => {
                if open {
                    break;
                }
                open = true;
                j + 1 + usize::from(s0 == b' ')
            }
            b')' => {
                if !open || closed {
                    break;
                }
                closed = true;
                j + 1 + usize::from(matches!(s1, b' ' | b'-' | b'.'))
            }
            b' ' if punct => break, // "+1 555-123-4567 42": the space ends it
            b' ' | b'-' | b'.' => {
                punct |= s0 != b' ';
                j + 1
            }
            _ => break,
        };
        if !is_digit(at(data, k)) {
            break;
        }
        j = k;
    }
    if let Some(end) = best {
        out.push(finding(Kind::Phone, i, end));
    }
}

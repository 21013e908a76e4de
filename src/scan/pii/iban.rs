//! IBAN detector (country length table and mod-97 check).

use super::{at, finding, is_digit, is_upper_alnum, Finding, Kind};

/// IBAN length by country code (SWIFT IBAN registry).
fn iban_len(cc: [u8; 2]) -> Option<usize> {
    Some(match &cc {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FK" | b"FO" | b"GL" | b"NL" | b"SD" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"MN" | b"XK" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"OM" | b"SO" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"DJ" | b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"NI" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    })
}

/// Country code, 2 check digits, then the BBAN up to the country's length;
/// compact or in groups of 4 separated by single spaces; mod-97 must be 1.
pub(super) fn iban(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    let Some(head) = data.get(i..i + 4) else {
        return;
    };
    if !(head[1].is_ascii_uppercase() && is_digit(head[2]) && is_digit(head[3])) {
        return;
    }
    let Some(len) = iban_len([head[0], head[1]]) else {
        return;
    };
    let mut buf = [0u8; 34];
    buf[..4].copy_from_slice(head);
    let mut count = 4;
    let mut j = i + 4;
    while count < len {
        let b = at(data, j);
        if is_upper_alnum(b) {
            buf[count] = b;
            count += 1;
            j += 1;
        } else if b == b' ' && count % 4 == 0 && is_upper_alnum(at(data, j + 1)) {
            j += 1;
        } else {
            return;
        }
    }
    if at(data, j).is_ascii_alphanumeric() {
        return;
    }
    let check = u32::from(head[2] - b'0') * 10 + u32::from(head[3] - b'0');
    if (2..=98).contains(&check) && iban_mod97(&buf[..len]) == 1 {
        out.push(finding(Kind::Iban, i, j));
    }
}

/// ISO 7064 mod-97 of the IBAN with its first four characters moved last.
fn iban_mod97(s: &[u8]) -> u32 {
    let (head, rest) = s.split_at(4);
    rest.iter().chain(head).fold(0u32, |acc, &b| {
        if b.is_ascii_digit() {
            (acc * 10 + u32::from(b - b'0')) % 97
        } else {
            (acc * 100 + u32::from(b - b'A') + 10) % 97
        }
    })
}

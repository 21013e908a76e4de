//! E-mail address detector.

use super::{at, finding, Finding, Kind};

/// Local-part bytes accepted: `[A-Za-z0-9._%+-]` (a common RFC 5322 subset).
fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// Domain label bytes: `[A-Za-z0-9-]`.
fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Address around the `@` at `at_pos`: local part of 1–64 bytes (no `..`,
/// not ending in `.`), then at least two labels, the last alphabetic (2–24)
/// or `xn--`, domain at most 253 bytes.
pub(super) fn email(data: &[u8], at_pos: usize, out: &mut Vec<Finding>) {
    // Local part: at most 64 bytes back; a longer run is not an address.
    let mut s = at_pos;
    while s > 0 && is_local_byte(data[s - 1]) {
        if at_pos - s == 64 {
            return;
        }
        s -= 1;
    }
    while s < at_pos && !(data[s].is_ascii_alphanumeric() || data[s] == b'_') {
        s += 1;
    }
    let local = &data[s..at_pos];
    if local.is_empty() || local.ends_with(b".") || local.windows(2).any(|w| w == b"..") {
        return;
    }
    // Domain: labels separated by dots, at most 253 bytes.
    let mut j = at_pos + 1;
    let mut labels = 0;
    let mut end = None;
    loop {
        let ls = j;
        while is_label_byte(at(data, j)) && j - ls <= 63 {
            j += 1;
        }
        let label = &data[ls..j];
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            break;
        }
        labels += 1;
        if j - at_pos - 1 > 253 {
            return;
        }
        let tld_ok = ((2..=24).contains(&label.len()) && label.iter().all(u8::is_ascii_alphabetic))
            || (label.starts_with(b"xn--") && label.len() > 4);
        if labels >= 2 && tld_ok && !is_file_extension(label) {
            end = Some(j);
        }
        if at(data, j) == b'.' && is_label_byte(at(data, j + 1)) {
            j += 1;
        } else {
            break;
        }
    }
    let Some(e) = end else { return };
    // Reject when the last label runs into more label bytes (too long), and
    // scp-style remotes such as `git@github.com:org/repo.git`.
    let scp = at(data, e) == b':'
        && matches!(at(data, e + 1), b'/' | b'~' | b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9');
    if !is_label_byte(at(data, e)) && !scp {
        out.push(finding(Kind::Email, s, e));
    }
}

/// Image/document extensions that end `name@2x.png`-style file names.
fn is_file_extension(label: &[u8]) -> bool {
    const EXT: [&[u8]; 9] = [
        b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"ico", b"bmp", b"pdf",
    ];
    EXT.iter().any(|e| label.eq_ignore_ascii_case(e))
}

//! PII and secret detection over arbitrary bytes.
//!
//! [`scan`] makes one left-to-right pass over the input. Each detector is
//! triggered only at a plausible start (a word boundary, `@`, `+`, `(` or
//! `-----BEGIN `) and examines a bounded window, or a maximal run that no
//! later start can re-enter, so the whole scan is linear in the input size
//! whatever the content (long digit runs, runs of `@`, binary data).
//! Candidates from all detectors are then resolved so that the result is
//! sorted and non-overlapping: the longest candidate wins, ties go to the
//! more specific kind.
//!
//! The detectors are heuristics. Known limits: cards are only recognised
//! with a known IIN prefix and Luhn checksum, so a Luhn-valid 16-digit id
//! starting with `4` is a false positive; phone numbers need a `+` prefix
//! or a North-American `(AAA) EEE-SSSS` / `AAA-EEE-SSSS` shape, so bare
//! national numbers are missed; IBANs must be upper case with a country in
//! the built-in table; e-mail local parts are restricted to
//! `[A-Za-z0-9._%+-]` and domains to ASCII.

mod email;
mod iban;
mod numbers;
mod secrets;

use std::collections::BTreeMap;
use std::fmt;

use email::email;
use iban::iban;
use numbers::{card, e164, nanp_dashed, nanp_paren, ssn};
use secrets::{aws, google, jwt, pem, prefixed_token};

/// The kind of sensitive data a [`Finding`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An e-mail address `local@domain.tld`.
    Email,
    /// A phone number: E.164 (`+` and 8–15 digits) or North-American.
    Phone,
    /// A payment card number (known IIN prefix, Luhn-valid).
    CreditCard,
    /// A US social security number `AAA-GG-SSSS`.
    UsSsn,
    /// An international bank account number (mod-97 valid).
    Iban,
    /// An AWS access key id (`AKIA…`, `ASIA…`, …).
    AwsAccessKey,
    /// A PEM private key block.
    PrivateKey,
    /// A JSON Web Token (`eyJ…`).
    Jwt,
    /// A vendor API token recognised by its prefix (GitHub, OpenAI, …).
    ApiToken,
}

impl Kind {
    /// Every kind, in `Ord` order.
    pub const ALL: [Kind; 9] = [
        Kind::Email,
        Kind::Phone,
        Kind::CreditCard,
        Kind::UsSsn,
        Kind::Iban,
        Kind::AwsAccessKey,
        Kind::PrivateKey,
        Kind::Jwt,
        Kind::ApiToken,
    ];

    /// The stable snake_case name, e.g. `"credit_card"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::CreditCard => "credit_card",
            Kind::UsSsn => "us_ssn",
            Kind::Iban => "iban",
            Kind::AwsAccessKey => "aws_access_key",
            Kind::PrivateKey => "private_key",
            Kind::Jwt => "jwt",
            Kind::ApiToken => "api_token",
        }
    }

    /// Parses a name produced by [`Kind::as_str`]. ASCII case is ignored
    /// and `-` is accepted for `_`.
    pub fn parse(s: &str) -> Option<Kind> {
        let norm: String = s
            .trim()
            .chars()
            .map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        Kind::ALL.into_iter().find(|k| k.as_str() == norm)
    }

    /// Tie-break rank when two candidates have the same length (lower wins).
    fn specificity(self) -> u8 {
        match self {
            Kind::PrivateKey => 0,
            Kind::Jwt => 1,
            Kind::ApiToken => 2,
            Kind::AwsAccessKey => 3,
            Kind::Iban => 4,
            Kind::CreditCard => 5,
            Kind::UsSsn => 6,
            Kind::Email => 7,
            Kind::Phone => 8,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One match: `data[start..end]` is of kind `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    /// What was found.
    pub kind: Kind,
    /// Byte offset of the first byte of the match.
    pub start: usize,
    /// Byte offset one past the last byte of the match.
    pub end: usize,
}

/// Scans `data` and returns the findings sorted by `start`, non-overlapping.
///
/// Never panics; runs in time linear in `data.len()`.
pub fn scan(data: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let n = data.len();
    let mut i = 0;
    while i < n {
        let b = data[i];
        let prev = if i == 0 { b'\n' } else { data[i - 1] };
        // Cheap pre-filter on (previous, current, next) byte: almost every
        // byte of ordinary or random data stops here.
        if START[usize::from(b)] & PREV[usize::from(prev)] & NEXT[usize::from(at(data, i + 1))] == 0
        {
            i += 1;
            continue;
        }
        match b {
            b'0'..=b'9' if !continues_number(data, i) => {
                card(data, i, &mut out);
                ssn(data, i, &mut out);
                nanp_dashed(data, i, &mut out);
            }
            b'+' => e164(data, i, &mut out),
            b'(' => nanp_paren(data, i, &mut out),
            b'@' => email(data, i, &mut out),
            b'-' => {
                if let Some(end) = pem(data, i) {
                    out.push(finding(Kind::PrivateKey, i, end));
                    i = end;
                    continue;
                }
            }
            b'A'..=b'Z' => {
                if b == b'A' {
                    aws(data, i, &mut out);
                    if !is_token_byte(prev) {
                        google(data, i, &mut out);
                    }
                }
                iban(data, i, &mut out);
            }
            b'e' => jwt(data, i, &mut out),
            b'g' | b's' | b'x' | b'r' | b'n' => prefixed_token(data, i, &mut out),
            _ => {}
        }
        i += 1;
    }
    resolve(out)
}

/// The distinct kinds present in `findings`, sorted.
pub fn kinds(findings: &[Finding]) -> Vec<Kind> {
    let mut k: Vec<Kind> = findings.iter().map(|f| f.kind).collect();
    k.sort_unstable();
    k.dedup();
    k
}

/// Returns a copy of `data` where each finding's byte range is replaced by
/// `[REDACTED:kind]`. Findings are expected to come from [`scan`]; ranges
/// that are out of bounds or overlap an earlier finding are ignored.
pub fn redact(data: &[u8], findings: &[Finding]) -> Vec<u8> {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| (f.start, f.end));
    let mut out = Vec::with_capacity(data.len());
    let mut pos = 0;
    for f in sorted {
        if f.start < pos || f.start > f.end || f.end > data.len() {
            continue;
        }
        out.extend_from_slice(&data[pos..f.start]);
        out.extend_from_slice(b"[REDACTED:");
        out.extend_from_slice(f.kind.as_str().as_bytes());
        out.push(b']');
        pos = f.end;
    }
    out.extend_from_slice(&data[pos..]);
    out
}

fn finding(kind: Kind, start: usize, end: usize) -> Finding {
    Finding { kind, start, end }
}

/// Keeps the longest (then most specific, then leftmost) candidates that do
/// not overlap an already kept one; returns them sorted by start.
fn resolve(mut cands: Vec<Finding>) -> Vec<Finding> {
    cands.sort_unstable_by_key(|f| {
        (
            std::cmp::Reverse(f.end - f.start),
            f.kind.specificity(),
            f.start,
        )
    });
    let mut kept: BTreeMap<usize, Finding> = BTreeMap::new();
    for c in cands {
        if c.end <= c.start {
            continue;
        }
        let clash = kept
            .range(..c.end)
            .next_back()
            .is_some_and(|(_, k)| k.end > c.start);
        if !clash {
            kept.insert(c.start, c);
        }
    }
    kept.into_values().collect()
}

// ---------------------------------------------------------------- helpers

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// Bytes of `[A-Za-z0-9_-]`, the alphabet of base64url and most API tokens.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `[A-Z0-9]`.
fn is_upper_alnum(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn at(data: &[u8], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

/// True when position `i` follows a digit and a number-joining punctuation
/// (`1.2`, `2026-11`, `10/12`, `10:30`): such a digit is not a fresh start.
fn continues_number(data: &[u8], i: usize) -> bool {
    i >= 2 && matches!(data[i - 1], b'.' | b'-' | b'/' | b':') && is_digit(data[i - 2])
}

/// True when a numeric match ending at `j` ends cleanly: no letter/digit
/// follows and no number-joining punctuation followed by a digit.
fn ends_clean(data: &[u8], j: usize) -> bool {
    let b = at(data, j);
    !(b.is_ascii_alphanumeric()
        || (matches!(b, b'.' | b'-' | b'/' | b':') && is_digit(at(data, j + 1))))
}

/// Reads exactly `count` digits at `i`; returns their value.
fn digits_at(data: &[u8], i: usize, count: usize) -> Option<u32> {
    let s = data.get(i..i + count)?;
    s.iter().try_fold(0u32, |acc, &b| {
        is_digit(b).then(|| acc * 10 + u32::from(b - b'0'))
    })
}

// ------------------------------------------------------------ pre-filter

/// A 256-entry table of `$f(byte)`, computed at compile time.
macro_rules! byte_table {
    ($f:ident) => {{
        let mut t = [0u8; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = $f(b as u8);
            b += 1;
        }
        t
    }};
}

// Trigger classes of the pre-filter: which detector family may start here.
const T_DIGIT: u8 = 1;
const T_PLUS: u8 = 2;
const T_PAREN: u8 = 4;
const T_AT: u8 = 8;
const T_DASH: u8 = 16;
const T_UPPER: u8 = 32;
const T_E: u8 = 64;
const T_TOKEN: u8 = 128;

/// Class of a byte that can begin (or, for `@`, anchor) a match.
static START: [u8; 256] = byte_table!(start_class);
/// Previous-byte mask, see [`prev_mask`].
static PREV: [u8; 256] = byte_table!(prev_mask);
/// Next-byte mask, see [`next_mask`].
static NEXT: [u8; 256] = byte_table!(next_mask);

const fn start_class(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => T_DIGIT,
        b'+' => T_PLUS,
        b'(' => T_PAREN,
        b'@' => T_AT,
        b'-' => T_DASH,
        b'A'..=b'Z' => T_UPPER,
        b'e' => T_E,
        b'g' | b's' | b'x' | b'r' | b'n' => T_TOKEN,
        _ => 0,
    }
}

/// Classes that may start right after byte `p` (word-boundary rules).
const fn prev_mask(p: u8) -> u8 {
    let word = p.is_ascii_alphanumeric();
    let token = word || p == b'_' || p == b'-';
    let local = word || matches!(p, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut m = T_DASH;
    if !word {
        m |= T_DIGIT | T_PAREN | T_UPPER;
        if p != b'+' {
            m |= T_PLUS;
        }
    }
    if local {
        m |= T_AT;
    }
    if !token {
        m |= T_TOKEN;
        if p != b'.' {
            m |= T_E;
        }
    }
    m
}

/// Classes whose second byte may be `c`.
const fn next_mask(c: u8) -> u8 {
    let mut m = 0;
    if c.is_ascii_digit() {
        m |= T_DIGIT | T_PLUS | T_PAREN;
    }
    if c == b'-' || c == b'.' {
        m |= T_DIGIT; // "1-800-…"
    }
    if c.is_ascii_alphanumeric() {
        m |= T_AT;
    }
    if c == b'-' {
        m |= T_DASH;
    }
    if c.is_ascii_uppercase() || c.is_ascii_digit() {
        m |= T_UPPER;
    }
    if c == b'y' {
        m |= T_E;
    }
    if matches!(c, b'h' | b'i' | b'l' | b'k' | b'o' | b'p') {
        m |= T_TOKEN; // gh, gi(thub), gl, sk, rk, xo, np
    }
    m
}

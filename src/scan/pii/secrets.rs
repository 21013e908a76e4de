//! Secret detectors: AWS key ids, PEM private keys, JWTs and API tokens.

use super::{at, finding, is_token_byte, is_upper_alnum, Finding, Kind};

// -------------------------------------------------------------------- AWS

/// Known 4-byte id prefix then 16 `[A-Z0-9]`, 20 bytes bounded by non-alnum.
pub(super) fn aws(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    const PREFIXES: [&[u8]; 10] = [
        b"AKIA", b"ASIA", b"AGPA", b"AIDA", b"AROA", b"AIPA", b"ANPA", b"ANVA", b"ABIA", b"ACCA",
    ];
    let Some(key) = data.get(i..i + 20) else {
        return;
    };
    let head = &key[..4];
    let known = PREFIXES.contains(&head) || (head.starts_with(b"A3T") && is_upper_alnum(head[3]));
    if known
        && key[4..].iter().all(|&b| is_upper_alnum(b))
        && !at(data, i + 20).is_ascii_alphanumeric()
    {
        out.push(finding(Kind::AwsAccessKey, i, i + 20));
    }
}

// -------------------------------------------------------------------- PEM

/// If a PEM private-key header starts at `i`, returns the end of the block
/// (end of the matching END line, or end of input when it is missing).
pub(super) fn pem(data: &[u8], i: usize) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if !data.get(i..)?.starts_with(BEGIN) {
        return None;
    }
    let ls = i + BEGIN.len();
    let mut le = ls;
    while le < data.len()
        && le - ls <= 64
        && (data[le].is_ascii_uppercase() || data[le].is_ascii_digit() || data[le] == b' ')
    {
        le += 1;
    }
    let label = &data[ls..le];
    if !data[le..].starts_with(b"-----")
        || !(label.ends_with(b"PRIVATE KEY") || label == b"PGP PRIVATE KEY BLOCK")
    {
        return None;
    }
    let mut needle = Vec::with_capacity(label.len() + 14);
    needle.extend_from_slice(b"-----END ");
    needle.extend_from_slice(label);
    needle.extend_from_slice(b"-----");
    let body = le + 5;
    let end = data[body..]
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'-')
        .find(|&(k, _)| data[body + k..].starts_with(&needle))
        .map_or(data.len(), |(k, _)| body + k + needle.len());
    Some(end)
}

// -------------------------------------------------------------------- JWT

/// End of the run of `[A-Za-z0-9_-]` starting at `j`.
fn token_run(data: &[u8], mut j: usize) -> usize {
    while is_token_byte(at(data, j)) {
        j += 1;
    }
    j
}

/// `eyJ…` header, payload and signature (≥ 15, 8, 16 bytes of base64url),
/// extended over the two extra segments of a JWE when present.
pub(super) fn jwt(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    if !data[i..].starts_with(b"eyJ") {
        return;
    }
    const MIN: [usize; 3] = [15, 8, 16];
    let mut j = i;
    for (seg, min) in MIN.into_iter().enumerate() {
        if seg > 0 {
            if at(data, j) != b'.' {
                return;
            }
            j += 1;
        }
        let e = token_run(data, j);
        if e - j < min {
            return;
        }
        j = e;
    }
    // JWE compact serialisation has five segments.
    for _ in 0..2 {
        if at(data, j) == b'.' && is_token_byte(at(data, j + 1)) {
            j = token_run(data, j + 1);
        }
    }
    out.push(finding(Kind::Jwt, i, j));
}

// ------------------------------------------------------------- API tokens

/// How the body after a token prefix is checked.
struct TokenRule {
    prefix: &'static [u8],
    min: usize,
    /// `_` and `-` allowed in the body (otherwise alphanumeric only).
    punct: bool,
}

const fn rule(prefix: &'static [u8], min: usize, punct: bool) -> TokenRule {
    TokenRule { prefix, min, punct }
}

/// Longer prefixes first so that `sk-ant-` is tried before `sk-`.
const TOKEN_RULES: [TokenRule; 16] = [
    rule(b"github_pat_", 40, true),
    rule(b"sk_live_", 20, false),
    rule(b"rk_live_", 20, false),
    rule(b"sk-ant-", 32, true),
    rule(b"glpat-", 20, true),
    rule(b"xoxb-", 20, true),
    rule(b"xoxp-", 20, true),
    rule(b"xoxa-", 20, true),
    rule(b"xoxr-", 20, true),
    rule(b"ghp_", 30, false),
    rule(b"gho_", 30, false),
    rule(b"ghu_", 30, false),
    rule(b"ghs_", 30, false),
    rule(b"ghr_", 30, false),
    rule(b"npm_", 30, false),
    rule(b"sk-", 20, true),
];

/// Random-looking: has a digit, or both upper- and lower-case letters.
fn looks_random(body: &[u8]) -> bool {
    body.iter().any(u8::is_ascii_digit)
        || (body.iter().any(u8::is_ascii_uppercase) && body.iter().any(u8::is_ascii_lowercase))
}

pub(super) fn prefixed_token(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    let rest = &data[i..];
    let Some(r) = TOKEN_RULES.iter().find(|r| rest.starts_with(r.prefix)) else {
        return;
    };
    let bs = i + r.prefix.len();
    let mut j = bs;
    while at(data, j).is_ascii_alphanumeric() || (r.punct && is_token_byte(at(data, j))) {
        j += 1;
    }
    let body = &data[bs..j];
    if body.len() >= r.min && !is_token_byte(at(data, j)) && looks_random(body) {
        out.push(finding(Kind::ApiToken, i, j));
    }
}

/// Google API key: `AIza` and 35 more token bytes, 39 in all.
pub(super) fn google(data: &[u8], i: usize, out: &mut Vec<Finding>) {
    if data[i..].starts_with(b"AIza")
        && token_run(data, i) == i + 39
        && looks_random(&data[i + 4..i + 39])
    {
        out.push(finding(Kind::ApiToken, i, i + 39));
    }
}

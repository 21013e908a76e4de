//! Pages of a listing and their opaque cursors: `next_page` is a short,
//! printable token that only this server makes; a token it did not make is a
//! client error, never a panic or a silently empty page.

use crate::error::{OpError, OpResult};

/// One page of results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass back as `page` for the next page; `None` on the last.
    pub next_page: Option<String>,
}

/// Encodes cursor fields (`kind` names the listing, so a cursor from one
/// listing is refused by another).
pub fn encode(kind: &str, fields: &[&str]) -> String {
    let mut raw = String::from(kind);
    for f in fields {
        raw.push('\u{1f}');
        raw.push_str(f);
    }
    let mut out = String::with_capacity(raw.len() * 2 + 3);
    out.push_str("pg_");
    for b in raw.as_bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Decodes a cursor of listing `kind` into its fields.
pub fn decode(kind: &str, token: &str) -> OpResult<Vec<String>> {
    let bad = || OpError::Invalid(format!("invalid page cursor '{}'", clip(token)));
    let hex = token.strip_prefix("pg_").ok_or_else(bad)?;
    if !hex.len().is_multiple_of(2) || hex.len() > 8192 {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    let raw = String::from_utf8(bytes.ok_or_else(bad)?).map_err(|_| bad())?;
    let mut parts = raw.split('\u{1f}');
    if parts.next() != Some(kind) {
        return Err(bad());
    }
    Ok(parts.map(str::to_string).collect())
}

/// A client's text cut for an error message.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Checks a page size: `limit` (default `default`), 1 to `max`.
pub fn limit(limit: Option<i64>, default: usize, max: usize) -> OpResult<usize> {
    match limit {
        None => Ok(default),
        Some(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(OpError::Invalid(format!(
            "limit must be between 1 and {max}, not {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let t = encode("mem", &["/a/b.md", "x"]);
        assert_eq!(decode("mem", &t).unwrap(), vec!["/a/b.md", "x"]);
        assert!(decode("ver", &t).is_err());
        for bad in ["", "pg_", "pg_zz", "pg_6", "2", "pg_ff"] {
            assert!(decode("mem", bad).is_err(), "{bad}");
        }
        assert_eq!(limit(None, 20, 100).unwrap(), 20);
        assert!(limit(Some(0), 20, 100).is_err());
        assert!(limit(Some(101), 20, 100).is_err());
        assert!(limit(Some(-5), 20, 100).is_err());
    }
}

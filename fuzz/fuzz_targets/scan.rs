//! What a commit runs on file content an agent wrote: `scan::pii::scan`
//! and `redact` ("never panics, linear in the input") and
//! `scan::validate::validate` for JSON, JSONL, TOML and YAML (one-line errors,
//! no stack overflow on deep nesting).
//!
//! Input: the file content. The whole input is scanned and validated in
//! every format.

#![no_main]

use libfuzzer_sys::fuzz_target;
use memfs::scan::pii::{kinds, redact, scan, Kind};
use memfs::scan::validate::{validate, Format};

fuzz_target!(|data: &[u8]| {
    pii(data);
    for f in [Format::Json, Format::Jsonl, Format::Toml, Format::Yaml] {
        assert_eq!(Format::parse(f.as_str()), Some(f));
        if let Err(msg) = validate(f, data) {
            let label = match f {
                Format::Json => "JSON",
                Format::Jsonl => "JSONL",
                Format::Toml => "TOML",
                Format::Yaml => "YAML",
            };
            assert!(msg.starts_with(&format!("invalid {label}")), "{msg}");
            assert!(!msg.contains('\n'), "error message on more than one line: {msg:?}");
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Format::parse(s);
        if let Some(k) = Kind::parse(s) {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }
});

/// Findings are in bounds, sorted and disjoint; redacting replaces exactly
/// their bytes.
fn pii(data: &[u8]) {
    let found = scan(data);
    let mut last_end = 0;
    for f in &found {
        assert!(f.start < f.end && f.end <= data.len(), "{f:?} in {} bytes", data.len());
        assert!(f.start >= last_end, "overlapping or unsorted: {found:?}");
        assert_eq!(Kind::parse(f.kind.as_str()), Some(f.kind));
        last_end = f.end;
    }
    let k = kinds(&found);
    assert!(k.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(k.len(), {
        let mut all: Vec<Kind> = found.iter().map(|f| f.kind).collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    });
    let out = redact(data, &found);
    let removed: usize = found.iter().map(|f| f.end - f.start).sum();
    let added: usize = found.iter().map(|f| "[REDACTED:]".len() + f.kind.as_str().len()).sum();
    assert_eq!(out.len(), data.len() - removed + added);
    if found.is_empty() {
        assert_eq!(out, data);
    } else {
        // The bytes between findings are kept, in order.
        assert_eq!(&out[..found[0].start], &data[..found[0].start]);
        let tail = data.len() - found[found.len() - 1].end;
        assert_eq!(&out[out.len() - tail..], &data[data.len() - tail..]);
    }
}

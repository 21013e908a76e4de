//! `memfsctl history`, `memfsctl cat` and `memfsctl diff`: reading a file's past.

use super::Ctx;
use crate::history::{find_file, head_versions, version_at};
use crate::ids::{now_ns, Ino, VersionId};
use crate::store::{StoreRow, VersionRow};
use crate::timefmt::{parse_time, rfc3339};
use anyhow::{anyhow, bail, Result};
use std::io::Write;

/// Resolves `STORE/PATH` to the store and the file (now, or last seen there).
fn locate(ctx: &Ctx, spec: &str) -> Result<(StoreRow, String, Ino)> {
    let (store, path) = spec.split_once('/').unwrap_or((spec, ""));
    let path = path.trim_matches('/').to_string();
    if path.is_empty() {
        bail!("give a file as STORE/PATH, not just a store");
    }
    let row = match ctx.db.read(|tx| tx.store_by_name(store))? {
        Some(r) => r,
        None => bail!("no store named '{store}'"),
    };
    match ctx.db.read(|tx| find_file(tx, &row, &path))? {
        Some(ino) => Ok((row, path, ino)),
        None => bail!("no file '{path}' in store '{store}', now or in its history"),
    }
}

#[derive(serde::Serialize)]
struct VersionView<'a> {
    #[serde(flatten)]
    v: &'a VersionRow,
    at: String,
    store: &'a str,
}

pub fn history(ctx: &Ctx, spec: &str) -> Result<()> {
    let (store, _, ino) = locate(ctx, spec)?;
    let mut versions = ctx.db.read(|tx| tx.versions_of(ino))?;
    versions.reverse();
    let views: Vec<VersionView<'_>> = versions
        .iter()
        .map(|v| VersionView {
            v,
            at: rfc3339(v.at_ns),
            store: &store.name,
        })
        .collect();
    ctx.emit(&views, || {
        let mut out = format!(
            "{:>7} {:<24} {:>10} {:<16} {:<9} {:<24} AGENT / SESSION / USER\n",
            "VERSION", "TIME", "SIZE", "HASH", "OP", "PATH"
        );
        for v in &views {
            out.push_str(&format!(
                "{:>7} {:<24} {:>10} {:<16} {:<9} {:<24} {} / {} / {}\n",
                v.v.id.0,
                v.at,
                v.v.size,
                if v.v.hash.is_empty() {
                    "(redacted)"
                } else {
                    &v.v.hash[..16.min(v.v.hash.len())]
                },
                v.v.op,
                v.v.path,
                v.v.agent,
                v.v.session,
                v.v.user.as_deref().unwrap_or("-")
            ));
        }
        if views.is_empty() {
            out.push_str("(no content versions: the file was never written)\n");
        }
        out
    })
}

/// The version `--version V` or `--at TIME` picks (default: the head).
fn pick(ctx: &Ctx, ino: Ino, version: Option<i64>, at: Option<&str>) -> Result<Option<VersionRow>> {
    match (version, at) {
        (Some(_), Some(_)) => bail!("give --version or --at, not both"),
        (Some(v), None) => {
            let row = ctx
                .db
                .read(|tx| tx.version(VersionId(v)))
                .map_err(|_| anyhow!("no version {v}"))?;
            if row.ino != ino {
                bail!("version {v} belongs to another file ({})", row.path);
            }
            Ok(Some(row))
        }
        (None, Some(t)) => {
            let at = parse_time(t, now_ns()).map_err(|e| anyhow!(e))?;
            Ok(ctx.db.read(|tx| version_at(tx, ino, at))?)
        }
        (None, None) => Ok(ctx.db.read(|tx| head_versions(tx, ino))?.pop()),
    }
}

/// A version's whole content.
pub fn content(ctx: &Ctx, v: Option<&VersionRow>) -> Result<Vec<u8>> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    Ok(ctx.db.read(|tx| {
        let ext = tx.extents(v.id)?;
        tx.read_extents(&ext, 0, ext.size())
    })?)
}

pub fn cat(ctx: &Ctx, spec: &str, version: Option<i64>, at: Option<&str>) -> Result<()> {
    let (_, _, ino) = locate(ctx, spec)?;
    let v = pick(ctx, ino, version, at)?;
    if v.is_none() && at.is_some() {
        bail!("{spec} had no content at {}", at.unwrap_or_default());
    }
    let data = content(ctx, v.as_ref())?;
    let mut out = std::io::stdout().lock();
    out.write_all(&data)?;
    out.flush()?;
    Ok(())
}

fn is_binary(b: &[u8]) -> bool {
    b.contains(&0) || std::str::from_utf8(b).is_err()
}

/// A unified diff of two texts, or a one-line note for binary content.
pub fn unified(a: &[u8], b: &[u8], a_name: &str, b_name: &str) -> String {
    if a == b {
        return String::new();
    }
    if is_binary(a) || is_binary(b) {
        return format!("Binary files {a_name} and {b_name} differ\n");
    }
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    similar::TextDiff::from_lines(a.as_ref(), b.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(a_name, b_name)
        .to_string()
}

pub fn diff(ctx: &Ctx, spec: &str, v1: i64, v2: Option<i64>) -> Result<()> {
    let (_, _, ino) = locate(ctx, spec)?;
    let a = pick(ctx, ino, Some(v1), None)?;
    let b = match v2 {
        Some(v) => pick(ctx, ino, Some(v), None)?,
        None => pick(ctx, ino, None, None)?,
    };
    let name = |v: &Option<VersionRow>| {
        v.as_ref().map_or_else(
            || format!("{spec} (empty)"),
            |v| format!("{spec}@v{}", v.id.0),
        )
    };
    let (an, bn) = (name(&a), name(&b));
    let (ad, bd) = (content(ctx, a.as_ref())?, content(ctx, b.as_ref())?);
    let text = unified(&ad, &bd, &an, &bn);
    ctx.emit(
        &serde_json::json!({
            "from": a.as_ref().map(|v| v.id.0), "to": b.as_ref().map(|v| v.id.0),
            "same": ad == bd, "binary": is_binary(&ad) || is_binary(&bd), "diff": text
        }),
        || text.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diffs_and_binary_notes() {
        let d = unified(b"a\nb\nc\n", b"a\nB\nc\n", "x@v1", "x@v2");
        assert!(d.contains("--- x@v1") && d.contains("+++ x@v2"), "{d}");
        assert!(d.contains("-b\n") && d.contains("+B\n"), "{d}");
        assert_eq!(unified(b"same", b"same", "a", "b"), "");
        assert_eq!(
            unified(b"\0\x01", b"\0\x02", "a", "b"),
            "Binary files a and b differ\n"
        );
    }
}

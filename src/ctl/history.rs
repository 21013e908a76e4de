//! `memfsctl history`, `memfsctl cat` and `memfsctl diff`: a file's past,
//! rendered.

use super::{file_spec, Ctx};
use crate::ids::VersionId;
use crate::ops::history::Pick;
use anyhow::{bail, Result};
use std::io::Write;

pub fn history(ctx: &Ctx, spec: &str) -> Result<()> {
    let (store, path) = file_spec(spec)?;
    let h = ctx.ops.file_history(&ctx.p, store, path)?;
    ctx.emit(&h.versions, || {
        let mut out = format!(
            "{:>7} {:<24} {:>10} {:<16} {:<9} {:<24} AGENT / SESSION / USER\n",
            "VERSION", "TIME", "SIZE", "HASH", "OP", "PATH"
        );
        for e in &h.versions {
            let v = &e.version;
            out.push_str(&format!(
                "{:>7} {:<24} {:>10} {:<16} {:<9} {:<24} {} / {} / {}\n",
                v.id.0,
                e.at,
                v.size,
                if v.hash.is_empty() {
                    "(redacted)"
                } else {
                    &v.hash[..16.min(v.hash.len())]
                },
                v.op,
                v.path,
                v.agent,
                v.session,
                v.user.as_deref().unwrap_or("-")
            ));
        }
        if h.versions.is_empty() {
            out.push_str("(no content versions: the file was never written)\n");
        }
        out
    })
}

pub fn cat(ctx: &Ctx, spec: &str, version: Option<i64>, at: Option<&str>) -> Result<()> {
    let (store, path) = file_spec(spec)?;
    let pick = match (version, at) {
        (Some(_), Some(_)) => bail!("give --version or --at, not both"),
        (Some(v), None) => Pick::Version(VersionId(v)),
        (None, Some(t)) => Pick::At(t.to_string()),
        (None, None) => Pick::Head,
    };
    let c = ctx.ops.file_content(&ctx.p, store, path, &pick)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&c.data)?;
    out.flush()?;
    Ok(())
}

pub fn diff(ctx: &Ctx, spec: &str, v1: i64, v2: Option<i64>) -> Result<()> {
    let (store, path) = file_spec(spec)?;
    let d = ctx
        .ops
        .diff(&ctx.p, store, path, VersionId(v1), v2.map(VersionId))?;
    ctx.emit(&d, || d.diff.clone())
}

//! `memfsctl export STORE -o FILE [--history]` and `memfsctl export STORE --git DIR`.

use super::Ctx;
use crate::interchange::progress::Progress;
use anyhow::{bail, Context, Result};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

pub fn run(
    ctx: &Ctx,
    store: &str,
    output: Option<&Path>,
    history: bool,
    git: Option<&Path>,
) -> Result<()> {
    let started = Instant::now();
    let mut progress = Progress::new("export");
    if let Some(dir) = git {
        let done = ctx.ops.export_git(&ctx.p, store, dir, &mut progress)?;
        progress.finish();
        return ctx.emit(&done, || {
            format!(
                "exported '{store}' to git repository {}: {} commits from {} audit entries{}",
                done.dir,
                done.commits,
                done.audit_entries,
                if done.head_fixup {
                    " (plus a final commit setting the tree to the head)"
                } else {
                    ""
                }
            )
        });
    }
    let Some(output) = output else {
        bail!("give -o FILE (or --git DIR)");
    };
    if output == Path::new("-") {
        let out = BufWriter::new(std::io::stdout().lock());
        let (_, mut out) = ctx
            .ops
            .export_archive(&ctx.p, store, history, out, &mut progress)?;
        out.flush()?;
        progress.finish();
        return Ok(());
    }
    // Written beside the target and renamed into place: a failed export leaves
    // no partial archive behind.
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let out = BufWriter::new(tmp.as_file().try_clone()?);
    let (manifest, out) = ctx
        .ops
        .export_archive(&ctx.p, store, history, out, &mut progress)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    tmp.persist(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    progress.finish();
    let bytes = std::fs::metadata(output)?.len();
    let secs = started.elapsed().as_secs_f64();
    ctx.emit(
        &serde_json::json!({
            "store": store, "file": output.display().to_string(), "archive_bytes": bytes,
            "history": history, "counts": manifest.counts, "seconds": secs,
        }),
        || {
            let c = &manifest.counts;
            format!(
                "exported '{store}' to {}: {} paths ({} files, {} bytes){}, archive {} bytes, {secs:.2}s",
                output.display(),
                c.paths,
                c.files,
                c.bytes,
                if history {
                    format!(", {} versions, {} audit entries", c.versions, c.audit_entries)
                } else {
                    String::new()
                },
                bytes
            )
        },
    )
}

//! `memfsctl import FILE [--as NAME]`: an archive from `memfsctl export` becomes
//! a new store, all or nothing.

use super::Ctx;
use crate::interchange::progress::Progress;
use anyhow::{Context, Result};
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

pub fn run(ctx: &Ctx, file: &Path, as_name: Option<&str>) -> Result<()> {
    let started = Instant::now();
    let mut progress = Progress::new("import");
    let input: Box<dyn std::io::Read> = if file == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    let done = ctx
        .ops
        .import_archive(&ctx.p, &ctx.config, input, as_name, &mut progress)
        .with_context(|| format!("importing {} (nothing was imported)", file.display()))?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    ctx.emit(&done, || {
        format!(
            "imported '{}' as store '{}': {} paths, {} versions, {} audit entries, {} content bytes{}, {secs:.2}s",
            done.from_store,
            done.store,
            done.paths,
            done.versions,
            done.audit_entries,
            done.content_bytes,
            if done.history { "" } else { " (head only)" }
        )
    })
}

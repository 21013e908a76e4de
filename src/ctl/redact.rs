//! `memfsctl redact VERSION` and `memfsctl scrub`: removing one version's
//! content, and cleaning the database files of removed bytes.

use super::Ctx;
use crate::ids::VersionId;
use crate::ops::removal::scrub_problem;
use crate::store::Scrub;
use anyhow::{bail, Result};

pub fn redact(ctx: &Ctx, version: i64) -> Result<()> {
    let done = ctx.ops.redact(&ctx.p, VersionId(version))?;
    let r = &done.removal;
    ctx.emit(&done, || {
        format!(
            "redacted version {version}: {} version(s) rewritten flat, {} chunk(s) deleted, \
             {} audit entr(ies) sealed",
            r.materialized, r.chunks_deleted, r.entries_sealed
        )
    })?;
    check_scrub(&done.scrub)
}

/// `memfsctl scrub`: checkpoint, truncate the WAL and vacuum (after a removal
/// that could not clean the WAL because daemons were reading).
pub fn scrub(ctx: &Ctx) -> Result<()> {
    let scrub = ctx.ops.scrub(&ctx.p)?;
    ctx.emit(&scrub, || {
        if let Some(note) = &scrub.note {
            format!("tables vacuumed. {note}")
        } else if scrub.wal_clean {
            "database vacuumed, WAL checkpointed and truncated".to_string()
        } else {
            String::new()
        }
    })?;
    check_scrub(&scrub)
}

/// Fails, saying what is left and what to do, when the files are not clean.
pub(super) fn check_scrub(scrub: &Scrub) -> Result<()> {
    if let Some(note) = &scrub.note {
        eprintln!("memfsctl: note: {note}");
    }
    match scrub_problem(scrub) {
        Some(problem) => bail!("{problem}"),
        None => Ok(()),
    }
}

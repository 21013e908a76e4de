//! `memfsctl redact VERSION` and `memfsctl scrub`: removing one version's
//! content, and cleaning the database files of removed bytes.

use super::Ctx;
use crate::ids::{now_ns, VersionId};
use crate::store::Scrub;
use anyhow::{bail, Result};
use std::time::Duration;

/// How long to retry a WAL checkpoint that running daemons block.
const PATIENCE: Duration = Duration::from_secs(10);

pub fn redact(ctx: &Ctx, version: i64) -> Result<()> {
    ctx.db.set_secure_delete(true)?;
    let removal = ctx
        .db
        .write(|tx| tx.redact_version(VersionId(version), &ctx.who, now_ns()))?;
    let scrub = scrub_files(ctx)?;
    ctx.emit(
        &serde_json::json!({"redacted": version, "removal": removal, "scrub": scrub}),
        || {
            format!(
                "redacted version {version}: {} version(s) rewritten flat, {} chunk(s) deleted, \
                 {} audit entr(ies) sealed",
                removal.materialized, removal.chunks_deleted, removal.entries_sealed
            )
        },
    )?;
    check_scrub(&scrub)
}

/// `memfsctl scrub`: checkpoint, truncate the WAL and vacuum (after a removal
/// that could not clean the WAL because daemons were reading).
pub fn scrub(ctx: &Ctx) -> Result<()> {
    let scrub = scrub_files(ctx)?;
    ctx.emit(&scrub, || {
        if scrub.wal_clean {
            "database vacuumed, WAL checkpointed and truncated".to_string()
        } else {
            String::new()
        }
    })?;
    check_scrub(&scrub)
}

/// Runs the file cleanup after a removal.
pub(super) fn scrub_files(ctx: &Ctx) -> Result<Scrub> {
    Ok(ctx.db.scrub_files(PATIENCE)?)
}

/// Fails, saying what is left and what to do, when the WAL could not be emptied.
pub(super) fn check_scrub(scrub: &Scrub) -> Result<()> {
    if !scrub.wal_clean {
        bail!(
            "the removal is committed, but the database's WAL file still holds {} frame(s) \
             with old bytes: a running memfs daemon is reading an older snapshot. They are \
             gone once the daemons checkpoint; to be sure now, stop the mounts and run \
             `memfsctl scrub`",
            scrub.wal_frames_left
        );
    }
    if !scrub.vacuumed {
        bail!("the removal is committed, but VACUUM failed: run `memfsctl scrub` again");
    }
    Ok(())
}

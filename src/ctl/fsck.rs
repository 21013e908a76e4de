//! `memfsctl fsck`: checks the database against the format's invariants
//! (see `ops/check.rs`); exits non-zero on any problem.

use super::Ctx;
use anyhow::{bail, Result};

pub fn run(ctx: &Ctx) -> Result<()> {
    let r = ctx.ops.fsck(&ctx.p)?;
    let n = r.problems.len();
    ctx.emit(&r, || {
        let mut out = format!(
            "database: {}\nversions: {} checked ({} of shredded stores skipped)\nfiles: {} checked\naudit: {} entries verified\n",
            r.sqlite, r.versions_checked, r.versions_shredded, r.files_checked, r.audit_entries
        );
        for p in &r.problems {
            out.push_str(&format!("PROBLEM: {p}\n"));
        }
        if n == 0 {
            out.push_str("no problems found\n");
        }
        out
    })?;
    if n > 0 {
        bail!("{n} problem(s) found");
    }
    Ok(())
}

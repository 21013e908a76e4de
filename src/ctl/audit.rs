//! `memfsctl audit verify`: walks the hash chain of the audit log.

use super::Ctx;
use anyhow::{bail, Result};

pub fn verify(ctx: &Ctx) -> Result<()> {
    let check = ctx.ops.verify_audit(&ctx.p)?;
    match (check.first_bad_entry, &check.reason) {
        (Some(id), Some(reason)) => {
            // The JSON goes to stdout for scripts; the error line to stderr.
            if ctx.json {
                println!("{}", serde_json::to_string(&check)?);
            }
            bail!("audit chain broken at entry {id}: {reason}")
        }
        _ => ctx.emit(&check, || {
            format!(
                "audit chain intact: {} entries verified",
                check.entries.unwrap_or(0)
            )
        }),
    }
}

//! `memfsctl audit verify`: walks the hash chain of the audit log.

use super::Ctx;
use anyhow::{bail, Result};

pub fn verify(ctx: &Ctx) -> Result<()> {
    let result = ctx.db.read(|tx| tx.verify_audit())?;
    match result {
        Ok(n) => ctx.emit(&serde_json::json!({"ok": true, "entries": n}), || {
            format!("audit chain intact: {n} entries verified")
        }),
        Err(b) => {
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "first_bad_entry": b.id.0, "reason": b.reason})
                );
            }
            bail!("audit chain broken at entry {}: {}", b.id.0, b.reason)
        }
    }
}

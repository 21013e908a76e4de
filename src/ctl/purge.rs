//! `memfsctl purge STORE/PATH [--yes]`: removes every version of one file and the
//! file itself; without `--yes` it only shows what would go.

use super::redact::check_scrub;
use super::{file_spec, Ctx};
use anyhow::{bail, Result};

pub fn run(ctx: &Ctx, spec: &str, yes: bool) -> Result<()> {
    let (store, path) = file_spec(spec)?;
    if !yes {
        let plan = ctx.ops.purge_plan(&ctx.p, store, path)?;
        let json = serde_json::json!({
            "store": plan.store, "path": plan.path, "ino": plan.ino,
            "versions": plan.versions.len(), "names": plan.names, "purged": false,
        });
        ctx.emit(&json, || {
            let mut out = format!(
                "would purge {}/{} (inode {}): {} version(s), {} name(s) removed from the \
                 namespace, its audit entries sealed\n",
                plan.store,
                plan.path,
                plan.ino,
                plan.versions.len(),
                plan.names
            );
            for v in &plan.versions {
                out.push_str(&format!(
                    "  version {} {} by {} / {} / {}\n",
                    v.id,
                    crate::timefmt::rfc3339(v.at_ns),
                    v.agent,
                    v.session,
                    v.user.as_deref().unwrap_or("-")
                ));
            }
            out
        })?;
        bail!("nothing purged: add --yes to remove this content for good");
    }
    let done = ctx.ops.purge(&ctx.p, store, path)?;
    let r = &done.removal;
    ctx.emit(
        &serde_json::json!({
            "store": done.store, "ino": done.ino, "purged": true,
            "removal": r, "scrub": done.scrub,
        }),
        || {
            format!(
                "purged {}/{}: {} version(s) emptied, {} name(s) removed, {} chunk(s) \
                 deleted, {} audit entr(ies) sealed",
                done.store,
                done.path,
                r.versions.len(),
                r.names_removed,
                r.chunks_deleted,
                r.entries_sealed
            )
        },
    )?;
    check_scrub(&done.scrub)
}

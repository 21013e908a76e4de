//! `memfsctl purge STORE/PATH [--yes]`: removes every version of one file and the
//! file itself; without `--yes` it only shows what would go.

use super::redact::{check_scrub, scrub_files};
use super::Ctx;
use crate::history::find_file;
use crate::ids::now_ns;
use anyhow::{bail, Result};

pub fn run(ctx: &Ctx, spec: &str, yes: bool) -> Result<()> {
    let (store, path) = spec.split_once('/').unwrap_or((spec, ""));
    let path = path.trim_matches('/');
    if path.is_empty() {
        bail!("give a file as STORE/PATH, not just a store");
    }
    let Some(row) = ctx.db.read(|tx| tx.store_by_name(store))? else {
        bail!("no store named '{store}'");
    };
    let Some(ino) = ctx.db.read(|tx| find_file(tx, &row, path))? else {
        bail!("no file '{path}' in store '{store}', now or in its history");
    };
    let (versions, names, live) = ctx.db.read(|tx| {
        let versions = tx.versions_of(ino)?;
        let names = tx.entries_of(ino)?.len();
        Ok::<_, crate::error::StoreError>((versions, names, tx.inode(ino)?))
    })?;
    if live.is_none() {
        bail!("no file '{path}' in store '{store}'");
    }
    if !yes {
        let plan = serde_json::json!({
            "store": store, "path": path, "ino": ino, "versions": versions.len(),
            "names": names, "purged": false,
        });
        ctx.emit(&plan, || {
            let mut out = format!(
                "would purge {store}/{path} (inode {ino}): {} version(s), {names} name(s) \
                 removed from the namespace, its audit entries sealed\n",
                versions.len()
            );
            for v in &versions {
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
    ctx.db.set_secure_delete(true)?;
    let removal = ctx
        .db
        .write(|tx| tx.purge_file(&row, ino, &ctx.who, now_ns()))?;
    let scrub = scrub_files(ctx)?;
    ctx.emit(
        &serde_json::json!({"store": store, "ino": ino, "purged": true, "removal": removal, "scrub": scrub}),
        || {
            format!(
                "purged {store}/{path}: {} version(s) emptied, {} name(s) removed, {} chunk(s) \
                 deleted, {} audit entr(ies) sealed",
                removal.versions.len(),
                removal.names_removed,
                removal.chunks_deleted,
                removal.entries_sealed
            )
        },
    )?;
    check_scrub(&scrub)
}

//! `memfsctl migrate-db --to URL_OR_PATH`: moves the whole database (every
//! store with its history, the audit chains, keys, settings and API keys) to
//! another engine or place, ids kept, then checks the copy (`audit verify`
//! and `fsck`'s hash and link checks run on the target).

use crate::config::Config;
use crate::store::{transfer, Db};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;

pub fn migrate(config: &Config, to: &Path, force: bool, json: bool) -> Result<()> {
    let src = crate::daemon::open_db(config, false)?;
    let live = transfer::live_holders(&src)?;
    if live > 0 && !force {
        bail!(
            "{live} mount(s) or server(s) running dreams are live on {}: stop them first \
             (their changes after the copy would be lost), or give --force",
            src.location()
        );
    }
    let dst = Db::open(to).with_context(|| format!("cannot open {}", to.display()))?;
    let start = Instant::now();
    let moved = transfer::copy_all(&src, &dst, &mut |table, n| {
        if !json && n > 0 && n % 10_000 == 0 {
            eprintln!("  {table}: {n} rows");
        }
    })
    .with_context(|| format!("cannot copy into {}", dst.location()))?;
    let verified = dst.read(|tx| tx.verify_audit())?.map_err(|b| {
        anyhow::anyhow!(
            "the copy's audit chain breaks at entry {}: {}",
            b.id,
            b.reason
        )
    })?;
    let secs = start.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "from": src.location(), "to": dst.location(), "rows": moved.rows,
                "tables": moved.tables, "audit_entries_verified": verified, "seconds": secs,
            })
        );
    } else {
        println!(
            "moved {} rows from {} to {} in {secs:.1} s; the copy's audit chains verify ({verified} entries)",
            moved.rows,
            src.location(),
            dst.location()
        );
        for (t, n) in &moved.tables {
            println!("  {t:<12} {n}");
        }
        println!(
            "point memfs at it with --db / MEMFS_DB / database = \"{}\"",
            to.display()
        );
    }
    Ok(())
}

//! `memfsctl gc [--dry-run] [--vacuum] [--store NAME]`: applies the stores'
//! retention rules (`[stores.retention]` in memfs.toml) now.

use super::Ctx;
use crate::gc::{self, GcOptions, GcReport, Vacuum};
use crate::retention::Retention;
use anyhow::{bail, Result};
use std::time::Duration;

/// What `memfsctl gc` was asked.
pub struct GcArgs {
    pub dry_run: bool,
    /// A full VACUUM afterwards (switches an older database to incremental).
    pub vacuum: bool,
    /// Only these stores (default: every store with retention settings).
    pub stores: Vec<String>,
}

pub fn run(ctx: &Ctx, args: &GcArgs) -> Result<()> {
    let mut rules = crate::settings::retention_rules(ctx.ops.db())?;
    if !args.stores.is_empty() {
        for name in &args.stores {
            if ctx.ops.db().read(|tx| tx.store_by_name(name))?.is_none() {
                bail!("no store named '{name}'");
            }
        }
        rules = args
            .stores
            .iter()
            .map(|name| {
                let r = rules
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(Retention::default(), |(_, r)| *r);
                (name.clone(), r)
            })
            .collect();
    }
    let ttl = Duration::try_from_secs_f64(ctx.config.daemon.lease_ttl_secs.max(0.0))
        .unwrap_or(Duration::from_secs(30));
    let opts = GcOptions {
        dry_run: args.dry_run,
        vacuum: if args.vacuum {
            Vacuum::Full
        } else {
            Vacuum::Incremental
        },
        progress: !ctx.json,
        ..GcOptions::new(ctx.p.who.clone(), ttl)
    };
    let report = gc::collect(ctx.ops.db(), &rules, &opts)?;
    ctx.emit(&report, || human(&report, rules.is_empty()))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn human(r: &GcReport, nothing_configured: bool) -> String {
    if nothing_configured {
        return "no store has retention rules ([stores.retention] keep_days / keep_versions \
                in memfs.toml); nothing to do"
            .into();
    }
    let mut out = format!(
        "{:<20} {:<44} {:>6} {:>9} {:>8} {:>8} {:>10}\n",
        "STORE",
        "RULES",
        "FILES",
        "VERSIONS",
        if r.dry_run { "WOULD GO" } else { "EXPIRED" },
        "REMOVED",
        "FREED"
    );
    for s in &r.stores {
        let rules = match s.action {
            "collected" => s.rules.describe(),
            other => other.to_string(),
        };
        out.push_str(&format!(
            "{:<20} {:<44} {:>6} {:>9} {:>8} {:>8} {:>10}\n",
            s.store,
            rules,
            s.files,
            s.versions,
            s.expired,
            s.removed,
            mib(if r.dry_run {
                s.expired_bytes
            } else {
                s.chunk_bytes_freed
            })
        ));
    }
    if r.dry_run {
        out.push_str(
            "dry run: nothing was changed (WOULD GO counts file bytes before deduplication)\n",
        );
    } else {
        out.push_str(&format!(
            "database: {} -> {} (file), WAL {}; {} page(s) given back; auto_vacuum {}\n",
            mib(r.before.file_bytes),
            mib(r.after.file_bytes),
            mib(r.after.wal_bytes),
            r.pages_vacuumed,
            r.after.auto_vacuum
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

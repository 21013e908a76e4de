//! Garbage collection of history: applies each store's retention rules
//! ([`crate::retention`]), removes expired versions in short transactions (one
//! collector at a time, under the `gc` maintenance lease), then gives the freed
//! pages back to the filesystem. Called by `memfsctl gc`, by a mount daemon's
//! background thread, and by anything else holding a [`Db`] (`memfs serve`).

use crate::error::StoreError;
use crate::ids::{now_ns, Identity, VersionId};
use crate::interchange::progress::Progress;
use crate::retention::{expired, Clock, Retention, RetentionError};
use crate::store::{Db, MaintenanceHolder, Removal, Space};
use std::time::Duration;

/// The maintenance lease gc holds while it removes anything.
pub const LEASE: &str = "gc";
/// How long the lease lasts without renewal (renewed with every batch).
const LEASE_TTL: Duration = Duration::from_secs(120);
/// Pages given back per vacuum transaction (8 MiB at 4 KiB pages): each step
/// holds the write lock only briefly.
const VACUUM_STEP: u64 = 2048;

/// How to run a pass.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Plan and report only; change nothing.
    pub dry_run: bool,
    /// Versions removed per transaction.
    pub batch: usize,
    /// Versions replaced less than this long ago stay (mounts publish their
    /// pins every third of a lease TTL; 3 TTLs covers a late renewal).
    pub grace: Duration,
    /// How to give freed pages back.
    pub vacuum: Vacuum,
    /// Who the `gc` audit entries are attributed to.
    pub who: Identity,
    /// Draw progress on stderr when it is a terminal (not in a daemon).
    pub progress: bool,
}

impl GcOptions {
    /// The defaults for a daemon or tool whose lease TTL is `lease_ttl`.
    pub fn new(who: Identity, lease_ttl: Duration) -> GcOptions {
        GcOptions {
            dry_run: false,
            batch: 500,
            grace: lease_ttl.saturating_mul(3),
            vacuum: Vacuum::Incremental,
            who,
            progress: false,
        }
    }
}

/// How freed pages go back to the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vacuum {
    /// Leave them free inside the file (later writes reuse them).
    None,
    /// `PRAGMA incremental_vacuum` in small steps (databases created in
    /// incremental auto-vacuum mode; others are reported).
    Incremental,
    /// A full VACUUM that also switches the database to incremental mode.
    /// Rewrites the file and makes writers wait: for a maintenance window.
    Full,
}

/// What a pass did (or, dry, would do) to one store.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreGc {
    pub store: String,
    pub rules: Retention,
    /// `collected`, `legal hold`, `no rules` or `no such store`.
    pub action: &'static str,
    pub files: u64,
    pub versions: u64,
    /// Versions the rules expire (removed unless dry).
    pub expired: u64,
    /// Their total size (file bytes, before deduplication).
    pub expired_bytes: u64,
    /// What was removed (zero when dry).
    pub removed: u64,
    pub materialized: u64,
    pub chunks_deleted: u64,
    pub chunk_bytes_freed: u64,
    pub entries_sealed: u64,
}

/// What a pass did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub stores: Vec<StoreGc>,
    pub before: Space,
    pub after: Space,
    /// Pages given back to the filesystem.
    pub pages_vacuumed: u64,
    pub vacuum: Vacuum,
    /// Something the operator should know (the file cannot shrink, ...).
    pub notes: Vec<String>,
}

impl GcReport {
    /// Versions removed over all stores.
    pub fn removed(&self) -> u64 {
        self.stores.iter().map(|s| s.removed).sum()
    }
}

/// Errors of a gc pass.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("retention of store '{store}': {source}")]
    Rules {
        store: String,
        source: RetentionError,
    },
    #[error(
        "another gc is running (pid {}, lease {}); try again when it is done",
        .0.pid, .0.holder
    )]
    Busy(MaintenanceHolder),
    #[error(
        "gc lost its lease (a batch outlived it); what was removed is committed, run gc again"
    )]
    LeaseLost,
}

/// Runs one pass over `stores` (name and rules; stores without rules are
/// reported and left alone).
pub fn collect(
    db: &Db,
    stores: &[(String, Retention)],
    opts: &GcOptions,
) -> Result<GcReport, GcError> {
    for (name, rules) in stores {
        rules.validate().map_err(|source| GcError::Rules {
            store: name.clone(),
            source,
        })?;
    }
    let before = db.space()?;
    let mut report = GcReport {
        dry_run: opts.dry_run,
        stores: Vec::new(),
        before: before.clone(),
        after: before,
        pages_vacuumed: 0,
        vacuum: opts.vacuum,
        notes: Vec::new(),
    };
    if opts.dry_run {
        for (name, rules) in stores {
            report.stores.push(plan_store(db, name, rules, opts, None)?);
        }
        return Ok(report);
    }
    let holder = format!("gc-{}-{:x}", std::process::id(), now_ns());
    let ttl = i64::try_from(LEASE_TTL.as_nanos()).unwrap_or(i64::MAX);
    db.write(|tx| {
        tx.drop_stale_pins()?;
        tx.take_maintenance(LEASE, &holder, now_ns(), ttl)
    })?
    .map_err(GcError::Busy)?;
    let run = (|| {
        let mut progress = if opts.progress {
            Progress::counting("gc", "versions")
        } else {
            Progress::silent()
        };
        for (name, rules) in stores {
            let s = plan_store(db, name, rules, opts, Some((&holder, &mut progress)))?;
            report.stores.push(s);
        }
        progress.finish();
        give_back(db, opts, &mut report)?;
        Ok::<_, GcError>(())
    })();
    let done = run.is_ok();
    if let Err(e) = db.write(|tx| tx.finish_maintenance(LEASE, &holder, now_ns(), done)) {
        tracing::warn!(error = %e, "cannot release the gc lease; it expires by itself");
    }
    run?;
    report.after = db.space()?;
    crate::metrics::gc_pass(
        report.removed(),
        report.stores.iter().map(|s| s.chunk_bytes_freed).sum(),
    );
    Ok(report)
}

/// Plans one store and, given the lease holder, removes what expired.
fn plan_store(
    db: &Db,
    name: &str,
    rules: &Retention,
    opts: &GcOptions,
    apply: Option<(&str, &mut Progress)>,
) -> Result<StoreGc, GcError> {
    let mut s = StoreGc {
        store: name.to_string(),
        rules: *rules,
        ..Default::default()
    };
    let Some(row) = db.read(|tx| tx.store_by_name(name))? else {
        s.action = "no such store";
        return Ok(s);
    };
    s.action = if rules.legal_hold {
        "legal hold"
    } else if !rules.collects() {
        "no rules"
    } else {
        "collected"
    };
    let now = now_ns();
    let view = db.read(|tx| tx.retention_view(row.id, now))?;
    let clock = Clock {
        now_ns: now,
        grace_ns: i64::try_from(opts.grace.as_nanos()).unwrap_or(i64::MAX),
    };
    // Expired versions, grouped by file so one batch mostly holds whole files
    // (a delta whose base goes in the same batch needs no rewriting).
    let mut batches: Vec<Vec<VersionId>> = vec![Vec::new()];
    for f in &view {
        s.files += 1;
        s.versions += f.versions.len() as u64;
        let gone = expired(rules, &f.versions, f.head, clock);
        for id in &gone {
            if let Some(i) = f.versions.iter().position(|v| v.id == *id) {
                s.expired_bytes += f.sizes[i];
            }
        }
        s.expired += gone.len() as u64;
        for id in gone {
            match batches.last_mut().filter(|b| b.len() < opts.batch.max(1)) {
                Some(b) => b.push(id),
                None => batches.push(vec![id]),
            }
        }
    }
    let Some((holder, progress)) = apply else {
        return Ok(s);
    };
    let ttl = i64::try_from(LEASE_TTL.as_nanos()).unwrap_or(i64::MAX);
    for batch in batches.iter().filter(|b| !b.is_empty()) {
        let removal: Removal = db.write(|tx| {
            let now = now_ns();
            if !tx.renew_maintenance(LEASE, holder, now, ttl)? {
                return Err(GcError::LeaseLost);
            }
            Ok(tx.expire_versions(row.id, batch, rules, &opts.who, now)?)
        })?;
        s.removed += removal.versions.len() as u64;
        s.materialized += removal.materialized;
        s.chunks_deleted += removal.chunks_deleted;
        s.chunk_bytes_freed += removal.chunk_bytes_freed;
        s.entries_sealed += removal.entries_sealed;
        progress.add_many(removal.versions.len() as u64, removal.chunk_bytes_freed);
    }
    Ok(s)
}

/// Gives free pages back to the filesystem as `vacuum` says, and notes what
/// the operator should know.
fn give_back(db: &Db, opts: &GcOptions, report: &mut GcReport) -> Result<(), GcError> {
    let space = db.space()?;
    match opts.vacuum {
        Vacuum::None => {}
        Vacuum::Full => {
            db.vacuum_full()?;
            report.pages_vacuumed = space.freelist_count;
        }
        Vacuum::Incremental if space.auto_vacuum == "incremental" => {
            let mut progress = if opts.progress {
                Progress::counting("vacuum", "steps")
            } else {
                Progress::silent()
            };
            loop {
                let n = db.incremental_vacuum(VACUUM_STEP)?;
                if n == 0 {
                    break;
                }
                report.pages_vacuumed += n;
                progress.add_many(1, n * space.page_size);
            }
            progress.finish();
            if !db.checkpoint_passive()? {
                report.notes.push(
                    "a running mount reads an older snapshot, so the WAL could not be copied \
                     back in full: the file shrinks at a later checkpoint"
                        .into(),
                );
            }
        }
        Vacuum::Incremental => {
            if space.freelist_count > 0 {
                report.notes.push(format!(
                    "this database was created without incremental auto-vacuum: its {} free \
                     pages ({} MiB) are reused by new writes but the file does not shrink; run \
                     `memfsctl gc --vacuum` once, with the mounts stopped, to switch it (one \
                     full rewrite)",
                    space.freelist_count,
                    (space.freelist_count * space.page_size) >> 20
                ));
            }
        }
    }
    Ok(())
}

/// The background pass of a daemon (or `memfs serve`): runs [`collect`] unless
/// no store has rules, or some process finished a pass less than `every` ago,
/// or another one is running. Returns the report of a pass that ran.
pub fn background_pass(
    db: &Db,
    stores: &[(String, Retention)],
    opts: &GcOptions,
    every: Duration,
) -> Result<Option<GcReport>, GcError> {
    if !stores.iter().any(|(_, r)| r.collects()) {
        return Ok(None);
    }
    let every_ns = i64::try_from(every.as_nanos()).unwrap_or(i64::MAX);
    let last = db.read(|tx| tx.maintenance_done_ns(LEASE))?;
    if last.is_some_and(|t| now_ns().saturating_sub(t) < every_ns) {
        return Ok(None);
    }
    match collect(db, stores, opts) {
        Ok(r) => Ok(Some(r)),
        Err(GcError::Busy(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;

//! `memfsctl rollback`: undo by making new changes, never by rewriting history.
//!
//! - `rollback STORE/PATH --to V`: version V's content becomes the head.
//! - `rollback --session S`: every change session S made is undone, newest first:
//!   names it created are removed, names it removed come back, renames go back,
//!   and files it wrote return to their content from before its first write.
//!   A file another session changed afterwards is a conflict, left alone unless
//!   `--force`.
//! - `rollback STORE --at TIME`: every change to the store after TIME is undone.
//!
//! The work goes through the filesystem core (a `MemFs` with every store
//! attached and no kernel), so POSIX rules, leases, the audit log and the change
//! feed apply as for any mount; running mounts see the result at once.

use super::Ctx;
use crate::fs::{Attached, Caller, FsOptions, MemFs, RenameMode, SetAttr};
use crate::history::{entries_after, head_versions, version_at};
use crate::ids::{now_ns, Ino, VersionId};
use crate::store::{AuditEntry, AuditFilter, NodeKind, StoreRow};
use crate::timefmt::parse_time;
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet};

/// What `memfsctl rollback` was asked.
#[derive(Debug, Default)]
pub struct RollbackArgs {
    pub target: Option<String>,
    pub to: Option<i64>,
    pub session: Option<String>,
    pub store: Option<String>,
    pub at: Option<String>,
    pub dry_run: bool,
    pub force: bool,
}

/// One planned (and, unless dry-run, performed) step.
#[derive(Debug, Clone, serde::Serialize)]
struct Step {
    action: &'static str,
    store: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path2: Option<String>,
    /// The audit entry this step undoes (none for content restores).
    #[serde(skip_serializing_if = "Option::is_none")]
    undoes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    /// "done", "dry-run", "unchanged", or why it could not be done.
    outcome: String,
}

/// A file left alone because another session changed it later.
#[derive(Debug, Clone, serde::Serialize)]
struct Conflict {
    store: String,
    path: String,
    later_session: String,
    later_agent: String,
    later_op: String,
    later_entry: i64,
}

#[derive(Default, serde::Serialize)]
struct Report {
    dry_run: bool,
    /// Conflicts were undone anyway (`--force`).
    forced: bool,
    steps: Vec<Step>,
    conflicts: Vec<Conflict>,
}

pub fn run(ctx: &Ctx, a: &RollbackArgs) -> Result<()> {
    match (&a.target, a.to, &a.session, &a.at) {
        (Some(t), Some(v), None, None) if t.contains('/') => file(ctx, t, v, a.dry_run),
        (None, None, Some(s), None) => session(ctx, s, a.store.as_deref(), a.dry_run, a.force),
        (Some(store), None, None, Some(at)) if !store.trim_end_matches('/').contains('/') => {
            store_at(ctx, store.trim_end_matches('/'), at, a.dry_run)
        }
        _ => bail!(
            "use one of:\n  memfsctl rollback STORE/PATH --to VERSION\n  memfsctl rollback --session SESSION [--store STORE] [--dry-run] [--force]\n  memfsctl rollback STORE --at TIME [--dry-run]"
        ),
    }
}

/// A filesystem core acting for the operator on every store.
fn operator_fs(ctx: &Ctx, what: &str) -> Result<MemFs> {
    let attached = ctx
        .db
        .read(|tx| tx.stores())?
        .into_iter()
        .map(|store| Attached::plain(store, false))
        .collect();
    let mut who = ctx.who.clone();
    who.session = rollback_session(what);
    Ok(MemFs::new(
        ctx.db.clone(),
        who,
        attached,
        FsOptions::default(),
    ))
}

/// The session name a rollback's own changes carry: `rollback:<what>:<pid>`, so
/// that running the same rollback again does not take them for conflicts.
fn rollback_session(what: &str) -> String {
    format!("rollback:{what}:{}", std::process::id())
}

fn store_named(ctx: &Ctx, name: &str) -> Result<StoreRow> {
    ctx.db
        .read(|tx| tx.store_by_name(name))?
        .ok_or_else(|| anyhow!("no store named '{name}'"))
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

fn resolve(ctx: &Ctx, store: &StoreRow, path: &str) -> Result<Option<Ino>> {
    Ok(ctx.db.read(|tx| tx.resolve_path(store.root, path))?)
}

fn file(ctx: &Ctx, spec: &str, to: i64, dry_run: bool) -> Result<()> {
    let (store_name, path) = spec.split_once('/').unwrap_or((spec, ""));
    let path = path.trim_matches('/').to_string();
    let store = store_named(ctx, store_name)?;
    let Some(ino) = resolve(ctx, &store, &path)? else {
        bail!("no file '{path}' in store '{store_name}' (to bring back a deleted file, roll back its session or the store)");
    };
    let v = ctx
        .db
        .read(|tx| tx.version(VersionId(to)))
        .map_err(|_| anyhow!("no version {to}"))?;
    if v.ino != ino {
        bail!(
            "version {to} is not a version of {spec} (it is of '{}')",
            v.path
        );
    }
    let mut step = Step {
        action: "restore-content",
        store: store.name.clone(),
        path: path.clone(),
        path2: None,
        undoes: None,
        version: Some(to),
        outcome: "dry-run".into(),
    };
    if !dry_run {
        let fs = operator_fs(ctx, spec)?;
        let changed = fs.restore_content(ino, Some(v.id), serde_json::json!({"to_version": to}))?;
        step.outcome = if changed { "done" } else { "unchanged" }.into();
    }
    finish(
        ctx,
        Report {
            dry_run,
            forced: false,
            steps: vec![step],
            conflicts: vec![],
        },
    )
}

fn session(ctx: &Ctx, s: &str, store: Option<&str>, dry_run: bool, force: bool) -> Result<()> {
    let store_filter = store.map(|n| store_named(ctx, n)).transpose()?;
    let entries = ctx.db.read(|tx| {
        tx.audit_entries(&AuditFilter {
            session: Some(s.to_string()),
            store: store_filter.as_ref().map(|s| s.id),
            ascending: true,
            ..Default::default()
        })
    })?;
    let entries: Vec<AuditEntry> = entries
        .into_iter()
        .filter(|e| e.ino.is_some() && e.store.is_some())
        .collect();
    if entries.is_empty() {
        bail!(
            "session '{s}' changed nothing{}",
            store.map_or(String::new(), |n| format!(" in store '{n}'"))
        );
    }
    // Files someone else changed after this session first touched them.
    let mut first: BTreeMap<i64, i64> = BTreeMap::new();
    for e in &entries {
        first.entry(e.ino.unwrap_or_default()).or_insert(e.id.0);
    }
    let mut conflicts = Vec::new();
    let mut conflicted: BTreeSet<i64> = BTreeSet::new();
    for (&ino, &first_id) in &first {
        let later = ctx.db.read(|tx| {
            tx.audit_entries(&AuditFilter {
                ino: Some(Ino(ino)),
                after_id: Some(first_id),
                ascending: true,
                ..Default::default()
            })
        })?;
        // Changes made by earlier rollbacks of this same session are not conflicts.
        let own = format!("rollback:{s}:");
        if let Some(o) = later
            .iter()
            .find(|o| o.session != s && !o.session.starts_with(&own))
        {
            conflicted.insert(ino);
            conflicts.push(Conflict {
                store: o.store.clone().unwrap_or_default(),
                path: o
                    .path2
                    .clone()
                    .or_else(|| o.path.clone())
                    .unwrap_or_default(),
                later_session: o.session.clone(),
                later_agent: o.agent.clone(),
                later_op: o.op.clone(),
                later_entry: o.id.0,
            });
        }
    }
    let undo: Vec<AuditEntry> = entries
        .iter()
        .rev()
        .filter(|e| force || !conflicted.contains(&e.ino.unwrap_or_default()))
        .cloned()
        .collect();
    // Content goes back to the head before the session's first version.
    let mut targets: BTreeMap<(String, i64), Option<VersionId>> = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| matches!(e.op.as_str(), "write" | "truncate" | "rollback"))
    {
        let ino = e.ino.unwrap_or_default();
        if conflicted.contains(&ino) && !force {
            continue;
        }
        let key = (e.store.clone().unwrap_or_default(), ino);
        if targets.contains_key(&key) {
            continue;
        }
        let first_v = e.version.unwrap_or(i64::MAX);
        let before = ctx
            .db
            .read(|tx| head_versions(tx, Ino(ino)))?
            .into_iter()
            .rfind(|v| v.id.0 < first_v)
            .map(|v| v.id);
        targets.insert(key, before);
    }
    // Modes go back to what the session's first chmod found.
    let mut modes: BTreeMap<(String, i64), u32> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.op == "chmod") {
        let ino = e.ino.unwrap_or_default();
        let old = e
            .detail
            .as_ref()
            .and_then(|d| d.get("old_mode"))
            .and_then(|m| m.as_str());
        if let Some(m) = old.and_then(|m| u32::from_str_radix(m, 8).ok()) {
            if force || !conflicted.contains(&ino) {
                modes
                    .entry((e.store.clone().unwrap_or_default(), ino))
                    .or_insert(m);
            }
        }
    }
    let mut report = apply(ctx, s, &undo, &targets, &modes, dry_run, conflicts)?;
    report.forced = force;
    finish(ctx, report)
}

fn store_at(ctx: &Ctx, name: &str, at: &str, dry_run: bool) -> Result<()> {
    let store = store_named(ctx, name)?;
    let t = parse_time(at, now_ns()).map_err(|e| anyhow!(e))?;
    if store.created_ns > t {
        bail!(
            "store '{name}' did not exist yet at {}",
            crate::timefmt::rfc3339(t)
        );
    }
    let undo = ctx.db.read(|tx| entries_after(tx, store.id, t))?;
    let undo: Vec<AuditEntry> = undo.into_iter().filter(|e| e.ino.is_some()).collect();
    let mut targets: BTreeMap<(String, i64), Option<VersionId>> = BTreeMap::new();
    let mut modes: BTreeMap<(String, i64), u32> = BTreeMap::new();
    for e in undo.iter().rev() {
        let ino = e.ino.unwrap_or_default();
        let key = (name.to_string(), ino);
        if matches!(e.op.as_str(), "write" | "truncate" | "rollback") && !targets.contains_key(&key)
        {
            let v = ctx.db.read(|tx| version_at(tx, Ino(ino), t))?.map(|v| v.id);
            targets.insert(key.clone(), v);
        }
        if e.op == "chmod" && !modes.contains_key(&key) {
            let old = e
                .detail
                .as_ref()
                .and_then(|d| d.get("old_mode"))
                .and_then(|m| m.as_str());
            if let Some(m) = old.and_then(|m| u32::from_str_radix(m, 8).ok()) {
                modes.insert(key, m);
            }
        }
    }
    let what = format!("{name}@{at}");
    let report = apply(ctx, &what, &undo, &targets, &modes, dry_run, vec![])?;
    finish(ctx, report)
}

/// Undoes `undo` (newest first), then restores contents and modes.
fn apply(
    ctx: &Ctx,
    what: &str,
    undo: &[AuditEntry],
    targets: &BTreeMap<(String, i64), Option<VersionId>>,
    modes: &BTreeMap<(String, i64), u32>,
    dry_run: bool,
    conflicts: Vec<Conflict>,
) -> Result<Report> {
    let fs = operator_fs(ctx, what)?;
    let stores: BTreeMap<String, StoreRow> = ctx
        .db
        .read(|tx| tx.stores())?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut report = Report {
        dry_run,
        forced: false,
        steps: vec![],
        conflicts,
    };
    for e in undo {
        let Some(store) = e.store.as_ref().and_then(|n| stores.get(n)) else {
            continue;
        };
        let ino = Ino(e.ino.unwrap_or_default());
        let path = e.path.clone().unwrap_or_default();
        let (action, p, p2): (&'static str, String, Option<String>) = match e.op.as_str() {
            "create" | "mkdir" | "symlink" | "mknod" | "link" | "restore" => ("remove", path, None),
            "unlink" | "rmdir" => ("bring-back", path, None),
            "rename" => match &e.path2 {
                Some(to) => ("move-back", to.clone(), Some(path)),
                None => continue,
            },
            _ => continue,
        };
        let mut step = Step {
            action,
            store: store.name.clone(),
            path: p.clone(),
            path2: p2.clone(),
            undoes: Some(e.id.0),
            version: None,
            outcome: "dry-run".into(),
        };
        if !dry_run {
            step.outcome = match undo_one(ctx, &fs, store, e, ino, &p, p2.as_deref()) {
                Ok(true) => "done".into(),
                Ok(false) => "unchanged".into(),
                Err(err) => format!("skipped: {err:#}"),
            };
        }
        report.steps.push(step);
    }
    for ((store_name, ino), target) in targets {
        let Some(store) = stores.get(store_name) else {
            continue;
        };
        let path = ctx.db.read(|tx| tx.path_of(Ino(*ino)))?;
        let Some(path) = path else {
            continue; // Not linked any more (removed by this rollback): nothing to restore.
        };
        let mut step = Step {
            action: "restore-content",
            store: store.name.clone(),
            path,
            path2: None,
            undoes: None,
            version: target.map(|v| v.0),
            outcome: "dry-run".into(),
        };
        if !dry_run {
            let why = serde_json::json!({"to_version": target.map(|v| v.0)});
            step.outcome = match fs.restore_content(Ino(*ino), *target, why) {
                Ok(true) => "done".into(),
                Ok(false) => "unchanged".into(),
                Err(err) => format!("skipped: {err}"),
            };
        }
        report.steps.push(step);
    }
    for ((store_name, ino), mode) in modes {
        let Some(path) = ctx.db.read(|tx| tx.path_of(Ino(*ino)))? else {
            continue;
        };
        let mut step = Step {
            action: "restore-mode",
            store: store_name.clone(),
            path,
            path2: None,
            undoes: None,
            version: None,
            outcome: "dry-run".into(),
        };
        if !dry_run {
            let s = SetAttr {
                mode: Some(*mode),
                ..Default::default()
            };
            step.outcome = match fs.setattr(Ino(*ino), s, Caller::default()) {
                Ok(_) => "done".into(),
                Err(err) => format!("skipped: {err}"),
            };
        }
        report.steps.push(step);
    }
    Ok(report)
}

/// Performs one undo step on the current namespace.
fn undo_one(
    ctx: &Ctx,
    fs: &MemFs,
    store: &StoreRow,
    e: &AuditEntry,
    ino: Ino,
    path: &str,
    to: Option<&str>,
) -> Result<bool> {
    let linked = |i: Ino| -> Result<bool> {
        Ok(ctx.db.read(|tx| tx.inode(i))?.is_some_and(|r| r.nlink > 0))
    };
    let parent_of = |p: &str| -> Result<(Ino, String)> {
        let (dir, name) = split(p);
        match resolve(ctx, store, dir)? {
            Some(d) => Ok((d, name.to_string())),
            None => bail!("its directory '{dir}' does not exist"),
        }
    };
    match e.op.as_str() {
        "create" | "mkdir" | "symlink" | "mknod" | "link" | "restore" => {
            if resolve(ctx, store, path)? != Some(ino) {
                if e.op != "link" && !linked(ino)? {
                    return Ok(false);
                }
                bail!("'{path}' is no longer the file this entry made");
            }
            let (dir, name) = parent_of(path)?;
            let kind = ctx.db.read(|tx| tx.inode(ino))?.map(|r| r.kind);
            if kind == Some(NodeKind::Dir) {
                fs.rmdir(dir, name.as_bytes(), Caller::default())?;
            } else {
                fs.unlink(dir, name.as_bytes(), Caller::default())?;
            }
        }
        "unlink" | "rmdir" => {
            match resolve(ctx, store, path)? {
                Some(i) if i == ino => return Ok(false),
                Some(_) => bail!("'{path}' exists again"),
                None => {}
            }
            let (dir, name) = parent_of(path)?;
            fs.relink(ino, dir, name.as_bytes())?;
        }
        "rename" => {
            let back_to = to.unwrap_or_default();
            if resolve(ctx, store, path)? != Some(ino) {
                if resolve(ctx, store, back_to)? == Some(ino) {
                    return Ok(false);
                }
                bail!("'{path}' is no longer the file this rename moved");
            }
            let (from_dir, from_name) = parent_of(path)?;
            let (to_dir, to_name) = parent_of(back_to)?;
            let exchange = e
                .detail
                .as_ref()
                .and_then(|d| d.get("exchange"))
                .is_some_and(|x| x.as_bool() == Some(true));
            let mode = RenameMode {
                noreplace: !exchange,
                exchange,
            };
            fs.rename(
                from_dir,
                from_name.as_bytes(),
                to_dir,
                to_name.as_bytes(),
                mode,
                Caller::default(),
            )?;
            // A file the rename replaced gets its name back.
            let replaced = e
                .detail
                .as_ref()
                .and_then(|d| d.get("replaced_ino"))
                .and_then(|v| v.as_i64());
            if let (Some(r), false) = (replaced, exchange) {
                fs.relink(Ino(r), from_dir, from_name.as_bytes())?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn finish(ctx: &Ctx, report: Report) -> Result<()> {
    let failed = report
        .steps
        .iter()
        .filter(|s| s.outcome.starts_with("skipped"))
        .count();
    ctx.emit(&report, || {
        let mut out = String::new();
        for s in &report.steps {
            let to = s
                .path2
                .as_ref()
                .map_or(String::new(), |p| format!(" -> {}/{p}", s.store));
            let v = s.version.map_or(String::new(), |v| format!(" (v{v})"));
            out.push_str(&format!(
                "{:<16} {}/{}{}{}  [{}]\n",
                s.action, s.store, s.path, to, v, s.outcome
            ));
        }
        for c in &report.conflicts {
            let what = if report.forced {
                "undone anyway (--force)"
            } else {
                "left alone (--force to undo anyway)"
            };
            out.push_str(&format!(
                "conflict         {}/{}: changed later by session {} (agent {}, {} #{}); {what}\n",
                c.store, c.path, c.later_session, c.later_agent, c.later_op, c.later_entry
            ));
        }
        if report.steps.is_empty() && report.conflicts.is_empty() {
            out.push_str("nothing to undo\n");
        }
        if report.dry_run {
            out.push_str("(dry run: nothing was changed)\n");
        }
        out
    })?;
    if failed > 0 {
        bail!("{failed} step(s) could not be done (see above)");
    }
    Ok(())
}

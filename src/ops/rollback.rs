//! Rollback: undo by making new changes, never by rewriting history.
//!
//! - a file to a version: that version's content becomes the head again;
//! - a session: every change it made is undone, newest first: names it
//!   created are removed, names it removed come back, renames go back, and
//!   files it wrote return to their content from before its first write. A
//!   file another session changed afterwards is a conflict, left alone unless
//!   forced;
//! - a store to a time: every change to the store after that time is undone.
//!
//! Each returns its plan as a report: with `dry_run` nothing is changed and
//! every step says `dry-run`; otherwise each step says `done`, `unchanged` or
//! why it was skipped. The work goes through the filesystem core (a `MemFs`
//! with the principal's stores attached and no kernel), so POSIX rules,
//! leases, the audit log and the change feed apply as for any mount; running
//! mounts see the result at once. Only an admin may roll back.

use super::actor::KEY_SESSION_PREFIX;
use super::{Ops, Principal};
use crate::error::{OpError, OpResult};
use crate::fs::{Attached, Caller, MemFs, RenameMode, SetAttr};
use crate::history::{entries_after, head_versions, version_at};
use crate::ids::{Ino, VersionId};
use crate::store::{AuditEntry, AuditFilter, NodeKind, StoreRow};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What to roll back.
#[derive(Clone, Debug)]
pub enum Rollback {
    /// Make version `to` of the file at `path` its head again.
    File {
        store: String,
        path: String,
        to: VersionId,
    },
    /// Undo everything `session` changed (only in `store`, if given). With
    /// `force`, also files other sessions changed afterwards.
    Session {
        session: String,
        store: Option<String>,
        force: bool,
    },
    /// Undo every change to `store` after `at` (RFC 3339 or an age such as 2h).
    Store { store: String, at: String },
}

/// One planned (and, unless a dry run, performed) step.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// `remove`, `bring-back`, `move-back`, `restore-content` or `restore-mode`.
    pub action: &'static str,
    pub store: String,
    pub path: String,
    /// Where a `move-back` moves the file to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path2: Option<String>,
    /// The audit entry this step undoes (none for content and mode restores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undoes: Option<i64>,
    /// The version a `restore-content` restores (none: empty content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// `done`, `dry-run`, `unchanged`, or `skipped: WHY`.
    pub outcome: String,
}

impl Step {
    pub fn skipped(&self) -> bool {
        self.outcome.starts_with("skipped")
    }
}

/// A file left alone because another session changed it later.
#[derive(Clone, Debug, Serialize)]
pub struct Conflict {
    pub store: String,
    pub path: String,
    pub later_session: String,
    pub later_agent: String,
    pub later_op: String,
    pub later_entry: i64,
}

/// What a rollback did, or would do.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RollbackReport {
    pub dry_run: bool,
    /// Conflicts were undone anyway.
    pub forced: bool,
    pub steps: Vec<Step>,
    pub conflicts: Vec<Conflict>,
}

impl RollbackReport {
    /// Steps that could not be done.
    pub fn failed(&self) -> usize {
        self.steps.iter().filter(|s| s.skipped()).count()
    }
}

const DRY_RUN: &str = "dry-run";

fn outcome(changed: bool) -> String {
    if changed { "done" } else { "unchanged" }.to_string()
}

/// Content targets and mode targets by (store name, inode).
type Targets = BTreeMap<(String, i64), Option<VersionId>>;
type Modes = BTreeMap<(String, i64), u32>;

/// The mode a `chmod` entry found, from its detail.
fn old_mode(e: &AuditEntry) -> Option<u32> {
    let m = e.detail.as_ref()?.get("old_mode")?.as_str()?;
    u32::from_str_radix(m, 8).ok()
}

fn is_content_op(op: &str) -> bool {
    matches!(op, "write" | "truncate" | "rollback")
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// The session name a rollback's own changes carry: `rollback:<what>:<pid>`,
/// so that running the same rollback again does not take them for conflicts.
/// An API key keeps its own session (its id), because that is what names the
/// key in every version it makes; a second rollback of the same session by a
/// key therefore reports the first one's changes as conflicts.
fn rollback_identity(p: &Principal, what: &str) -> crate::ids::Identity {
    let mut who = p.who.clone();
    if !who.session.starts_with(KEY_SESSION_PREFIX) {
        who.session = format!("rollback:{what}:{}", std::process::id());
    }
    who
}

/// One rollback in progress: the stores it may touch and a filesystem core
/// acting for the principal on them.
struct Run<'a> {
    ops: &'a Ops,
    stores: BTreeMap<String, StoreRow>,
    fs: MemFs,
}

impl<'a> Run<'a> {
    fn new(ops: &'a Ops, p: &Principal, what: &str) -> OpResult<Run<'a>> {
        let stores: BTreeMap<String, StoreRow> = ops
            .visible_stores(p)?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        let attached = stores
            .values()
            .map(|s| Attached::plain(s.clone(), false))
            .collect();
        let fs = MemFs::new(
            ops.db().clone(),
            rollback_identity(p, what),
            attached,
            ops.fs_opts.clone(),
        );
        Ok(Run { ops, stores, fs })
    }

    fn resolve(&self, store: &StoreRow, path: &str) -> OpResult<Option<Ino>> {
        self.ops.read(|tx| tx.resolve_path(store.root, path))
    }

    /// Undoes `undo` (newest first), then restores contents and modes.
    fn apply(
        &self,
        undo: &[AuditEntry],
        targets: &Targets,
        modes: &Modes,
        dry_run: bool,
        conflicts: Vec<Conflict>,
    ) -> OpResult<RollbackReport> {
        let mut report = RollbackReport {
            dry_run,
            forced: false,
            steps: vec![],
            conflicts,
        };
        for e in undo {
            let Some(store) = e.store.as_ref().and_then(|n| self.stores.get(n)) else {
                continue;
            };
            let ino = Ino(e.ino.unwrap_or_default());
            let path = e.path.clone().unwrap_or_default();
            let (action, p, p2): (&'static str, String, Option<String>) = match e.op.as_str() {
                "create" | "mkdir" | "symlink" | "mknod" | "link" | "restore" => {
                    ("remove", path, None)
                }
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
                outcome: DRY_RUN.into(),
            };
            if !dry_run {
                step.outcome = match self.undo_one(store, e, ino, &p, p2.as_deref()) {
                    Ok(changed) => outcome(changed),
                    Err(why) => format!("skipped: {why}"),
                };
            }
            report.steps.push(step);
        }
        for ((store_name, ino), target) in targets {
            let Some(store) = self.stores.get(store_name) else {
                continue;
            };
            let Some(path) = self.ops.read(|tx| tx.path_of(Ino(*ino)))? else {
                continue; // Not linked any more (removed by this rollback): nothing to restore.
            };
            let mut step = Step {
                action: "restore-content",
                store: store.name.clone(),
                path,
                path2: None,
                undoes: None,
                version: target.map(|v| v.0),
                outcome: DRY_RUN.into(),
            };
            if !dry_run {
                let why = serde_json::json!({"to_version": target.map(|v| v.0)});
                step.outcome = match self.fs.restore_content(Ino(*ino), *target, why) {
                    Ok(changed) => outcome(changed),
                    Err(err) => format!("skipped: {err}"),
                };
            }
            report.steps.push(step);
        }
        for ((store_name, ino), mode) in modes {
            let Some(path) = self.ops.read(|tx| tx.path_of(Ino(*ino)))? else {
                continue;
            };
            let mut step = Step {
                action: "restore-mode",
                store: store_name.clone(),
                path,
                path2: None,
                undoes: None,
                version: None,
                outcome: DRY_RUN.into(),
            };
            if !dry_run {
                let s = SetAttr {
                    mode: Some(*mode),
                    ..Default::default()
                };
                step.outcome = match self.fs.setattr(Ino(*ino), s, Caller::default()) {
                    Ok(_) => "done".into(),
                    Err(err) => format!("skipped: {err}"),
                };
            }
            report.steps.push(step);
        }
        Ok(report)
    }

    /// Performs one undo step on the current namespace; `Err` says why it
    /// could not be done (the rollback goes on with the other steps).
    fn undo_one(
        &self,
        store: &StoreRow,
        e: &AuditEntry,
        ino: Ino,
        path: &str,
        to: Option<&str>,
    ) -> Result<bool, String> {
        let text = |e: OpError| e.to_string();
        let fs_text = |e: crate::error::FsError| e.to_string();
        let resolve = |p: &str| self.resolve(store, p).map_err(text);
        let linked = |i: Ino| -> Result<bool, String> {
            Ok(self
                .ops
                .read(|tx| tx.inode(i))
                .map_err(text)?
                .is_some_and(|r| r.nlink > 0))
        };
        let parent_of = |p: &str| -> Result<(Ino, String), String> {
            let (dir, name) = split(p);
            match resolve(dir)? {
                Some(d) => Ok((d, name.to_string())),
                None => Err(format!("its directory '{dir}' does not exist")),
            }
        };
        match e.op.as_str() {
            "create" | "mkdir" | "symlink" | "mknod" | "link" | "restore" => {
                if resolve(path)? != Some(ino) {
                    if e.op != "link" && !linked(ino)? {
                        return Ok(false);
                    }
                    return Err(format!("'{path}' is no longer the file this entry made"));
                }
                let (dir, name) = parent_of(path)?;
                let kind = self
                    .ops
                    .read(|tx| tx.inode(ino))
                    .map_err(text)?
                    .map(|r| r.kind);
                if kind == Some(NodeKind::Dir) {
                    self.fs
                        .rmdir(dir, name.as_bytes(), Caller::default())
                        .map_err(fs_text)?;
                } else {
                    self.fs
                        .unlink(dir, name.as_bytes(), Caller::default())
                        .map_err(fs_text)?;
                }
            }
            "unlink" | "rmdir" => {
                match resolve(path)? {
                    Some(i) if i == ino => return Ok(false),
                    Some(_) => return Err(format!("'{path}' exists again")),
                    None => {}
                }
                let (dir, name) = parent_of(path)?;
                self.fs.relink(ino, dir, name.as_bytes()).map_err(fs_text)?;
            }
            "rename" => {
                let back_to = to.unwrap_or_default();
                if resolve(path)? != Some(ino) {
                    if resolve(back_to)? == Some(ino) {
                        return Ok(false);
                    }
                    return Err(format!("'{path}' is no longer the file this rename moved"));
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
                self.fs
                    .rename(
                        from_dir,
                        from_name.as_bytes(),
                        to_dir,
                        to_name.as_bytes(),
                        mode,
                        Caller::default(),
                    )
                    .map_err(fs_text)?;
                // A file the rename replaced gets its name back.
                let replaced = e
                    .detail
                    .as_ref()
                    .and_then(|d| d.get("replaced_ino"))
                    .and_then(|v| v.as_i64());
                if let (Some(r), false) = (replaced, exchange) {
                    self.fs
                        .relink(Ino(r), from_dir, from_name.as_bytes())
                        .map_err(fs_text)?;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Ops {
    /// Rolls back a file, a session or a store (see the module comment).
    /// Steps that cannot be done are reported, not errors: check
    /// [`RollbackReport::failed`].
    pub fn rollback(
        &self,
        p: &Principal,
        what: &Rollback,
        dry_run: bool,
    ) -> OpResult<RollbackReport> {
        p.require_admin("roll back")?;
        match what {
            Rollback::File { store, path, to } => self.rollback_file(p, store, path, *to, dry_run),
            Rollback::Session {
                session,
                store,
                force,
            } => self.rollback_session(p, session, store.as_deref(), dry_run, *force),
            Rollback::Store { store, at } => self.rollback_store(p, store, at, dry_run),
        }
    }

    fn rollback_file(
        &self,
        p: &Principal,
        store: &str,
        path: &str,
        to: VersionId,
        dry_run: bool,
    ) -> OpResult<RollbackReport> {
        let Some(f) = self.live_file(p, store, path)? else {
            return Err(OpError::NotFound(format!(
                "no file '{}' in store '{store}' (to bring back a deleted file, roll back \
                 its session or the store)",
                path.trim_matches('/')
            )));
        };
        let v = self
            .read(|tx| tx.version(to))
            .map_err(|_| OpError::NotFound(format!("no version {to}")))?;
        if v.ino != f.ino {
            return Err(OpError::Invalid(format!(
                "version {to} is not a version of {} (it is of '{}')",
                f.display(),
                v.path
            )));
        }
        let mut step = Step {
            action: "restore-content",
            store: f.store.name.clone(),
            path: f.path.clone(),
            path2: None,
            undoes: None,
            version: Some(to.0),
            outcome: DRY_RUN.into(),
        };
        if !dry_run {
            let run = Run::new(self, p, &f.display())?;
            let changed = run
                .fs
                .restore_content(f.ino, Some(v.id), serde_json::json!({"to_version": to.0}))
                .map_err(|e| OpError::fs(format!("cannot restore {}", f.display()), e))?;
            step.outcome = outcome(changed);
        }
        Ok(RollbackReport {
            dry_run,
            forced: false,
            steps: vec![step],
            conflicts: vec![],
        })
    }

    fn rollback_session(
        &self,
        p: &Principal,
        s: &str,
        store: Option<&str>,
        dry_run: bool,
        force: bool,
    ) -> OpResult<RollbackReport> {
        let only = store.map(|n| self.visible_store(p, n)).transpose()?;
        let run = Run::new(self, p, s)?;
        let entries = self.read(|tx| {
            tx.audit_entries(&AuditFilter {
                session: Some(s.to_string()),
                store: only.as_ref().map(|s| s.id),
                ascending: true,
                ..Default::default()
            })
        })?;
        let entries: Vec<AuditEntry> = entries
            .into_iter()
            .filter(|e| e.ino.is_some())
            .filter(|e| e.store.as_ref().is_some_and(|n| run.stores.contains_key(n)))
            .collect();
        if entries.is_empty() {
            return Err(OpError::NotFound(format!(
                "session '{s}' changed nothing{}",
                store.map_or(String::new(), |n| format!(" in store '{n}'"))
            )));
        }
        // Files someone else changed after this session first touched them.
        let mut first: BTreeMap<i64, i64> = BTreeMap::new();
        for e in &entries {
            first.entry(e.ino.unwrap_or_default()).or_insert(e.id.0);
        }
        let mut conflicts = Vec::new();
        let mut conflicted: BTreeSet<i64> = BTreeSet::new();
        // Changes made by earlier rollbacks of this same session are not conflicts.
        let own = format!("rollback:{s}:");
        for (&ino, &first_id) in &first {
            let later = self.read(|tx| {
                tx.audit_entries(&AuditFilter {
                    ino: Some(Ino(ino)),
                    after_id: Some(first_id),
                    ascending: true,
                    ..Default::default()
                })
            })?;
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
        let mut targets = Targets::new();
        for e in entries.iter().filter(|e| is_content_op(&e.op)) {
            let ino = e.ino.unwrap_or_default();
            if conflicted.contains(&ino) && !force {
                continue;
            }
            let key = (e.store.clone().unwrap_or_default(), ino);
            if targets.contains_key(&key) {
                continue;
            }
            let first_v = e.version.unwrap_or(i64::MAX);
            let before = self
                .read(|tx| head_versions(tx, Ino(ino)))?
                .into_iter()
                .rfind(|v| v.id.0 < first_v)
                .map(|v| v.id);
            targets.insert(key, before);
        }
        // Modes go back to what the session's first chmod found.
        let mut modes = Modes::new();
        for e in entries.iter().filter(|e| e.op == "chmod") {
            let ino = e.ino.unwrap_or_default();
            if let Some(m) = old_mode(e) {
                if force || !conflicted.contains(&ino) {
                    modes
                        .entry((e.store.clone().unwrap_or_default(), ino))
                        .or_insert(m);
                }
            }
        }
        let mut report = run.apply(&undo, &targets, &modes, dry_run, conflicts)?;
        report.forced = force;
        Ok(report)
    }

    fn rollback_store(
        &self,
        p: &Principal,
        name: &str,
        at: &str,
        dry_run: bool,
    ) -> OpResult<RollbackReport> {
        let store = self.visible_store(p, name)?;
        let t = super::time::parse(at)?;
        if store.created_ns > t {
            return Err(OpError::Invalid(format!(
                "store '{name}' did not exist yet at {}",
                crate::timefmt::rfc3339(t)
            )));
        }
        let undo = self.read(|tx| entries_after(tx, store.id, t))?;
        let undo: Vec<AuditEntry> = undo.into_iter().filter(|e| e.ino.is_some()).collect();
        let mut targets = Targets::new();
        let mut modes = Modes::new();
        for e in undo.iter().rev() {
            let ino = e.ino.unwrap_or_default();
            let key = (store.name.clone(), ino);
            if is_content_op(&e.op) && !targets.contains_key(&key) {
                let v = self.read(|tx| version_at(tx, Ino(ino), t))?.map(|v| v.id);
                targets.insert(key.clone(), v);
            }
            if e.op == "chmod" && !modes.contains_key(&key) {
                if let Some(m) = old_mode(e) {
                    modes.insert(key, m);
                }
            }
        }
        let run = Run::new(self, p, &format!("{}@{at}", store.name))?;
        run.apply(&undo, &targets, &modes, dry_run, vec![])
    }
}

//! Merging a draft into its store: the plan (`plan.rs`) applied as one
//! change set through the filesystem core, all in one transaction, as the
//! merging person (their agent and user) under a session of its own,
//! `merge:STORE@DRAFT:ID`, so `memfsctl rollback --session` undoes the merge
//! as one unit. The store's path policies, quotas, content rules and write
//! leases apply to what the merge writes as to any write; a merge that would
//! break one is refused with every reason, and changes nothing. Conflicts
//! are reported and left alone (both sides stay in history). What was merged
//! moves the draft's base forward: the draft's file then holds the merged
//! result, so the draft shows no change there any more.

use super::diff::read_version;
use super::plan::{self, phase, Action, MergeConflict, Planned};
use super::sides;
use crate::error::{FsError, OpError, OpResult};
use crate::fs::{Attached, Done, MemFs, Step};
use crate::ids::{now_ns, Identity, Ino, StoreId, VersionId};
use crate::ops::{Ops, Principal};
use crate::store::{BaseRow, Change, NodeKind, Txn};

/// How to merge.
#[derive(Clone, Debug, Default)]
pub struct MergeOptions {
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Merge only these paths (and what is below them); everything when empty.
    pub paths: Vec<String>,
    /// Apply what merges cleanly even when some changes conflict (the
    /// conflicts are still reported and left alone). Without it a merge with
    /// conflicts applies nothing.
    pub skip_conflicts: bool,
}

/// How many changes a merge took as the draft made them, merged with the
/// store's own changes, found made on both sides already, or left as
/// conflicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeCounts {
    pub taken: usize,
    pub merged: usize,
    pub same: usize,
    pub conflicts: usize,
}

/// Who wrote what a merge brought into the store (from the draft's log).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Author {
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
}

/// A change the store's rules refuse.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Refusal {
    pub path: String,
    pub reason: String,
}

/// What a merge did (or would do).
#[derive(Clone, Debug, serde::Serialize)]
pub struct MergeReport {
    /// `STORE@DRAFT`.
    pub draft: String,
    pub store: String,
    pub dry_run: bool,
    /// Changes were applied to the store.
    pub merged: bool,
    /// The session the merge's changes carry (`rollback --session` undoes it).
    pub session: Option<String>,
    /// What was (or would be) done.
    pub actions: Vec<Action>,
    /// What is left for a person.
    pub conflicts: Vec<MergeConflict>,
    /// Why the store refuses the merge (then nothing was applied).
    pub refused: Vec<Refusal>,
    /// The actions and conflicts, counted.
    pub counts: MergeCounts,
    /// Nothing was applied because of the conflicts (and `skip_conflicts`
    /// was not asked for).
    pub blocked: bool,
    /// Who wrote, in the draft, what the merge takes.
    pub authors: Vec<Author>,
}

/// Attempts to plan and apply before giving up on a store that keeps
/// changing under the merge.
const ATTEMPTS: usize = 3;

impl Ops {
    /// Merges draft `id` (`STORE@DRAFT` or its API id) into its store.
    pub fn merge_draft(
        &self,
        p: &Principal,
        id: &str,
        opts: &MergeOptions,
    ) -> OpResult<MergeReport> {
        let l = self.locate_draft(p, id)?;
        if !opts.dry_run {
            self.require_reviewer(p, &l.store, &l.settings)?;
        }
        if l.store.archived {
            return Err(OpError::Invalid(format!(
                "store '{}' is archived: unarchive it to merge into it",
                l.store.name
            )));
        }
        let tag = crate::store::new_api_id("")?;
        let session = format!("merge:{}:{}", l.draft.store.name, &tag[..8]);
        let mut who: Identity = p.who.clone();
        who.session = session.clone();
        let fs = MemFs::new(
            self.db().clone(),
            who.clone(),
            vec![Attached::new(l.store.clone(), false, l.settings.policy())],
            self.fs_opts.clone(),
        );
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let planned = self.read(|tx| {
                let s = sides::read(tx, &l.store, &l.draft.store)?;
                plan::plan(&s, &opts.paths, &mut |v| read_version(tx, v))
            })?;
            let actions: Vec<Action> = planned.items.iter().map(|i| i.action.clone()).collect();
            let count = |how: &str| actions.iter().filter(|a| a.how == how).count();
            let counts = MergeCounts {
                taken: count("draft"),
                merged: count("merged"),
                same: count("same"),
                conflicts: planned.conflicts.len(),
            };
            let authors = self.read(|tx| authors(tx, l.draft.store.id, &actions))?;
            let mut report = MergeReport {
                draft: l.draft.store.name.clone(),
                store: l.store.name.clone(),
                dry_run: opts.dry_run,
                merged: false,
                session: None,
                blocked: !planned.conflicts.is_empty() && !opts.skip_conflicts,
                actions,
                conflicts: planned.conflicts,
                refused: Vec::new(),
                counts,
                authors,
            };
            // Steps in the order they run, each with the item it belongs to.
            let mut order: Vec<(usize, Step)> = planned
                .items
                .iter()
                .enumerate()
                .flat_map(|(i, it)| it.steps.iter().map(move |s| (i, s.clone())))
                .collect();
            order.sort_by_key(|(_, s)| phase(s));
            let owners: Vec<usize> = order.iter().map(|(i, _)| *i).collect();
            let steps: Vec<Step> = order.into_iter().map(|(_, s)| s).collect();
            let prepared = match fs.prepare_steps(l.store.id, steps, !opts.dry_run) {
                Ok(p) => p,
                Err(problems) => {
                    report.refused = problems
                        .into_iter()
                        .map(|(path, e)| Refusal {
                            path,
                            reason: e.settled().to_string(),
                        })
                        .collect();
                    return Ok(report);
                }
            };
            if opts.dry_run || report.blocked || planned.items.is_empty() {
                return Ok(report);
            }
            let items = planned.items;
            let applied = fs.apply_steps(l.store.id, &prepared, |tx, done| {
                self.rebase(tx, &l.draft.store.id, &items, &owners, done)?;
                record_merge(tx, &who, &l, &report, p.key_id.as_deref())
            });
            match applied {
                Ok(_) => {
                    report.merged = true;
                    report.session = Some(session);
                    return Ok(report);
                }
                Err(FsError::Precondition(why)) => last = Some(why),
                Err(e) => return Err(OpError::fs(format!("merging {}", l.draft.store.name), e)),
            }
        }
        Err(OpError::Conflict(format!(
            "the store kept changing while the merge was applied ({}); try again",
            last.unwrap_or_default()
        )))
    }

    /// Moves the draft's base forward over what the merge made, and points
    /// the draft's files at the merged content. A file a mount of the draft
    /// holds open for writing is left as it is (merged again next time: its
    /// content is in the store now, so that merge changes nothing there).
    fn rebase(
        &self,
        tx: &Txn<'_>,
        draft: &StoreId,
        items: &[Planned],
        owners: &[usize],
        done: &[Done],
    ) -> Result<(), FsError> {
        let now = now_ns();
        for (i, item) in items.iter().enumerate() {
            let r = &item.rebase;
            let mine: Vec<(&Step, &Done)> = owners
                .iter()
                .zip(done)
                .enumerate()
                .filter(|(_, (o, _))| **o == i)
                .map(|(j, (_, d))| (&item.steps[item_step(owners, i, j)], d))
                .collect();
            // Where the merged node is in the store now, and its head.
            let mut result: Option<(Ino, Option<VersionId>)> = r.store;
            let mut old_kept = false;
            for (step, d) in &mine {
                match step {
                    Step::RemoveDirIfEmpty { .. } => old_kept = d.ino.is_some(),
                    Step::Remove { .. } => {}
                    _ => result = d.ino.map(|ino| (ino, d.head)),
                }
            }
            if r.kind == NodeKind::File {
                if let (Some(x), Some((_, head))) = (r.draft_ino, result) {
                    if head != r.draft_head {
                        if tx.live_lease(x)?.is_some() {
                            continue;
                        }
                        tx.rebase_draft_file(*draft, x, head, now)?;
                    }
                }
            }
            if let Some(old) = &r.old_path {
                if !old_kept {
                    tx.set_draft_base(*draft, old, None)?;
                }
            }
            if let (Some(p), Some((origin, head))) = (&r.new_path, result) {
                let row = BaseRow {
                    path: p.clone(),
                    kind: r.kind,
                    origin,
                    ino: r.draft_ino,
                    head: if r.kind == NodeKind::File { head } else { None },
                    target: r.target.clone(),
                };
                tx.set_draft_base(*draft, p, Some(&row))?;
            }
        }
        Ok(())
    }
}

/// The index in `items[i].steps` of the step at position `j` of the run
/// order: steps of one item keep their relative order when sorted by phase
/// (they are generated in phase order), so it is the count of that item's
/// steps before `j`.
fn item_step(owners: &[usize], i: usize, j: usize) -> usize {
    owners[..j].iter().filter(|&&o| o == i).count()
}

/// The distinct identities that changed, in the draft, the paths the merge
/// takes (by the draft's log; the draft's own bookkeeping left out).
fn authors(
    tx: &Txn<'_>,
    draft: StoreId,
    actions: &[Action],
) -> Result<Vec<Author>, crate::error::StoreError> {
    let entries = tx.audit_entries(&crate::store::AuditFilter {
        store: Some(draft),
        ascending: true,
        ..Default::default()
    })?;
    let touched = |p: &Option<String>| {
        p.as_deref().filter(|p| !p.is_empty()).is_some_and(|p| {
            actions.iter().any(|a| {
                a.how != "same"
                    && [Some(&a.path), a.from.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|x| super::within(p, x) || super::within(x, p))
            })
        })
    };
    let mut out: Vec<Author> = Vec::new();
    for e in entries {
        if e.op.starts_with("draft-") || !(touched(&e.path) || touched(&e.path2)) {
            continue;
        }
        let a = Author {
            agent: e.agent,
            session: e.session,
            user: e.user,
        };
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// Records the merge in the store's log and the draft's: who merged what,
/// under which session, who wrote it, and what was left.
fn record_merge(
    tx: &Txn<'_>,
    who: &Identity,
    l: &super::Located,
    report: &MergeReport,
    key_id: Option<&str>,
) -> Result<(), FsError> {
    let now = now_ns();
    let paths: Vec<&str> = report
        .actions
        .iter()
        .take(100)
        .map(|a| a.path.as_str())
        .collect();
    let detail = serde_json::json!({
        "draft": l.draft.store.name,
        "session": who.session,
        "actions": report.actions.len(),
        "conflicts": report.conflicts.len(),
        "paths": paths,
        "authors": report.authors,
        "key_id": key_id,
    });
    for store in [l.store.id, l.draft.store.id] {
        tx.record(
            who,
            now,
            &Change {
                store: Some(store),
                op: "draft-merge",
                path: Some(""),
                detail: Some(detail.clone()),
                origin: Some("memfs-merge"),
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

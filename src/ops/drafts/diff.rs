//! Reviewing a draft: what it changed against its base, what changed in the
//! store since that base, and what merging it would do (the plan, with its
//! conflicts), optionally with the content diff of every changed file.

use super::plan::{self, change_of, Action, MergeConflict};
use super::sides::{self, Content, Node, Side};
use super::{view, DraftView};
use crate::error::{OpResult, StoreError};
use crate::ids::VersionId;
use crate::ops::history::{diff_texts, Diff};
use crate::ops::{Ops, Principal};
use crate::store::Txn;

/// One side's change of one node against the draft's base.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DraftChange {
    /// Where it is now on that side (where it was, for a deletion).
    pub path: String,
    /// Where it was at the base, when it moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: &'static str,
    /// `added`, `deleted`, `modified`, `renamed` or `renamed+modified`.
    pub change: &'static str,
    /// The content's difference (files, when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
}

/// A draft under review.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DraftDiff {
    pub draft: DraftView,
    /// What the draft changed against its base.
    pub draft_changes: Vec<DraftChange>,
    /// What changed in the store since the draft's base.
    pub store_changes: Vec<DraftChange>,
    /// What merging all of it would do now.
    pub plan: Vec<Action>,
    /// What merging would leave for a person.
    pub conflicts: Vec<MergeConflict>,
}

/// A version's whole content (`None`: empty).
pub(super) fn read_version(tx: &Txn<'_>, v: Option<VersionId>) -> Result<Vec<u8>, StoreError> {
    match v {
        None => Ok(Vec::new()),
        Some(v) => {
            let ext = tx.extents(v)?;
            tx.read_extents(&ext, 0, ext.size())
        }
    }
}

fn head(n: Option<&Node>) -> Option<VersionId> {
    match n.map(|n| &n.content) {
        Some(Content::File { head, .. }) => *head,
        _ => None,
    }
}

/// The changes of `side` against `base`, by path.
fn changes(
    tx: &Txn<'_>,
    base: &Side,
    side: &Side,
    patch: bool,
) -> Result<Vec<DraftChange>, StoreError> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<_> = base.keys().chain(side.keys()).collect();
    for k in keys {
        let (b, x) = (base.get(k), side.get(k));
        let Some(change) = change_of(b, x) else {
            continue;
        };
        let Some(n) = x.or(b) else {
            continue;
        };
        let kind = Ops::kind_name(n.content.kind());
        let diff = if patch && kind == "file" && change != "renamed" {
            let (from, to) = (head(b), head(x));
            let (old, new) = (read_version(tx, from)?, read_version(tx, to)?);
            let a_name = format!("a/{}", b.map_or(n.path.as_str(), |b| b.path.as_str()));
            let b_name = format!("b/{}", n.path);
            let (text, hunks) = diff_texts(&old, &new, &a_name, &b_name);
            Some(Diff {
                from,
                to,
                same: old == new,
                binary: hunks.is_empty() && !text.is_empty(),
                diff: text,
                hunks,
            })
        } else {
            None
        };
        out.push(DraftChange {
            path: n.path.clone(),
            from: b
                .filter(|b| x.is_some_and(|x| x.path != b.path))
                .map(|b| b.path.clone()),
            kind,
            change,
            diff,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

impl Ops {
    /// What draft `id` changed, what its store changed since the draft's base,
    /// and what merging it would do; with `patch`, every file's diff.
    pub fn draft_diff(&self, p: &Principal, id: &str, patch: bool) -> OpResult<DraftDiff> {
        let l = self.locate_draft(p, id)?;
        self.read(|tx| {
            let s = sides::read(tx, &l.store, &l.draft.store)?;
            let draft_changes = changes(tx, &s.base, &s.draft, patch)?;
            let store_changes = changes(tx, &s.base, &s.store, patch)?;
            let planned = plan::plan(&s, &[], &mut |v| read_version(tx, v))?;
            Ok(DraftDiff {
                draft: view(tx, &l.draft)?,
                draft_changes,
                store_changes,
                plan: planned.items.into_iter().map(|i| i.action).collect(),
                conflicts: planned.conflicts,
            })
        })
    }
}

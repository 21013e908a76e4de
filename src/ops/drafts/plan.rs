//! What merging a draft does, decided from its three sides (`sides.rs`), one
//! identity at a time, without changing anything:
//!
//! - the draft did not change it: nothing (the store's own change stays);
//! - only the draft changed it: the draft's change is taken (`draft`);
//! - both made the same change: nothing to apply (`same`);
//! - both changed it: where it is (renamed, deleted) and what it holds are
//!   merged separately. A place changed on one side only takes that side's;
//!   content changed on one side only takes that side's; text changed on
//!   both is merged line by line (`merged`), and when both sides only
//!   appended to it, the draft's lines go after the store's. Anything else
//!   is a conflict, reported with both sides and left alone: moved or
//!   deleted two ways, deleted on one side and changed on the other,
//!   overlapping lines, binary or redacted content, a symlink retargeted two
//!   ways, a name the store took meanwhile.
//!
//! Each planned change becomes filesystem steps (`fs::Step`) and the rebase
//! of the draft on what the merge made.

use super::sides::{Content, Key, Node, Sides};
use super::within;
use crate::error::StoreError;
use crate::fs::Step;
use crate::ids::{Ino, VersionId};
use crate::ops::merge3::{self, Merged};
use crate::ops::Ops;
use crate::store::NodeKind;
use std::collections::{BTreeSet, HashMap};

/// Text larger than this is not merged line by line (a conflict instead).
const MAX_MERGE_BYTES: usize = 8 << 20;

/// One change a merge makes (or would make) to the store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Action {
    /// Where it ends (for a deletion: where it was).
    pub path: String,
    /// Where it is in the store now, when it moves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `file`, `dir` or `symlink`.
    pub kind: &'static str,
    /// `add`, `delete`, `write`, `move`, `move+write`, `mkdir`, `rmdir`,
    /// `relink` (a symlink's new target), or `none` (both sides made it).
    pub action: &'static str,
    /// `draft` (the draft's change as it is), `merged` (both sides' changes,
    /// line by line or appended), `same` (both made the same change).
    pub how: &'static str,
}

/// A change the merge leaves for a person.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MergeConflict {
    pub path: String,
    pub kind: &'static str,
    pub reason: String,
    /// What the draft did to it, and what the store did since the base.
    pub draft: &'static str,
    pub store: &'static str,
    /// For text changed on both sides: where the lines overlap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hunks: Vec<merge3::Conflict>,
    /// The text with conflict markers (ours: the draft, theirs: the store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marked: Option<String>,
}

/// How the draft's base moves once an item is merged.
#[derive(Clone, Debug)]
pub struct Rebase {
    /// The base's path to drop.
    pub old_path: Option<String>,
    /// The path the merged node has in the store (and will have in the base).
    pub new_path: Option<String>,
    pub kind: NodeKind,
    /// The draft's inode for it.
    pub draft_ino: Option<Ino>,
    /// The draft's head for it (a file).
    pub draft_head: Option<VersionId>,
    /// The store's inode and head, when no step changes them.
    pub store: Option<(Ino, Option<VersionId>)>,
    pub target: Option<Vec<u8>>,
}

/// One item of a plan.
#[derive(Clone, Debug)]
pub struct Planned {
    pub action: Action,
    pub steps: Vec<Step>,
    pub rebase: Rebase,
}

/// What merging would do.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Planned>,
    pub conflicts: Vec<MergeConflict>,
}

/// Reads a version's whole content (`None`: empty).
pub type Reader<'a> = dyn FnMut(Option<VersionId>) -> Result<Vec<u8>, StoreError> + 'a;

/// What one side did to a node against the base.
pub fn change_of(b: Option<&Node>, x: Option<&Node>) -> Option<&'static str> {
    match (b, x) {
        (None, None) => None,
        (None, Some(_)) => Some("added"),
        (Some(_), None) => Some("deleted"),
        (Some(b), Some(x)) => {
            let moved = b.path != x.path;
            let changed = !b.content.same(&x.content);
            match (moved, changed) {
                (false, false) => None,
                (true, false) => Some("renamed"),
                (false, true) => Some("modified"),
                (true, true) => Some("renamed+modified"),
            }
        }
    }
}

fn same(a: Option<&Node>, b: Option<&Node>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.path == b.path && a.content.same(&b.content),
        _ => false,
    }
}

/// The result of merging one node: where it ends and what it holds, or why not.
enum Outcome {
    /// `None`: deleted.
    At(Option<String>, Holds, &'static str),
    Conflict(String, Vec<merge3::Conflict>, Option<String>),
}

/// What a merged node holds.
enum Holds {
    /// A side's content as it is.
    Content(Content),
    /// Text merged from both sides.
    Bytes(Vec<u8>),
}

/// Merges `d` and `s` (both changed) line by line against `b`.
fn merge_bytes(
    b: &[u8],
    d: &[u8],
    s: &[u8],
) -> Result<Vec<u8>, (String, Vec<merge3::Conflict>, Option<String>)> {
    if d.starts_with(b) && s.starts_with(b) {
        // Both appended (a log): the store's lines, then the draft's.
        let mut out = s.to_vec();
        out.extend_from_slice(&d[b.len()..]);
        return Ok(out);
    }
    if [b.len(), d.len(), s.len()]
        .iter()
        .any(|&n| n > MAX_MERGE_BYTES)
    {
        return Err((
            "changed on both sides and too large to merge line by line".into(),
            vec![],
            None,
        ));
    }
    let (Ok(bt), Ok(dt), Ok(st)) = (
        std::str::from_utf8(b),
        std::str::from_utf8(d),
        std::str::from_utf8(s),
    ) else {
        return Err(("changed on both sides and not text".into(), vec![], None));
    };
    match merge3::merge3(bt, dt, st) {
        Merged::Clean(t) => Ok(t.into_bytes()),
        Merged::Conflicts(marked, cs) => Err((
            format!(
                "changed on both sides where the lines overlap ({} place(s))",
                cs.len()
            ),
            cs,
            Some(marked),
        )),
    }
}

/// Three-way choice of a value: the side that changed it, or `None` when
/// both changed it differently.
fn pick<T: PartialEq + Clone>(b: &T, d: &T, s: &T) -> Option<T> {
    if d == b {
        Some(s.clone())
    } else if s == b || d == s {
        Some(d.clone())
    } else {
        None
    }
}

fn head_of(n: Option<&Node>) -> Option<VersionId> {
    match n.map(|n| &n.content) {
        Some(Content::File { head, .. }) => *head,
        _ => None,
    }
}

/// Decides one node changed by the draft.
fn outcome(
    b: Option<&Node>,
    d: Option<&Node>,
    s: Option<&Node>,
    read: &mut Reader<'_>,
) -> Result<Outcome, StoreError> {
    if same(b, s) {
        let at = d.map(|d| d.path.clone());
        let holds = Holds::Content(d.map_or(Content::Dir, |d| d.content.clone()));
        return Ok(Outcome::At(at, holds, "draft"));
    }
    if same(d, s) {
        let at = d.map(|d| d.path.clone());
        let holds = Holds::Content(d.map_or(Content::Dir, |d| d.content.clone()));
        return Ok(Outcome::At(at, holds, "same"));
    }
    let (lb, ld, ls) = (b.map(|n| &n.path), d.map(|n| &n.path), s.map(|n| &n.path));
    let Some(at) = pick(&lb, &ld, &ls) else {
        let why = match (ld, ls) {
            (None, _) | (_, None) => "deleted on one side and moved on the other",
            _ => "moved to different places on the two sides",
        };
        return Ok(Outcome::Conflict(why.into(), vec![], None));
    };
    let (cb, cd, cs) = (
        b.map(|n| &n.content),
        d.map(|n| &n.content),
        s.map(|n| &n.content),
    );
    let unchanged = |x: Option<&Content>| match (cb, x) {
        (Some(b), Some(x)) => b.same(x),
        (None, None) => true,
        _ => false,
    };
    let Some(at) = at.cloned() else {
        // Deleted on one side: the other must not have changed its content.
        if (d.is_none() && !unchanged(cs)) || (s.is_none() && !unchanged(cd)) {
            return Ok(Outcome::Conflict(
                "deleted on one side and changed on the other".into(),
                vec![],
                None,
            ));
        }
        return Ok(Outcome::At(None, Holds::Content(Content::Dir), "merged"));
    };
    let (Some(cd), Some(cs)) = (cd, cs) else {
        return Ok(Outcome::Conflict("made on both sides".into(), vec![], None));
    };
    if unchanged(Some(cd)) {
        return Ok(Outcome::At(Some(at), Holds::Content(cs.clone()), "merged"));
    }
    if unchanged(Some(cs)) || cd.same(cs) {
        return Ok(Outcome::At(Some(at), Holds::Content(cd.clone()), "merged"));
    }
    match (cb, cd, cs) {
        (
            Some(Content::File { hash: Some(_), .. }),
            Content::File { hash: Some(_), .. },
            Content::File { hash: Some(_), .. },
        ) => {
            let (bb, db, sb) = (read(head_of(b))?, read(head_of(d))?, read(head_of(s))?);
            match merge_bytes(&bb, &db, &sb) {
                Ok(bytes) => Ok(Outcome::At(Some(at), Holds::Bytes(bytes), "merged")),
                Err((why, hunks, marked)) => Ok(Outcome::Conflict(why, hunks, marked)),
            }
        }
        (_, Content::File { .. }, Content::File { .. }) => Ok(Outcome::Conflict(
            "changed on both sides, and a version involved was redacted".into(),
            vec![],
            None,
        )),
        (_, a, b) if a.kind() != b.kind() => Ok(Outcome::Conflict(
            "replaced by different kinds of node on the two sides".into(),
            vec![],
            None,
        )),
        _ => Ok(Outcome::Conflict(
            "changed on both sides".into(),
            vec![],
            None,
        )),
    }
}

/// The steps that take the store's node `s` to `at` holding `holds`.
fn steps_for(
    kind: NodeKind,
    s: Option<&Node>,
    at: Option<&str>,
    holds: &Holds,
    read: &mut Reader<'_>,
) -> Result<(Vec<Step>, &'static str), StoreError> {
    let mut steps = Vec::new();
    let action = match (kind, s, at) {
        (_, None, None) => "none",
        (NodeKind::Dir, Some(s), None) => {
            steps.push(Step::RemoveDirIfEmpty {
                ino: s.ino,
                path: s.path.clone(),
            });
            "rmdir"
        }
        (_, Some(s), None) => {
            steps.push(Step::Remove {
                ino: s.ino,
                path: s.path.clone(),
                head: head_of(Some(s)),
            });
            "delete"
        }
        (NodeKind::Dir, None, Some(p)) => {
            steps.push(Step::MakeDir {
                path: p.to_string(),
            });
            "mkdir"
        }
        (NodeKind::Dir, Some(s), Some(p)) => {
            if s.path == p {
                "none"
            } else {
                steps.push(Step::MakeDir {
                    path: p.to_string(),
                });
                steps.push(Step::RemoveDirIfEmpty {
                    ino: s.ino,
                    path: s.path.clone(),
                });
                "move"
            }
        }
        (NodeKind::Symlink, s, Some(p)) => {
            let target = match holds {
                Holds::Content(Content::Link(t)) => t.clone(),
                _ => Vec::new(),
            };
            match s {
                Some(s) if s.content == Content::Link(target.clone()) => {
                    if s.path == p {
                        "none"
                    } else {
                        steps.push(Step::Move {
                            ino: s.ino,
                            from: s.path.clone(),
                            to: p.to_string(),
                            head: None,
                        });
                        "move"
                    }
                }
                Some(s) => {
                    steps.push(Step::Remove {
                        ino: s.ino,
                        path: s.path.clone(),
                        head: None,
                    });
                    steps.push(Step::Symlink {
                        path: p.to_string(),
                        target,
                    });
                    "relink"
                }
                None => {
                    steps.push(Step::Symlink {
                        path: p.to_string(),
                        target,
                    });
                    "add"
                }
            }
        }
        (_, s, Some(p)) => {
            let bytes = |read: &mut Reader<'_>| -> Result<Vec<u8>, StoreError> {
                match holds {
                    Holds::Bytes(b) => Ok(b.clone()),
                    Holds::Content(Content::File { head, .. }) => read(*head),
                    Holds::Content(_) => Ok(Vec::new()),
                }
            };
            match s {
                None => {
                    steps.push(Step::Create {
                        path: p.to_string(),
                        content: bytes(read)?,
                    });
                    "add"
                }
                Some(s) => {
                    let moved = s.path != p;
                    let rewrite = match holds {
                        Holds::Bytes(_) => true,
                        Holds::Content(c) => !c.same(&s.content),
                    };
                    if moved {
                        steps.push(Step::Move {
                            ino: s.ino,
                            from: s.path.clone(),
                            to: p.to_string(),
                            head: head_of(Some(s)),
                        });
                    }
                    if rewrite {
                        let content = bytes(read)?;
                        let old = read(head_of(Some(s)))?;
                        steps.push(Step::Write {
                            ino: s.ino,
                            path: p.to_string(),
                            head: head_of(Some(s)),
                            append: content.starts_with(&old),
                            content,
                        });
                    }
                    match (moved, rewrite) {
                        (true, true) => "move+write",
                        (true, false) => "move",
                        (false, true) => "write",
                        (false, false) => "none",
                    }
                }
            }
        }
    };
    Ok((steps, action))
}

/// The order steps run in: removals, moves, directories made, writes,
/// creations, then emptied directories removed (deepest first). Directories
/// are made before the files that go in them, so each is a `mkdir` of the
/// merge's own (and `rollback --session` removes it again) rather than a
/// parent made on the way by a file's creation.
pub fn phase(s: &Step) -> (u8, usize) {
    match s {
        Step::Remove { .. } => (0, 0),
        Step::Move { .. } => (1, 0),
        Step::MakeDir { path } => (2, path.matches('/').count()),
        Step::Write { .. } => (3, 0),
        Step::Create { .. } | Step::Symlink { .. } => (4, 0),
        Step::RemoveDirIfEmpty { path, .. } => (5, usize::MAX - path.matches('/').count()),
    }
}

/// Plans merging the draft whose sides are `sides`, limited to the paths
/// `select` names (and what is below them; all when empty).
pub fn plan(sides: &Sides, select: &[String], read: &mut Reader<'_>) -> Result<Plan, StoreError> {
    let keys: BTreeSet<Key> = sides
        .base
        .keys()
        .chain(sides.draft.keys())
        .copied()
        .collect();
    let mut out = Plan::default();
    // Where every node of the store will be once the plan is applied, to
    // find names a planned change would take from another node.
    let mut after: HashMap<String, (Key, NodeKind)> = sides
        .store
        .iter()
        .map(|(k, n)| (n.path.clone(), (*k, n.content.kind())))
        .collect();
    let mut candidates = Vec::new();
    for key in keys {
        let (b, d, s) = (
            sides.base.get(&key),
            sides.draft.get(&key),
            sides.store.get(&key),
        );
        let chosen = select.is_empty()
            || [b, d, s]
                .iter()
                .flatten()
                .any(|n| select.iter().any(|sel| within(&n.path, sel)));
        if !chosen || same(b, d) {
            continue;
        }
        let kind = d.or(b).map_or(NodeKind::File, |n| n.content.kind());
        let kind_name = Ops::kind_name(kind);
        let conflict = |reason: String, hunks, marked| MergeConflict {
            path: d.or(b).map(|n| n.path.clone()).unwrap_or_default(),
            kind: kind_name,
            reason,
            draft: change_of(b, d).unwrap_or("none"),
            store: change_of(b, s).unwrap_or("none"),
            hunks,
            marked,
        };
        if kind_name == "other" {
            out.conflicts.push(conflict(
                "fifos, sockets and devices are not merged".into(),
                vec![],
                None,
            ));
            continue;
        }
        match outcome(b, d, s, read)? {
            Outcome::Conflict(reason, hunks, marked) => {
                out.conflicts.push(conflict(reason, hunks, marked))
            }
            Outcome::At(at, holds, how) => {
                let (steps, action) = if how == "same" {
                    (Vec::new(), "none")
                } else {
                    steps_for(kind, s, at.as_deref(), &holds, read)?
                };
                let rebase = Rebase {
                    old_path: b.map(|n| n.path.clone()),
                    new_path: at.clone(),
                    kind,
                    draft_ino: d.map(|n| n.ino),
                    draft_head: head_of(d),
                    store: s
                        .filter(|_| steps.is_empty())
                        .map(|s| (s.ino, head_of(Some(s)))),
                    target: match d.map(|n| &n.content) {
                        Some(Content::Link(t)) => Some(t.clone()),
                        _ => None,
                    },
                };
                let action = Action {
                    path: at
                        .clone()
                        .or_else(|| s.map(|n| n.path.clone()))
                        .or_else(|| b.map(|n| n.path.clone()))
                        .unwrap_or_default(),
                    from: s
                        .filter(|s| at.as_ref().is_some_and(|a| *a != s.path))
                        .map(|s| s.path.clone()),
                    kind: kind_name,
                    action,
                    how,
                };
                if let Some(s) = s {
                    if at.as_deref() != Some(s.path.as_str()) {
                        after.remove(&s.path);
                    }
                }
                candidates.push((
                    key,
                    Planned {
                        action,
                        steps,
                        rebase,
                    },
                    b.cloned(),
                    d.cloned(),
                    s.cloned(),
                ));
            }
        }
    }
    for (key, item, b, d, s) in candidates {
        let Some(p) = item.rebase.new_path.clone() else {
            out.items.push(item);
            continue;
        };
        let kind = item.rebase.kind;
        let taken = match after.get(&p) {
            Some((k, _)) if *k == key => None,
            Some((_, NodeKind::Dir)) if kind == NodeKind::Dir => None,
            Some(_) => Some(format!("the store has another node at '{p}'")),
            None => None,
        };
        let blocked = taken.or_else(|| {
            let mut prefix = String::new();
            for part in p.split('/').take(p.matches('/').count()) {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                if let Some((_, k)) = after.get(&prefix) {
                    if *k != NodeKind::Dir {
                        return Some(format!(
                            "the store has a file at '{prefix}', where the draft has a directory"
                        ));
                    }
                }
            }
            None
        });
        match blocked {
            Some(reason) => out.conflicts.push(MergeConflict {
                path: p,
                kind: item.action.kind,
                reason,
                draft: change_of(b.as_ref(), d.as_ref()).unwrap_or("none"),
                store: change_of(b.as_ref(), s.as_ref()).unwrap_or("none"),
                hunks: vec![],
                marked: None,
            }),
            None => {
                after.insert(p, (key, kind));
                out.items.push(item);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

//! A change set: many whole-file changes to one store applied as one
//! transaction, all or nothing (a draft's merge). Each step is the change a
//! front end without a kernel makes (`put.rs`, `put_tree.rs`), with its own
//! audit entry, and passes the same checks: attachment mode, archive state,
//! path policies, quotas, content rules and write leases. Each step also
//! names the state it was planned against (the file's head and path): if
//! the store changed since, the whole set fails with `Precondition` and
//! nothing is applied.
//!
//! [`MemFs::prepare_steps`] runs the checks that can be made before the
//! transaction for every step, so a refusal lists every reason rather than
//! the first one; it also applies the content rules (a `redact` store's
//! content is stored redacted).

use super::policy::{check_new_name, check_path_len, Access};
use super::put::{split_path, Screened};
use super::put_tree::Doomed;
use super::{Caller, MemFs};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, StoreId, VersionId};
use crate::store::{InodeRow, NodeKind, Txn};

/// Mode of the directories and symlinks a change set makes (as `put.rs`).
const DIR_PERM: u16 = 0o777;

/// One change of a change set.
#[derive(Clone, Debug)]
pub enum Step {
    /// Removes file or symlink `ino` (every name), found at `path` with head `head`.
    Remove {
        ino: Ino,
        path: String,
        head: Option<VersionId>,
    },
    /// Moves `ino` from `from` to the free name `to` (parents are made).
    Move {
        ino: Ino,
        from: String,
        to: String,
        head: Option<VersionId>,
    },
    /// Replaces the content of file `ino` at `path` whose head is `head`.
    /// `append`: the new content extends the old (allowed on append-only paths).
    Write {
        ino: Ino,
        path: String,
        head: Option<VersionId>,
        content: Vec<u8>,
        append: bool,
    },
    /// Creates file `path` (free now) with `content`; parents are made.
    Create { path: String, content: Vec<u8> },
    /// Creates symlink `path` (free now) pointing at `target`.
    Symlink { path: String, target: Vec<u8> },
    /// Makes directory `path` and its missing parents.
    MakeDir { path: String },
    /// Removes directory `ino` at `path` if it is empty then.
    RemoveDirIfEmpty { ino: Ino, path: String },
}

impl Step {
    /// The path the step changes (its target, for a move).
    pub fn path(&self) -> &str {
        match self {
            Step::Remove { path, .. }
            | Step::Write { path, .. }
            | Step::Create { path, .. }
            | Step::Symlink { path, .. }
            | Step::MakeDir { path }
            | Step::RemoveDirIfEmpty { path, .. } => path,
            Step::Move { to, .. } => to,
        }
    }
}

/// What a step left: the inode at its path and that inode's head (`None`
/// for a removal, or an empty directory's removal that was skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    pub ino: Option<Ino>,
    pub head: Option<VersionId>,
}

/// Steps whose content passed the store's content rules, ready to apply.
pub struct Prepared {
    steps: Vec<Step>,
    /// Per step: the content to store (after the rules) and what they found.
    screened: Vec<Option<Screened>>,
}

impl Prepared {
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

impl MemFs {
    /// Checks every step against the store's path policies, file size limit
    /// and content rules (a refusal by the content rules is audited as
    /// `rejected` when `record`), and returns the steps ready to apply, or
    /// every refusal with its path.
    pub fn prepare_steps(
        &self,
        store: StoreId,
        steps: Vec<Step>,
        record: bool,
    ) -> Result<Prepared, Vec<(String, FsError)>> {
        let mut problems = Vec::new();
        let att = match self.attached_by_id(store) {
            Ok(a) => a,
            Err(e) => return Err(vec![(String::new(), e)]),
        };
        if !att.writable() {
            return Err(vec![(
                String::new(),
                FsError::ReadOnly("store attached read-only"),
            )]);
        }
        let policy = att.policy();
        let who = &self.who.agent;
        let mut screened = Vec::with_capacity(steps.len());
        for step in &steps {
            let checks: Vec<(&str, Access)> = match step {
                Step::Remove { path, .. } => vec![(path, Access::Remove)],
                Step::Move { from, to, .. } => vec![(from, Access::Remove), (to, Access::Create)],
                Step::Write { path, append, .. } => {
                    vec![(
                        path,
                        if *append {
                            Access::Append
                        } else {
                            Access::Modify
                        },
                    )]
                }
                Step::Create { path, .. } | Step::Symlink { path, .. } => {
                    vec![(path, Access::Create)]
                }
                Step::MakeDir { .. } => vec![],
                Step::RemoveDirIfEmpty { path, .. } => vec![(path, Access::Remove)],
            };
            for (path, access) in checks {
                if let Err(e) = check_path_len(path).and_then(|_| policy.check(who, path, access)) {
                    problems.push((path.to_string(), e));
                }
            }
            let content = match step {
                Step::Write {
                    ino, path, content, ..
                } => Some((Some(*ino), path, content)),
                Step::Create { path, content } => Some((None, path, content)),
                _ => None,
            };
            screened.push(match content {
                Some((ino, path, data)) => match self.screen_as(store, ino, path, data, record) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        problems.push((path.clone(), e));
                        None
                    }
                },
                None => None,
            });
        }
        if problems.is_empty() {
            Ok(Prepared { steps, screened })
        } else {
            Err(problems)
        }
    }

    /// Applies prepared steps to `store` in one transaction, in order, then
    /// runs `then` in the same transaction with what each step left (a
    /// merge rebases its draft there). Any failure undoes everything.
    pub fn apply_steps<T>(
        &self,
        store: StoreId,
        prepared: &Prepared,
        then: impl FnOnce(&Txn<'_>, &[Done]) -> FsResult<T>,
    ) -> FsResult<(Vec<Done>, T)> {
        self.db.write(|tx| {
            let mut done = Vec::with_capacity(prepared.steps.len());
            for (step, content) in prepared.steps.iter().zip(&prepared.screened) {
                done.push(self.apply_one(tx, store, step, content.as_ref())?);
            }
            let out = then(tx, &done)?;
            Ok((done, out))
        })
    }

    /// A live node of `store` that is still what the step was planned on.
    fn planned(
        &self,
        tx: &Txn<'_>,
        store: StoreId,
        ino: Ino,
        path: &str,
        head: Option<VersionId>,
    ) -> FsResult<InodeRow> {
        let (row, att) = self.inode(tx, ino)?;
        let changed = || {
            FsError::Precondition(format!(
                "'{path}' changed in the store since the merge was planned; plan it again"
            ))
        };
        if att.store.id != store || row.nlink == 0 || row.head != head {
            return Err(changed());
        }
        if !self.paths_of(tx, ino)?.iter().any(|p| p == path) {
            return Err(changed());
        }
        Ok(row)
    }

    fn apply_one(
        &self,
        tx: &Txn<'_>,
        store: StoreId,
        step: &Step,
        content: Option<&Screened>,
    ) -> FsResult<Done> {
        let att = self.attached_by_id(store)?;
        let now = now_ns();
        match step {
            Step::Remove { ino, path, head } => {
                let row = self.planned(tx, store, *ino, path, *head)?;
                if row.kind == NodeKind::Dir {
                    return Err(FsError::IsDir);
                }
                self.check_not_leased(tx, *ino, path)?;
                self.check_inode_change(tx, att, *ino, Access::Remove)?;
                for (parent, name) in tx.entries_of(*ino)? {
                    let path = self.child_path(tx, parent, &name)?;
                    let row = tx.inode(*ino)?.ok_or(FsError::NotFound)?;
                    self.remove_entry(
                        tx,
                        store,
                        Doomed {
                            parent,
                            name,
                            row,
                            path,
                        },
                        now,
                    )?;
                }
                Ok(Done {
                    ino: None,
                    head: None,
                })
            }
            Step::Move {
                ino,
                from,
                to,
                head,
            } => {
                let row = self.planned(tx, store, *ino, from, *head)?;
                self.check_not_leased(tx, *ino, from)?;
                let parts = split_path(to)?;
                self.move_in(tx, att, &row, from, &parts, to)?;
                Ok(Done {
                    ino: Some(*ino),
                    head: row.head,
                })
            }
            Step::Write {
                ino,
                path,
                head,
                append,
                ..
            } => {
                let row = self.planned(tx, store, *ino, path, *head)?;
                let content = content.ok_or(FsError::Invalid("content was not prepared"))?;
                let access = if *append {
                    Access::Append
                } else {
                    Access::Modify
                };
                let w = self.write_content_as(
                    tx,
                    row,
                    path,
                    content,
                    super::Expect::Any,
                    false,
                    (Vec::new(), Vec::new()),
                    access,
                )?;
                Ok(Done {
                    ino: Some(w.ino),
                    head: w.version,
                })
            }
            Step::Create { path, .. } => {
                let content = content.ok_or(FsError::Invalid("content was not prepared"))?;
                let parts = split_path(path)?;
                let (parent, made) = self.parents_in(tx, att.store.root, &parts)?;
                let name = parts[parts.len() - 1].as_bytes();
                if tx.lookup(parent, name)?.is_some() {
                    return Err(FsError::Precondition(format!(
                        "'{path}' was made in the store since the merge was planned; plan it again"
                    )));
                }
                let (ino, _, _) = self.make_node_in(
                    tx,
                    parent,
                    name,
                    NodeKind::File,
                    0o666,
                    0,
                    None,
                    Caller::default(),
                    "",
                )?;
                let row = tx.inode(ino)?.ok_or(FsError::NotFound)?;
                let made_paths = self.made_paths(tx, &made)?;
                let mut entries = made;
                entries.push((parent, name.to_vec()));
                let w = self.write_content_in(
                    tx,
                    row,
                    path,
                    content,
                    super::Expect::Absent,
                    true,
                    entries,
                    made_paths,
                )?;
                Ok(Done {
                    ino: Some(w.ino),
                    head: w.version,
                })
            }
            Step::Symlink { path, target } => {
                let parts = split_path(path)?;
                let (parent, _) = self.parents_in(tx, att.store.root, &parts)?;
                let name = parts[parts.len() - 1].as_bytes();
                let (ino, _, _) = self.make_node_in(
                    tx,
                    parent,
                    name,
                    NodeKind::Symlink,
                    DIR_PERM,
                    0,
                    Some(target),
                    Caller::default(),
                    "symlink",
                )?;
                Ok(Done {
                    ino: Some(ino),
                    head: None,
                })
            }
            Step::MakeDir { path } => {
                let mut cur = att.store.root;
                for part in split_path(path)? {
                    let name = part.as_bytes();
                    cur = match tx.lookup_inode(cur, name)? {
                        Some(r) if r.kind == NodeKind::Dir => r.ino,
                        Some(_) => return Err(FsError::NotDir),
                        None => {
                            check_new_name(name)?;
                            let (ino, _, _) = self.make_node_in(
                                tx,
                                cur,
                                name,
                                NodeKind::Dir,
                                DIR_PERM,
                                0,
                                None,
                                Caller::default(),
                                "mkdir",
                            )?;
                            ino
                        }
                    };
                }
                Ok(Done {
                    ino: Some(cur),
                    head: None,
                })
            }
            Step::RemoveDirIfEmpty { ino, path } => {
                let Some(row) = tx.inode(*ino)? else {
                    return Ok(Done {
                        ino: None,
                        head: None,
                    });
                };
                let here = tx.path_of(*ino)?;
                if row.nlink == 0 || here.as_deref() != Some(path) || tx.has_children(*ino)? {
                    // Gone already, moved, or the store put something in it.
                    return Ok(Done {
                        ino: Some(*ino).filter(|_| row.nlink > 0),
                        head: None,
                    });
                }
                self.check_change(tx, att, path, Access::Remove)?;
                let (parent, name) = tx.parent_entry(*ino)?.ok_or(FsError::NotFound)?;
                self.remove_entry(
                    tx,
                    store,
                    Doomed {
                        parent,
                        name,
                        row,
                        path: path.clone(),
                    },
                    now,
                )?;
                Ok(Done {
                    ino: None,
                    head: None,
                })
            }
        }
    }
}

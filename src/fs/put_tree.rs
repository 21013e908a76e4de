//! Whole-tree changes for front ends without a kernel (the memory tool and
//! MCP's file tools): make a directory with its missing parents, remove a
//! directory with everything below it, move a directory. Each is one
//! transaction, all or nothing, with one audit entry per name made, removed or
//! moved (what `mkdir -p`, `rm -r` and `mv` through a mount would record), and
//! the same checks as a mount: attachment mode, archive state, path policies,
//! quotas, and write leases (a file open for writing in a mount is not
//! removed under it).

use super::policy::{check_new_name, check_path_len, Access};
use super::{check_name, touch_dir, Caller, MemFs};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, StoreId};
use crate::store::{Change, InodeRow, NodeKind, Txn};

/// Mode of directories made here (as `put.rs` makes them): memfs's policies,
/// not Unix permissions, decide who may change a store.
const DIR_PERM: u16 = 0o777;

/// The deepest tree [`MemFs::remove_tree`] walks (a cycle would be corruption).
const MAX_DEPTH: usize = 256;

/// One name to remove, children before their directory.
pub(super) struct Doomed {
    pub(super) parent: Ino,
    pub(super) name: Vec<u8>,
    pub(super) row: InodeRow,
    pub(super) path: String,
}

/// Splits a store-relative path into checked components.
fn parts_of(path: &str) -> FsResult<Vec<&str>> {
    check_path_len(path)?;
    if path.is_empty() {
        return Err(FsError::Invalid("empty path"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts {
        check_name(p.as_bytes())?;
    }
    Ok(parts)
}

impl MemFs {
    /// Makes directory `path` (store-relative) in `store` and every missing
    /// parent. An existing directory is fine; a file in the way is `NotDir`
    /// (for a parent) or `Exists` (for `path` itself). Returns the directory.
    pub fn make_dirs(&self, store: StoreId, path: &str) -> FsResult<Ino> {
        let parts = parts_of(path)?;
        self.db.write(|tx| {
            let att = self.attached_by_id(store)?;
            let mut cur = att.store.root;
            for (i, part) in parts.iter().enumerate() {
                let name = part.as_bytes();
                cur = match tx.lookup_inode(cur, name)? {
                    Some(r) if r.kind == NodeKind::Dir => r.ino,
                    Some(_) if i + 1 == parts.len() => return Err(FsError::Exists),
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
            Ok(cur)
        })
    }

    /// Removes `ino` of `store` (a directory with everything below it, or any
    /// other node) by its name. A file's versions stay, as for any removal.
    /// Returns how many names were removed.
    pub fn remove_tree(&self, store: StoreId, ino: Ino) -> FsResult<usize> {
        self.db.write(|tx| {
            let att = self.attached_by_id(store)?;
            if ino == att.store.root {
                return Err(FsError::Invalid("a store's root cannot be removed"));
            }
            let (row, owner) = self.inode(tx, ino)?;
            if owner.store.id != store || row.nlink == 0 {
                return Err(FsError::NotFound);
            }
            let path = tx.path_of(ino)?.ok_or(FsError::NotFound)?;
            let (parent, name) = tx.parent_entry(ino)?.ok_or(FsError::NotFound)?;
            let mut doomed = Vec::new();
            self.collect_tree(tx, ino, &row, &path, 0, &mut doomed)?;
            doomed.push(Doomed {
                parent,
                name,
                row,
                path,
            });
            // Everything is checked before anything is removed, so a refusal
            // names the first protected path and leaves the tree whole.
            for d in &doomed {
                self.check_change(tx, att, &d.path, Access::Remove)?;
                if d.row.kind == NodeKind::File {
                    self.check_not_leased(tx, d.row.ino, &d.path)?;
                }
            }
            let now = now_ns();
            let n = doomed.len();
            for d in doomed {
                self.remove_entry(tx, store, d, now)?;
            }
            Ok(n)
        })
    }

    /// Adds every name below directory `dir` (at `path`) to `out`, each
    /// directory's entries before the directory itself.
    fn collect_tree(
        &self,
        tx: &Txn<'_>,
        dir: Ino,
        row: &InodeRow,
        path: &str,
        depth: usize,
        out: &mut Vec<Doomed>,
    ) -> FsResult<()> {
        if row.kind != NodeKind::Dir {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(FsError::Invalid("directory tree too deep"));
        }
        for (name, child, _) in tx.children(dir)? {
            let crow = tx.inode(child)?.ok_or(FsError::NotFound)?;
            let cpath = format!("{path}/{}", String::from_utf8_lossy(&name));
            self.collect_tree(tx, child, &crow, &cpath, depth + 1, out)?;
            out.push(Doomed {
                parent: dir,
                name,
                row: crow,
                path: cpath,
            });
        }
        Ok(())
    }

    /// Removes one name (its directory's entries are gone already), with its
    /// audit entry: `rmdir` for a directory, `unlink` otherwise.
    pub(super) fn remove_entry(
        &self,
        tx: &Txn<'_>,
        store: StoreId,
        d: Doomed,
        now: i64,
    ) -> FsResult<()> {
        self.remove_name_in(tx, store, d.parent, &d.name, &d.path, now)
    }

    /// Moves directory (or other node) `ino` of `store` to `new_path`, whose
    /// parent must exist and whose name must be free. Everything below moves
    /// with it; no descendant may leave or enter a protected path.
    pub fn move_node(&self, store: StoreId, ino: Ino, new_path: &str) -> FsResult<()> {
        let parts = parts_of(new_path)?;
        self.db.write(|tx| {
            let att = self.attached_by_id(store)?;
            if ino == att.store.root {
                return Err(FsError::Invalid("a store's root cannot be moved"));
            }
            let (mut row, owner) = self.inode(tx, ino)?;
            if owner.store.id != store || row.nlink == 0 {
                return Err(FsError::NotFound);
            }
            let old_path = tx.path_of(ino)?.ok_or(FsError::NotFound)?;
            let parent_path = parts[..parts.len() - 1].join("/");
            let parent = tx
                .resolve_path(att.store.root, &parent_path)?
                .ok_or(FsError::NotFound)?;
            let name = parts[parts.len() - 1].as_bytes();
            let (mut new_dir, _) = self.writable_dir(tx, parent)?;
            if tx.lookup(parent, name)?.is_some() {
                return Err(FsError::Exists);
            }
            if row.kind == NodeKind::Dir && self.is_within(tx, parent, ino)? {
                return Err(FsError::Invalid("cannot move a directory into itself"));
            }
            check_new_name(name)?;
            self.check_change(tx, att, &old_path, Access::Remove)?;
            self.check_change(tx, att, new_path, Access::Create)?;
            if row.kind == NodeKind::Dir {
                self.check_moved_subtree(tx, att, ino, &old_path, new_path)?;
            }
            let (old_parent, old_name) = tx.parent_entry(ino)?.ok_or(FsError::NotFound)?;
            let now = now_ns();
            tx.remove_dentry(old_parent, &old_name)?;
            tx.insert_dentry(parent, name, ino)?;
            if old_parent != parent {
                let mut old_dir = tx.inode(old_parent)?.ok_or(FsError::NotFound)?;
                if row.kind == NodeKind::Dir {
                    old_dir.nlink = old_dir.nlink.saturating_sub(1);
                    new_dir.nlink += 1;
                }
                touch_dir(tx, &mut old_dir, now)?;
            }
            touch_dir(tx, &mut new_dir, now)?;
            row.ctime_ns = now;
            tx.save_inode(&row)?;
            self.record(
                tx,
                now,
                Change {
                    store: Some(store),
                    op: "rename",
                    path: Some(&old_path),
                    path2: Some(new_path),
                    ino: Some(ino),
                    version: row.head,
                    entries: vec![(old_parent, old_name), (parent, name.to_vec())],
                    ..Default::default()
                },
            )
        })
    }
}

//! rename(2) and renameat2(2): plain, `RENAME_NOREPLACE` and `RENAME_EXCHANGE`.
//! A rename is one dentry update; content and history follow the inode.

use super::policy::{check_new_name, check_path_len, Access};
use super::{check_name, Caller, MemFs};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino};
use crate::store::{Change, InodeRow, NodeKind, Txn};

/// renameat2 flags memfs understands.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenameMode {
    pub noreplace: bool,
    pub exchange: bool,
}

impl MemFs {
    /// Whether `dir` is `ancestor` or lies below it.
    pub(super) fn is_within(&self, tx: &Txn<'_>, dir: Ino, ancestor: Ino) -> FsResult<bool> {
        let mut cur = dir;
        for _ in 0..4096 {
            if cur == ancestor {
                return Ok(true);
            }
            match tx.parent_entry(cur)? {
                Some((p, _)) => cur = p,
                None => return Ok(false),
            }
        }
        Err(FsError::Invalid("directory tree too deep"))
    }

    /// Moving a directory moves everything below it: no descendant may leave or
    /// enter a protected path, and none may end up past the path length limit.
    pub(super) fn check_moved_subtree(
        &self,
        tx: &Txn<'_>,
        att: &crate::fs::Attached,
        dir: Ino,
        old_path: &str,
        new_path: &str,
    ) -> FsResult<()> {
        let policy = att.policy();
        let guarded = !policy.read_only.is_empty() || !policy.append_only.is_empty();
        let longer = new_path.len() > old_path.len();
        if !guarded && !longer {
            return Ok(());
        }
        let mut stack = vec![(dir, String::new())];
        while let Some((d, rel)) = stack.pop() {
            for (name, child, kind) in tx.children(d)? {
                let name = String::from_utf8_lossy(&name);
                let rel = if rel.is_empty() {
                    name.into_owned()
                } else {
                    format!("{rel}/{name}")
                };
                let to = format!("{new_path}/{rel}");
                check_path_len(&to)?;
                if guarded {
                    let agent = &self.who.agent;
                    policy.check(agent, &format!("{old_path}/{rel}"), Access::Remove)?;
                    policy.check(agent, &to, Access::Create)?;
                }
                if kind == NodeKind::Dir {
                    stack.push((child, rel));
                }
            }
        }
        Ok(())
    }

    /// rename(2) and renameat2(2). Decided in the write transaction: a source
    /// another mount removed first is `ENOENT`, a target created or removed
    /// elsewhere is replaced or not as it is now, as on a local disk.
    pub fn rename(
        &self,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        mode: RenameMode,
        caller: Caller,
    ) -> FsResult<()> {
        let r = self.rename_in(parent, name, newparent, newname, mode);
        self.stale.settle(caller, true, r)
    }

    fn rename_in(
        &self,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        mode: RenameMode,
    ) -> FsResult<()> {
        check_name(name)?;
        check_name(newname)?;
        if mode.noreplace && mode.exchange {
            return Err(FsError::Invalid("RENAME_NOREPLACE with RENAME_EXCHANGE"));
        }
        self.db.write(|tx| {
            let (mut src_dir, att) = self.writable_dir(tx, parent)?;
            let (dst_dir0, att2) = self.writable_dir(tx, newparent)?;
            if att.store.id != att2.store.id {
                return Err(FsError::CrossStore);
            }
            let store = att.store.id;
            let same_dir = parent == newparent;
            let mut dst_dir = if same_dir { None } else { Some(dst_dir0) };
            let mut src = tx.lookup_inode(parent, name)?.ok_or(FsError::NotFound)?;
            let dst = tx.lookup_inode(newparent, newname)?;
            if src.kind == NodeKind::Dir && self.is_within(tx, newparent, src.ino)? {
                return Err(FsError::Invalid("cannot move a directory into itself"));
            }
            let old_path = self.child_path(tx, parent, name)?;
            let new_path = self.child_path(tx, newparent, newname)?;
            check_new_name(newname)?;
            check_path_len(&new_path)?;
            self.check_change(tx, att, &old_path, Access::Remove)?;
            let dst_access = if dst.is_some() {
                Access::Replace
            } else {
                Access::Create
            };
            self.check_change(tx, att, &new_path, dst_access)?;
            if src.kind == NodeKind::Dir {
                self.check_moved_subtree(tx, att, src.ino, &old_path, &new_path)?;
            }
            let now = now_ns();
            let mut detail = serde_json::Map::new();
            if mode.exchange {
                let mut other = dst.ok_or(FsError::NotFound)?;
                if other.kind == NodeKind::Dir && self.is_within(tx, parent, other.ino)? {
                    return Err(FsError::Invalid("cannot move a directory into itself"));
                }
                tx.repoint_dentry(parent, name, other.ino)?;
                tx.repoint_dentry(newparent, newname, src.ino)?;
                if let Some(d) = dst_dir.as_mut() {
                    let delta = i64::from(src.kind == NodeKind::Dir)
                        - i64::from(other.kind == NodeKind::Dir);
                    adjust_nlink(&mut src_dir, -delta);
                    adjust_nlink(d, delta);
                }
                other.ctime_ns = now;
                tx.save_inode(&other)?;
                detail.insert("exchange".into(), true.into());
            } else {
                if let Some(mut d) = dst {
                    if d.ino == src.ino {
                        // Two names of one inode: POSIX says do nothing.
                        return Ok(());
                    }
                    if mode.noreplace {
                        return Err(super::create::name_taken());
                    }
                    match (src.kind == NodeKind::Dir, d.kind == NodeKind::Dir) {
                        (true, false) => return Err(FsError::NotDir),
                        (false, true) => return Err(FsError::IsDir),
                        (true, true) if tx.has_children(d.ino)? => return Err(FsError::NotEmpty),
                        _ => {}
                    }
                    if d.kind == NodeKind::Dir {
                        d.nlink = 0;
                        adjust_nlink(dst_dir.as_mut().unwrap_or(&mut src_dir), -1);
                    } else {
                        d.nlink = d.nlink.saturating_sub(1);
                    }
                    d.ctime_ns = now;
                    tx.save_inode(&d)?;
                    tx.repoint_dentry(newparent, newname, src.ino)?;
                    tx.remove_dentry(parent, name)?;
                    detail.insert("replaced_ino".into(), d.ino.0.into());
                    if let Some(v) = d.head {
                        detail.insert("replaced_version".into(), v.0.into());
                    }
                } else {
                    tx.remove_dentry(parent, name)?;
                    tx.insert_dentry(newparent, newname, src.ino)?;
                }
                if src.kind == NodeKind::Dir {
                    if let Some(d) = dst_dir.as_mut() {
                        adjust_nlink(&mut src_dir, -1);
                        adjust_nlink(d, 1);
                    }
                }
            }
            src.ctime_ns = now;
            tx.save_inode(&src)?;
            touch(tx, &mut src_dir, now)?;
            if let Some(d) = dst_dir.as_mut() {
                touch(tx, d, now)?;
            }
            self.record(
                tx,
                now,
                Change {
                    store: Some(store),
                    op: "rename",
                    path: Some(&old_path),
                    path2: Some(&new_path),
                    ino: Some(src.ino),
                    version: src.head,
                    entries: vec![(parent, name.to_vec()), (newparent, newname.to_vec())],
                    detail: (!detail.is_empty()).then_some(serde_json::Value::Object(detail)),
                    origin: None,
                },
            )
        })
    }
}

fn adjust_nlink(dir: &mut InodeRow, delta: i64) {
    dir.nlink = (i64::from(dir.nlink) + delta).max(0) as u32;
}

fn touch(tx: &Txn<'_>, dir: &mut InodeRow, now: i64) -> FsResult<()> {
    super::touch_dir(tx, dir, now)
}

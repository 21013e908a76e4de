//! Removing entries: unlink and rmdir. Inodes are never deleted: an unlinked file
//! keeps its versions (history and rollback need them) and stays readable through
//! descriptors that were open when it was unlinked.

use super::policy::Access;
use super::{touch_dir, Caller, MemFs};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino};
use crate::store::{Change, NodeKind};

impl MemFs {
    /// unlink(2). A name another mount removed first is `ENOENT`, as on a local
    /// disk when another process was faster.
    pub fn unlink(&self, parent: Ino, name: &[u8], caller: Caller) -> FsResult<()> {
        let r = self.unlink_in(parent, name);
        self.stale.settle(caller, true, r)
    }

    fn unlink_in(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        self.db.write(|tx| {
            let (mut dir, att) = self.writable_dir(tx, parent)?;
            let mut row = tx.lookup_inode(parent, name)?.ok_or(FsError::NotFound)?;
            if row.kind == NodeKind::Dir {
                return Err(FsError::IsDir);
            }
            let now = now_ns();
            let path = self.child_path(tx, parent, name)?;
            self.check_change(tx, att, &path, Access::Remove)?;
            tx.remove_dentry(parent, name)?;
            row.nlink = row.nlink.saturating_sub(1);
            row.ctime_ns = now;
            tx.save_inode(&row)?;
            touch_dir(tx, &mut dir, now)?;
            self.record(
                tx,
                now,
                Change {
                    store: Some(att.store.id),
                    op: "unlink",
                    path: Some(&path),
                    ino: Some(row.ino),
                    version: row.head,
                    entries: vec![(parent, name.to_vec())],
                    // Names left: 0 means the file itself is gone (a deleted
                    // memory, for the API's version list).
                    detail: Some(serde_json::json!({ "nlink": row.nlink })),
                    ..Default::default()
                },
            )
        })
    }

    /// rmdir(2).
    pub fn rmdir(&self, parent: Ino, name: &[u8], caller: Caller) -> FsResult<()> {
        let r = self.rmdir_in(parent, name);
        self.stale.settle(caller, true, r)
    }

    fn rmdir_in(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        if name == b"." {
            return Err(FsError::Invalid("rmdir of '.'"));
        }
        if name == b".." {
            return Err(FsError::NotEmpty);
        }
        self.db.write(|tx| {
            let (mut dir, att) = self.writable_dir(tx, parent)?;
            let mut row = tx.lookup_inode(parent, name)?.ok_or(FsError::NotFound)?;
            if row.kind != NodeKind::Dir {
                return Err(FsError::NotDir);
            }
            let path = self.child_path(tx, parent, name)?;
            // A protected directory says so before it says it is not empty.
            self.check_change(tx, att, &path, Access::Remove)?;
            if tx.has_children(row.ino)? {
                return Err(FsError::NotEmpty);
            }
            let now = now_ns();
            tx.remove_dentry(parent, name)?;
            row.nlink = 0;
            row.ctime_ns = now;
            tx.save_inode(&row)?;
            dir.nlink = dir.nlink.saturating_sub(1);
            touch_dir(tx, &mut dir, now)?;
            self.record(
                tx,
                now,
                Change {
                    store: Some(att.store.id),
                    op: "rmdir",
                    path: Some(&path),
                    ino: Some(row.ino),
                    entries: vec![(parent, name.to_vec())],
                    ..Default::default()
                },
            )
        })
    }
}

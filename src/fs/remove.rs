//! Removing entries: unlink and rmdir. Inodes are never deleted: an unlinked file
//! keeps its versions (history and rollback need them) and stays readable through
//! descriptors that were open when it was unlinked.

use super::policy::Access;
use super::{touch_dir, Caller, MemFs};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, StoreId};
use crate::store::{Change, NodeKind, Txn};

impl MemFs {
    /// unlink(2). A name another mount removed first is `ENOENT`, as on a local
    /// disk when another process was faster.
    pub fn unlink(&self, parent: Ino, name: &[u8], caller: Caller) -> FsResult<()> {
        let r = self.unlink_in(parent, name);
        self.stale.settle(caller, true, r)
    }

    fn unlink_in(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        self.db.write(|tx| {
            let (_, att) = self.writable_dir(tx, parent)?;
            let row = tx.lookup_inode(parent, name)?.ok_or(FsError::NotFound)?;
            if row.kind == NodeKind::Dir {
                return Err(FsError::IsDir);
            }
            let now = now_ns();
            let path = self.child_path(tx, parent, name)?;
            self.check_change(tx, att, &path, Access::Remove)?;
            self.remove_name_in(tx, att.store.id, parent, name, &path, now)
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
            let (_, att) = self.writable_dir(tx, parent)?;
            let row = tx.lookup_inode(parent, name)?.ok_or(FsError::NotFound)?;
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
            self.remove_name_in(tx, att.store.id, parent, name, &path, now)
        })
    }

    /// Removes the name `parent/name` (at store path `path`) inside the
    /// caller's transaction, after the caller's checks, with its audit entry:
    /// `rmdir` for a directory (which must be empty), `unlink` otherwise. The
    /// one place a name leaves the namespace (unlink, rmdir, and the removal
    /// of a whole tree).
    pub(super) fn remove_name_in(
        &self,
        tx: &Txn<'_>,
        store: StoreId,
        parent: Ino,
        name: &[u8],
        path: &str,
        now: i64,
    ) -> FsResult<()> {
        let mut row = tx.lookup_inode(parent, name)?.ok_or(FsError::NotFound)?;
        let mut dir = tx.inode(parent)?.ok_or(FsError::NotFound)?;
        tx.remove_dentry(parent, name)?;
        let is_dir = row.kind == NodeKind::Dir;
        if is_dir {
            row.nlink = 0;
            dir.nlink = dir.nlink.saturating_sub(1);
        } else {
            row.nlink = row.nlink.saturating_sub(1);
        }
        row.ctime_ns = now;
        tx.save_inode(&row)?;
        touch_dir(tx, &mut dir, now)?;
        self.record(
            tx,
            now,
            Change {
                store: Some(store),
                op: if is_dir { "rmdir" } else { "unlink" },
                path: Some(path),
                ino: Some(row.ino),
                version: if is_dir { None } else { row.head },
                entries: vec![(parent, name.to_vec())],
                // Names left: 0 means the file itself is gone (a deleted
                // memory, for the API's version list).
                detail: (!is_dir).then(|| serde_json::json!({ "nlink": row.nlink })),
                ..Default::default()
            },
        )?;
        Ok(())
    }
}

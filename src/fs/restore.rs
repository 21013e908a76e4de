//! Operator restores (used by `memfsctl rollback`): make an old version the head
//! again without copying bytes, and give an unlinked file or directory its name
//! back. Both are new, attributed changes; history is never rewritten.

use super::{check_name, touch_dir, MemFs};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, VersionId};
use crate::store::{Change, NewVersion, NodeKind};

impl MemFs {
    /// Makes `target`'s content (or, with `None`, empty content) the head of `ino`
    /// as a new version. Returns false when the head already has that content.
    /// Any writer's lease is fenced off, so an in-flight write cannot overwrite
    /// the restored content; it becomes a conflict version instead.
    pub fn restore_content(
        &self,
        ino: Ino,
        target: Option<VersionId>,
        detail: serde_json::Value,
    ) -> FsResult<bool> {
        let now = now_ns();
        let changed = self.db.write(|tx| {
            let (mut row, att) = self.inode(tx, ino)?;
            if row.kind != NodeKind::File {
                return Err(FsError::Invalid("not a regular file"));
            }
            let (ext, hash, sha256) = match target {
                Some(v) => {
                    let vr = tx.version(v)?;
                    if !tx.version_of_file(ino, v)? {
                        return Err(FsError::Invalid("version of another file"));
                    }
                    let hash = blake3::Hash::from_hex(&vr.hash)
                        .map_err(|_| FsError::Invalid("bad stored hash"))?;
                    (tx.extents(v)?, hash, tx.version_sha256(v)?)
                }
                None => (
                    Default::default(),
                    blake3::hash(b""),
                    Some(crate::digest::sha256(b"")),
                ),
            };
            if let Some(head) = row.head {
                if tx.version(head)?.hash == hash.to_hex().as_str() {
                    return Ok(false);
                }
            } else if target.is_none() {
                return Ok(false);
            }
            tx.break_lease(ino)?;
            let path = tx.path_of(ino)?.unwrap_or_default();
            let (vid, size) = tx.insert_version(&NewVersion {
                ino,
                store: att.store.id,
                base: None,
                base_len: 0,
                tail: ext.items().to_vec(),
                base_full: None,
                hash,
                sha256,
                op: "rollback",
                path: &path,
                who: &self.who,
                at_ns: now,
            })?;
            row.head = Some(vid);
            row.size = size;
            row.mtime_ns = now;
            row.ctime_ns = now;
            tx.save_inode(&row)?;
            let mut detail = detail;
            detail["restored_version"] = target.map(|v| v.0).into();
            self.record(
                tx,
                now,
                Change {
                    store: Some(att.store.id),
                    op: "rollback",
                    path: Some(&path),
                    ino: Some(ino),
                    version: Some(vid),
                    detail: Some(detail),
                    ..Default::default()
                },
            )?;
            Ok(true)
        })?;
        Ok(changed)
    }

    /// Gives an unlinked inode (file, symlink or directory) the name `parent/name`.
    pub fn relink(&self, ino: Ino, parent: Ino, name: &[u8]) -> FsResult<()> {
        check_name(name)?;
        self.db.write(|tx| {
            // An operator's restore is not retried by a kernel: a removed parent is gone.
            let (mut dir, att) = self.writable_dir(tx, parent).map_err(FsError::settled)?;
            let (mut row, src_att) = self.inode(tx, ino)?;
            if src_att.store.id != att.store.id {
                return Err(FsError::CrossStore);
            }
            if row.kind == NodeKind::Dir && row.nlink > 0 {
                return Err(FsError::Exists);
            }
            if tx.lookup(parent, name)?.is_some() {
                return Err(FsError::Exists);
            }
            let now = now_ns();
            tx.insert_dentry(parent, name, ino)?;
            if row.kind == NodeKind::Dir {
                row.nlink = 2;
                dir.nlink += 1;
            } else {
                row.nlink += 1;
            }
            row.ctime_ns = now;
            tx.save_inode(&row)?;
            touch_dir(tx, &mut dir, now)?;
            let path = self.child_path(tx, parent, name)?;
            self.record(
                tx,
                now,
                Change {
                    store: Some(att.store.id),
                    op: "restore",
                    path: Some(&path),
                    ino: Some(ino),
                    version: row.head,
                    entries: vec![(parent, name.to_vec())],
                    ..Default::default()
                },
            )
        })
    }
}

//! Directory handles: a snapshot of the entries taken at opendir, so that entries
//! added or removed while `ls` or `find` iterates are neither skipped nor repeated.

use super::MemFs;
use crate::error::{FsError, FsResult};
use crate::ids::Ino;
use crate::store::NodeKind;

/// One directory entry as readdir reports it.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: NodeKind,
    pub name: Vec<u8>,
}

impl DirEntry {
    /// The `.` and `..` entries every listing starts with.
    pub(super) fn dots(ino: Ino, parent: Ino) -> Vec<DirEntry> {
        let dir = |ino, name: &[u8]| DirEntry {
            ino,
            kind: NodeKind::Dir,
            name: name.to_vec(),
        };
        vec![dir(ino, b"."), dir(parent, b"..")]
    }
}

impl MemFs {
    pub fn opendir(&self, ino: Ino) -> FsResult<u64> {
        let entries = if MemFs::is_virtual(ino) {
            self.virt_list(ino)?
        } else if ino == Ino::ROOT {
            let mut v = DirEntry::dots(ino, ino);
            for a in &self.attached {
                v.push(DirEntry {
                    ino: a.store.root,
                    kind: NodeKind::Dir,
                    name: a.store.dir_name().as_bytes().to_vec(),
                });
            }
            v
        } else {
            self.db.read(|tx| {
                let (row, att) = self.inode(tx, ino)?;
                if row.kind != NodeKind::Dir {
                    return Err(FsError::NotDir);
                }
                let parent = if ino == att.store.root {
                    Ino::ROOT
                } else {
                    tx.parent_entry(ino)?.map_or(ino, |(p, _)| p)
                };
                let mut v = DirEntry::dots(ino, parent);
                for (name, child, kind) in tx.children(ino)? {
                    v.push(DirEntry {
                        ino: child,
                        kind,
                        name,
                    });
                }
                Ok(v)
            })?
        };
        let fh = self.new_fh();
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fh, entries);
        Ok(fh)
    }

    /// Feeds entries from `offset` on to `add(entry, next_offset)` until it says the
    /// reply buffer is full.
    pub fn readdir(
        &self,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(&DirEntry, u64) -> bool,
    ) -> FsResult<()> {
        let dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        let entries = dirs.get(&fh).ok_or(FsError::BadHandle)?;
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            if add(e, i as u64 + 1) {
                break;
            }
        }
        Ok(())
    }

    pub fn releasedir(&self, fh: u64) {
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh);
    }
}

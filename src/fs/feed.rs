//! Following the change feed: what other mounts (and memfsctl) changed, turned into
//! kernel cache invalidations for this mount.

use super::MemFs;
use crate::error::{FsError, FsResult};
use crate::ids::Ino;

/// A kernel cache entry to drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// Attributes and cached pages of an inode.
    Inode(Ino),
    /// A name in a directory (including a cached miss).
    Entry(Ino, Vec<u8>),
    /// A store-level change (its settings, archive state or description): the
    /// daemon reloads the store's settings ([`MemFs::update_store`]).
    Store(crate::ids::StoreId),
}

impl MemFs {
    /// The newest change-feed position (where a new mount starts following).
    pub fn feed_position(&self) -> FsResult<i64> {
        Ok(self.db.read(|tx| tx.last_change_seq())?)
    }

    /// Changes after `*since` made elsewhere to attached stores, as invalidations.
    /// Advances `*since`. Open files of this mount that have no staged writes are
    /// moved to the new head so that reads after the invalidation are current.
    pub fn poll_changes(&self, since: &mut i64) -> FsResult<Vec<Invalidation>> {
        let (rows, last) = self
            .db
            .read(|tx| tx.changes_since(*since, &self.holder, 10_000))?;
        *since = last;
        let mut out = Vec::new();
        let now = crate::ids::now_ns();
        for r in rows {
            crate::metrics::feed_change(now - r.at_ns);
            let attached = r.store.is_some_and(|s| self.attached_by_id(s).is_ok());
            if !attached {
                continue;
            }
            if let Some(ino) = r.ino {
                self.refresh_open(ino)?;
                if !out.contains(&Invalidation::Inode(ino)) {
                    out.push(Invalidation::Inode(ino));
                }
            }
            if let (None, None, Some(store)) = (r.ino, r.parent, r.store) {
                if !out.contains(&Invalidation::Store(store)) {
                    out.push(Invalidation::Store(store));
                }
            }
            if let (Some(parent), Some(name)) = (r.parent, r.name) {
                let inv = Invalidation::Entry(parent, name);
                if !out.contains(&inv) {
                    out.push(inv);
                }
            }
        }
        Ok(out)
    }

    /// Moves a clean open file to the inode's current head.
    fn refresh_open(&self, ino: Ino) -> FsResult<()> {
        let Some(file) = self.open_file(ino) else {
            return Ok(());
        };
        let mut of = file.lock().unwrap_or_else(|p| p.into_inner());
        if of.staging.dirty {
            return Ok(());
        }
        let head = self
            .db
            .read(|tx| Ok::<_, FsError>(tx.inode(ino)?.and_then(|r| r.head)))?;
        if head != of.staging.base {
            let ext = match head {
                Some(v) => self.db.read(|tx| tx.extents(v))?,
                None => Default::default(),
            };
            of.staging.rebase(head, ext);
        }
        Ok(())
    }
}

//! setattr: chmod, chown, truncate and utimens.

use super::io::{lock_file, OpenFile};
use super::policy::Access;
use super::staging::Staging;
use super::{Attr, Caller, MemFs};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino};
use crate::store::{Change, NodeKind};
use std::sync::Mutex;

/// A time to set: now, or nanoseconds since the epoch.
#[derive(Clone, Copy, Debug)]
pub enum TimeSpec {
    Now,
    At(i64),
}

/// The attributes one setattr call changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeSpec>,
    pub mtime: Option<TimeSpec>,
    /// The handle the change came through (ftruncate, futimens).
    pub fh: Option<u64>,
}

impl MemFs {
    /// setattr: chmod, chown, truncate, utimens, each decided in its own write
    /// transaction (a truncate under the file's lease).
    pub fn setattr(&self, ino: Ino, s: SetAttr, caller: Caller) -> FsResult<Attr> {
        let r = self.setattr_in(ino, s, self.stale.retrying(caller));
        self.stale.settle(caller, true, r)
    }

    /// [`setattr`](Self::setattr); `orphan_ok` as for [`MemFs::open`].
    fn setattr_in(&self, ino: Ino, s: SetAttr, orphan_ok: bool) -> FsResult<Attr> {
        let changes_meta = s.mode.is_some()
            || s.uid.is_some()
            || s.gid.is_some()
            || s.atime.is_some()
            || s.mtime.is_some();
        if ino == Ino::ROOT {
            if changes_meta || s.size.is_some() {
                return Err(FsError::ReadOnly("the mount root cannot be changed"));
            }
            return self.getattr(ino);
        }
        if Self::is_virtual(ino) {
            return Err(FsError::ReadOnly(".memfs is read-only"));
        }
        // A change to an inode no name leads to, with no descriptor of this mount
        // on it (fchmod and ftruncate need one), came through a cached name
        // another mount removed or replaced: it would land on the orphan. The
        // change's own transaction decides (ESTALE: the kernel looks again).
        let orphan_ok = orphan_ok || s.fh.is_some() || self.open_file(ino).is_some();
        if let Some(size) = s.size {
            self.truncate(ino, size, s.fh, orphan_ok)?;
        }
        if changes_meta {
            self.set_meta(ino, &s, orphan_ok)?;
        }
        self.getattr(ino)
    }

    /// Marks an inode changed (ctime = now) without changing anything recorded,
    /// as a successful fallocate(2) must.
    pub fn touch_ctime(&self, ino: Ino) -> FsResult<()> {
        if ino == Ino::ROOT || Self::is_virtual(ino) {
            return Err(FsError::ReadOnly("not a file of a store"));
        }
        self.db.write(|tx| {
            let (mut row, att) = self.inode(tx, ino)?;
            self.check_inode_change(tx, att, ino, Access::Meta)?;
            row.ctime_ns = now_ns();
            tx.save_inode(&row)?;
            Ok::<_, FsError>(())
        })
    }

    fn set_meta(&self, ino: Ino, s: &SetAttr, orphan_ok: bool) -> FsResult<()> {
        self.db.write(|tx| {
            let (mut row, att) = self.inode(tx, ino)?;
            if row.nlink == 0 && !orphan_ok {
                return Err(FsError::Stale(Box::new(FsError::NotFound)));
            }
            self.check_inode_change(tx, att, ino, Access::Meta)?;
            let path = tx.path_of(ino)?.unwrap_or_default();
            let now = now_ns();
            let mut detail = serde_json::Map::new();
            let mut op = None;
            // Tools such as `sed -i` re-apply the mode and owner a file already has;
            // only real changes are recorded.
            if let Some(m) = s.mode.map(|m| (m & 0o7777) as u16) {
                if m != row.perm {
                    // The old value too, so that a rollback can put it back.
                    detail.insert("old_mode".into(), format!("{:o}", row.perm).into());
                    row.perm = m;
                    detail.insert("mode".into(), format!("{m:o}").into());
                    op.get_or_insert("chmod");
                }
            }
            if let Some(u) = s.uid.filter(|&u| u != row.uid) {
                row.uid = u;
                detail.insert("uid".into(), u.into());
                op.get_or_insert("chown");
            }
            if let Some(g) = s.gid.filter(|&g| g != row.gid) {
                row.gid = g;
                detail.insert("gid".into(), g.into());
                op.get_or_insert("chown");
            }
            let at = |t: TimeSpec| match t {
                TimeSpec::Now => now,
                TimeSpec::At(ns) => ns,
            };
            if let Some(t) = s.atime {
                row.atime_ns = at(t);
                detail.insert("atime_ns".into(), row.atime_ns.into());
            }
            if let Some(t) = s.mtime {
                row.mtime_ns = at(t);
                detail.insert("mtime_ns".into(), row.mtime_ns.into());
                op.get_or_insert("utimes");
            }
            row.ctime_ns = now;
            tx.save_inode(&row)?;
            // An atime-only update (a read touching atime) is not a change worth a record.
            if let Some(op) = op {
                self.record(
                    tx,
                    now,
                    Change {
                        store: Some(att.store.id),
                        op,
                        path: Some(&path),
                        ino: Some(ino),
                        detail: Some(serde_json::Value::Object(detail)),
                        ..Default::default()
                    },
                )?;
            }
            Ok::<_, FsError>(())
        })?;
        // A staged mtime would hide the one just set.
        if s.mtime.is_some() {
            if let Some(f) = self.open_file(ino) {
                f.lock().unwrap_or_else(|p| p.into_inner()).staging.mtime_ns = None;
            }
        }
        Ok(())
    }

    /// truncate(2)/ftruncate(2). Through an open handle the new size is staged and
    /// committed on close; a path truncate commits at once, as one version.
    fn truncate(&self, ino: Ino, size: u64, fh: Option<u64>, orphan_ok: bool) -> FsResult<()> {
        let row = self.db.read(|tx| {
            let (row, att) = self.inode(tx, ino)?;
            if size > att.policy().max_file_bytes(self.opts.max_file_bytes) {
                return Err(FsError::TooBig);
            }
            match row.kind {
                NodeKind::File => {}
                NodeKind::Dir => return Err(FsError::IsDir),
                _ => return Err(FsError::Invalid("truncate of a special file")),
            }
            self.check_inode_change(tx, att, ino, Access::Modify)?;
            Ok::<_, FsError>(row)
        })?;
        let now = now_ns();
        let open = self.open_file(ino);
        if let Some(file) = &open {
            let mut of = lock_file(file);
            if of.lease.is_some() {
                // A writer of this mount holds the lease: its staging is current.
                let changed = of.staging.truncate(size, now)?;
                match fh {
                    Some(fh) if changed => self.mark_dirty(fh),
                    None if changed => {
                        self.commit(&mut of, "truncate")?;
                    }
                    _ => {}
                }
                return Ok(());
            }
        }
        // No writer of this mount has the file: take its write lease (waiting
        // for another mount's writer, as an open for writing does), so that the
        // new size applies to the head as it is after the lease, not to the
        // read snapshot, which another mount's commit may have overtaken (the
        // commit would then see a changed head and refuse with EBUSY).
        let store = row.store.ok_or(FsError::NotFound)?;
        let token = self.acquire_lease(ino, store)?;
        let done = self.truncate_leased(ino, store, size, open.as_deref(), token, now, orphan_ok);
        let released = self.release_lease(ino, token);
        done.and(released)
    }

    /// Truncates `ino` to `size` under this mount's lease `token`, from the
    /// current head, and commits it (in `open`, this mount's open state of the
    /// file, if any: its readers then see the new size).
    #[allow(clippy::too_many_arguments)]
    fn truncate_leased(
        &self,
        ino: Ino,
        store: crate::ids::StoreId,
        size: u64,
        open: Option<&Mutex<OpenFile>>,
        token: i64,
        now: i64,
        orphan_ok: bool,
    ) -> FsResult<()> {
        // Read after taking the lease (a write): current.
        let row = self.db.read(|tx| tx.inode(ino)?.ok_or(FsError::NotFound))?;
        if row.nlink == 0 && !orphan_ok {
            return Err(FsError::Stale(Box::new(FsError::NotFound)));
        }
        let head = row.head;
        let temp;
        let file = match open {
            Some(f) => f,
            None => {
                let staging = Staging::new(
                    head,
                    self.extents_of(head)?,
                    self.opts.spill_bytes,
                    self.opts.spill_dir.clone(),
                );
                temp = Mutex::new(OpenFile {
                    ino,
                    store,
                    staging,
                    lease: None,
                    lease_users: 0,
                    lease_parked: false,
                });
                &temp
            }
        };
        let mut of = lock_file(file);
        self.follow_head(&mut of, head)?;
        of.lease = Some(token);
        let done = match of.staging.truncate(size, now) {
            Ok(true) => self.commit(&mut of, "truncate").map(drop),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        // The lease is released by the caller; the open state never keeps it.
        of.lease = None;
        done
    }
}

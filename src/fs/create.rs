//! Creating entries: files (with an open handle), device nodes, directories,
//! symlinks and hard links.
//!
//! A CREATE without `O_EXCL` of a name that exists opens what is there, as
//! open(2) with `O_CREAT` does on a local disk: the kernel sends CREATE whenever
//! its cached view says the name is free, and another mount may have created it
//! since (agents racing on `flock FILE`, `echo >> log`).

use super::access;
use super::io::{OpenMode, Opened, Seen};
use super::policy::{check_new_name, check_path_len, Access};
use super::{check_name, touch_dir, Attr, Caller, MemFs};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, StoreId};
use crate::store::{Change, InodeRow, NewInode, NodeKind, Txn};

/// Longest symlink target accepted (PATH_MAX).
const TARGET_MAX: usize = 4096;

const S_ISGID: u16 = 0o2000;

/// What [`MemFs::make_node`] does when the name is taken.
#[derive(Clone, Copy)]
enum IfExists {
    /// `EEXIST` (mkdir, mknod, symlink, link, create with `O_EXCL`).
    Fail,
    /// Open the existing file with this mode (create without `O_EXCL`).
    Open(OpenMode),
}

/// What [`MemFs::make_node`] made or found.
enum Made {
    /// A new inode, its store, and the write lease taken with it.
    New(InodeRow, StoreId, Option<i64>),
    /// An existing regular file, already checked for the open.
    Existing(InodeRow, StoreId),
}

impl Made {
    /// The new inode of a call that cannot find an existing one.
    fn created(self) -> FsResult<(InodeRow, StoreId, Option<i64>)> {
        match self {
            Made::New(row, store, token) => Ok((row, store, token)),
            Made::Existing(..) => Err(FsError::Exists),
        }
    }
}

/// A name taken that the kernel believed free (it sends a create only then):
/// another mount made it since the kernel looked. `EEXIST` is the answer, but
/// first the kernel should look again (`ESTALE` once), so that it caches the
/// name as present: `mkdir -p` and lock-file loops stat the name next.
pub(super) fn name_taken() -> FsError {
    FsError::Stale(Box::new(FsError::Exists))
}

impl MemFs {
    /// Creates `parent/name` of `kind`, audited as `op`, or (see [`IfExists`])
    /// finds the file already there. Everything is decided in the write
    /// transaction, on current data, never on a read snapshot or the kernel's view.
    #[allow(clippy::too_many_arguments)]
    fn make_node(
        &self,
        parent: Ino,
        name: &[u8],
        kind: NodeKind,
        perm: u16,
        rdev: u32,
        target: Option<&[u8]>,
        caller: Caller,
        op: &str,
        lease: bool,
        if_exists: IfExists,
    ) -> FsResult<Made> {
        check_name(name)?;
        self.db.write(|tx| {
            if let IfExists::Open(mode) = if_exists {
                if let Some((row, store)) =
                    self.existing_for_open(tx, parent, name, mode, caller)?
                {
                    return Ok(Made::Existing(row, store));
                }
            }
            let (ino, store, _now) =
                self.make_node_in(tx, parent, name, kind, perm, rdev, target, caller, op)?;
            // A file created to be written takes its lease in the same transaction:
            // no other mount can open it for writing in between.
            let token = if lease {
                let ttl = crate::store::ttl_ns(self.opts.lease_ttl);
                match tx.try_lease(ino, store, &self.holder, &self.who, ttl)? {
                    Ok(t) => Some(t),
                    Err(_) => return Err(FsError::Busy("new file already leased".into())),
                }
            } else {
                None
            };
            let row = tx.inode(ino)?.ok_or(FsError::NotFound)?;
            Ok(Made::New(row, store, token))
        })
    }

    /// The body of [`make_node`](Self::make_node) inside the caller's
    /// transaction, for a name that must be free: checks, the inode and its
    /// entry, the audit entry (unless `op` is empty: then the caller records
    /// the creation in its own entry, as whole-file writes do). Returns the
    /// new inode, its store and the time of the change.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn make_node_in(
        &self,
        tx: &Txn<'_>,
        parent: Ino,
        name: &[u8],
        kind: NodeKind,
        perm: u16,
        rdev: u32,
        target: Option<&[u8]>,
        caller: Caller,
        op: &str,
    ) -> FsResult<(Ino, StoreId, i64)> {
        let (mut dir, att) = self.writable_dir(tx, parent)?;
        if tx.lookup(parent, name)?.is_some() {
            return Err(name_taken());
        }
        check_new_name(name)?;
        let path = self.child_path(tx, parent, name)?;
        check_path_len(&path)?;
        self.check_change(tx, att, &path, Access::Create)?;
        self.check_file_quota(tx, att)?;
        let store = att.store.id;
        let now = now_ns();
        // BSD group semantics under a setgid directory, as Linux does it.
        let (gid, perm) = if dir.perm & S_ISGID != 0 {
            let perm = if kind == NodeKind::Dir {
                perm | S_ISGID
            } else {
                perm
            };
            (dir.gid, perm)
        } else {
            (caller.gid, perm)
        };
        let ino = tx.insert_inode(&NewInode {
            store,
            kind,
            perm,
            uid: caller.uid,
            gid,
            rdev,
            nlink: if kind == NodeKind::Dir { 2 } else { 1 },
            now_ns: now,
            target: target.map(<[u8]>::to_vec),
        })?;
        tx.insert_dentry(parent, name, ino)?;
        if kind == NodeKind::Dir {
            dir.nlink += 1;
        }
        touch_dir(tx, &mut dir, now)?;
        if !op.is_empty() {
            let mut detail = serde_json::json!({ "mode": format!("{perm:o}") });
            if let Some(t) = target {
                detail["target"] = String::from_utf8_lossy(t).into();
            }
            self.record(
                tx,
                now,
                Change {
                    store: Some(store),
                    op,
                    path: Some(&path),
                    ino: Some(ino),
                    entries: vec![(parent, name.to_vec())],
                    detail: Some(detail),
                    ..Default::default()
                },
            )?;
        }
        Ok((ino, store, now))
    }

    /// The regular file a CREATE without `O_EXCL` opens because `parent/name`
    /// already exists, checked as the kernel and [`MemFs::open`] check a plain
    /// open: the kernel believes it created the file and checks nothing on it.
    /// `None` when the name is free (or `parent` is no store directory: the
    /// create then fails as it would have).
    fn existing_for_open(
        &self,
        tx: &Txn<'_>,
        parent: Ino,
        name: &[u8],
        mode: OpenMode,
        caller: Caller,
    ) -> FsResult<Option<(InodeRow, StoreId)>> {
        if Self::is_virtual(parent) || parent == Ino::ROOT {
            return Ok(None);
        }
        let (dir, att) = self.inode(tx, parent)?;
        if dir.kind != NodeKind::Dir {
            return Ok(None);
        }
        let Some(row) = tx.lookup_inode(parent, name)? else {
            return Ok(None);
        };
        match row.kind {
            NodeKind::File => {}
            // As open(2) with O_CREAT says of a directory.
            NodeKind::Dir => return Err(FsError::IsDir),
            // A symlink is followed, and a fifo or device node opened, by the
            // kernel itself: it must look the name up again and see what it is.
            _ => return Err(FsError::Stale(Box::new(FsError::Exists))),
        }
        access::check_open(&row, caller, mode)?;
        if mode.truncate && !mode.write {
            return Err(FsError::Invalid("O_TRUNC needs a writable open"));
        }
        if let Some(access) = mode.changes() {
            self.check_inode_change(tx, att, row.ino, access)?;
        }
        Ok(Some((row, att.store.id)))
    }

    /// create(2) / open(O_CREAT) of a regular file, returning an open handle. A
    /// new file is created (and audited); without `O_EXCL` an existing one is
    /// opened instead, with the same checks, lease and audit as a plain open.
    pub fn create(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        umask: u32,
        open: OpenMode,
        caller: Caller,
    ) -> FsResult<(Attr, Opened)> {
        let r = self.create_in(parent, name, mode, umask, open, caller);
        self.stale.settle(caller, true, r)
    }

    fn create_in(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        umask: u32,
        open: OpenMode,
        caller: Caller,
    ) -> FsResult<(Attr, Opened)> {
        let perm = (mode & !umask & 0o7777) as u16;
        let leased = (open.write && !open.append) || open.truncate;
        let if_exists = if open.exclusive {
            IfExists::Fail
        } else {
            IfExists::Open(open)
        };
        let made = self.make_node(
            parent,
            name,
            NodeKind::File,
            perm,
            0,
            None,
            caller,
            "create",
            leased,
            if_exists,
        )?;
        match made {
            Made::New(row, store, token) => {
                let seen = Seen::unmarked(row.head);
                let opened = self.attach_handle(row.ino, store, open, token, seen)?;
                Ok((Attr::from(&row), opened))
            }
            Made::Existing(row, store) => {
                // The lease (waiting for another writer, then EBUSY) and O_TRUNC
                // go exactly as for open(2) of the file.
                let seen = Seen::unmarked(row.head);
                let opened = self.attach_handle(row.ino, store, open, None, seen)?;
                match self.getattr(row.ino) {
                    Ok(attr) => Ok((attr, opened)),
                    Err(e) => {
                        let _ = self.release(opened.fh);
                        Err(e)
                    }
                }
            }
        }
    }

    /// mknod(2): regular files, fifos, sockets and device nodes.
    pub fn mknod(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        umask: u32,
        rdev: u32,
        caller: Caller,
    ) -> FsResult<Attr> {
        let kind = match mode & libc::S_IFMT {
            libc::S_IFREG | 0 => NodeKind::File,
            libc::S_IFIFO => NodeKind::Fifo,
            libc::S_IFSOCK => NodeKind::Socket,
            libc::S_IFCHR => NodeKind::CharDev,
            libc::S_IFBLK => NodeKind::BlockDev,
            libc::S_IFDIR => return Err(FsError::Invalid("mknod of a directory")),
            _ => return Err(FsError::Invalid("unknown file type")),
        };
        let perm = (mode & !umask & 0o7777) as u16;
        let op = if kind == NodeKind::File {
            "create"
        } else {
            "mknod"
        };
        let r = self
            .make_node(
                parent,
                name,
                kind,
                perm,
                rdev,
                None,
                caller,
                op,
                false,
                IfExists::Fail,
            )
            .and_then(Made::created);
        let (row, _, _) = self.stale.settle(caller, true, r)?;
        Ok(Attr::from(&row))
    }

    /// mkdir(2).
    pub fn mkdir(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        umask: u32,
        caller: Caller,
    ) -> FsResult<Attr> {
        let perm = (mode & !umask & 0o7777) as u16;
        let r = self
            .make_node(
                parent,
                name,
                NodeKind::Dir,
                perm,
                0,
                None,
                caller,
                "mkdir",
                false,
                IfExists::Fail,
            )
            .and_then(Made::created);
        let (row, _, _) = self.stale.settle(caller, true, r)?;
        Ok(Attr::from(&row))
    }

    /// symlink(2).
    pub fn symlink(
        &self,
        parent: Ino,
        name: &[u8],
        target: &[u8],
        caller: Caller,
    ) -> FsResult<Attr> {
        if target.len() >= TARGET_MAX {
            return Err(FsError::NameTooLong);
        }
        if target.is_empty() {
            return Err(FsError::NotFound);
        }
        let r = self
            .make_node(
                parent,
                name,
                NodeKind::Symlink,
                0o777,
                0,
                Some(target),
                caller,
                "symlink",
                false,
                IfExists::Fail,
            )
            .and_then(Made::created);
        let (row, _, _) = self.stale.settle(caller, true, r)?;
        Ok(Attr::from(&row))
    }

    /// link(2): a second name for an existing non-directory.
    pub fn link(&self, ino: Ino, newparent: Ino, newname: &[u8], caller: Caller) -> FsResult<Attr> {
        let r = self.link_in(ino, newparent, newname);
        self.stale.settle(caller, true, r)
    }

    fn link_in(&self, ino: Ino, newparent: Ino, newname: &[u8]) -> FsResult<Attr> {
        check_name(newname)?;
        if Self::is_virtual(ino) {
            return Err(FsError::ReadOnly(".memfs is read-only"));
        }
        let row = self.db.write(|tx| {
            let (mut dir, att) = self.writable_dir(tx, newparent)?;
            let (mut row, src_att) = self.inode(tx, ino)?;
            if src_att.store.id != att.store.id {
                return Err(FsError::CrossStore);
            }
            if row.kind == NodeKind::Dir {
                return Err(FsError::Perm);
            }
            if row.nlink == 0 {
                // The kernel found the source through a cached name that another
                // mount removed or replaced: it should look again.
                return Err(FsError::Stale(Box::new(FsError::NotFound)));
            }
            if tx.lookup(newparent, newname)?.is_some() {
                return Err(name_taken());
            }
            check_new_name(newname)?;
            let path = self.child_path(tx, newparent, newname)?;
            check_path_len(&path)?;
            self.check_change(tx, att, &path, Access::Create)?;
            // A new name for a protected file would be a way around its policy.
            self.check_inode_change(tx, att, ino, Access::Modify)?;
            let now = now_ns();
            let old_path = tx.path_of(ino)?;
            tx.insert_dentry(newparent, newname, ino)?;
            row.nlink += 1;
            row.ctime_ns = now;
            tx.save_inode(&row)?;
            touch_dir(tx, &mut dir, now)?;
            self.record(
                tx,
                now,
                Change {
                    store: Some(att.store.id),
                    op: "link",
                    path: Some(&path),
                    path2: old_path.as_deref(),
                    ino: Some(ino),
                    entries: vec![(newparent, newname.to_vec())],
                    ..Default::default()
                },
            )?;
            Ok(row)
        })?;
        let mut attr = Attr::from(&row);
        self.overlay_staged(&mut attr);
        Ok(attr)
    }
}

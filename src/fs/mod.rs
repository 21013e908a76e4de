//! POSIX semantics over a store: lookup, create, io, rename, remove, setattr.
//! No fuser types and no SQL here: the FUSE adapter calls in, the store's `Txn`
//! methods are called out.
//!
//! **Invariant:** every change is one `Db::write` transaction that also records its
//! audit entry, so history and namespace never disagree.

mod access;
mod apply;
mod create;
mod dir;
mod feed;
mod guard;
mod io;
mod leases;
mod locks;
mod policy;
mod put;
mod put_tree;
mod remove;
mod rename;
mod restore;
mod setattr;
mod staging;
mod stale;
mod version_cache;
mod virt;

pub use apply::{Done, Prepared, Step};
pub use dir::DirEntry;
pub use feed::{AfterCatchUp, FeedBarrier, Invalidation};
pub use io::{OpenMode, Opened};
pub use locks::LockStep;
pub use policy::{
    check_new_name, check_path_len, glob_match, matches_any, Access, PiiMode, Quota, StorePolicy,
    PATH_MAX,
};
pub use put::{Expect, Written};
pub use rename::RenameMode;
pub use setattr::{SetAttr, TimeSpec};
pub use virt::{MEMFS_DIR, VIRT_BASE};

use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Identity, Ino, StoreId};
use crate::store::{Change, Db, InodeRow, NodeKind, StoreRow, Txn};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

/// Longest name of one path component, in bytes.
pub const NAME_MAX: usize = 255;

/// A store attached to a mount, and how. Its policy and whether this identity
/// may still write it follow the store's settings while mounted (see
/// [`MemFs::update_store`]).
#[derive(Debug)]
pub struct Attached {
    pub store: StoreRow,
    /// Attached read-only (asked for, or all the identity may do).
    pub read_only: bool,
    /// Path policies, quota and content rules from the store's settings.
    policy: RwLock<Arc<StorePolicy>>,
    /// The store's settings no longer let this identity write it.
    revoked: AtomicBool,
}

impl Clone for Attached {
    fn clone(&self) -> Self {
        Attached {
            store: self.store.clone(),
            read_only: self.read_only,
            policy: RwLock::new(self.policy()),
            revoked: AtomicBool::new(self.revoked.load(Ordering::Relaxed)),
        }
    }
}

impl Attached {
    pub fn new(store: StoreRow, read_only: bool, policy: StorePolicy) -> Self {
        Attached {
            store,
            read_only,
            policy: RwLock::new(Arc::new(policy)),
            revoked: AtomicBool::new(false),
        }
    }

    /// A store attached with no policy (read-write, or read-only).
    pub fn plain(store: StoreRow, read_only: bool) -> Self {
        Attached::new(store, read_only, StorePolicy::default())
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<StorePolicy> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether this mount may change the store now.
    pub fn writable(&self) -> bool {
        !self.read_only && !self.revoked.load(Ordering::Relaxed)
    }
}

/// Tunables of the filesystem core.
#[derive(Clone, Debug)]
pub struct FsOptions {
    pub max_file_bytes: u64,
    pub spill_bytes: usize,
    pub spill_dir: Option<PathBuf>,
    /// How long a write lease lives without renewal.
    pub lease_ttl: Duration,
    /// How long an open for writing waits for another holder's lease.
    pub lease_wait: Duration,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            max_file_bytes: 4 << 30,
            spill_bytes: 8 << 20,
            spill_dir: None,
            lease_ttl: Duration::from_secs(30),
            lease_wait: Duration::from_secs(2),
        }
    }
}

/// File attributes as the filesystem reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: NodeKind,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub rdev: u32,
    pub atime_ns: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub crtime_ns: i64,
    /// The size or times include writes not committed yet: the kernel must not
    /// cache these attributes (a refused commit would leave them wrong).
    pub staged: bool,
}

impl From<&InodeRow> for Attr {
    fn from(i: &InodeRow) -> Self {
        Attr {
            ino: i.ino,
            kind: i.kind,
            perm: i.perm,
            uid: i.uid,
            gid: i.gid,
            nlink: i.nlink,
            size: i.size,
            rdev: i.rdev,
            atime_ns: i.atime_ns,
            mtime_ns: i.mtime_ns,
            ctime_ns: i.ctime_ns,
            crtime_ns: i.crtime_ns,
            staged: false,
        }
    }
}

/// The caller of an operation, as the kernel reports it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The calling thread; 0 when the caller is not a process that the kernel
    /// would retry for (the daemon itself, memfsctl, tests).
    pub pid: u32,
}

/// Aggregate numbers for `statfs`.
#[derive(Clone, Copy, Debug)]
pub struct FsStats {
    pub files: u64,
    pub bytes: u64,
}

/// One mount's view: an identity, its attached stores, and open-file state.
pub struct MemFs {
    db: Arc<Db>,
    who: Identity,
    attached: Vec<Attached>,
    opts: FsOptions,
    open: Mutex<io::OpenTable>,
    dirs: Mutex<HashMap<u64, Vec<DirEntry>>>,
    next_fh: AtomicU64,
    hashes: version_cache::HashCache,
    extents: version_cache::ExtentCache,
    mounted_ns: i64,
    /// This mount's id in `holders`, leases, locks and the change feed.
    holder: String,
    /// Inodes on which this mount holds advisory locks (skips a query per close).
    locked: Mutex<std::collections::HashSet<Ino>>,
    /// The hidden `.memfs` directory's inodes and handles.
    virt: virt::Virt,
    /// Lock owners of this mount waiting in F_SETLKW/flock, and for what.
    waiting: Mutex<HashMap<u64, crate::store::LockSpec>>,
    /// ESTALE answers given to requests sent from a stale view, awaiting retry.
    stale: stale::StaleGuard,
}

impl MemFs {
    pub fn new(db: Arc<Db>, who: Identity, attached: Vec<Attached>, opts: FsOptions) -> MemFs {
        MemFs {
            db,
            who,
            attached,
            opts,
            open: Mutex::new(io::OpenTable::default()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            // About 2 MB of hasher states and 6 MB of extent lists at most.
            hashes: version_cache::HashCache::new("hashes", 1024, |_| 1),
            extents: version_cache::ExtentCache::new("extents", 256 << 10, |e| e.items().len()),
            mounted_ns: now_ns(),
            holder: leases::new_holder_id(),
            locked: Mutex::new(Default::default()),
            virt: Default::default(),
            waiting: Mutex::new(HashMap::new()),
            stale: Default::default(),
        }
    }

    /// This mount's holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn identity(&self) -> &Identity {
        &self.who
    }

    pub fn attached(&self) -> &[Attached] {
        &self.attached
    }

    /// Applies a store's changed settings to this mount: the new policy, and
    /// whether its identity may still write the store (a mount cannot lose a
    /// store it attached, but it can lose the right to change it).
    pub fn update_store(&self, store: StoreId, policy: StorePolicy, may_write: bool) {
        if let Some(att) = self.attached.iter().find(|a| a.store.id == store) {
            *att.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
            att.revoked.store(!may_write, Ordering::Relaxed);
        }
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    fn attached_by_id(&self, id: StoreId) -> FsResult<&Attached> {
        self.attached
            .iter()
            .find(|a| a.store.id == id)
            .ok_or(FsError::NotFound)
    }

    /// The mount root's attributes: a read-only directory of the attached stores.
    fn root_attr(&self) -> Attr {
        Attr {
            ino: Ino::ROOT,
            kind: NodeKind::Dir,
            perm: 0o555,
            uid: 0,
            gid: 0,
            nlink: 2 + self.attached.len() as u32,
            size: 0,
            rdev: 0,
            atime_ns: self.mounted_ns,
            mtime_ns: self.mounted_ns,
            ctime_ns: self.mounted_ns,
            crtime_ns: self.mounted_ns,
            staged: false,
        }
    }

    /// Loads an inode that belongs to an attached store.
    fn inode(&self, tx: &Txn<'_>, ino: Ino) -> FsResult<(InodeRow, &Attached)> {
        let row = tx.inode(ino)?.ok_or(FsError::NotFound)?;
        let store = row.store.ok_or(FsError::NotFound)?;
        let att = self.attached_by_id(store)?;
        Ok((row, att))
    }

    /// Loads a directory in which the caller wants to change entries.
    fn writable_dir(&self, tx: &Txn<'_>, parent: Ino) -> FsResult<(InodeRow, &Attached)> {
        if Self::is_virtual(parent) {
            return Err(FsError::ReadOnly(".memfs is read-only"));
        }
        if parent == Ino::ROOT {
            return Err(FsError::ReadOnly(
                "the mount root lists stores and cannot be changed",
            ));
        }
        let (dir, att) = self.inode(tx, parent)?;
        if dir.kind != NodeKind::Dir {
            return Err(FsError::NotDir);
        }
        if !att.writable() {
            return Err(FsError::ReadOnly("store attached read-only"));
        }
        if dir.nlink == 0 {
            // A removed directory cannot get new entries. The kernel addressed it
            // through a cached name another mount removed: it should look again.
            return Err(FsError::Stale(Box::new(FsError::NotFound)));
        }
        Ok((dir, att))
    }

    /// Refuses a change to `path` in a store attached read-only, archived, or
    /// protected there by its policy. Call inside the change's transaction.
    fn check_change(
        &self,
        tx: &Txn<'_>,
        att: &Attached,
        path: &str,
        access: Access,
    ) -> FsResult<()> {
        if !att.writable() {
            return Err(FsError::ReadOnly("store attached read-only"));
        }
        if tx.store_archived(att.store.id)? {
            return Err(FsError::ReadOnly("store is archived"));
        }
        att.policy().check(&self.who.agent, path, access)
    }

    /// Every store-relative path of `ino` (one per hard link).
    fn paths_of(&self, tx: &Txn<'_>, ino: Ino) -> FsResult<Vec<String>> {
        let mut out = Vec::new();
        for (parent, name) in tx.entries_of(ino)? {
            out.push(self.child_path(tx, parent, &name)?);
        }
        Ok(out)
    }

    /// [`check_change`](Self::check_change) for every name of `ino`: a hard link
    /// must not open a way around a protected path.
    fn check_inode_change(
        &self,
        tx: &Txn<'_>,
        att: &Attached,
        ino: Ino,
        access: Access,
    ) -> FsResult<()> {
        if !att.policy().has_path_rules() {
            return self.check_change(tx, att, "", access);
        }
        let paths = self.paths_of(tx, ino)?;
        if paths.is_empty() {
            return self.check_change(tx, att, "", access);
        }
        for p in paths {
            self.check_change(tx, att, &p, access)?;
        }
        Ok(())
    }

    /// Asks this mount's kernel (through the change feed) to drop what it cached
    /// of `ino`, after a refused commit left the head as it was.
    fn forget_kernel_view(&self, store: StoreId, ino: Ino) {
        let r = self
            .db
            .write(|tx| tx.notify_inode(store, ino, now_ns(), "refused"));
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot queue a cache invalidation");
        }
    }

    /// Refuses a new entry beyond the store's file quota.
    fn check_file_quota(&self, tx: &Txn<'_>, att: &Attached) -> FsResult<()> {
        if let Some(max) = att.policy().quota.max_files {
            let (live, _) = tx.store_usage(att.store.id)?;
            // The store's root directory does not count.
            if live.saturating_sub(1) >= max {
                return Err(FsError::Quota("too many files"));
            }
        }
        Ok(())
    }

    /// Attributes of any inode, with staged (uncommitted) size from this mount.
    pub fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        if ino == Ino::ROOT {
            return Ok(self.root_attr());
        }
        if Self::is_virtual(ino) {
            return self.virt_getattr(ino);
        }
        // Hold the open file (if any) across the read: a close committing it on
        // another thread then finishes first, so the row and the overlay agree.
        // (Read first and overlay after, and a commit in between showed the old
        // row without the staged times.) Lock order: file, then database.
        let open = self.open_file(ino);
        let _held = open.as_deref().map(io::lock_file);
        let row = self.db.read(|tx| self.inode(tx, ino).map(|(r, _)| r))?;
        let mut attr = Attr::from(&row);
        if let Some(of) = &_held {
            io::overlay_from(of, &mut attr);
        }
        Ok(attr)
    }

    /// Looks `name` up in `parent`.
    pub fn lookup(&self, parent: Ino, name: &[u8], caller: Caller) -> FsResult<Attr> {
        let r = self.lookup_in(parent, name);
        self.stale.settle(caller, false, r)
    }

    fn lookup_in(&self, parent: Ino, name: &[u8]) -> FsResult<Attr> {
        check_name(name)?;
        if Self::is_virtual(parent) || (parent == Ino::ROOT && name == MEMFS_DIR) {
            return self.virt_lookup(parent, name);
        }
        if parent == Ino::ROOT {
            let att = self
                .attached
                .iter()
                .find(|a| a.store.dir_name().as_bytes() == name)
                .ok_or(FsError::NotFound)?;
            let root = att.store.root;
            return self.getattr(root);
        }
        let row = self.db.read(|tx| {
            let (dir, _) = self.inode(tx, parent)?;
            if dir.kind != NodeKind::Dir {
                return Err(FsError::NotDir);
            }
            // In a directory another mount removed (or replaced), a name is
            // absent: the kernel walked through a cached name and sees the store
            // late, as the coherence rule allows. Not ESTALE: the kernel retries
            // an ESTALE from a path walk, but not from the last lookup of mkdir,
            // symlink, mknod or link (`filename_create`), where the program
            // would get it. Their own request then gets ESTALE (`writable_dir`),
            // which the kernel does retry, walking again.
            tx.lookup_inode(parent, name)?.ok_or(FsError::NotFound)
        })?;
        let mut attr = Attr::from(&row);
        self.overlay_staged(&mut attr);
        Ok(attr)
    }

    /// A symlink's target.
    pub fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        if Self::is_virtual(ino) {
            return self.virt_readlink(ino);
        }
        let row = self.db.read(|tx| self.inode(tx, ino).map(|(r, _)| r))?;
        match (row.kind, row.target) {
            (NodeKind::Symlink, Some(t)) => Ok(t),
            _ => Err(FsError::Invalid("not a symlink")),
        }
    }

    /// Files and bytes across the attached stores.
    pub fn stats(&self) -> FsResult<FsStats> {
        self.db.read(|tx| {
            let mut s = FsStats { files: 0, bytes: 0 };
            for a in &self.attached {
                let (f, b) = tx.store_usage(a.store.id)?;
                s.files += f;
                s.bytes += b;
            }
            Ok(s)
        })
    }

    /// The database this filesystem keeps everything in.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The database file (for statfs on its filesystem).
    pub fn db_path(&self) -> Option<PathBuf> {
        self.db.path().map(|p| p.to_path_buf())
    }

    /// Records a change attributed to this mount's identity and marked as its own
    /// in the change feed.
    /// A change may set its own origin (say, one this mount's kernel must also
    /// hear about); otherwise it is this mount's.
    fn record<'a>(&'a self, tx: &Txn<'_>, at_ns: i64, mut c: Change<'a>) -> FsResult<()> {
        c.origin.get_or_insert(&self.holder);
        tx.record(&self.who, at_ns, &c)?;
        Ok(())
    }

    /// The store-relative path of `name` inside directory `parent`.
    fn child_path(&self, tx: &Txn<'_>, parent: Ino, name: &[u8]) -> FsResult<String> {
        let dir = tx.dir_path_of(parent)?.unwrap_or_default();
        let name = String::from_utf8_lossy(name);
        Ok(if dir.is_empty() {
            name.into_owned()
        } else {
            format!("{dir}/{name}")
        })
    }

    fn lock_open(&self) -> MutexGuard<'_, io::OpenTable> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A name the kernel hands us for a new or looked-up entry.
fn check_name(name: &[u8]) -> FsResult<()> {
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(FsError::Invalid("bad file name"));
    }
    Ok(())
}

/// Updates a directory's mtime and ctime after its entries changed.
fn touch_dir(tx: &Txn<'_>, dir: &mut InodeRow, now: i64) -> FsResult<()> {
    dir.mtime_ns = now;
    dir.ctime_ns = now;
    tx.save_inode(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests;

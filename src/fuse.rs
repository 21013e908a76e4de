//! The fuser adapter, and nothing else: decode a request, call `fs::MemFs`, reply.
//! No handler unwraps or panics: a panic here would kill the mount for every agent.

use crate::error::FsError;
use crate::fs::{
    Attr, Caller, FeedBarrier, LockStep, MemFs, OpenMode, Opened, RenameMode, SetAttr, TimeSpec,
};
use crate::ids::Ino;
use crate::store::{LockSpec, NodeKind};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLock, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Serves one `MemFs` over FUSE.
pub struct FuseFs {
    fs: Arc<MemFs>,
    /// Holds replies until the kernel has heard of other mounts' changes.
    barrier: Arc<FeedBarrier>,
    attr_ttl: Duration,
    entry_ttl: Duration,
}

impl FuseFs {
    pub fn new(
        fs: Arc<MemFs>,
        barrier: Arc<FeedBarrier>,
        attr_ttl: Duration,
        entry_ttl: Duration,
    ) -> Self {
        FuseFs {
            fs,
            barrier,
            attr_ttl,
            entry_ttl,
        }
    }
}

/// Grants a lock: once the kernel has dropped what it cached of other mounts'
/// changes, so that what the lock protects reads as the last holder left it.
fn grant(fs: &MemFs, barrier: &FeedBarrier, reply: ReplyEmpty) {
    if fs.changed_elsewhere(barrier.seen(), None) {
        barrier.after_catch_up(Box::new(move || reply.ok()));
    } else {
        reply.ok();
    }
}

fn time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn ns_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

fn file_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::Socket => FileType::Socket,
        NodeKind::CharDev => FileType::CharDevice,
        NodeKind::BlockDev => FileType::BlockDevice,
    }
}

fn to_fuse(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino.0 as u64),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: time(a.atime_ns),
        mtime: time(a.mtime_ns),
        ctime: time(a.ctime_ns),
        crtime: time(a.crtime_ns),
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: 4096,
        flags: 0,
    }
}

fn ino(i: INodeNo) -> Ino {
    Ino(i.0 as i64)
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

/// Maps an error to its errno; storage failures are logged once here, with context.
fn errno(op: &str, e: FsError) -> Errno {
    let code = e.to_errno();
    crate::metrics::fuse_error(op, code);
    if code == libc::EIO {
        tracing::error!(op, error = %e, "storage error");
    } else {
        tracing::debug!(op, error = %e, "request failed");
    }
    Errno::from_i32(code)
}

/// An error answered directly (not from the core), counted like the others.
fn fail(op: &str, e: Errno) -> Errno {
    crate::metrics::fuse_error(op, i32::from(e));
    e
}

/// A lock request as the kernel describes it (`end` inclusive).
fn lock_spec(
    i: INodeNo,
    owner: LockOwner,
    start: u64,
    end: u64,
    exclusive: bool,
    pid: u32,
) -> LockSpec {
    LockSpec {
        ino: ino(i),
        owner: owner.0,
        start,
        end,
        exclusive,
        pid,
    }
}

fn fopen_flags(o: &Opened) -> FopenFlags {
    let mut f = FopenFlags::empty();
    if o.keep_cache {
        f |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    if o.direct_io {
        f |= FopenFlags::FOPEN_DIRECT_IO;
    }
    f
}

fn time_spec(t: TimeOrNow) -> TimeSpec {
    match t {
        TimeOrNow::Now => TimeSpec::Now,
        TimeOrNow::SpecificTime(t) => TimeSpec::At(ns_of(t)),
    }
}

fn open_mode(flags: i32) -> OpenMode {
    let acc = OpenFlags(flags).acc_mode();
    OpenMode {
        read: matches!(acc, OpenAccMode::O_RDONLY | OpenAccMode::O_RDWR),
        write: matches!(acc, OpenAccMode::O_WRONLY | OpenAccMode::O_RDWR),
        append: flags & libc::O_APPEND != 0,
        truncate: flags & libc::O_TRUNC != 0,
        exclusive: flags & libc::O_EXCL != 0,
    }
}

impl FuseFs {
    fn reply_entry(&self, reply: ReplyEntry, attr: &Attr) {
        reply.entry(&self.ttl(attr), &to_fuse(attr), Generation(0));
    }

    /// `.memfs` entries are not cached (`at/2h` means two hours before *now*), nor
    /// attributes that include uncommitted writes.
    fn ttl(&self, a: &Attr) -> Duration {
        if MemFs::is_virtual(a.ino) || a.staged {
            Duration::ZERO
        } else {
            self.entry_ttl
        }
    }

    fn attr_ttl(&self, a: &Attr) -> Duration {
        if MemFs::is_virtual(a.ino) || a.staged {
            Duration::ZERO
        } else {
            self.attr_ttl
        }
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // O_TRUNC arrives with open, so truncate-and-write is one staged change.
        // POSIX and flock locks come to us, so they bind every mount on the database.
        let wanted = InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_POSIX_LOCKS
            | InitFlags::FUSE_FLOCK_LOCKS
            | InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO;
        if let Err(missing) = config.add_capabilities(wanted) {
            tracing::warn!(?missing, "kernel lacks some FUSE capabilities");
        }
        Ok(())
    }

    fn destroy(&mut self) {
        let open = self.fs.open_handles();
        if open > 0 {
            tracing::warn!(open, "unmounted with open handles");
        }
        match self.fs.commit_all() {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "committed staged writes at unmount"),
            Err(e) => tracing::error!(error = %e, "cannot commit staged writes at unmount"),
        }
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _timer = crate::metrics::fuse_op("lookup");
        match self.fs.lookup(ino(parent), name.as_bytes(), caller(req)) {
            Ok(attr) => self.reply_entry(reply, &attr),
            // Under .memfs a name may appear any moment (a new version, a file
            // created elsewhere) and no change feed says so: no negative entry.
            Err(FsError::NotFound) if MemFs::is_virtual(ino(parent)) => reply.error(Errno::ENOENT),
            Err(FsError::NotFound) => {
                crate::metrics::fuse_error("lookup", libc::ENOENT);
                // A negative entry: repeated stats of a missing file (git, shells)
                // cost one lookup per TTL. Our own creates invalidate it.
                let mut none = to_fuse(&Attr {
                    ino: Ino(0),
                    kind: NodeKind::File,
                    perm: 0,
                    uid: 0,
                    gid: 0,
                    nlink: 0,
                    size: 0,
                    rdev: 0,
                    atime_ns: 0,
                    mtime_ns: 0,
                    ctime_ns: 0,
                    crtime_ns: 0,
                    staged: false,
                });
                none.ino = INodeNo(0);
                reply.entry(&self.entry_ttl, &none, Generation(0));
            }
            Err(e) => reply.error(errno("lookup", e)),
        }
    }

    fn getattr(&self, _req: &Request, i: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _timer = crate::metrics::fuse_op("getattr");
        match self.fs.getattr(ino(i)) {
            Ok(a) => reply.attr(&self.attr_ttl(&a), &to_fuse(&a)),
            Err(e) => reply.error(errno("getattr", e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        i: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _timer = crate::metrics::fuse_op("setattr");
        let s = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time_spec),
            mtime: mtime.map(time_spec),
            fh: fh.map(|f| f.0),
        };
        match self.fs.setattr(ino(i), s, caller(req)) {
            Ok(a) => reply.attr(&self.attr_ttl(&a), &to_fuse(&a)),
            Err(e) => reply.error(errno("setattr", e)),
        }
    }

    fn readlink(&self, _req: &Request, i: INodeNo, reply: ReplyData) {
        let _timer = crate::metrics::fuse_op("readlink");
        match self.fs.readlink(ino(i)) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno("readlink", e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let _timer = crate::metrics::fuse_op("mknod");
        match self
            .fs
            .mknod(ino(parent), name.as_bytes(), mode, umask, rdev, caller(req))
        {
            Ok(a) => self.reply_entry(reply, &a),
            Err(e) => reply.error(errno("mknod", e)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _timer = crate::metrics::fuse_op("mkdir");
        match self
            .fs
            .mkdir(ino(parent), name.as_bytes(), mode, umask, caller(req))
        {
            Ok(a) => self.reply_entry(reply, &a),
            Err(e) => reply.error(errno("mkdir", e)),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _timer = crate::metrics::fuse_op("unlink");
        match self.fs.unlink(ino(parent), name.as_bytes(), caller(req)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("unlink", e)),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _timer = crate::metrics::fuse_op("rmdir");
        match self.fs.rmdir(ino(parent), name.as_bytes(), caller(req)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("rmdir", e)),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _timer = crate::metrics::fuse_op("symlink");
        match self.fs.symlink(
            ino(parent),
            link_name.as_bytes(),
            target.as_os_str().as_bytes(),
            caller(req),
        ) {
            Ok(a) => self.reply_entry(reply, &a),
            Err(e) => reply.error(errno("symlink", e)),
        }
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("rename");
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return reply.error(fail("rename", Errno::EINVAL));
        }
        let mode = RenameMode {
            noreplace: flags.contains(RenameFlags::RENAME_NOREPLACE),
            exchange: flags.contains(RenameFlags::RENAME_EXCHANGE),
        };
        match self.fs.rename(
            ino(parent),
            name.as_bytes(),
            ino(newparent),
            newname.as_bytes(),
            mode,
            caller(req),
        ) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("rename", e)),
        }
    }

    fn link(
        &self,
        req: &Request,
        i: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _timer = crate::metrics::fuse_op("link");
        match self
            .fs
            .link(ino(i), ino(newparent), newname.as_bytes(), caller(req))
        {
            Ok(a) => self.reply_entry(reply, &a),
            Err(e) => reply.error(errno("link", e)),
        }
    }

    fn open(&self, req: &Request, i: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _timer = crate::metrics::fuse_op("open");
        let mode = open_mode(flags.0);
        match self
            .fs
            .open_seen(ino(i), mode, caller(req), self.barrier.seen())
        {
            Ok((o, true)) => {
                let (fh, flags) = (FileHandle(o.fh), fopen_flags(&o));
                self.barrier
                    .after_catch_up(Box::new(move || reply.opened(fh, flags)));
            }
            Ok((o, false)) => reply.opened(FileHandle(o.fh), fopen_flags(&o)),
            Err(e) => reply.error(errno("open", e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _timer = crate::metrics::fuse_op("read");
        match self.fs.read(fh.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(errno("read", e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _timer = crate::metrics::fuse_op("write");
        match self.fs.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno("write", e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        i: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("flush");
        // close(2) drops the closing process's POSIX locks on the file.
        if let Err(e) = self.fs.unlock_owner(ino(i), lock_owner.0) {
            return reply.error(errno("flush", e));
        }
        match self.fs.flush(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("flush", e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        i: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("release");
        // The last close of a descriptor drops its flock lock.
        if let Some(owner) = lock_owner {
            if let Err(e) = self.fs.unlock_owner(ino(i), owner.0) {
                tracing::error!(error = %e, "cannot drop flock lock on release");
            }
        }
        match self.fs.release(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("release", e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("fsync");
        match self.fs.fsync(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("fsync", e)),
        }
    }

    fn opendir(&self, _req: &Request, i: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _timer = crate::metrics::fuse_op("opendir");
        match self.fs.opendir(ino(i)) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno("opendir", e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _timer = crate::metrics::fuse_op("readdir");
        let res = self.fs.readdir(fh.0, offset, |e, next| {
            reply.add(
                INodeNo(e.ino.0 as u64),
                next,
                file_type(e.kind),
                OsStr::from_bytes(&e.name),
            )
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("readdir", e)),
        }
    }

    /// readdir with each entry's attributes, so that `ls -l`, `find`, `grep -r`
    /// and `rm -rf` do not send one LOOKUP per name afterwards.
    fn readdirplus(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _timer = crate::metrics::fuse_op("readdirplus");
        let res = self.fs.readdir(fh.0, offset, |e, next| {
            let attr = match self.fs.getattr(e.ino) {
                Ok(a) => a,
                // Removed since opendir: leave it out, as a fresh listing would.
                Err(_) => return false,
            };
            reply.add(
                INodeNo(e.ino.0 as u64),
                next,
                OsStr::from_bytes(&e.name),
                &self.ttl(&attr),
                &to_fuse(&attr),
                Generation(0),
            )
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("readdirplus", e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _i: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("releasedir");
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("fsyncdir");
        // Directory changes are group-committed; fsync of a directory commits now.
        match self.fs.db().sync() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("fsyncdir", FsError::from(e))),
        }
    }

    fn statfs(&self, _req: &Request, _i: INodeNo, reply: ReplyStatfs) {
        let _timer = crate::metrics::fuse_op("statfs");
        let stats = match self.fs.stats() {
            Ok(s) => s,
            Err(e) => return reply.error(errno("statfs", e)),
        };
        // Space is whatever the database's filesystem has left.
        let (blocks, bfree, bavail) = self
            .fs
            .db_path()
            .and_then(|p| disk_space(p.parent().unwrap_or(Path::new("/"))))
            .unwrap_or((1 << 30, 1 << 29, 1 << 29));
        let used = stats.bytes.div_ceil(4096);
        let blocks = blocks.max(used);
        reply.statfs(
            blocks,
            bfree,
            bavail,
            stats.files + (1 << 20),
            1 << 20,
            4096,
            255,
            4096,
        );
    }

    fn setxattr(
        &self,
        _req: &Request,
        _i: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("setxattr");
        // ENOSYS once makes the kernel answer EOPNOTSUPP itself from then on.
        reply.error(fail("setxattr", Errno::ENOSYS));
    }

    fn getxattr(&self, _req: &Request, _i: INodeNo, _name: &OsStr, _size: u32, reply: ReplyXattr) {
        let _timer = crate::metrics::fuse_op("getxattr");
        reply.error(fail("getxattr", Errno::ENOSYS));
    }

    fn listxattr(&self, _req: &Request, _i: INodeNo, _size: u32, reply: ReplyXattr) {
        let _timer = crate::metrics::fuse_op("listxattr");
        reply.error(fail("listxattr", Errno::ENOSYS));
    }

    fn removexattr(&self, _req: &Request, _i: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        let _timer = crate::metrics::fuse_op("removexattr");
        reply.error(fail("removexattr", Errno::ENOSYS));
    }

    fn access(&self, _req: &Request, _i: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        let _timer = crate::metrics::fuse_op("access");
        // Mounted with default_permissions: the kernel checks modes itself.
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _timer = crate::metrics::fuse_op("create");
        match self.fs.create(
            ino(parent),
            name.as_bytes(),
            mode,
            umask,
            open_mode(flags),
            caller(req),
        ) {
            // (An existing file opened with O_TRUNC has staged attributes.)
            Ok((a, o)) => reply.created(
                &self.ttl(&a),
                &to_fuse(&a),
                Generation(0),
                FileHandle(o.fh),
                fopen_flags(&o),
            ),
            Err(e) => reply.error(errno("create", e)),
        }
    }

    fn getlk(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let _timer = crate::metrics::fuse_op("getlk");
        let spec = lock_spec(i, lock_owner, start, end, typ == libc::F_WRLCK, pid);
        match self.fs.getlk(&spec) {
            Ok(Some(l)) => {
                let t = if l.exclusive {
                    libc::F_WRLCK
                } else {
                    libc::F_RDLCK
                };
                reply.locked(l.start, l.end, t, l.pid)
            }
            Ok(None) => reply.locked(start, end, libc::F_UNLCK, 0),
            Err(e) => reply.error(errno("getlk", e)),
        }
    }

    fn setlk(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("setlk");
        let kind = match typ {
            libc::F_RDLCK => Some(false),
            libc::F_WRLCK => Some(true),
            libc::F_UNLCK => None,
            _ => return reply.error(fail("setlk", Errno::EINVAL)),
        };
        let spec = lock_spec(i, lock_owner, start, end, kind == Some(true), pid);
        match self.fs.setlk(&spec, kind) {
            Ok(true) if kind.is_some() => grant(&self.fs, &self.barrier, reply),
            Ok(true) => reply.ok(),
            Ok(false) if !sleep => reply.error(fail("setlk", Errno::EAGAIN)),
            Ok(false) => {
                // F_SETLKW/flock: wait on a thread of its own, so dispatch threads
                // stay free to serve the unlock that will end the wait.
                let fs = self.fs.clone();
                let barrier = self.barrier.clone();
                let spawned = std::thread::Builder::new()
                    .name("memfs-lockwait".into())
                    .spawn(move || wait_for_lock(&fs, &barrier, spec, reply));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start a lock waiter");
                }
            }
            Err(e) => reply.error(errno("setlk", e)),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        i: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _timer = crate::metrics::fuse_op("fallocate");
        // Plain preallocation only extends the size; hole punching is not supported.
        if mode != 0 {
            return reply.error(fail("fallocate", Errno::from_i32(libc::EOPNOTSUPP)));
        }
        let end = match offset.checked_add(length) {
            Some(e) => e,
            None => return reply.error(fail("fallocate", Errno::EFBIG)),
        };
        let res = self.fs.getattr(ino(i)).and_then(|a| {
            if end > a.size {
                let s = SetAttr {
                    size: Some(end),
                    fh: Some(fh.0),
                    ..Default::default()
                };
                self.fs.setattr(ino(i), s, caller(req))?;
            }
            // Even when the space was already there, a successful call changes ctime.
            self.fs.touch_ctime(ino(i))
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("fallocate", e)),
        }
    }
}

/// Polls for a blocking lock until it is granted, would deadlock, or the waiting
/// process is gone.
fn wait_for_lock(fs: &MemFs, barrier: &FeedBarrier, spec: LockSpec, reply: ReplyEmpty) {
    loop {
        match fs.setlk_wait(&spec) {
            Ok(LockStep::Granted) => return grant(fs, barrier, reply),
            Ok(LockStep::Deadlock) => return reply.error(fail("setlk", Errno::EDEADLK)),
            Ok(LockStep::Blocked) => {
                // fuser answers FUSE_INTERRUPT itself, so a signal to the waiter is
                // seen here: a thread that is gone or has a deliverable signal
                // pending gets EINTR, as a local lock wait would.
                if !waiter_may_wait(spec.pid) {
                    fs.stop_waiting(spec.owner);
                    return reply.error(fail("setlk", Errno::EINTR));
                }
            }
            Err(e) => {
                fs.stop_waiting(spec.owner);
                return reply.error(errno("setlk", e));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the thread waiting for a lock still exists and has no unblocked
/// signal pending (read from /proc; a thread we cannot inspect may wait).
fn waiter_may_wait(tid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return false;
    };
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    let ignored_or_blocked = mask("SigBlk:") | mask("SigIgn:");
    pending & !ignored_or_blocked == 0
}

/// (total, free, available) 4 KiB blocks of the filesystem holding `dir`.
fn disk_space(dir: &Path) -> Option<(u64, u64, u64)> {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let scale = |n: u64| n.saturating_mul(s.f_frsize) / 4096;
    Some((scale(s.f_blocks), scale(s.f_bfree), scale(s.f_bavail)))
}

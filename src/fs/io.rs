//! Open files and their handles: open, read, write, flush, fsync, release, and the
//! commit that turns staged bytes into one new version.

use super::guard::{self, Verdict};
use super::policy::Access;
use super::staging::Staging;
use super::{Attr, Caller, MemFs};
use crate::digest::ContentHasher;
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, StoreId, VersionId};
use crate::metrics::CommitPhase;
use crate::store::{chunk_parts, chunk_reader, Change, Extent, Extents, NewVersion, NodeKind, Txn};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Puts what `of` has staged (size, mtime and ctime) over committed attributes.
pub(super) fn overlay_from(of: &OpenFile, attr: &mut Attr) {
    if of.staging.dirty || of.staging.size != attr.size {
        attr.staged = true;
        attr.size = of.staging.size;
        if let Some(m) = of.staging.mtime_ns {
            // A staged write or truncate changes the inode: ctime with mtime.
            attr.mtime_ns = m;
            attr.ctime_ns = attr.ctime_ns.max(m);
        }
    }
}

/// How a file is being opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenMode {
    /// Opened for reading as well as writing (`O_RDWR`); a mode that does not
    /// write always reads.
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub truncate: bool,
    /// `O_EXCL`: a create must make a new file, never open an existing one.
    pub exclusive: bool,
}

impl OpenMode {
    /// Whether this open reads the file.
    pub fn reads(&self) -> bool {
        self.read || !self.write
    }

    /// The change an open in this mode may make, for the path policies.
    pub(super) fn changes(&self) -> Option<Access> {
        match (self.write || self.truncate, self.append && !self.truncate) {
            (false, _) => None,
            (true, true) => Some(Access::Append),
            (true, false) => Some(Access::Modify),
        }
    }
}

/// The result of an open: the handle, whether the kernel may keep cached pages,
/// and whether it must send writes uncached (`O_APPEND` handles: the page cache
/// would cut one `write(2)` at page boundaries into several requests, and another
/// mount's append could land between them).
#[derive(Clone, Copy, Debug)]
pub struct Opened {
    pub fh: u64,
    pub keep_cache: bool,
    pub direct_io: bool,
}

/// What the opener read of a file before attaching a handle to it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seen {
    /// The file's head.
    pub head: Option<VersionId>,
    /// [`Db::write_mark`](crate::store::Db::write_mark) taken before the read.
    pub mark: Option<u64>,
}

impl Seen {
    /// A head read without a write mark (in a write transaction).
    pub fn unmarked(head: Option<VersionId>) -> Seen {
        Seen { head, mark: None }
    }
}

/// A file open in this mount, shared by all its handles: descriptors in one mount
/// see each other's staged writes, as on a local disk.
pub(super) struct OpenFile {
    pub ino: Ino,
    pub store: StoreId,
    pub staging: Staging,
    /// The fencing token of this mount's write lease on the file, while held.
    pub lease: Option<i64>,
    /// Open handles that needed the lease (writers without O_APPEND).
    pub lease_users: usize,
    /// The lease's only user gave it up in the commit of a close (FLUSH): a
    /// later write through that handle (a descriptor dup'ed before the close
    /// and still open) takes it again.
    pub lease_parked: bool,
}

pub(super) struct Handle {
    file: Arc<Mutex<OpenFile>>,
    ino: Ino,
    write: bool,
    append: bool,
    /// This handle counts as a lease user.
    leased: bool,
    /// This handle wrote since its last commit; its flush commits.
    dirty: bool,
    /// Where this handle's last write ended (the kernel's offset): a refused
    /// write that continues it may be the tail of one split `write(2)`.
    last_end: Option<u64>,
    /// Opened with O_TRUNC and has not committed since. Only the final release
    /// commits for this: a shell's `> file` duplicates the descriptor and closes
    /// the copy before writing, and that flush must not make an empty version.
    truncated: bool,
}

/// What a commit transaction did.
enum Outcome {
    /// The new version, its content map, the hash state, and whether this
    /// mount's kernel cache may disagree with it.
    Committed(VersionId, Extents, Box<ContentHasher>, bool),
    Conflict {
        kept: VersionId,
        head: Option<VersionId>,
        head_ext: Extents,
    },
    Unlinked,
}

/// Digest state after all of a version's bytes (when no cached state exists).
fn hash_extents(tx: &Txn<'_>, ext: &Extents) -> FsResult<ContentHasher> {
    let mut h = ContentHasher::new();
    let mut pos = 0;
    while pos < ext.size() {
        let piece = tx.read_extents(ext, pos, 1 << 20)?;
        if piece.is_empty() {
            break;
        }
        h.update(&piece);
        pos += piece.len() as u64;
    }
    Ok(h)
}

#[derive(Default)]
pub(super) struct OpenTable {
    files: HashMap<Ino, (usize, Arc<Mutex<OpenFile>>)>,
    handles: HashMap<u64, Handle>,
    /// The head each inode had when the kernel last cached it through this mount.
    seen_heads: HashMap<Ino, Option<VersionId>>,
}

pub(super) fn lock_file(f: &Mutex<OpenFile>) -> MutexGuard<'_, OpenFile> {
    f.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemFs {
    /// Opens a regular file.
    pub fn open(&self, ino: Ino, mode: OpenMode, caller: Caller) -> FsResult<Opened> {
        let r = self.open_in(ino, mode, self.stale.retrying(caller), None);
        self.stale.settle(caller, true, r).map(|(o, _)| o)
    }

    /// [`open`](Self::open) for a front end that follows the change feed and
    /// has told its kernel of changes up to position `seen`: also whether the
    /// reply must wait until the kernel hears of other mounts' changes to the
    /// file (see [`open_waits_for_feed`](Self::open_waits_for_feed)), asked
    /// in the same query as the file's inode.
    pub fn open_seen(
        &self,
        ino: Ino,
        mode: OpenMode,
        caller: Caller,
        seen: i64,
    ) -> FsResult<(Opened, bool)> {
        let r = self.open_in(ino, mode, self.stale.retrying(caller), Some(seen));
        self.stale.settle(caller, true, r)
    }

    /// [`open`](Self::open); `orphan_ok` when the kernel reached `ino` by a fresh
    /// walk (its retry), so that a removal since then is a race a local disk
    /// would run the same way: the inode found is opened. With `seen`, also
    /// whether the reply waits for the feed ([`open_seen`](Self::open_seen)).
    fn open_in(
        &self,
        ino: Ino,
        mode: OpenMode,
        orphan_ok: bool,
        seen: Option<i64>,
    ) -> FsResult<(Opened, bool)> {
        if ino == Ino::ROOT {
            return Err(FsError::IsDir);
        }
        if mode.truncate && !mode.write {
            // POSIX leaves O_RDONLY|O_TRUNC undefined. Under atomic O_TRUNC the
            // kernel would take it as done before its ETXTBSY check, so honouring it
            // could empty a running program, and ignoring it would leave the
            // kernel's size wrong: refuse it.
            return Err(FsError::Invalid("O_TRUNC needs a writable open"));
        }
        if Self::is_virtual(ino) {
            let fh = self.virt_open(ino, mode.write || mode.truncate)?;
            // History never changes: the kernel may keep what it cached. A
            // change feed grows: every read must reach it.
            let live = self.virt_is_live(ino);
            let opened = Opened {
                fh,
                keep_cache: !live,
                direct_io: live,
            };
            return Ok((opened, false));
        }
        let seen = seen.filter(|_| Self::reads_cached_pages(mode));
        let mark = self.db.write_mark();
        let (row, news) = self.db.read(|tx| {
            let (row, news) = match seen {
                Some(seq) => tx.inode_and_news(ino, seq, &self.holder)?,
                None => (tx.inode(ino)?, false),
            };
            let row = row.ok_or(FsError::NotFound)?;
            let att = self.attached_by_id(row.store.ok_or(FsError::NotFound)?)?;
            match row.kind {
                NodeKind::File => {}
                NodeKind::Dir => return Err(FsError::IsDir),
                // Fifos and device nodes are opened by the kernel itself, never here.
                _ => return Err(FsError::Unsupported),
            }
            if let Some(access) = mode.changes() {
                self.check_inode_change(tx, att, ino, access)?;
            }
            Ok::<_, FsError>((row, news))
        })?;
        // (Checked outside the read: the open table is locked before the database.)
        if row.nlink == 0 && !orphan_ok && self.open_file(ino).is_none() {
            // No name leads here any more, and no descriptor of this mount has it
            // open (which /proc/PID/fd could reopen): the kernel walked through a
            // cached name that another mount removed or replaced. Opening the
            // orphan would read old bytes and drop the writes; the kernel should
            // look again.
            return Err(FsError::Stale(Box::new(FsError::NotFound)));
        }
        let opened = self.attach_handle(
            ino,
            row.store.ok_or(FsError::NotFound)?,
            mode,
            None,
            Seen {
                head: row.head,
                mark,
            },
        )?;
        Ok((opened, news))
    }

    /// Registers a new handle on `ino`, loading its content on first open.
    /// `seen.head` is the head the caller just read: a first open stages from
    /// it, and the read under the file lock below moves the staging forward if
    /// a commit came in between (one query less per open and create).
    pub(super) fn attach_handle(
        &self,
        ino: Ino,
        store: StoreId,
        mode: OpenMode,
        pre_lease: Option<i64>,
        seen: Seen,
    ) -> FsResult<Opened> {
        let seen_head = seen.head;
        let (file, current) = {
            let mut t = self.lock_open();
            if let Some((refs, f)) = t.files.get_mut(&ino) {
                *refs += 1;
                (f.clone(), false)
            } else {
                // A first open staged from `seen.head` needs no second read of
                // the head when that head was read in the transaction that took
                // the lease, or when this mount has written nothing since it was
                // read (a descriptor that closed in between may have committed).
                // A change by another mount since then ran concurrently with
                // this open, which may take effect before it.
                let current =
                    pre_lease.is_some() || seen.mark.is_some_and(|m| self.db.unwritten_since(m));
                // Load outside the table lock would be nicer, but a first open must
                // not race a second one into two stagings; loading is one query
                // (none when the extents are cached). A descriptor closed since the
                // caller looked may have committed a newer head and dropped the
                // shared state: the clean staging is moved to it below.
                let head = seen_head;
                let ext = self.extents_of(head)?;
                let staging = Staging::new(
                    head,
                    ext,
                    self.opts.spill_bytes,
                    self.opts.spill_dir.clone(),
                );
                let f = Arc::new(Mutex::new(OpenFile {
                    ino,
                    store,
                    staging,
                    lease: None,
                    lease_users: 0,
                    lease_parked: false,
                }));
                t.files.insert(ino, (1, f.clone()));
                (f, current)
            }
        };
        let leased = (mode.write && !mode.append) || mode.truncate;
        let mut truncated = false;
        let prepared = (|| {
            let mut of = lock_file(&file);
            // The lease comes first: the previous holder commits before it lets go,
            // so the head read after taking it is the one to build on.
            if leased && of.lease.is_none() {
                of.lease = match pre_lease {
                    Some(t) => Some(t),
                    None => Some(self.acquire_lease(ino, store)?),
                };
                of.lease_parked = false;
            }
            // The head read by the caller may be stale: another descriptor may have
            // committed since. Under the file lock no commit of this mount can run,
            // so this read is current, and a clean staging only ever moves forward.
            // A lease taken just now also needs it: the previous holder committed
            // before letting go. So does a staging that another handle, joining
            // since, moved.
            let head =
                if current && !(leased && pre_lease.is_none()) && of.staging.base == seen_head {
                    seen_head
                } else {
                    self.head_of(ino)?
                };
            self.follow_head(&mut of, head)?;
            if mode.truncate && mode.write {
                truncated = of.staging.truncate(0, now_ns())?;
            }
            if leased {
                of.lease_users += 1;
            }
            Ok::<_, FsError>(head)
        })();
        let head = match prepared {
            Ok(h) => h,
            Err(e) => {
                self.drop_file_ref(ino);
                return Err(e);
            }
        };
        let fh = self.new_fh();
        let mut t = self.lock_open();
        let seen = t.seen_heads.insert(ino, head);
        let keep_cache = !mode.truncate && seen == Some(head);
        t.handles.insert(
            fh,
            Handle {
                file,
                ino,
                write: mode.write,
                append: mode.append,
                leased,
                dirty: false,
                last_end: None,
                truncated,
            },
        );
        Ok(Opened {
            fh,
            keep_cache,
            direct_io: mode.append,
        })
    }

    fn handle_file(&self, fh: u64) -> FsResult<(Arc<Mutex<OpenFile>>, bool, bool)> {
        let t = self.lock_open();
        let h = t.handles.get(&fh).ok_or(FsError::BadHandle)?;
        Ok((h.file.clone(), h.write, h.append))
    }

    /// Reads from an open handle (staged bytes included).
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        if let Some(data) = self.virt_read(fh, offset, size) {
            return Ok(data);
        }
        let (file, _, _) = self.handle_file(fh)?;
        let mut of = lock_file(&file);
        of.staging.read(&self.db, offset, size)
    }

    /// Stages a write. `O_APPEND` handles always write at the current end.
    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let (file, write, append) = self.handle_file(fh)?;
        let (last_end, leased) = self
            .lock_open()
            .handles
            .get(&fh)
            .map_or((None, false), |h| (h.last_end, h.leased));
        if !write {
            return Err(FsError::BadHandle);
        }
        let len = u32::try_from(data.len()).map_err(|_| FsError::Invalid("write too large"))?;
        {
            let mut of = lock_file(&file);
            if leased && of.lease_parked {
                self.unpark_lease(&mut of)?;
            }
            let off = if append { of.staging.size } else { offset };
            let policy = self.attached_by_id(of.store)?.policy();
            let end = off.saturating_add(data.len() as u64);
            let refusal = if end > policy.max_file_bytes(self.opts.max_file_bytes) {
                Some(("file size limit", FsError::TooBig))
            } else if policy.quota.max_bytes.is_some_and(|max| end > max) {
                Some(("store byte quota", FsError::Quota("store byte quota")))
            } else {
                None
            };
            if let Some((why, err)) = refusal {
                // When this request continues the previous one, the kernel may have
                // cut one write(2) in pieces and staged the first: that content is
                // incomplete and must not be committed. So with the first write of
                // a handle (an O_TRUNC must not commit alone). A write elsewhere
                // simply fails; what was staged before it stands.
                if append || last_end.is_none() || last_end == Some(offset) {
                    of.staging.refused = Some(why);
                }
                return Err(err);
            }
            tracing::trace!(
                ino = of.ino.0,
                fh,
                offset,
                at = off,
                len = data.len(),
                "write"
            );
            of.staging.write(&self.db, off, data, append, now_ns())?;
        }
        if let Some(h) = self.lock_open().handles.get_mut(&fh) {
            h.dirty = true;
            h.last_end = Some(offset + u64::from(len));
        }
        Ok(len)
    }

    /// Called on every close(2) of a descriptor: commits what this handle staged.
    pub fn flush(&self, fh: u64) -> FsResult<()> {
        if self.virt_has_handle(fh) {
            return Ok(());
        }
        let (file, dirty, leased) = {
            let t = self.lock_open();
            let h = t.handles.get(&fh).ok_or(FsError::BadHandle)?;
            (h.file.clone(), h.dirty, h.leased)
        };
        if !dirty {
            return Ok(());
        }
        {
            let mut of = lock_file(&file);
            if leased && of.lease_users == 1 && of.lease.is_some() {
                // The lease's only user, and a close is most often its last: the
                // lease goes in the commit's transaction, not in one of its own
                // at RELEASE. (After a failed commit it stays, and RELEASE
                // gives it up as before.)
                let committed = self.commit_and_release(&mut of, "write", true);
                if matches!(committed, Ok(Some(_))) {
                    of.lease = None;
                    of.lease_parked = true;
                }
                committed?;
            } else {
                self.commit(&mut of, "write")?;
            }
        }
        if let Some(h) = self.lock_open().handles.get_mut(&fh) {
            h.dirty = false;
            h.truncated = false;
        }
        Ok(())
    }

    /// fsync(2): commits everything staged for the file, from any handle.
    pub fn fsync(&self, fh: u64) -> FsResult<()> {
        if self.virt_has_handle(fh) {
            return Ok(());
        }
        let (file, _, _) = self.handle_file(fh)?;
        self.commit_file(&file)?;
        // fsync is a durability point: the batch holding this version commits now.
        self.db.sync()?;
        let mut t = self.lock_open();
        let ino = t.handles.get(&fh).map(|h| h.ino);
        for h in t.handles.values_mut() {
            if Some(h.ino) == ino {
                h.dirty = false;
                h.truncated = false;
            }
        }
        Ok(())
    }

    /// The last close of a handle: commits if needed and forgets the handle.
    pub fn release(&self, fh: u64) -> FsResult<()> {
        if self.virt_release(fh) {
            return Ok(());
        }
        let handle = self
            .lock_open()
            .handles
            .remove(&fh)
            .ok_or(FsError::BadHandle)?;
        let result = self.release_handle(&handle);
        self.drop_file_ref(handle.ino);
        result
    }

    fn release_handle(&self, handle: &Handle) -> FsResult<()> {
        if handle.leased {
            let mut of = lock_file(&handle.file);
            of.lease_users = of.lease_users.saturating_sub(1);
            if of.lease_users == 0 {
                of.lease_parked = false;
            }
            if of.lease_users == 0 && of.lease.is_some() {
                // The last writer's close: commit everything staged (other append
                // handles' bytes too, so the next holder builds on them) and give
                // up the lease, in one transaction.
                let committed = self.commit_and_release(&mut of, "write", true);
                let released = match of.lease.take() {
                    // Nothing was staged (or the commit failed): release on its own.
                    Some(token) if !matches!(committed, Ok(Some(_))) => {
                        self.release_lease(handle.ino, token)
                    }
                    _ => Ok(()),
                };
                return committed.map(|_| ()).and(released);
            }
        }
        if handle.dirty || handle.truncated {
            self.commit_file(&handle.file)
        } else {
            Ok(())
        }
    }

    /// Forgets one reference to an open file; the last one drops its state.
    fn drop_file_ref(&self, ino: Ino) {
        let mut t = self.lock_open();
        if let Some((refs, _)) = t.files.get_mut(&ino) {
            *refs -= 1;
            if *refs == 0 {
                t.files.remove(&ino);
            }
        }
    }

    /// Takes back the lease a close gave up (see [`OpenFile::lease_parked`])
    /// before the handle writes again, and builds on the head as the lease
    /// finds it (another writer may have committed in between).
    fn unpark_lease(&self, of: &mut OpenFile) -> FsResult<()> {
        let token = self.acquire_lease(of.ino, of.store)?;
        of.lease = Some(token);
        of.lease_parked = false;
        let head = self.head_of(of.ino)?;
        self.follow_head(of, head)
    }

    /// The file's head as the database has it now.
    pub(super) fn head_of(&self, ino: Ino) -> FsResult<Option<VersionId>> {
        self.db
            .read(|tx| Ok::<_, FsError>(tx.inode(ino)?.and_then(|r| r.head)))
    }

    /// Moves a clean staging (nothing staged) to `head`; a clean staging only
    /// ever moves forward, and a dirty one keeps its base (its commit decides).
    pub(super) fn follow_head(&self, of: &mut OpenFile, head: Option<VersionId>) -> FsResult<()> {
        if !of.staging.dirty && of.staging.base != head {
            let ext = self.extents_of(head)?;
            of.staging.rebase(head, ext);
        }
        Ok(())
    }

    fn commit_file(&self, file: &Mutex<OpenFile>) -> FsResult<()> {
        let mut of = lock_file(file);
        self.commit(&mut of, "write")?;
        Ok(())
    }

    /// Turns staged bytes into one new version, in one transaction with the inode's
    /// new head and the audit entry. Returns the new version, if one was made.
    ///
    /// If the head moved since the staging was based on it (another mount or
    /// memfsctl committed), appends are re-based onto the new head, so concurrent
    /// `>>` writers all land; any other change is kept as a conflict version that
    /// does not become the head, and the commit fails with `EBUSY`.
    pub(super) fn commit(&self, of: &mut OpenFile, op: &str) -> FsResult<Option<VersionId>> {
        self.commit_and_release(of, op, false)
    }

    /// [`commit`](Self::commit), also giving up this mount's lease in the same
    /// transaction when `release` (the last writer's close: one transaction, not two).
    fn commit_and_release(
        &self,
        of: &mut OpenFile,
        op: &str,
        release: bool,
    ) -> FsResult<Option<VersionId>> {
        if !of.staging.dirty {
            return Ok(None);
        }
        if let Some(why) = of.staging.refused {
            // Drop the incomplete bytes; the committed head is untouched, and this
            // mount's kernel must forget the size it was told while staging.
            let (base, ext) = (of.staging.base, of.staging.base_ext.clone());
            of.staging.rebase(base, ext);
            self.forget_kernel_view(of.store, of.ino);
            return Err(if why == "file size limit" {
                FsError::TooBig
            } else {
                FsError::Quota("store byte quota")
            });
        }
        let timer = crate::metrics::commit_phases();
        let (guard_detail, replaced) = self.guard(of)?;
        let (ino, store, lease) = (of.ino, of.store, of.lease);
        let mut lease_lost = false;
        let st = &mut of.staging;
        let hasher = match self.hashes.hasher(&self.db, st.base, st.dirty_from) {
            Some(h) => h,
            None => st.hash_base_prefix(&self.db, st.dirty_from)?,
        };
        let (aligned, prefix) = st.commit_start(&self.db)?;
        timer.lap(CommitPhase::Prepare);
        let now = now_ns();
        let st_ref: &Staging = st;
        let outcome = self.db.write(|tx| {
            if let (true, Some(t)) = (release, lease) {
                // Deleting the lease row leaves the fence token as it is, so the
                // check below still holds this commit to it.
                tx.release_lease(ino, &self.holder, t)?;
            }
            let Some(mut row) = tx.inode(ino)? else {
                return Ok::<_, FsError>(Outcome::Unlinked);
            };
            // An unlinked file's last bytes have no name to be versioned under.
            let path = match tx.path_of(ino)? {
                Some(p) if row.nlink > 0 => p,
                _ => return Ok(Outcome::Unlinked),
            };
            let pure_append = st_ref.appends_only && st_ref.dirty_from == st_ref.base_ext.size();
            // May this commit replace the head? Only under our lease's token if we
            // hold one, and never while someone else holds a live lease.
            let fenced_ok = match lease {
                Some(t) => tx.fence_token(ino)? == Some(t),
                None => tx.live_lease(ino)?.is_none_or(|l| l.holder == self.holder),
            };
            lease_lost = lease.is_some() && !fenced_ok;
            let (base, base_len, mut h, base_ext, conflict) =
                if row.head == st_ref.base && fenced_ok {
                    (st_ref.base, st_ref.dirty_from, hasher, None, false)
                } else if pure_append {
                    let ext = self.extents_in(tx, row.head)?;
                    let h = match self.hashes.hasher(&self.db, row.head, ext.size()) {
                        Some(h) => h,
                        None => hash_extents(tx, &ext)?,
                    };
                    (row.head, ext.size(), h, Some(ext), false)
                } else {
                    (st_ref.base, st_ref.dirty_from, hasher, None, true)
                };
            timer.lap(CommitPhase::Begin);
            let mut tail: Vec<Extent> = Vec::new();
            // The re-chunked bytes start at `aligned` (a base chunk boundary) unless
            // re-basing an append; the hash already covers everything before
            // `dirty_from`.
            let (prefix, chunk_from) = if base == st_ref.base {
                (&prefix[..], aligned)
            } else {
                (&prefix[..0], base_len)
            };
            let mut unhashed = prefix.len();
            let each = |c: &[u8]| {
                let skip = unhashed.min(c.len());
                unhashed -= skip;
                h.update(&c[skip..]);
                tail.push(tx.put_chunk(store, c)?);
                Ok(())
            };
            match st_ref.tail_in_memory() {
                Some(bytes) => chunk_parts(prefix, bytes, each)?,
                None => chunk_reader(std::io::Read::chain(prefix, st_ref.tail_reader()), each)?,
            }
            let base_len = chunk_from;
            let zeros = st_ref.size - st_ref.dirty_from - st_ref.tail_len();
            if zeros > 0 {
                let block = [0u8; 65536];
                let mut left = zeros;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    h.update(&block[..n]);
                    left -= n as u64;
                }
                tail.push(Extent {
                    chunk: None,
                    len: zeros,
                });
            }
            timer.lap(CommitPhase::Chunks);
            let digests = h.finalize();
            let hash = digests.blake3;
            let kernel_may_differ = base != st_ref.base || st_ref.appends_only;
            let vop = if conflict { "conflict" } else { op };
            let att = self.attached_by_id(store)?;
            if !att.writable() || tx.store_archived(store)? {
                return Err(FsError::ReadOnly("store is read-only or archived"));
            }
            let (vid, size, flat) = tx.insert_version_as_stored(&NewVersion {
                ino,
                store,
                base,
                base_len,
                tail: tail.clone(),
                base_full: Some(base_ext.as_ref().unwrap_or(&st_ref.base_ext)),
                hash,
                sha256: Some(digests.sha256),
                op: vop,
                path: &path,
                who: &self.who,
                at_ns: now,
            })?;
            if let (Some(max), false) = (att.policy().quota.max_bytes, conflict) {
                // Rolled back with the transaction: the old head stays.
                let (_, used) = tx.store_usage(store)?;
                if used - row.size.min(used) + size > max {
                    return Err(FsError::Quota("store byte quota"));
                }
            }
            timer.lap(CommitPhase::Version);
            let mut detail = serde_json::json!({"size": size, "hash": hash.to_hex().as_str()});
            if let Some(serde_json::Value::Object(extra)) = &guard_detail {
                for (k, v) in extra {
                    detail[k] = v.clone();
                }
            }
            if conflict {
                detail["head"] = row.head.map(|v| v.0).into();
                detail["based_on"] = st_ref.base.map(|v| v.0).into();
            } else {
                row.head = Some(vid);
                row.size = size;
                row.mtime_ns = st_ref.mtime_ns.unwrap_or(now);
                row.ctime_ns = now;
                tx.save_inode(&row)?;
            }
            self.record(
                tx,
                now,
                Change {
                    store: Some(store),
                    op: vop,
                    path: Some(&path),
                    ino: Some(ino),
                    version: Some(vid),
                    detail: Some(detail),
                    // Appends may land at other offsets than this mount's kernel
                    // wrote into its page cache (its idea of the end of file can
                    // lag behind other mounts' appends): its cache must go too.
                    origin: kernel_may_differ.then_some("rebased"),
                    ..Default::default()
                },
            )?;
            timer.lap(CommitPhase::Audit);
            if conflict {
                let head_ext = match row.head {
                    Some(v) => tx.extents(v)?,
                    None => Extents::new(),
                };
                return Ok(Outcome::Conflict {
                    kept: vid,
                    head: row.head,
                    head_ext,
                });
            }
            let ext = match flat {
                // Stored flat: cache what was stored, not what was composed.
                Some(stored) => Extents::from_items(stored),
                None => {
                    let mut ext = base_ext.unwrap_or_else(|| st_ref.base_ext.clone());
                    ext.truncate(base_len);
                    for e in tail {
                        ext.push(e);
                    }
                    ext
                }
            };
            Ok(Outcome::Committed(vid, ext, Box::new(h), kernel_may_differ))
        })?;
        timer.lap(CommitPhase::End);
        match outcome {
            Outcome::Committed(vid, ext, h, kernel_may_differ) => {
                let size = ext.size();
                let ext_for_cache = ext.clone();
                st.rebase(Some(vid), ext);
                self.hashes.put(&self.db, vid, (size, *h));
                self.extents.put(&self.db, vid, ext_for_cache);
                // The kernel's pages match the new head only when this mount wrote
                // every byte where the kernel placed it; otherwise the next open
                // must not keep them.
                let mut t = self.lock_open();
                if kernel_may_differ {
                    t.seen_heads.remove(&ino);
                } else {
                    t.seen_heads.insert(ino, Some(vid));
                }
                drop(t);
                if replaced {
                    // The kernel cached the bytes as written, not as stored.
                    self.forget_kernel_view(store, ino);
                }
                timer.lap(CommitPhase::Finish);
                Ok(Some(vid))
            }
            Outcome::Conflict {
                kept,
                head,
                head_ext,
            } => {
                crate::metrics::conflict();
                st.rebase(head, head_ext);
                self.forget_kernel_view(store, ino);
                if lease_lost {
                    // Fenced off: the lease now belongs to someone else.
                    of.lease = None;
                }
                tracing::warn!(
                    ino = ino.0,
                    kept = kept.0,
                    "write conflict: kept as a conflict version"
                );
                Err(FsError::Busy(format!(
                    "the file changed underneath; your bytes are kept as conflict version {kept}"
                )))
            }
            Outcome::Unlinked => {
                // Drop the staged bytes but keep serving them to open descriptors.
                st.dirty = false;
                Ok(None)
            }
        }
    }

    /// Applies the store's content rules (validators, PII policy) to what `of` is
    /// about to commit. `Ok((detail, replaced))` lets the commit go on, with
    /// `detail` for its audit entry and `replaced` when the staged content was
    /// rewritten (redacted). An error means it was rejected: audited, staged
    /// bytes dropped, the head left as it was.
    fn guard(&self, of: &mut OpenFile) -> FsResult<(Option<serde_json::Value>, bool)> {
        let policy = self.attached_by_id(of.store)?.policy();
        if policy.pii == super::PiiMode::Off && policy.validate.is_empty() {
            return Ok((None, false));
        }
        let Some(path) = self.db.read(|tx| tx.path_of(of.ino))? else {
            return Ok((None, false));
        };
        if !guard::applies(&policy, &path) {
            return Ok((None, false));
        }
        if of.staging.size > guard::GUARD_MAX_BYTES {
            tracing::warn!(
                path,
                size = of.staging.size,
                "too large for the content rules; stored unchecked"
            );
            let detail = serde_json::json!({ "guard": "skipped: larger than 64 MiB" });
            return Ok((Some(detail), false));
        }
        let size = of.staging.size;
        let data = of.staging.read(&self.db, 0, size as u32)?;
        match guard::check(&policy, &path, &data) {
            Verdict::Store { detail } => Ok((detail, false)),
            Verdict::Replace { data, detail } => {
                let now = now_ns();
                of.staging.truncate(0, now)?;
                of.staging.write(&self.db, 0, &data, false, now)?;
                Ok((Some(detail), true))
            }
            Verdict::Reject { error, detail } => {
                tracing::warn!(path, %detail, "commit rejected by the store's content rules");
                let (ino, store) = (of.ino, of.store);
                self.record_rejection(store, Some(ino), &path, detail)?;
                let (base, ext) = (of.staging.base, of.staging.base_ext.clone());
                of.staging.rebase(base, ext);
                self.forget_kernel_view(store, ino);
                Err(error)
            }
        }
    }

    /// The extent list of `version` (empty for none), from the cache if there.
    pub(super) fn extents_of(&self, version: Option<VersionId>) -> FsResult<Extents> {
        if let Some(e) = version.and_then(|v| self.extents.get(&self.db, v)) {
            return Ok(e);
        }
        self.db.read(|tx| self.extents_in(tx, version))
    }

    /// [`extents_of`](Self::extents_of) inside a transaction.
    fn extents_in(&self, tx: &Txn<'_>, version: Option<VersionId>) -> FsResult<Extents> {
        let Some(v) = version else {
            return Ok(Extents::new());
        };
        if let Some(e) = self.extents.get(&self.db, v) {
            return Ok(e);
        }
        let e = tx.extents(v)?;
        self.extents.put(&self.db, v, e.clone());
        Ok(e)
    }

    /// Replaces size and mtime with staged values when this mount has unsaved writes.
    pub(super) fn overlay_staged(&self, attr: &mut Attr) {
        let file = match self.lock_open().files.get(&attr.ino) {
            Some((_, f)) => f.clone(),
            None => return,
        };
        overlay_from(&lock_file(&file), attr);
    }

    /// Marks a handle as having staged changes (its close will commit them).
    pub(super) fn mark_dirty(&self, fh: u64) {
        if let Some(h) = self.lock_open().handles.get_mut(&fh) {
            h.dirty = true;
        }
    }

    /// The shared open state of `ino` in this mount, if it is open.
    pub(super) fn open_file(&self, ino: Ino) -> Option<Arc<Mutex<OpenFile>>> {
        self.lock_open().files.get(&ino).map(|(_, f)| f.clone())
    }

    /// Commits every file with staged changes (at shutdown, so that a daemon stopped
    /// while descriptors are still open loses nothing it was given).
    pub fn commit_all(&self) -> FsResult<usize> {
        let files: Vec<Arc<Mutex<OpenFile>>> = self
            .lock_open()
            .files
            .values()
            .map(|(_, f)| f.clone())
            .collect();
        let mut n = 0;
        for f in files {
            let mut of = lock_file(&f);
            if self.commit(&mut of, "write")?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Number of open handles (for tests and shutdown logging).
    pub fn open_handles(&self) -> usize {
        self.lock_open().handles.len()
    }

    /// The committed versions this mount's open files read from and build on:
    /// retention must keep them (the renewer publishes them as pins).
    pub fn open_versions(&self) -> Vec<VersionId> {
        let files: Vec<Arc<Mutex<OpenFile>>> = self
            .lock_open()
            .files
            .values()
            .map(|(_, f)| f.clone())
            .collect();
        let mut out: Vec<VersionId> = files
            .iter()
            .filter_map(|f| lock_file(f).staging.base)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

//! Group commit: a daemon runs many changes inside one SQLite transaction and
//! commits it within a bounded interval, so index and WAL pages shared by those
//! changes are written once instead of once per change.
//!
//! Each change still runs in its own SAVEPOINT, so a change that fails rolls back
//! alone and a commit holds whole changes only: a crash loses at most the changes
//! of the last interval, in order, never part of one. Durability points (fsync,
//! unmount) commit at once.
//!
//! Batching must never starve another writer on the same database (a second
//! daemon, `memfsctl rollback`). A writer that finds the database locked takes a
//! shared `flock` on the side file `DB-want` while it waits (in the busy handler);
//! the batching daemon probes that lock after its changes (at most every
//! millisecond) and commits at once, and stops batching, while anyone waits.

use rusqlite::Connection;
use std::cell::RefCell;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a daemon batches its changes.
#[derive(Clone, Copy, Debug)]
pub struct BatchPolicy {
    /// A batch commits at the latest this long after it began.
    pub interval: Duration,
    /// A batch commits as soon as its changes stored this many content bytes.
    pub max_bytes: u64,
    /// Below this much free space on the database's filesystem, every change
    /// commits on its own, so that a full disk fails the change that filled it.
    pub min_free_bytes: u64,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            interval: Duration::from_millis(5),
            max_bytes: 16 << 20,
            min_free_bytes: 256 << 20,
        }
    }
}

/// What a daemon's changes learn about the database while its batch is open,
/// kept for the rest of that batch. Inside an open batch this connection holds
/// the write lock, so nobody else can change what is cached; the cache is
/// emptied when the batch ends (commit or rollback) and whenever one change
/// rolls back to its savepoint, so it never outlives what it describes.
#[derive(Default)]
pub(super) struct BatchCache {
    /// Store-relative paths of directories (a directory has one entry, so its
    /// path is one value). Whenever a directory is cached, its ancestors are.
    pub dir_paths: std::collections::HashMap<i64, String>,
    /// Each audit chain's newest entry (seq, hash).
    pub chain_heads: std::collections::HashMap<i64, (i64, Vec<u8>)>,
    /// The next audit id (SQLite draws `max(id) + 1`).
    pub next_audit_id: Option<i64>,
    /// Whether each store is archived (asked by every change).
    pub archived: std::collections::HashMap<i64, bool>,
    /// The store whose chunks each store's content lives in (its base, for a
    /// draft), and that store's sealing key (`None`: not encrypted); asked
    /// for every chunk stored.
    pub chunk_domains: std::collections::HashMap<i64, i64>,
    pub sealing: std::collections::HashMap<i64, Option<std::sync::Arc<super::crypto::StoreKey>>>,
    /// Inode rows read or written in this batch (a file's row is read several
    /// times by one create, write and close). Every write of an inode row
    /// updates or drops its entry here.
    pub inodes: std::collections::HashMap<i64, super::InodeRow>,
}

impl BatchCache {
    pub fn clear(&mut self) {
        self.dir_paths.clear();
        self.chain_heads.clear();
        self.next_audit_id = None;
        self.archived.clear();
        self.chunk_domains.clear();
        self.sealing.clear();
        self.inodes.clear();
    }

    /// The entry `parent/name` was removed or repointed: forget the path of
    /// whatever directory it named, and of everything below it.
    pub fn entry_changed(&mut self, parent: i64, name: &[u8]) {
        // Nothing below an uncached directory is cached.
        let Some(dir) = self.dir_paths.get(&parent) else {
            return;
        };
        let name = String::from_utf8_lossy(name);
        let gone = if dir.is_empty() {
            name.into_owned()
        } else {
            format!("{dir}/{name}")
        };
        let below = format!("{gone}/");
        self.dir_paths
            .retain(|_, p| p.as_str() != gone && !p.starts_with(&below));
    }
}

/// The connection and the state of the batch it may have open.
pub(super) struct Inner {
    pub conn: Connection,
    /// What the open batch's changes learned (see [`BatchCache`]).
    pub cache: RefCell<BatchCache>,
    /// When the open batch transaction began; `None` when none is open.
    pub open_since: Option<Instant>,
    /// Content bytes and changes in the open batch.
    pub bytes: u64,
    pub changes: u64,
    /// When the reused read transaction began; `None` when none is open.
    pub read_since: Option<Instant>,
    /// Counts batches rolled back whole (shared with [`super::Db::rollbacks`]).
    pub rollbacks: Arc<AtomicU64>,
    /// Durable group commit (`memfs serve`): the number of the batch open or
    /// last opened, the last one finished (committed or failed), and recent
    /// failures, so each writer learns its own batch's fate.
    pub batch_no: u64,
    pub done_no: u64,
    pub failed: std::collections::VecDeque<u64>,
    /// When `DB-want` was last probed, and whether someone waited then.
    pub want_probe: Option<(Instant, bool)>,
}

impl Inner {
    pub fn new(conn: Connection, rollbacks: Arc<AtomicU64>) -> Inner {
        Inner {
            rollbacks,
            conn,
            open_since: None,
            bytes: 0,
            changes: 0,
            read_since: None,
            batch_no: 0,
            done_no: 0,
            failed: Default::default(),
            want_probe: None,
            cache: RefCell::new(BatchCache::default()),
        }
    }

    /// Ends the reused read transaction, if one is open.
    pub fn end_read(&mut self) {
        if self.read_since.take().is_some() {
            if let Err(e) = self.conn.execute_batch("COMMIT") {
                tracing::warn!(error = %e, "cannot end a read transaction");
            }
        }
    }

    /// Commits the open batch, if any. On failure SQLite has rolled the batch back
    /// (or is made to), and the error says how many changes were lost.
    pub fn commit(&mut self) -> rusqlite::Result<()> {
        if self.open_since.take().is_none() {
            return Ok(());
        }
        self.cache.get_mut().clear();
        let changes = std::mem::take(&mut self.changes);
        self.bytes = 0;
        let start = Instant::now();
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                crate::metrics::batch_commit(changes, start.elapsed());
                Ok(())
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                self.rollbacks.fetch_add(1, Ordering::Relaxed);
                crate::metrics::batch_rollback();
                tracing::error!(changes, error = %e, "a batch of changes could not be committed and was rolled back");
                Err(e)
            }
        }
    }
}

/// The side file through which waiting writers ask a batching daemon to commit.
pub(super) struct Want {
    /// Locked shared by this process's waiters (through the busy handler).
    wait_fd: File,
    /// Probed exclusive (non-blocking) by this process when it batches.
    probe_fd: File,
}

impl Want {
    /// Opens (creating) `DB-want` next to the database; `None` if that is impossible
    /// (a read-only directory), in which case this process neither batches nor signals.
    pub fn open(db: &Path) -> Option<Want> {
        let mut name = db.as_os_str().to_owned();
        name.push("-want");
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&name)
                .ok()
        };
        Some(Want {
            wait_fd: open()?,
            probe_fd: open()?,
        })
    }

    /// True while some other connection waits for the write lock.
    pub fn someone_waits(&self) -> bool {
        let fd = self.probe_fd.as_raw_fd();
        // SAFETY: flock on a descriptor this struct owns; no memory is involved.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            // SAFETY: as above.
            unsafe { libc::flock(fd, libc::LOCK_UN) };
            false
        } else {
            std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
        }
    }

    /// The descriptor waiters lock shared.
    pub fn wait_fd(&self) -> RawFd {
        self.wait_fd.as_raw_fd()
    }
}

/// Arms the calling thread's busy handler for one database call: its wait clock
/// starts afresh, and it signals through `want_fd` (if any) until the guard drops.
pub(super) fn arm(want_fd: Option<RawFd>) -> WantGuard {
    WAITING.with(|w| {
        *w.borrow_mut() = Waiting {
            fd: want_fd,
            locked: false,
            since: None,
        }
    });
    WantGuard
}

/// Clears the thread's busy-handler state and drops its shared lock, if taken.
pub(super) struct WantGuard;

impl Drop for WantGuard {
    fn drop(&mut self) {
        WAITING.with(|w| {
            let mut w = w.borrow_mut();
            if let (Some(fd), true) = (w.fd, w.locked) {
                // SAFETY: flock on a descriptor owned by the Db that armed this guard,
                // which outlives the guard.
                unsafe { libc::flock(fd, libc::LOCK_UN) };
            }
            *w = Waiting::default();
        });
    }
}

#[derive(Default)]
struct Waiting {
    fd: Option<RawFd>,
    locked: bool,
    since: Option<Instant>,
}

thread_local! {
    static WAITING: RefCell<Waiting> = RefCell::new(Waiting::default());
}

/// A batching daemon probes `DB-want` at most this often (a waiter is noticed
/// this much later at worst; the batch interval is 5 ms by default).
pub(super) const WANT_PROBE_EVERY: Duration = Duration::from_millis(1);

/// How long a writer waits for the database's write lock before giving up.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite's busy handler: signals through the armed want file, then polls every
/// 100 us at first and every millisecond later, up to [`BUSY_TIMEOUT`].
pub(super) fn busy_handler(attempt: i32) -> bool {
    let waited = WAITING.with(|w| {
        let mut w = w.borrow_mut();
        if let (Some(fd), false) = (w.fd, w.locked) {
            // SAFETY: flock on a descriptor owned by the armed Db (see WantGuard).
            w.locked = unsafe { libc::flock(fd, libc::LOCK_SH) } == 0;
        }
        let since = *w.since.get_or_insert_with(Instant::now);
        since.elapsed()
    });
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(if attempt < 50 {
        Duration::from_micros(100)
    } else {
        Duration::from_millis(1)
    });
    true
}

/// Free bytes on the filesystem holding `path` (`None` if unknown).
pub(super) fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into a zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use crate::error::StoreError;
    use crate::ids::Identity;
    use crate::store::{BatchPolicy, Db, Scope};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A database file in a fresh directory, removed on drop.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new(tag: &str) -> TempDb {
            let dir = std::env::temp_dir().join(format!(
                "memfs-batch-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDb(dir)
        }
        fn open(&self) -> Db {
            Db::open(&self.0.join("memfs.db")).unwrap()
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn batching(db: &Db, interval: Duration) {
        let on = db.enable_batching(BatchPolicy {
            interval,
            min_free_bytes: 0,
            ..BatchPolicy::default()
        });
        assert!(on, "batching must turn on for a file database");
    }

    fn make(db: &Db, name: &str) -> Result<(), StoreError> {
        let who = Identity::new("t", "t", None);
        db.write(|tx| {
            tx.create_store(name, Scope::Org, None, "", &who, 1)
                .map(|_| ())
        })
    }

    fn names(db: &Db) -> Vec<String> {
        db.read(|tx| tx.stores())
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn a_batch_is_seen_by_its_own_process_at_once_and_by_others_after_sync() {
        let t = TempDb::new("visible");
        let (a, b) = (t.open(), t.open());
        batching(&a, Duration::from_secs(3600));
        make(&a, "one").unwrap();
        make(&a, "two").unwrap();
        assert_eq!(names(&a), ["one", "two"]);
        assert!(names(&b).is_empty(), "uncommitted batch leaked");
        a.sync().unwrap();
        assert_eq!(names(&b), ["one", "two"]);
    }

    #[test]
    fn a_failed_change_rolls_back_alone() {
        let t = TempDb::new("savepoint");
        let a = t.open();
        batching(&a, Duration::from_secs(3600));
        make(&a, "kept").unwrap();
        let who = Identity::new("t", "t", None);
        let failed: Result<(), StoreError> = a.write(|tx| {
            tx.create_store("half", Scope::Org, None, "", &who, 1)?;
            Err(StoreError::Invalid("refused after a write".into()))
        });
        assert!(failed.is_err());
        make(&a, "after").unwrap();
        a.sync().unwrap();
        assert_eq!(names(&t.open()), ["after", "kept"]);
    }

    #[test]
    fn dropping_the_database_commits_the_open_batch() {
        let t = TempDb::new("drop");
        let a = t.open();
        batching(&a, Duration::from_secs(3600));
        make(&a, "late").unwrap();
        drop(a);
        assert_eq!(names(&t.open()), ["late"]);
    }

    #[test]
    fn the_committer_commits_within_the_interval() {
        let t = TempDb::new("committer");
        let a = Arc::new(t.open());
        batching(&a, Duration::from_millis(5));
        let stop = Arc::new(AtomicBool::new(false));
        let th = {
            let (a, stop) = (a.clone(), stop.clone());
            std::thread::spawn(move || a.run_committer(&stop))
        };
        make(&a, "timed").unwrap();
        let b = t.open();
        // No sync: only the committer can make this visible to another connection.
        while names(&b).is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        th.join().unwrap();
    }

    fn autocheckpoint(db: &Db) -> i64 {
        db.lite()
            .unwrap()
            .lock()
            .conn
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap()
    }

    /// A daemon's commits never copy the WAL into the database themselves (after
    /// a crash that left a large WAL, the first one did so for seconds, holding
    /// the daemon's connection): its checkpointer thread does, on its own
    /// connection, and gives the job back when it stops.
    #[test]
    fn the_checkpointer_keeps_checkpoints_off_the_daemons_connection() {
        let t = TempDb::new("checkpointer");
        let a = Arc::new(t.open());
        batching(&a, Duration::from_millis(5));
        let stop = Arc::new(AtomicBool::new(false));
        let th = {
            let (a, stop) = (a.clone(), stop.clone());
            std::thread::spawn(move || a.run_checkpointer(&stop, Duration::from_millis(5)))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while autocheckpoint(&a) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "checkpointer never started"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let db_file = t.0.join("memfs.db");
        let before = std::fs::metadata(&db_file).unwrap().len();
        for i in 0..2000 {
            make(&a, &format!("s{i:04}")).unwrap();
        }
        a.sync().unwrap();
        // The pages reach the database file, copied by the checkpointer (the
        // deadline only keeps a broken checkpointer from hanging the test).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::fs::metadata(&db_file).unwrap().len() <= before {
            assert!(std::time::Instant::now() < deadline, "nothing checkpointed");
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        th.join().unwrap();
        assert_eq!(autocheckpoint(&a), 1000);
        assert_eq!(names(&t.open()).len(), 2000);
    }

    #[test]
    fn a_waiting_writer_is_not_starved_by_a_busy_batcher() {
        let t = TempDb::new("starve");
        let a = Arc::new(t.open());
        // A batch would stay open for an hour (longer than the busy timeout) if
        // nothing asked it to commit.
        batching(&a, Duration::from_secs(3600));
        make(&a, "first").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let busy = {
            let (a, stop) = (a.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    make(&a, &format!("a{i}")).unwrap();
                    i += 1;
                }
            })
        };
        let b = t.open();
        make(&b, "from-b").expect("the second writer got the lock");
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        a.sync().unwrap();
        assert!(names(&b).contains(&"from-b".to_string()));
    }

    /// Durable mode (`memfs serve`): concurrent writers share commits, every
    /// write returned is committed (visible to another connection at once,
    /// and after reopening), and a failed change leaves the others alone.
    #[test]
    fn durable_writers_group_commit_and_each_change_is_committed_on_return() {
        let t = TempDb::new("durable");
        let db = Arc::new(t.open());
        db.set_durable().unwrap();
        let who = Identity::new("t", "t", None);
        db.write(|tx| tx.create_store("kb", Scope::Org, None, "", &who, 1))
            .unwrap();
        let other = t.open();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (db, who) = (db.clone(), who.clone());
                std::thread::spawn(move || {
                    for j in 0..40 {
                        let name = format!("s{i}-{j}");
                        db.write(|tx| tx.create_store(&name, Scope::Org, None, "", &who, 1))
                            .unwrap();
                        if j % 10 == 0 {
                            // A failing change in the middle of others.
                            let r =
                                db.write(|tx| tx.create_store("kb", Scope::Org, None, "", &who, 1));
                            assert!(matches!(r, Err(StoreError::Exists(_))));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = other.read(|tx| tx.stores()).unwrap().len();
        assert_eq!(n, 1 + 8 * 40);
        let batches = db.lite().unwrap().lock().batch_no;
        assert!(batches <= 8 * 40 + 1, "{batches}");
        // A failing change alone commits its (empty) batch: the write lock is
        // not left held for the next writer to come along.
        let r = db.write(|tx| tx.create_store("kb", Scope::Org, None, "", &who, 1));
        assert!(matches!(r, Err(StoreError::Exists(_))));
        assert!(
            db.lite().unwrap().lock().open_since.is_none(),
            "the batch was left open"
        );
        drop(db);
        assert_eq!(t.open().read(|tx| tx.stores()).unwrap().len(), 1 + 8 * 40);
    }
}

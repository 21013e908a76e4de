//! The SQLite engine: one connection per process behind a mutex, group
//! commit of a daemon's changes in savepoints of one transaction (see
//! [`super::batch`]), a reused read snapshot, and the `DB-want` signal that
//! keeps batching from starving other writers. SQLite has one writer per
//! database, so every change is totally ordered, across stores too.

use super::batch::{self, BatchPolicy, Inner, Want};
use super::crypto::Crypto;
use super::sql::Conn;
use super::{gc, schema, Txn};
use crate::error::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// A SQLite database file (or an in-memory one, for tests).
pub struct Lite {
    inner: Mutex<Inner>,
    /// Wakes the committer when a batch opens.
    opened: Condvar,
    pub(super) path: Option<PathBuf>,
    want: Option<Want>,
    /// Set (once, by a daemon) to run changes in group-committed batches.
    batch: OnceLock<BatchPolicy>,
    /// Batches rolled back whole (their version and inode ids may be reused).
    rollbacks: Arc<AtomicU64>,
    /// Every change is durable before `write` returns, group-committed with
    /// the changes of concurrent writers ([`Lite::set_durable`]).
    durable: AtomicBool,
    /// Writers between entering `write` and finishing their change (durable mode).
    writers: AtomicUsize,
    /// Wakes durable writers when a batch finishes.
    finished: Condvar,
}

impl Lite {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Lite> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Self::setup(conn, Some(path.to_path_buf()))
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> StoreResult<Lite> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(mut conn: Connection, path: Option<PathBuf>) -> StoreResult<Lite> {
        let want = path.as_deref().and_then(Want::open);
        // Migrations may need the write lock: wait for it like any writer.
        let armed = batch::arm(want.as_ref().map(Want::wait_fd));
        conn.busy_handler(Some(batch::busy_handler))?;
        gc::prepare_new_database(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A 32 MiB page cache keeps hot metadata and chunks out of read(2) calls;
        // it is bounded, so the daemon's RSS stays small.
        conn.pragma_update(None, "cache_size", -32768)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(256);
        if super::sql_profile::enabled() {
            conn.trace_v2(
                rusqlite::trace::TraceEventCodes::SQLITE_TRACE_PROFILE,
                Some(super::sql_profile::record),
            );
        }
        // Liveness (leases, holders, locks) is judged by the database's clock
        // on every engine; for SQLite that is this host's.
        conn.create_scalar_function(
            "memfs_now",
            0,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8,
            |_| Ok(crate::ids::now_ns()),
        )?;
        schema::migrate(&mut conn)?;
        drop(armed);
        let rollbacks = Arc::new(AtomicU64::new(0));
        Ok(Lite {
            inner: Mutex::new(Inner::new(conn, rollbacks.clone())),
            opened: Condvar::new(),
            path,
            want,
            batch: OnceLock::new(),
            rollbacks,
            durable: AtomicBool::new(false),
            writers: AtomicUsize::new(0),
            finished: Condvar::new(),
        })
    }

    /// Turns on group commit (see [`batch`]): changes then commit together, at the
    /// latest `policy.interval` after the first, or at once while another writer
    /// waits, on [`Db::sync`], or when the disk is nearly full. A file database
    /// only; someone must run [`Db::run_committer`]. Returns false if not enabled.
    pub fn enable_batching(&self, policy: BatchPolicy) -> bool {
        if self.want.is_none() || policy.interval.is_zero() {
            return false;
        }
        self.batch.set(policy).is_ok()
    }

    /// Makes every change durable before [`Db::write`] returns
    /// (`synchronous=FULL`: the WAL is fsynced at each commit), as `memfs
    /// serve` needs: its answers promise the change is committed. Concurrent
    /// writers share commits (group commit): each change runs in a savepoint
    /// of the open batch, and the last writer in commits for all, so N
    /// concurrent changes cost about one fsync. Daemons keep `NORMAL`, whose
    /// commits survive a crash of the process but not of the machine.
    pub fn set_durable(&self) -> StoreResult<()> {
        let mut g = self.lock();
        g.end_read();
        g.commit()?;
        g.conn.pragma_update(None, "synchronous", "FULL")?;
        self.durable.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// [`Db::write`] in durable mode: the change joins the open batch (or
    /// opens one) and returns once that batch is committed.
    fn write_durable<T, E>(
        &self,
        crypto: &Crypto,
        f: impl FnOnce(&Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        /// A change waits at most this long for a later writer to commit its
        /// batch before it commits the batch itself.
        const LINGER: Duration = Duration::from_millis(2);
        let _armed = self.arm();
        self.writers.fetch_add(1, Ordering::SeqCst);
        let mut g = self.lock();
        let ran = (|| {
            g.end_read();
            if g.open_since.is_none() {
                g.conn
                    .execute_batch("BEGIN IMMEDIATE")
                    .map_err(StoreError::from)?;
                g.open_since = Some(Instant::now());
                g.batch_no += 1;
            }
            g.conn
                .prepare_cached("SAVEPOINT change")
                .and_then(|mut s| s.execute([]))
                .map_err(StoreError::from)?;
            let out = f(&Txn::in_batch(Conn::Lite(&g.conn), crypto, true, &g.cache));
            let end = if out.is_ok() {
                "RELEASE change"
            } else {
                g.cache.borrow_mut().clear();
                "ROLLBACK TO change; RELEASE change"
            };
            if let Err(e) = g.conn.execute_batch(end) {
                tracing::error!(error = %e, "cannot end a change; aborting its batch");
                let _ = g.commit();
                return Err(E::from(StoreError::from(e)));
            }
            out
        })();
        self.writers.fetch_sub(1, Ordering::SeqCst);
        let mine = g.batch_no;
        let since = Instant::now();
        // A failed change (rolled back to its savepoint) still takes part in
        // committing the batch: when it is the last writer in, nobody else
        // would, and the open batch would hold the write lock.
        loop {
            if g.done_no >= mine || g.open_since.is_none() {
                let out = ran?;
                if g.failed.contains(&mine) {
                    return Err(E::from(StoreError::Corrupt(
                        "the change could not be committed (its batch was rolled back)".into(),
                    )));
                }
                return Ok(out);
            }
            if self.writers.load(Ordering::SeqCst) == 0 || since.elapsed() >= LINGER {
                let r = g.commit();
                g.done_no = mine;
                if r.is_err() {
                    g.failed.push_back(mine);
                    if g.failed.len() > 64 {
                        g.failed.pop_front();
                    }
                }
                self.finished.notify_all();
                continue;
            }
            g = self
                .finished
                .wait_timeout(g, LINGER)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// How many batches were lost to a failed commit. Caches of anything keyed by
    /// ids empty themselves when this changes.
    pub fn rollbacks(&self) -> u64 {
        self.rollbacks.load(Ordering::Relaxed)
    }

    pub(super) fn arm(&self) -> batch::WantGuard {
        batch::arm(self.want.as_ref().map(Want::wait_fd))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` as one change: committed if it returns `Ok`, rolled back otherwise.
    /// Without batching it is one IMMEDIATE transaction (taking the write lock up
    /// front, so two daemons never deadlock upgrading read transactions); with
    /// batching it is a savepoint in the open batch.
    pub fn write<T, E>(
        &self,
        crypto: &Crypto,
        f: impl FnOnce(&Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        if self.durable.load(Ordering::Relaxed) {
            return self.write_durable(crypto, f);
        }
        let _armed = self.arm();
        let mut g = self.lock();
        g.end_read();
        if g.open_since.is_none() && self.should_batch(&mut g) {
            g.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(StoreError::from)?;
            g.open_since = Some(Instant::now());
            self.opened.notify_all();
        }
        if g.open_since.is_none() {
            let tx = g
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::from)?;
            let out = f(&Txn::new(Conn::Lite(&tx), crypto, true))?;
            tx.commit().map_err(StoreError::from)?;
            return Ok(out);
        }
        g.conn
            .prepare_cached("SAVEPOINT change")
            .and_then(|mut s| s.execute([]))
            .map_err(StoreError::from)?;
        let (out, bytes) = {
            let txn = Txn::in_batch(Conn::Lite(&g.conn), crypto, true, &g.cache);
            (f(&txn), txn.bytes.get())
        };
        let out = match out {
            Ok(v) => {
                g.conn
                    .prepare_cached("RELEASE change")
                    .and_then(|mut s| s.execute([]))
                    .map_err(StoreError::from)?;
                g.bytes += bytes;
                g.changes += 1;
                v
            }
            Err(e) => {
                g.cache.get_mut().clear();
                let undone = g
                    .conn
                    .execute_batch("ROLLBACK TO change; RELEASE change")
                    .map_err(StoreError::from);
                if let Err(u) = undone {
                    tracing::error!(error = %u, "cannot roll a failed change back; aborting the batch");
                    let _ = g.conn.execute_batch("ROLLBACK");
                    g.open_since = None;
                    g.rollbacks.fetch_add(1, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        if self.batch_due(&mut g) {
            g.commit().map_err(StoreError::from)?;
        }
        Ok(out)
    }

    /// Runs `f` in a read transaction (one consistent snapshot). Inside an open
    /// batch it reads the batch, so a daemon always sees its own changes.
    pub fn read<T, E>(
        &self,
        crypto: &Crypto,
        f: impl FnOnce(&Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let _armed = self.arm();
        let mut g = self.lock();
        if g.open_since.is_some() {
            return f(&Txn::in_batch(Conn::Lite(&g.conn), crypto, false, &g.cache));
        }
        if let Some(policy) = self.batch.get() {
            // A daemon reuses one read snapshot for up to an interval: taking
            // WAL read locks costs more than most lookups. Its own changes end
            // the snapshot first, so it never misses them; others' changes show
            // at most an interval later (the change feed is slower anyway).
            if g.read_since.is_some_and(|t| t.elapsed() >= policy.interval) {
                g.end_read();
            }
            if g.read_since.is_none() {
                g.conn
                    .execute_batch("BEGIN DEFERRED")
                    .map_err(StoreError::from)?;
                g.read_since = Some(Instant::now());
                self.opened.notify_all();
            }
            return f(&Txn::new(Conn::Lite(&g.conn), crypto, false));
        }
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        let out = f(&Txn::new(Conn::Lite(&tx), crypto, false))?;
        tx.finish().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Commits the open batch now (a durability point: fsync, unmount).
    pub fn sync(&self) -> StoreResult<()> {
        let _armed = self.arm();
        let mut g = self.lock();
        g.end_read();
        g.commit().map_err(StoreError::from)
    }

    /// Commits each batch when it falls due, until `stop` is set; then commits
    /// what is open and returns. A daemon runs this on its own thread.
    pub fn run_committer(&self, stop: &AtomicBool) {
        let Some(policy) = self.batch.get().copied() else {
            return;
        };
        let mut g = self.lock();
        while !stop.load(Ordering::Relaxed) {
            if g.read_since.is_some_and(|t| t.elapsed() >= policy.interval) {
                g.end_read();
            }
            let wait = match g.open_since.or(g.read_since) {
                None => Duration::from_millis(100),
                Some(t) if t.elapsed() >= policy.interval => {
                    // The error is logged by commit; the next change starts afresh.
                    let _ = g.commit();
                    g.end_read();
                    continue;
                }
                Some(t) => policy.interval - t.elapsed(),
            };
            g = self
                .opened
                .wait_timeout(g, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let _ = g.commit();
        g.end_read();
    }

    /// Runs SQLite's WAL checkpoints on a connection of its own, every `every`
    /// while the WAL changes, until `stop` is set. A daemon runs this on its own
    /// thread. Without it, the commit that crosses SQLite's auto-checkpoint
    /// threshold copies the whole WAL into the database inside the commit, while
    /// holding the daemon's one connection: after a SIGKILL that left a 1 GB WAL,
    /// the first commit after start-up stalled every request for 3 s. A passive
    /// checkpoint on another connection waits for nobody and blocks nobody.
    pub fn run_checkpointer(&self, stop: &AtomicBool, every: Duration) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(&path, flags) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no checkpoint connection; commits checkpoint");
                return;
            }
        };
        let autocheckpoint = |pages: i64| {
            if let Err(e) = self
                .lock()
                .conn
                .pragma_update(None, "wal_autocheckpoint", pages)
            {
                tracing::warn!(error = %e, "cannot set wal_autocheckpoint");
            }
        };
        autocheckpoint(0);
        let mut wal = path.into_os_string();
        wal.push("-wal");
        let stamp = || {
            std::fs::metadata(&wal)
                .ok()
                .map(|m| (m.len(), m.modified().ok()))
        };
        let mut done = None;
        let step = every.min(Duration::from_millis(20));
        let mut waited = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(step);
            waited += step;
            if waited < every {
                continue;
            }
            waited = Duration::ZERO;
            let now = stamp();
            if now.is_none() || now == done {
                continue;
            }
            let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            });
            match r {
                // Everything copied: nothing to do until the WAL changes again.
                Ok((log, copied)) if copied >= log => done = now,
                // Readers still use the rest; the next round tries again.
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
            }
        }
        // The last commits and the close checkpoint on the daemon's connection.
        autocheckpoint(1000);
    }

    /// Whether another connection waits for the write lock, probing `DB-want`
    /// at most every [`batch::WANT_PROBE_EVERY`]: a probe is two flock(2) calls,
    /// and a daemon makes several changes per file. A waiter is therefore
    /// noticed up to that much later, still well within the batch interval.
    fn someone_waits(&self, g: &mut Inner) -> bool {
        let Some(want) = &self.want else {
            return false;
        };
        if let Some((at, waits)) = g.want_probe {
            if at.elapsed() < batch::WANT_PROBE_EVERY {
                return waits;
            }
        }
        let waits = want.someone_waits();
        g.want_probe = Some((Instant::now(), waits));
        waits
    }

    /// Whether a new change should open a batch rather than commit on its own.
    fn should_batch(&self, g: &mut Inner) -> bool {
        let (Some(policy), Some(path)) = (self.batch.get(), &self.path) else {
            return false;
        };
        if self.want.is_none() {
            return false;
        }
        if self.someone_waits(g) {
            // Let the waiter in between this process's transactions.
            std::thread::sleep(Duration::from_micros(200));
            return false;
        }
        batch::free_bytes(path).is_some_and(|free| free >= policy.min_free_bytes)
    }

    /// Whether the open batch must commit now.
    fn batch_due(&self, g: &mut Inner) -> bool {
        let Some(policy) = self.batch.get() else {
            return true;
        };
        g.open_since.is_some_and(|t| t.elapsed() >= policy.interval)
            || g.bytes >= policy.max_bytes
            || self.someone_waits(g)
    }
}

impl Drop for Lite {
    fn drop(&mut self) {
        let mut g = self.lock();
        g.end_read();
        let _ = g.commit();
    }
}

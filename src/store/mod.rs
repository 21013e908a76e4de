//! Persistence: one database holding stores, inodes/dentries, chunked content,
//! versions, the audit chains and the change feed. Knows nothing of FUSE.
//!
//! Callers run every change inside [`Db::write`], which hands them a [`Txn`]: the
//! narrow interface the filesystem layer composes operations from. One closure is
//! one transaction, so a crash leaves either the old or the new state.
//!
//! Two engines sit under the same `Db`/`Txn` surface: SQLite (a file path; the
//! embedded default, one writer at a time) and PostgreSQL (a `postgres://`
//! URL; many hosts, stores written in parallel). Nothing outside `store/`
//! learns which one runs: `Txn` methods hold the logic once and speak SQL both
//! engines accept ([`sql`]); the engines differ in how a closure becomes a
//! transaction ([`sqlite`], [`postgres`]).

/// A statement's text, formatted once per process: hot statements are built
/// from column lists, and formatting them on every call (a lookup, an open)
/// cost more than the statement cache's lookup of the finished text.
macro_rules! sql_once {
    ($($fmt:tt)*) => {{
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!($($fmt)*));
        SQL.as_str()
    }};
}

mod audit;
pub mod backup;
pub mod batch;
mod chains;
mod content;
pub mod crypto;
mod drafts;
mod file_versions;
mod gc;
pub mod inspect;
mod jobs;
pub mod keyring;
mod keys;
mod leases;
mod namespace;
pub mod postgres;
mod redact;
mod reviews;
mod schema;
mod scrub;
mod search;
pub(crate) mod sql;
pub mod sql_profile;
mod sqlite;
mod stores;
mod tls;
pub mod transfer;

pub use audit::{AuditEntry, AuditFilter, ChainBreak, Change, FeedRow};
pub use content::{
    chunk_bytes, chunk_parts, chunk_reader, Extent, Extents, NewVersion, VersionRow, AVG_CHUNK,
    MAX_CHUNK, MIN_CHUNK,
};
pub use drafts::{draft_store_name, BaseEntry, BaseRow, DraftReason, DraftRow, NewDraft};
pub use file_versions::{FileVersion, FileVersionFilter, FileVersionKind};
pub use gc::{FileVersions, MaintenanceHolder, Space};
pub use jobs::JobRow;
pub use keys::KeyRow;
pub use leases::{host_name, ttl_ns, HolderInfo, LeaseRow, LockRow, LockSpec};
pub use namespace::{FileRow, InodeRow, ListedEntry, NewInode, NodeKind};
pub use redact::{Collect, Forgotten, Removal};
pub use schema::SCHEMA_VERSION;
pub use scrub::{Scrub, PG_ERASURE_NOTE};
pub use search::SearchRow;
pub use stores::{new_api_id, validate_store_name, Scope, StoreInfo, StoreRow};

pub use batch::BatchPolicy;
pub use crypto::{Key, UnlockInfo};

use crate::error::{StoreError, StoreResult};
use sql::{Conn, Dialect};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A handle on the database. Cheap to share behind an `Arc`.
pub struct Db {
    engine: Engine,
    /// The master key, keyring and unlocked store keys (see [`crypto`]).
    crypto: crypto::Crypto,
    /// Write transactions started and finished through this handle (see
    /// [`Db::write_mark`]).
    writes_started: AtomicU64,
    writes_finished: AtomicU64,
}

/// The engine under a [`Db`].
// One per `Db`, never moved around: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Lite(sqlite::Lite),
    Pg(postgres::Pg),
}

/// An open transaction. Every persistence operation is a method on it.
pub struct Txn<'a> {
    conn: Conn<'a>,
    crypto: &'a crypto::Crypto,
    /// Content bytes this change stored (bounds a batch's size).
    bytes: Cell<u64>,
    /// A write transaction (reads take no store locks).
    write: bool,
    /// Chains (stores; 0 for store-less entries) whose writer lock this
    /// transaction holds, and those it drew audit ids or feed positions in
    /// (see [`chains`]). Only PostgreSQL takes these locks.
    locked: RefCell<Vec<i64>>,
    drawn: RefCell<Vec<i64>>,
    /// The commit must be synchronous (lease grants and breaks: a token lost
    /// to a server crash could be issued twice).
    sync: Cell<bool>,
    /// Inside an open SQLite batch: what its changes learned (see
    /// [`batch::BatchCache`]); `None` elsewhere, where `own_cache` holds what
    /// this transaction alone learned (on PostgreSQL each avoided statement
    /// is a round trip saved; the store locks a write transaction takes keep
    /// what it cached unchanged by others).
    cache: Option<&'a RefCell<batch::BatchCache>>,
    own_cache: RefCell<batch::BatchCache>,
}

impl<'a> Txn<'a> {
    fn new(conn: Conn<'a>, crypto: &'a crypto::Crypto, write: bool) -> Txn<'a> {
        Txn {
            conn,
            crypto,
            bytes: Cell::new(0),
            write,
            locked: RefCell::new(Vec::new()),
            drawn: RefCell::new(Vec::new()),
            sync: Cell::new(false),
            cache: None,
            own_cache: RefCell::default(),
        }
    }

    /// A transaction inside an open batch, sharing the batch's cache.
    fn in_batch(
        conn: Conn<'a>,
        crypto: &'a crypto::Crypto,
        write: bool,
        cache: &'a RefCell<batch::BatchCache>,
    ) -> Txn<'a> {
        Txn {
            cache: Some(cache),
            ..Txn::new(conn, crypto, write)
        }
    }

    /// Runs `f` on the batch's cache, or this transaction's own.
    fn with_cache<T>(&self, f: impl FnOnce(&mut batch::BatchCache) -> T) -> T {
        f(&mut self.cache.unwrap_or(&self.own_cache).borrow_mut())
    }

    /// Records `n` bytes of new content written by this change.
    fn note_bytes(&self, n: u64) {
        self.bytes.set(self.bytes.get().saturating_add(n));
    }

    /// Which SQL engine runs this transaction (for the few statements that
    /// differ; everything else is written once).
    fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }
}

/// Whether a `--db` value names a PostgreSQL server rather than a file.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

impl Db {
    /// Opens (creating if needed) the database and brings its schema up to
    /// date: a file path is SQLite, a `postgres://` URL is PostgreSQL (the
    /// database must exist; its tables are created).
    pub fn open(path: &Path) -> StoreResult<Db> {
        let engine = match path.to_str().filter(|s| is_url(s)) {
            Some(url) => Engine::Pg(postgres::Pg::open(url)?),
            None => Engine::Lite(sqlite::Lite::open(path)?),
        };
        Ok(Db {
            engine,
            crypto: crypto::Crypto::default(),
            writes_started: AtomicU64::new(0),
            writes_finished: AtomicU64::new(0),
        })
    }

    /// Opens an existing database without creating it (memfsctl uses this so that a
    /// typo in `--db` is an error, not a new empty database).
    pub fn open_existing(path: &Path) -> StoreResult<Db> {
        let url = path.to_str().is_some_and(is_url);
        if !url && !path.exists() {
            return Err(StoreError::NotFound(format!(
                "database {} (run `memfs init` first)",
                path.display()
            )));
        }
        Self::open(path)
    }

    /// A private, empty database for tests: in-memory SQLite, or, when
    /// `MEMFS_TEST_PG` names a PostgreSQL server, a fresh database there that
    /// is dropped with the handle.
    pub fn open_in_memory() -> StoreResult<Db> {
        let engine = match std::env::var("MEMFS_TEST_PG") {
            Ok(server) if !server.is_empty() => Engine::Pg(postgres::Pg::open_scratch(&server)?),
            _ => Engine::Lite(sqlite::Lite::open_in_memory()?),
        };
        Ok(Db {
            engine,
            crypto: crypto::Crypto::default(),
            writes_started: AtomicU64::new(0),
            writes_finished: AtomicU64::new(0),
        })
    }

    /// The database file, if SQLite on a file.
    pub fn path(&self) -> Option<&Path> {
        match &self.engine {
            Engine::Lite(l) => l.path.as_deref(),
            Engine::Pg(_) => None,
        }
    }

    /// Where the database is, for messages: a path, or the URL without its
    /// password.
    pub fn location(&self) -> String {
        match &self.engine {
            Engine::Lite(l) => l
                .path
                .as_ref()
                .map_or_else(|| ":memory:".into(), |p| p.display().to_string()),
            Engine::Pg(p) => p.location(),
        }
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.engine, Engine::Pg(_))
    }

    /// The SQLite engine, for its file-level operations (backup, vacuum,
    /// scrub of the WAL).
    fn lite(&self) -> StoreResult<&sqlite::Lite> {
        match &self.engine {
            Engine::Lite(l) => Ok(l),
            Engine::Pg(_) => Err(StoreError::Invalid(
                "not available on PostgreSQL (use the server's own tools: pg_dump, VACUUM)".into(),
            )),
        }
    }

    /// Turns on group commit (see [`batch`]) for a daemon. On PostgreSQL it
    /// turns on the reuse of one read snapshot for up to the interval and
    /// asynchronous commits (see [`postgres`]). Someone must run
    /// [`Db::run_committer`]. Returns false if not enabled.
    pub fn enable_batching(&self, policy: BatchPolicy) -> bool {
        match &self.engine {
            Engine::Lite(l) => l.enable_batching(policy),
            Engine::Pg(p) => p.enable_batching(policy),
        }
    }

    /// Makes every change durable before [`Db::write`] returns, as `memfs
    /// serve` needs (see [`sqlite::Lite::set_durable`]).
    pub fn set_durable(&self) -> StoreResult<()> {
        match &self.engine {
            Engine::Lite(l) => l.set_durable(),
            Engine::Pg(p) => p.set_durable(),
        }
    }

    /// How many batches were lost to a failed commit. Caches of anything keyed by
    /// ids empty themselves when this changes (never on PostgreSQL, whose ids
    /// are never reused).
    pub fn rollbacks(&self) -> u64 {
        match &self.engine {
            Engine::Lite(l) => l.rollbacks(),
            Engine::Pg(_) => 0,
        }
    }

    /// Runs `f` as one change: committed if it returns `Ok`, rolled back otherwise.
    pub fn write<T, E>(&self, f: impl FnOnce(&Txn<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.writes_started.fetch_add(1, Ordering::SeqCst);
        let r = match &self.engine {
            Engine::Lite(l) => l.write(&self.crypto, f),
            Engine::Pg(p) => p.write(&self.crypto, f),
        };
        self.writes_finished.fetch_add(1, Ordering::SeqCst);
        r
    }

    /// A mark to take before a read, when no write through this handle is
    /// under way (`None` while one is). [`Db::unwritten_since`] then tells
    /// whether any write through this handle has started since: if none has,
    /// nothing this handle wrote changed what the read saw.
    pub fn write_mark(&self) -> Option<u64> {
        let started = self.writes_started.load(Ordering::SeqCst);
        (self.writes_finished.load(Ordering::SeqCst) == started).then_some(started)
    }

    /// Whether no write through this handle has started since `mark` (from
    /// [`Db::write_mark`]).
    pub fn unwritten_since(&self, mark: u64) -> bool {
        self.writes_started.load(Ordering::SeqCst) == mark
    }

    /// Runs `f` in a read transaction (one consistent snapshot). A daemon
    /// always sees its own changes.
    pub fn read<T, E>(&self, f: impl FnOnce(&Txn<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        match &self.engine {
            Engine::Lite(l) => l.read(&self.crypto, f),
            Engine::Pg(p) => p.read(&self.crypto, f),
        }
    }

    /// A durability point (fsync, unmount): every change made so far is on disk.
    pub fn sync(&self) -> StoreResult<()> {
        match &self.engine {
            Engine::Lite(l) => l.sync(),
            Engine::Pg(p) => p.sync(),
        }
    }

    /// Commits batches (SQLite) or ends stale read snapshots (PostgreSQL) when
    /// they fall due, until `stop` is set. A daemon runs this on its own thread.
    pub fn run_committer(&self, stop: &AtomicBool) {
        match &self.engine {
            Engine::Lite(l) => l.run_committer(stop),
            Engine::Pg(p) => p.run_committer(stop),
        }
    }

    /// Runs SQLite's WAL checkpoints on a connection of their own until `stop`
    /// (see [`sqlite::Lite::run_checkpointer`]); nothing to do on PostgreSQL,
    /// whose server checkpoints.
    pub fn run_checkpointer(&self, stop: &AtomicBool, every: std::time::Duration) {
        if let Engine::Lite(l) = &self.engine {
            l.run_checkpointer(stop, every);
        }
    }

    /// Something to wait on for changes of other processes: returns after at
    /// most `max`, earlier when the engine hears of a commit (PostgreSQL's
    /// LISTEN/NOTIFY; SQLite only polls).
    pub fn feed_waiter(&self) -> FeedWaiter {
        match &self.engine {
            Engine::Lite(_) => FeedWaiter(None),
            Engine::Pg(p) => FeedWaiter(Some(p.listener())),
        }
    }
}

/// Waits for the change feed (see [`Db::feed_waiter`]).
pub struct FeedWaiter(Option<postgres::Listener>);

impl FeedWaiter {
    /// Whether the engine announces commits (else waiting is just sleeping).
    pub fn pushes(&self) -> bool {
        self.0.is_some()
    }

    /// Sleeps up to `max`, returning early when another process committed a
    /// change (true) or `stop` was set.
    pub fn wait(&mut self, max: std::time::Duration, stop: &AtomicBool) -> bool {
        match &mut self.0 {
            Some(l) => l.wait(max, stop),
            None => {
                let step = std::time::Duration::from_millis(20);
                let deadline = std::time::Instant::now() + max;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        break;
                    }
                    std::thread::sleep(step.min(deadline - now));
                }
                false
            }
        }
    }
}

/// Converts a length or count read from the database (i64) to u64, treating
/// negatives as corruption.
fn to_u64(v: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// Converts a u64 to the database's i64, refusing values it cannot hold.
fn to_i64(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("value too large: {v}")))
}

//! What memfs measures, and its Prometheus `/metrics` page: FUSE requests and
//! errors by operation and errno, their latency, group commits, lease waits
//! and conflicts, change-feed lag, version-cache hit rates, gc, and (computed
//! at scrape) database size, versions and chunks.
//!
//! The metrics are process-wide statics, so any layer can count without
//! plumbing. [`render`] writes them all; [`router`] serves `/metrics`,
//! `/healthz` and `/readyz` (used by `memfs mount --metrics ADDR`, and meant
//! to be merged into `memfs serve`'s router).

mod http;
pub mod registry;

pub use http::{router, MetricsServer};

use crate::store::Db;
use registry::{Counter, Exposition, Family, Gauge, Histogram, LATENCY, PHASE};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

static FUSE_ERRORS: LazyLock<Family<Counter>> =
    LazyLock::new(|| Family::new(&["op", "errno"], Counter::new));
static FUSE_LATENCY: LazyLock<Family<Histogram>> =
    LazyLock::new(|| Family::new(&["op"], || Histogram::new(LATENCY)));
static BATCH_COMMITS: Counter = Counter::new();
static BATCH_CHANGES: Counter = Counter::new();
static BATCH_ROLLBACKS: Counter = Counter::new();
static BATCH_COMMIT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(LATENCY));
static LEASE_WAITS: Counter = Counter::new();
static LEASE_BUSY: Counter = Counter::new();
static LEASE_WAIT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(LATENCY));
static CONFLICTS: Counter = Counter::new();
static FEED_CHANGES: Counter = Counter::new();
static FEED_LAG_SECONDS: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(LATENCY));
static FEED_LAST_LAG: Gauge = Gauge::new();
static CACHE_LOOKUPS: LazyLock<Family<Counter>> =
    LazyLock::new(|| Family::new(&["cache", "result"], Counter::new));
static GC_PASSES: Counter = Counter::new();
static GC_VERSIONS: Counter = Counter::new();
static GC_BYTES: Counter = Counter::new();
static READY: AtomicBool = AtomicBool::new(false);
static COMMIT_PHASES: LazyLock<Family<Histogram>> =
    LazyLock::new(|| Family::new(&["phase"], || Histogram::new(PHASE)));
static HTTP_REQUESTS: LazyLock<Family<Counter>> =
    LazyLock::new(|| Family::new(&["route", "status"], Counter::new));
static HTTP_LATENCY: LazyLock<Family<Histogram>> =
    LazyLock::new(|| Family::new(&["route"], || Histogram::new(LATENCY)));

/// Times one FUSE request: counts it, and its latency when dropped.
pub struct FuseTimer {
    op: &'static str,
    start: Instant,
}

impl Drop for FuseTimer {
    fn drop(&mut self) {
        // The histogram's count is the request count: one lookup per request.
        FUSE_LATENCY
            .with(&[self.op])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

/// Starts timing FUSE operation `op` (keep the guard for the handler's length).
pub fn fuse_op(op: &'static str) -> FuseTimer {
    FuseTimer {
        op,
        start: Instant::now(),
    }
}

/// The phases of committing a file's staged bytes (at close, fsync or
/// unmount), in the order they run.
#[derive(Clone, Copy, Debug)]
pub enum CommitPhase {
    /// Content rules, the hash of the unchanged prefix, the bytes to re-cut.
    Prepare,
    /// From asking for the transaction to cutting chunks: the connection,
    /// the inode row and path, the lease and fence checks.
    Begin,
    /// Cutting the new bytes into chunks, hashing and storing them.
    Chunks,
    /// The version row (and the store's byte quota).
    Version,
    /// The inode row, the audit entry and the change-feed row.
    Audit,
    /// Ending the change's transaction (on SQLite, its savepoint in the open
    /// batch, whose COMMIT runs on the committer's thread).
    End,
    /// After the transaction: the caches and the staging moved to the new head.
    Finish,
}

impl CommitPhase {
    fn label(self) -> &'static str {
        match self {
            CommitPhase::Prepare => "prepare",
            CommitPhase::Begin => "begin",
            CommitPhase::Chunks => "chunks",
            CommitPhase::Version => "version",
            CommitPhase::Audit => "audit",
            CommitPhase::End => "end",
            CommitPhase::Finish => "finish",
        }
    }
}

/// Times one commit phase by phase: each [`lap`](Self::lap) ends the phase
/// that began at the previous lap (or at [`commit_phases`]).
pub struct CommitTimer {
    last: std::cell::Cell<Instant>,
}

impl CommitTimer {
    pub fn lap(&self, phase: CommitPhase) {
        let now = Instant::now();
        COMMIT_PHASES
            .with(&[phase.label()])
            .observe(now.duration_since(self.last.get()).as_secs_f64());
        self.last.set(now);
    }
}

/// Starts timing a commit's phases.
pub fn commit_phases() -> CommitTimer {
    CommitTimer {
        last: std::cell::Cell::new(Instant::now()),
    }
}

/// Counts a FUSE request that failed with `errno`.
pub fn fuse_error(op: &str, errno: i32) {
    FUSE_ERRORS.with(&[op, errno_name(errno)]).inc();
}

/// A group commit of `changes` changes that took `took`.
pub fn batch_commit(changes: u64, took: Duration) {
    BATCH_COMMITS.inc();
    BATCH_CHANGES.add(changes);
    BATCH_COMMIT_SECONDS.observe(took.as_secs_f64());
}

/// A batch lost to a failed commit.
pub fn batch_rollback() {
    BATCH_ROLLBACKS.inc();
}

/// An open for writing that waited `took` for another writer's lease, and
/// whether it got it (else EBUSY).
pub fn lease_wait(took: Duration, got: bool) {
    LEASE_WAITS.inc();
    LEASE_WAIT_SECONDS.observe(took.as_secs_f64());
    if !got {
        LEASE_BUSY.inc();
    }
}

/// A commit that was kept as a conflict version.
pub fn conflict() {
    CONFLICTS.inc();
}

/// A change-feed row applied `lag_ns` after it was committed.
pub fn feed_change(lag_ns: i64) {
    let lag = (lag_ns.max(0) as f64) / 1e9;
    FEED_CHANGES.inc();
    FEED_LAG_SECONDS.observe(lag);
    FEED_LAST_LAG.set(lag);
}

/// A version-cache lookup (`cache` = extents or hashes).
pub fn cache_lookup(cache: &'static str, hit: bool) {
    CACHE_LOOKUPS
        .with(&[cache, if hit { "hit" } else { "miss" }])
        .inc();
}

/// A gc pass that removed `versions` versions and `bytes` chunk bytes.
pub fn gc_pass(versions: u64, bytes: u64) {
    GC_PASSES.inc();
    GC_VERSIONS.add(versions);
    GC_BYTES.add(bytes);
}

/// An HTTP request `memfs serve` answered: its route pattern (not the path,
/// so ids do not make a series each), status and time.
pub fn http_request(route: &str, status: u16, took: Duration) {
    let status = status.to_string();
    HTTP_REQUESTS.with(&[route, &status]).inc();
    HTTP_LATENCY.with(&[route]).observe(took.as_secs_f64());
}

/// Marks the process ready (mounted, or listening) or not, for `/readyz`.
pub fn set_ready(ready: bool) {
    READY.store(ready, Ordering::Relaxed);
}

pub fn is_ready() -> bool {
    READY.load(Ordering::Relaxed)
}

/// The database whose size and counts `/metrics` reports, read through its
/// own connection (never the daemon's, so a scrape never waits behind FUSE
/// requests, or they behind it), at most every [`DB_EVERY`].
static DB_SOURCE: Mutex<Option<DbGauges>> = Mutex::new(None);
const DB_EVERY: Duration = Duration::from_secs(5);

struct DbGauges {
    path: PathBuf,
    db: Option<Db>,
    last: Option<(Instant, DbNumbers)>,
}

#[derive(Clone, Copy, Default)]
struct DbNumbers {
    file_bytes: u64,
    wal_bytes: u64,
    free_pages: u64,
    page_size: u64,
    versions: u64,
    live_versions: u64,
    chunks: u64,
}

/// Reports the database at `path` in `/metrics` from now on.
pub fn watch_database(path: PathBuf) {
    let mut g = DB_SOURCE.lock().unwrap_or_else(|p| p.into_inner());
    *g = Some(DbGauges {
        path,
        db: None,
        last: None,
    });
}

/// Reads the database numbers (cached); `None` if there is no database or it
/// cannot be read.
fn db_numbers() -> Option<DbNumbers> {
    let mut g = DB_SOURCE.lock().unwrap_or_else(|p| p.into_inner());
    let src = g.as_mut()?;
    if let Some((at, n)) = src.last {
        if at.elapsed() < DB_EVERY {
            return Some(n);
        }
    }
    if src.db.is_none() {
        src.db = Db::open_existing(&src.path).ok();
    }
    let db = src.db.as_ref()?;
    let read = || -> Result<DbNumbers, crate::error::StoreError> {
        let space = db.space()?;
        let (versions, live_versions, chunks) = db.read(|tx| tx.content_counts())?;
        Ok(DbNumbers {
            file_bytes: space.file_bytes,
            wal_bytes: space.wal_bytes,
            free_pages: space.freelist_count,
            page_size: space.page_size,
            versions,
            live_versions,
            chunks,
        })
    };
    match read() {
        Ok(n) => {
            src.last = Some((Instant::now(), n));
            Some(n)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read database numbers for /metrics");
            src.db = None;
            None
        }
    }
}

/// Whether the watched database answers (for `/readyz`); true if none is watched.
pub fn database_reachable() -> bool {
    let watched = DB_SOURCE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some();
    !watched || db_numbers().is_some()
}

/// Every metric, in the Prometheus text format 0.0.4.
pub fn render() -> String {
    let mut e = Exposition::new();
    e.gauges(
        "memfs_build_info",
        "The memfs version and the database schema version it writes.",
        &["version", "schema"],
        &[(
            vec![
                env!("CARGO_PKG_VERSION").to_string(),
                crate::store::SCHEMA_VERSION.to_string(),
            ],
            1.0,
        )],
    );
    e.gauge(
        "memfs_ready",
        "1 once the mount (or server) serves.",
        if is_ready() { 1.0 } else { 0.0 },
    );
    e.counts_of(
        "memfs_fuse_requests_total",
        "FUSE requests handled, by operation.",
        &FUSE_LATENCY,
    );
    e.counters(
        "memfs_fuse_errors_total",
        "FUSE requests answered with an error, by operation and errno.",
        &FUSE_ERRORS,
    );
    e.histograms(
        "memfs_fuse_request_duration_seconds",
        "Time from a FUSE request to its reply, by operation.",
        &FUSE_LATENCY,
    );
    e.counters(
        "memfs_http_requests_total",
        "HTTP requests memfs serve answered, by route and status.",
        &HTTP_REQUESTS,
    );
    e.histograms(
        "memfs_http_request_duration_seconds",
        "Time from an HTTP request to its answer, by route.",
        &HTTP_LATENCY,
    );
    e.histograms(
        "memfs_commit_phase_duration_seconds",
        "Time committed file writes spent in each phase (prepare, begin, chunks, version, \
         audit, end, finish).",
        &COMMIT_PHASES,
    );
    e.counter(
        "memfs_batch_commits_total",
        "Group-committed batches written to the database.",
        &BATCH_COMMITS,
    );
    e.counter(
        "memfs_batch_changes_total",
        "Changes (versions, creates, renames...) in those batches.",
        &BATCH_CHANGES,
    );
    e.counter(
        "memfs_batch_rollbacks_total",
        "Batches lost to a failed commit (their changes failed).",
        &BATCH_ROLLBACKS,
    );
    e.histogram(
        "memfs_batch_commit_duration_seconds",
        "Time a batch's COMMIT took.",
        &BATCH_COMMIT_SECONDS,
    );
    e.counter(
        "memfs_lease_waits_total",
        "Opens for writing that waited for another writer's lease.",
        &LEASE_WAITS,
    );
    e.counter(
        "memfs_lease_busy_total",
        "Opens for writing refused with EBUSY after waiting for a lease.",
        &LEASE_BUSY,
    );
    e.histogram(
        "memfs_lease_wait_seconds",
        "How long opens waited for a lease.",
        &LEASE_WAIT_SECONDS,
    );
    e.counter(
        "memfs_conflicts_total",
        "Commits kept as conflict versions (a writer was fenced off).",
        &CONFLICTS,
    );
    e.counter(
        "memfs_feed_changes_total",
        "Change-feed rows from other mounts and memfsctl applied.",
        &FEED_CHANGES,
    );
    e.histogram(
        "memfs_feed_lag_seconds",
        "Time from a change's commit to this daemon applying it.",
        &FEED_LAG_SECONDS,
    );
    e.gauge(
        "memfs_feed_last_lag_seconds",
        "The lag of the last change-feed row applied.",
        FEED_LAST_LAG.get(),
    );
    e.counters(
        "memfs_version_cache_lookups_total",
        "Version-cache lookups by cache (extents, hashes) and result (hit, miss).",
        &CACHE_LOOKUPS,
    );
    e.counter(
        "memfs_gc_passes_total",
        "Retention passes run by this process.",
        &GC_PASSES,
    );
    e.counter(
        "memfs_gc_versions_removed_total",
        "Versions retention removed in this process.",
        &GC_VERSIONS,
    );
    e.counter(
        "memfs_gc_chunk_bytes_freed_total",
        "Chunk bytes retention deleted in this process.",
        &GC_BYTES,
    );
    if let Some(n) = db_numbers() {
        e.gauges(
            "memfs_database_bytes",
            "Size of the database file and of its WAL.",
            &["file"],
            &[
                (vec!["db".into()], n.file_bytes as f64),
                (vec!["wal".into()], n.wal_bytes as f64),
            ],
        );
        e.gauge(
            "memfs_database_free_bytes",
            "Free pages inside the database file (reused, or given back by gc).",
            (n.free_pages * n.page_size) as f64,
        );
        e.gauges(
            "memfs_versions",
            "Versions in the database: all rows, and those that still hold content.",
            &["state"],
            &[
                (vec!["all".into()], n.versions as f64),
                (vec!["content".into()], n.live_versions as f64),
            ],
        );
        e.gauge(
            "memfs_chunks",
            "Content chunks in the database.",
            n.chunks as f64,
        );
    }
    e.finish()
}

/// A short name for an errno (`ENOENT`), for metric labels.
pub fn errno_name(code: i32) -> &'static str {
    match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EDEADLK => "EDEADLK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EDQUOT => "EDQUOT",
        libc::EINTR => "EINTR",
        libc::ERANGE => "ERANGE",
        _ => "other",
    }
}

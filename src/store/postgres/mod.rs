//! The PostgreSQL engine: many daemons on many hosts on one server.
//!
//! - **One transaction per change.** `Db::write` is `BEGIN` (READ COMMITTED),
//!   the closure, `COMMIT`; no savepoint batches (a failed batch commit would
//!   lose acknowledged changes). A daemon commits asynchronously
//!   (`synchronous_commit = off`: a server crash loses at most the last few
//!   hundred milliseconds, whole and in order); lease grants and breaks,
//!   `Db::sync` and `memfs serve` commit synchronously.
//! - **Stores in parallel.** Each transaction locks the chains (stores) it
//!   touches as it first touches them ([`super::chains`]); there is no
//!   database-wide writer lock.
//! - **A lost connection** fails the change in flight with `Unavailable`
//!   (EIO at the filesystem): the server rolled it back, nothing of it is
//!   visible. When the answer to `COMMIT` itself is lost, the engine asks the
//!   server (`pg_xact_status`) how that transaction ended after reconnecting.
//!   The next call reconnects by itself (retrying for a while): only work
//!   that has not started yet is retried, never a closure.
//! - **Bounded stalls.** Every session runs with
//!   `idle_in_transaction_session_timeout` (a daemon frozen inside a
//!   transaction loses it, and its locks, after 10 s), `lock_timeout` (15 s)
//!   and `statement_timeout` (120 s), and TCP keepalives; the URL's
//!   `options=-c ...` override them.
//! - **Clock.** Liveness is judged in SQL with `memfs_now()`, the server's
//!   `clock_timestamp()`.

mod listen;
pub(crate) mod schema;
mod session;

pub use listen::Listener;
pub use session::Session;
pub(crate) use session::{classify, val};

use super::batch::BatchPolicy;
use super::crypto::Crypto;
use super::sql::Conn;
use super::Txn;
use crate::error::{DbError, DbErrorKind, StoreError, StoreResult};
use postgres::{Client, Config};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a call waits for the server to come back before failing.
const RECONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// Session settings every connection starts with (the URL's own
/// `options` come after, so they win).
const SESSION_OPTIONS: &str = "-c idle_in_transaction_session_timeout=10s -c lock_timeout=15s \
     -c statement_timeout=120s -c TimeZone=UTC";

/// The NOTIFY channel followers listen on; the payload names the chains.
pub(crate) const CHANNEL: &str = "memfs_changes";

pub struct Pg {
    config: Config,
    location: String,
    state: Mutex<State>,
    /// Read snapshots are reused for this long (a daemon); `None`: one per read.
    reuse: OnceLock<Duration>,
    /// Commits wait for the WAL flush (`memfs serve`, memfsctl).
    durable: AtomicBool,
    /// A scratch database to drop with this handle (tests).
    scratch: Option<(Config, String)>,
    /// The server process of the current connection: its own NOTIFYs do not
    /// wake this process's follower.
    backend: std::sync::Arc<std::sync::atomic::AtomicI32>,
}

struct State {
    session: Option<Session>,
    /// When the open read transaction began.
    read_since: Option<Instant>,
}

fn unavailable(msg: String) -> StoreError {
    StoreError::Db(DbError {
        kind: DbErrorKind::Unavailable,
        msg,
    })
}

/// Parses a `postgres://` URL, adding memfs's session settings.
fn parse(url: &str) -> StoreResult<Config> {
    let url = super::tls::take_root_cert(url);
    let mut config: Config = url
        .parse()
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
    let own = config.get_options().unwrap_or("").to_string();
    config.options(&format!("{SESSION_OPTIONS} {own}"));
    if config.get_application_name().is_none() {
        config.application_name(&format!("memfs {}", std::process::id()));
    }
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(10));
    config.connect_timeout(Duration::from_secs(5));
    Ok(config)
}

/// The URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(crate) fn connect(config: &Config) -> StoreResult<Client> {
    off_runtime(|| super::tls::connect(config))
}

/// Runs `f` where the driver may block: on this thread, or on a scoped one
/// when this thread drives an async runtime (see `Session::io`).
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    })
}

/// A failed connection attempt: the server is unavailable (or refused us).
pub(crate) fn classify_connect(e: &postgres::Error) -> StoreError {
    match classify(e) {
        StoreError::Db(d) if d.kind == DbErrorKind::Other => StoreError::Db(DbError {
            kind: DbErrorKind::Unavailable,
            msg: d.msg,
        }),
        other => other,
    }
}

impl Pg {
    /// Connects to the database at `url` and migrates it.
    pub fn open(url: &str) -> StoreResult<Pg> {
        let config = parse(url)?;
        let mut client = connect(&config)?;
        off_runtime(|| schema::migrate(&mut client))?;
        Ok(Pg {
            config,
            location: redact_url(url),
            state: Mutex::new(State {
                session: Some(Session::new(client)),
                read_since: None,
            }),
            reuse: OnceLock::new(),
            durable: AtomicBool::new(true),
            scratch: None,
            backend: Default::default(),
        })
        .inspect(|pg| pg.note_backend())
    }

    /// A fresh database on the server `server` (a URL or `key=value`
    /// connection string), dropped with the handle: for tests.
    pub fn open_scratch(server: &str) -> StoreResult<Pg> {
        let (url, name) = Self::create_scratch(server)?;
        let admin: Config = server
            .parse()
            .map_err(|e| StoreError::Invalid(format!("bad MEMFS_TEST_PG: {e}")))?;
        let mut pg = Pg::open(&url)?;
        pg.scratch = Some((admin, name));
        Ok(pg)
    }

    /// Creates an empty database on `server` for a test and returns its URL
    /// and name (drop it with [`Pg::drop_scratch`]).
    pub fn create_scratch(server: &str) -> StoreResult<(String, String)> {
        let admin: Config = server
            .parse()
            .map_err(|e| StoreError::Invalid(format!("bad MEMFS_TEST_PG: {e}")))?;
        let name = format!(
            "memfs_t_{}_{}",
            std::process::id(),
            u64::from_le_bytes(super::crypto::random()?) >> 8
        );
        let mut c = connect(&admin)?;
        off_runtime(|| c.batch_execute(&format!("CREATE DATABASE {name}")))
            .map_err(|e| classify(&e))?;
        off_runtime(move || drop(c));
        Ok((url_of(&admin, &name), name))
    }

    /// Drops a database [`Pg::create_scratch`] made, with its connections.
    pub fn drop_scratch(server: &str, name: &str) -> StoreResult<()> {
        let admin: Config = server
            .parse()
            .map_err(|e| StoreError::Invalid(format!("bad MEMFS_TEST_PG: {e}")))?;
        let mut c = connect(&admin)?;
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let r = off_runtime(|| c.batch_execute(&sql));
        off_runtime(move || drop(c));
        r.map_err(|e| classify(&e))
    }

    fn note_backend(&self) {
        let g = self.lock();
        if let Some(s) = &g.session {
            self.backend.store(s.backend_pid(), Ordering::Relaxed);
        }
    }

    pub fn location(&self) -> String {
        self.location.clone()
    }

    pub fn enable_batching(&self, policy: BatchPolicy) -> bool {
        if !policy.interval.is_zero() {
            let _ = self.reuse.set(policy.interval);
        }
        self.durable.store(false, Ordering::Relaxed);
        true
    }

    pub fn set_durable(&self) -> StoreResult<()> {
        self.durable.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A usable session: the current one, or a new connection (retried for
    /// [`RECONNECT_PATIENCE`]) when it was lost.
    fn session<'g>(&self, g: &'g mut State) -> StoreResult<&'g Session> {
        if g.session.as_ref().is_some_and(Session::is_closed) {
            tracing::warn!(db = %self.location, "lost the connection to PostgreSQL; reconnecting");
            g.session = None;
            g.read_since = None;
        }
        if g.session.is_none() {
            let deadline = Instant::now() + RECONNECT_PATIENCE;
            let client = loop {
                match connect(&self.config) {
                    Ok(c) => break c,
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!(error = %e, "reconnecting to PostgreSQL");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => return Err(e),
                }
            };
            tracing::info!(db = %self.location, "connected to PostgreSQL");
            g.session = Some(Session::new(client));
            if let Some(s) = &g.session {
                self.backend.store(s.backend_pid(), Ordering::Relaxed);
            }
        }
        g.session
            .as_ref()
            .ok_or_else(|| unavailable("no connection".into()))
    }

    /// Ends the reused read transaction, if one is open.
    fn end_read(&self, g: &mut State) {
        if g.read_since.take().is_some() {
            if let Some(s) = &g.session {
                if let Err(e) = s.end("COMMIT") {
                    tracing::warn!(error = %e, "cannot end a read transaction");
                }
            }
        }
    }

    pub fn write<T, E>(
        &self,
        crypto: &Crypto,
        f: impl FnOnce(&Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut g = self.lock();
        self.end_read(&mut g);
        let durable = self.durable.load(Ordering::Relaxed);
        let s = self.session(&mut g)?;
        s.begin(if durable {
            "BEGIN"
        } else {
            "BEGIN; SET LOCAL synchronous_commit = off"
        });
        let txn = Txn::new(Conn::Pg(s), crypto, true);
        let out = f(&txn);
        let out = match out {
            Ok(v) => v,
            Err(e) => {
                if let Err(r) = s.end("ROLLBACK") {
                    tracing::debug!(error = %r, "rollback failed (connection lost?)");
                }
                return Err(e);
            }
        };
        let chains = txn.drawn_chains();
        let sync = txn.sync.get() && !durable;
        drop(txn);
        let mut commit = String::new();
        if sync {
            commit.push_str("SET LOCAL synchronous_commit = on; ");
        }
        commit.push_str("COMMIT");
        if !chains.is_empty() {
            // After COMMIT, in its own tiny transaction: NOTIFY serializes the
            // commits of notifying transactions, which must not be ours.
            let list: Vec<String> = chains.iter().map(i64::to_string).collect();
            commit.push_str(&format!(
                "; SELECT pg_notify('{CHANNEL}', '{}')",
                list.join(",")
            ));
        }
        let xid = s.xid();
        let start = Instant::now();
        match s.end(&commit) {
            Ok(()) => {
                crate::metrics::batch_commit(1, start.elapsed());
                Ok(out)
            }
            Err(StoreError::Db(e)) if e.kind == DbErrorKind::Unavailable => {
                // The answer to COMMIT was lost: ask how it ended.
                match xid.map(|x| self.outcome(&mut g, &x)) {
                    Some(Ok(true)) => Ok(out),
                    Some(Ok(false)) => Err(E::from(StoreError::Db(e))),
                    Some(Err(err)) => Err(E::from(err)),
                    None => Err(E::from(StoreError::Db(e))),
                }
            }
            Err(e) => Err(E::from(e)),
        }
    }

    /// Whether transaction `xid` committed (after the connection was lost).
    fn outcome(&self, g: &mut State, xid: &str) -> StoreResult<bool> {
        let s = self.session(g)?;
        let stmt = s.prepare("SELECT pg_xact_status(?1::text::xid8)")?;
        let rows = s.query(&stmt, &[super::sql::Value::Text(xid.into())])?;
        let status: Option<String> = match rows.first() {
            Some(r) => super::sql::FromCol::from_val(val(r, 0)?)?,
            None => None,
        };
        tracing::warn!(xid, status = ?status, "the connection was lost during COMMIT");
        Ok(status.as_deref() == Some("committed"))
    }

    pub fn read<T, E>(
        &self,
        crypto: &Crypto,
        f: impl FnOnce(&Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut g = self.lock();
        if self.reuse.get().is_some() {
            // A daemon reads without a transaction: each statement sees the
            // newest commits (as with READ COMMITTED), and a lookup costs one
            // round trip, not three. Its reads are single statements, or walks
            // that a concurrent rename can at worst send round again (ESTALE).
            self.end_read(&mut g);
            let s = self.session(&mut g)?;
            return f(&Txn::new(Conn::Pg(s), crypto, false));
        }
        let reuse = self.reuse.get().copied();
        if g.read_since
            .is_some_and(|t| reuse.is_none_or(|r| t.elapsed() >= r))
        {
            self.end_read(&mut g);
        }
        let fresh = g.read_since.is_none();
        let s = self.session(&mut g)?;
        if fresh {
            s.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        }
        let out = f(&Txn::new(Conn::Pg(s), crypto, false));
        let failed = out.is_err();
        if reuse.is_some() && !failed && !s.is_closed() {
            if fresh {
                g.read_since = Some(Instant::now());
            }
        } else {
            let _ = s.end(if failed { "ROLLBACK" } else { "COMMIT" });
            g.read_since = None;
        }
        out
    }

    pub fn sync(&self) -> StoreResult<()> {
        let mut g = self.lock();
        self.end_read(&mut g);
        let s = self.session(&mut g)?;
        // A synchronous commit of a transaction with an xid flushes the WAL
        // through every earlier (asynchronous) commit.
        s.batch("BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_current_xact_id(); COMMIT")
    }

    /// Ends reused read snapshots once they are older than the interval (an
    /// idle daemon must not sit in a transaction).
    pub fn run_committer(&self, stop: &AtomicBool) {
        let Some(every) = self.reuse.get().copied() else {
            return;
        };
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(every.max(Duration::from_millis(5)));
            let mut g = self.lock();
            if g.read_since.is_some_and(|t| t.elapsed() >= every) {
                self.end_read(&mut g);
            }
        }
        let mut g = self.lock();
        self.end_read(&mut g);
    }

    /// A LISTEN connection for a change-feed follower.
    pub fn listener(&self) -> Listener {
        Listener::new(self.config.clone(), self.backend.clone())
    }

    /// Runs `sql` outside any transaction (VACUUM, maintenance).
    pub fn autocommit(&self, sql: &str) -> StoreResult<()> {
        let mut g = self.lock();
        self.end_read(&mut g);
        let s = self.session(&mut g)?;
        s.batch(sql)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        {
            let mut g = self.lock();
            self.end_read(&mut g);
            // Dropping a client shuts its runtime down, which must not happen
            // on a thread that drives another.
            if let Some(s) = g.session.take() {
                off_runtime(move || drop(s));
            }
        }
        if let Some((admin, name)) = self.scratch.take() {
            match connect(&admin) {
                Ok(mut c) => {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let r = off_runtime(|| c.batch_execute(&sql));
                    off_runtime(move || drop(c));
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "cannot drop scratch database {name}");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot drop scratch database {name}"),
            }
        }
    }
}

/// A look at a PostgreSQL database without changing it (`memfs doctor`):
/// its schema version, stores and keyed stores.
pub fn inspect(url: &str) -> StoreResult<super::inspect::DbInfo> {
    let config = parse(url)?;
    let mut c = connect(&config)?;
    off_runtime(|| {
        let q = |c: &mut Client, sql: &str| c.query(sql, &[]).map_err(|e| classify(&e));
        let has_meta: bool = q(&mut c, "SELECT to_regclass('meta') IS NOT NULL")?
            .first()
            .and_then(|r| r.try_get(0).ok())
            .unwrap_or(false);
        let schema: i64 = if has_meta {
            q(
                &mut c,
                "SELECT value FROM meta WHERE key = 'schema_version'",
            )?
            .first()
            .and_then(|r| r.try_get::<_, String>(0).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
        } else {
            0
        };
        let (stores, keyed_stores) = if schema > 0 {
            let stores = q(&mut c, "SELECT name FROM stores ORDER BY name")?
                .iter()
                .filter_map(|r| r.try_get(0).ok())
                .collect();
            let keyed = q(
                &mut c,
                "SELECT s.name, k.key_id FROM store_keys k JOIN stores s ON s.id = k.store_id \
                 ORDER BY s.name",
            )?
            .iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
            .collect();
            (stores, keyed)
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(super::inspect::DbInfo {
            schema,
            known_schema: schema::PG_SCHEMA_VERSION,
            quick_check: "ok".into(),
            journal_mode: "postgres".into(),
            auto_vacuum: "postgres".into(),
            stores,
            keyed_stores,
        })
    })
}

/// A `postgres://` URL for `config` with database `db` (hosts, port, user and
/// password kept; a socket directory goes in `host=`).
pub fn url_of(config: &Config, db: &str) -> String {
    use postgres::config::Host;
    let mut q: Vec<String> = Vec::new();
    let mut authority = String::new();
    if let Some(u) = config.get_user() {
        authority.push_str(&pct(u));
        if let Some(p) = config.get_password() {
            authority.push(':');
            authority.push_str(&pct(&String::from_utf8_lossy(p)));
        }
        authority.push('@');
    }
    match config.get_hosts().first() {
        Some(Host::Tcp(h)) => {
            authority.push_str(h);
            if let Some(p) = config.get_ports().first() {
                authority.push_str(&format!(":{p}"));
            }
        }
        Some(Host::Unix(dir)) => {
            q.push(format!("host={}", pct(&dir.display().to_string())));
            if let Some(p) = config.get_ports().first() {
                q.push(format!("port={p}"));
            }
        }
        None => {}
    }
    let query = if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    };
    format!("postgres://{authority}/{db}{query}")
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

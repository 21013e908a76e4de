//! One PostgreSQL connection as `store/` uses it: statements prepared once
//! (with `?N` placeholders rewritten), parameters and columns converted to
//! and from the engine-neutral [`Value`]/[`Val`], errors classified, and a
//! `BEGIN` that is sent only with the transaction's first statement (so a
//! follower can probe in-flight writers before its snapshot is taken).

use crate::error::{DbError, DbErrorKind, StoreError, StoreResult};
use crate::store::sql::{to_dollar, Val, Value};
use crate::store::sql_profile;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, Statement};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Prepared statements kept per connection (dynamic filters make new texts).
const STMT_CACHE: usize = 512;

pub struct Session {
    client: RefCell<Client>,
    stmts: RefCell<HashMap<String, Statement>>,
    /// The `BEGIN ...` to send before the next statement.
    pending: RefCell<Option<String>>,
    /// A transaction is open on the server.
    open: Cell<bool>,
    /// The open transaction's id, once known.
    xid: RefCell<Option<String>>,
    stores_of: RefCell<HashMap<i64, i64>>,
    /// The store each store is a draft of (`None`: not a draft), as learned.
    drafts_of: RefCell<HashMap<i64, Option<i64>>>,
    /// Inodes learned to be store roots (a root stays one while it exists).
    roots: RefCell<std::collections::HashSet<i64>>,
    /// The connection failed: the engine replaces it before the next use.
    pub(super) broken: Cell<bool>,
    /// How the current transaction began.
    begun: RefCell<String>,
    /// `MEMFS_SQL_PROFILE`: the SQL of the statement last prepared (the one
    /// the next execute or query runs), for [`sql_profile`].
    profiled: Option<RefCell<String>>,
}

impl Session {
    pub fn new(client: Client) -> Session {
        Session {
            client: RefCell::new(client),
            stmts: RefCell::new(HashMap::new()),
            pending: RefCell::new(None),
            open: Cell::new(false),
            xid: RefCell::new(None),
            stores_of: RefCell::new(HashMap::new()),
            drafts_of: RefCell::new(HashMap::new()),
            roots: RefCell::default(),
            broken: Cell::new(false),
            begun: RefCell::new(String::new()),
            profiled: sql_profile::enabled().then(|| RefCell::new(String::new())),
        }
    }

    /// The next statement starts a transaction with `begin`.
    pub fn begin(&self, begin: &str) {
        *self.begun.borrow_mut() = begin.to_string();
        *self.pending.borrow_mut() = Some(begin.to_string());
        *self.xid.borrow_mut() = None;
    }

    /// Whether a transaction is open (or about to be).
    pub fn in_txn(&self) -> bool {
        self.open.get() || self.pending.borrow().is_some()
    }

    fn flush_begin(&self) -> StoreResult<()> {
        let pending = self.pending.borrow_mut().take();
        if let Some(b) = pending {
            self.raw_batch(&b)?;
            self.open.set(true);
        }
        Ok(())
    }

    /// Ends the transaction: `sql` is `COMMIT ...` or `ROLLBACK`. Nothing is
    /// sent when no statement ran.
    pub fn end(&self, sql: &str) -> StoreResult<()> {
        if self.pending.borrow_mut().take().is_some() {
            return Ok(());
        }
        if !self.open.get() {
            return Ok(());
        }
        self.open.set(false);
        self.raw_batch(sql)
    }

    pub fn xid(&self) -> Option<String> {
        self.xid.borrow().clone()
    }

    pub fn note_xid(&self, xid: &str) {
        let mut x = self.xid.borrow_mut();
        if x.is_none() {
            *x = Some(xid.to_string());
        }
    }

    pub fn cached_store_of(&self, ino: i64) -> Option<i64> {
        self.stores_of.borrow().get(&ino).copied()
    }

    pub fn cached_draft_of(&self, store: i64) -> Option<Option<i64>> {
        self.drafts_of.borrow().get(&store).copied()
    }

    pub fn cache_draft_of(&self, store: i64, base: Option<i64>) {
        let mut m = self.drafts_of.borrow_mut();
        if m.len() > 100_000 {
            m.clear();
        }
        m.insert(store, base);
    }

    pub fn is_cached_root(&self, ino: i64) -> bool {
        self.roots.borrow().contains(&ino)
    }

    pub fn cache_root(&self, ino: i64) {
        let mut m = self.roots.borrow_mut();
        if m.len() > 100_000 {
            m.clear();
        }
        m.insert(ino);
    }

    pub fn cache_store_of(&self, ino: i64, store: i64) {
        let mut m = self.stores_of.borrow_mut();
        if m.len() > 200_000 {
            m.clear();
        }
        m.insert(ino, store);
    }

    /// Runs `f` on the client. The driver blocks on its own runtime, which
    /// tokio forbids on a thread that drives async tasks: there (a caller on
    /// an async runtime, such as tests of the HTTP API) the call runs on a
    /// short-lived thread of its own.
    fn io<T: Send>(&self, f: impl FnOnce(&mut Client) -> T + Send) -> T {
        let mut c = self.client.borrow_mut();
        if tokio::runtime::Handle::try_current().is_err() {
            return f(&mut c);
        }
        let c: &mut Client = &mut c;
        std::thread::scope(|s| match s.spawn(move || f(c)).join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        })
    }

    fn raw_batch(&self, sql: &str) -> StoreResult<()> {
        let start = std::time::Instant::now();
        let r = self.io(|c| c.batch_execute(sql));
        if self.profiled.is_some() {
            sql_profile::record_sql(sql, start.elapsed());
        }
        r.map_err(|e| self.fail(e))
    }

    /// Counts one round trip of the statement last prepared.
    fn profile(&self, start: std::time::Instant) {
        if let Some(sql) = &self.profiled {
            sql_profile::record_sql(&sql.borrow(), start.elapsed());
        }
    }

    /// When the transaction's `BEGIN` has not been sent yet: sends it with
    /// `select` (parameterless SQL returning one row) in one round trip, and
    /// returns that row's columns as text. `None` when the transaction had
    /// begun already (the caller runs its statement the usual way).
    pub fn begin_with(&self, select: &str) -> StoreResult<Option<Vec<Option<String>>>> {
        let Some(begin) = self.pending.borrow_mut().take() else {
            return Ok(None);
        };
        // The BEGIN runs even when the select fails: the transaction is then
        // open (aborted), and the caller's ROLLBACK ends it.
        self.open.set(true);
        let sql = format!("{begin}; {select}");
        let start = std::time::Instant::now();
        let r = self.io(|c| c.simple_query(&sql));
        if self.profiled.is_some() {
            sql_profile::record_sql(&sql, start.elapsed());
        }
        let msgs = r.map_err(|e| self.fail(e))?;
        let row = msgs.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        });
        row.map(Some)
            .ok_or_else(|| StoreError::Invalid(format!("no row from {select}")))
    }

    /// Runs `;`-separated statements (in the transaction, if one is pending).
    pub fn batch(&self, sql: &str) -> StoreResult<()> {
        self.flush_begin()?;
        self.raw_batch(sql)
    }

    pub fn prepare(&self, sql: &str) -> StoreResult<Statement> {
        self.flush_begin()?;
        if let Some(p) = &self.profiled {
            sql.clone_into(&mut p.borrow_mut());
        }
        if let Some(s) = self.stmts.borrow().get(sql) {
            return Ok(s.clone());
        }
        let text = to_dollar(sql);
        let r = self.io(|c| c.prepare(&text));
        let stmt = r.map_err(|e| self.fail(e))?;
        let mut cache = self.stmts.borrow_mut();
        if cache.len() >= STMT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    pub fn execute(&self, stmt: &Statement, vals: &[Value<'_>]) -> StoreResult<usize> {
        let params: Vec<&(dyn ToSql + Sync)> = vals.iter().map(|v| v as _).collect();
        let start = std::time::Instant::now();
        let r = self.io(|c| c.execute(stmt, &params));
        self.profile(start);
        r.map(|n| n as usize).map_err(|e| self.fail(e))
    }

    pub fn query(&self, stmt: &Statement, vals: &[Value<'_>]) -> StoreResult<Vec<postgres::Row>> {
        let params: Vec<&(dyn ToSql + Sync)> = vals.iter().map(|v| v as _).collect();
        let start = std::time::Instant::now();
        let r = self.io(|c| c.query(stmt, &params));
        self.profile(start);
        r.map_err(|e| self.fail(e))
    }

    /// See [`crate::store::sql::Conn::probe_in_flight`]. Runs outside any
    /// transaction when the pending one has not started yet.
    pub fn probe_in_flight(&self, sequence: &str, ns: i32) -> StoreResult<Option<(i64, Vec<i32>)>> {
        if self.open.get() {
            // A (reused) read-only snapshot is replaced by one taken after
            // the probe; a write transaction keeps its own.
            let begun = self.begun.borrow().clone();
            if !begun.contains("READ ONLY") {
                return Ok(None);
            }
            self.open.set(false);
            self.raw_batch("COMMIT")?;
            *self.pending.borrow_mut() = Some(begun);
        }
        self.io(|c| Self::probe(c, sequence, ns))
    }

    fn probe(c: &mut Client, sequence: &str, ns: i32) -> StoreResult<Option<(i64, Vec<i32>)>> {
        // The sequence first, then the locks: a position at or below `last`
        // was drawn by a transaction that held its DRAWN lock before this.
        let last: i64 = c
            .query_one(
                &format!("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}"),
                &[],
            )
            .and_then(|r| r.try_get(0))
            .map_err(|e| classify(&e))?;
        let rows = c
            .query(
                "SELECT DISTINCT objid::int4 FROM pg_locks WHERE locktype = 'advisory' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND classid = $1::int4::oid AND objsubid = 2 AND granted \
                 AND pid <> pg_backend_pid()",
                &[&ns],
            )
            .map_err(|e| classify(&e))?;
        let chains = rows
            .iter()
            .map(|r| r.try_get::<_, i32>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| classify(&e))?;
        Ok(Some((last, chains)))
    }

    /// Classifies an error, and marks the session broken when the
    /// connection is gone.
    fn fail(&self, e: postgres::Error) -> StoreError {
        let err = classify(&e);
        if let StoreError::Db(d) = &err {
            if d.kind == DbErrorKind::Unavailable {
                self.broken.set(true);
            }
        }
        if self.client.borrow().is_closed() {
            self.broken.set(true);
        }
        err
    }

    /// The server process serving this connection (0 if unknown).
    pub fn backend_pid(&self) -> i32 {
        self.io(|c| {
            c.query_one("SELECT pg_backend_pid()", &[])
                .and_then(|r| r.try_get(0))
        })
        .unwrap_or(0)
    }

    pub fn is_closed(&self) -> bool {
        self.broken.get() || self.client.borrow().is_closed()
    }
}

/// What a PostgreSQL error means for memfs.
pub fn classify(e: &postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    let kind = match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION => {
            DbErrorKind::Constraint
        }
        Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::INSUFFICIENT_RESOURCES => {
            DbErrorKind::DiskFull
        }
        Some(c)
            if *c == SqlState::LOCK_NOT_AVAILABLE
                || *c == SqlState::QUERY_CANCELED
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            DbErrorKind::Busy
        }
        Some(c)
            if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
                || c.code().starts_with("08") =>
        {
            DbErrorKind::Unavailable
        }
        Some(_) => DbErrorKind::Other,
        None if e.is_closed() => DbErrorKind::Unavailable,
        // No SQLSTATE: an I/O or protocol failure of the connection itself.
        None => DbErrorKind::Unavailable,
    };
    let msg = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    };
    StoreError::Db(DbError { kind, msg })
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::OID => u32::try_from(*i)?.to_sql(ty, out),
                _ => i.to_string().as_str().to_sql(&Type::TEXT, out),
            },
            Value::Real(f) => f.to_sql(&Type::FLOAT8, out),
            // SQLite does not type its columns: text may sit in a BLOB
            // column and bytes in a TEXT one (databases moved over).
            Value::Text(t) if *ty == Type::BYTEA => t.as_bytes().to_sql(ty, out),
            Value::Text(t) => t.as_ref().to_sql(ty, out),
            Value::Blob(b) if *ty == Type::BYTEA => b.as_ref().to_sql(ty, out),
            Value::Blob(b) => String::from_utf8_lossy(b).as_ref().to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column of any type, as an engine-neutral value.
struct AnyVal(Val);

impl<'a> FromSql<'a> for AnyVal {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AnyVal(match *ty {
            Type::INT8 => Val::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Val::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Val::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::OID => Val::Int(i64::from(u32::from_sql(ty, raw)?)),
            Type::BOOL => Val::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Val::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Val::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Val::Blob(Vec::<u8>::from_sql(ty, raw)?),
            Type::VOID => Val::Null,
            _ => Val::Text(String::from_utf8_lossy(raw).into_owned()),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AnyVal(Val::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Column `i` of a row.
pub fn val(r: &postgres::Row, i: usize) -> StoreResult<Val> {
    r.try_get::<_, AnyVal>(i).map(|v| v.0).map_err(|e| {
        StoreError::Db(DbError {
            kind: DbErrorKind::Other,
            msg: e.to_string(),
        })
    })
}

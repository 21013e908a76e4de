//! The engine boundary at the level of SQL: one connection type ([`Conn`]) over
//! SQLite or PostgreSQL, with the small rusqlite-shaped surface the rest of
//! `store/` is written against (`prepare_cached`, `execute`, `query_row`,
//! `query_map`, `query`, `optional`).
//!
//! Every query of `store/` is written once, in the SQL both engines accept
//! (upserts, `RETURNING`, quoted `"user"`/`"end"`, explicit casts of sums,
//! comparisons instead of bare integer booleans); `?N` placeholders are
//! rewritten to `$N` for PostgreSQL. Values cross the boundary as [`Value`]
//! and come back through [`FromCol`], which accepts what either engine hands
//! over for a column (PostgreSQL's types are strict, SQLite's are not).

use crate::error::{DbError, DbErrorKind, StoreError, StoreResult};
use std::borrow::Cow;

/// A parameter of a statement.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
}

/// Types that can be passed as a statement parameter.
pub trait ToValue {
    fn to_value(&self) -> Value<'_>;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_to_value!(i64, i32, u32, u16, u8, usize);

impl ToValue for u64 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(Cow::Borrowed(self))
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(Cow::Borrowed(self))
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(Cow::Borrowed(self))
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(Cow::Borrowed(self))
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(Cow::Borrowed(self))
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}
impl ToValue for Value<'_> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(*i),
            Value::Real(f) => Value::Real(*f),
            Value::Text(t) => Value::Text(Cow::Borrowed(t)),
            Value::Blob(b) => Value::Blob(Cow::Borrowed(b)),
        }
    }
}
impl From<i64> for Value<'static> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<String> for Value<'static> {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}

/// The parameters of one statement.
pub trait Params {
    fn values(&self) -> Vec<Value<'_>>;
}

impl Params for () {
    fn values(&self) -> Vec<Value<'_>> {
        Vec::new()
    }
}
impl Params for &[Value<'_>] {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(ToValue::to_value).collect()
    }
}
impl Params for Vec<Value<'_>> {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(ToValue::to_value).collect()
    }
}
impl<T: ToValue, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(ToValue::to_value).collect()
    }
}
impl<T: ToValue, const N: usize> Params for &[T; N] {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(ToValue::to_value).collect()
    }
}

macro_rules! tuple_params {
    ($($n:tt $t:ident),+) => {
        impl<$($t: ToValue),+> Params for ($($t,)+) {
            fn values(&self) -> Vec<Value<'_>> {
                vec![$(self.$n.to_value()),+]
            }
        }
    };
}
tuple_params!(0 A);
tuple_params!(0 A, 1 B);
tuple_params!(0 A, 1 B, 2 C);

/// `params![a, b, c]`: a statement's parameters, each converted with [`ToValue`].
macro_rules! params {
    () => { () };
    ($($x:expr),+ $(,)?) => {
        vec![$($crate::store::sql::ToValue::to_value(&$x)),+]
    };
}
pub(crate) use params;

/// Parameters from an iterator of values (dynamic filters).
pub fn params_from_iter<'a>(vals: impl IntoIterator<Item = Value<'a>>) -> Vec<Value<'a>> {
    vals.into_iter().collect()
}

/// A column value as either engine hands it over.
#[derive(Debug, Clone)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Types a column can be read as.
pub trait FromCol: Sized {
    fn from_val(v: Val) -> StoreResult<Self>;
}

fn bad(v: &Val, want: &str) -> StoreError {
    StoreError::Corrupt(format!("column holds {v:?}, expected {want}"))
}

impl FromCol for i64 {
    fn from_val(v: Val) -> StoreResult<Self> {
        match v {
            Val::Int(i) => Ok(i),
            Val::Real(f) => Ok(f as i64),
            Val::Text(ref t) => t.parse().map_err(|_| bad(&v, "an integer")),
            other => Err(bad(&other, "an integer")),
        }
    }
}
macro_rules! int_from_col {
    ($($t:ty),*) => {$(
        impl FromCol for $t {
            fn from_val(v: Val) -> StoreResult<Self> {
                let i = i64::from_val(v)?;
                <$t>::try_from(i).map_err(|_| StoreError::Corrupt(format!("value {i} out of range")))
            }
        }
    )*};
}
int_from_col!(i32, u32, u16, u64, usize);

impl FromCol for bool {
    fn from_val(v: Val) -> StoreResult<Self> {
        Ok(i64::from_val(v)? != 0)
    }
}
impl FromCol for f64 {
    fn from_val(v: Val) -> StoreResult<Self> {
        match v {
            Val::Int(i) => Ok(i as f64),
            Val::Real(f) => Ok(f),
            other => Err(bad(&other, "a number")),
        }
    }
}
impl FromCol for String {
    fn from_val(v: Val) -> StoreResult<Self> {
        match v {
            Val::Text(t) => Ok(t),
            Val::Blob(b) => String::from_utf8(b).map_err(|_| bad(&Val::Null, "text")),
            Val::Int(i) => Ok(i.to_string()),
            other => Err(bad(&other, "text")),
        }
    }
}
impl FromCol for Vec<u8> {
    fn from_val(v: Val) -> StoreResult<Self> {
        match v {
            Val::Blob(b) => Ok(b),
            Val::Text(t) => Ok(t.into_bytes()),
            other => Err(bad(&other, "bytes")),
        }
    }
}
impl<T: FromCol> FromCol for Option<T> {
    fn from_val(v: Val) -> StoreResult<Self> {
        match v {
            Val::Null => Ok(None),
            v => T::from_val(v).map(Some),
        }
    }
}
impl FromCol for Val {
    fn from_val(v: Val) -> StoreResult<Self> {
        Ok(v)
    }
}

/// A column index (rusqlite-shaped: `r.get::<_, i64>(0)`).
pub trait ColIndex {
    fn idx(self) -> usize;
}
impl ColIndex for usize {
    fn idx(self) -> usize {
        self
    }
}

/// One row of a result.
pub enum Row<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    pub fn get<I: ColIndex, T: FromCol>(&self, i: I) -> StoreResult<T> {
        let i = i.idx();
        let v = match self {
            Row::Lite(r) => lite_val(r.get_ref(i)?),
            Row::Pg(r) => super::postgres::val(r, i)?,
        };
        T::from_val(v)
    }
}

fn lite_val(v: rusqlite::types::ValueRef<'_>) -> Val {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Real(f),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Blob(b.to_vec()),
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Which engine a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection inside a transaction.
#[derive(Clone, Copy)]
pub enum Conn<'a> {
    Lite(&'a rusqlite::Connection),
    Pg(&'a super::postgres::Session),
}

impl<'a> Conn<'a> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Lite(_) => Dialect::Sqlite,
            Conn::Pg(_) => Dialect::Postgres,
        }
    }

    /// A prepared (and cached) statement.
    pub fn prepare_cached(&self, sql: &str) -> StoreResult<Stmt<'a>> {
        Ok(match self {
            Conn::Lite(c) => Stmt::Lite(c.prepare_cached(sql)?),
            Conn::Pg(s) => Stmt::Pg {
                s,
                stmt: s.prepare(sql)?,
            },
        })
    }

    /// A statement prepared for one use (large scans, PRAGMAs).
    pub fn prepare(&self, sql: &str) -> StoreResult<Stmt<'a>> {
        self.prepare_cached(sql)
    }

    pub fn execute<P: Params>(&self, sql: &str, p: P) -> StoreResult<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    pub fn query_row<T, P: Params>(
        &self,
        sql: &str,
        p: P,
        f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }

    /// The store of an inode, if this connection learned it before (inodes
    /// never change store).
    pub fn cached_store_of(&self, ino: i64) -> Option<i64> {
        match self {
            Conn::Lite(_) => None,
            Conn::Pg(s) => s.cached_store_of(ino),
        }
    }

    pub fn cache_store_of(&self, ino: i64, store: i64) {
        if let Conn::Pg(s) = self {
            s.cache_store_of(ino, store);
        }
    }

    /// The store `store` is a draft of, if this connection learned it before
    /// (`Some(None)`: not a draft; a store's `draft_of` never changes).
    pub fn cached_draft_of(&self, store: i64) -> Option<Option<i64>> {
        match self {
            Conn::Lite(_) => None,
            Conn::Pg(s) => s.cached_draft_of(store),
        }
    }

    pub fn cache_draft_of(&self, store: i64, base: Option<i64>) {
        if let Conn::Pg(s) = self {
            s.cache_draft_of(store, base);
        }
    }

    /// Whether this connection learned before that `ino` is a store's root
    /// (PostgreSQL; on SQLite a batch caches paths instead).
    pub fn is_cached_root(&self, ino: i64) -> bool {
        match self {
            Conn::Lite(_) => false,
            Conn::Pg(s) => s.is_cached_root(ino),
        }
    }

    pub fn cache_root(&self, ino: i64) {
        if let Conn::Pg(s) = self {
            s.cache_root(ino);
        }
    }

    /// PostgreSQL, before the transaction's first statement: its `BEGIN` and
    /// `select` (parameterless, one row) in one round trip; the row's columns
    /// as text. `None` on SQLite or once the transaction has begun.
    pub fn begin_with(&self, select: &str) -> StoreResult<Option<Vec<Option<String>>>> {
        match self {
            Conn::Lite(_) => Ok(None),
            Conn::Pg(s) => s.begin_with(select),
        }
    }

    /// Remembers the transaction's id (see [`super::postgres`]).
    pub fn note_xid(&self, xid: &str) {
        if let Conn::Pg(s) = self {
            s.note_xid(xid);
        }
    }

    /// PostgreSQL: the last value of `sequence` and the chains with a granted
    /// `ns` lock, read before this transaction's snapshot; `None` when the
    /// snapshot was already taken (see [`super::chains`]).
    pub fn probe_in_flight(&self, sequence: &str, ns: i32) -> StoreResult<Option<(i64, Vec<i32>)>> {
        match self {
            Conn::Lite(_) => Ok(None),
            Conn::Pg(s) => s.probe_in_flight(sequence, ns),
        }
    }

    /// Runs statements without parameters (`;`-separated).
    #[allow(dead_code)]
    pub fn execute_batch(&self, sql: &str) -> StoreResult<()> {
        match self {
            Conn::Lite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(s) => s.batch(sql),
        }
    }
}

/// A prepared statement.
pub enum Stmt<'c> {
    Lite(rusqlite::CachedStatement<'c>),
    Pg {
        s: &'c super::postgres::Session,
        stmt: postgres::Statement,
    },
}

impl Stmt<'_> {
    pub fn execute<P: Params>(&mut self, p: P) -> StoreResult<usize> {
        let vals = p.values();
        match self {
            Stmt::Lite(st) => Ok(st.execute(rusqlite::params_from_iter(vals.iter()))?),
            Stmt::Pg { s, stmt } => s.execute(stmt, &vals),
        }
    }

    pub fn query_row<T, P: Params>(
        &mut self,
        p: P,
        f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let vals = p.values();
        match self {
            Stmt::Lite(st) => {
                let mut rows = st.query(rusqlite::params_from_iter(vals.iter()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Lite(r)),
                    None => Err(no_rows()),
                }
            }
            Stmt::Pg { s, stmt } => {
                let rows = s.query(stmt, &vals)?;
                match rows.first() {
                    Some(r) => f(&Row::Pg(r)),
                    None => Err(no_rows()),
                }
            }
        }
    }

    /// Every row mapped by `f` (collected first: the closure may run queries).
    pub fn query_map<T, P: Params>(
        &mut self,
        p: P,
        mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<std::vec::IntoIter<StoreResult<T>>> {
        let vals = p.values();
        let mut out = Vec::new();
        match self {
            Stmt::Lite(st) => {
                let mut rows = st.query(rusqlite::params_from_iter(vals.iter()))?;
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r)));
                }
            }
            Stmt::Pg { s, stmt } => {
                for r in s.query(stmt, &vals)? {
                    out.push(f(&Row::Pg(&r)));
                }
            }
        }
        Ok(out.into_iter())
    }

    /// The rows, one at a time.
    pub fn query<P: Params>(&mut self, p: P) -> StoreResult<Rows<'_>> {
        let vals = p.values();
        Ok(match self {
            Stmt::Lite(st) => Rows::Lite(st.query(rusqlite::params_from_iter(vals.iter()))?),
            Stmt::Pg { s, stmt } => Rows::Pg {
                rows: s.query(stmt, &vals)?.into_iter(),
                cur: None,
            },
        })
    }
}

/// Rows being read.
pub enum Rows<'s> {
    Lite(rusqlite::Rows<'s>),
    Pg {
        rows: std::vec::IntoIter<postgres::Row>,
        cur: Option<postgres::Row>,
    },
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> StoreResult<Option<Row<'_>>> {
        match self {
            Rows::Lite(r) => Ok(r.next()?.map(Row::Lite)),
            Rows::Pg { rows, cur } => {
                *cur = rows.next();
                Ok(cur.as_ref().map(Row::Pg))
            }
        }
    }
}

fn no_rows() -> StoreError {
    StoreError::Db(DbError {
        kind: DbErrorKind::NoRows,
        msg: "query returned no rows".into(),
    })
}

/// rusqlite's `optional()`: "no rows" becomes `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> StoreResult<Option<T>>;
}

impl<T> OptionalExtension<T> for StoreResult<T> {
    fn optional(self) -> StoreResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Db(e)) if e.kind == DbErrorKind::NoRows => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::{Error, ErrorCode};
        let kind = match &e {
            Error::QueryReturnedNoRows => DbErrorKind::NoRows,
            Error::SqliteFailure(f, _) => match f.code {
                ErrorCode::DiskFull => DbErrorKind::DiskFull,
                ErrorCode::ConstraintViolation => DbErrorKind::Constraint,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => DbErrorKind::Busy,
                _ => DbErrorKind::Other,
            },
            _ => DbErrorKind::Other,
        };
        StoreError::Db(DbError {
            kind,
            msg: e.to_string(),
        })
    }
}

/// Rewrites SQLite placeholders (`?`, `?N`) to PostgreSQL's (`$N`), leaving
/// string literals and quoted identifiers alone.
pub fn to_dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0usize;
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut num = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    num.push(*d);
                    chars.next();
                }
                let n = if num.is_empty() {
                    next += 1;
                    next
                } else {
                    num.parse().unwrap_or(0)
                };
                next = next.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_dollar;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            to_dollar("SELECT ?1, '?', \"a?\" WHERE x = ?2 AND y = ?"),
            "SELECT $1, '?', \"a?\" WHERE x = $2 AND y = $3"
        );
        assert_eq!(to_dollar("a = ? OR b = ?"), "a = $1 OR b = $2");
    }
}

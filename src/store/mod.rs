//! Persistence: one SQLite database holding stores, inodes/dentries, chunked content,
//! versions, the audit chain and the change feed. Knows nothing of FUSE.
//!
//! Callers run every change inside [`Db::write`], which hands them a [`Txn`]: the
//! narrow interface the filesystem layer composes operations from. One closure is
//! one transaction, so a crash leaves either the old or the new state.

mod audit;
mod content;
mod leases;
mod namespace;
mod schema;
mod stores;

pub use audit::{AuditEntry, AuditFilter, ChainBreak, Change, FeedRow};
pub use content::{
    chunk_bytes, chunk_reader, Extent, Extents, NewVersion, VersionRow, AVG_CHUNK, MAX_CHUNK,
    MIN_CHUNK,
};
pub use leases::{ttl_ns, HolderInfo, LeaseRow, LockRow, LockSpec};
pub use namespace::{InodeRow, NewInode, NodeKind};
pub use stores::{validate_store_name, Scope, StoreRow};

use crate::error::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// A handle on the database. Cheap to share behind an `Arc`.
pub struct Db {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

/// An open transaction. Every persistence operation is a method on it.
pub struct Txn<'a> {
    conn: &'a Connection,
}

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Db> {
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

    /// Opens an existing database without creating it (memfsctl uses this so that a
    /// typo in `--db` is an error, not a new empty database).
    pub fn open_existing(path: &Path) -> StoreResult<Db> {
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "database {} (run `memfs init` first)",
                path.display()
            )));
        }
        Self::open(path)
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> StoreResult<Db> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(mut conn: Connection, path: Option<PathBuf>) -> StoreResult<Db> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A 32 MiB page cache and memory-mapped reads keep hot metadata and chunks
        // out of read(2) calls; both are bounded, so the daemon's RSS stays small.
        conn.pragma_update(None, "cache_size", -32768)?;
        conn.pragma_update(None, "mmap_size", 256i64 << 20)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;
        Ok(Db {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file, if not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` in one IMMEDIATE transaction: committed if it returns `Ok`, rolled back
    /// otherwise. IMMEDIATE takes the write lock up front, so two daemons never deadlock
    /// upgrading read transactions.
    pub fn write<T, E>(&self, f: impl FnOnce(&Txn<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = guard
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&Txn { conn: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    pub fn read<T, E>(&self, f: impl FnOnce(&Txn<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = guard
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        let out = f(&Txn { conn: &tx })?;
        tx.finish().map_err(StoreError::from)?;
        Ok(out)
    }
}

/// Converts a length or count read from SQLite (i64) to u64, treating negatives as corruption.
fn to_u64(v: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// Converts a u64 to SQLite's i64, refusing values SQLite cannot hold.
fn to_i64(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("value too large: {v}")))
}

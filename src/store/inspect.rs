//! Looking at a database without changing it (`memfs doctor`): opened
//! read-only, never migrated, so an old or damaged database is reported as it
//! is.

use super::schema::SCHEMA_VERSION;
use crate::error::StoreResult;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;

/// What a read-only look at a database found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbInfo {
    /// `PRAGMA user_version`: the migrations applied.
    pub schema: i64,
    /// The schema this memfs writes.
    pub known_schema: i64,
    /// `PRAGMA quick_check` ("ok" when sound).
    pub quick_check: String,
    pub journal_mode: String,
    /// `none`, `full` or `incremental`.
    pub auto_vacuum: String,
    pub stores: Vec<String>,
    /// Encrypted stores that still have a key, with its key id (hex).
    pub keyed_stores: Vec<(String, Vec<u8>)>,
}

/// Opens `path` read-only and describes it.
pub fn inspect(path: &Path) -> StoreResult<DbInfo> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    let schema: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let quick_check: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    let journal_mode: String = c.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    let auto_vacuum = match c.pragma_query_value(None, "auto_vacuum", |r| r.get::<_, i64>(0))? {
        1 => "full",
        2 => "incremental",
        _ => "none",
    }
    .to_string();
    let has = |table: &str, column: &str| -> StoreResult<bool> {
        Ok(c.query_row(
            "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
    };
    let stores = if has("stores", "name")? {
        let mut stmt = c.prepare("SELECT name FROM stores ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let keyed_stores = if has("store_keys", "key_id")? {
        let mut stmt = c.prepare(
            "SELECT s.name, k.key_id FROM store_keys k JOIN stores s ON s.id = k.store_id \
             ORDER BY s.name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(DbInfo {
        schema,
        known_schema: SCHEMA_VERSION,
        quick_check,
        journal_mode,
        auto_vacuum,
        stores,
        keyed_stores,
    })
}

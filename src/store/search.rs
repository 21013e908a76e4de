//! The full-text index of stores' current content (FTS5, migration 9): one
//! row per live regular file of each store searched so far (rowid = inode),
//! and per store the audit entry its rows are current up to. The operations
//! core (`ops/search.rs`) brings a store's rows up to date from the audit log
//! before each search; this file only reads and writes the two tables.

use super::sql::Dialect;
use super::sql::{params, OptionalExtension};
use super::Txn;
use crate::error::StoreResult;
use crate::ids::{Ino, StoreId};

/// A file the index found: its inode, its path and its indexed text.
#[derive(Clone, Debug)]
pub struct SearchRow {
    pub ino: Ino,
    pub path: String,
    pub body: String,
}

impl Txn<'_> {
    /// Up to which audit entry the index of `store` is current, and the API
    /// id of the store it was built for (a store id reused by a new store
    /// after a delete has another API id).
    pub fn search_position(&self, store: StoreId) -> StoreResult<Option<(String, i64)>> {
        self.conn
            .prepare_cached("SELECT store_api_id, audit_id FROM search_state WHERE store_id = ?1")?
            .query_row([store.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }

    /// Records that the index of `store` is current up to `audit_id`.
    pub fn set_search_position(
        &self,
        store: StoreId,
        api_id: &str,
        audit_id: i64,
    ) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO search_state (store_id, store_api_id, audit_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (store_id) DO UPDATE SET store_api_id = excluded.store_api_id, \
                 audit_id = excluded.audit_id",
            )?
            .execute(params![store.0, api_id, audit_id])?;
        Ok(())
    }

    /// Indexes (or re-indexes) one file.
    pub fn search_put(&self, store: StoreId, ino: Ino, path: &str, body: &str) -> StoreResult<()> {
        self.search_remove(ino)?;
        self.conn
            .prepare_cached(match self.dialect() {
                Dialect::Sqlite => {
                    "INSERT INTO search_text (rowid, path, body, store_id) VALUES (?1, ?2, ?3, ?4)"
                }
                Dialect::Postgres => {
                    "INSERT INTO search_text (ino, path, body, store_id) VALUES (?1, ?2, ?3, ?4)"
                }
            })?
            .execute(params![ino.0, path, body, store.0])?;
        Ok(())
    }

    /// Takes one file out of the index (nothing if it is not in it).
    pub fn search_remove(&self, ino: Ino) -> StoreResult<()> {
        self.conn
            .prepare_cached(match self.dialect() {
                Dialect::Sqlite => "DELETE FROM search_text WHERE rowid = ?1",
                Dialect::Postgres => "DELETE FROM search_text WHERE ino = ?1",
            })?
            .execute([ino.0])?;
        Ok(())
    }

    /// Takes a store's rows and position out of the index.
    pub fn search_drop_store(&self, store: StoreId) -> StoreResult<()> {
        self.conn
            .prepare_cached("DELETE FROM search_text WHERE store_id = ?1")?
            .execute([store.0])?;
        self.conn
            .prepare_cached("DELETE FROM search_state WHERE store_id = ?1")?
            .execute([store.0])?;
        Ok(())
    }

    /// Indexed stores that no longer exist as they were indexed (deleted,
    /// or their id now belongs to another store).
    pub fn search_stale_stores(&self) -> StoreResult<Vec<StoreId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.store_id FROM search_state s LEFT JOIN stores t ON t.id = s.store_id \
             WHERE t.id IS NULL OR t.api_id IS DISTINCT FROM s.store_api_id",
        )?;
        let rows = stmt.query_map((), |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(StoreId(r?));
        }
        Ok(out)
    }

    /// Files of `store` matching an FTS5 query, best first.
    pub fn search_query(
        &self,
        store: StoreId,
        query: &str,
        limit: u64,
    ) -> StoreResult<Vec<SearchRow>> {
        if self.dialect() == Dialect::Postgres {
            return self.search_query_pg(store, query, limit);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid, path, body FROM search_text \
             WHERE search_text MATCH ?1 AND store_id = ?2 ORDER BY rank LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![query, store.0, limit as i64], |r| {
            Ok(SearchRow {
                ino: Ino(r.get(0)?),
                path: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// PostgreSQL has no FTS5: the same query (every `"term"` must occur)
    /// as case-insensitive substring matches over path and text, files with
    /// the most occurrences first. It matches inside words too, where FTS5
    /// matches whole tokens.
    fn search_query_pg(
        &self,
        store: StoreId,
        query: &str,
        limit: u64,
    ) -> StoreResult<Vec<SearchRow>> {
        let terms: Vec<String> = query
            .split('"')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let mut conds = Vec::new();
        let mut score = Vec::new();
        let mut args: Vec<super::sql::Value<'static>> = vec![store.0.into()];
        for t in &terms {
            args.push(t.clone().into());
            let n = args.len();
            conds.push(format!("strpos(lower(path || ' ' || body), ?{n}) > 0"));
            score.push(format!(
                "(length(lower(body)) - length(replace(lower(body), ?{n}, ''))) / length(?{n})"
            ));
        }
        let sql = format!(
            "SELECT ino, path, body FROM search_text WHERE store_id = ?1 AND {} \
             ORDER BY {} DESC, ino LIMIT {}",
            conds.join(" AND "),
            score.join(" + "),
            limit.max(1)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok(SearchRow {
                ino: Ino(r.get(0)?),
                path: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        rows.collect()
    }

    /// The newest audit entry's id (0 for none).
    pub fn last_audit_id(&self) -> StoreResult<i64> {
        self.conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM audit")?
            .query_row((), |r| r.get(0))
    }

    /// The newest audit entry's id of one store (0 for none).
    pub fn last_store_audit_id(&self, store: StoreId) -> StoreResult<i64> {
        self.conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM audit WHERE store_id = ?1")?
            .query_row([store.0], |r| r.get(0))
    }
}

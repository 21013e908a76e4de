//! API keys: who a key acts as and what it may do. Only a blake3 hash of each
//! secret is stored; a key is found by that hash.

use super::sql::{params, OptionalExtension};
use super::Txn;
use crate::error::{StoreError, StoreResult};

/// An API key as stored (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyRow {
    /// `apikey_...`: what versions written with the key name (`api_actor`).
    pub id: String,
    pub name: String,
    /// `admin`, `writer` or `reader`.
    pub role: String,
    /// The agent the key acts as (for allow-lists and attribution).
    pub agent: String,
    /// The user the key acts for (their private stores).
    pub user: Option<String>,
    /// Store names the key is limited to; `None`: every store its identity may see.
    pub stores: Option<Vec<String>>,
    pub created_ns: i64,
    pub revoked_ns: Option<i64>,
    pub last_used_ns: Option<i64>,
}

const KEY_COLS: &str =
    "id, name, role, agent, \"user\", stores, created_ns, revoked_ns, last_used_ns";

fn key_from_row(r: &super::sql::Row<'_>) -> StoreResult<(KeyRow, Option<String>)> {
    Ok((
        KeyRow {
            id: r.get(0)?,
            name: r.get(1)?,
            role: r.get(2)?,
            agent: r.get(3)?,
            user: r.get(4)?,
            stores: None,
            created_ns: r.get(6)?,
            revoked_ns: r.get(7)?,
            last_used_ns: r.get(8)?,
        },
        r.get(5)?,
    ))
}

fn finish((mut k, stores): (KeyRow, Option<String>)) -> StoreResult<KeyRow> {
    k.stores = match stores {
        None => None,
        Some(t) => Some(
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Corrupt(format!("key {}: stores: {e}", k.id)))?,
        ),
    };
    Ok(k)
}

impl Txn<'_> {
    /// Stores a new key with the hash of its secret.
    pub fn insert_key(&self, k: &KeyRow, secret_hash: &[u8; 32]) -> StoreResult<()> {
        let stores = k
            .stores
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_else(|_| "[]".into()));
        self.conn
            .prepare_cached(
                "INSERT INTO api_keys (id, name, secret_hash, role, agent, \"user\", stores, created_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                k.id,
                k.name,
                secret_hash.as_slice(),
                k.role,
                k.agent,
                k.user,
                stores,
                k.created_ns
            ])?;
        Ok(())
    }

    /// The key whose secret hashes to `secret_hash`, revoked or not.
    pub fn key_by_hash(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<KeyRow>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE secret_hash = ?1");
        let raw = self
            .conn
            .prepare_cached(&sql)?
            .query_row([secret_hash.as_slice()], key_from_row)
            .optional()?;
        raw.map(finish).transpose()
    }

    pub fn key_by_id_or_name(&self, key: &str) -> StoreResult<Vec<KeyRow>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1 OR name = ?1");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([key], key_from_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> StoreResult<Vec<KeyRow>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys ORDER BY created_ns, id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map((), key_from_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// Revokes a key (it stays listed, and versions keep naming it).
    pub fn revoke_key(&self, id: &str, now_ns: i64) -> StoreResult<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE api_keys SET revoked_ns = ?2 WHERE id = ?1 AND revoked_ns IS NULL",
            )?
            .execute(params![id, now_ns])?
            > 0)
    }

    pub fn touch_key(&self, id: &str, now_ns: i64) -> StoreResult<()> {
        self.conn
            .prepare_cached("UPDATE api_keys SET last_used_ns = ?2 WHERE id = ?1")?
            .execute(params![id, now_ns])?;
        Ok(())
    }
}

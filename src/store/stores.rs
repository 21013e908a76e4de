//! Memory stores: named trees with a scope (org-wide or one user's).

use super::namespace::{NewInode, NodeKind};
use super::sql::{params, OptionalExtension};
use super::Txn;
use crate::error::{StoreError, StoreResult};
use crate::ids::{Identity, Ino, StoreId};
use std::collections::BTreeMap;

/// Who a store belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Org,
    User,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Org => "org",
            Scope::User => "user",
        }
    }

    pub fn parse(s: &str) -> StoreResult<Scope> {
        match s {
            "org" => Ok(Scope::Org),
            "user" => Ok(Scope::User),
            _ => Err(StoreError::Invalid(format!(
                "scope must be 'org' or 'user', not '{s}'"
            ))),
        }
    }
}

/// A store as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoreRow {
    pub id: StoreId,
    pub name: String,
    pub scope: Scope,
    pub owner: Option<String>,
    pub description: String,
    #[serde(skip)]
    pub root: Ino,
    pub created_ns: i64,
    pub archived: bool,
    /// Its content is encrypted with the store's own key.
    pub encrypted: bool,
    /// Its key was destroyed: its content is unrecoverable.
    pub shredded: bool,
    /// The id the HTTP API knows it by (`memstore_...`), stable for its life.
    pub api_id: String,
    /// A display name (the API's `name`); `None` shows the slug.
    pub title: Option<String>,
    /// Free key-value pairs for the platform (the API's `metadata`).
    pub metadata: BTreeMap<String, String>,
    /// When its name, description, metadata, settings or archive state last changed.
    pub updated_ns: i64,
    /// When it was archived, if it is.
    pub archived_ns: Option<i64>,
    /// The store this is a draft of (see `store/drafts.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_of: Option<StoreId>,
    /// The name of the store this is a draft of: the directory a mount shows
    /// the draft under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_name: Option<String>,
}

impl StoreRow {
    /// Whether this is a draft of another store.
    pub fn is_draft(&self) -> bool {
        self.draft_of.is_some()
    }

    /// The directory name a mount shows it under: a draft appears as the
    /// store it is a draft of, so an agent writing to it sees nothing unusual.
    pub fn dir_name(&self) -> &str {
        self.base_name.as_deref().unwrap_or(&self.name)
    }

    /// The store whose chunks this one's content lives in: a draft shares its
    /// base's (one dedupe space and one key), every other store has its own.
    pub fn chunk_domain(&self) -> StoreId {
        self.draft_of.unwrap_or(self.id)
    }
}

/// A new random API id with `prefix` (`memstore_`, `apikey_`...): 96 random
/// bits in hex.
pub fn new_api_id(prefix: &str) -> StoreResult<String> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{prefix}{hex}"))
}

/// Store names are slugs: `[a-z0-9][a-z0-9-]{0,62}`.
pub fn validate_store_name(name: &str) -> StoreResult<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "invalid store name '{name}': use 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
        )))
    }
}

fn store_from_row(r: &super::sql::Row<'_>) -> StoreResult<(StoreRow, String)> {
    let metadata: String = r.get(13)?;
    Ok((
        StoreRow {
            id: StoreId(r.get(0)?),
            name: r.get(1)?,
            scope: Scope::Org,
            owner: r.get(3)?,
            description: r.get(4)?,
            root: Ino(r.get(5)?),
            created_ns: r.get(6)?,
            archived: r.get(7)?,
            encrypted: r.get(8)?,
            shredded: r.get(9)?,
            api_id: r.get(10)?,
            title: r.get(11)?,
            updated_ns: r.get::<_, Option<i64>>(12)?.unwrap_or(0),
            // A column only memfs writes, always from a map: corrupt if not one.
            metadata: serde_json::from_str(&metadata).unwrap_or_default(),
            archived_ns: r.get(14)?,
            draft_of: r.get::<_, Option<i64>>(15)?.map(StoreId),
            base_name: r.get(16)?,
        },
        r.get(2)?,
    ))
}

fn finish(raw: (StoreRow, String)) -> StoreResult<StoreRow> {
    let (mut s, scope) = raw;
    s.scope = Scope::parse(&scope).map_err(|_| StoreError::Corrupt(format!("scope {scope}")))?;
    Ok(s)
}

const STORE_COLS: &str = "id, name, scope, owner, description, root_ino, created_ns, archived, \
     encrypted, (encrypted <> 0 AND NOT EXISTS (SELECT 1 FROM store_keys k \
       WHERE k.store_id = coalesce(stores.draft_of, stores.id))), \
     api_id, title, updated_ns, metadata, archived_ns, draft_of, \
     (SELECT b.name FROM stores b WHERE b.id = stores.draft_of) AS base_name";

/// What an update of a store's descriptive fields sets (`None`: unchanged).
#[derive(Debug, Default, Clone)]
pub struct StoreInfo {
    pub title: Option<Option<String>>,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Txn<'_> {
    /// Creates a store with an empty root directory, audited as `store-create`.
    pub fn create_store(
        &self,
        name: &str,
        scope: Scope,
        owner: Option<&str>,
        description: &str,
        who: &Identity,
        now_ns: i64,
    ) -> StoreResult<StoreRow> {
        validate_store_name(name)?;
        if scope == Scope::User && owner.is_none_or(str::is_empty) {
            return Err(StoreError::Invalid(format!(
                "user store '{name}' needs an owner (--owner USER)"
            )));
        }
        if self.store_by_name(name)?.is_some() {
            return Err(StoreError::Exists(format!("store '{name}'")));
        }
        // The store row comes first (the root inode references it); its root_ino is
        // filled in once the root inode exists, inside the same transaction.
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO stores (name, scope, owner, description, root_ino, created_ns, \
                 api_id, updated_ns) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?5) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
            )?
            .query_row(
                params![
                    name,
                    scope.as_str(),
                    owner,
                    description,
                    now_ns,
                    new_api_id("memstore_")?
                ],
                |r| r.get(0),
            )
            .optional()?
            // Another process created it since the check above.
            .ok_or_else(|| StoreError::Exists(format!("store '{name}'")))?;
        let id = StoreId(id);
        self.enter_store(id)?;
        let encrypted = self.init_store_key(id, now_ns)?;
        let root = self.insert_inode(&NewInode {
            store: id,
            kind: NodeKind::Dir,
            perm: 0o777,
            uid: 0,
            gid: 0,
            rdev: 0,
            nlink: 2,
            now_ns,
            target: None,
        })?;
        self.conn
            .prepare_cached("UPDATE stores SET root_ino = ?2 WHERE id = ?1")?
            .execute(params![id.0, root.0])?;
        self.record(
            who,
            now_ns,
            &super::Change {
                store: Some(id),
                op: "store-create",
                path: Some(""),
                ino: Some(root),
                detail: Some(serde_json::json!({
                    "scope": scope.as_str(), "owner": owner, "description": description,
                    "encrypted": encrypted
                })),
                ..Default::default()
            },
        )?;
        self.store_by_name(name)?
            .ok_or_else(|| StoreError::Corrupt(format!("store '{name}' vanished")))
    }

    /// Sets when a store was created (an imported store keeps its original time,
    /// so reading its history at earlier times works as it did).
    pub fn set_store_created_ns(&self, id: StoreId, created_ns: i64) -> StoreResult<()> {
        self.enter_store(id)?;
        self.conn
            .prepare_cached("UPDATE stores SET created_ns = ?2 WHERE id = ?1")?
            .execute(params![id.0, created_ns])?;
        Ok(())
    }

    /// Whether a store is archived (read-only for everyone).
    pub fn store_archived(&self, id: StoreId) -> StoreResult<bool> {
        if let Some(a) = self.with_cache(|c| c.archived.get(&id.0).copied()) {
            return Ok(a);
        }
        let archived = self
            .conn
            .prepare_cached("SELECT archived FROM stores WHERE id = ?1")?
            .query_row([id.0], |r| r.get(0))
            .optional()?
            .unwrap_or(false);
        self.with_cache(|c| c.archived.insert(id.0, archived));
        Ok(archived)
    }

    /// Archives or unarchives a store, audited as `store-archive`/`store-unarchive`.
    pub fn set_archived(
        &self,
        id: StoreId,
        archived: bool,
        who: &Identity,
        now_ns: i64,
    ) -> StoreResult<()> {
        self.enter_store(id)?;
        self.with_cache(|c| c.clear());
        self.conn
            .prepare_cached(
                "UPDATE stores SET archived = ?2, updated_ns = ?3, \
                 archived_ns = CASE WHEN ?4 <> 0 THEN coalesce(archived_ns, ?3) END WHERE id = ?1",
            )?
            .execute(params![id.0, archived, now_ns, archived])?;
        let op = if archived {
            "store-archive"
        } else {
            "store-unarchive"
        };
        self.record(
            who,
            now_ns,
            &super::Change {
                store: Some(id),
                op,
                path: Some(""),
                origin: Some("memfsctl"),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Deletes a store with all its content and versions (and its drafts).
    /// The audit log keeps its entries and gets a `store-delete` tombstone
    /// naming the store.
    pub fn delete_store(&self, s: &StoreRow, who: &Identity, now_ns: i64) -> StoreResult<()> {
        if s.is_draft() {
            self.discard_draft(s, who, now_ns, "deleted")?;
            return Ok(());
        }
        self.enter_store(s.id)?;
        for d in self.drafts(Some(s.id))? {
            self.discard_draft(&d.store, who, now_ns, "its store was deleted")?;
        }
        let (files, bytes) = self.store_usage(s.id)?;
        // An encrypted store's key-encryption key leaves the keyring too, so
        // copies of the database cannot read it either.
        self.destroy_store_key(s.id)?;
        self.remove_store_rows(s)?;
        self.record(
            who,
            now_ns,
            &super::Change {
                store: Some(s.id),
                op: "store-delete",
                path: Some(""),
                detail: Some(serde_json::json!({
                    "name": s.name, "scope": s.scope.as_str(), "owner": s.owner,
                    "files": files, "bytes": bytes
                })),
                origin: Some("memfsctl"),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Removes a store's rows: namespace, versions, chunks (a draft has none
    /// of its own), leases, and a draft's base rows.
    pub(super) fn remove_store_rows(&self, s: &StoreRow) -> StoreResult<()> {
        let id = s.id.0;
        self.with_cache(|c| c.clear());
        for sql in [
            "DELETE FROM locks WHERE ino IN (SELECT ino FROM inodes WHERE store_id = ?1)",
            "DELETE FROM leases WHERE ino IN (SELECT ino FROM inodes WHERE store_id = ?1)",
            "DELETE FROM fences WHERE ino IN (SELECT ino FROM inodes WHERE store_id = ?1)",
            "DELETE FROM dentries WHERE parent IN (SELECT ino FROM inodes WHERE store_id = ?1)",
            "UPDATE inodes SET head = NULL WHERE store_id = ?1",
            "DELETE FROM versions WHERE store_id = ?1",
            "DELETE FROM chunks WHERE store_id = ?1",
            "DELETE FROM changes WHERE store_id = ?1 AND seq < (SELECT max(seq) FROM changes)",
            "DELETE FROM draft_base WHERE draft_id = ?1",
            "DELETE FROM drafts WHERE store_id = ?1",
            "DELETE FROM inodes WHERE store_id = ?1",
            "DELETE FROM stores WHERE id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([id])?;
        }
        Ok(())
    }

    /// Crypto-shreds an encrypted store: destroys its key (see
    /// [`super::crypto`]), archives it, tells every mount to drop cached pages
    /// of its files, and records `store-shred`. Every version becomes
    /// unreadable, in this database and in every copy of it.
    pub fn shred_store(&self, s: &StoreRow, who: &Identity, now_ns: i64) -> StoreResult<()> {
        self.enter_store(s.id)?;
        if !self.destroy_store_key(s.id)? {
            return Err(StoreError::Invalid(format!(
                "store '{}' is not encrypted (it was created without a master key); \
                 `memfsctl store delete` removes it",
                s.name
            )));
        }
        self.with_cache(|c| c.clear());
        self.conn
            .prepare_cached("UPDATE stores SET archived = 1 WHERE id = ?1")?
            .execute([s.id.0])?;
        self.drawing(s.id.0)?;
        self.conn
            .prepare_cached(
                "INSERT INTO changes (store_id, ino, at_ns, origin) \
                 SELECT store_id, ino, ?2, 'memfsctl' FROM inodes WHERE store_id = ?1 AND kind = 1",
            )?
            .execute(params![s.id.0, now_ns])?;
        self.record(
            who,
            now_ns,
            &super::Change {
                store: Some(s.id),
                op: "store-shred",
                path: Some(""),
                detail: Some(serde_json::json!({ "name": s.name })),
                origin: Some("memfsctl"),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Changes a store's title, description or metadata, audited as `store-update`.
    pub fn update_store_info(
        &self,
        id: StoreId,
        info: &StoreInfo,
        who: &Identity,
        now_ns: i64,
    ) -> StoreResult<()> {
        self.enter_store(id)?;
        let mut detail = serde_json::Map::new();
        if let Some(t) = &info.title {
            self.conn
                .prepare_cached("UPDATE stores SET title = ?2 WHERE id = ?1")?
                .execute(params![id.0, t])?;
            detail.insert("title".into(), t.clone().into());
        }
        if let Some(d) = &info.description {
            self.conn
                .prepare_cached("UPDATE stores SET description = ?2 WHERE id = ?1")?
                .execute(params![id.0, d])?;
            detail.insert("description".into(), d.clone().into());
        }
        if let Some(m) = &info.metadata {
            let text = serde_json::to_string(m)
                .map_err(|e| StoreError::Invalid(format!("metadata: {e}")))?;
            self.conn
                .prepare_cached("UPDATE stores SET metadata = ?2 WHERE id = ?1")?
                .execute(params![id.0, text])?;
            detail.insert(
                "metadata".into(),
                serde_json::to_value(m).unwrap_or_default(),
            );
        }
        self.conn
            .prepare_cached("UPDATE stores SET updated_ns = ?2 WHERE id = ?1")?
            .execute(params![id.0, now_ns])?;
        self.record(
            who,
            now_ns,
            &super::Change {
                store: Some(id),
                op: "store-update",
                path: Some(""),
                detail: Some(serde_json::Value::Object(detail)),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// A store's settings as stored (JSON), or `None` if never set.
    /// A draft has no settings of its own: it follows its store's.
    pub fn store_settings(&self, id: StoreId) -> StoreResult<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT coalesce(b.settings, s.settings) FROM stores s \
                 LEFT JOIN stores b ON b.id = s.draft_of WHERE s.id = ?1",
            )?
            .query_row([id.0], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Replaces a store's settings (JSON), audited as `store-settings` with the
    /// new settings. The change feed carries a store-level row, on which running
    /// mounts reload them.
    pub fn set_store_settings(
        &self,
        id: StoreId,
        settings: &str,
        who: &Identity,
        now_ns: i64,
    ) -> StoreResult<()> {
        self.enter_store(id)?;
        let detail: serde_json::Value = serde_json::from_str(settings)
            .map_err(|e| StoreError::Invalid(format!("settings: {e}")))?;
        self.conn
            .prepare_cached("UPDATE stores SET settings = ?2, updated_ns = ?3 WHERE id = ?1")?
            .execute(params![id.0, settings, now_ns])?;
        self.record(
            who,
            now_ns,
            &super::Change {
                store: Some(id),
                op: "store-settings",
                path: Some(""),
                detail: Some(detail),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    pub fn store_by_id(&self, id: StoreId) -> StoreResult<Option<StoreRow>> {
        let sql = sql_once!("SELECT {STORE_COLS} FROM stores WHERE id = ?1");
        let raw = self
            .conn
            .prepare_cached(sql)?
            .query_row([id.0], store_from_row)
            .optional()?;
        raw.map(finish).transpose()
    }

    pub fn store_by_api_id(&self, api_id: &str) -> StoreResult<Option<StoreRow>> {
        let sql = sql_once!("SELECT {STORE_COLS} FROM stores WHERE api_id = ?1");
        let raw = self
            .conn
            .prepare_cached(sql)?
            .query_row([api_id], store_from_row)
            .optional()?;
        raw.map(finish).transpose()
    }

    pub fn store_by_name(&self, name: &str) -> StoreResult<Option<StoreRow>> {
        let sql = sql_once!("SELECT {STORE_COLS} FROM stores WHERE name = ?1");
        let raw = self
            .conn
            .prepare_cached(sql)?
            .query_row([name], store_from_row)
            .optional()?;
        raw.map(finish).transpose()
    }

    /// Every store that is not a draft, by name (drafts: [`Txn::drafts`]).
    pub fn stores(&self) -> StoreResult<Vec<StoreRow>> {
        self.stores_where("draft_of IS NULL")
    }

    /// Every store, drafts included, by name.
    pub fn all_stores(&self) -> StoreResult<Vec<StoreRow>> {
        self.stores_where("1 = 1")
    }

    fn stores_where(&self, cond: &str) -> StoreResult<Vec<StoreRow>> {
        let sql = format!("SELECT {STORE_COLS} FROM stores WHERE {cond} ORDER BY name");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map((), store_from_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(finish(r?)?);
        }
        Ok(out)
    }
}

//! Drafts: a copy-on-write branch of a store. A draft is a store row of its
//! own (`stores.draft_of` names its base) whose namespace is cloned from the
//! base at creation: new inode and dentry rows, but every file's head points
//! at the base's existing version, so no content and no version is copied.
//! Its own writes make versions of its own inodes like any store's, and their
//! chunks go to the base's chunk space (the *chunk domain*: one dedupe space
//! and one data key per base store), so a draft's append is a delta on the
//! base's version and a merge back stores nothing the draft did not add.
//!
//! `draft_base` keeps the base as the draft last saw it, one row per path:
//! the common ancestor of a three-way merge. A merge moves the rows of what
//! it merged forward (the draft is rebased on the merge's result). The same
//! rows map each draft inode to the base inode it was cloned from, so a
//! file's history in a draft begins with its base's (see
//! [`Txn::versions_of`]).

use super::namespace::NodeKind;
use super::sql::{params, OptionalExtension, Row, Value};
use super::{to_i64, Change, StoreRow, Txn};
use crate::error::{StoreError, StoreResult};
use crate::ids::{Identity, Ino, StoreId, VersionId};
use std::collections::HashMap;

/// Why a draft exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DraftReason {
    /// Made by a person (`memfsctl draft create`, the API, the console).
    Manual,
    /// Made at attach time by the store's `drafts` rule, for one session.
    Rule,
    /// Made by a consolidation job to work in.
    Job,
}

impl DraftReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftReason::Manual => "manual",
            DraftReason::Rule => "rule",
            DraftReason::Job => "job",
        }
    }

    fn parse(s: &str) -> DraftReason {
        match s {
            "rule" => DraftReason::Rule,
            "job" => DraftReason::Job,
            _ => DraftReason::Manual,
        }
    }
}

/// A draft as stored: its own store row and what it is a draft of.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DraftRow {
    /// The draft's store row (its name is `BASE@DRAFT`).
    pub store: StoreRow,
    pub base: StoreId,
    /// The draft's own name (after the `@`).
    pub name: String,
    /// The base's newest audit entry at the base point.
    pub base_audit: i64,
    /// The base point (now, or the `--at` time).
    pub base_ns: i64,
    pub created_ns: i64,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub reason: DraftReason,
    /// The session a draft made by rule is for.
    pub for_session: Option<String>,
}

/// One path of a draft's base: the common ancestor of a merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseRow {
    pub path: String,
    pub kind: NodeKind,
    /// The base store's inode at this path.
    pub origin: Ino,
    /// The draft's inode for it (cloned from `origin`, or merged into it).
    pub ino: Option<Ino>,
    /// The base's version of a file (`None`: empty, never written).
    pub head: Option<VersionId>,
    /// A symlink's target.
    pub target: Option<Vec<u8>>,
}

/// One path of the base a draft starts from.
#[derive(Clone, Debug)]
pub struct BaseEntry {
    /// Store-relative, `/`-separated; never the root.
    pub path: String,
    pub origin: Ino,
    /// The file's version at the base point (`None`: empty at that time).
    pub head: Option<VersionId>,
}

/// A draft about to be made.
pub struct NewDraft<'a> {
    pub base: &'a StoreRow,
    pub name: &'a str,
    /// The base's namespace at the base point, parents before children.
    pub entries: Vec<BaseEntry>,
    pub base_audit: i64,
    pub base_ns: i64,
    pub reason: DraftReason,
    pub for_session: Option<&'a str>,
}

/// The full name of draft `name` of store `base`: `BASE@NAME`.
pub fn draft_store_name(base: &str, name: &str) -> String {
    format!("{base}@{name}")
}

const DRAFT_COLS: &str = "d.store_id, d.base_id, d.name, d.base_audit, d.base_ns, d.created_ns, \
     d.agent, d.session, d.\"user\", d.reason, d.for_session";

type DraftRaw = (
    i64,
    i64,
    String,
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

fn draft_raw(r: &Row<'_>) -> StoreResult<DraftRaw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

impl Txn<'_> {
    /// The store whose chunks `store`'s content lives in (its base, for a draft).
    pub(crate) fn chunk_domain(&self, store: StoreId) -> StoreResult<StoreId> {
        // A store's draft_of never changes: PostgreSQL sessions keep it.
        if let Some(d) = self.conn.cached_draft_of(store.0) {
            return Ok(d.map_or(store, StoreId));
        }
        if let Some(d) = self.with_cache(|c| c.chunk_domains.get(&store.0).copied()) {
            return Ok(StoreId(d));
        }
        let d: Option<Option<i64>> = self
            .conn
            .prepare_cached("SELECT draft_of FROM stores WHERE id = ?1")?
            .query_row([store.0], |r| r.get(0))
            .optional()?;
        // A store being made has no row yet: asked again next time.
        let domain = d.flatten().map_or(store, StoreId);
        if let Some(base) = d {
            self.conn.cache_draft_of(store.0, base);
            self.with_cache(|c| c.chunk_domains.insert(store.0, domain.0));
        }
        Ok(domain)
    }

    /// The newest audit entry of `store` at or before `at_ns` (0: none).
    pub fn newest_audit_of(&self, store: StoreId, at_ns: i64) -> StoreResult<i64> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT max(id) FROM audit WHERE store_id = ?1 AND at_ns <= ?2")?
            .query_row(params![store.0, at_ns], |r| r.get(0))?;
        Ok(id.unwrap_or(0))
    }

    /// Makes a draft of `nd.base`: a store row named `BASE@NAME`, its
    /// namespace cloned from `nd.entries` (heads shared, nothing copied) and
    /// the base recorded for merges; audited as `draft-create` in the draft.
    pub fn create_draft(
        &self,
        nd: &NewDraft<'_>,
        who: &Identity,
        now_ns: i64,
    ) -> StoreResult<StoreRow> {
        let base = nd.base;
        if base.is_draft() {
            return Err(StoreError::Invalid(format!(
                "'{}' is a draft; make a draft of its store '{}' instead",
                base.name,
                base.dir_name()
            )));
        }
        super::validate_store_name(nd.name).map_err(|_| {
            StoreError::Invalid(format!(
                "invalid draft name '{}': use 1-63 characters of a-z, 0-9 and '-', \
                 starting with a letter or digit",
                nd.name
            ))
        })?;
        self.enter_store(base.id)?;
        let full = draft_store_name(&base.name, nd.name);
        if self.store_by_name(&full)?.is_some() {
            return Err(StoreError::Exists(format!("draft '{full}'")));
        }
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO stores (name, scope, owner, description, root_ino, created_ns, \
                 api_id, updated_ns, encrypted, draft_of) \
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?5, ?7, ?8) RETURNING id",
            )?
            .query_row(
                params![
                    full,
                    base.scope.as_str(),
                    base.owner,
                    base.description,
                    now_ns,
                    super::new_api_id("memstore_")?,
                    base.encrypted,
                    base.id.0
                ],
                |r| r.get(0),
            )?;
        let draft = StoreId(id);
        self.enter_store(draft)?;
        // Every inode of the base the snapshot names, read once.
        let base_root = self
            .inode(base.root)?
            .ok_or_else(|| StoreError::Corrupt(format!("store '{}' has no root", base.name)))?;
        let mut inodes: HashMap<Ino, super::InodeRow> = HashMap::new();
        let mut names: HashMap<Ino, u32> = HashMap::new();
        let mut sub_dirs: HashMap<&str, u32> = HashMap::new();
        for e in &nd.entries {
            *names.entry(e.origin).or_default() += 1;
            if let std::collections::hash_map::Entry::Vacant(v) = inodes.entry(e.origin) {
                let row = self.inode(e.origin)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("inode {} of the base vanished", e.origin))
                })?;
                v.insert(row);
            }
            if inodes
                .get(&e.origin)
                .is_some_and(|r| r.kind == NodeKind::Dir)
            {
                let parent = e.path.rsplit_once('/').map_or("", |(d, _)| d);
                *sub_dirs.entry(parent).or_default() += 1;
            }
        }
        let root_links = 2 + sub_dirs.get("").copied().unwrap_or(0);
        let root = self.clone_inode(draft, &base_root, root_links, None)?;
        self.conn
            .prepare_cached("UPDATE stores SET root_ino = ?2 WHERE id = ?1")?
            .execute(params![draft.0, root.0])?;
        self.insert_base_row(
            draft,
            &BaseRow {
                path: String::new(),
                kind: NodeKind::Dir,
                origin: base.root,
                ino: Some(root),
                head: None,
                target: None,
            },
        )?;
        let mut by_path: HashMap<&str, Ino> = HashMap::new();
        by_path.insert("", root);
        let mut cloned: HashMap<Ino, Ino> = HashMap::new();
        for e in &nd.entries {
            let (parent_path, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
            let parent = *by_path.get(parent_path).ok_or_else(|| {
                StoreError::Corrupt(format!("'{}' listed before its directory", e.path))
            })?;
            let src = &inodes[&e.origin];
            let ino = match cloned.get(&e.origin) {
                Some(&ino) => ino,
                None => {
                    let nlink = if src.kind == NodeKind::Dir {
                        2 + sub_dirs.get(e.path.as_str()).copied().unwrap_or(0)
                    } else {
                        names.get(&e.origin).copied().unwrap_or(1)
                    };
                    let head = if src.kind == NodeKind::File {
                        Some(e.head)
                    } else {
                        None
                    };
                    let ino = self.clone_inode(draft, src, nlink, head)?;
                    cloned.insert(e.origin, ino);
                    ino
                }
            };
            self.insert_dentry(parent, name.as_bytes(), ino)?;
            by_path.insert(&e.path, ino);
            self.insert_base_row(
                draft,
                &BaseRow {
                    path: e.path.clone(),
                    kind: src.kind,
                    origin: e.origin,
                    ino: Some(ino),
                    head: if src.kind == NodeKind::File {
                        e.head
                    } else {
                        None
                    },
                    target: src.target.clone(),
                },
            )?;
        }
        self.conn
            .prepare_cached(
                "INSERT INTO drafts (store_id, base_id, name, base_audit, base_ns, created_ns, \
                 agent, session, \"user\", reason, for_session) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                draft.0,
                base.id.0,
                nd.name,
                nd.base_audit,
                nd.base_ns,
                now_ns,
                who.agent,
                who.session,
                who.user,
                nd.reason.as_str(),
                nd.for_session
            ])?;
        self.record(
            who,
            now_ns,
            &Change {
                store: Some(draft),
                op: "draft-create",
                path: Some(""),
                ino: Some(root),
                detail: Some(serde_json::json!({
                    "base": base.name, "draft": nd.name, "base_audit": nd.base_audit,
                    "base_ns": nd.base_ns, "entries": nd.entries.len(),
                    "reason": nd.reason.as_str(), "for_session": nd.for_session,
                })),
                ..Default::default()
            },
        )?;
        self.store_by_id(draft)?
            .ok_or_else(|| StoreError::Corrupt(format!("draft '{full}' vanished")))
    }

    /// A copy of inode `src` in store `draft` with `nlink` names and, for a
    /// file, the head `head` (the base's version: shared, not copied).
    fn clone_inode(
        &self,
        draft: StoreId,
        src: &super::InodeRow,
        nlink: u32,
        head: Option<Option<VersionId>>,
    ) -> StoreResult<Ino> {
        let (head, size) = match head {
            None => (src.head, src.size),
            Some(None) => (None, 0),
            Some(Some(v)) => (Some(v), self.version(v)?.size),
        };
        let ino: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO inodes (store_id, kind, perm, uid, gid, nlink, size, rdev, \
                 atime_ns, mtime_ns, ctime_ns, crtime_ns, head, target) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) RETURNING ino",
            )?
            .query_row(
                params![
                    draft.0,
                    src.kind.code(),
                    src.perm,
                    src.uid,
                    src.gid,
                    nlink,
                    to_i64(size)?,
                    src.rdev,
                    src.atime_ns,
                    src.mtime_ns,
                    src.ctime_ns,
                    src.crtime_ns,
                    head.map(|v| v.0),
                    src.target
                ],
                |r| r.get(0),
            )?;
        Ok(Ino(ino))
    }

    fn insert_base_row(&self, draft: StoreId, b: &BaseRow) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO draft_base (draft_id, path, kind, origin, ino, head, target) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                draft.0,
                b.path,
                b.kind.code(),
                b.origin.0,
                b.ino.map(|i| i.0),
                b.head.map(|v| v.0),
                b.target
            ])?;
        Ok(())
    }

    /// A draft by its store id (`None`: not a draft).
    pub fn draft(&self, store: StoreId) -> StoreResult<Option<DraftRow>> {
        let sql = format!("SELECT {DRAFT_COLS} FROM drafts d WHERE d.store_id = ?1");
        let raw = self
            .conn
            .prepare_cached(&sql)?
            .query_row([store.0], draft_raw)
            .optional()?;
        raw.map(|r| self.finish_draft(r)).transpose()
    }

    /// The drafts of `base` (every draft with `None`), by name.
    pub fn drafts(&self, base: Option<StoreId>) -> StoreResult<Vec<DraftRow>> {
        // One statement per case: PostgreSQL cannot type `?1 IS NULL`.
        let (cond, args) = match base {
            Some(b) => ("d.base_id = ?1", vec![Value::Int(b.0)]),
            None => ("1 = 1", Vec::new()),
        };
        let sql =
            format!("SELECT {DRAFT_COLS} FROM drafts d WHERE {cond} ORDER BY d.base_id, d.name");
        let raws: Vec<DraftRaw> = {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(args, draft_raw)?;
            rows.collect::<StoreResult<_>>()?
        };
        raws.into_iter().map(|r| self.finish_draft(r)).collect()
    }

    fn finish_draft(&self, r: DraftRaw) -> StoreResult<DraftRow> {
        let (id, base, name, base_audit, base_ns, created_ns, agent, session, user, reason, fs) = r;
        let store = self
            .store_by_id(StoreId(id))?
            .ok_or_else(|| StoreError::Corrupt(format!("draft {id} has no store row")))?;
        Ok(DraftRow {
            store,
            base: StoreId(base),
            name,
            base_audit,
            base_ns,
            created_ns,
            agent,
            session,
            user,
            reason: DraftReason::parse(&reason),
            for_session: fs,
        })
    }

    /// The draft of `base` made by rule for `session`, if any.
    pub fn session_draft(&self, base: StoreId, session: &str) -> StoreResult<Option<DraftRow>> {
        let id: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT store_id FROM drafts WHERE base_id = ?1 AND for_session = ?2 \
                 ORDER BY store_id LIMIT 1",
            )?
            .query_row(params![base.0, session], |r| r.get(0))
            .optional()?;
        match id {
            Some(id) => self.draft(StoreId(id)),
            None => Ok(None),
        }
    }

    /// The base a draft last saw, by path.
    pub fn draft_base(&self, draft: StoreId) -> StoreResult<Vec<BaseRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, kind, origin, ino, head, target FROM draft_base \
             WHERE draft_id = ?1 ORDER BY path",
        )?;
        let rows = stmt.query_map([draft.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (path, kind, origin, ino, head, target) = row?;
            out.push(BaseRow {
                path,
                kind: NodeKind::from_code(kind)?,
                origin: Ino(origin),
                ino: ino.map(Ino),
                head: head.map(VersionId),
                target,
            });
        }
        Ok(out)
    }

    /// Replaces what a draft's base says of `path` (`None`: nothing there).
    pub fn set_draft_base(
        &self,
        draft: StoreId,
        path: &str,
        row: Option<&BaseRow>,
    ) -> StoreResult<()> {
        self.enter_store(draft)?;
        let old: Option<Option<i64>> = self
            .conn
            .prepare_cached("SELECT ino FROM draft_base WHERE draft_id = ?1 AND path = ?2")?
            .query_row(params![draft.0, path], |r| r.get(0))
            .optional()?;
        self.conn
            .prepare_cached("DELETE FROM draft_base WHERE draft_id = ?1 AND path = ?2")?
            .execute(params![draft.0, path])?;
        if let Some(b) = row {
            self.insert_base_row(draft, b)?;
        }
        if let Some(Some(ino)) = old {
            self.settle_unbased(Ino(ino))?;
        }
        Ok(())
    }

    /// A draft file the draft deleted keeps the base's version it was cloned
    /// with as its head, which is its own only through its base row. Once a
    /// merge drops that row, its head becomes its own newest version (none,
    /// if it never wrote one), so every file's head stays one of its versions.
    fn settle_unbased(&self, ino: Ino) -> StoreResult<()> {
        self.with_cache(|c| c.inodes.remove(&ino.0));
        self.conn
            .prepare_cached(
                "UPDATE inodes SET \
                   head = (SELECT max(v.id) FROM versions v WHERE v.ino = inodes.ino \
                     AND v.op != 'conflict' AND v.redacted_ns IS NULL), \
                   size = coalesce((SELECT v.size FROM versions v WHERE v.ino = inodes.ino \
                     AND v.op != 'conflict' AND v.redacted_ns IS NULL \
                     ORDER BY v.id DESC LIMIT 1), 0) \
                 WHERE ino = ?1 AND kind = 1 AND nlink = 0 \
                   AND NOT EXISTS (SELECT 1 FROM draft_base b WHERE b.ino = ?1)",
            )?
            .execute([ino.0])?;
        Ok(())
    }

    /// The base inode a draft's inode was cloned from (or merged into), and
    /// the base's version it last saw: the history it inherits.
    pub fn draft_origin(&self, ino: Ino) -> StoreResult<Option<(Ino, Option<VersionId>)>> {
        self.conn
            .prepare_cached(
                "SELECT origin, head FROM draft_base WHERE ino = ?1 ORDER BY path LIMIT 1",
            )?
            .query_row([ino.0], |r| {
                Ok((Ino(r.get(0)?), r.get::<_, Option<i64>>(1)?.map(VersionId)))
            })
            .optional()
    }

    /// Points a draft's file at `head` (a merge's result, in the base): the
    /// draft is rebased on it. Running mounts of the draft are told.
    pub fn rebase_draft_file(
        &self,
        draft: StoreId,
        ino: Ino,
        head: Option<VersionId>,
        now_ns: i64,
    ) -> StoreResult<()> {
        self.enter_store(draft)?;
        let size = match head {
            Some(v) => self.version(v)?.size,
            None => 0,
        };
        self.with_cache(|c| c.inodes.remove(&ino.0));
        self.conn
            .prepare_cached("UPDATE inodes SET head = ?2, size = ?3, ctime_ns = ?4 WHERE ino = ?1")?
            .execute(params![ino.0, head.map(|v| v.0), to_i64(size)?, now_ns])?;
        self.notify_inode(draft, ino, now_ns, "memfs-merge")?;
        Ok(())
    }

    /// A live file of some draft whose head is version `id`: (draft name, path).
    pub fn draft_head_user(&self, id: VersionId) -> StoreResult<Option<(String, Ino)>> {
        self.conn
            .prepare_cached(
                "SELECT s.name, i.ino FROM inodes i JOIN stores s ON s.id = i.store_id \
                 WHERE i.head = ?1 AND i.nlink > 0 AND s.draft_of IS NOT NULL LIMIT 1",
            )?
            .query_row([id.0], |r| Ok((r.get(0)?, Ino(r.get(1)?))))
            .optional()
    }

    /// The draft inodes cloned from base inode `origin`: (draft, inode).
    pub fn clones_of(&self, origin: Ino) -> StoreResult<Vec<(StoreId, Ino)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT draft_id, ino FROM draft_base WHERE origin = ?1 AND ino IS NOT NULL",
        )?;
        let rows = stmt.query_map([origin.0], |r| Ok((StoreId(r.get(0)?), Ino(r.get(1)?))))?;
        rows.collect()
    }

    /// Discards a draft: its namespace, versions and base rows go, then every
    /// chunk of the base's space that no version uses any more (what only the
    /// draft wrote). Its audit entries stay; the base gets `draft-discard`.
    pub fn discard_draft(
        &self,
        draft: &StoreRow,
        who: &Identity,
        now_ns: i64,
        why: &str,
    ) -> StoreResult<u64> {
        let Some(base) = draft.draft_of else {
            return Err(StoreError::Invalid(format!(
                "'{}' is not a draft",
                draft.name
            )));
        };
        // The draft's lock, and its base's before it (see `chains.rs`).
        self.enter_store(draft.id)?;
        let versions = self.store_versions(draft.id)?;
        self.remove_store_rows(draft)?;
        let (chunks, _, _) = self.collect_unused_chunks(base)?;
        self.record(
            who,
            now_ns,
            &Change {
                store: Some(base),
                op: "draft-discard",
                path: Some(""),
                detail: Some(serde_json::json!({
                    "draft": draft.name, "versions": versions, "chunks_deleted": chunks,
                    "why": why,
                })),
                origin: Some("memfsctl"),
                ..Default::default()
            },
        )?;
        Ok(chunks)
    }
}

//! Inodes and directory entries: the namespace of every store.

use super::sql::{params, Dialect, OptionalExtension, Row};
use super::{to_i64, to_u64, Txn};
use crate::error::{StoreError, StoreResult};
use crate::ids::{Ino, StoreId, VersionId};
use std::collections::HashMap;

/// How many levels a path walk climbs before it calls the tree corrupt (a
/// cycle in dentries).
const WALK_LIMIT: usize = 4096;

/// What an inode is. Stored as a small integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

impl NodeKind {
    pub(super) fn code(self) -> i64 {
        match self {
            NodeKind::File => 1,
            NodeKind::Dir => 2,
            NodeKind::Symlink => 3,
            NodeKind::Fifo => 4,
            NodeKind::Socket => 5,
            NodeKind::CharDev => 6,
            NodeKind::BlockDev => 7,
        }
    }

    pub(super) fn from_code(code: i64) -> StoreResult<Self> {
        Ok(match code {
            1 => NodeKind::File,
            2 => NodeKind::Dir,
            3 => NodeKind::Symlink,
            4 => NodeKind::Fifo,
            5 => NodeKind::Socket,
            6 => NodeKind::CharDev,
            7 => NodeKind::BlockDev,
            _ => return Err(StoreError::Corrupt(format!("unknown inode kind {code}"))),
        })
    }
}

/// One inode's metadata. Content lives in versions; `head` is the current one.
#[derive(Clone, Debug)]
pub struct InodeRow {
    pub ino: Ino,
    /// `None` only for the reserved mount-root inode 1.
    pub store: Option<StoreId>,
    pub kind: NodeKind,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub rdev: u32,
    pub atime_ns: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub crtime_ns: i64,
    pub head: Option<VersionId>,
    pub target: Option<Vec<u8>>,
}

/// The fields of an inode about to be created.
#[derive(Clone, Debug)]
pub struct NewInode {
    pub store: StoreId,
    pub kind: NodeKind,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub nlink: u32,
    pub now_ns: i64,
    pub target: Option<Vec<u8>>,
}

const INODE_COLS: &str = "ino, store_id, kind, perm, uid, gid, nlink, size, rdev, \
     atime_ns, mtime_ns, ctime_ns, crtime_ns, head, target";

/// [`INODE_COLS`], each qualified by `table`.
fn inode_cols_of(table: &str) -> String {
    INODE_COLS
        .split(", ")
        .map(|c| format!("{table}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn inode_from_row(r: &Row<'_>) -> StoreResult<(InodeRowRaw, i64)> {
    inode_from_row_at(r, 0)
}

/// An inode's columns ([`INODE_COLS`]) starting at column `o`.
fn inode_from_row_at(r: &Row<'_>, o: usize) -> StoreResult<(InodeRowRaw, i64)> {
    Ok((
        InodeRowRaw {
            ino: r.get(o)?,
            store: r.get(o + 1)?,
            perm: r.get(o + 3)?,
            uid: r.get(o + 4)?,
            gid: r.get(o + 5)?,
            nlink: r.get(o + 6)?,
            size: r.get(o + 7)?,
            rdev: r.get(o + 8)?,
            atime_ns: r.get(o + 9)?,
            mtime_ns: r.get(o + 10)?,
            ctime_ns: r.get(o + 11)?,
            crtime_ns: r.get(o + 12)?,
            head: r.get(o + 13)?,
            target: r.get(o + 14)?,
        },
        r.get(o + 2)?,
    ))
}

/// The row as SQLite hands it over, before kinds and sizes are checked.
struct InodeRowRaw {
    ino: i64,
    store: Option<i64>,
    perm: i64,
    uid: i64,
    gid: i64,
    nlink: i64,
    size: i64,
    rdev: i64,
    atime_ns: i64,
    mtime_ns: i64,
    ctime_ns: i64,
    crtime_ns: i64,
    head: Option<i64>,
    target: Option<Vec<u8>>,
}

impl InodeRowRaw {
    fn check(self, kind: i64) -> StoreResult<InodeRow> {
        let bad = |what: &str| StoreError::Corrupt(format!("inode {}: bad {what}", self.ino));
        Ok(InodeRow {
            ino: Ino(self.ino),
            store: self.store.map(StoreId),
            kind: NodeKind::from_code(kind)?,
            perm: u16::try_from(self.perm).map_err(|_| bad("perm"))?,
            uid: u32::try_from(self.uid).map_err(|_| bad("uid"))?,
            gid: u32::try_from(self.gid).map_err(|_| bad("gid"))?,
            nlink: u32::try_from(self.nlink).map_err(|_| bad("nlink"))?,
            size: to_u64(self.size, "size")?,
            rdev: u32::try_from(self.rdev).map_err(|_| bad("rdev"))?,
            atime_ns: self.atime_ns,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            crtime_ns: self.crtime_ns,
            head: self.head.map(VersionId),
            target: self.target,
        })
    }
}

/// An entry of a directory listing: name, inode, stored SHA-256 of its head.
pub type ListedEntry = (Vec<u8>, InodeRow, Option<[u8; 32]>);

/// A regular file of a store with its path and the SHA-256 of its head (when
/// stored), as listings return it.
#[derive(Clone, Debug)]
pub struct FileRow {
    /// Store-relative, `/`-separated.
    pub path: String,
    pub inode: InodeRow,
    pub sha256: Option<[u8; 32]>,
}

impl Txn<'_> {
    /// The entries of directory `dir` that are regular files or directories,
    /// by name, with their inodes and (for files) the stored SHA-256 of their
    /// head: one query per directory for listings.
    pub fn dir_listing(&self, dir: Ino) -> StoreResult<Vec<ListedEntry>> {
        self.enter_ino(dir)?;
        let sql = sql_once!(
            "SELECT d.name, v.sha256, {} FROM dentries d JOIN inodes i ON i.ino = d.ino \
             LEFT JOIN versions v ON v.id = i.head \
             WHERE d.parent = ?1 AND i.kind IN (1, 2) ORDER BY d.name",
            inode_cols_of("i")
        );
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([dir.0], |r| {
            let name: Vec<u8> = r.get(0)?;
            let sha: Option<Vec<u8>> = r.get(1)?;
            let (raw, kind) = inode_from_row_at(r, 2)?;
            Ok((name, sha, raw, kind))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, sha, raw, kind) = row?;
            out.push((
                name,
                raw.check(kind)?,
                sha.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()),
            ));
        }
        Ok(out)
    }

    /// One inode, or `None` if no such inode exists.
    pub fn inode(&self, ino: Ino) -> StoreResult<Option<InodeRow>> {
        self.enter_ino(ino)?;
        if let Some(row) = self.with_cache(|c| c.inodes.get(&ino.0).cloned()) {
            return Ok(Some(row));
        }
        let sql = sql_once!("SELECT {INODE_COLS} FROM inodes WHERE ino = ?1");
        let raw = self
            .conn
            .prepare_cached(sql)?
            .query_row([ino.0], inode_from_row)
            .optional()?;
        let row = raw.map(|(r, kind)| r.check(kind)).transpose()?;
        if let Some(r) = &row {
            self.with_cache(|c| c.inodes.insert(ino.0, r.clone()));
        }
        Ok(row)
    }

    /// [`inode`](Self::inode), and whether a change-feed row after `seq` not
    /// made by `origin` names it (as [`changed_elsewhere`](Self::changed_elsewhere)),
    /// in one query: an open that follows the feed asks both.
    pub fn inode_and_news(
        &self,
        ino: Ino,
        seq: i64,
        origin: &str,
    ) -> StoreResult<(Option<InodeRow>, bool)> {
        self.enter_ino(ino)?;
        if let Some(row) = self.with_cache(|c| c.inodes.get(&ino.0).cloned()) {
            return Ok((Some(row), self.changed_elsewhere(seq, origin, Some(ino))?));
        }
        let sql = sql_once!(
            "SELECT {INODE_COLS}, EXISTS (SELECT 1 FROM changes WHERE seq > ?2 \
             AND origin IS DISTINCT FROM ?3 AND ino = ?1) FROM inodes WHERE ino = ?1"
        );
        let raw = self
            .conn
            .prepare_cached(sql)?
            .query_row(params![ino.0, seq, origin], |r| {
                Ok((inode_from_row(r)?, r.get::<_, bool>(15)?))
            })
            .optional()?;
        let Some(((raw, kind), news)) = raw else {
            return Ok((None, self.changed_elsewhere(seq, origin, Some(ino))?));
        };
        let row = raw.check(kind)?;
        self.with_cache(|c| c.inodes.insert(ino.0, row.clone()));
        Ok((Some(row), news))
    }

    /// The inode `name` in directory `parent` names, if any.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> StoreResult<Option<Ino>> {
        self.enter_ino(parent)?;
        Ok(self
            .conn
            .prepare_cached("SELECT ino FROM dentries WHERE parent = ?1 AND name = ?2")?
            .query_row(params![parent.0, name], |r| r.get(0))
            .optional()?
            .map(Ino))
    }

    /// The inode `name` in `parent` names, with its metadata, in one query.
    pub fn lookup_inode(&self, parent: Ino, name: &[u8]) -> StoreResult<Option<InodeRow>> {
        self.enter_ino(parent)?;
        let sql = sql_once!(
            "SELECT {} FROM dentries d JOIN inodes i ON i.ino = d.ino \
             WHERE d.parent = ?1 AND d.name = ?2",
            inode_cols_of("i")
        );
        let raw = self
            .conn
            .prepare_cached(sql)?
            .query_row(params![parent.0, name], inode_from_row)
            .optional()?;
        raw.map(|(r, kind)| r.check(kind)).transpose()
    }

    /// Creates an inode. Returns its number. The row is cached for the rest
    /// of the transaction (or batch), as every write of an inode row is.
    pub fn insert_inode(&self, n: &NewInode) -> StoreResult<Ino> {
        self.enter_store(n.store)?;
        let size = n.target.as_ref().map_or(0, |t| t.len() as u64);
        let ino = self
            .conn
            .prepare_cached(
                "INSERT INTO inodes (store_id, kind, perm, uid, gid, nlink, size, rdev, \
                 atime_ns, mtime_ns, ctime_ns, crtime_ns, head, target) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?10, ?6, ?7, ?8, ?8, ?8, ?8, NULL, ?9) RETURNING ino",
            )?
            .query_row(
                params![
                    n.store.0,
                    n.kind.code(),
                    n.perm,
                    n.uid,
                    n.gid,
                    to_i64(size)?,
                    n.rdev,
                    n.now_ns,
                    n.target,
                    n.nlink,
                ],
                |r| r.get(0),
            )
            .map(Ino)?;
        self.conn.cache_store_of(ino.0, n.store.0);
        let row = InodeRow {
            ino,
            store: Some(n.store),
            kind: n.kind,
            perm: n.perm,
            uid: n.uid,
            gid: n.gid,
            nlink: n.nlink,
            size,
            rdev: n.rdev,
            atime_ns: n.now_ns,
            mtime_ns: n.now_ns,
            ctime_ns: n.now_ns,
            crtime_ns: n.now_ns,
            head: None,
            target: n.target.clone(),
        };
        self.with_cache(|c| c.inodes.insert(ino.0, row));
        Ok(ino)
    }

    /// Writes back every mutable field of an inode.
    pub fn save_inode(&self, i: &InodeRow) -> StoreResult<()> {
        self.enter_ino(i.ino)?;
        let n = self
            .conn
            .prepare_cached(
                "UPDATE inodes SET perm = ?2, uid = ?3, gid = ?4, nlink = ?5, size = ?6, \
                 atime_ns = ?7, mtime_ns = ?8, ctime_ns = ?9, head = ?10 WHERE ino = ?1",
            )?
            .execute(params![
                i.ino.0,
                i.perm,
                i.uid,
                i.gid,
                i.nlink,
                to_i64(i.size)?,
                i.atime_ns,
                i.mtime_ns,
                i.ctime_ns,
                i.head.map(|v| v.0),
            ])?;
        if n == 1 {
            self.with_cache(|c| c.inodes.insert(i.ino.0, i.clone()));
            Ok(())
        } else {
            self.with_cache(|c| c.inodes.remove(&i.ino.0));
            Err(StoreError::NotFound(format!("inode {}", i.ino)))
        }
    }

    /// Adds the entry `parent/name -> ino`. Fails with `Exists` if the name is taken.
    pub fn insert_dentry(&self, parent: Ino, name: &[u8], ino: Ino) -> StoreResult<()> {
        self.enter_ino(parent)?;
        // No constraint error: on PostgreSQL it would abort the transaction.
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO dentries (parent, name, ino) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (parent, name) DO NOTHING",
            )?
            .execute(params![parent.0, name, ino.0])?;
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Exists(
                String::from_utf8_lossy(name).into_owned(),
            ))
        }
    }

    /// Removes the entry `parent/name`. Returns whether it existed.
    pub fn remove_dentry(&self, parent: Ino, name: &[u8]) -> StoreResult<bool> {
        self.enter_ino(parent)?;
        let n = self
            .conn
            .prepare_cached("DELETE FROM dentries WHERE parent = ?1 AND name = ?2")?
            .execute(params![parent.0, name])?;
        self.with_cache(|c| c.entry_changed(parent.0, name));
        Ok(n == 1)
    }

    /// Points the existing entry `parent/name` at another inode.
    pub fn repoint_dentry(&self, parent: Ino, name: &[u8], ino: Ino) -> StoreResult<()> {
        self.enter_ino(parent)?;
        self.conn
            .prepare_cached("UPDATE dentries SET ino = ?3 WHERE parent = ?1 AND name = ?2")?
            .execute(params![parent.0, name, ino.0])?;
        self.with_cache(|c| c.entry_changed(parent.0, name));
        Ok(())
    }

    /// The entries of a directory, sorted by name, with each child's kind.
    pub fn children(&self, parent: Ino) -> StoreResult<Vec<(Vec<u8>, Ino, NodeKind)>> {
        self.enter_ino(parent)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.name, d.ino, i.kind FROM dentries d JOIN inodes i ON i.ino = d.ino \
             WHERE d.parent = ?1 ORDER BY d.name",
        )?;
        let rows = stmt.query_map([parent.0], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, ino, kind) = row?;
            out.push((name, Ino(ino), NodeKind::from_code(kind)?));
        }
        Ok(out)
    }

    /// Whether a directory has any entry.
    pub fn has_children(&self, parent: Ino) -> StoreResult<bool> {
        self.enter_ino(parent)?;
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM dentries WHERE parent = ?1 LIMIT 1")?
            .query_row([parent.0], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// One entry naming `ino`: its parent and name (for hard links, the first by name).
    pub fn parent_entry(&self, ino: Ino) -> StoreResult<Option<(Ino, Vec<u8>)>> {
        self.enter_ino(ino)?;
        self.conn
            .prepare_cached(
                "SELECT parent, name FROM dentries WHERE ino = ?1 ORDER BY parent, name LIMIT 1",
            )?
            .query_row([ino.0], |r| Ok((Ino(r.get(0)?), r.get(1)?)))
            .optional()
    }

    /// The first entry naming `ino` (as [`parent_entry`](Self::parent_entry)
    /// picks it) and the first entry of each directory above, up to the
    /// first inode no entry names (a store's root), in one query: keyed by
    /// the inode each entry names.
    fn ancestry(&self, ino: Ino) -> StoreResult<HashMap<i64, (Ino, Vec<u8>)>> {
        self.enter_ino(ino)?;
        let mut stmt = self.conn.prepare_cached(sql_once!(
            "WITH RECURSIVE up(n, ino, parent, name) AS ( \
               SELECT 0, d.ino, d.parent, d.name FROM (SELECT ino, parent, name FROM dentries \
                 WHERE ino = ?1 ORDER BY parent, name LIMIT 1) AS d \
               UNION ALL \
               SELECT up.n + 1, d.ino, d.parent, d.name FROM up CROSS JOIN LATERAL \
                 (SELECT ino, parent, name FROM dentries WHERE ino = up.parent \
                  ORDER BY parent, name LIMIT 1) AS d \
               WHERE up.n < {WALK_LIMIT}) \
             SELECT ino, parent, name FROM up"
        ))?;
        let rows = stmt.query_map([ino.0], |r| {
            Ok((r.get::<_, i64>(0)?, (Ino(r.get(1)?), r.get(2)?)))
        })?;
        rows.collect()
    }

    /// Every entry naming `ino` (hard links have several).
    pub fn entries_of(&self, ino: Ino) -> StoreResult<Vec<(Ino, Vec<u8>)>> {
        self.enter_ino(ino)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT parent, name FROM dentries WHERE ino = ?1 ORDER BY parent, name",
        )?;
        let rows = stmt.query_map([ino.0], |r| Ok((Ino(r.get(0)?), r.get(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// The store-relative path of `ino` ("" for a store root, "a/b.txt" below it).
    /// An unlinked inode has no path; `None` then.
    pub fn path_of(&self, ino: Ino) -> StoreResult<Option<String>> {
        self.walk_path(ino, false)
    }

    /// [`path_of`](Self::path_of) a directory, which inside a batch is cached
    /// with the directories above it (a create or remove in it needs no walk).
    pub fn dir_path_of(&self, dir: Ino) -> StoreResult<Option<String>> {
        self.walk_path(dir, true)
    }

    /// Walks up from `ino` to its store's root, or (inside a batch) to the
    /// first directory whose path the batch cache knows, then caches the
    /// directories walked through. Only directories are cached: `ino` itself
    /// only when `is_dir` (a file may have several names).
    fn walk_path(&self, ino: Ino, is_dir: bool) -> StoreResult<Option<String>> {
        let cached = |i: Ino| self.with_cache(|c| c.dir_paths.get(&i.0).cloned());
        let mut parts: Vec<(Ino, Vec<u8>)> = Vec::new();
        let mut cur = ino;
        let mut base = None;
        // PostgreSQL: the entries up to the root in one round trip (fetched
        // when the walk needs its first one), not one query per level.
        let mut ancestry: Option<HashMap<i64, (Ino, Vec<u8>)>> = None;
        // Bounded walk: a cycle in dentries would be corruption, not an endless loop.
        for _ in 0..WALK_LIMIT {
            if is_dir || cur != ino {
                if let Some(p) = cached(cur) {
                    base = Some(p);
                    break;
                }
            }
            let entry = if self.dialect() == Dialect::Postgres {
                if ancestry.is_none() {
                    ancestry = Some(self.ancestry(cur)?);
                }
                ancestry.as_ref().and_then(|a| a.get(&cur.0).cloned())
            } else {
                self.parent_entry(cur)?
            };
            match entry {
                Some((parent, name)) => {
                    parts.push((cur, name));
                    cur = parent;
                }
                None => {
                    let is_root = self.conn.is_cached_root(cur.0)
                        || self
                            .conn
                            .prepare_cached("SELECT 1 FROM stores WHERE root_ino = ?1")?
                            .query_row([cur.0], |_| Ok(()))
                            .optional()?
                            .is_some();
                    if !is_root {
                        return Ok(None);
                    }
                    self.conn.cache_root(cur.0);
                    if is_dir || cur != ino {
                        self.with_cache(|c| c.dir_paths.insert(cur.0, String::new()));
                    }
                    base = Some(String::new());
                    break;
                }
            }
        }
        let Some(mut path) = base else {
            return Err(StoreError::Corrupt(format!(
                "directory cycle above inode {ino}"
            )));
        };
        for (child, name) in parts.iter().rev() {
            let name = String::from_utf8_lossy(name);
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(&name);
            if is_dir || *child != ino {
                self.with_cache(|c| c.dir_paths.insert(child.0, path.clone()));
            }
        }
        Ok(Some(path))
    }

    /// The inode at a store-relative path ("" is the root), following no symlinks.
    pub fn resolve_path(&self, root: Ino, path: &str) -> StoreResult<Option<Ino>> {
        let mut cur = root;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            match self.lookup(cur, part.as_bytes())? {
                Some(next) => cur = next,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// Number of live (linked) inodes in a store, and the bytes their heads hold.
    pub fn store_usage(&self, store: StoreId) -> StoreResult<(u64, u64)> {
        self.enter_store(store)?;
        let (n, bytes): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT count(*), CAST(coalesce(sum(size), 0) AS BIGINT) FROM inodes \
                 WHERE store_id = ?1 AND nlink > 0",
            )?
            .query_row([store.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((to_u64(n, "count")?, to_u64(bytes, "bytes")?))
    }
}

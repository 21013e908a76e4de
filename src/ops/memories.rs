//! Memories as the memory-store API sees a store: each regular file is a
//! memory whose path is `/` plus its path in the store, whose id (`mem_...`)
//! is its inode (so it survives renames, also renames made through a mount),
//! and whose `content_sha256` is its head version's stored SHA-256.
//! Directories are implicit. Changes go through the filesystem core's
//! whole-file operations (`fs/put.rs`).

use super::page::{self, Page};
use super::paths::{to_api_path, to_store_path, to_store_prefix};
use super::{Ops, Principal};
use crate::digest;
use crate::error::{FsError, OpError, OpResult, StoreError};
use crate::fs::Expect;
use crate::ids::{Ino, VersionId};
use crate::store::{FileRow, StoreRow};

/// Why a memory's content is not shown as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// Not UTF-8 text.
    Binary,
    /// Larger than the server shows (`max_content_bytes`).
    TooLarge,
}

/// One memory.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Memory {
    pub ino: Ino,
    pub store_api_id: String,
    /// The API path (`/notes/a.md`).
    pub path: String,
    /// The head version; `None` for an empty file never written.
    pub version: Option<VersionId>,
    pub sha256: [u8; 32],
    pub size: u64,
    pub created_ns: i64,
    pub updated_ns: i64,
    /// The content, when asked for and showable.
    pub content: Option<String>,
    /// Why the content is not shown although it was asked for.
    pub unavailable: Option<Unavailable>,
}

/// A list item: a memory, or a prefix standing for memories below `depth`.
#[derive(Clone, Debug)]
pub enum Item {
    Memory(Memory),
    Prefix(String),
}

impl Item {
    fn path(&self) -> &str {
        match self {
            Item::Memory(m) => &m.path,
            Item::Prefix(p) => p,
        }
    }
}

/// Which memories to list.
#[derive(Clone, Debug, Default)]
pub struct MemoryQuery {
    pub path_prefix: Option<String>,
    /// 0: everything below the prefix; 1: direct children, deeper ones rolled
    /// up into prefixes.
    pub depth: Option<i64>,
    pub limit: Option<i64>,
    pub page: Option<String>,
    /// With content (`view=full`).
    pub full: bool,
}

/// A change of one memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryUpdate {
    pub path: Option<String>,
    pub content: Option<String>,
    /// The SHA-256 its current content must have.
    pub expect_sha256: Option<String>,
}

/// A walk of a store's tree in order: directory by directory, each
/// directory's entries by name (`ls -R`'s order), collecting files and, with
/// a depth, a prefix for each directory at that depth that holds files.
struct Walk<'t, 'c> {
    tx: &'t crate::store::Txn<'c>,
    depth: Option<usize>,
    want: usize,
    out: Vec<(String, Option<FileRow>)>,
}

impl Walk<'_, '_> {
    /// Visits directory `dir` at store path `path` (`""` or ending in `/`),
    /// whose entries are at `level`; `seek` (components, whether the last
    /// names a prefix already given) skips what earlier pages gave. Returns
    /// true once enough items are collected.
    fn visit(
        &mut self,
        dir: Ino,
        path: &str,
        level: usize,
        mut seek: Option<(&[String], bool)>,
    ) -> Result<bool, StoreError> {
        if level > 64 {
            return Ok(false);
        }
        for (name, inode, sha) in self.tx.dir_listing(dir)? {
            let Ok(name) = String::from_utf8(name) else {
                continue;
            };
            let is_dir = inode.kind == crate::store::NodeKind::Dir;
            if let Some((comps, done_dir)) = seek {
                match name.as_str().cmp(comps[0].as_str()) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => {
                        if comps.len() > 1 && is_dir {
                            let sub = format!("{path}{name}/");
                            if self.visit(
                                inode.ino,
                                &sub,
                                level + 1,
                                Some((&comps[1..], done_dir)),
                            )? {
                                return Ok(true);
                            }
                        }
                        // The item the cursor names (or what replaced it) was given.
                        seek = None;
                        continue;
                    }
                    std::cmp::Ordering::Greater => seek = None,
                }
            }
            let full = format!("{path}{name}");
            if is_dir {
                let sub = format!("{full}/");
                if self.depth.is_some_and(|d| level >= d) {
                    if self.has_file(inode.ino, 0)? {
                        self.out.push((format!("/{sub}"), None));
                    }
                } else if self.visit(inode.ino, &sub, level + 1, None)? {
                    return Ok(true);
                }
            } else {
                self.out.push((
                    to_api_path(&full),
                    Some(FileRow {
                        path: full,
                        inode,
                        sha256: sha,
                    }),
                ));
            }
            if self.out.len() >= self.want {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether any regular file lies below `dir`.
    fn has_file(&self, dir: Ino, level: usize) -> Result<bool, StoreError> {
        if level > 64 {
            return Ok(false);
        }
        for (_, child, kind) in self.tx.children(dir)? {
            match kind {
                crate::store::NodeKind::File => return Ok(true),
                crate::store::NodeKind::Dir if self.has_file(child, level + 1)? => return Ok(true),
                _ => {}
            }
        }
        Ok(false)
    }
}

/// `mem_<inode>`.
pub fn memory_id(ino: Ino) -> String {
    format!("mem_{}", ino.0)
}

fn parse_memory_id(id: &str) -> OpResult<Ino> {
    id.strip_prefix("mem_")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 1)
        .map(Ino)
        .ok_or_else(|| OpError::NotFound(format!("no memory '{id}'")))
}

/// Parses a client's SHA-256 (64 lowercase hex characters).
pub fn parse_sha(what: &str, s: &str) -> OpResult<[u8; 32]> {
    digest::parse_sha256(s).ok_or_else(|| {
        OpError::Invalid(format!(
            "{what} must be 64 lowercase hexadecimal characters"
        ))
    })
}

/// A filesystem refusal as the API says it, with the path it concerns.
fn refused(path: &str, e: FsError) -> OpError {
    match e.settled() {
        FsError::Exists => OpError::PathConflict(format!("a memory already exists at '{path}'")),
        FsError::NotDir => OpError::PathConflict(format!(
            "a memory is in the way of '{path}' (a parent of it is a file)"
        )),
        FsError::IsDir => {
            OpError::PathConflict(format!("'{path}' is a directory of other memories"))
        }
        FsError::Precondition(m) => OpError::Precondition(m),
        FsError::Store(s) => OpError::Store(s),
        e => OpError::fs(format!("cannot change '{path}'"), e),
    }
}

impl Ops {
    /// Makes a [`Memory`] of a file row, with its content if `full`.
    fn memory_of(
        &self,
        store: &StoreRow,
        f: &FileRow,
        sha: [u8; 32],
        full: bool,
    ) -> OpResult<Memory> {
        let mut m = Memory {
            ino: f.inode.ino,
            store_api_id: store.api_id.clone(),
            path: to_api_path(&f.path),
            version: f.inode.head,
            sha256: sha,
            size: f.inode.size,
            created_ns: f.inode.crtime_ns,
            updated_ns: f.inode.ctime_ns,
            content: None,
            unavailable: None,
        };
        if full {
            if f.inode.size > self.max_content_bytes {
                m.unavailable = Some(Unavailable::TooLarge);
            } else {
                let bytes = match f.inode.head {
                    None => Vec::new(),
                    Some(v) => self.read(|tx| {
                        let ext = tx.extents(v)?;
                        tx.read_extents(&ext, 0, ext.size())
                    })?,
                };
                match String::from_utf8(bytes) {
                    Ok(s) => m.content = Some(s),
                    Err(_) => m.unavailable = Some(Unavailable::Binary),
                }
            }
        }
        Ok(m)
    }

    /// The SHA-256 of each row's head, computing (once, stored) those of
    /// versions from before they were kept.
    fn shas(&self, rows: &[&FileRow]) -> OpResult<Vec<[u8; 32]>> {
        let missing: Vec<VersionId> = rows
            .iter()
            .filter(|f| f.sha256.is_none())
            .filter_map(|f| f.inode.head)
            .collect();
        let mut filled = std::collections::HashMap::new();
        if !missing.is_empty() {
            filled = self.db().write(|tx| {
                let mut m = std::collections::HashMap::new();
                for v in missing {
                    if let Some(s) = tx.version_sha256(v)? {
                        m.insert(v, s);
                    }
                }
                Ok::<_, StoreError>(m)
            })?;
        }
        Ok(rows
            .iter()
            .map(|f| match (f.sha256, f.inode.head) {
                (Some(s), _) => s,
                (None, None) => digest::sha256(b""),
                (None, Some(v)) => filled.get(&v).copied().unwrap_or([0; 32]),
            })
            .collect())
    }

    /// One file of a store by inode, if it is a live regular file there.
    fn file_row(&self, store: &StoreRow, ino: Ino, id: &str) -> OpResult<FileRow> {
        let gone = || OpError::NotFound(format!("no memory '{id}' in this store"));
        let (inode, path, sha) = self
            .read(|tx| {
                let Some(inode) = tx.inode(ino)? else {
                    return Ok(None);
                };
                let path = tx.path_of(ino)?;
                let sha = match inode.head {
                    Some(v) => tx.version(v).ok().and_then(|r| r.sha256),
                    None => None,
                };
                Ok(Some((inode, path, sha)))
            })?
            .ok_or_else(gone)?;
        if inode.store != Some(store.id)
            || inode.nlink == 0
            || inode.kind != crate::store::NodeKind::File
        {
            return Err(gone());
        }
        Ok(FileRow {
            path: path.ok_or_else(gone)?,
            inode,
            sha256: sha.and_then(|h| digest::parse_sha256(&h)),
        })
    }

    /// Lists a store's memories by path, a page at a time.
    pub fn list_memories(
        &self,
        p: &Principal,
        store_id: &str,
        q: &MemoryQuery,
    ) -> OpResult<Page<Item>> {
        let (store, _) = self.store(p, store_id)?;
        let max = if q.full { 20 } else { 100 };
        let limit = page::limit(q.limit, 20, 100)?.min(max);
        let prefix = match &q.path_prefix {
            Some(pp) => to_store_prefix(pp)?,
            None => String::new(),
        };
        let depth = match q.depth {
            None | Some(0) => None,
            Some(d) if (1..=20).contains(&d) => Some(d as usize),
            Some(d) => {
                return Err(OpError::Invalid(format!(
                    "depth must be between 0 and 20, not {d}"
                )))
            }
        };
        let after = match &q.page {
            Some(t) => Some(
                page::decode("mem", t)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| OpError::Invalid("invalid page cursor".into()))?,
            ),
            None => None,
        };
        // The cursor names the last item given: a path below the prefix.
        let seek: Option<(Vec<String>, bool)> = match &after {
            None => None,
            Some(a) => {
                let rel = a
                    .strip_prefix('/')
                    .and_then(|r| r.strip_prefix(prefix.as_str()))
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| {
                        OpError::Invalid("the page cursor is from another listing".into())
                    })?;
                let done_dir = rel.ends_with('/');
                let comps = rel.trim_end_matches('/').split('/').map(str::to_string);
                Some((comps.collect(), done_dir))
            }
        };
        let walked = self.read(|tx| {
            let start = if prefix.is_empty() {
                Some(store.root)
            } else {
                match tx.resolve_path(store.root, prefix.trim_end_matches('/'))? {
                    Some(ino) => tx
                        .inode(ino)?
                        .filter(|r| r.kind == crate::store::NodeKind::Dir)
                        .map(|r| r.ino),
                    None => None,
                }
            };
            let mut w = Walk {
                tx,
                depth,
                want: limit + 1,
                out: Vec::new(),
            };
            if let Some(start) = start {
                let seek = seek.as_ref().map(|(c, d)| (c.as_slice(), *d));
                w.visit(start, &prefix, 1, seek)?;
            }
            Ok(w.out)
        })?;
        let more = walked.len() > limit;
        let items: Vec<(String, Option<FileRow>)> = walked.into_iter().take(limit).collect();
        let rows: Vec<&FileRow> = items.iter().filter_map(|(_, f)| f.as_ref()).collect();
        let shas = self.shas(&rows)?;
        let mut shas = shas.into_iter();
        let mut data = Vec::with_capacity(items.len());
        for (path, f) in &items {
            data.push(match f {
                Some(f) => {
                    let sha = shas.next().unwrap_or([0; 32]);
                    Item::Memory(self.memory_of(&store, f, sha, q.full)?)
                }
                None => Item::Prefix(path.clone()),
            });
        }
        let next_page = match (more, data.last()) {
            (true, Some(last)) => Some(page::encode("mem", &[last.path()])),
            _ => None,
        };
        Ok(Page { data, next_page })
    }

    /// One memory by id.
    pub fn get_memory(
        &self,
        p: &Principal,
        store_id: &str,
        memory: &str,
        full: bool,
    ) -> OpResult<Memory> {
        let (store, _) = self.store(p, store_id)?;
        let ino = parse_memory_id(memory)?;
        let f = self.file_row(&store, ino, memory)?;
        let sha = self.shas(&[&f])?[0];
        self.memory_of(&store, &f, sha, full)
    }

    /// Creates a memory at `path` (refused if one is there).
    pub fn create_memory(
        &self,
        p: &Principal,
        store_id: &str,
        path: &str,
        content: &str,
        full: bool,
    ) -> OpResult<Memory> {
        let (store, set) = self.store(p, store_id)?;
        let rel = to_store_path(path)?;
        self.check_writable(p, &store, &set)?;
        let fs = self.fs_for(p, &store, &set);
        let w = fs
            .put_file(store.id, &rel, content.as_bytes(), Expect::Absent)
            .map_err(|e| refused(path, e))?;
        self.get_memory(p, store_id, &memory_id(w.ino), full)
    }

    /// Changes a memory's path and/or content, if its content still has the
    /// given SHA-256.
    pub fn update_memory(
        &self,
        p: &Principal,
        store_id: &str,
        memory: &str,
        u: &MemoryUpdate,
        full: bool,
    ) -> OpResult<Memory> {
        let (store, set) = self.store(p, store_id)?;
        let ino = parse_memory_id(memory)?;
        let new_rel = u.path.as_deref().map(to_store_path).transpose()?;
        let expect = u
            .expect_sha256
            .as_deref()
            .map(|s| parse_sha("precondition.content_sha256", s))
            .transpose()?;
        self.check_writable(p, &store, &set)?;
        let f = self.file_row(&store, ino, memory)?;
        let shown = u.path.clone().unwrap_or_else(|| to_api_path(&f.path));
        let fs = self.fs_for(p, &store, &set);
        fs.update_file(
            store.id,
            ino,
            new_rel.as_deref(),
            u.content.as_deref().map(str::as_bytes),
            expect,
        )
        .map_err(|e| refused(&shown, e))?;
        self.get_memory(p, store_id, memory, full)
    }

    /// Deletes a memory (its versions stay), if its content still has the
    /// given SHA-256.
    pub fn delete_memory(
        &self,
        p: &Principal,
        store_id: &str,
        memory: &str,
        expect_sha256: Option<&str>,
    ) -> OpResult<()> {
        let (store, set) = self.store(p, store_id)?;
        let ino = parse_memory_id(memory)?;
        let expect = expect_sha256
            .map(|s| parse_sha("expected_content_sha256", s))
            .transpose()?;
        if !p.may_write(&store, &set) {
            p.require_write(&store, &set)?;
        }
        let f = self.file_row(&store, ino, memory)?;
        let fs = self.fs_for(p, &store, &set);
        fs.remove_file(store.id, ino, expect)
            .map_err(|e| refused(&to_api_path(&f.path), e))
    }

    /// Refuses changes to an archived store or by a principal that may not write.
    pub(crate) fn check_writable(
        &self,
        p: &Principal,
        store: &StoreRow,
        set: &crate::settings::StoreSettings,
    ) -> OpResult<()> {
        if store.archived {
            return Err(OpError::Invalid(format!(
                "memory store '{}' is archived: its memories cannot be created or updated",
                store.api_id
            )));
        }
        p.require_write(store, set)
    }
}

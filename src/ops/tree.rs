//! Files and directories of a store by path, for front ends that work like a
//! file system without a kernel (the memory tool, MCP's file tools): what is
//! at a path, a directory's entries, a file's text, and whole changes (write,
//! make directories, remove, move) through the filesystem core, so policies,
//! quotas, content rules, leases, versions and the audit log are the same as
//! through a mount. Paths are store-relative, `/`-separated, already split
//! into names by the caller (no `.` or `..`); `""` is the store's root.

use super::{Ops, Principal};
use crate::digest;
use crate::error::{FsError, OpError, OpResult};
use crate::fs::{Expect, Written};
use crate::ids::{Ino, VersionId};
use crate::store::{InodeRow, NodeKind, StoreRow};
use serde::Serialize;

/// What is at a path.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// Store-relative (`""`: the store's root).
    pub path: String,
    #[serde(serialize_with = "kind_name")]
    pub kind: NodeKind,
    pub ino: Ino,
    pub size: u64,
    pub perm: u16,
    pub created_ns: i64,
    pub modified_ns: i64,
    pub changed_ns: i64,
    pub accessed_ns: i64,
    /// The file's head version (`None`: no content written yet, or not a file).
    pub version: Option<VersionId>,
}

fn kind_name<S: serde::Serializer>(k: &NodeKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind_str(*k))
}

/// A node kind as people name it.
pub fn kind_str(k: NodeKind) -> &'static str {
    match k {
        NodeKind::File => "file",
        NodeKind::Dir => "directory",
        NodeKind::Symlink => "symlink",
        _ => "special",
    }
}

impl Node {
    fn of(path: &str, r: &InodeRow) -> Node {
        Node {
            path: path.to_string(),
            kind: r.kind,
            ino: r.ino,
            size: r.size,
            perm: r.perm,
            created_ns: r.crtime_ns,
            modified_ns: r.mtime_ns,
            changed_ns: r.ctime_ns,
            accessed_ns: r.atime_ns,
            version: r.head,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == NodeKind::Dir
    }

    pub fn is_file(&self) -> bool {
        self.kind == NodeKind::File
    }
}

/// One entry of a directory.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub name: String,
    #[serde(flatten)]
    pub node: Node,
}

/// A file's whole content as of one version.
#[derive(Clone, Debug)]
pub struct FileBytes {
    pub node: Node,
    pub data: Vec<u8>,
    pub sha256: [u8; 32],
}

/// `a/b` joined with `c`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The parent of a store-relative path (`""` for a top-level name).
pub fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

impl Ops {
    /// What is at `path` in `store` now, if anything.
    pub fn node_at(&self, p: &Principal, store: &str, path: &str) -> OpResult<Option<Node>> {
        let (row, _) = self.store_named(p, store)?;
        self.node_in(&row, path)
    }

    fn node_in(&self, store: &StoreRow, path: &str) -> OpResult<Option<Node>> {
        self.read(|tx| {
            let Some(ino) = tx.resolve_path(store.root, path)? else {
                return Ok(None);
            };
            Ok(tx.inode(ino)?.map(|r| Node::of(path, &r)))
        })
    }

    /// The entries of directory `path` by name (`NotFound` if there is none,
    /// `Invalid` if it is not a directory).
    pub fn list_dir(&self, p: &Principal, store: &str, path: &str) -> OpResult<Vec<Entry>> {
        let (row, _) = self.store_named(p, store)?;
        let shown = shown(&row, path);
        let entries = self.read(|tx| {
            let Some(ino) = tx.resolve_path(row.root, path)? else {
                return Ok(None);
            };
            let Some(dir) = tx.inode(ino)? else {
                return Ok(None);
            };
            if dir.kind != NodeKind::Dir {
                return Ok(Some(Err(())));
            }
            let mut out = Vec::new();
            for (name, child, _) in tx.children(ino)? {
                if let Some(r) = tx.inode(child)? {
                    let name = String::from_utf8_lossy(&name).into_owned();
                    let node = Node::of(&join(path, &name), &r);
                    out.push(Entry { name, node });
                }
            }
            Ok(Some(Ok(out)))
        })?;
        match entries {
            None => Err(OpError::NotFound(format!("no directory '{shown}'"))),
            Some(Err(())) => Err(OpError::Invalid(format!("'{shown}' is not a directory"))),
            Some(Ok(v)) => Ok(v),
        }
    }

    /// The whole content of file `path` as of its head. Files larger than the
    /// server shows (`max_content_bytes`) are `TooLarge`.
    pub fn read_file(&self, p: &Principal, store: &str, path: &str) -> OpResult<FileBytes> {
        let (row, _) = self.store_named(p, store)?;
        let shown = shown(&row, path);
        let max = self.max_content_bytes;
        let got = self.read(|tx| {
            let Some(ino) = tx.resolve_path(row.root, path)? else {
                return Ok(None);
            };
            let Some(r) = tx.inode(ino)? else {
                return Ok(None);
            };
            if r.kind != NodeKind::File || r.size > max {
                return Ok(Some((Node::of(path, &r), None)));
            }
            let data = match r.head {
                Some(v) => {
                    let ext = tx.extents(v)?;
                    tx.read_extents(&ext, 0, ext.size())?
                }
                None => Vec::new(),
            };
            Ok(Some((Node::of(path, &r), Some(data))))
        })?;
        match got {
            None => Err(OpError::NotFound(format!("no file '{shown}'"))),
            Some((node, _)) if node.kind != NodeKind::File => Err(OpError::Invalid(format!(
                "'{shown}' is a {}, not a file",
                kind_str(node.kind)
            ))),
            Some((node, None)) => Err(OpError::TooLarge(format!(
                "'{shown}' holds {} bytes; at most {max} are shown",
                node.size
            ))),
            Some((node, Some(data))) => Ok(FileBytes {
                node,
                sha256: digest::sha256(&data),
                data,
            }),
        }
    }

    /// Writes `content` as the whole content of file `path`, creating it and
    /// its parent directories as needed, if what is there meets `expect`.
    pub fn write_file(
        &self,
        p: &Principal,
        store: &str,
        path: &str,
        content: &[u8],
        expect: Expect,
    ) -> OpResult<Written> {
        let (row, set) = self.store_named(p, store)?;
        self.check_writable(p, &row, &set)?;
        let fs = self.fs_for(p, &row, &set);
        fs.put_file(row.id, path, content, expect)
            .map_err(|e| OpError::fs(format!("cannot write '{}'", shown(&row, path)), e))
    }

    /// Makes directory `path` and its missing parents (an existing directory
    /// is fine).
    pub fn make_dirs(&self, p: &Principal, store: &str, path: &str) -> OpResult<()> {
        let (row, set) = self.store_named(p, store)?;
        self.check_writable(p, &row, &set)?;
        if path.is_empty() {
            return Ok(());
        }
        let fs = self.fs_for(p, &row, &set);
        fs.make_dirs(row.id, path)
            .map(|_| ())
            .map_err(|e| OpError::fs(format!("cannot make directory '{}'", shown(&row, path)), e))
    }

    /// Removes what is at `path`: a file (if its content has the SHA-256
    /// `expect`, when given), or a directory with everything below it.
    pub fn remove_path(
        &self,
        p: &Principal,
        store: &str,
        path: &str,
        expect: Option<[u8; 32]>,
    ) -> OpResult<()> {
        let (row, set) = self.store_named(p, store)?;
        self.check_writable(p, &row, &set)?;
        let context = || format!("cannot remove '{}'", shown(&row, path));
        let node = self
            .node_in(&row, path)?
            .ok_or_else(|| OpError::fs(context(), FsError::NotFound))?;
        let fs = self.fs_for(p, &row, &set);
        let r = match node.kind {
            NodeKind::File => fs.remove_file(row.id, node.ino, expect),
            _ if expect.is_some() => Err(FsError::Precondition(format!(
                "'{path}' is a {}, which has no content to compare",
                kind_str(node.kind)
            ))),
            _ => fs.remove_tree(row.id, node.ino).map(|_| ()),
        };
        r.map_err(|e| OpError::fs(context(), e))
    }

    /// Moves what is at `from` to `to` (whose parent directories are made as
    /// needed; the name must be free). A file keeps its id and history, and
    /// moves only if its content has the SHA-256 `expect`, when given.
    pub fn move_path(
        &self,
        p: &Principal,
        store: &str,
        from: &str,
        to: &str,
        expect: Option<[u8; 32]>,
    ) -> OpResult<()> {
        let (row, set) = self.store_named(p, store)?;
        self.check_writable(p, &row, &set)?;
        let context = || {
            format!(
                "cannot move '{}' to '{}'",
                shown(&row, from),
                shown(&row, to)
            )
        };
        let node = self
            .node_in(&row, from)?
            .ok_or_else(|| OpError::fs(context(), FsError::NotFound))?;
        if self.node_in(&row, to)?.is_some() {
            return Err(OpError::fs(context(), FsError::Exists));
        }
        let fs = self.fs_for(p, &row, &set);
        let parent = parent_of(to);
        if !parent.is_empty() {
            fs.make_dirs(row.id, parent)
                .map_err(|e| OpError::fs(context(), e))?;
        }
        let r = match node.kind {
            NodeKind::File => fs
                .update_file(row.id, node.ino, Some(to), None, expect)
                .map(|_| ()),
            _ if expect.is_some() => Err(FsError::Precondition(format!(
                "'{from}' is a {}, which has no content to compare",
                kind_str(node.kind)
            ))),
            _ => fs.move_node(row.id, node.ino, to),
        };
        r.map_err(|e| OpError::fs(context(), e))
    }
}

/// `STORE/PATH` for messages.
fn shown(store: &StoreRow, path: &str) -> String {
    join(&store.name, path)
}

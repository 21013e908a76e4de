//! The hidden, read-only `.memfs` directory at the mount root, like ZFS's `.zfs`:
//! not listed by readdir (so `ls`, `grep -r` and `find` never wander in), but
//! reachable by path.
//!
//! - `.memfs/whoami`: the mount's identity and stores.
//! - `.memfs/history/STORE/PATH/`: one file `v<ID>` per version of that file.
//! - `.memfs/at/TIME/STORE/...`: the store as it was at TIME (RFC 3339 or an age
//!   such as `2h`).
//! - `.memfs/changes/live`: every change to the attached stores since this
//!   mount started, one line each (`crate::changes::line`: time, operation,
//!   path, agent, session; never content), growing as changes happen, so
//!   `tail -f` follows what other agents write; `.memfs/changes/since/TIME`
//!   the same from TIME on.
//!
//! Virtual inodes live above [`VIRT_BASE`], allocated on lookup and stable for
//! the life of the mount.

use super::{Attr, DirEntry, MemFs};
use crate::error::{FsError, FsResult};
use crate::history::{find_file, tree_at, version_at, Tree};
use crate::ids::{now_ns, Ino, StoreId, VersionId};
use crate::store::{AuditFilter, NodeKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Inode numbers at or above this are virtual (never stored in the database).
pub const VIRT_BASE: i64 = 1 << 62;

/// The name of the hidden directory at the mount root.
pub const MEMFS_DIR: &[u8] = b".memfs";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum VNode {
    Root,
    Whoami,
    History,
    /// Mirrors a real directory of a store.
    HistDir {
        store: StoreId,
        dir: Ino,
    },
    /// A file's versions, as a directory.
    HistFile {
        file: Ino,
    },
    Version {
        file: Ino,
        version: VersionId,
    },
    At,
    AtTime {
        t: i64,
    },
    /// A store path as it was at `t` ("" is the store root).
    AtNode {
        t: i64,
        store: StoreId,
        path: String,
    },
    Changes,
    ChangesSince,
    /// The change lines from `t` on (`live`: from the mount's start).
    ChangeLines {
        t: i64,
    },
}

/// The change lines of one `.memfs/changes` file, read so far: it only grows,
/// by the entries after `after`.
struct Feed {
    /// Where it starts (nanoseconds since the epoch).
    since: i64,
    text: Vec<u8>,
    /// The last audit entry read (0: none yet).
    after: i64,
    last_ns: i64,
}

#[derive(Default)]
struct Table {
    by_ino: HashMap<i64, VNode>,
    by_node: HashMap<VNode, i64>,
}

/// Virtual inodes, and namespaces at past times (rebuilt on demand).
#[derive(Default)]
pub(super) struct Virt {
    table: Mutex<Table>,
    trees: Mutex<HashMap<(StoreId, i64), Arc<Tree>>>,
    handles: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
    /// Change feeds by start time, and the open handles of change files.
    feeds: Mutex<HashMap<i64, Arc<Mutex<Feed>>>>,
    feed_handles: Mutex<HashMap<u64, Arc<Mutex<Feed>>>>,
}

fn dir_attr(ino: Ino, t: i64) -> Attr {
    Attr {
        ino,
        kind: NodeKind::Dir,
        perm: 0o555,
        uid: 0,
        gid: 0,
        nlink: 2,
        size: 0,
        rdev: 0,
        atime_ns: t,
        mtime_ns: t,
        ctime_ns: t,
        crtime_ns: t,
        staged: false,
    }
}

fn file_attr(ino: Ino, size: u64, t: i64) -> Attr {
    Attr {
        kind: NodeKind::File,
        perm: 0o444,
        nlink: 1,
        size,
        ..dir_attr(ino, t)
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl MemFs {
    pub fn is_virtual(ino: Ino) -> bool {
        ino.0 >= VIRT_BASE
    }

    fn vino(&self, node: VNode) -> Ino {
        let mut t = self.virt.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&i) = t.by_node.get(&node) {
            return Ino(i);
        }
        let i = VIRT_BASE + t.by_ino.len() as i64;
        t.by_ino.insert(i, node.clone());
        t.by_node.insert(node, i);
        Ino(i)
    }

    fn vnode(&self, ino: Ino) -> FsResult<VNode> {
        let t = self.virt.table.lock().unwrap_or_else(|p| p.into_inner());
        t.by_ino.get(&ino.0).cloned().ok_or(FsError::NotFound)
    }

    fn tree(&self, store: StoreId, t: i64) -> FsResult<Arc<Tree>> {
        if let Some(tree) = self
            .virt
            .trees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(store, t))
        {
            return Ok(tree.clone());
        }
        let row = self.attached_by_id(store)?.store.clone();
        let tree = Arc::new(self.db.read(|tx| tree_at(tx, &row, t))?);
        let mut trees = self.virt.trees.lock().unwrap_or_else(|p| p.into_inner());
        if trees.len() >= 64 {
            trees.clear();
        }
        trees.insert((store, t), tree.clone());
        Ok(tree)
    }

    fn store_by_name(&self, name: &[u8]) -> FsResult<StoreId> {
        self.attached
            .iter()
            .find(|a| a.store.name.as_bytes() == name)
            .map(|a| a.store.id)
            .ok_or(FsError::NotFound)
    }

    /// Looks up `name` in a virtual directory (or `.memfs` in the mount root).
    pub(super) fn virt_lookup(&self, parent: Ino, name: &[u8]) -> FsResult<Attr> {
        let node = if parent == Ino::ROOT {
            VNode::Root
        } else {
            self.vnode(parent)?
        };
        let child = if parent == Ino::ROOT {
            VNode::Root
        } else {
            let text = String::from_utf8_lossy(name).into_owned();
            match node {
                VNode::Root => match name {
                    b"whoami" => VNode::Whoami,
                    b"history" => VNode::History,
                    b"at" => VNode::At,
                    b"changes" => VNode::Changes,
                    _ => return Err(FsError::NotFound),
                },
                VNode::Changes => match name {
                    b"live" => VNode::ChangeLines { t: self.mounted_ns },
                    b"since" => VNode::ChangesSince,
                    _ => return Err(FsError::NotFound),
                },
                VNode::ChangesSince => {
                    let t = crate::timefmt::parse_time(&text, now_ns())
                        .map_err(|_| FsError::NotFound)?;
                    VNode::ChangeLines { t }
                }
                VNode::History => {
                    let store = self.store_by_name(name)?;
                    let dir = self.attached_by_id(store)?.store.root;
                    VNode::HistDir { store, dir }
                }
                VNode::HistDir { store, dir } => self.db.read(|tx| {
                    let row = match tx.lookup_inode(dir, name)? {
                        Some(r) => r,
                        None => {
                            // A deleted file's history stays reachable by its path.
                            let att = self.attached_by_id(store)?;
                            let path = join(&tx.path_of(dir)?.unwrap_or_default(), &text);
                            let ino = find_file(tx, &att.store, &path)?.ok_or(FsError::NotFound)?;
                            tx.inode(ino)?.ok_or(FsError::NotFound)?
                        }
                    };
                    match row.kind {
                        NodeKind::Dir => Ok(VNode::HistDir {
                            store,
                            dir: row.ino,
                        }),
                        NodeKind::File => Ok(VNode::HistFile { file: row.ino }),
                        _ => Err(FsError::NotFound),
                    }
                })?,
                VNode::HistFile { file } => {
                    let id: i64 = text
                        .strip_prefix('v')
                        .and_then(|n| n.parse().ok())
                        .ok_or(FsError::NotFound)?;
                    let v = self.db.read(|tx| tx.version(VersionId(id)))?;
                    if v.ino != file {
                        return Err(FsError::NotFound);
                    }
                    VNode::Version {
                        file,
                        version: v.id,
                    }
                }
                VNode::At => {
                    let t = crate::timefmt::parse_time(&text, now_ns())
                        .map_err(|_| FsError::NotFound)?;
                    VNode::AtTime { t }
                }
                VNode::AtTime { t } => {
                    let store = self.store_by_name(name)?;
                    if self.tree(store, t)?.is_empty() {
                        return Err(FsError::NotFound);
                    }
                    VNode::AtNode {
                        t,
                        store,
                        path: String::new(),
                    }
                }
                VNode::AtNode { t, store, path } => {
                    let p = join(&path, &text);
                    if !self.tree(store, t)?.contains_key(&p) {
                        return Err(FsError::NotFound);
                    }
                    VNode::AtNode { t, store, path: p }
                }
                VNode::Whoami | VNode::Version { .. } | VNode::ChangeLines { .. } => {
                    return Err(FsError::NotDir)
                }
            }
        };
        let ino = self.vino(child);
        self.virt_getattr(ino)
    }

    pub(super) fn virt_getattr(&self, ino: Ino) -> FsResult<Attr> {
        let t0 = self.mounted_ns;
        Ok(match self.vnode(ino)? {
            VNode::Root
            | VNode::History
            | VNode::At
            | VNode::HistDir { .. }
            | VNode::Changes
            | VNode::ChangesSince => dir_attr(ino, t0),
            VNode::ChangeLines { t } => {
                let feed = self.feed(t);
                let f = feed.lock().unwrap_or_else(|p| p.into_inner());
                file_attr(ino, f.text.len() as u64, f.last_ns.max(t0))
            }
            VNode::AtTime { t } => dir_attr(ino, t),
            VNode::Whoami => file_attr(ino, self.whoami().len() as u64, t0),
            VNode::HistFile { file } => {
                let last = self.db.read(|tx| tx.versions_of(file))?.pop();
                dir_attr(ino, last.map_or(t0, |v| v.at_ns))
            }
            VNode::Version { version, .. } => {
                let v = self.db.read(|tx| tx.version(version))?;
                file_attr(ino, v.size, v.at_ns)
            }
            VNode::AtNode { t, store, path } => {
                let real = *self.tree(store, t)?.get(&path).ok_or(FsError::NotFound)?;
                let (row, v) = self.db.read(|tx| {
                    let row = tx.inode(real)?.ok_or(FsError::NotFound)?;
                    Ok::<_, FsError>((row, version_at(tx, real, t)?))
                })?;
                let mut a = Attr::from(&row);
                a.ino = ino;
                a.perm &= 0o555;
                a.nlink = a.nlink.max(1);
                if row.kind == NodeKind::File {
                    a.size = v.as_ref().map_or(0, |v| v.size);
                    a.mtime_ns = v.as_ref().map_or(row.crtime_ns, |v| v.at_ns);
                }
                a
            }
        })
    }

    pub(super) fn virt_list(&self, ino: Ino) -> FsResult<Vec<DirEntry>> {
        let node = self.vnode(ino)?;
        let mut out = DirEntry::dots(ino, ino);
        let mut add = |node: VNode, kind: NodeKind, name: Vec<u8>| {
            let ino = self.vino(node);
            out.push(DirEntry { ino, kind, name });
        };
        match node {
            VNode::Root => {
                add(VNode::Whoami, NodeKind::File, b"whoami".to_vec());
                add(VNode::History, NodeKind::Dir, b"history".to_vec());
                add(VNode::At, NodeKind::Dir, b"at".to_vec());
                add(VNode::Changes, NodeKind::Dir, b"changes".to_vec());
            }
            VNode::Changes => {
                let live = VNode::ChangeLines { t: self.mounted_ns };
                add(live, NodeKind::File, b"live".to_vec());
                add(VNode::ChangesSince, NodeKind::Dir, b"since".to_vec());
            }
            VNode::ChangesSince => {}
            VNode::History => {
                for a in &self.attached {
                    let n = VNode::HistDir {
                        store: a.store.id,
                        dir: a.store.root,
                    };
                    add(n, NodeKind::Dir, a.store.name.as_bytes().to_vec());
                }
            }
            VNode::HistDir { store, dir } => {
                for (name, child, kind) in self.db.read(|tx| tx.children(dir))? {
                    match kind {
                        NodeKind::Dir => add(VNode::HistDir { store, dir: child }, kind, name),
                        NodeKind::File => add(VNode::HistFile { file: child }, NodeKind::Dir, name),
                        _ => {}
                    }
                }
            }
            VNode::HistFile { file } => {
                for v in self.db.read(|tx| tx.versions_of(file))? {
                    let name = format!("v{}", v.id.0).into_bytes();
                    add(
                        VNode::Version {
                            file,
                            version: v.id,
                        },
                        NodeKind::File,
                        name,
                    );
                }
            }
            VNode::At => {}
            VNode::AtTime { t } => {
                for a in &self.attached {
                    if !self.tree(a.store.id, t)?.is_empty() {
                        let n = VNode::AtNode {
                            t,
                            store: a.store.id,
                            path: String::new(),
                        };
                        add(n, NodeKind::Dir, a.store.name.as_bytes().to_vec());
                    }
                }
            }
            VNode::AtNode { t, store, path } => {
                let tree = self.tree(store, t)?;
                let prefix = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}/")
                };
                let kids: Vec<(String, Ino)> = tree
                    .range(prefix.clone()..)
                    .take_while(|(p, _)| p.starts_with(&prefix))
                    .filter(|(p, _)| !p.is_empty() && !p[prefix.len()..].contains('/'))
                    .map(|(p, i)| (p.clone(), *i))
                    .collect();
                for (p, real) in kids {
                    let kind = self
                        .db
                        .read(|tx| tx.inode(real))?
                        .map_or(NodeKind::File, |r| r.kind);
                    let name = p.as_bytes()[prefix.len()..].to_vec();
                    add(VNode::AtNode { t, store, path: p }, kind, name);
                }
            }
            VNode::Whoami | VNode::Version { .. } | VNode::ChangeLines { .. } => {
                return Err(FsError::NotDir)
            }
        }
        Ok(out)
    }

    fn whoami(&self) -> String {
        let stores: Vec<String> = self
            .attached
            .iter()
            .map(|a| {
                format!(
                    "{} ({})",
                    a.store.name,
                    if a.read_only { "ro" } else { "rw" }
                )
            })
            .collect();
        format!(
            "agent: {}\nsession: {}\nuser: {}\nstores: {}\n",
            self.who.agent,
            self.who.session,
            self.who.user.as_deref().unwrap_or("-"),
            stores.join(", ")
        )
    }

    /// The bytes of a virtual file.
    fn virt_content(&self, ino: Ino) -> FsResult<Vec<u8>> {
        let read_version = |v: VersionId| {
            self.db.read(|tx| {
                let ext = tx.extents(v)?;
                tx.read_extents(&ext, 0, ext.size())
            })
        };
        match self.vnode(ino)? {
            VNode::Whoami => Ok(self.whoami().into_bytes()),
            VNode::Version { version, .. } => Ok(read_version(version)?),
            VNode::AtNode { t, store, path } => {
                let real = *self.tree(store, t)?.get(&path).ok_or(FsError::NotFound)?;
                match self.db.read(|tx| version_at(tx, real, t))? {
                    Some(v) => Ok(read_version(v.id)?),
                    None => Ok(Vec::new()),
                }
            }
            _ => Err(FsError::IsDir),
        }
    }

    /// A past symlink's target (targets never change, so the current one).
    pub(super) fn virt_readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        match self.vnode(ino)? {
            VNode::AtNode { t, store, path } => {
                let real = *self.tree(store, t)?.get(&path).ok_or(FsError::NotFound)?;
                self.readlink(real)
            }
            _ => Err(FsError::Invalid("not a symlink")),
        }
    }

    /// Whether a virtual file grows while open (a change feed): the kernel
    /// must then neither cache its pages nor trust an old size.
    pub(super) fn virt_is_live(&self, ino: Ino) -> bool {
        matches!(self.vnode(ino), Ok(VNode::ChangeLines { .. }))
    }

    /// The change feed from `t` on, read up to now.
    fn feed(&self, t: i64) -> Arc<Mutex<Feed>> {
        let feed = {
            let mut feeds = self.virt.feeds.lock().unwrap_or_else(|p| p.into_inner());
            if feeds.len() >= 64 && !feeds.contains_key(&t) {
                feeds.clear();
            }
            feeds
                .entry(t)
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Feed {
                        since: t,
                        text: Vec::new(),
                        after: 0,
                        last_ns: 0,
                    }))
                })
                .clone()
        };
        {
            let mut f = feed.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.refresh_feed(&mut f) {
                // The lines read so far stay readable; the next read tries again.
                tracing::warn!(error = %e, "cannot read the change feed for .memfs/changes");
            }
        }
        feed
    }

    /// Appends the lines of the changes to the attached stores after the
    /// last one read (from its start on, the first time).
    fn refresh_feed(&self, f: &mut Feed) -> FsResult<()> {
        const PAGE: u64 = 5000;
        let stores: Vec<StoreId> = self.attached.iter().map(|a| a.store.id).collect();
        loop {
            let filter = AuditFilter {
                stores: Some(stores.clone()),
                since_ns: (f.after == 0).then_some(f.since),
                after_id: (f.after > 0).then_some(f.after),
                ascending: true,
                limit: Some(PAGE),
                ..Default::default()
            };
            let entries = self.db.read(|tx| tx.audit_entries(&filter))?;
            for e in &entries {
                f.text.extend_from_slice(crate::changes::line(e).as_bytes());
                f.after = e.id.0;
                f.last_ns = e.at_ns;
            }
            if (entries.len() as u64) < PAGE {
                return Ok(());
            }
        }
    }

    /// Opens a virtual file (read-only): its content is read once, here (a
    /// change feed's grows as it is read).
    pub(super) fn virt_open(&self, ino: Ino, write: bool) -> FsResult<u64> {
        if write {
            return Err(FsError::ReadOnly(".memfs is read-only"));
        }
        if let VNode::ChangeLines { t } = self.vnode(ino)? {
            let fh = self.new_fh();
            let feed = self.feed(t);
            self.virt
                .feed_handles
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(fh, feed);
            return Ok(fh);
        }
        let data = Arc::new(self.virt_content(ino)?);
        let fh = self.new_fh();
        self.virt
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fh, data);
        Ok(fh)
    }

    /// Reads from a virtual file handle; `None` if `fh` is not one.
    pub(super) fn virt_read(&self, fh: u64, offset: u64, size: u32) -> Option<Vec<u8>> {
        let feed = self
            .virt
            .feed_handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh)
            .cloned();
        if let Some(feed) = feed {
            let mut f = feed.lock().unwrap_or_else(|p| p.into_inner());
            if offset.saturating_add(u64::from(size)) > f.text.len() as u64 {
                if let Err(e) = self.refresh_feed(&mut f) {
                    tracing::warn!(error = %e, "cannot read the change feed for .memfs/changes");
                }
            }
            let start = (offset as usize).min(f.text.len());
            let end = start.saturating_add(size as usize).min(f.text.len());
            return Some(f.text[start..end].to_vec());
        }
        let handles = self.virt.handles.lock().unwrap_or_else(|p| p.into_inner());
        let data = handles.get(&fh)?;
        let start = (offset as usize).min(data.len());
        let end = start.saturating_add(size as usize).min(data.len());
        Some(data[start..end].to_vec())
    }

    /// Forgets a virtual file handle; returns whether `fh` was one.
    pub(super) fn virt_release(&self, fh: u64) -> bool {
        let feed = self
            .virt
            .feed_handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh)
            .is_some();
        feed || self
            .virt
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh)
            .is_some()
    }

    pub(super) fn virt_has_handle(&self, fh: u64) -> bool {
        self.virt
            .feed_handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&fh)
            || self
                .virt
                .handles
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&fh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Attached, Expect, FsOptions};
    use crate::ids::Identity;
    use crate::store::{Db, Scope};

    /// Reads a virtual file to its end, through a handle as the kernel would.
    fn read_to_end(fs: &MemFs, fh: u64, from: u64) -> String {
        let mut out = Vec::new();
        loop {
            let d = fs
                .virt_read(fh, from + out.len() as u64, 4096)
                .expect("a virtual handle");
            if d.is_empty() {
                return String::from_utf8(out).unwrap();
            }
            out.extend_from_slice(&d);
        }
    }

    /// What one agent writes shows up, attributed, in another agent's
    /// `.memfs/changes/live`, also after that file was opened (`tail -f`);
    /// `.memfs/changes/since/TIME` starts at TIME; other stores' changes and
    /// content never show.
    #[test]
    fn other_agents_changes_appear_in_the_change_files() {
        let db = Arc::new(Db::open_in_memory().unwrap());
        let op = Identity::new("op", "op", None);
        let (kb, hidden) = db
            .write(|tx| {
                let kb = tx.create_store("kb", Scope::Org, None, "", &op, 1)?;
                let hidden = tx.create_store("hidden", Scope::Org, None, "", &op, 1)?;
                Ok::<_, crate::error::StoreError>((kb, hidden))
            })
            .unwrap();
        let mount = |agent: &str, session: &str, stores: Vec<crate::store::StoreRow>| {
            let fs = MemFs::new(
                db.clone(),
                Identity::new(agent, session, None),
                stores
                    .into_iter()
                    .map(|s| Attached::plain(s, false))
                    .collect(),
                FsOptions::default(),
            );
            fs.register().unwrap();
            fs
        };
        let reader = mount("reader", "r-1", vec![kb.clone()]);
        let writer = mount("scout", "s-7", vec![kb.clone(), hidden.clone()]);
        writer
            .put_file(kb.id, "found/api.md", b"SECRET-CONTENT", Expect::Any)
            .unwrap();
        writer
            .put_file(hidden.id, "elsewhere.md", b"x", Expect::Any)
            .unwrap();

        let dir = reader.virt_lookup(Ino::ROOT, MEMFS_DIR).unwrap().ino;
        let changes = reader.virt_lookup(dir, b"changes").unwrap().ino;
        let names: Vec<Vec<u8>> = reader
            .virt_list(changes)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.contains(&b"live".to_vec()) && names.contains(&b"since".to_vec()));
        let live = reader.virt_lookup(changes, b"live").unwrap();
        assert!(reader.virt_is_live(live.ino));
        let fh = reader.virt_open(live.ino, false).unwrap();
        let text = read_to_end(&reader, fh, 0);
        assert!(
            text.contains("\tcreate\tkb/found/api.md\tagent=scout\tsession=s-7\n"),
            "{text}"
        );
        assert!(
            !text.contains("SECRET") && !text.contains("elsewhere"),
            "{text}"
        );
        assert_eq!(live.size, text.len() as u64);

        // Still open: a later change is read past the old end, as tail -f does.
        writer
            .put_file(kb.id, "found/api.md", b"v2", Expect::Any)
            .unwrap();
        let more = read_to_end(&reader, fh, text.len() as u64);
        assert!(
            more.starts_with('2') && more.contains("\twrite\tkb/found/api.md\t"),
            "{more}"
        );
        assert!(reader.virt_release(fh));
        assert!(reader.virt_getattr(live.ino).unwrap().size > text.len() as u64);

        let since = reader.virt_lookup(changes, b"since").unwrap().ino;
        let future = reader.virt_lookup(since, b"2200-01-01T00:00:00Z").unwrap();
        assert_eq!(future.size, 0);
        let past = reader.virt_lookup(since, b"1h").unwrap();
        assert!(past.size >= text.len() as u64);
        assert!(reader.virt_open(past.ino, true).is_err());
    }
}

//! Writing a store to an archive, from one read transaction (a consistent
//! snapshot, taken beside running daemons). Content streams chunk by chunk from
//! the database into the tar; every version is re-hashed on the way out, so a
//! corrupt database fails the export instead of producing a bad archive.

use super::archive::{HashingReader, MemberMeta, Writer};
use super::progress::Progress;
use super::{
    empty_hash, AuditRecord, Counts, HeadVersion, InterchangeError, Kind, Manifest, NodeRecord,
    Result, StoreInfo, VersionRecord, AUDIT, FILES, FORMAT_NAME, FORMAT_VERSION, HEAD_DIR,
    MANIFEST, UNLINKED, VERSIONS, VERSIONS_DIR,
};
use crate::ids::{now_ns, Ino, VersionId};
use crate::store::{AuditFilter, Db, Extents, InodeRow, NodeKind, StoreRow, Txn, VersionRow};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

/// A store's head namespace: path ("" for the root) -> inode, in path order.
pub type Tree = BTreeMap<String, Ino>;

/// Everything about a store the exports (archive and git) read, from one snapshot.
pub struct Snapshot {
    pub store: StoreRow,
    pub tree: Tree,
    pub inodes: BTreeMap<Ino, InodeRow>,
    /// Head version rows, by inode.
    pub heads: BTreeMap<Ino, VersionRow>,
    /// Every version of every inode of the store, by id (history only).
    pub versions: BTreeMap<VersionId, VersionRow>,
    /// Every audit entry of the store, oldest first (history only).
    pub audit: Vec<crate::store::AuditEntry>,
}

/// The store's current namespace, refusing names that are not UTF-8 (the
/// archive's metadata is JSON).
fn walk(tx: &Txn<'_>, store: &StoreRow) -> Result<Tree> {
    crate::history::walk_tree(tx, store, |dir, name| {
        String::from_utf8(name).map_err(|_| {
            InterchangeError::Invalid(format!(
                "'{dir}' holds a name that is not UTF-8; rename it before exporting"
            ))
        })
    })
}

/// Reads what an export needs of store `name`.
pub fn snapshot(tx: &Txn<'_>, name: &str, history: bool) -> Result<Snapshot> {
    let Some(store) = tx.store_by_name(name)? else {
        return Err(InterchangeError::Invalid(format!(
            "no store named '{name}'"
        )));
    };
    let tree = walk(tx, &store)?;
    let mut inos: BTreeSet<Ino> = tree.values().copied().collect();
    let mut audit = Vec::new();
    if history {
        audit = tx.audit_entries(&AuditFilter {
            store: Some(store.id),
            ascending: true,
            ..Default::default()
        })?;
        // Every inode of a store was created by an audited change, so the log
        // names the unlinked ones too.
        inos.extend(audit.iter().filter_map(|e| e.ino.map(Ino)));
    }
    let mut inodes = BTreeMap::new();
    let mut heads = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for ino in inos {
        let Some(row) = tx.inode(ino)? else { continue };
        if row.store != Some(store.id) {
            continue;
        }
        if let Some(h) = row.head {
            heads.insert(ino, tx.version(h)?);
        }
        if history && row.kind == NodeKind::File {
            for v in tx.versions_of(ino)? {
                // A redacted version has no content to carry: it stays behind,
                // as it would in any copy made after the redaction.
                if !tx.version_redacted(v.id)? {
                    versions.insert(v.id, v);
                }
            }
        }
        inodes.insert(ino, row);
    }
    Ok(Snapshot {
        store,
        tree,
        inodes,
        heads,
        versions,
        audit,
    })
}

pub fn kind_of(k: NodeKind) -> Kind {
    match k {
        NodeKind::File => Kind::File,
        NodeKind::Dir => Kind::Dir,
        NodeKind::Symlink => Kind::Symlink,
        NodeKind::Fifo => Kind::Fifo,
        NodeKind::Socket => Kind::Socket,
        NodeKind::CharDev => Kind::Chardev,
        NodeKind::BlockDev => Kind::Blockdev,
    }
}

fn node_record(snap: &Snapshot, path: Option<&str>, row: &InodeRow) -> NodeRecord {
    let head = snap.heads.get(&row.ino);
    let file = row.kind == NodeKind::File;
    NodeRecord {
        path: path.map(str::to_string),
        kind: kind_of(row.kind),
        ino: row.ino.0,
        mode: format!("{:o}", row.perm),
        uid: row.uid,
        gid: row.gid,
        nlink: row.nlink,
        size: row.size,
        hash: file.then(|| head.map_or_else(empty_hash, |v| v.hash.clone())),
        mtime_ns: row.mtime_ns,
        atime_ns: row.atime_ns,
        ctime_ns: row.ctime_ns,
        crtime_ns: row.crtime_ns,
        target: row
            .target
            .as_ref()
            .filter(|_| row.kind == NodeKind::Symlink)
            .map(|t| String::from_utf8_lossy(t).into_owned()),
        rdev: row.rdev,
        version: head.filter(|_| file).map(|v| HeadVersion {
            id: v.id.0,
            op: v.op.clone(),
            path: v.path.clone(),
            agent: v.agent.clone(),
            session: v.session.clone(),
            user: v.user.clone(),
            at_ns: v.at_ns,
        }),
    }
}

fn version_record(v: &VersionRow) -> VersionRecord {
    VersionRecord {
        id: v.id.0,
        ino: v.ino.0,
        size: v.size,
        hash: v.hash.clone(),
        op: v.op.clone(),
        path: v.path.clone(),
        agent: v.agent.clone(),
        session: v.session.clone(),
        user: v.user.clone(),
        at_ns: v.at_ns,
        at: crate::timefmt::rfc3339(v.at_ns),
        conflict: v.op == "conflict",
    }
}

fn audit_record(e: &crate::store::AuditEntry) -> AuditRecord {
    AuditRecord {
        id: e.id.0,
        at_ns: e.at_ns,
        at: e.at.clone(),
        op: e.op.clone(),
        path: e.path.clone(),
        path2: e.path2.clone(),
        ino: e.ino,
        version: e.version,
        agent: e.agent.clone(),
        session: e.session.clone(),
        user: e.user.clone(),
        detail: e.detail.clone(),
        hash: e.hash.clone(),
    }
}

/// Reads a version's content chunk by chunk, straight from the database.
pub struct ContentReader<'t, 'c> {
    tx: &'t Txn<'c>,
    ext: Extents,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    /// Zero bytes still to produce for a hole.
    zeros: u64,
}

impl<'t, 'c> ContentReader<'t, 'c> {
    pub fn new(tx: &'t Txn<'c>, version: Option<VersionId>) -> Result<Self> {
        let ext = match version {
            Some(v) => tx.extents(v)?,
            None => Extents::new(),
        };
        Ok(ContentReader {
            tx,
            ext,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            zeros: 0,
        })
    }
}

impl Read for ContentReader<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.zeros > 0 {
                let n = (self.zeros.min(out.len() as u64)) as usize;
                out[..n].fill(0);
                self.zeros -= n as u64;
                return Ok(n);
            }
            if self.pos < self.buf.len() {
                let n = (self.buf.len() - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            let Some(e) = self.ext.items().get(self.next).copied() else {
                return Ok(0);
            };
            self.next += 1;
            match e.chunk {
                None => self.zeros = e.len,
                Some(c) => {
                    let mut data = self.tx.chunk_data(c).map_err(io::Error::other)?;
                    if (data.len() as u64) < e.len {
                        return Err(io::Error::other(format!("chunk {c} is too short")));
                    }
                    data.truncate(e.len as usize);
                    self.buf = data;
                    self.pos = 0;
                }
            }
        }
    }
}

/// Writes one version's content as member `name`, checking it against its hash.
fn write_content<W: Write>(
    tx: &Txn<'_>,
    w: &mut Writer<W>,
    name: &str,
    v: Option<&VersionRow>,
    m: &MemberMeta,
) -> Result<()> {
    let (size, want) = v.map_or_else(|| (0, empty_hash()), |v| (v.size, v.hash.clone()));
    let mut r = HashingReader::new(ContentReader::new(tx, v.map(|v| v.id))?);
    w.file(name, size, m, &mut r)?;
    let (n, got) = r.result();
    if n != size || got != want {
        return Err(InterchangeError::Invalid(format!(
            "the database's content for {name} does not match its recorded size or hash; run `memfsctl fsck`"
        )));
    }
    Ok(())
}

fn meta_of(row: &InodeRow) -> MemberMeta {
    MemberMeta {
        mode: u32::from(row.perm),
        uid: u64::from(row.uid),
        gid: u64::from(row.gid),
        mtime: row.mtime_ns.div_euclid(1_000_000_000),
    }
}

fn jsonl<T: serde::Serialize>(items: impl Iterator<Item = T>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, &item).map_err(io::Error::other)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes store `name` as an archive to `out`. Returns the manifest written.
pub fn write_archive<W: Write>(
    db: &Db,
    name: &str,
    history: bool,
    out: W,
    progress: &mut Progress,
) -> Result<(Manifest, W)> {
    db.read(|tx| {
        let snap = snapshot(tx, name, history)?;
        let now = now_ns();
        let files: Vec<NodeRecord> = snap
            .tree
            .iter()
            .filter_map(|(p, ino)| snap.inodes.get(ino).map(|r| node_record(&snap, Some(p), r)))
            .collect();
        let linked: BTreeSet<Ino> = snap.tree.values().copied().collect();
        let unlinked: Vec<NodeRecord> = snap
            .inodes
            .values()
            .filter(|r| !linked.contains(&r.ino))
            .map(|r| node_record(&snap, None, r))
            .collect();
        let count = |k: Kind| files.iter().filter(|f| f.kind == k).count() as u64;
        let bytes = linked
            .iter()
            .filter_map(|i| snap.inodes.get(i))
            .filter(|r| r.kind == NodeKind::File)
            .map(|r| r.size)
            .sum();
        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            store: StoreInfo {
                name: snap.store.name.clone(),
                scope: snap.store.scope.as_str().into(),
                owner: snap.store.owner.clone(),
                description: snap.store.description.clone(),
                created_ns: snap.store.created_ns,
                archived: snap.store.archived,
            },
            exported_at: crate::timefmt::rfc3339(now),
            exported_at_ns: now,
            memfs_version: env!("CARGO_PKG_VERSION").into(),
            history,
            counts: Counts {
                paths: files.len() as u64,
                files: count(Kind::File),
                dirs: count(Kind::Dir),
                symlinks: count(Kind::Symlink),
                bytes,
                versions: snap.versions.len() as u64,
                unlinked: if history { unlinked.len() as u64 } else { 0 },
                audit_entries: snap.audit.len() as u64,
            },
        };
        let plain = MemberMeta::plain(now.div_euclid(1_000_000_000));
        let mut w = Writer::new(out);
        let mut text = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        text.push(b'\n');
        w.file(MANIFEST, text.len() as u64, &plain, text.as_slice())?;
        let put = |w: &mut Writer<W>, name: &str, data: Vec<u8>| {
            w.file(name, data.len() as u64, &plain, data.as_slice())
        };
        put(&mut w, FILES, jsonl(files.iter())?)?;
        if history {
            put(&mut w, UNLINKED, jsonl(unlinked.iter())?)?;
            put(
                &mut w,
                VERSIONS,
                jsonl(snap.versions.values().map(version_record))?,
            )?;
            // Entries about a redacted version keep who and when, not the version.
            let audit = snap.audit.iter().map(|e| {
                let mut r = audit_record(e);
                if r.version
                    .is_some_and(|v| !snap.versions.contains_key(&VersionId(v)))
                {
                    r.version = None;
                }
                r
            });
            put(&mut w, AUDIT, jsonl(audit)?)?;
        }
        // Version contents, each distinct content once; repeats are hard links.
        let mut by_hash: BTreeMap<&str, String> = BTreeMap::new();
        for v in snap.versions.values() {
            let name = format!("{VERSIONS_DIR}{}", v.id.0);
            let m = snap.inodes.get(&v.ino).map_or(plain, meta_of);
            match by_hash.get(v.hash.as_str()) {
                Some(first) => w.hard_link(&name, first, &m)?,
                None => {
                    write_content(tx, &mut w, &name, Some(v), &m)?;
                    by_hash.insert(&v.hash, name);
                }
            }
            progress.add(v.size);
        }
        // The head tree, as `tar x` would recreate it.
        let mut first_name: BTreeMap<Ino, String> = BTreeMap::new();
        for (path, ino) in snap.tree.iter().filter(|(p, _)| !p.is_empty()) {
            let Some(row) = snap.inodes.get(ino) else {
                continue;
            };
            let m = meta_of(row);
            let name = format!("{HEAD_DIR}{path}");
            match row.kind {
                NodeKind::Dir => w.dir(&format!("{name}/"), &m)?,
                NodeKind::Symlink => {
                    let t = row.target.as_deref().unwrap_or_default();
                    w.symlink(&name, &String::from_utf8_lossy(t), &m)?
                }
                NodeKind::File => {
                    let head = snap.heads.get(ino);
                    if let Some(first) = first_name.get(ino) {
                        w.hard_link(&name, first, &m)?;
                    } else if let (true, Some(v)) = (history, head) {
                        w.hard_link(&name, &format!("{VERSIONS_DIR}{}", v.id.0), &m)?;
                        first_name.insert(*ino, name);
                    } else {
                        write_content(tx, &mut w, &name, head, &m)?;
                        first_name.insert(*ino, name);
                    }
                    progress.add(row.size);
                }
                // Fifos and sockets live in files.jsonl only.
                _ => {}
            }
        }
        let out = w.finish()?;
        Ok((manifest, out))
    })
}

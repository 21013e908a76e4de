//! Reading an archive into a new store, all or nothing.
//!
//! The metadata members come first in an archive; they are read and checked in
//! full (`validate`) before the database is touched. Then one `Db::write`
//! transaction creates the store, streams every content member into chunks
//! (checking each against its recorded size and hash), and builds inodes,
//! versions, heads, directory entries and the replayed audit log. Any refusal
//! rolls the whole transaction back: nothing is created.

use super::archive::HashingReader;
use super::progress::Progress;
use super::validate::{self, classify_member, Limits, Member, Metadata};
use super::{
    refuse, AuditRecord, InterchangeError, Kind, Manifest, NodeRecord, Result, VersionRecord,
    AUDIT, FILES, MANIFEST, UNLINKED, VERSIONS,
};
use crate::config::Config;
use crate::ids::{now_ns, Identity, Ino, StoreId, VersionId};
use crate::store::{chunk_reader, Change, Db, Extent, NewInode, NewVersion, NodeKind, Scope, Txn};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// What an import created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    pub store: String,
    pub from_store: String,
    pub history: bool,
    pub paths: u64,
    pub versions: u64,
    pub audit_entries: u64,
    pub content_bytes: u64,
}

/// Content read from one member: its size, hash and where its chunks went.
#[derive(Debug, Clone)]
struct Content {
    size: u64,
    hash: String,
    extents: Vec<Extent>,
}

fn read_err(e: std::io::Error) -> InterchangeError {
    InterchangeError::Refused(format!("cannot read the archive: {e}"))
}

fn parse_jsonl<T: serde::de::DeserializeOwned>(member: &str, r: impl Read) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, line) in BufReader::new(r).lines().enumerate() {
        let line = line.map_err(read_err)?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(v) => out.push(v),
            Err(e) => return refuse(format!("{member} line {}: {e}", i + 1)),
        }
    }
    Ok(out)
}

/// The limits the new store `name` gets from the configuration.
pub fn limits_for(config: &Config, name: &str) -> Limits {
    let quota = config
        .store(name)
        .map(|d| d.quota.clone())
        .unwrap_or_default();
    Limits {
        max_file_bytes: quota
            .max_file_bytes
            .map_or(config.daemon.max_file_bytes, |q| {
                q.min(config.daemon.max_file_bytes)
            }),
        max_bytes: quota.max_bytes,
        max_files: quota.max_files,
    }
}

/// Imports the archive read from `source` as a new store (named `as_name`, or as
/// in the archive). `who` is recorded as the importer.
pub fn import_archive(
    db: &Db,
    config: &Config,
    source: impl Read,
    as_name: Option<&str>,
    who: &Identity,
    progress: &mut Progress,
) -> Result<Imported> {
    let mut archive = tar::Archive::new(source);
    let mut entries = archive.entries().map_err(read_err)?;

    // The metadata members, up to the first content member.
    let mut manifest: Option<Manifest> = None;
    let (mut files, mut unlinked, mut versions, mut audit) = (None, None, None, None);
    let mut pending = None;
    for entry in entries.by_ref() {
        let mut entry = entry.map_err(read_err)?;
        let member = classify_member(&entry.path_bytes())?;
        let Member::Meta(name) = member else {
            pending = Some((entry, member));
            break;
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return refuse(format!("member {name} is not a regular file"));
        }
        if manifest.is_none() && name != MANIFEST {
            return refuse(format!(
                "the first member is '{name}', not {MANIFEST}: not a memfs export"
            ));
        }
        let dup = match name {
            MANIFEST => {
                let mut text = Vec::new();
                entry.read_to_end(&mut text).map_err(read_err)?;
                let m: Manifest = serde_json::from_slice(&text)
                    .map_err(|e| InterchangeError::Refused(format!("{MANIFEST}: {e}")))?;
                manifest.replace(m).is_some()
            }
            FILES => files.replace(parse_jsonl(name, &mut entry)?).is_some(),
            UNLINKED => unlinked.replace(parse_jsonl(name, &mut entry)?).is_some(),
            VERSIONS => versions.replace(parse_jsonl(name, &mut entry)?).is_some(),
            AUDIT => audit.replace(parse_jsonl(name, &mut entry)?).is_some(),
            _ => return refuse(format!("unexpected member {name}")),
        };
        if dup {
            return refuse(format!("member {name} appears twice"));
        }
    }
    let Some(manifest) = manifest else {
        return refuse(format!("no {MANIFEST}: not a memfs export (or empty)"));
    };
    let Some(files) = files else {
        return refuse(format!("{FILES} is missing (it must precede the content)"));
    };
    let history = manifest.history;
    if history && (versions.is_none() || unlinked.is_none() || audit.is_none()) {
        return refuse(format!(
            "an archive with history needs {VERSIONS}, {UNLINKED} and {AUDIT} before the content"
        ));
    }
    let meta = Metadata {
        manifest,
        files,
        unlinked: unlinked.unwrap_or_default(),
        versions: versions.unwrap_or_default(),
        audit: audit.unwrap_or_default(),
    };

    let name = as_name.unwrap_or(&meta.manifest.store.name).to_string();
    crate::store::validate_store_name(&name)
        .map_err(|e| InterchangeError::Invalid(e.to_string()))?;
    if db.read(|tx| tx.store_by_name(&name))?.is_some() {
        return Err(InterchangeError::Invalid(format!(
            "a store named '{name}' already exists; import under another name with --as NAME"
        )));
    }
    validate::check_metadata(&meta, &limits_for(config, &name))?;

    db.write(|tx| {
        let info = &meta.manifest.store;
        let scope = Scope::parse(&info.scope)?;
        let now = now_ns();
        let store = tx.create_store(
            &name,
            scope,
            info.owner.as_deref(),
            &info.description,
            who,
            now,
        )?;
        tx.set_store_created_ns(store.id, info.created_ns.min(now))?;
        let mut ingest = Ingest {
            tx,
            store: store.id,
            by_member: BTreeMap::new(),
            by_path: BTreeMap::new(),
            by_version: BTreeMap::new(),
            bytes: 0,
            progress,
        };
        let files_by_path: BTreeMap<&str, &NodeRecord> = meta
            .files
            .iter()
            .filter_map(|r| r.path.as_deref().map(|p| (p, r)))
            .collect();
        let versions_by_id: BTreeMap<i64, &VersionRecord> =
            meta.versions.iter().map(|v| (v.id, v)).collect();
        if let Some((entry, member)) = pending.take() {
            ingest.member(entry, member, &files_by_path, &versions_by_id)?;
        }
        for entry in entries.by_ref() {
            let entry = entry.map_err(read_err)?;
            let member = classify_member(&entry.path_bytes())?;
            ingest.member(entry, member, &files_by_path, &versions_by_id)?;
        }
        for (path, r) in &files_by_path {
            if r.kind == Kind::File && !ingest.by_path.contains_key(*path) {
                return refuse(format!("no content member for '{path}'"));
            }
        }
        for id in versions_by_id.keys() {
            if !ingest.by_version.contains_key(id) {
                return refuse(format!("no content member for version {id}"));
            }
        }
        let bytes = ingest.bytes;
        let (by_path, by_version) = (ingest.by_path, ingest.by_version);
        build(
            tx,
            &meta,
            store.id,
            store.root,
            &by_path,
            &by_version,
            who,
            now,
        )?;
        Ok(Imported {
            store: name.clone(),
            from_store: meta.manifest.store.name.clone(),
            history,
            paths: meta.files.len() as u64,
            versions: if history {
                meta.versions.len() as u64
            } else {
                by_path.len() as u64
            },
            audit_entries: meta.audit.len() as u64,
            content_bytes: bytes,
        })
    })
}

/// Content members as they stream in.
struct Ingest<'a, 't, 'c> {
    tx: &'t Txn<'c>,
    store: StoreId,
    /// Every content member read so far, by its name (hard links resolve here).
    by_member: BTreeMap<String, Content>,
    by_path: BTreeMap<String, Content>,
    by_version: BTreeMap<i64, Content>,
    bytes: u64,
    progress: &'a mut Progress,
}

impl Ingest<'_, '_, '_> {
    fn member<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        member: Member,
        files: &BTreeMap<&str, &NodeRecord>,
        versions: &BTreeMap<i64, &VersionRecord>,
    ) -> Result<()> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let ty = entry.header().entry_type();
        let (size, hash) = match &member {
            Member::Meta(m) => return refuse(format!("member {m} comes after content members")),
            Member::Head(path) if path.is_empty() => {
                return if ty == tar::EntryType::Directory {
                    Ok(())
                } else {
                    refuse(format!("member '{name}' must be a directory"))
                };
            }
            Member::Head(path) => {
                let Some(r) = files.get(path.as_str()) else {
                    return refuse(format!("member '{name}': '{path}' is not in {FILES}"));
                };
                match (r.kind, ty) {
                    (Kind::Dir, tar::EntryType::Directory) => return Ok(()),
                    (Kind::Symlink, tar::EntryType::Symlink) => {
                        let link = entry.link_name_bytes().unwrap_or_default();
                        return if Some(link.as_ref()) == r.target.as_deref().map(str::as_bytes) {
                            Ok(())
                        } else {
                            refuse(format!(
                                "member '{name}': symlink target differs from {FILES}"
                            ))
                        };
                    }
                    (Kind::File, tar::EntryType::Regular | tar::EntryType::Link) => {}
                    _ => {
                        return refuse(format!(
                            "member '{name}' is a {ty:?} but {FILES} says {:?}",
                            r.kind
                        ))
                    }
                }
                if self.by_path.contains_key(path) {
                    return refuse(format!("member '{name}' appears twice"));
                }
                (r.size, r.hash.clone().unwrap_or_default())
            }
            Member::Version(id) => {
                let Some(v) = versions.get(id) else {
                    return refuse(format!(
                        "member '{name}': version {id} is not in {VERSIONS}"
                    ));
                };
                if !matches!(ty, tar::EntryType::Regular | tar::EntryType::Link) {
                    return refuse(format!(
                        "member '{name}' must be a regular file or hard link"
                    ));
                }
                if self.by_version.contains_key(id) {
                    return refuse(format!("member '{name}' appears twice"));
                }
                (v.size, v.hash.clone())
            }
        };
        let content = if ty == tar::EntryType::Link {
            let to =
                String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default()).into_owned();
            match self.by_member.get(&to) {
                Some(c) => c.clone(),
                None => {
                    return refuse(format!(
                        "hard link '{name}' -> '{to}' points outside the archive's earlier content"
                    ))
                }
            }
        } else {
            if entry.size() != size {
                return refuse(format!(
                    "member '{name}' holds {} bytes, but its record says {size}",
                    entry.size()
                ));
            }
            self.read_content(&name, &mut entry)?
        };
        if content.size != size || content.hash != hash {
            return refuse(format!(
                "member '{name}': content does not match the size and hash its record gives (hash mismatch)"
            ));
        }
        self.progress.add(size);
        if self
            .by_member
            .insert(name.clone(), content.clone())
            .is_some()
        {
            return refuse(format!("member '{name}' appears twice"));
        }
        match member {
            Member::Head(p) => self.by_path.insert(p, content),
            Member::Version(id) => self.by_version.insert(id, content),
            Member::Meta(_) => None,
        };
        Ok(())
    }

    /// Streams a member into content-defined chunks, hashing it on the way.
    fn read_content(&mut self, name: &str, entry: impl Read) -> Result<Content> {
        let mut r = HashingReader::new(entry);
        let mut extents = Vec::new();
        let (tx, store) = (self.tx, self.store);
        chunk_reader(&mut r, |c| {
            extents.push(tx.put_chunk(store, c)?);
            Ok(())
        })
        .map_err(|e| match e {
            crate::error::StoreError::Io(e) => {
                InterchangeError::Refused(format!("member '{name}': {e}"))
            }
            other => other.into(),
        })?;
        let (size, hash) = r.result();
        self.bytes += size;
        Ok(Content {
            size,
            hash,
            extents,
        })
    }
}

fn node_kind(k: Kind) -> NodeKind {
    match k {
        Kind::File => NodeKind::File,
        Kind::Dir => NodeKind::Dir,
        Kind::Symlink => NodeKind::Symlink,
        Kind::Fifo => NodeKind::Fifo,
        Kind::Socket => NodeKind::Socket,
        Kind::Chardev => NodeKind::CharDev,
        Kind::Blockdev => NodeKind::BlockDev,
    }
}

/// The new inode for an archive's inode number (validation made sure it exists).
fn ino_of(inos: &BTreeMap<i64, Ino>, old: i64) -> Result<Ino> {
    match inos.get(&old) {
        Some(i) => Ok(*i),
        None => refuse(format!("inode {old} is not in the archive")),
    }
}

fn ident(agent: &str, session: &str, user: Option<&str>) -> Identity {
    Identity::new(agent, session, user)
}

fn bad_hash(h: &str) -> InterchangeError {
    InterchangeError::Refused(format!("'{h}' is not a blake3 hash"))
}

/// Creates inodes, versions, heads, entries and the replayed audit log.
#[allow(clippy::too_many_arguments)]
fn build(
    tx: &Txn<'_>,
    meta: &Metadata,
    store: StoreId,
    root: Ino,
    by_path: &BTreeMap<String, Content>,
    by_version: &BTreeMap<i64, Content>,
    who: &Identity,
    now: i64,
) -> Result<()> {
    // Names per inode and subdirectories per directory give the link counts.
    let mut names: BTreeMap<i64, u32> = BTreeMap::new();
    let mut subdirs: BTreeMap<&str, u32> = BTreeMap::new();
    for r in &meta.files {
        *names.entry(r.ino).or_default() += 1;
        if let (Kind::Dir, Some(p)) = (r.kind, r.path.as_deref()) {
            if !p.is_empty() {
                let parent = p.rsplit_once('/').map_or("", |(d, _)| d);
                *subdirs.entry(parent).or_default() += 1;
            }
        }
    }
    let root_ino = meta
        .files
        .iter()
        .find(|r| r.path.as_deref() == Some(""))
        .map(|r| r.ino);
    let mut inos: BTreeMap<i64, Ino> = BTreeMap::new();
    let mut records: Vec<&NodeRecord> = Vec::new();
    for r in meta.files.iter().chain(&meta.unlinked) {
        if inos.contains_key(&r.ino) {
            continue;
        }
        records.push(r);
        let ino = if Some(r.ino) == root_ino {
            root
        } else {
            let nlink = match (r.kind, r.path.as_deref()) {
                (_, None) => 0,
                (Kind::Dir, Some(p)) => 2 + subdirs.get(p).copied().unwrap_or(0),
                _ => names.get(&r.ino).copied().unwrap_or(1),
            };
            tx.insert_inode(&NewInode {
                store,
                kind: node_kind(r.kind),
                perm: validate::parse_mode(&r.mode)?,
                uid: r.uid,
                gid: r.gid,
                rdev: r.rdev,
                nlink,
                now_ns: r.crtime_ns,
                target: r.target.as_ref().map(|t| t.as_bytes().to_vec()),
            })?
        };
        inos.insert(r.ino, ino);
    }
    // Versions, oldest first, so their new ids keep the original order.
    let mut vids: BTreeMap<i64, VersionId> = BTreeMap::new();
    if meta.manifest.history {
        for v in &meta.versions {
            let c = by_version.get(&v.id).ok_or_else(|| {
                InterchangeError::Refused(format!("no content for version {}", v.id))
            })?;
            let (id, _) = tx.insert_version(&NewVersion {
                ino: ino_of(&inos, v.ino)?,
                store,
                base: None,
                base_len: 0,
                tail: c.extents.clone(),
                base_full: None,
                hash: blake3::Hash::from_hex(&v.hash).map_err(|_| bad_hash(&v.hash))?,
                // Computed once on first use (`Txn::version_sha256`).
                sha256: None,
                op: &v.op,
                path: &v.path,
                who: &ident(&v.agent, &v.session, v.user.as_deref()),
                at_ns: v.at_ns,
            })?;
            vids.insert(v.id, id);
        }
    } else {
        for r in records.iter().filter(|r| r.kind == Kind::File) {
            let (Some(h), Some(path)) = (&r.version, r.path.as_deref()) else {
                continue;
            };
            let c = by_path
                .get(path)
                .ok_or_else(|| InterchangeError::Refused(format!("no content for '{path}'")))?;
            let hash = r.hash.as_deref().unwrap_or_default();
            let (id, _) = tx.insert_version(&NewVersion {
                ino: ino_of(&inos, r.ino)?,
                store,
                base: None,
                base_len: 0,
                tail: c.extents.clone(),
                base_full: None,
                hash: blake3::Hash::from_hex(hash).map_err(|_| bad_hash(hash))?,
                sha256: None,
                op: &h.op,
                path: &h.path,
                who: &ident(&h.agent, &h.session, h.user.as_deref()),
                at_ns: h.at_ns,
            })?;
            vids.insert(h.id, id);
        }
    }
    // Attributes and heads.
    for r in &records {
        let ino = ino_of(&inos, r.ino)?;
        let Some(mut row) = tx.inode(ino)? else {
            return Err(crate::error::StoreError::Corrupt(format!("inode {ino} vanished")).into());
        };
        row.perm = validate::parse_mode(&r.mode)?;
        row.uid = r.uid;
        row.gid = r.gid;
        row.atime_ns = r.atime_ns;
        row.mtime_ns = r.mtime_ns;
        row.ctime_ns = r.ctime_ns;
        if r.path.as_deref() == Some("") {
            // The root came with the store; its link count follows its subdirectories.
            row.nlink = 2 + subdirs.get("").copied().unwrap_or(0);
        }
        if r.kind == Kind::File {
            row.head = r.version.as_ref().and_then(|h| vids.get(&h.id).copied());
            row.size = r.size;
        }
        tx.save_inode(&row)?;
    }
    // Directory entries, parents first (a parent's path sorts before its children's).
    let mut new_of_path: BTreeMap<&str, Ino> = BTreeMap::new();
    let mut paths: Vec<(&str, i64)> = meta
        .files
        .iter()
        .filter_map(|r| r.path.as_deref().map(|p| (p, r.ino)))
        .collect();
    paths.sort();
    for (path, old) in paths {
        let ino = ino_of(&inos, old)?;
        new_of_path.insert(path, ino);
        if path.is_empty() {
            continue;
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let Some(&dir) = new_of_path.get(parent) else {
            return refuse(format!("'{path}': parent not created"));
        };
        tx.insert_dentry(dir, name.as_bytes(), ino)?;
    }
    // The audit log, replayed as new entries of this database's chain.
    for a in &meta.audit {
        replay(tx, store, a, &inos, &vids, &meta.manifest.store.name)?;
    }
    tx.record(
        who,
        now,
        &Change {
            store: Some(store),
            op: "import",
            path: Some(""),
            ino: Some(root),
            detail: Some(serde_json::json!({
                "from_store": meta.manifest.store.name,
                "exported_at": meta.manifest.exported_at,
                "format_version": meta.manifest.version,
                "history": meta.manifest.history,
                "paths": meta.files.len(),
                "versions": vids.len(),
                "audit_entries": meta.audit.len(),
            })),
            origin: Some("memfsctl"),
            ..Default::default()
        },
    )?;
    Ok(())
}

/// Detail keys that hold inode numbers or version ids of the exporting database.
const INO_KEYS: &[&str] = &["replaced_ino"];
const VERSION_KEYS: &[&str] = &[
    "replaced_version",
    "head",
    "based_on",
    "restored_version",
    "to_version",
];

fn replay(
    tx: &Txn<'_>,
    store: StoreId,
    a: &AuditRecord,
    inos: &BTreeMap<i64, Ino>,
    vids: &BTreeMap<i64, VersionId>,
    from_store: &str,
) -> Result<()> {
    let from = serde_json::json!({
        "store": from_store, "id": a.id, "hash": a.hash, "ino": a.ino, "version": a.version,
    });
    let mut detail = match a.detail.clone() {
        Some(serde_json::Value::Object(map)) => map,
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(other) => {
            let mut m = serde_json::Map::new();
            m.insert("value".into(), other);
            m
        }
    };
    // Ids of the old database mean nothing here: map them (or drop them).
    for key in INO_KEYS {
        if let Some(v) = detail.get_mut(*key) {
            *v = v
                .as_i64()
                .and_then(|i| inos.get(&i))
                .map_or(serde_json::Value::Null, |i| i.0.into());
        }
    }
    for key in VERSION_KEYS {
        if let Some(v) = detail.get_mut(*key) {
            *v = v
                .as_i64()
                .and_then(|i| vids.get(&i))
                .map_or(serde_json::Value::Null, |i| i.0.into());
        }
    }
    detail.insert("imported_from".into(), from);
    tx.record(
        &ident(&a.agent, &a.session, a.user.as_deref()),
        a.at_ns,
        &Change {
            store: Some(store),
            op: &a.op,
            path: a.path.as_deref(),
            path2: a.path2.as_deref(),
            ino: a.ino.and_then(|i| inos.get(&i).copied()),
            version: a.version.and_then(|v| vids.get(&v).copied()),
            detail: Some(serde_json::Value::Object(detail)),
            origin: Some("memfsctl"),
            ..Default::default()
        },
    )?;
    Ok(())
}

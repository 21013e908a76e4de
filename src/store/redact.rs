//! Redaction, purge and forgetting a user: removing content for good while the
//! audit log keeps who changed what and when.
//!
//! A removed version keeps its row (id, inode, op, agent, session, user, time)
//! and loses its size, hash, path and extents; `redacted_ns` says when. Versions
//! stored as deltas on it are rewritten flat first, so they read back as before.
//! Chunks no version uses any more are deleted, and chunks that only a removed
//! version used in full are cut to the prefix still in use, in place (same id),
//! so the removed bytes leave the database even when a chunk was shared.
//! Audit entries naming the removed content are sealed (see [`Txn::seal_entries`]).
//! The caller turns on `secure_delete` and cleans the files afterwards
//! ([`super::Db::scrub_files`]).

use super::content::{decode_extents, encode_extents};
use super::sql::{params, OptionalExtension};
use super::{to_i64, to_u64, Change, StoreRow, Txn};
use crate::error::{StoreError, StoreResult};
use crate::ids::{ChunkId, Identity, Ino, StoreId, VersionId};
use std::collections::{BTreeSet, HashMap};

/// The versions whose extents may name a chunk of store `?1`'s space: its
/// own and its drafts' (which share it).
const IN_DOMAIN: &str = "store_id IN (SELECT id FROM stores WHERE id = ?1 OR draft_of = ?1)";

/// What a removal did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Removal {
    /// The versions whose content is gone.
    pub versions: Vec<VersionId>,
    /// Versions that were deltas on a removed one and are now stored flat.
    pub materialized: u64,
    pub chunks_deleted: u64,
    /// Shared chunks cut to the prefix other versions still use.
    pub chunks_trimmed: u64,
    pub entries_sealed: u64,
    /// Names a purge removed from the namespace.
    pub names_removed: u64,
    /// Chunk bytes (plaintext lengths) deleted or trimmed away.
    pub chunk_bytes_freed: u64,
}

/// How a removal collects the chunks its versions leave unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collect {
    /// Privacy (redact, purge): every removed byte leaves the table, also from
    /// chunks other versions use in part (they are cut to that part).
    Erase,
    /// Retention: chunks no version uses are deleted; shared ones stay whole.
    Unused,
}

/// What `forget_user` did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Forgotten {
    pub user: String,
    pub stores: Vec<String>,
    pub versions: u64,
    pub entries_sealed: u64,
}

impl Txn<'_> {
    /// Whether a version was redacted.
    pub fn is_redacted(&self, id: VersionId) -> StoreResult<bool> {
        let r: Option<Option<i64>> = self
            .conn
            .prepare_cached("SELECT redacted_ns FROM versions WHERE id = ?1")?
            .query_row([id.0], |r| r.get(0))
            .optional()?;
        match r {
            None => Err(StoreError::NotFound(format!("version {id}"))),
            Some(at) => Ok(at.is_some()),
        }
    }

    /// Removes one version's content, hash, size and path; keeps who and when.
    /// Refused for the head of a live file (its content is what the file holds).
    pub fn redact_version(
        &self,
        id: VersionId,
        who: &Identity,
        now_ns: i64,
    ) -> StoreResult<Removal> {
        self.enter_version(id)?;
        let v = self.version(id)?;
        if self.is_redacted(id)? {
            return Err(StoreError::Invalid(format!(
                "version {id} was already redacted"
            )));
        }
        let mut inode = self
            .inode(v.ino)?
            .ok_or_else(|| StoreError::Corrupt(format!("version {id} of missing inode")))?;
        if let Some((draft, _)) = self.draft_head_user(id)? {
            return Err(StoreError::Invalid(format!(
                "version {id} is the current content of '{}' in draft '{draft}': discard the \
                 draft or write over the file there first, then redact it",
                v.path
            )));
        }
        if inode.head == Some(id) && inode.nlink > 0 {
            return Err(StoreError::Invalid(format!(
                "version {id} is the current content of the live file '{}': write a new \
                 version or delete the file first, then redact it",
                v.path
            )));
        }
        let entries = self.audit_ids("SELECT id FROM audit WHERE version = ?1", id.0)?;
        let mut removal = self.remove_versions(v.store, &[id], now_ns, Collect::Erase)?;
        if inode.head == Some(id) {
            // An unlinked file's last content: its head falls back to the newest
            // version left, so a file brought back reads that (or is empty).
            let prev = self
                .versions_of(v.ino)?
                .into_iter()
                .rev()
                .find(|p| p.op != "conflict" && !self.is_redacted(p.id).unwrap_or(true));
            inode.head = prev.as_ref().map(|p| p.id);
            inode.size = prev.map_or(0, |p| p.size);
            self.save_inode(&inode)?;
        }
        removal.entries_sealed = self.seal_entries(&entries)?;
        self.record(
            who,
            now_ns,
            &Change {
                store: Some(v.store),
                op: "redact",
                ino: Some(v.ino),
                version: Some(id),
                detail: Some(serde_json::json!({
                    "materialized": removal.materialized,
                    "chunks_deleted": removal.chunks_deleted,
                    "entries_sealed": removal.entries_sealed,
                })),
                origin: Some("memfsctl"),
                ..Default::default()
            },
        )?;
        Ok(removal)
    }

    /// Removes every version of file `ino` (the inode, whatever its names were)
    /// and its names: the inode stays, unlinked and empty, with tombstone versions
    /// (who and when, no content) and sealed audit entries.
    pub fn purge_file(
        &self,
        store: &StoreRow,
        ino: Ino,
        who: &Identity,
        now_ns: i64,
    ) -> StoreResult<Removal> {
        self.enter_store(store.id)?;
        let mut inode = self
            .inode(ino)?
            .ok_or_else(|| StoreError::NotFound(format!("inode {ino}")))?;
        if inode.store != Some(store.id) {
            return Err(StoreError::Invalid(format!(
                "inode {ino} is not in store '{}'",
                store.name
            )));
        }
        if inode.kind != super::NodeKind::File {
            return Err(StoreError::Invalid(
                "purge takes a regular file, not a directory or special file".into(),
            ));
        }
        // Every name the file had, for scrubbing the change feed: its names now
        // and the paths its audit entries carry (read before they are sealed).
        let mut names: BTreeSet<Vec<u8>> = BTreeSet::new();
        let entries = self.audit_ids("SELECT id FROM audit WHERE ino = ?1", ino.0)?;
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT path, path2 FROM audit WHERE ino = ?1")?;
            let rows = stmt.query_map([ino.0], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ))
            })?;
            for r in rows {
                let (p, p2) = r?;
                for p in [p, p2].into_iter().flatten() {
                    if let Some(base) = p.rsplit('/').next().filter(|b| !b.is_empty()) {
                        names.insert(base.as_bytes().to_vec());
                    }
                }
            }
        }
        let dentries = self.entries_of(ino)?;
        for (parent, name) in &dentries {
            self.remove_dentry(*parent, name)?;
            names.insert(name.clone());
            if let Some(mut dir) = self.inode(*parent)? {
                dir.mtime_ns = now_ns;
                dir.ctime_ns = now_ns;
                self.save_inode(&dir)?;
            }
            self.notify_inode(store.id, *parent, now_ns, "memfsctl")?;
        }
        for sql in [
            "DELETE FROM locks WHERE ino = ?1",
            "DELETE FROM leases WHERE ino = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([ino.0])?;
        }
        inode.nlink = 0;
        inode.head = None;
        inode.size = 0;
        inode.ctime_ns = now_ns;
        self.save_inode(&inode)?;
        // A draft's file loses its own versions; what it inherited belongs to
        // the base (purge it there). A base file's copies in drafts go first.
        let mut removal = Removal::default();
        for (draft, clone) in self.clones_of(ino)? {
            if let Some(d) = self.store_by_id(draft)? {
                let r = self.purge_file(&d, clone, who, now_ns)?;
                removal.versions.extend(r.versions);
            }
            self.conn
                .prepare_cached("DELETE FROM draft_base WHERE draft_id = ?1 AND origin = ?2")?
                .execute(params![draft.0, ino.0])?;
        }
        let ids: Vec<VersionId> = self
            .own_versions_of(ino)?
            .into_iter()
            .map(|v| v.id)
            .collect();
        let mut own = self.remove_versions(store.id, &ids, now_ns, Collect::Erase)?;
        removal.versions.append(&mut own.versions);
        own.versions = removal.versions;
        let mut removal = own;
        removal.names_removed = dentries.len() as u64;
        removal.entries_sealed = self.seal_entries(&entries)?;
        // The change feed is only a hint for running mounts; the newest row stays
        // (sequence numbers continue from it).
        let del = "DELETE FROM changes WHERE (ino = ?1 OR name = ?2) \
                   AND seq < (SELECT max(seq) FROM changes)";
        for name in &names {
            self.conn
                .prepare_cached(del)?
                .execute(params![ino.0, name])?;
        }
        self.conn
            .prepare_cached(del)?
            .execute(params![ino.0, Vec::<u8>::new()])?;
        self.record(
            who,
            now_ns,
            &Change {
                store: Some(store.id),
                op: "purge",
                ino: Some(ino),
                detail: Some(serde_json::json!({
                    "versions": removal.versions.len(),
                    "names_removed": removal.names_removed,
                    "chunks_deleted": removal.chunks_deleted,
                    "entries_sealed": removal.entries_sealed,
                })),
                origin: Some("memfsctl"),
                ..Default::default()
            },
        )?;
        Ok(removal)
    }

    /// Deletes every store `user` owns (scope user) with all its versions and
    /// chunks, seals those stores' audit entries (paths and details go; who and
    /// when stay), and records a `forget-user` entry.
    pub fn forget_user(&self, user: &str, who: &Identity, now_ns: i64) -> StoreResult<Forgotten> {
        let mut out = Forgotten {
            user: user.to_string(),
            ..Default::default()
        };
        let owned: Vec<StoreRow> = self
            .stores()?
            .into_iter()
            .filter(|s| s.scope == super::Scope::User && s.owner.as_deref() == Some(user))
            .collect();
        // Every store's lock first, in id order, then the store-less chain's.
        let mut ids: Vec<i64> = owned.iter().map(|s| s.id.0).collect();
        ids.sort_unstable();
        for id in ids {
            self.enter_chain(id)?;
        }
        self.enter_chain(0)?;
        for s in owned {
            let entries = self.audit_ids("SELECT id FROM audit WHERE store_id = ?1", s.id.0)?;
            out.versions += self.store_versions(s.id)?;
            out.entries_sealed += self.seal_entries(&entries)?;
            self.delete_store(&s, who, now_ns)?;
            out.stores.push(s.name);
        }
        self.record(
            who,
            now_ns,
            &Change {
                op: "forget-user",
                detail: Some(serde_json::json!({
                    "user": user,
                    "stores": out.stores,
                    "versions": out.versions,
                    "entries_sealed": out.entries_sealed,
                })),
                origin: Some("memfsctl"),
                ..Default::default()
            },
        )?;
        Ok(out)
    }

    /// Redacted versions that still hold content or a path (fsck).
    pub fn redacted_with_content(&self) -> StoreResult<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM versions WHERE redacted_ns IS NOT NULL \
             AND (size != 0 OR octet_length(extents) != 0 OR octet_length(hash) != 0 OR path != '' \
                  OR base IS NOT NULL)",
        )?;
        let rows = stmt.query_map((), |r| r.get(0))?;
        rows.collect::<Result<_, _>>()
    }

    pub(super) fn audit_ids(&self, sql: &str, arg: i64) -> StoreResult<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([arg], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()
    }

    /// Clears the content of `ids` (all in `store`): first rewrites every other
    /// version stored as a delta on one of them as a flat version, then empties
    /// the rows, then collects the store's chunks as `collect` says.
    pub(super) fn remove_versions(
        &self,
        store: StoreId,
        ids: &[VersionId],
        now_ns: i64,
        collect: Collect,
    ) -> StoreResult<Removal> {
        let gone: BTreeSet<i64> = ids.iter().map(|v| v.0).collect();
        let mut removal = Removal {
            versions: ids.to_vec(),
            ..Default::default()
        };
        for id in ids {
            for dep in self.audit_ids("SELECT id FROM versions WHERE base = ?1", id.0)? {
                if gone.contains(&dep) {
                    continue;
                }
                let full = self.extents(VersionId(dep))?;
                self.conn
                    .prepare_cached(
                        "UPDATE versions SET base = NULL, base_len = 0, depth = 0, extents = ?2 \
                         WHERE id = ?1",
                    )?
                    .execute(params![dep, encode_extents(full.items())])?;
                self.renumber_depths(dep, 0)?;
                removal.materialized += 1;
            }
        }
        for id in ids {
            self.conn
                .prepare_cached(
                    "UPDATE versions SET size = 0, base = NULL, base_len = 0, depth = 0, \
                     extents = ?3, hash = ?3, sha256 = NULL, path = '', \
                     redacted_ns = coalesce(redacted_ns, ?2) WHERE id = ?1",
                )?
                .execute(params![id.0, now_ns, Vec::<u8>::new()])?;
        }
        let domain = self.chunk_domain(store)?;
        let (deleted, trimmed, bytes) = match collect {
            Collect::Erase => self.collect_chunks(domain)?,
            Collect::Unused => self.collect_unused_chunks(domain)?,
        };
        removal.chunks_deleted = deleted;
        removal.chunks_trimmed = trimmed;
        removal.chunk_bytes_freed = bytes;
        Ok(removal)
    }

    /// Sets `depth` of the versions built on `root` (whose depth is `depth`).
    fn renumber_depths(&self, root: i64, depth: i64) -> StoreResult<()> {
        let mut stack = vec![(root, depth)];
        while let Some((v, d)) = stack.pop() {
            for child in self.audit_ids("SELECT id FROM versions WHERE base = ?1", v)? {
                self.conn
                    .prepare_cached("UPDATE versions SET depth = ?2 WHERE id = ?1")?
                    .execute(params![child, d + 1])?;
                stack.push((child, d + 1));
            }
        }
        Ok(())
    }

    /// Deletes the store's chunks no version uses, and cuts chunks that versions
    /// use only in part down to that part. Returns (deleted, trimmed, bytes freed).
    fn collect_chunks(&self, store: StoreId) -> StoreResult<(u64, u64, u64)> {
        let used = self.chunk_use(store)?;
        let chunks: Vec<(i64, i64)> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, len FROM chunks WHERE store_id = ?1")?;
            let rows = stmt.query_map([store.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let (mut deleted, mut trimmed, mut freed) = (0, 0, 0);
        for (id, len) in chunks {
            let len = to_u64(len, "chunk len")?;
            match used.get(&id).copied() {
                None => {
                    self.conn
                        .prepare_cached("DELETE FROM chunks WHERE id = ?1")?
                        .execute([id])?;
                    deleted += 1;
                    freed += len;
                }
                Some(keep) if keep < len => {
                    self.trim_chunk(store, ChunkId(id), keep)?;
                    trimmed += 1;
                    freed += len - keep;
                }
                Some(_) => {}
            }
        }
        Ok((deleted, trimmed, freed))
    }

    /// Deletes the store's chunks no version uses (retention: chunks used in
    /// part stay whole, and nothing is read but ids from the index). The
    /// table's newest chunk stays even when unused: SQLite gives a new row
    /// max(id) + 1, and a running daemon may still cache a deleted chunk's bytes
    /// under its id, so an id must never come back. Returns (deleted, 0, bytes).
    pub(super) fn collect_unused_chunks(&self, store: StoreId) -> StoreResult<(u64, u64, u64)> {
        let used = self.chunk_use(store)?;
        let newest: Option<i64> = self
            .conn
            .prepare_cached("SELECT max(id) FROM chunks")?
            .query_row((), |r| r.get(0))?;
        let unused: Vec<i64> = {
            // Covered by the (store_id, hash) index: no chunk data is read.
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id FROM chunks WHERE store_id = ?1")?;
            let rows = stmt.query_map([store.0], |r| r.get::<_, i64>(0))?;
            let mut v = Vec::new();
            for id in rows {
                let id = id?;
                if !used.contains_key(&id) && Some(id) != newest {
                    v.push(id);
                }
            }
            v
        };
        let mut freed = 0;
        for id in &unused {
            let len: i64 = self
                .conn
                .prepare_cached("DELETE FROM chunks WHERE id = ?1 RETURNING len")?
                .query_row([id], |r| r.get(0))?;
            freed += to_u64(len, "chunk len")?;
        }
        Ok((unused.len() as u64, 0, freed))
    }

    /// For each chunk of the store: the most bytes any version's extent uses.
    fn chunk_use(&self, store: StoreId) -> StoreResult<HashMap<i64, u64>> {
        let mut used: HashMap<i64, u64> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT extents FROM versions WHERE {IN_DOMAIN}"))?;
        let mut rows = stmt.query([store.0])?;
        while let Some(r) = rows.next()? {
            let blob: Vec<u8> = r.get(0)?;
            for e in decode_extents(&blob)? {
                if let Some(c) = e.chunk {
                    let m = used.entry(c.0).or_insert(0);
                    *m = (*m).max(e.len);
                }
            }
        }
        Ok(used)
    }

    /// Cuts chunk `id` to its first `keep` bytes. The id stays (running mounts
    /// may hold extent lists naming it); if a chunk with those exact bytes exists
    /// already, versions are pointed at it instead and `id` is deleted.
    fn trim_chunk(&self, store: StoreId, id: ChunkId, keep: u64) -> StoreResult<()> {
        let mut data = self.chunk_data(id)?;
        data.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        // As `put_chunk` stores it: in an encrypted store the hash is keyed and
        // the bytes are sealed again (bound to the new hash).
        let key = self.store_sealing(store)?;
        let hash = match &key {
            Some(k) => k.chunk_hash(&data),
            None => *blake3::hash(&data).as_bytes(),
        };
        let twin: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM chunks WHERE store_id = ?1 AND hash = ?2")?
            .query_row(params![store.0, hash.as_slice()], |r| r.get(0))
            .optional()?;
        match twin {
            None => {
                let stored = match &key {
                    Some(k) => k.seal_chunk(store, &hash, &data)?,
                    None => data,
                };
                self.conn
                    .prepare_cached(
                        "UPDATE chunks SET data = ?2, len = ?3, hash = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id.0, stored, to_i64(keep)?, hash.as_slice()])?;
            }
            Some(twin) => {
                self.repoint_chunk(store, id, ChunkId(twin))?;
                self.conn
                    .prepare_cached("DELETE FROM chunks WHERE id = ?1")?
                    .execute([id.0])?;
            }
        }
        Ok(())
    }

    /// Rewrites every extent list of the store naming chunk `from` to name `to`.
    fn repoint_chunk(&self, store: StoreId, from: ChunkId, to: ChunkId) -> StoreResult<()> {
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT id, extents FROM versions WHERE {IN_DOMAIN}"
            ))?;
            let rows = stmt.query_map([store.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (vid, blob) in rows {
            let mut items = decode_extents(&blob)?;
            let mut hit = false;
            for e in &mut items {
                if e.chunk == Some(from) {
                    e.chunk = Some(to);
                    hit = true;
                }
            }
            if hit {
                self.conn
                    .prepare_cached("UPDATE versions SET extents = ?2 WHERE id = ?1")?
                    .execute(params![vid, encode_extents(&items)])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Db, NewInode, NewVersion, NodeKind, Scope};

    const SECRET: &[u8] = b"the launch code is swordfish-4471";

    struct World {
        db: Db,
        store: StoreRow,
        ino: Ino,
        /// v1 = SECRET + "one", v2 = delta on v1 (append), v3 = delta on v2 (append).
        versions: Vec<VersionId>,
    }

    fn who() -> Identity {
        Identity::new("agent-a", "sess-1", Some("alice"))
    }

    fn content(tx: &Txn<'_>, v: VersionId) -> StoreResult<Vec<u8>> {
        let ext = tx.extents(v)?;
        tx.read_extents(&ext, 0, ext.size())
    }

    /// One file with three versions, each an append on the previous one.
    fn world() -> World {
        let db = Db::open_in_memory().unwrap();
        let (store, ino, versions) = db
            .write(|tx| {
                let store = tx.create_store("s", Scope::User, Some("alice"), "", &who(), 1)?;
                let ino = tx.insert_inode(&NewInode {
                    store: store.id,
                    kind: NodeKind::File,
                    perm: 0o644,
                    uid: 0,
                    gid: 0,
                    rdev: 0,
                    nlink: 1,
                    now_ns: 1,
                    target: None,
                })?;
                tx.insert_dentry(store.root, b"f.txt", ino)?;
                let mut full = Vec::new();
                let mut base = None;
                let mut versions = Vec::new();
                for (i, part) in [&[SECRET, b" one\n"].concat()[..], b"two\n", b"three\n"]
                    .into_iter()
                    .enumerate()
                {
                    let tail = vec![tx.put_chunk(store.id, part)?];
                    let base_len = full.len() as u64;
                    full.extend_from_slice(part);
                    let (v, size) = tx.insert_version(&NewVersion {
                        ino,
                        store: store.id,
                        base,
                        base_len,
                        tail,
                        base_full: None,
                        hash: blake3::hash(&full),
                        sha256: None,
                        op: "write",
                        path: "f.txt",
                        who: &who(),
                        at_ns: 10 + i as i64,
                    })?;
                    tx.record(
                        &who(),
                        10 + i as i64,
                        &Change {
                            store: Some(store.id),
                            op: "write",
                            path: Some("f.txt"),
                            ino: Some(ino),
                            version: Some(v),
                            detail: Some(serde_json::json!({"size": size, "hash": blake3::hash(&full).to_hex().as_str()})),
                            ..Default::default()
                        },
                    )?;
                    let mut row = tx.inode(ino)?.ok_or(StoreError::NotFound("ino".into()))?;
                    row.head = Some(v);
                    row.size = size;
                    tx.save_inode(&row)?;
                    base = Some(v);
                    versions.push(v);
                }
                Ok::<_, StoreError>((store, ino, versions))
            })
            .unwrap();
        World {
            db,
            store,
            ino,
            versions,
        }
    }

    fn chunk_with_secret(tx: &Txn<'_>) -> bool {
        let sql = match tx.dialect() {
            crate::store::sql::Dialect::Sqlite => {
                "SELECT count(*) FROM chunks WHERE instr(data, ?1) > 0"
            }
            crate::store::sql::Dialect::Postgres => {
                "SELECT count(*) FROM chunks WHERE position(?1 in data) > 0"
            }
        };
        tx.conn
            .query_row(sql, [SECRET], |r| r.get::<_, i64>(0))
            .unwrap()
            > 0
    }

    #[test]
    fn redacting_a_base_keeps_its_deltas_readable_and_removes_its_bytes() {
        let w = world();
        let (v1, v2, v3) = (w.versions[0], w.versions[1], w.versions[2]);
        let before: Vec<Vec<u8>> =
            w.db.read(|tx| {
                [v2, v3]
                    .iter()
                    .map(|v| content(tx, *v))
                    .collect::<StoreResult<_>>()
            })
            .unwrap();
        let removal = w.db.write(|tx| tx.redact_version(v1, &who(), 100)).unwrap();
        assert_eq!(removal.materialized, 1);
        assert_eq!(removal.entries_sealed, 1);
        w.db.read(|tx| {
            let err = content(tx, v1).unwrap_err().to_string();
            assert_eq!(err, "version 1 was redacted");
            assert_eq!(content(tx, v2)?, before[0]);
            assert_eq!(content(tx, v3)?, before[1]);
            // v2 and v3 still hold the secret (they contain v1's bytes): the chunk stays.
            assert!(chunk_with_secret(tx));
            let row = tx.version(v1)?;
            assert_eq!(
                (row.size, row.hash.as_str(), row.path.as_str()),
                (0, "", "")
            );
            assert_eq!(
                (row.agent.as_str(), row.user.as_deref()),
                ("agent-a", Some("alice"))
            );
            assert_eq!(tx.verify_audit()?.map_err(|b| b.reason), Ok(5));
            assert!(tx.redacted_with_content()?.is_empty());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    }

    #[test]
    fn the_head_of_a_live_file_is_refused() {
        let w = world();
        let err =
            w.db.write(|tx| tx.redact_version(w.versions[2], &who(), 100))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("write a new version or delete the file first"),
            "{err}"
        );
    }

    #[test]
    fn purge_removes_every_byte_and_keeps_the_chain() {
        let w = world();
        let removal =
            w.db.write(|tx| tx.purge_file(&w.store, w.ino, &who(), 100))
                .unwrap();
        assert_eq!(removal.versions.len(), 3);
        assert_eq!(removal.names_removed, 1);
        w.db.read(|tx| {
            assert!(!chunk_with_secret(tx));
            assert_eq!(tx.resolve_path(w.store.root, "f.txt")?, None);
            let n: i64 = tx
                .conn
                .query_row("SELECT count(*) FROM chunks", (), |r| r.get(0))?;
            assert_eq!(n, 0);
            let sealed: i64 = tx.conn.query_row(
                "SELECT count(*) FROM audit WHERE ino = ?1 AND path IS NULL AND detail IS NULL",
                [w.ino.0],
                |r| r.get(0),
            )?;
            assert_eq!(sealed, 3, "the 3 writes are sealed");
            assert!(tx.verify_audit()?.is_ok());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    }

    #[test]
    fn a_sealed_entry_that_is_altered_breaks_the_chain() {
        let w = world();
        w.db.write(|tx| tx.purge_file(&w.store, w.ino, &who(), 100))
            .unwrap();
        w.db.write(|tx| tx.execute_raw("UPDATE audit SET agent = 'mallory' WHERE id = 2"))
            .unwrap();
        let brk = w.db.read(|tx| tx.verify_audit()).unwrap().unwrap_err();
        assert_eq!(brk.id.0, 2);
    }

    #[test]
    fn forget_user_deletes_owned_stores() {
        let w = world();
        let done =
            w.db.write(|tx| tx.forget_user("alice", &who(), 100))
                .unwrap();
        assert_eq!(done.stores, vec!["s".to_string()]);
        assert_eq!(done.versions, 3);
        w.db.read(|tx| {
            assert!(!chunk_with_secret(tx));
            assert!(tx.store_by_name("s")?.is_none());
            assert!(tx.verify_audit()?.is_ok());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    }
}

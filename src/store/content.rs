//! Content: chunks (content-defined, blake3-addressed within a store) and versions.
//!
//! A version's content is `base`'s first `base_len` bytes followed by its own
//! extents. An append therefore stores only the appended bytes plus a few bytes of
//! manifest, instead of a copy of the file. Chains are cut at [`MAX_DEPTH`]: the
//! version is then written flat, and runs of tiny appended chunks are re-chunked
//! into normal-sized ones, so reads stay cheap and manifests stay small.

use super::sql::{params, OptionalExtension};
use super::{to_i64, to_u64, Txn};
use crate::error::{StoreError, StoreResult};
use crate::ids::{ChunkId, Identity, Ino, StoreId, VersionId};
use std::io::Read;

/// Content-defined chunking bounds, in bytes.
pub const MIN_CHUNK: u32 = 4 * 1024;
pub const AVG_CHUNK: u32 = 16 * 1024;
pub const MAX_CHUNK: u32 = 64 * 1024;

/// Longest chain of append-deltas before a version is stored flat.
const MAX_DEPTH: i64 = 64;

/// A run of content: `len` bytes of a chunk (from its start), or of zeros (a hole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub chunk: Option<ChunkId>,
    pub len: u64,
}

/// A version's resolved content map: extents with their start offsets.
#[derive(Clone, Debug, Default)]
pub struct Extents {
    items: Vec<Extent>,
    starts: Vec<u64>,
    size: u64,
}

impl Extents {
    pub fn new() -> Self {
        Self::default()
    }

    /// The extents `items`, in order.
    pub fn from_items(items: impl IntoIterator<Item = Extent>) -> Self {
        let mut out = Self::new();
        for e in items {
            out.push(e);
        }
        out
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn items(&self) -> &[Extent] {
        &self.items
    }

    pub fn push(&mut self, e: Extent) {
        if e.len == 0 {
            return;
        }
        // Adjacent holes merge, so a sparse file stays one extent.
        if e.chunk.is_none() {
            if let Some(last) = self.items.last_mut() {
                if last.chunk.is_none() {
                    last.len += e.len;
                    self.size += e.len;
                    return;
                }
            }
        }
        self.starts.push(self.size);
        self.items.push(e);
        self.size += e.len;
    }

    /// Keeps only the first `len` bytes.
    pub fn truncate(&mut self, len: u64) {
        if len >= self.size {
            return;
        }
        let keep = self.starts.partition_point(|&s| s < len);
        self.items.truncate(keep);
        self.starts.truncate(keep);
        if let (Some(last), Some(&start)) = (self.items.last_mut(), self.starts.last()) {
            last.len = len - start;
        }
        self.size = len;
    }

    /// The extent holding byte `offset`: its index and the offset within it.
    pub fn locate(&self, offset: u64) -> Option<(usize, u64)> {
        if offset >= self.size {
            return None;
        }
        let idx = self.starts.partition_point(|&s| s <= offset) - 1;
        Some((idx, offset - self.starts[idx]))
    }
}

/// A stored version's metadata.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VersionRow {
    pub id: VersionId,
    pub ino: Ino,
    /// Views add the store's name.
    #[serde(skip)]
    pub store: StoreId,
    pub size: u64,
    #[serde(skip)]
    pub base: Option<VersionId>,
    #[serde(skip)]
    pub base_len: u64,
    #[serde(skip)]
    pub depth: i64,
    pub hash: String,
    pub op: String,
    pub path: String,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub at_ns: i64,
    /// SHA-256 of the content (hex), kept since migration 8; `None` for an
    /// older version until [`Txn::version_sha256`] computes it once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A version about to be committed: `base`'s first `base_len` bytes, then `tail`.
pub struct NewVersion<'a> {
    pub ino: Ino,
    pub store: StoreId,
    pub base: Option<VersionId>,
    pub base_len: u64,
    pub tail: Vec<Extent>,
    /// `base`'s whole extent list, when the writer holds it: a version at the
    /// depth limit is stored flat, and this saves walking `base`'s chain for it.
    pub base_full: Option<&'a Extents>,
    pub hash: blake3::Hash,
    /// SHA-256 of the whole content, when the writer computed it.
    pub sha256: Option<[u8; 32]>,
    pub op: &'a str,
    pub path: &'a str,
    pub who: &'a Identity,
    pub at_ns: i64,
}

/// Cuts `data` into content-defined chunks.
pub fn chunk_bytes(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    fastcdc::v2020::FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        .map(move |c| &data[c.offset..c.offset + c.length])
}

/// Cuts a stream into content-defined chunks, calling `each` on every one in order.
pub fn chunk_reader(
    source: impl Read,
    mut each: impl FnMut(&[u8]) -> StoreResult<()>,
) -> StoreResult<()> {
    for chunk in fastcdc::v2020::StreamCDC::new(source, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK) {
        let chunk = chunk.map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
        each(&chunk.data)?;
    }
    Ok(())
}

/// Cuts `prefix` followed by `tail` into content-defined chunks, like
/// [`chunk_reader`] on the two chained, calling `each` on every chunk in order.
/// Small inputs (a commit of a few appended lines) are cut in memory: the
/// streaming cutter allocates and zeroes a buffer of [`MAX_CHUNK`] for each call,
/// which cost more than cutting and storing a 100-byte append. Both cutters
/// place boundaries alike, so the chunks and their dedupe do not change.
pub fn chunk_parts(
    prefix: &[u8],
    tail: &[u8],
    mut each: impl FnMut(&[u8]) -> StoreResult<()>,
) -> StoreResult<()> {
    if prefix.is_empty() {
        for c in chunk_bytes(tail) {
            each(c)?;
        }
        return Ok(());
    }
    let mut joined = Vec::with_capacity(prefix.len() + tail.len());
    joined.extend_from_slice(prefix);
    joined.extend_from_slice(tail);
    for c in chunk_bytes(&joined) {
        each(c)?;
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(blob: &[u8], pos: &mut usize) -> StoreResult<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *blob
            .get(*pos)
            .ok_or_else(|| StoreError::Corrupt("truncated extent list".into()))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(StoreError::Corrupt("overlong varint in extent list".into()))
}

/// Extent lists are stored as varint pairs (chunk id or 0 for a hole, length).
pub(super) fn encode_extents(items: &[Extent]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() * 5);
    for e in items {
        put_varint(&mut out, e.chunk.map_or(0, |c| c.0 as u64));
        put_varint(&mut out, e.len);
    }
    out
}

pub(super) fn decode_extents(blob: &[u8]) -> StoreResult<Vec<Extent>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < blob.len() {
        let id = get_varint(blob, &mut pos)?;
        let len = get_varint(blob, &mut pos)?;
        let chunk = if id == 0 {
            None
        } else {
            Some(ChunkId(to_i64(id)?))
        };
        out.push(Extent { chunk, len });
    }
    Ok(out)
}

const VERSION_COLS: &str = "id, ino, store_id, size, base, base_len, depth, hash, op, path, \
     agent, session, \"user\", at_ns, sha256";

fn version_from_row(r: &super::sql::Row<'_>) -> StoreResult<(VersionRow, i64, i64, Vec<u8>)> {
    let hash: Vec<u8> = r.get(7)?;
    Ok((
        VersionRow {
            id: VersionId(r.get(0)?),
            ino: Ino(r.get(1)?),
            store: StoreId(r.get(2)?),
            size: 0,
            base: r.get::<_, Option<i64>>(4)?.map(VersionId),
            base_len: 0,
            depth: r.get(6)?,
            hash: String::new(),
            op: r.get(8)?,
            path: r.get(9)?,
            agent: r.get(10)?,
            session: r.get(11)?,
            user: r.get(12)?,
            at_ns: r.get(13)?,
            sha256: r
                .get::<_, Option<Vec<u8>>>(14)?
                .map(|b| crate::digest::hex(&b)),
        },
        r.get(3)?,
        r.get(5)?,
        hash,
    ))
}

fn finish_version(raw: (VersionRow, i64, i64, Vec<u8>)) -> StoreResult<VersionRow> {
    let (mut v, size, base_len, hash) = raw;
    v.size = to_u64(size, "version size")?;
    v.base_len = to_u64(base_len, "version base_len")?;
    v.hash = hash.iter().map(|b| format!("{b:02x}")).collect();
    Ok(v)
}

impl Txn<'_> {
    /// Stores one chunk (deduplicated within its store); an all-zero chunk becomes a hole.
    /// In an encrypted store the chunk is sealed with the store's key and its
    /// dedupe hash is keyed (see [`super::crypto`]).
    pub fn put_chunk(&self, store: StoreId, data: &[u8]) -> StoreResult<Extent> {
        let len = data.len() as u64;
        if data.iter().all(|&b| b == 0) {
            return Ok(Extent { chunk: None, len });
        }
        // A draft's chunks live in its base's space (see `drafts.rs`): the
        // dedupe lookup and insert run under that space's chain lock.
        self.enter_store(store)?;
        let store = self.chunk_domain(store)?;
        self.enter_store(store)?;
        let key = self.store_sealing(store)?;
        let hash = match &key {
            Some(k) => k.chunk_hash(data),
            None => *blake3::hash(data).as_bytes(),
        };
        let existing: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM chunks WHERE store_id = ?1 AND hash = ?2")?
            .query_row(params![store.0, hash.as_slice()], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                let sealed = match &key {
                    Some(k) => Some(k.seal_chunk(store, &hash, data)?),
                    None => None,
                };
                let id: i64 = self
                    .conn
                    .prepare_cached(
                        "INSERT INTO chunks (store_id, hash, len, data) VALUES (?1, ?2, ?3, ?4) \
                         RETURNING id",
                    )?
                    .query_row(
                        params![
                            store.0,
                            hash.as_slice(),
                            data.len() as i64,
                            sealed.as_deref().unwrap_or(data)
                        ],
                        |r| r.get(0),
                    )?;
                self.note_bytes(len);
                id
            }
        };
        Ok(Extent {
            chunk: Some(ChunkId(id)),
            len,
        })
    }

    /// A chunk's bytes (decrypted and authenticated in an encrypted store).
    pub fn chunk_data(&self, id: ChunkId) -> StoreResult<Vec<u8>> {
        let (store, hash, data, keys) = self
            .conn
            .prepare_cached(
                "SELECT c.store_id, c.hash, c.data, s.name, s.encrypted, k.key_id, k.wrapped_key, \
                 k.nonce FROM chunks c JOIN stores s ON s.id = c.store_id \
                 LEFT JOIN store_keys k ON k.store_id = c.store_id WHERE c.id = ?1",
            )?
            .query_row([id.0], |r| {
                Ok((
                    StoreId(r.get(0)?),
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    super::crypto::key_row_at(r, 3)?,
                ))
            })
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("missing chunk {id}")))?;
        if !keys.encrypted {
            return Ok(data);
        }
        let key = self.crypto.store_key(store, &keys)?;
        key.open_chunk(store, &hash, &data).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "chunk {id} of store '{}' fails authentication: it was modified in the database \
                 or does not belong there",
                keys.name
            ))
        })
    }

    /// One version's metadata.
    pub fn version(&self, id: VersionId) -> StoreResult<VersionRow> {
        let sql = sql_once!("SELECT {VERSION_COLS} FROM versions WHERE id = ?1");
        let raw = self
            .conn
            .prepare_cached(sql)?
            .query_row([id.0], version_from_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("version {id}")))?;
        finish_version(raw)
    }

    /// Every version of one inode, oldest first. A draft's file begins with
    /// the history of the base file it was cloned from, up to the version
    /// the draft's base saw (its own versions follow, by id).
    pub fn versions_of(&self, ino: Ino) -> StoreResult<Vec<VersionRow>> {
        let mut own = self.own_versions_of(ino)?;
        if let Some((origin, Some(seen))) = self.draft_origin(ino)? {
            if origin != ino {
                let mut all: Vec<VersionRow> = self
                    .own_versions_of(origin)?
                    .into_iter()
                    .filter(|v| v.id <= seen)
                    .collect();
                all.append(&mut own);
                all.sort_by_key(|v| v.id);
                return Ok(all);
            }
        }
        Ok(own)
    }

    /// Whether version `v` is part of `ino`'s history (its own, or inherited
    /// by a draft's file from its base).
    pub fn version_of_file(&self, ino: Ino, v: VersionId) -> StoreResult<bool> {
        let row = self.version(v)?;
        if row.ino == ino {
            return Ok(true);
        }
        Ok(matches!(self.draft_origin(ino)?, Some((o, Some(seen))) if o == row.ino && v <= seen))
    }

    /// The versions one inode made itself, oldest first.
    pub fn own_versions_of(&self, ino: Ino) -> StoreResult<Vec<VersionRow>> {
        self.enter_ino(ino)?;
        let sql = sql_once!("SELECT {VERSION_COLS} FROM versions WHERE ino = ?1 ORDER BY id");
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([ino.0], version_from_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(finish_version(r?)?);
        }
        Ok(out)
    }

    /// Bytes a store's history occupies: (chunk bytes, manifest bytes, versions).
    pub fn storage_stats(&self, store: StoreId) -> StoreResult<(u64, u64, u64)> {
        let chunks: i64 = self
            .conn
            .prepare_cached(
                "SELECT CAST(coalesce(sum(len), 0) AS BIGINT) FROM chunks WHERE store_id = ?1",
            )?
            .query_row([store.0], |r| r.get(0))?;
        let (manifests, versions): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT CAST(coalesce(sum(octet_length(extents)), 0) AS BIGINT), count(*) \
                 FROM versions WHERE store_id = ?1",
            )?
            .query_row([store.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((
            to_u64(chunks, "bytes")?,
            to_u64(manifests, "bytes")?,
            to_u64(versions, "count")?,
        ))
    }

    /// The engine's own check of its storage ("ok" when sound): SQLite's
    /// `integrity_check`; PostgreSQL checks its pages itself (checksums, the
    /// WAL), so "ok" once the catalog answers.
    pub fn integrity_check(&self) -> StoreResult<String> {
        if self.dialect() == super::sql::Dialect::Postgres {
            self.conn
                .query_row("SELECT count(*) FROM pg_class", (), |r| r.get::<_, i64>(0))?;
            return Ok("ok".into());
        }
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows: Vec<String> = stmt
            .query_map((), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows.join("; "))
    }

    /// Rows `PRAGMA foreign_key_check` reports, one line each (PostgreSQL
    /// enforces its foreign keys at every change: none).
    pub fn foreign_key_check(&self) -> StoreResult<Vec<String>> {
        if self.dialect() == super::sql::Dialect::Postgres {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
        let rows = stmt.query_map((), |r| {
            Ok(format!(
                "{} row {:?} -> {}",
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?
            ))
        })?;
        rows.collect::<Result<_, _>>()
    }

    /// Whether version `id` was redacted (its content is gone).
    pub fn version_redacted(&self, id: VersionId) -> StoreResult<bool> {
        let r: Option<Option<i64>> = self
            .conn
            .prepare_cached("SELECT redacted_ns FROM versions WHERE id = ?1")?
            .query_row([id.0], |r| r.get(0))
            .optional()?;
        Ok(matches!(r, Some(Some(_))))
    }

    /// Every version that holds content (redacted ones do not): (id, ino, size, hash hex).
    pub fn all_versions(&self) -> StoreResult<Vec<(i64, i64, u64, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, ino, size, hash FROM versions WHERE redacted_ns IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map((), |r| {
            let hash: Vec<u8> = r.get(3)?;
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?, hash))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, ino, size, hash) = row?;
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            out.push((id, ino, to_u64(size, "size")?, hex));
        }
        Ok(out)
    }

    /// For every regular file: (ino, head, size, newest non-conflict version, its size).
    /// Redacted versions are left out: a file's head is never one (docs/FORMAT.md).
    #[allow(clippy::type_complexity)]
    pub fn file_heads(
        &self,
    ) -> StoreResult<Vec<(i64, Option<i64>, u64, Option<i64>, Option<u64>)>> {
        // A draft's file also counts the base versions it inherits (up to
        // the one its base saw).
        let mut stmt = self.conn.prepare(
            "SELECT i.ino, i.head, i.size, \
               (SELECT max(v.id) FROM versions v WHERE (v.ino = i.ino \
                  OR (v.ino = o.origin AND v.id <= o.head)) \
                AND v.op != 'conflict' AND v.redacted_ns IS NULL), \
               (SELECT v.size FROM versions v WHERE (v.ino = i.ino \
                  OR (v.ino = o.origin AND v.id <= o.head)) \
                AND v.op != 'conflict' AND v.redacted_ns IS NULL ORDER BY v.id DESC LIMIT 1) \
             FROM inodes i LEFT JOIN (SELECT ino, min(origin) AS origin, min(head) AS head \
               FROM draft_base WHERE ino IS NOT NULL GROUP BY ino) o ON o.ino = i.ino \
             WHERE i.kind = 1",
        )?;
        let rows = stmt.query_map((), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, i64>(2)?,
                r.get(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (ino, head, size, newest, nsize) = row?;
            out.push((
                ino,
                head,
                to_u64(size, "size")?,
                newest,
                nsize.map(|s| s.max(0) as u64),
            ));
        }
        Ok(out)
    }

    /// Non-directory inodes whose number of names differs from their nlink.
    pub fn link_counts(&self) -> StoreResult<Vec<(i64, i64, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT ino, n, nlink FROM (SELECT i.ino, \
               (SELECT count(*) FROM dentries d WHERE d.ino = i.ino) AS n, i.nlink \
               FROM inodes i WHERE i.kind != 2 AND i.ino != 1) AS c WHERE n != nlink",
        )?;
        let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()
    }

    /// Number of versions in a store.
    pub fn store_versions(&self, store: StoreId) -> StoreResult<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM versions WHERE store_id = ?1")?
            .query_row([store.0], |r| r.get(0))?;
        to_u64(n, "count")
    }

    /// Number of versions of one inode.
    pub fn version_count(&self, ino: Ino) -> StoreResult<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM versions WHERE ino = ?1")?
            .query_row([ino.0], |r| r.get(0))?;
        to_u64(n, "count")
    }

    fn own_extents(&self, id: VersionId) -> StoreResult<(Option<VersionId>, u64, Vec<Extent>)> {
        let (base, base_len, blob, redacted): (Option<i64>, i64, Vec<u8>, Option<i64>) = self
            .conn
            .prepare_cached(
                "SELECT base, base_len, extents, redacted_ns FROM versions WHERE id = ?1",
            )?
            .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("version {id}")))?;
        if redacted.is_some() {
            return Err(StoreError::Invalid(format!("version {id} was redacted")));
        }
        Ok((
            base.map(VersionId),
            to_u64(base_len, "base_len")?,
            decode_extents(&blob)?,
        ))
    }

    /// Resolves a version's full content map by walking its delta chain.
    pub fn extents(&self, id: VersionId) -> StoreResult<Extents> {
        let mut chain = Vec::new();
        let mut cur = Some(id);
        while let Some(v) = cur {
            if chain.len() as i64 > MAX_DEPTH * 4 {
                return Err(StoreError::Corrupt(format!(
                    "version chain too long at {id}"
                )));
            }
            let (base, base_len, own) = self.own_extents(v)?;
            chain.push((base_len, own));
            cur = base;
        }
        let mut out = Extents::new();
        for (base_len, own) in chain.into_iter().rev() {
            out.truncate(base_len);
            for e in own {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Reads `len` bytes at `offset` of a resolved version (no caching; for tools).
    pub fn read_extents(&self, ext: &Extents, offset: u64, len: u64) -> StoreResult<Vec<u8>> {
        let end = offset.saturating_add(len).min(ext.size());
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut pos = offset;
        while pos < end {
            let Some((idx, within)) = ext.locate(pos) else {
                break;
            };
            let e = ext.items()[idx];
            let take = (e.len - within).min(end - pos);
            match e.chunk {
                None => out.resize(out.len() + take as usize, 0),
                Some(c) => {
                    let data = self.chunk_data(c)?;
                    let s = within as usize;
                    let slice = data
                        .get(s..s + take as usize)
                        .ok_or_else(|| StoreError::Corrupt(format!("chunk {c} too short")))?;
                    out.extend_from_slice(slice);
                }
            }
            pos += take;
        }
        Ok(out)
    }

    /// The SHA-256 of a version's content: as stored at commit, or (for a
    /// version from before migration 8) computed from its content once and
    /// stored. `None` for a redacted version.
    pub fn version_sha256(&self, id: VersionId) -> StoreResult<Option<[u8; 32]>> {
        let (stored, redacted): (Option<Vec<u8>>, Option<i64>) = self
            .conn
            .prepare_cached("SELECT sha256, redacted_ns FROM versions WHERE id = ?1")?
            .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("version {id}")))?;
        if redacted.is_some() {
            return Ok(None);
        }
        if let Some(b) = stored.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()) {
            return Ok(Some(b));
        }
        let ext = self.extents(id)?;
        let mut h = crate::digest::ContentHasher::new();
        let mut pos = 0;
        while pos < ext.size() {
            let piece = self.read_extents(&ext, pos, 1 << 20)?;
            if piece.is_empty() {
                break;
            }
            h.update(&piece);
            pos += piece.len() as u64;
        }
        let sha = h.finalize().sha256;
        // Stored once computed; a read-only transaction (PostgreSQL's reads)
        // leaves that to the next write.
        if self.write || self.dialect() == super::sql::Dialect::Sqlite {
            self.conn
                .prepare_cached("UPDATE versions SET sha256 = ?2 WHERE id = ?1")?
                .execute(params![id.0, sha.as_slice()])?;
        }
        Ok(Some(sha))
    }

    /// Inserts a new version row (the caller points the inode's head at it).
    /// Returns its id and size.
    pub fn insert_version(&self, nv: &NewVersion<'_>) -> StoreResult<(VersionId, u64)> {
        self.insert_version_as_stored(nv)
            .map(|(id, size, _)| (id, size))
    }

    /// [`insert_version`](Self::insert_version), and the version's whole
    /// extent list when it was stored flat at the depth limit: its small
    /// extents were then re-chunked, so the list differs from `base`'s with
    /// `tail` appended. A caller that caches extents must cache these: the
    /// chunks of the list it composed itself may be used by no version, and
    /// garbage collection may delete them.
    pub fn insert_version_as_stored(
        &self,
        nv: &NewVersion<'_>,
    ) -> StoreResult<(VersionId, u64, Option<Vec<Extent>>)> {
        self.enter_store(nv.store)?;
        let (mut base, mut base_len, mut own, depth) = match nv.base {
            Some(b) if nv.base_len > 0 => {
                let (bd, bsize): (i64, i64) = self
                    .conn
                    .prepare_cached("SELECT depth, size FROM versions WHERE id = ?1")?
                    .query_row([b.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
                if nv.base_len > to_u64(bsize, "size")? {
                    return Err(StoreError::Invalid(format!(
                        "base_len {} beyond version {b}",
                        nv.base_len
                    )));
                }
                (Some(b), nv.base_len, nv.tail.clone(), bd + 1)
            }
            _ => (None, 0, nv.tail.clone(), 0),
        };
        if let (true, Some(b)) = (depth > MAX_DEPTH, base) {
            let mut full = match nv.base_full {
                Some(f) => {
                    debug_assert!(
                        f.items() == self.extents(b)?.items(),
                        "base_full is not {b}'s extents"
                    );
                    f.clone()
                }
                None => self.extents(b)?,
            };
            full.truncate(base_len);
            for e in own {
                full.push(e);
            }
            own = self.compact(nv.store, full.items())?;
            base = None;
            base_len = 0;
        }
        let size = base_len + own.iter().map(|e| e.len).sum::<u64>();
        let flat = (base.is_none() && nv.base.is_some() && nv.base_len > 0).then(|| own.clone());
        let depth = if base.is_some() { depth } else { 0 };
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO versions (ino, store_id, size, base, base_len, depth, extents, hash, \
                 op, path, agent, session, \"user\", at_ns, sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
                 RETURNING id",
            )?
            .query_row(
                params![
                    nv.ino.0,
                    nv.store.0,
                    to_i64(size)?,
                    base.map(|b| b.0),
                    to_i64(base_len)?,
                    depth,
                    encode_extents(&own),
                    nv.hash.as_bytes().as_slice(),
                    nv.op,
                    nv.path,
                    nv.who.agent,
                    nv.who.session,
                    nv.who.user,
                    nv.at_ns,
                    nv.sha256.as_ref().map(<[u8; 32]>::as_slice),
                ],
                |r| r.get(0),
            )?;
        Ok((VersionId(id), size, flat))
    }

    /// Re-chunks runs of small extents (left by many tiny appends) into normal chunks.
    fn compact(&self, store: StoreId, items: &[Extent]) -> StoreResult<Vec<Extent>> {
        let mut out = Vec::with_capacity(items.len());
        let mut run: Vec<u8> = Vec::new();
        let mut run_items = 0usize;
        let flush = |run: &mut Vec<u8>, out: &mut Vec<Extent>, n: &mut usize| -> StoreResult<()> {
            if *n > 0 {
                for piece in chunk_bytes(run) {
                    out.push(self.put_chunk(store, piece)?);
                }
            }
            run.clear();
            *n = 0;
            Ok(())
        };
        for e in items {
            match e.chunk {
                Some(c) if e.len < u64::from(MIN_CHUNK) => {
                    let data = self.chunk_data(c)?;
                    let part = data
                        .get(..e.len as usize)
                        .ok_or_else(|| StoreError::Corrupt(format!("chunk {c} too short")))?;
                    run.extend_from_slice(part);
                    run_items += 1;
                }
                _ => {
                    flush(&mut run, &mut out, &mut run_items)?;
                    out.push(*e);
                }
            }
        }
        flush(&mut run, &mut out, &mut run_items)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let items = vec![
            Extent {
                chunk: Some(ChunkId(1)),
                len: 100,
            },
            Extent {
                chunk: None,
                len: 1 << 40,
            },
            Extent {
                chunk: Some(ChunkId(i64::MAX)),
                len: 0x7f,
            },
        ];
        assert_eq!(decode_extents(&encode_extents(&items)).unwrap(), items);
    }

    #[test]
    fn cutting_in_memory_places_the_streaming_boundaries() {
        // Pseudo-random bytes, so content-defined boundaries fall inside.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for (split, end) in [
            (0, 0),
            (0, 100),
            (0, 300_000),
            (5_000, 5_100),
            (70_000, 300_000),
        ] {
            let (prefix, tail) = (&data[..split], &data[split..end]);
            let mut streamed = Vec::new();
            chunk_reader(std::io::Read::chain(prefix, tail), |c| {
                streamed.push(c.to_vec());
                Ok(())
            })
            .unwrap();
            let mut cut = Vec::new();
            chunk_parts(prefix, tail, |c| {
                cut.push(c.to_vec());
                Ok(())
            })
            .unwrap();
            assert_eq!(cut, streamed, "prefix {split}, end {end}");
            assert_eq!(cut.concat(), &data[..end]);
        }
    }

    #[test]
    fn truncated_extent_list_is_corruption_not_panic() {
        assert!(decode_extents(&[0x81]).is_err());
    }

    #[test]
    fn extents_truncate_and_locate() {
        let mut e = Extents::new();
        e.push(Extent {
            chunk: Some(ChunkId(1)),
            len: 10,
        });
        e.push(Extent {
            chunk: Some(ChunkId(2)),
            len: 10,
        });
        e.push(Extent {
            chunk: None,
            len: 5,
        });
        e.push(Extent {
            chunk: None,
            len: 5,
        });
        assert_eq!(e.size(), 30);
        assert_eq!(e.items().len(), 3);
        assert_eq!(e.locate(15), Some((1, 5)));
        assert_eq!(e.locate(30), None);
        e.truncate(12);
        assert_eq!(e.items().len(), 2);
        assert_eq!(e.items()[1].len, 2);
        assert_eq!(e.size(), 12);
        e.truncate(10);
        assert_eq!(e.items().len(), 1);
    }
}

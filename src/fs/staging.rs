//! The content of a file open in this mount: the committed version it started from,
//! plus staged bytes not yet committed.
//!
//! Bytes below `dirty_from` are the base version's; bytes from `dirty_from` on live
//! in the tail (memory, spilled to a sparse temp file when large); bytes past the
//! tail up to `size` are zeros (a file extended by truncate). Appends and rewrites
//! from some offset on, which is what tools do, touch only the tail.

use crate::error::{FsResult, StoreError};
use crate::ids::{ChunkId, VersionId};
use crate::store::{Db, Extents};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where staged bytes live.
enum Tail {
    Mem(Vec<u8>),
    File { file: File, len: u64 },
}

impl Tail {
    fn len(&self) -> u64 {
        match self {
            Tail::Mem(v) => v.len() as u64,
            Tail::File { len, .. } => *len,
        }
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Tail::Mem(v) => {
                let s = off as usize;
                buf.copy_from_slice(&v[s..s + buf.len()]);
                Ok(())
            }
            Tail::File { file, .. } => file.read_exact_at(buf, off),
        }
    }
}

/// Reads a tail from its start, for chunking at commit.
pub(super) struct TailReader<'a> {
    tail: &'a Tail,
    pos: u64,
}

impl Read for TailReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.tail.len() - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.tail.read_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// An open file's content in this mount.
pub(super) struct Staging {
    pub base: Option<VersionId>,
    pub base_ext: Extents,
    pub dirty_from: u64,
    tail: Tail,
    pub size: u64,
    pub dirty: bool,
    /// Every staged change since the last commit was an `O_APPEND` write, so the
    /// bytes can be appended to whatever the head is at commit time.
    pub appends_only: bool,
    pub mtime_ns: Option<i64>,
    /// A write was refused for a size limit: the staged bytes are incomplete and
    /// must not become a version (the old head stays).
    pub refused: Option<&'static str>,
    spill_bytes: usize,
    spill_dir: Option<PathBuf>,
    cache: Vec<(ChunkId, Arc<Vec<u8>>)>,
}

const CHUNK_CACHE: usize = 8;

impl Staging {
    pub fn new(
        base: Option<VersionId>,
        base_ext: Extents,
        spill_bytes: usize,
        spill_dir: Option<PathBuf>,
    ) -> Self {
        let size = base_ext.size();
        Staging {
            base,
            base_ext,
            dirty_from: size,
            tail: Tail::Mem(Vec::new()),
            size,
            dirty: false,
            appends_only: true,
            mtime_ns: None,
            refused: None,
            spill_bytes,
            spill_dir,
            cache: Vec::new(),
        }
    }

    pub fn tail_reader(&self) -> TailReader<'_> {
        TailReader {
            tail: &self.tail,
            pos: 0,
        }
    }

    /// The staged bytes after `dirty_from`, when they are held in memory.
    pub fn tail_in_memory(&self) -> Option<&[u8]> {
        match &self.tail {
            Tail::Mem(v) => Some(v),
            Tail::File { .. } => None,
        }
    }

    pub fn tail_len(&self) -> u64 {
        self.tail.len()
    }

    /// After a commit: the staged content is now `base`, fully clean.
    pub fn rebase(&mut self, base: Option<VersionId>, base_ext: Extents) {
        self.size = base_ext.size();
        self.dirty_from = self.size;
        self.base = base;
        self.base_ext = base_ext;
        self.tail = Tail::Mem(Vec::new());
        self.dirty = false;
        self.appends_only = true;
        self.mtime_ns = None;
        self.refused = None;
    }

    fn chunk(&mut self, db: &Db, id: ChunkId) -> FsResult<Arc<Vec<u8>>> {
        if let Some(pos) = self.cache.iter().position(|(c, _)| *c == id) {
            let hit = self.cache.remove(pos);
            let data = hit.1.clone();
            self.cache.push(hit);
            return Ok(data);
        }
        let data = Arc::new(db.read(|tx| tx.chunk_data(id))?);
        if self.cache.len() >= CHUNK_CACHE {
            self.cache.remove(0);
        }
        self.cache.push((id, data.clone()));
        Ok(data)
    }

    /// Copies base bytes `[off, off + out.len())` (all below `dirty_from`) into `out`.
    pub fn read_base(&mut self, db: &Db, off: u64, out: &mut [u8]) -> FsResult<()> {
        let mut done = 0usize;
        while done < out.len() {
            let pos = off + done as u64;
            let (idx, within) = self
                .base_ext
                .locate(pos)
                .ok_or_else(|| StoreError::Corrupt("read past base version".into()))?;
            let e = self.base_ext.items()[idx];
            let take = ((e.len - within) as usize).min(out.len() - done);
            match e.chunk {
                None => out[done..done + take].fill(0),
                Some(c) => {
                    let data = self.chunk(db, c)?;
                    let s = within as usize;
                    let src = data
                        .get(s..s + take)
                        .ok_or_else(|| StoreError::Corrupt(format!("chunk {c} too short")))?;
                    out[done..done + take].copy_from_slice(src);
                }
            }
            done += take;
        }
        Ok(())
    }

    /// Reads up to `len` bytes at `off` (fewer at end of file).
    pub fn read(&mut self, db: &Db, off: u64, len: u32) -> FsResult<Vec<u8>> {
        let end = off.saturating_add(u64::from(len)).min(self.size);
        if off >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - off) as usize];
        // Part 1: from the base version.
        let base_end = end.min(self.dirty_from);
        if off < base_end {
            let n = (base_end - off) as usize;
            self.read_base(db, off, &mut out[..n])?;
        }
        // Part 2: from the tail; anything past it stays zero.
        let tail_start = off.max(self.dirty_from);
        let tail_end = end.min(self.dirty_from + self.tail.len());
        if tail_start < tail_end {
            let o = (tail_start - off) as usize;
            let n = (tail_end - tail_start) as usize;
            self.tail
                .read_at(tail_start - self.dirty_from, &mut out[o..o + n])
                .map_err(StoreError::from)?;
        }
        Ok(out)
    }

    /// Moves `dirty_from` down to `off`, copying base bytes into the front of the tail.
    fn lower_dirty_from(&mut self, db: &Db, off: u64) -> FsResult<()> {
        if off >= self.dirty_from {
            return Ok(());
        }
        let mut prefix = vec![0u8; (self.dirty_from - off) as usize];
        self.read_base(db, off, &mut prefix)?;
        match &mut self.tail {
            Tail::Mem(v) => {
                v.splice(0..0, prefix);
            }
            Tail::File { file, len } => {
                // Rare (a write before every earlier write of a large file): rewrite.
                let mut old = vec![0u8; *len as usize];
                file.read_exact_at(&mut old, 0).map_err(StoreError::from)?;
                file.write_all_at(&prefix, 0).map_err(StoreError::from)?;
                file.write_all_at(&old, prefix.len() as u64)
                    .map_err(StoreError::from)?;
                *len += prefix.len() as u64;
            }
        }
        self.dirty_from = off;
        Ok(())
    }

    fn spill(&mut self) -> FsResult<()> {
        if let Tail::Mem(v) = &self.tail {
            let file = match &self.spill_dir {
                Some(d) => tempfile::tempfile_in(d),
                None => tempfile::tempfile(),
            }
            .map_err(StoreError::from)?;
            file.write_all_at(v, 0).map_err(StoreError::from)?;
            self.tail = Tail::File {
                file,
                len: v.len() as u64,
            };
        }
        Ok(())
    }

    /// Writes `data` at `off` (`append`: through an `O_APPEND` handle, at the end).
    /// The caller has checked the size limit.
    pub fn write(
        &mut self,
        db: &Db,
        off: u64,
        data: &[u8],
        append: bool,
        now_ns: i64,
    ) -> FsResult<()> {
        self.appends_only &= append;
        let end = off + data.len() as u64;
        if off < self.dirty_from {
            self.lower_dirty_from(db, off)?;
        }
        let rel = off - self.dirty_from;
        let rel_end = end - self.dirty_from;
        if let Tail::Mem(_) = self.tail {
            if rel_end > self.spill_bytes as u64 {
                self.spill()?;
            }
        }
        match &mut self.tail {
            Tail::Mem(v) => {
                let (r, re) = (rel as usize, rel_end as usize);
                if v.len() < re {
                    v.resize(re, 0);
                }
                v[r..re].copy_from_slice(data);
            }
            Tail::File { file, len } => {
                // Positional writes leave holes for skipped ranges, so a sparse
                // file stays sparse in the temp file too.
                file.write_all_at(data, rel).map_err(StoreError::from)?;
                *len = (*len).max(rel_end);
            }
        }
        self.size = self.size.max(end);
        self.dirty = true;
        self.mtime_ns = Some(now_ns);
        Ok(())
    }

    /// Sets the size. Returns whether anything changed.
    pub fn truncate(&mut self, size: u64, now_ns: i64) -> FsResult<bool> {
        if size == self.size {
            return Ok(false);
        }
        self.appends_only = false;
        if size < self.dirty_from {
            self.dirty_from = size;
            self.tail = Tail::Mem(Vec::new());
        } else {
            let keep = size - self.dirty_from;
            match &mut self.tail {
                Tail::Mem(v) => {
                    if (v.len() as u64) > keep {
                        v.truncate(keep as usize);
                    }
                }
                Tail::File { file, len } => {
                    if *len > keep {
                        file.set_len(keep).map_err(StoreError::from)?;
                        *len = keep;
                    }
                }
            }
        }
        self.size = size;
        self.dirty = true;
        self.mtime_ns = Some(now_ns);
        Ok(true)
    }

    /// Where re-chunking should start for a commit: the start of the base chunk
    /// holding `dirty_from`, with the base bytes from there to `dirty_from`. Cutting
    /// from a chunk boundary the base also cut at lets content-defined chunking
    /// find the old boundaries again after an edit, so unchanged chunks dedupe.
    pub fn commit_start(&mut self, db: &Db) -> FsResult<(u64, Vec<u8>)> {
        if let Some((idx, within)) = self.base_ext.locate(self.dirty_from) {
            let e = self.base_ext.items()[idx];
            if within > 0 && e.chunk.is_some() {
                let start = self.dirty_from - within;
                let mut buf = vec![0u8; within as usize];
                self.read_base(db, start, &mut buf)?;
                return Ok((start, buf));
            }
        }
        Ok((self.dirty_from, Vec::new()))
    }

    /// Base bytes `[0, len)`, for hashing when no cached hash state exists.
    pub fn hash_base_prefix(
        &mut self,
        db: &Db,
        len: u64,
    ) -> FsResult<crate::digest::ContentHasher> {
        let mut h = crate::digest::ContentHasher::new();
        let mut pos = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        while pos < len {
            let n = ((len - pos) as usize).min(buf.len());
            self.read_base(db, pos, &mut buf[..n])?;
            h.update(&buf[..n]);
            pos += n as u64;
        }
        Ok(h)
    }
}

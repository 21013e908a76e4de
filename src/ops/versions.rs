//! Memory versions as the memory-store API sees them: each content version of
//! a store's files (`created` for a file's first, `modified` after), and each
//! deletion of a file (`deleted`, from the audit log), newest first; with who
//! made it (`created_by`) and, once redacted, who redacted it. Redaction goes
//! through the store's redaction (content, hash, size and path removed for
//! good; who and when kept).

use super::actor::Actor;
use super::memories::Unavailable;
use super::page::{self, Page};
use super::{Ops, Principal};
use crate::error::{OpError, OpResult};
use crate::ids::{Ino, VersionId};
use crate::store::{FileVersion, FileVersionFilter, FileVersionKind};

/// One memory version.
#[derive(Clone, Debug)]
pub struct MemoryVersion {
    pub entry: FileVersion,
    pub store_api_id: String,
    pub created_by: Actor,
    pub redacted_by: Option<Actor>,
    pub content: Option<String>,
    pub unavailable: Option<Unavailable>,
}

impl MemoryVersion {
    /// `memver_<version>` for content, `memver_del<audit entry>` for a deletion.
    pub fn id(&self) -> String {
        version_id(self.entry.kind, self.entry.id)
    }

    pub fn operation(&self) -> &'static str {
        match (self.entry.kind, self.entry.first) {
            (FileVersionKind::Deleted, _) => "deleted",
            (FileVersionKind::Content, true) => "created",
            (FileVersionKind::Content, false) => "modified",
        }
    }
}

pub fn version_id(kind: FileVersionKind, id: i64) -> String {
    match kind {
        FileVersionKind::Content => format!("memver_{id}"),
        FileVersionKind::Deleted => format!("memver_del{id}"),
    }
}

fn parse_version_id(s: &str) -> OpResult<(FileVersionKind, i64)> {
    let none = || OpError::NotFound(format!("no memory version '{s}'"));
    let rest = s.strip_prefix("memver_").ok_or_else(none)?;
    let (kind, n) = match rest.strip_prefix("del") {
        Some(n) => (FileVersionKind::Deleted, n),
        None => (FileVersionKind::Content, rest),
    };
    let n: i64 = n.parse().map_err(|_| none())?;
    Ok((kind, n))
}

/// Which versions to list.
#[derive(Clone, Debug, Default)]
pub struct VersionQuery {
    pub memory_id: Option<String>,
    pub operation: Option<String>,
    pub session_id: Option<String>,
    pub api_key_id: Option<String>,
    /// Service accounts do not exist in memfs: filtering by one lists nothing.
    pub service_account_id: Option<String>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub limit: Option<i64>,
    pub page: Option<String>,
    pub full: bool,
}

impl Ops {
    fn version_view(
        &self,
        store_api_id: &str,
        e: FileVersion,
        full: bool,
    ) -> OpResult<MemoryVersion> {
        let created_by = Actor::of(&e.agent, &e.session, e.user.as_deref());
        let redacted_by = match (e.kind, e.redacted_ns) {
            (FileVersionKind::Content, Some(_)) => self
                .read(|tx| tx.redacted_by(VersionId(e.id)))?
                .map(|(a, s, u, _)| Actor::of(&a, &s, u.as_deref())),
            _ => None,
        };
        let mut v = MemoryVersion {
            entry: e,
            store_api_id: store_api_id.to_string(),
            created_by,
            redacted_by,
            content: None,
            unavailable: None,
        };
        let e = &v.entry;
        if full && e.kind == FileVersionKind::Content && e.redacted_ns.is_none() {
            if e.size.unwrap_or(0) > self.max_content_bytes {
                v.unavailable = Some(Unavailable::TooLarge);
            } else {
                let id = VersionId(e.id);
                let bytes = self.read(|tx| {
                    let ext = tx.extents(id)?;
                    tx.read_extents(&ext, 0, ext.size())
                })?;
                match String::from_utf8(bytes) {
                    Ok(s) => v.content = Some(s),
                    Err(_) => v.unavailable = Some(Unavailable::Binary),
                }
            }
        }
        if e.kind == FileVersionKind::Content && e.redacted_ns.is_none() && e.sha256.is_none() {
            let id = VersionId(e.id);
            let sha = self
                .db()
                .write(|tx| tx.version_sha256(id))
                .map_err(OpError::from)?;
            v.entry.sha256 = sha;
        }
        Ok(v)
    }

    /// A store's memory versions, newest first, a page at a time.
    pub fn list_versions(
        &self,
        p: &Principal,
        store_id: &str,
        q: &VersionQuery,
    ) -> OpResult<Page<MemoryVersion>> {
        let (store, _) = self.store(p, store_id)?;
        let limit = page::limit(q.limit, 20, 100)?.min(if q.full { 20 } else { 100 });
        let mut f = FileVersionFilter {
            limit: limit as u64 + 1,
            since_ns: q.since_ns,
            until_ns: q.until_ns,
            ..Default::default()
        };
        if let Some(m) = &q.memory_id {
            let ino = m
                .strip_prefix("mem_")
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| OpError::Invalid(format!("invalid memory_id '{m}'")))?;
            f.ino = Some(Ino(ino));
        }
        if let Some(op) = &q.operation {
            if !matches!(op.as_str(), "created" | "modified" | "deleted") {
                return Err(OpError::Invalid(format!(
                    "operation must be created, modified or deleted, not '{op}'"
                )));
            }
            f.operation = Some(op.clone());
        }
        match (&q.session_id, &q.api_key_id) {
            (Some(_), Some(_)) => {
                return Err(OpError::Invalid(
                    "give session_id or api_key_id, not both".into(),
                ))
            }
            (Some(s), None) => {
                if s.starts_with(super::actor::KEY_SESSION_PREFIX) {
                    return Ok(Page {
                        data: vec![],
                        next_page: None,
                    });
                }
                f.session = Some(s.clone());
            }
            (None, Some(k)) => f.session = Some(k.clone()),
            (None, None) => {}
        }
        if q.service_account_id.is_some() {
            return Ok(Page {
                data: vec![],
                next_page: None,
            });
        }
        if let Some(t) = &q.page {
            let fields = page::decode("ver", t)?;
            let num = |i: usize| -> OpResult<i64> {
                fields
                    .get(i)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| OpError::Invalid("invalid page cursor".into()))
            };
            f.before = Some((num(0)?, num(1)?, num(2)?));
        }
        let mut rows = self.read(|tx| tx.file_versions(store.id, &f))?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_page = match (more, rows.last()) {
            (true, Some(l)) => {
                let k = if l.kind == FileVersionKind::Content {
                    0
                } else {
                    1
                };
                Some(page::encode(
                    "ver",
                    &[&l.at_ns.to_string(), &k.to_string(), &l.id.to_string()],
                ))
            }
            _ => None,
        };
        let data = rows
            .into_iter()
            .map(|e| self.version_view(&store.api_id, e, q.full))
            .collect::<OpResult<Vec<_>>>()?;
        Ok(Page { data, next_page })
    }

    /// One memory version.
    pub fn get_version(
        &self,
        p: &Principal,
        store_id: &str,
        version: &str,
        full: bool,
    ) -> OpResult<MemoryVersion> {
        let (store, _) = self.store(p, store_id)?;
        let (kind, id) = parse_version_id(version)?;
        let f = FileVersionFilter {
            only: Some((kind, id)),
            limit: 1,
            ..Default::default()
        };
        let e = self
            .read(|tx| tx.file_versions(store.id, &f))?
            .pop()
            .ok_or_else(|| OpError::NotFound(format!("no memory version '{version}'")))?;
        self.version_view(&store.api_id, e, full)
    }

    /// Redacts a version: its content, hash, size and path are removed for
    /// good; who wrote it and when stay. Only an admin may. Redacting a
    /// redacted version again changes nothing. The current content of a live
    /// memory cannot be redacted (write over it or delete it first).
    pub fn redact_version(
        &self,
        p: &Principal,
        store_id: &str,
        version: &str,
    ) -> OpResult<MemoryVersion> {
        p.require_admin("redact versions")?;
        let v = self.get_version(p, store_id, version, false)?;
        if v.entry.kind == FileVersionKind::Deleted {
            return Err(OpError::Invalid(format!(
                "'{version}' records a deletion and holds no content to redact"
            )));
        }
        if v.entry.redacted_ns.is_none() {
            // The one redaction path (memfsctl redact takes it too): secure
            // delete, then the database files scrubbed of the removed bytes.
            let done = self.redact(p, VersionId(v.entry.id))?;
            if let Some(problem) = super::removal::scrub_problem(&done.scrub) {
                tracing::warn!(version = %version, "{problem}");
            }
        }
        self.get_version(p, store_id, version, false)
    }
}

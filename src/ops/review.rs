//! Review for drift: per store and person, what changed since they last
//! marked the store reviewed, file by file (with the versions to diff) and
//! entry by entry, and marking it reviewed up to an entry they saw. The mark
//! is kept per person (the principal's user, else its agent) in the database.

use super::{Ops, Principal};
use crate::error::{OpError, OpResult, StoreError};
use crate::history::head_versions;
use crate::ids::{now_ns, Ino, VersionId};
use crate::store::{AuditEntry, AuditFilter};
use crate::timefmt::rfc3339;
use serde::Serialize;
use std::collections::BTreeMap;

/// At most this many entries are read after a mark.
pub const MAX_ENTRIES: u64 = 2000;

/// A file changed since the mark.
#[derive(Clone, Debug, Serialize)]
pub struct ChangedFile {
    /// Its path now, or where the log last saw it.
    pub path: String,
    pub ino: Ino,
    /// It still exists.
    pub live: bool,
    /// Entries about it after the mark.
    pub changes: usize,
    /// Who made them (agents, in order of first appearance).
    pub agents: Vec<String>,
    /// Its content at the mark (`None`: it had none, or it was not a file yet).
    pub from: Option<VersionId>,
    /// Its content now.
    pub to: Option<VersionId>,
}

/// What changed in a store since a person's last review.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewStatus {
    pub store: String,
    pub reviewer: String,
    /// The newest entry the person marked reviewed (0: never reviewed).
    pub reviewed_through: i64,
    pub reviewed_at: Option<String>,
    pub files: Vec<ChangedFile>,
    /// The entries after the mark, newest first.
    pub entries: Vec<AuditEntry>,
    /// More entries than [`MAX_ENTRIES`] followed the mark.
    pub truncated: bool,
}

/// Whose marks a principal's are.
pub fn reviewer(p: &Principal) -> String {
    p.who.user.clone().unwrap_or_else(|| p.who.agent.clone())
}

impl Ops {
    /// What changed in `store` since `p`'s last review of it.
    pub fn review_status(&self, p: &Principal, store: &str) -> OpResult<ReviewStatus> {
        let row = self.visible_store(p, store)?;
        let who = reviewer(p);
        let mark = self.read(|tx| tx.review_mark(&who, &row.api_id))?;
        let through = mark.map_or(0, |(id, _)| id);
        let mut entries = self.read(|tx| {
            tx.audit_entries(&AuditFilter {
                store: Some(row.id),
                after_id: Some(through),
                ascending: true,
                limit: Some(MAX_ENTRIES + 1),
                ..Default::default()
            })
        })?;
        let truncated = entries.len() as u64 > MAX_ENTRIES;
        entries.truncate(MAX_ENTRIES as usize);
        let mut by_ino: BTreeMap<i64, Vec<&AuditEntry>> = BTreeMap::new();
        for e in &entries {
            if let Some(i) = e.ino {
                by_ino.entry(i).or_default().push(e);
            }
        }
        let mut files = Vec::new();
        for (ino, es) in by_ino {
            let ino = Ino(ino);
            let (inode, path_now, heads) = self.read(|tx| {
                Ok::<_, StoreError>((tx.inode(ino)?, tx.path_of(ino)?, head_versions(tx, ino)?))
            })?;
            let is_file = inode
                .as_ref()
                .is_some_and(|r| r.kind == crate::store::NodeKind::File);
            let wrote = es.iter().any(|e| e.version.is_some());
            if !is_file && !wrote {
                continue; // A directory, a symlink, or a file never written.
            }
            let first_v = es.iter().filter_map(|e| e.version).min();
            let from = match first_v {
                Some(v) => heads.iter().rfind(|h| h.id.0 < v).map(|h| h.id),
                None => heads.last().map(|h| h.id),
            };
            let live = inode.as_ref().is_some_and(|r| r.nlink > 0);
            let mut agents: Vec<String> = Vec::new();
            for e in &es {
                if !agents.contains(&e.agent) {
                    agents.push(e.agent.clone());
                }
            }
            let last_path = es
                .iter()
                .rev()
                .find_map(|e| e.path2.clone().or_else(|| e.path.clone()));
            files.push(ChangedFile {
                path: path_now.or(last_path).unwrap_or_default(),
                ino,
                live,
                changes: es.len(),
                agents,
                from,
                to: if live {
                    inode.and_then(|r| r.head)
                } else {
                    None
                },
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        entries.reverse();
        Ok(ReviewStatus {
            store: row.name,
            reviewer: who,
            reviewed_through: through,
            reviewed_at: mark.map(|(_, at)| rfc3339(at)),
            files,
            entries,
            truncated,
        })
    }

    /// Marks `store` reviewed by `p` up to audit entry `through` (the newest
    /// entry they were shown; later ones stay unreviewed). A mark never
    /// moves back.
    pub fn mark_reviewed(&self, p: &Principal, store: &str, through: i64) -> OpResult<i64> {
        let row = self.visible_store(p, store)?;
        let who = reviewer(p);
        let last = self.read(|tx| tx.last_audit_id())?;
        if through < 0 || through > last {
            return Err(OpError::Invalid(format!(
                "no audit entry {through} to mark reviewed up to"
            )));
        }
        self.db()
            .write(|tx| {
                let old = tx.review_mark(&who, &row.api_id)?.map_or(0, |(id, _)| id);
                let new = old.max(through);
                tx.set_review_mark(&who, &row.api_id, new, now_ns())?;
                Ok::<_, StoreError>(new)
            })
            .map_err(OpError::from)
    }
}

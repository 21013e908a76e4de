//! Full-text search across a store's current content, with the matching
//! lines for people. The index (`store/search.rs`, SQLite FTS5) holds one row
//! per live file of each store searched so far and says up to which audit
//! entry it is current; before every search it is brought up to date from the
//! audit log since that entry (every change of every front end has one), so
//! it cannot drift from the heads, whoever wrote them. Encrypted stores are
//! not indexed (the index would hold their plaintext): they are searched by
//! reading their files. Removals for good (`removal.rs`) bring every index up
//! to date before the database files are scrubbed, so a purged file's text
//! leaves the index too.

use super::{Ops, Principal};
use crate::error::{OpError, OpResult, StoreError};
use crate::ids::Ino;
use crate::store::{AuditFilter, NodeKind, StoreRow, Txn};
use serde::Serialize;
use std::collections::BTreeSet;

/// At most this many files per search.
pub const MAX_HITS: usize = 50;
/// At most this many matching lines shown per file.
pub const MAX_LINES: usize = 5;
/// Catch-up reads the audit log in batches of this many entries.
const BATCH: u64 = 2000;

/// One matching line: its number (from 1), its text, and the byte ranges of
/// the matches in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineMatch {
    pub line: usize,
    pub text: String,
    pub ranges: Vec<(usize, usize)>,
}

/// A file that matched.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    pub path: String,
    pub ino: Ino,
    /// Ranges of the matches in the path.
    pub path_ranges: Vec<(usize, usize)>,
    pub lines: Vec<LineMatch>,
}

/// What a search found.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResults {
    pub store: String,
    pub query: String,
    pub hits: Vec<Hit>,
    /// The index was current up to this audit entry (0 when the store was
    /// read directly).
    pub indexed_through: i64,
}

/// The query's terms: words separated by white space, without quotes.
pub fn terms(query: &str) -> Vec<String> {
    query
        .split_whitespace()
        .map(|t| t.replace('"', ""))
        .filter(|t| !t.is_empty())
        .collect()
}

/// An FTS5 query matching every term as a plain string (FTS5's operators
/// and syntax in the user's words mean nothing).
fn fts_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Byte ranges where any term occurs in `text`, ignoring ASCII case, sorted
/// and not overlapping. Ranges start and end on character boundaries: a
/// term is valid UTF-8, so it can only match where a character starts.
pub fn find_ranges(text: &str, terms: &[String]) -> Vec<(usize, usize)> {
    let hay = text.as_bytes();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for t in terms {
        let needle = t.as_bytes();
        if needle.is_empty() || needle.len() > hay.len() {
            continue;
        }
        let mut i = 0;
        while i + needle.len() <= hay.len() {
            if hay[i..i + needle.len()].eq_ignore_ascii_case(needle) {
                out.push((i, i + needle.len()));
                i += needle.len();
            } else {
                i += 1;
            }
        }
    }
    out.sort();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (a, b) in out {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// The lines of `body` holding a term, at most `MAX_LINES`.
pub fn matching_lines(body: &str, terms: &[String]) -> Vec<LineMatch> {
    body.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let ranges = find_ranges(l, terms);
            (!ranges.is_empty()).then(|| LineMatch {
                line: i + 1,
                text: l.to_string(),
                ranges,
            })
        })
        .take(MAX_LINES)
        .collect()
}

/// Whether `body` holds every term (ignoring ASCII case), or the path does.
fn holds_all(path: &str, body: &str, terms: &[String]) -> bool {
    terms.iter().all(|t| {
        !find_ranges(body, std::slice::from_ref(t)).is_empty()
            || !find_ranges(path, std::slice::from_ref(t)).is_empty()
    })
}

/// The text of a file's head, if it is text the console would show.
fn head_text(tx: &Txn<'_>, head: Option<crate::ids::VersionId>, max: u64) -> OpResult<String> {
    let Some(v) = head else {
        return Ok(String::new());
    };
    let ext = tx.extents(v)?;
    if ext.size() > max {
        return Ok(String::new());
    }
    let bytes = tx.read_extents(&ext, 0, ext.size())?;
    Ok(String::from_utf8(bytes).unwrap_or_default())
}

/// Every live regular file below directory `dir` (at store path `path`).
fn files_below(
    tx: &Txn<'_>,
    dir: Ino,
    path: &str,
    out: &mut Vec<(Ino, String, Option<crate::ids::VersionId>)>,
    level: usize,
) -> Result<(), StoreError> {
    if level > 64 {
        return Ok(());
    }
    for (name, inode, _) in tx.dir_listing(dir)? {
        let name = String::from_utf8_lossy(&name).into_owned();
        let full = if path.is_empty() {
            name
        } else {
            format!("{path}/{name}")
        };
        match inode.kind {
            NodeKind::Dir => files_below(tx, inode.ino, &full, out, level + 1)?,
            NodeKind::File => out.push((inode.ino, full, inode.head)),
            _ => {}
        }
    }
    Ok(())
}

impl Ops {
    /// Re-indexes the files an audit entry about `ino` may have changed: the
    /// file itself, or every file below a directory (a renamed directory
    /// changes their paths).
    fn reindex(&self, tx: &Txn<'_>, store: &StoreRow, ino: Ino) -> OpResult<()> {
        let live = tx
            .inode(ino)?
            .filter(|r| r.nlink > 0 && r.store == Some(store.id));
        let Some(row) = live else {
            tx.search_remove(ino)?;
            return Ok(());
        };
        let Some(path) = tx.path_of(ino)? else {
            tx.search_remove(ino)?;
            return Ok(());
        };
        match row.kind {
            NodeKind::File => {
                let body = head_text(tx, row.head, self.max_content_bytes)?;
                tx.search_put(store.id, ino, &path, &body)?;
            }
            NodeKind::Dir => {
                let mut files = Vec::new();
                files_below(tx, ino, &path, &mut files, 0)?;
                for (f, p, head) in files {
                    let body = head_text(tx, head, self.max_content_bytes)?;
                    tx.search_put(store.id, f, &p, &body)?;
                }
            }
            _ => tx.search_remove(ino)?,
        }
        Ok(())
    }

    /// Brings the index of `store` up to date with the audit log; returns
    /// the audit entry it is now current up to.
    pub fn search_catch_up(&self, store: &StoreRow) -> OpResult<i64> {
        // Most searches find nothing new: check on a read connection first.
        let (pos, last) = self.read(|tx| {
            Ok::<_, StoreError>((
                tx.search_position(store.id)?,
                tx.last_store_audit_id(store.id)?,
            ))
        })?;
        if let Some((api, at)) = &pos {
            if *api == store.api_id && *at >= last {
                return Ok(*at);
            }
        }
        self.db().write(|tx| self.catch_up_in(tx, store))
    }

    fn catch_up_in(&self, tx: &Txn<'_>, store: &StoreRow) -> OpResult<i64> {
        let pos = tx.search_position(store.id)?;
        let from = match pos {
            Some((api, at)) if api == store.api_id => at,
            _ => {
                // First search of this store (or of a store that took a
                // deleted one's id): index every file, as of now.
                tx.search_drop_store(store.id)?;
                let through = tx.last_audit_id()?;
                let mut files = Vec::new();
                files_below(tx, store.root, "", &mut files, 0)?;
                for (f, p, head) in files {
                    let body = head_text(tx, head, self.max_content_bytes)?;
                    tx.search_put(store.id, f, &p, &body)?;
                }
                tx.set_search_position(store.id, &store.api_id, through)?;
                return Ok(through);
            }
        };
        let mut at = from;
        loop {
            let entries = tx.audit_entries(&AuditFilter {
                store: Some(store.id),
                after_id: Some(at),
                ascending: true,
                limit: Some(BATCH),
                ..Default::default()
            })?;
            let Some(last) = entries.last() else { break };
            at = last.id.0;
            let inos: BTreeSet<i64> = entries.iter().filter_map(|e| e.ino).collect();
            for ino in inos {
                self.reindex(tx, store, Ino(ino))?;
            }
            if (entries.len() as u64) < BATCH {
                break;
            }
        }
        tx.set_search_position(store.id, &store.api_id, at)?;
        Ok(at)
    }

    /// Brings every index up to date and drops those of stores that are
    /// gone: what removals for good do before scrubbing the database files.
    pub(crate) fn search_catch_up_all(&self) -> OpResult<()> {
        let stale = self.read(|tx| tx.search_stale_stores())?;
        if !stale.is_empty() {
            self.db().write(|tx| {
                for s in &stale {
                    tx.search_drop_store(*s)?;
                }
                Ok::<_, StoreError>(())
            })?;
        }
        let indexed: Vec<StoreRow> = self
            .read(|tx| tx.stores())?
            .into_iter()
            .filter(|s| !s.encrypted)
            .collect();
        for s in indexed {
            let has = self.read(|tx| tx.search_position(s.id))?.is_some();
            if has {
                self.search_catch_up(&s)?;
            }
        }
        Ok(())
    }

    /// The files of `store` whose path or current content holds every word
    /// of `query` (ignoring case), best first, with their matching lines.
    pub fn search(&self, p: &Principal, store: &str, query: &str) -> OpResult<SearchResults> {
        let row = self.visible_store(p, store)?;
        let terms = terms(query);
        let mut out = SearchResults {
            store: row.name.clone(),
            query: query.to_string(),
            hits: Vec::new(),
            indexed_through: 0,
        };
        if terms.is_empty() {
            return Ok(out);
        }
        if terms.iter().any(|t| t.chars().count() > 200) {
            return Err(OpError::Invalid(
                "search words must be at most 200 characters".into(),
            ));
        }
        let found: Vec<(Ino, String, String)> = if row.encrypted {
            let max = self.max_content_bytes;
            self.read(|tx| {
                let mut files = Vec::new();
                files_below(tx, row.root, "", &mut files, 0)?;
                let mut out = Vec::new();
                for (ino, path, head) in files {
                    let body = head_text(tx, head, max).map_err(|e| match e {
                        OpError::Store(s) => s,
                        e => StoreError::Invalid(e.to_string()),
                    })?;
                    if holds_all(&path, &body, &terms) {
                        out.push((ino, path, body));
                        if out.len() >= MAX_HITS {
                            break;
                        }
                    }
                }
                Ok::<_, StoreError>(out)
            })?
        } else {
            out.indexed_through = self.search_catch_up(&row)?;
            let q = fts_query(&terms);
            self.read(|tx| tx.search_query(row.id, &q, MAX_HITS as u64))?
                .into_iter()
                .map(|r| (r.ino, r.path, r.body))
                .collect()
        };
        out.hits = found
            .into_iter()
            .map(|(ino, path, body)| Hit {
                path_ranges: find_ranges(&path, &terms),
                lines: matching_lines(&body, &terms),
                path,
                ino,
            })
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_ignore_ascii_case_and_merge() {
        let t = vec!["deploy".to_string(), "key".to_string()];
        assert_eq!(
            find_ranges("The DEPLOY key: deploykey", &t),
            vec![(4, 10), (11, 14), (16, 25)]
        );
        assert_eq!(
            find_ranges("ünïcode ünï", &["ünï".into()]),
            vec![(0, 5), (10, 15)]
        );
        assert!(find_ranges("abc", &["abcd".into()]).is_empty());
    }

    #[test]
    fn fts_syntax_in_words_is_plain_text() {
        assert_eq!(terms(r#"a "b" OR c*"#), vec!["a", "b", "OR", "c*"]);
        assert_eq!(fts_query(&terms("x NEAR(y)")), r#""x" "NEAR(y)""#);
    }
}

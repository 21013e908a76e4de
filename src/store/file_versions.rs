//! A store's file history as one stream, newest first: every content version
//! of its regular files (conflict versions aside, which never became content)
//! and every removal of a file's last name. This is what the memory-store API
//! lists as memory versions (`created`, `modified`, `deleted`).

use super::sql::Value;
use super::Txn;
use crate::error::StoreResult;
use crate::ids::{Ino, StoreId};

/// Who made a change and when: agent, session, user, time.
pub type Attribution = (String, String, Option<String>, i64);

/// What an entry of the stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileVersionKind {
    /// A content version (`id` is its version id).
    Content,
    /// The removal of the file's last name (`id` is the audit entry's).
    Deleted,
}

/// One entry of a store's file history.
#[derive(Clone, Debug)]
pub struct FileVersion {
    pub kind: FileVersionKind,
    pub id: i64,
    pub ino: Ino,
    pub at_ns: i64,
    /// The file's first content version.
    pub first: bool,
    /// The path then; `None` once redacted or sealed.
    pub path: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<[u8; 32]>,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub redacted_ns: Option<i64>,
}

/// Which entries to list. Every field narrows the result.
#[derive(Clone, Debug, Default)]
pub struct FileVersionFilter {
    pub ino: Option<Ino>,
    /// `created`, `modified` or `deleted`.
    pub operation: Option<String>,
    pub session: Option<String>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// Only entries before this position (at_ns, kind, id), for paging.
    pub before: Option<(i64, i64, i64)>,
    pub limit: u64,
    /// Exactly one entry: (kind, id).
    pub only: Option<(FileVersionKind, i64)>,
}

fn kind_code(k: FileVersionKind) -> i64 {
    match k {
        FileVersionKind::Content => 0,
        FileVersionKind::Deleted => 1,
    }
}

/// The stream's SQL: content versions and last-name removals of `?1`'s files.
const STREAM: &str = "\
    SELECT 0 AS kind, v.id AS id, v.ino AS ino, v.at_ns AS at_ns, v.path AS path, \
           v.size AS size, v.sha256 AS sha256, v.agent AS agent, v.session AS session, \
           v.\"user\" AS \"user\", v.redacted_ns AS redacted_ns, \
           NOT EXISTS (SELECT 1 FROM versions p WHERE p.ino = v.ino AND p.id < v.id \
                       AND p.op <> 'conflict') AS first \
    FROM versions v WHERE v.store_id = ?1 AND v.op <> 'conflict' \
    UNION ALL \
    SELECT 1, a.id, a.ino, a.at_ns, a.path, NULL, NULL, a.agent, a.session, a.\"user\", NULL, FALSE \
    FROM audit a JOIN inodes i ON i.ino = a.ino \
    WHERE a.store_id = ?1 AND a.op = 'unlink' AND i.kind = 1 \
      AND (a.detail IS NULL OR coalesce(JSON_NLINK, 0) = 0)";

/// A detail's `nlink` as a number, in each engine's JSON functions.
fn stream_sql(dialect: super::sql::Dialect) -> String {
    let nlink = match dialect {
        super::sql::Dialect::Sqlite => "json_extract(a.detail, '$.nlink')",
        super::sql::Dialect::Postgres => "(a.detail::jsonb ->> 'nlink')::bigint",
    };
    STREAM.replace("JSON_NLINK", nlink)
}

impl Txn<'_> {
    /// The file history of `store` matching `f`, newest first.
    pub fn file_versions(
        &self,
        store: StoreId,
        f: &FileVersionFilter,
    ) -> StoreResult<Vec<FileVersion>> {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Value<'static>> = vec![store.0.into()];
        // Numbers each `?` of `cond` after the arguments before it.
        let mut push = |cond: &str, vals: Vec<Value<'static>>| {
            let mut pieces = cond.split('?');
            let mut c = pieces.next().unwrap_or_default().to_string();
            for (piece, v) in pieces.zip(vals) {
                args.push(v);
                c.push_str(&format!("?{}{piece}", args.len()));
            }
            conds.push(c);
        };
        if let Some(i) = f.ino {
            push("ino = ?", vec![i.0.into()]);
        }
        match f.operation.as_deref() {
            Some("created") => push("kind = 0 AND first", vec![]),
            Some("modified") => push("kind = 0 AND NOT first", vec![]),
            Some("deleted") => push("kind = 1", vec![]),
            Some(_) => push("1 = 0", vec![]),
            None => {}
        }
        if let Some(s) = &f.session {
            push("session = ?", vec![s.clone().into()]);
        }
        if let Some(t) = f.since_ns {
            push("at_ns >= ?", vec![t.into()]);
        }
        if let Some(t) = f.until_ns {
            push("at_ns <= ?", vec![t.into()]);
        }
        if let Some((at, k, id)) = f.before {
            push(
                "(at_ns, kind, id) < (?, ?, ?)",
                vec![at.into(), k.into(), id.into()],
            );
        }
        if let Some((k, id)) = f.only {
            push("kind = ? AND id = ?", vec![kind_code(k).into(), id.into()]);
        }
        let sql = format!(
            "SELECT kind, id, ino, at_ns, path, size, sha256, agent, session, \"user\", redacted_ns, \
             first FROM ({}) AS s {} ORDER BY at_ns DESC, kind DESC, id DESC LIMIT {}",
            stream_sql(self.dialect()),
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            },
            f.limit.max(1)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(super::sql::params_from_iter(args), |r| {
            let kind: i64 = r.get(0)?;
            let path: Option<String> = r.get(4)?;
            let size: Option<i64> = r.get(5)?;
            let sha: Option<Vec<u8>> = r.get(6)?;
            let redacted_ns: Option<i64> = r.get(10)?;
            Ok(FileVersion {
                kind: if kind == 0 {
                    FileVersionKind::Content
                } else {
                    FileVersionKind::Deleted
                },
                id: r.get(1)?,
                ino: Ino(r.get(2)?),
                at_ns: r.get(3)?,
                first: r.get(11)?,
                path: path.filter(|p| redacted_ns.is_none() && !p.is_empty()),
                size: size
                    .filter(|_| redacted_ns.is_none())
                    .and_then(|s| u64::try_from(s).ok()),
                sha256: sha.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()),
                agent: r.get(7)?,
                session: r.get(8)?,
                user: r.get(9)?,
                redacted_ns,
            })
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// Who redacted version `id`, and when: (agent, session, user, at_ns).
    pub fn redacted_by(&self, id: crate::ids::VersionId) -> StoreResult<Option<Attribution>> {
        use super::sql::OptionalExtension;
        self.conn
            .prepare_cached(
                "SELECT agent, session, \"user\", at_ns FROM audit \
                 WHERE version = ?1 AND op = 'redact' ORDER BY id LIMIT 1",
            )?
            .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()
    }
}

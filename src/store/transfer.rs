//! Moving a whole database between engines (`memfsctl migrate-db`): every
//! table copied row by row, ids included, into an empty database of the other
//! (or the same) engine, in one transaction on the target. Ids are kept, so
//! API ids (`mem_<ino>`, version ids), history and the audit chains (whose
//! hashes cover ids) stay valid: `audit verify` and `fsck` pass on both sides.

use super::sql::{FromCol, Val, Value};
use super::Db;
use crate::error::{StoreError, StoreResult};
use std::borrow::Cow;

/// The tables in an order that satisfies their foreign keys, each with its
/// columns and, for the large ones, the integer key to page by.
const TABLES: &[(&str, &str, Option<&str>)] = &[
    (
        "stores",
        "id, name, scope, owner, description, root_ino, created_ns, archived, encrypted, \
         api_id, title, metadata, updated_ns, archived_ns, settings, draft_of",
        Some("id"),
    ),
    (
        "drafts",
        "store_id, base_id, name, base_audit, base_ns, created_ns, agent, session, \"user\", \
         reason, for_session",
        None,
    ),
    (
        "draft_base",
        "draft_id, path, kind, origin, ino, head, target",
        None,
    ),
    (
        "jobs",
        "id, kind, store_id, draft_id, output_id, request, status, error, agent, session, \
         \"user\", key_id, created_ns, started_ns, ended_ns, archived_ns, runner",
        None,
    ),
    (
        "inodes",
        "ino, store_id, kind, perm, uid, gid, nlink, size, rdev, atime_ns, mtime_ns, ctime_ns, \
         crtime_ns, head, target",
        Some("ino"),
    ),
    ("dentries", "parent, name, ino", None),
    ("chunks", "id, store_id, hash, len, data", Some("id")),
    (
        "versions",
        "id, ino, store_id, size, base, base_len, depth, extents, hash, op, path, agent, \
         session, \"user\", at_ns, redacted_ns, sha256",
        Some("id"),
    ),
    (
        "audit",
        "id, at_ns, store_id, op, path, path2, ino, version, agent, session, \"user\", detail, \
         prev_hash, hash, salt, sealed, chain, seq",
        Some("id"),
    ),
    (
        "changes",
        "seq, store_id, ino, parent, name, at_ns, origin",
        Some("seq"),
    ),
    (
        "holders",
        "id, agent, session, \"user\", pid, started_ns, alive_until_ns, host",
        None,
    ),
    (
        "leases",
        "ino, store_id, holder, token, agent, session, \"user\", acquired_ns, expires_ns",
        None,
    ),
    ("fences", "ino, token", None),
    (
        "locks",
        "id, ino, holder, owner, start, \"end\", exclusive, pid",
        None,
    ),
    (
        "store_keys",
        "store_id, key_id, wrapped_key, nonce, created_ns",
        None,
    ),
    (
        "api_keys",
        "id, name, secret_hash, role, agent, \"user\", stores, created_ns, revoked_ns, \
         last_used_ns",
        None,
    ),
    ("pins", "holder, version", None),
    (
        "maintenance",
        "name, holder, pid, started_ns, expires_ns, done_ns",
        None,
    ),
];

/// Identity columns whose sequence must continue after the copied ids.
const IDENTITIES: &[(&str, &str)] = &[
    ("stores", "id"),
    ("inodes", "ino"),
    ("chunks", "id"),
    ("versions", "id"),
    ("audit", "id"),
    ("changes", "seq"),
    ("locks", "id"),
];

/// Rows per read of a large table (chunks hold up to 64 KiB each).
const PAGE: i64 = 500;

/// What a copy moved, per table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Moved {
    pub tables: Vec<(String, u64)>,
    pub rows: u64,
}

fn to_value(v: Val) -> Value<'static> {
    match v {
        Val::Null => Value::Null,
        Val::Int(i) => Value::Int(i),
        Val::Real(f) => Value::Real(f),
        Val::Text(t) => Value::Text(Cow::Owned(t)),
        Val::Blob(b) => Value::Blob(Cow::Owned(b)),
    }
}

/// Whether `db` holds nothing of memfs's yet (only the reserved root inode).
pub fn is_empty(db: &Db) -> StoreResult<bool> {
    db.read(|tx| {
        let n: i64 = tx.conn.query_row(
            "SELECT (SELECT count(*) FROM stores) + (SELECT count(*) FROM audit) \
             + (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM inodes WHERE ino <> 1)",
            (),
            |r| r.get(0),
        )?;
        Ok(n == 0)
    })
}

/// Live mounts (holders alive by the database's clock) on `db`.
pub fn live_holders(db: &Db) -> StoreResult<u64> {
    db.read(|tx| {
        let n: i64 = tx.conn.query_row(
            "SELECT count(*) FROM holders WHERE alive_until_ns > memfs_now()",
            (),
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    })
}

/// Copies every table of `src` into the empty database `dst` in one
/// transaction on `dst`. `progress(table, rows)` is called as rows go.
pub fn copy_all(src: &Db, dst: &Db, progress: &mut dyn FnMut(&str, u64)) -> StoreResult<Moved> {
    if !is_empty(dst)? {
        return Err(StoreError::Exists(format!(
            "{} already holds memfs data: migrate only into a new, empty database",
            dst.location()
        )));
    }
    let mut moved = Moved::default();
    dst.write(|out| {
        for (table, cols, key) in TABLES {
            let ncols = cols.split(',').count();
            let marks: Vec<String> = (1..=ncols).map(|i| format!("?{i}")).collect();
            // The reserved root inode exists on both sides already.
            let conflict = if *table == "inodes" {
                " ON CONFLICT (ino) DO NOTHING"
            } else {
                ""
            };
            let insert = format!(
                "INSERT INTO {table} ({cols}) VALUES ({}){conflict}",
                marks.join(", ")
            );
            let mut n = 0u64;
            let mut after = i64::MIN;
            loop {
                let (sql, args): (String, Vec<Value<'static>>) = match key {
                    Some(k) => (
                        format!(
                            "SELECT {cols} FROM {table} WHERE {k} > ?1 ORDER BY {k} LIMIT {PAGE}"
                        ),
                        vec![Value::Int(after)],
                    ),
                    None => (format!("SELECT {cols} FROM {table}"), Vec::new()),
                };
                let rows: Vec<Vec<Val>> = src.read(|tx| {
                    let mut stmt = tx.conn.prepare(&sql)?;
                    let rows =
                        stmt.query_map(args, |r| (0..ncols).map(|i| r.get::<_, Val>(i)).collect())?;
                    rows.collect()
                })?;
                if rows.is_empty() {
                    break;
                }
                let full = rows.len() as i64 == PAGE;
                for row in rows {
                    if key.is_some() {
                        after = i64::from_val(row[0].clone())?;
                    }
                    let vals: Vec<Value<'static>> = row.into_iter().map(to_value).collect();
                    out.conn.prepare_cached(&insert)?.execute(vals)?;
                    n += 1;
                }
                progress(table, n);
                if key.is_none() || !full {
                    break;
                }
            }
            moved.rows += n;
            moved.tables.push((table.to_string(), n));
        }
        if out.dialect() == super::sql::Dialect::Postgres {
            for (table, col) in IDENTITIES {
                out.conn.query_row(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{col}'), \
                         greatest((SELECT max({col}) FROM {table}), 1))"
                    ),
                    (),
                    |_| Ok(()),
                )?;
            }
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(moved)
}

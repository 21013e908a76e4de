//! Retention's side of the store: a store's versions as the rules see them,
//! removing expired versions (through redaction's removal: deltas on them
//! materialized, unused chunks deleted, their audit entries sealed), the pins
//! live mounts publish, the one-collector lease, and giving freed pages back to
//! the filesystem (incremental vacuum).

use super::redact::{Collect, Removal};
use super::sql::{params, OptionalExtension};
use super::{to_u64, Change, Db, Engine, Txn};
use crate::error::StoreResult;
use crate::ids::{Identity, Ino, StoreId, VersionId};
use crate::retention::{Retention, VersionMeta};
use rusqlite::Connection;
use std::collections::{HashMap, HashSet};

/// One regular file's versions, oldest first, as retention sees them.
#[derive(Debug, Clone)]
pub struct FileVersions {
    pub ino: Ino,
    pub head: Option<VersionId>,
    pub versions: Vec<VersionMeta>,
    /// Each version's size, in `versions`' order (for reports).
    pub sizes: Vec<u64>,
}

/// Who holds a maintenance lease (when another process does).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MaintenanceHolder {
    pub holder: String,
    pub pid: u32,
    pub started_ns: i64,
    pub expires_ns: i64,
}

/// The database file's pages and sizes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Space {
    pub page_size: u64,
    pub page_count: u64,
    /// Free pages inside the file (reused by later writes; the file only
    /// shrinks when they are vacuumed away).
    pub freelist_count: u64,
    /// `none`, `full` or `incremental` (see "Space" in docs/FORMAT.md).
    pub auto_vacuum: String,
    /// Bytes of the database file and of its WAL.
    pub file_bytes: u64,
    pub wal_bytes: u64,
}

/// Sets up a brand-new database file to give freed pages back on demand
/// (`auto_vacuum = INCREMENTAL`). This must happen before the first table
/// exists; an older database keeps its mode until a full VACUUM switches it.
pub(super) fn prepare_new_database(conn: &Connection) -> StoreResult<()> {
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    if pages == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    Ok(())
}

impl Txn<'_> {
    /// Every regular file of `store` with its versions, pins of live mounts
    /// marked (as of `now_ns`).
    pub fn retention_view(&self, store: StoreId, now_ns: i64) -> StoreResult<Vec<FileVersions>> {
        self.enter_store(store)?;
        let pins = self.live_pins(now_ns)?;
        let mut files: HashMap<i64, FileVersions> = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT ino, head FROM inodes WHERE store_id = ?1 AND kind = 1")?;
            let rows = stmt.query_map([store.0], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
            })?;
            for row in rows {
                let (ino, head) = row?;
                files.insert(
                    ino,
                    FileVersions {
                        ino: Ino(ino),
                        head: head.map(VersionId),
                        versions: Vec::new(),
                        sizes: Vec::new(),
                    },
                );
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, ino, at_ns, op = 'conflict', redacted_ns IS NOT NULL, size \
             FROM versions WHERE store_id = ?1 ORDER BY ino, id",
        )?;
        let mut rows = stmt.query([store.0])?;
        while let Some(r) = rows.next()? {
            let (id, ino): (i64, i64) = (r.get(0)?, r.get(1)?);
            let Some(f) = files.get_mut(&ino) else {
                continue;
            };
            f.versions.push(VersionMeta {
                id: VersionId(id),
                at_ns: r.get(2)?,
                conflict: r.get(3)?,
                removed: r.get(4)?,
                pinned: pins.contains(&id),
            });
            f.sizes.push(to_u64(r.get(5)?, "version size")?);
        }
        let mut out: Vec<FileVersions> = files.into_values().collect();
        out.sort_by_key(|f| f.ino);
        Ok(out)
    }

    /// Removes the content of expired versions `ids` of `store` (see
    /// [`Txn::redact_version`] for what removal means), sealing their audit
    /// entries, and records one `gc` entry. Each version is checked again
    /// here, under the write lock: one that became a head or pinned since the
    /// plan, or is already gone, is left alone.
    pub fn expire_versions(
        &self,
        store: StoreId,
        ids: &[VersionId],
        rules: &Retention,
        who: &Identity,
        now_ns: i64,
    ) -> StoreResult<Removal> {
        self.enter_store(store)?;
        let pins = self.live_pins(now_ns)?;
        let mut gone = Vec::with_capacity(ids.len());
        for &id in ids {
            let row: Option<(i64, Option<i64>, Option<i64>)> = self
                .conn
                .prepare_cached(
                    "SELECT v.store_id, v.redacted_ns, i.head FROM versions v \
                     JOIN inodes i ON i.ino = v.ino WHERE v.id = ?1",
                )?
                .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            match row {
                Some((s, None, head))
                    if s == store.0 && head != Some(id.0) && !pins.contains(&id.0) =>
                {
                    gone.push(id)
                }
                _ => {}
            }
        }
        if gone.is_empty() {
            return Ok(Removal::default());
        }
        let mut entries = Vec::new();
        for id in &gone {
            entries.extend(self.audit_ids("SELECT id FROM audit WHERE version = ?1", id.0)?);
        }
        let mut removal = self.remove_versions(store, &gone, now_ns, Collect::Unused)?;
        removal.entries_sealed = self.seal_entries(&entries)?;
        self.record(
            who,
            now_ns,
            &Change {
                store: Some(store),
                op: "gc",
                detail: Some(serde_json::json!({
                    "versions": gone.len(),
                    "first": gone.first().map(|v| v.0),
                    "last": gone.last().map(|v| v.0),
                    "materialized": removal.materialized,
                    "chunks_deleted": removal.chunks_deleted,
                    "chunk_bytes_freed": removal.chunk_bytes_freed,
                    "entries_sealed": removal.entries_sealed,
                    "keep_days": rules.keep_days,
                    "keep_versions": rules.keep_versions,
                })),
                origin: Some("memfs-gc"),
                ..Default::default()
            },
        )?;
        Ok(removal)
    }

    /// Replaces the versions mount `holder` pins (the bases of its open files).
    pub fn set_pins(&self, holder: &str, versions: &[VersionId]) -> StoreResult<()> {
        self.conn
            .prepare_cached("DELETE FROM pins WHERE holder = ?1")?
            .execute([holder])?;
        let mut ins = self.conn.prepare_cached(
            "INSERT INTO pins (holder, version) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?;
        for v in versions {
            ins.execute(params![holder, v.0])?;
        }
        Ok(())
    }

    /// Versions pinned by mounts alive now (by the database's clock; `_now_ns`
    /// is the caller's, kept for the signature).
    pub fn live_pins(&self, _now_ns: i64) -> StoreResult<HashSet<i64>> {
        // Versions drafts still use are pinned too: a draft's file reads its
        // base's version until it writes its own, and a merge needs the
        // version the draft's base saw.
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.version FROM pins p JOIN holders h ON h.id = p.holder \
             WHERE h.alive_until_ns > memfs_now() \
             UNION SELECT head FROM draft_base WHERE head IS NOT NULL \
             UNION SELECT i.head FROM inodes i JOIN stores s ON s.id = i.store_id \
               WHERE s.draft_of IS NOT NULL AND i.head IS NOT NULL",
        )?;
        let rows = stmt.query_map((), |r| r.get(0))?;
        rows.collect::<Result<_, _>>()
    }

    /// Forgets pins of mounts that are gone (unmounted, or dead and reaped).
    pub fn drop_stale_pins(&self) -> StoreResult<usize> {
        self.conn
            .prepare_cached("DELETE FROM pins WHERE holder NOT IN (SELECT id FROM holders)")?
            .execute(())
    }

    /// Takes the maintenance lease `name` for `ttl_ns`, or says who holds it.
    pub fn take_maintenance(
        &self,
        name: &str,
        holder: &str,
        _now_ns: i64,
        ttl_ns: i64,
    ) -> StoreResult<Result<(), MaintenanceHolder>> {
        // Expiry by the database's clock, as for leases.
        let now_ns = self.db_now_ns()?;
        if let Some(h) = self.maintenance_holder(name)? {
            if h.expires_ns > now_ns && h.holder != holder {
                return Ok(Err(h));
            }
        }
        self.conn
            .prepare_cached(
                "INSERT INTO maintenance (name, holder, pid, started_ns, expires_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET \
                 holder = ?2, pid = ?3, started_ns = ?4, expires_ns = ?5",
            )?
            .execute(params![
                name,
                holder,
                std::process::id(),
                now_ns,
                now_ns + ttl_ns
            ])?;
        Ok(Ok(()))
    }

    /// Extends a held maintenance lease; false if it was lost (taken over).
    pub fn renew_maintenance(
        &self,
        name: &str,
        holder: &str,
        _now_ns: i64,
        ttl_ns: i64,
    ) -> StoreResult<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE maintenance SET expires_ns = memfs_now() + ?3 \
                 WHERE name = ?1 AND holder = ?2",
            )?
            .execute(params![name, holder, ttl_ns])?;
        Ok(n == 1)
    }

    /// Gives a maintenance lease up; `done` records a finished pass.
    pub fn finish_maintenance(
        &self,
        name: &str,
        holder: &str,
        now_ns: i64,
        done: bool,
    ) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "UPDATE maintenance SET expires_ns = 0, \
                 done_ns = CASE WHEN ?3 <> 0 THEN ?4 ELSE done_ns END \
                 WHERE name = ?1 AND holder = ?2",
            )?
            .execute(params![name, holder, done, now_ns])?;
        Ok(())
    }

    /// Who holds (or last held) maintenance lease `name`.
    pub fn maintenance_holder(&self, name: &str) -> StoreResult<Option<MaintenanceHolder>> {
        self.conn
            .prepare_cached(
                "SELECT holder, pid, started_ns, expires_ns FROM maintenance WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok(MaintenanceHolder {
                    holder: r.get(0)?,
                    pid: r.get(1)?,
                    started_ns: r.get(2)?,
                    expires_ns: r.get(3)?,
                })
            })
            .optional()
    }

    /// When a pass under maintenance lease `name` last finished.
    pub fn maintenance_done_ns(&self, name: &str) -> StoreResult<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT done_ns FROM maintenance WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .flatten())
    }
}

impl Txn<'_> {
    /// The database's clock, in nanoseconds since the epoch (what leases,
    /// holders and locks are judged by).
    pub fn db_now_ns(&self) -> StoreResult<i64> {
        self.conn.query_row("SELECT memfs_now()", (), |r| r.get(0))
    }
}

impl Db {
    /// The database file's pages, free pages, auto-vacuum mode and sizes. On
    /// PostgreSQL: the database's size (`pg_database_size`) and mode
    /// `postgres` (the server's autovacuum gives freed space back).
    pub fn space(&self) -> StoreResult<Space> {
        if self.is_postgres() {
            let bytes: i64 = self.read(|tx| {
                tx.conn
                    .query_row("SELECT pg_database_size(current_database())", (), |r| {
                        r.get(0)
                    })
            })?;
            return Ok(Space {
                auto_vacuum: "postgres".into(),
                file_bytes: bytes.max(0) as u64,
                ..Space::default()
            });
        }
        let lite = self.lite()?;
        let (page_size, page_count, freelist_count, mode) = {
            let _armed = lite.arm();
            let mut g = lite.lock();
            g.end_read();
            let q = |p: &str| g.conn.pragma_query_value(None, p, |r| r.get::<_, i64>(0));
            (
                q("page_size")?,
                q("page_count")?,
                q("freelist_count")?,
                q("auto_vacuum")?,
            )
        };
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let (file_bytes, wal_bytes) = match &lite.path {
            Some(p) => {
                let mut wal = p.as_os_str().to_owned();
                wal.push("-wal");
                (size(p), size(std::path::Path::new(&wal)))
            }
            None => (0, 0),
        };
        Ok(Space {
            page_size: to_u64(page_size, "page_size")?,
            page_count: to_u64(page_count, "page_count")?,
            freelist_count: to_u64(freelist_count, "freelist_count")?,
            auto_vacuum: match mode {
                1 => "full",
                2 => "incremental",
                _ => "none",
            }
            .to_string(),
            file_bytes,
            wal_bytes,
        })
    }

    /// Gives up to `pages` free pages back to the filesystem (`PRAGMA
    /// incremental_vacuum`), in one short write transaction. Returns how many
    /// went; 0 when none are free or the database is not in incremental mode.
    pub fn incremental_vacuum(&self, pages: u64) -> StoreResult<u64> {
        if let Engine::Pg(p) = &self.engine {
            // Plain VACUUM marks the dead rows' space reusable (it does not
            // shrink the files; VACUUM FULL would, locking the tables).
            p.autocommit("VACUUM versions; VACUUM chunks; VACUUM audit")?;
            return Ok(0);
        }
        let lite = self.lite()?;
        let _armed = lite.arm();
        let mut g = lite.lock();
        g.end_read();
        g.commit()?;
        let free = |c: &Connection| c.pragma_query_value(None, "freelist_count", |r| r.get(0));
        let before: i64 = free(&g.conn)?;
        g.conn.execute_batch("BEGIN IMMEDIATE")?;
        let run = (|| {
            // The pragma returns one row per page it frees: step through them all
            // (a single step would free one page).
            let mut stmt = g
                .conn
                .prepare(&format!("PRAGMA incremental_vacuum({})", pages.max(1)))?;
            let mut rows = stmt.query(())?;
            while rows.next()?.is_some() {}
            Ok::<_, rusqlite::Error>(())
        })();
        match run {
            Ok(()) => g.conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = g.conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        }
        let after: i64 = free(&g.conn)?;
        to_u64((before - after).max(0), "pages")
    }

    /// A WAL checkpoint that waits for nobody (`PASSIVE`): copies what no reader
    /// still needs into the database file, which is where a vacuum's shrinking
    /// takes effect. Returns whether the whole WAL was copied.
    pub fn checkpoint_passive(&self) -> StoreResult<bool> {
        let Engine::Lite(lite) = &self.engine else {
            return Ok(true);
        };
        if lite.path.is_none() {
            return Ok(true);
        }
        let _armed = lite.arm();
        let mut g = lite.lock();
        g.end_read();
        g.commit()?;
        let (busy, log, done): (i64, i64, i64) =
            g.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        Ok(busy == 0 && log == done)
    }

    /// Switches the database to incremental auto-vacuum and rebuilds it with a
    /// full VACUUM (the whole file is rewritten; writers wait meanwhile, so run
    /// it with the mounts stopped), then truncates the WAL if nobody reads.
    pub fn vacuum_full(&self) -> StoreResult<()> {
        if let Engine::Pg(p) = &self.engine {
            return p.autocommit("VACUUM FULL");
        }
        let lite = self.lite()?;
        let _armed = lite.arm();
        let mut g = lite.lock();
        g.end_read();
        g.commit()?;
        g.conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        g.conn.execute_batch("VACUUM")?;
        if lite.path.is_some() {
            g.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
impl Txn<'_> {
    /// One integer from a query (tests look at tables directly).
    pub fn query_i64(&self, sql: &str) -> StoreResult<i64> {
        self.conn.query_row(sql, (), |r| r.get(0))
    }
}

impl Txn<'_> {
    /// Versions (all rows, and those holding content) and chunks, for metrics.
    pub fn content_counts(&self) -> StoreResult<(u64, u64, u64)> {
        let n = |sql: &str| -> StoreResult<u64> {
            let v: i64 = self.conn.prepare_cached(sql)?.query_row((), |r| r.get(0))?;
            to_u64(v, "count")
        };
        Ok((
            n("SELECT count(*) FROM versions")?,
            n("SELECT count(*) FROM versions WHERE redacted_ns IS NULL")?,
            n("SELECT count(*) FROM chunks")?,
        ))
    }
}

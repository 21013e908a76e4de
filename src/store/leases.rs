//! Live holders (mounts), write leases with fencing tokens, and advisory locks.
//!
//! Everything here is in the database so that it binds every mount in every daemon
//! process. A holder proves it is alive by renewing `alive_until_ns`; its leases
//! expire and its locks stop counting when it stops renewing (crash, SIGKILL,
//! SIGSTOP), so nothing waits for a dead daemon longer than one TTL.
//!
//! Every expiry is set and judged by the database's clock (`memfs_now()`:
//! PostgreSQL's `clock_timestamp()`, this host's clock for SQLite), never by
//! the caller's: a daemon whose clock is off neither keeps a lease alive
//! too long nor takes one too early.

use super::sql::{params, OptionalExtension};
use super::{to_i64, Txn};
use crate::error::StoreResult;
use crate::ids::{Identity, Ino, StoreId};

/// A mount registering itself.
#[derive(Debug, Clone)]
pub struct HolderInfo {
    pub id: String,
    pub who: Identity,
    pub pid: u32,
}

/// A live lease, as listed by `memfsctl leases`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseRow {
    pub ino: Ino,
    pub store: StoreId,
    pub holder: String,
    pub token: i64,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub acquired_ns: i64,
    pub expires_ns: i64,
}

/// A byte-range lock request. `end` is inclusive.
#[derive(Debug, Clone, Copy)]
pub struct LockSpec {
    pub ino: Ino,
    pub owner: u64,
    pub start: u64,
    pub end: u64,
    pub exclusive: bool,
    pub pid: u32,
}

/// A lock held by someone (for F_GETLK answers).
#[derive(Debug, Clone)]
pub struct LockRow {
    pub start: u64,
    pub end: u64,
    pub exclusive: bool,
    pub pid: u32,
    pub holder: String,
    pub owner: u64,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const LEASE_COLS: &str =
    "ino, store_id, holder, token, agent, session, \"user\", acquired_ns, expires_ns";

/// This host's name, recorded with each holder (operators see which host
/// holds what); holder ids add random bytes, so they are unique anyway.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match (ok, std::str::from_utf8(&buf[..end])) {
        (true, Ok(h)) if !h.is_empty() => h.to_string(),
        _ => "unknown".into(),
    }
}

fn lease_from_row(r: &super::sql::Row<'_>) -> StoreResult<LeaseRow> {
    Ok(LeaseRow {
        ino: Ino(r.get(0)?),
        store: StoreId(r.get(1)?),
        holder: r.get(2)?,
        token: r.get(3)?,
        agent: r.get(4)?,
        session: r.get(5)?,
        user: r.get(6)?,
        acquired_ns: r.get(7)?,
        expires_ns: r.get(8)?,
    })
}

impl Txn<'_> {
    /// Registers (or re-registers) a holder, alive for `ttl_ns`.
    pub fn register_holder(&self, h: &HolderInfo, ttl_ns: i64) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO holders (id, agent, session, \"user\", pid, started_ns, \
                 alive_until_ns, host) VALUES (?1, ?2, ?3, ?4, ?5, memfs_now(), memfs_now() + ?6, ?7) \
                 ON CONFLICT (id) DO UPDATE SET alive_until_ns = excluded.alive_until_ns",
            )?
            .execute(params![
                h.id,
                h.who.agent,
                h.who.session,
                h.who.user,
                h.pid,
                ttl_ns,
                host_name()
            ])?;
        Ok(())
    }

    /// Whether holder `id` is registered and was alive, by the database's
    /// clock, at most `grace_ns` ago.
    pub fn holder_alive(&self, id: &str, grace_ns: i64) -> StoreResult<bool> {
        let alive: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM holders WHERE id = ?1 AND alive_until_ns > memfs_now() - ?2",
            )?
            .query_row(params![id, grace_ns], |r| r.get(0))
            .optional()?;
        Ok(alive.is_some())
    }

    /// Extends a holder's life and all its leases by `ttl_ns`, registering it
    /// again if it was reaped (its daemon was cut off from the database for
    /// longer than a TTL). Returns how many leases were renewed.
    pub fn renew_holder(&self, h: &HolderInfo, ttl_ns: i64) -> StoreResult<usize> {
        let n = self
            .conn
            .prepare_cached("UPDATE holders SET alive_until_ns = memfs_now() + ?2 WHERE id = ?1")?
            .execute(params![h.id, ttl_ns])?;
        if n == 0 {
            tracing::warn!(holder = %h.id, "this mount's holder row was gone (reaped); registering again");
            self.register_holder(h, ttl_ns)?;
        }
        // Only unexpired leases are renewed: one that lapsed while this daemon was
        // frozen may already belong to someone else.
        self.conn
            .prepare_cached(
                "UPDATE leases SET expires_ns = memfs_now() + ?2 \
                 WHERE holder = ?1 AND expires_ns > memfs_now()",
            )?
            .execute(params![h.id, ttl_ns])
    }

    /// Removes a holder and everything it holds (clean shutdown), and forgets
    /// holders dead for longer than `grace_ns` with their locks.
    pub fn remove_holder(&self, id: &str) -> StoreResult<()> {
        self.conn
            .prepare_cached("DELETE FROM leases WHERE holder = ?1")?
            .execute([id])?;
        self.conn
            .prepare_cached("DELETE FROM locks WHERE holder = ?1")?
            .execute([id])?;
        self.conn
            .prepare_cached("DELETE FROM holders WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Deletes the locks and rows of holders dead for longer than `grace_ns`.
    pub fn reap_dead_holders(&self, grace_ns: i64) -> StoreResult<usize> {
        self.conn
            .prepare_cached(
                "DELETE FROM locks WHERE holder IN \
                 (SELECT id FROM holders WHERE alive_until_ns < memfs_now() - ?1)",
            )?
            .execute([grace_ns])?;
        self.conn
            .prepare_cached("DELETE FROM holders WHERE alive_until_ns < memfs_now() - ?1")?
            .execute([grace_ns])
    }

    /// The live lease on `ino`, if any.
    pub fn live_lease(&self, ino: Ino) -> StoreResult<Option<LeaseRow>> {
        self.enter_ino(ino)?;
        let sql = sql_once!(
            "SELECT {LEASE_COLS} FROM leases WHERE ino = ?1 AND expires_ns > memfs_now()"
        );
        self.conn
            .prepare_cached(sql)?
            .query_row([ino.0], lease_from_row)
            .optional()
    }

    /// Takes the write lease on `ino` for `holder`, or returns who holds it. A holder
    /// that already has it keeps its token; otherwise a new, larger token is issued.
    pub fn try_lease(
        &self,
        ino: Ino,
        store: StoreId,
        holder: &str,
        who: &Identity,
        ttl_ns: i64,
    ) -> StoreResult<Result<i64, LeaseRow>> {
        self.enter_store(store)?;
        if let Some(l) = self.live_lease(ino)? {
            if l.holder != holder {
                return Ok(Err(l));
            }
            return Ok(Ok(l.token));
        }
        let token = self.set_fence(ino)?;
        self.conn
            .prepare_cached(
                "INSERT INTO leases (ino, store_id, holder, token, agent, session, \
                 \"user\", acquired_ns, expires_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, memfs_now(), memfs_now() + ?8) \
                 ON CONFLICT (ino) DO UPDATE SET store_id = excluded.store_id, \
                 holder = excluded.holder, token = excluded.token, agent = excluded.agent, \
                 session = excluded.session, \"user\" = excluded.\"user\", \
                 acquired_ns = excluded.acquired_ns, expires_ns = excluded.expires_ns",
            )?
            .execute(params![
                ino.0,
                store.0,
                holder,
                token,
                who.agent,
                who.session,
                who.user,
                ttl_ns
            ])?;
        Ok(Ok(token))
    }

    /// Issues the next fencing token of `ino` (a lease grant or break). The
    /// transaction then commits synchronously: a token lost to a server crash
    /// could otherwise be issued twice.
    fn set_fence(&self, ino: Ino) -> StoreResult<i64> {
        let token = self.fence_token(ino)?.unwrap_or(0) + 1;
        self.conn
            .prepare_cached(
                "INSERT INTO fences (ino, token) VALUES (?1, ?2) \
                 ON CONFLICT (ino) DO UPDATE SET token = excluded.token",
            )?
            .execute(params![ino.0, token])?;
        self.sync.set(true);
        Ok(token)
    }

    /// The newest token issued for `ino` (a commit under an older one is fenced off).
    pub fn fence_token(&self, ino: Ino) -> StoreResult<Option<i64>> {
        self.conn
            .prepare_cached("SELECT token FROM fences WHERE ino = ?1")?
            .query_row([ino.0], |r| r.get(0))
            .optional()
    }

    /// Gives up a lease (only if it is still this holder's, under this token).
    pub fn release_lease(&self, ino: Ino, holder: &str, token: i64) -> StoreResult<()> {
        // No store lock: deleting one's own row (holder and token match)
        // races with nothing a store's writers decide on.
        self.conn
            .prepare_cached("DELETE FROM leases WHERE ino = ?1 AND holder = ?2 AND token = ?3")?
            .execute(params![ino.0, holder, token])?;
        Ok(())
    }

    /// Breaks whatever lease `ino` has and fences its holder off. Returns the lease
    /// that was broken, if one was live.
    pub fn break_lease(&self, ino: Ino) -> StoreResult<Option<LeaseRow>> {
        let live = self.live_lease(ino)?;
        self.conn
            .prepare_cached("DELETE FROM leases WHERE ino = ?1")?
            .execute([ino.0])?;
        self.set_fence(ino)?;
        Ok(live)
    }

    /// All live leases.
    pub fn leases(&self) -> StoreResult<Vec<LeaseRow>> {
        let sql = format!(
            "SELECT {LEASE_COLS} FROM leases WHERE expires_ns > memfs_now() ORDER BY store_id, ino"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map((), lease_from_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// A lock of a live holder that conflicts with `want` (other owner, overlapping,
    /// at least one exclusive), if any.
    pub fn lock_conflict(&self, holder: &str, want: &LockSpec) -> StoreResult<Option<LockRow>> {
        self.enter_ino(want.ino)?;
        self.conn
            .prepare_cached(
                "SELECT l.start, l.\"end\", l.exclusive, l.pid, l.holder, l.owner FROM locks l \
                 JOIN holders h ON h.id = l.holder \
                 WHERE l.ino = ?1 AND h.alive_until_ns > memfs_now() \
                 AND NOT (l.holder = ?2 AND l.owner = ?3) \
                 AND l.start <= ?5 AND l.\"end\" >= ?4 AND (l.exclusive <> 0 OR ?6 <> 0) LIMIT 1",
            )?
            .query_row(
                params![
                    want.ino.0,
                    holder,
                    want.owner as i64,
                    clamp(want.start),
                    clamp(want.end),
                    want.exclusive
                ],
                |r| {
                    Ok(LockRow {
                        start: r.get::<_, i64>(0)?.max(0) as u64,
                        end: r.get::<_, i64>(1)?.max(0) as u64,
                        exclusive: r.get(2)?,
                        pid: r.get(3)?,
                        holder: r.get(4)?,
                        owner: r.get::<_, i64>(5)? as u64,
                    })
                },
            )
            .optional()
    }

    /// Whether `owner` of `holder` holds a lock that conflicts with `want`.
    pub fn owner_blocks(&self, holder: &str, owner: u64, want: &LockSpec) -> StoreResult<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM locks WHERE ino = ?1 AND holder = ?2 AND owner = ?3 \
                 AND start <= ?5 AND \"end\" >= ?4 AND (exclusive <> 0 OR ?6 <> 0) LIMIT 1",
            )?
            .query_row(
                params![
                    want.ino.0,
                    holder,
                    owner as i64,
                    clamp(want.start),
                    clamp(want.end),
                    want.exclusive
                ],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Sets (or, with `exclusive = None`, clears) the owner's lock on a range, POSIX
    /// style: the owner's existing locks overlapping the range are cut back first.
    /// The caller has checked for conflicts in the same transaction.
    pub fn set_lock(&self, holder: &str, spec: &LockSpec, kind: Option<bool>) -> StoreResult<()> {
        self.enter_ino(spec.ino)?;
        let (start, end) = (clamp(spec.start), clamp(spec.end));
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, start, \"end\", exclusive, pid FROM locks \
             WHERE ino = ?1 AND holder = ?2 AND owner = ?3 AND start <= ?5 AND \"end\" >= ?4",
        )?;
        let overlapping: Vec<(i64, i64, i64, bool, u32)> = stmt
            .query_map(
                params![spec.ino.0, holder, spec.owner as i64, start, end],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?
            .collect::<Result<_, _>>()?;
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO locks (ino, holder, owner, start, \"end\", exclusive, pid) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (id, s, e, x, pid) in overlapping {
            self.conn
                .prepare_cached("DELETE FROM locks WHERE id = ?1")?
                .execute([id])?;
            if s < start {
                insert.execute(params![
                    spec.ino.0,
                    holder,
                    spec.owner as i64,
                    s,
                    start - 1,
                    x,
                    pid
                ])?;
            }
            if e > end {
                insert.execute(params![
                    spec.ino.0,
                    holder,
                    spec.owner as i64,
                    end + 1,
                    e,
                    x,
                    pid
                ])?;
            }
        }
        if let Some(exclusive) = kind {
            insert.execute(params![
                spec.ino.0,
                holder,
                spec.owner as i64,
                start,
                end,
                exclusive,
                spec.pid
            ])?;
        }
        Ok(())
    }

    /// Drops every lock an owner holds on a file (close of a descriptor).
    pub fn unlock_owner(&self, holder: &str, ino: Ino, owner: u64) -> StoreResult<usize> {
        self.enter_ino(ino)?;
        self.conn
            .prepare_cached("DELETE FROM locks WHERE ino = ?1 AND holder = ?2 AND owner = ?3")?
            .execute(params![ino.0, holder, owner as i64])
    }

    /// Whether this holder has any lock on `ino` (to skip work on close).
    pub fn holds_locks(&self, holder: &str, ino: Ino) -> StoreResult<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM locks WHERE ino = ?1 AND holder = ?2 LIMIT 1")?
            .query_row(params![ino.0, holder], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

/// Guards against a lease TTL that does not fit in nanoseconds.
pub fn ttl_ns(d: std::time::Duration) -> i64 {
    to_i64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(i64::MAX / 4)
}

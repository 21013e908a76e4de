//! Write leases: one writer per file across every mount and daemon, fenced by a
//! token that each commit checks. Appenders take no lease (their commits re-base).

use super::MemFs;
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, StoreId};
use crate::store::{ttl_ns, HolderInfo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A holder id unique across hosts, processes and time: host, pid, random
/// bytes, sequence. (Leases, locks and pins name their holder by it.)
pub(super) fn new_holder_id() -> String {
    let rand: [u8; 6] = crate::store::crypto::random().unwrap_or_else(|_| {
        let t = now_ns().to_le_bytes();
        [t[0], t[1], t[2], t[3], t[4], t[5]]
    });
    let hex: String = rand.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{hex}-{}",
        crate::store::host_name(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

const RETRY: Duration = Duration::from_millis(20);

/// How long change-feed rows are kept: far longer than any poll interval, so only
/// a daemon frozen for this long could miss an invalidation (and its kernel caches
/// still expire by their TTL).
const FEED_RETENTION_NS: i64 = 10 * 60 * 1_000_000_000;

impl MemFs {
    /// Registers this mount as a live holder. Call once before serving.
    pub fn register(&self) -> FsResult<()> {
        let ttl = ttl_ns(self.opts.lease_ttl);
        self.db
            .write(|tx| tx.register_holder(&self.holder_info(), ttl))?;
        Ok(())
    }

    fn holder_info(&self) -> HolderInfo {
        HolderInfo {
            id: self.holder.clone(),
            who: self.who.clone(),
            pid: std::process::id(),
        }
    }

    /// Keeps this mount's leases and locks alive; forgets holders dead for a TTL.
    /// Publishes the versions its open files read from, so retention keeps them.
    /// The daemon calls it every third of a TTL.
    pub fn renew(&self) -> FsResult<usize> {
        let ttl = ttl_ns(self.opts.lease_ttl);
        let pins = self.open_versions();
        let me = self.holder_info();
        let n = self.db.write(|tx| {
            let n = tx.renew_holder(&me, ttl)?;
            tx.set_pins(&self.holder, &pins)?;
            tx.reap_dead_holders(ttl)?;
            tx.prune_changes(FEED_RETENTION_NS)?;
            Ok::<_, FsError>(n)
        })?;
        Ok(n)
    }

    /// Gives up everything this mount holds (clean unmount).
    pub fn unregister(&self) -> FsResult<()> {
        self.db.write(|tx| tx.remove_holder(&self.holder))?;
        Ok(())
    }

    /// Takes the write lease on `ino`, waiting up to `lease_wait` for its holder.
    pub(super) fn acquire_lease(&self, ino: Ino, store: StoreId) -> FsResult<i64> {
        let start = Instant::now();
        let deadline = start + self.opts.lease_wait;
        let ttl = ttl_ns(self.opts.lease_ttl);
        let mut waited = false;
        loop {
            let got = self
                .db
                .write(|tx| tx.try_lease(ino, store, &self.holder, &self.who, ttl))?;
            match got {
                Ok(token) => {
                    if waited {
                        crate::metrics::lease_wait(start.elapsed(), true);
                    }
                    return Ok(token);
                }
                Err(held) if Instant::now() >= deadline => {
                    crate::metrics::lease_wait(start.elapsed(), false);
                    let secs = (held.expires_ns - now_ns()).max(0) / 1_000_000_000;
                    tracing::warn!(
                        ino = ino.0,
                        holder_agent = %held.agent,
                        holder_session = %held.session,
                        expires_in_secs = secs,
                        "open for writing refused: another writer holds the lease"
                    );
                    return Err(FsError::Busy(format!(
                        "file is being written by agent {} (session {})",
                        held.agent, held.session
                    )));
                }
                Err(_) => {
                    waited = true;
                    std::thread::sleep(RETRY)
                }
            }
        }
    }

    pub(super) fn release_lease(&self, ino: Ino, token: i64) -> FsResult<()> {
        self.db
            .write(|tx| tx.release_lease(ino, &self.holder, token))?;
        Ok(())
    }
}

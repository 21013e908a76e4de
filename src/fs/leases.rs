//! Write leases: one writer per file across every mount and daemon, fenced by a
//! token that each commit checks. Appenders take no lease (their commits re-base).

use super::MemFs;
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, StoreId};
use crate::store::{ttl_ns, HolderInfo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A holder id unique across processes and time: pid, start time, sequence.
pub(super) fn new_holder_id() -> String {
    format!(
        "{}-{:x}-{}",
        std::process::id(),
        now_ns(),
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
        let info = HolderInfo {
            id: self.holder.clone(),
            who: self.who.clone(),
            pid: std::process::id(),
        };
        let ttl = ttl_ns(self.opts.lease_ttl);
        self.db
            .write(|tx| tx.register_holder(&info, now_ns(), ttl))?;
        Ok(())
    }

    /// Keeps this mount's leases and locks alive; forgets holders dead for a TTL.
    /// Publishes the versions its open files read from, so retention keeps them.
    /// The daemon calls it every third of a TTL.
    pub fn renew(&self) -> FsResult<usize> {
        let ttl = ttl_ns(self.opts.lease_ttl);
        let now = now_ns();
        let pins = self.open_versions();
        let n = self.db.write(|tx| {
            let n = tx.renew_holder(&self.holder, now, ttl)?;
            tx.set_pins(&self.holder, &pins)?;
            tx.reap_dead_holders(now - ttl)?;
            tx.prune_changes(now - FEED_RETENTION_NS)?;
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
                .write(|tx| tx.try_lease(ino, store, &self.holder, &self.who, now_ns(), ttl))?;
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

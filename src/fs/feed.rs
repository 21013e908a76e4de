//! Following the change feed: what other mounts (and memfsctl) changed, turned into
//! kernel cache invalidations for this mount; and the barrier that lets a reply
//! wait until those invalidations reached the kernel.

use super::{MemFs, OpenMode};
use crate::error::FsResult;
use crate::ids::Ino;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// A kernel cache entry to drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// Attributes and cached pages of an inode.
    Inode(Ino),
    /// A name in a directory (including a cached miss).
    Entry(Ino, Vec<u8>),
    /// A store-level change (its settings, archive state or description): the
    /// daemon reloads the store's settings ([`MemFs::update_store`]).
    Store(crate::ids::StoreId),
}

/// A reply held back until the kernel has caught up with the change feed.
pub type AfterCatchUp = Box<dyn FnOnce() + Send>;

/// Lets a reply wait until this mount's kernel has dropped what it cached of
/// every change other mounts made before the reply was decided.
///
/// The kernel hears of other mounts' changes only when the feed follower polls
/// (every `feed_poll_ms`), so for that long it may still hold a file's old size
/// and pages, or a name's old entry. Seen late is fine; but a request that other
/// mounts' changes must not be invisible to (taking an advisory lock, after which
/// a lock-protected read-modify-write reads the previous holder's result; opening
/// a file whose size the kernel cached before another mount rewrote it) hands its
/// reply to the follower, which sends it after its next complete poll. The
/// follower is no FUSE dispatch thread, so waiting on it blocks none of them.
#[derive(Default)]
pub struct FeedBarrier {
    state: Mutex<BarrierState>,
    wake: Condvar,
}

#[derive(Default)]
struct BarrierState {
    /// A follower runs; without one, held replies would never go, so none are held.
    following: bool,
    /// The feed position up to which the kernel has been told.
    seen: i64,
    waiting: Vec<AfterCatchUp>,
    /// The daemon is shutting down: the follower should stop waiting.
    stopping: bool,
    /// Another process committed (the engine said so): poll now.
    poked: bool,
}

impl FeedBarrier {
    fn lock(&self) -> MutexGuard<'_, BarrierState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The feed position up to which the kernel has been told of changes.
    pub fn seen(&self) -> i64 {
        self.lock().seen
    }

    /// Runs `then` once the follower has finished a poll that began after this
    /// call (at once if no follower runs).
    pub fn after_catch_up(&self, then: AfterCatchUp) {
        let mut st = self.lock();
        if !st.following {
            drop(st);
            return then();
        }
        st.waiting.push(then);
        self.wake.notify_all();
    }

    /// The follower starts, having told the kernel everything up to `seen`.
    pub fn start(&self, seen: i64) {
        let mut st = self.lock();
        st.following = true;
        st.seen = seen;
    }

    /// The follower waits up to `every`, or until a reply is held or the daemon
    /// shuts down; returns the held replies, which its next poll releases, and
    /// whether to stop after it.
    pub fn next_round(&self, every: Duration) -> (Vec<AfterCatchUp>, bool) {
        let mut st = self.lock();
        if st.waiting.is_empty() && !st.stopping && !st.poked {
            st = self
                .wake
                .wait_timeout(st, every)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        st.poked = false;
        (std::mem::take(&mut st.waiting), st.stopping)
    }

    /// Another process committed a change: the follower polls now rather
    /// than at its next interval.
    pub fn poke(&self) {
        self.lock().poked = true;
        self.wake.notify_all();
    }

    /// Asks the follower to finish its round and stop.
    pub fn shut_down(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }

    /// The follower has told the kernel everything up to `seen`: sends `replies`.
    pub fn caught_up(&self, seen: i64, replies: Vec<AfterCatchUp>) {
        self.lock().seen = seen;
        for r in replies {
            r();
        }
    }

    /// The follower stops: held replies go now, later ones at once.
    pub fn stop(&self) {
        let held = {
            let mut st = self.lock();
            st.following = false;
            std::mem::take(&mut st.waiting)
        };
        for r in held {
            r();
        }
    }
}

impl MemFs {
    /// Whether another mount (or memfsctl) changed anything after feed position
    /// `seen` (with `ino`, that inode): the kernel may not know yet. A failed
    /// check says yes: waiting is only slower.
    pub fn changed_elsewhere(&self, seen: i64, ino: Option<Ino>) -> bool {
        self.db
            .read(|tx| tx.changed_elsewhere(seen, &self.holder, ino))
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the change feed");
                true
            })
    }

    /// Whether the reply to an open of `ino` as `mode` must wait for the kernel
    /// to hear of other mounts' changes to it (see [`FeedBarrier`]). The kernel
    /// reads through its page cache up to the size it cached: a file another
    /// mount rewrote longer would read cut short. A truncating open and an
    /// append-only one read nothing cached (appends bypass the page cache).
    pub fn open_waits_for_feed(&self, ino: Ino, mode: OpenMode, seen: i64) -> bool {
        if Self::is_virtual(ino) || !Self::reads_cached_pages(mode) {
            return false;
        }
        self.changed_elsewhere(seen, Some(ino))
    }

    /// Whether a handle opened as `mode` may read what the kernel cached of
    /// the file: not after a truncating open, nor on an append-only one.
    pub(super) fn reads_cached_pages(mode: OpenMode) -> bool {
        !(mode.truncate || (mode.append && !mode.reads()))
    }

    /// The newest change-feed position (where a new mount starts following).
    pub fn feed_position(&self) -> FsResult<i64> {
        Ok(self.db.read(|tx| tx.last_change_seq())?)
    }

    /// Changes after `*since` made elsewhere to attached stores, as invalidations.
    /// Advances `*since`. Open files of this mount that have no staged writes are
    /// moved to the new head so that reads after the invalidation are current.
    pub fn poll_changes(&self, since: &mut i64) -> FsResult<Vec<Invalidation>> {
        let (rows, last) = self
            .db
            .read(|tx| tx.changes_since(*since, &self.holder, 10_000))?;
        *since = last;
        let mut out = Vec::new();
        let now = crate::ids::now_ns();
        for r in rows {
            crate::metrics::feed_change(now - r.at_ns);
            let attached = r.store.is_some_and(|s| self.attached_by_id(s).is_ok());
            if let (None, None, Some(store)) = (r.ino, r.parent, r.store) {
                // A draft follows its store's settings: a change of those
                // reloads the attached drafts of that store too.
                for a in self
                    .attached
                    .iter()
                    .filter(|a| a.store.draft_of == Some(store))
                {
                    if !out.contains(&Invalidation::Store(a.store.id)) {
                        out.push(Invalidation::Store(a.store.id));
                    }
                }
            }
            if !attached {
                continue;
            }
            if let Some(ino) = r.ino {
                self.refresh_open(ino)?;
                if !out.contains(&Invalidation::Inode(ino)) {
                    out.push(Invalidation::Inode(ino));
                }
            }
            if let (None, None, Some(store)) = (r.ino, r.parent, r.store) {
                if !out.contains(&Invalidation::Store(store)) {
                    out.push(Invalidation::Store(store));
                }
            }
            if let (Some(parent), Some(name)) = (r.parent, r.name) {
                let inv = Invalidation::Entry(parent, name);
                if !out.contains(&inv) {
                    out.push(inv);
                }
            }
        }
        Ok(out)
    }

    /// Moves a clean open file to the inode's current head.
    fn refresh_open(&self, ino: Ino) -> FsResult<()> {
        let Some(file) = self.open_file(ino) else {
            return Ok(());
        };
        let mut of = file.lock().unwrap_or_else(|p| p.into_inner());
        if of.staging.dirty {
            return Ok(());
        }
        let head = self.head_of(ino)?;
        self.follow_head(&mut of, head)
    }
}

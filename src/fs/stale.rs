//! Answers for requests the kernel sent from a stale view of the namespace.
//!
//! The kernel caches names for the entry TTL and hears of other mounts' changes
//! only through the change feed, so it may address a request to an inode whose
//! last name another mount removed: a directory to create or look up in, a file
//! to open or to link. On a local disk the path would have led to what is there
//! now. memfs answers such a request `ESTALE`: Linux then walks the path again
//! with every cached name looked up afresh (`LOOKUP_REVAL`), as it does for NFS,
//! and the call goes where it would have gone on a local disk.
//!
//! Linux retries once. The retry walks fresh names, so what it reaches was live
//! a moment ago; if another mount removed it in that moment, a local disk would
//! have raced the same way (a lookup, then the rename, then the open of the
//! inode found). So while a thread's retry is under way, a stale request gets
//! the answer of that race on a local disk: the open of the orphan proceeds, a
//! create or lookup in a removed directory is `ENOENT`, a create onto a name
//! made meanwhile is `EEXIST`. Never a second `ESTALE`.

use super::Caller;
use crate::error::{FsError, FsResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an `ESTALE` answer waits for the kernel's retry. The retry follows at
/// once (a few lookups), but on a loaded machine those lookups queue behind
/// other requests: with 2 s, a retry that took longer got a second `ESTALE`,
/// which the kernel passes to the program (seen once in the CI checker while
/// every test binary ran at once on 2 cores). A longer window only makes a
/// later stale request of the same thread, before that thread completes any
/// call, get the plain answer.
const RETRY_WINDOW: Duration = Duration::from_secs(15);

/// Beyond this many remembered threads, expired ones are dropped.
const PRUNE_AT: usize = 1024;

/// Threads that were answered `ESTALE` and have not completed a call since.
#[derive(Default)]
pub(super) struct StaleGuard {
    retrying: Mutex<HashMap<u32, Instant>>,
    /// Entries in `retrying` (read without the lock on every call).
    len: AtomicUsize,
}

impl StaleGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Instant>> {
        self.retrying.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `caller` is retrying after an `ESTALE` (and so must not get
    /// another). A caller that is not a process (pid 0: the daemon itself,
    /// memfsctl) never retries, and counts as retrying.
    pub fn retrying(&self, caller: Caller) -> bool {
        if caller.pid == 0 {
            return true;
        }
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.lock()
            .get(&caller.pid)
            .is_some_and(|t| t.elapsed() < RETRY_WINDOW)
    }

    /// Passes `r` through, except a [`FsError::Stale`]: `ESTALE` for a caller
    /// not yet retrying, the error it carries for one that is. `done` says the
    /// request ends a system call (anything but a lookup, which is one step of
    /// a path walk): then the caller's retry, if any, is over.
    pub fn settle<T>(&self, caller: Caller, done: bool, r: FsResult<T>) -> FsResult<T> {
        let then = match r {
            Err(FsError::Stale(then)) => then,
            other => {
                if done {
                    self.finished(caller);
                }
                return other;
            }
        };
        if self.retrying(caller) {
            // The retry fails here, and so the system call ends.
            self.finished(caller);
            return Err(then.settled());
        }
        let mut retrying = self.lock();
        let now = Instant::now();
        if retrying.len() >= PRUNE_AT {
            retrying.retain(|_, t| now.duration_since(*t) < RETRY_WINDOW);
        }
        retrying.insert(caller.pid, now);
        self.len.store(retrying.len(), Ordering::Relaxed);
        Err(FsError::Stale(then))
    }

    /// `caller` completed a call: its retry, if any, is over.
    fn finished(&self, caller: Caller) {
        if caller.pid == 0 || self.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut retrying = self.lock();
        if retrying.remove(&caller.pid).is_some() {
            self.len.store(retrying.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale() -> FsResult<()> {
        Err(FsError::Stale(Box::new(FsError::NotFound)))
    }

    fn pid(pid: u32) -> Caller {
        Caller {
            pid,
            ..Caller::default()
        }
    }

    #[test]
    fn estale_once_per_retry_then_the_plain_answer() {
        let g = StaleGuard::default();
        let errno = |r: FsResult<()>| r.unwrap_err().to_errno();
        assert_eq!(errno(g.settle(pid(7), true, stale())), libc::ESTALE);
        // Another thread gets its own retry.
        assert_eq!(errno(g.settle(pid(8), true, stale())), libc::ESTALE);
        // The retry's lookups succeed without ending it; a stale request in it
        // gets what a local disk would say.
        assert!(g.settle(pid(7), false, Ok(())).is_ok());
        assert!(g.retrying(pid(7)));
        assert_eq!(errno(g.settle(pid(7), true, stale())), libc::ENOENT);
        // That ended the call: the next stale view gets ESTALE again.
        assert!(!g.retrying(pid(7)));
        assert_eq!(errno(g.settle(pid(7), true, stale())), libc::ESTALE);
        // So does a completed call.
        assert!(g.settle(pid(7), true, Ok(())).is_ok());
        assert!(!g.retrying(pid(7)));
        // Not a process: no retry to wait for.
        assert_eq!(errno(g.settle(pid(0), true, stale())), libc::ENOENT);
    }
}

//! Answers for requests the kernel sent from a stale view of the namespace.
//!
//! The kernel caches names for the entry TTL and hears of other mounts' changes
//! only through the change feed, so it may address a request to an inode whose
//! last name another mount removed: a directory to create or look up in, a file
//! to open or to link. On a local disk the path would have led to what is there
//! now. memfs answers such a request `ESTALE`, once: Linux then walks the path
//! again with every cached name revalidated (`LOOKUP_REVAL`), as it does for
//! NFS, and the call goes where it would have gone on a local disk. If the same
//! thread sends the same request again within a moment (the name went away
//! again in between, or a caller that does not retry), it gets the answer a local
//! disk gives for a name that is gone, never a second `ESTALE`.

use super::Caller;
use crate::error::{FsError, FsResult};
use crate::ids::Ino;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an `ESTALE` answer waits for the kernel's retry. The retry follows
/// within microseconds; a longer window only makes a later, unrelated repeat of
/// the same request get the plain answer.
const RETRY_WINDOW: Duration = Duration::from_secs(2);

/// Beyond this many remembered answers, expired ones are dropped.
const PRUNE_AT: usize = 1024;

/// A request target as the kernel named it: thread, inode, and a name in it
/// (empty for a request on the inode itself).
type Target = (u32, Ino, Vec<u8>);

/// The `ESTALE` answers given and not yet retried, by thread and request target.
#[derive(Default)]
pub(super) struct StaleGuard {
    given: Mutex<HashMap<Target, Instant>>,
}

impl StaleGuard {
    /// Passes `r` through, except a [`FsError::Stale`]: that becomes `ESTALE` the
    /// first time `caller` meets it for (`ino`, `name`), and the error it carries
    /// when the same thread comes back within the window. A caller that is not a
    /// process (pid 0: the daemon itself, memfsctl) gets the carried error at once.
    pub fn settle<T>(&self, caller: Caller, ino: Ino, name: &[u8], r: FsResult<T>) -> FsResult<T> {
        let then = match r {
            Err(FsError::Stale(then)) => then,
            other => return other,
        };
        if caller.pid == 0 {
            return Err(then.settled());
        }
        let mut given = self.given.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if given.len() >= PRUNE_AT {
            given.retain(|_, t| now.duration_since(*t) < RETRY_WINDOW);
        }
        let key = (caller.pid, ino, name.to_vec());
        match given.remove(&key) {
            Some(t) if now.duration_since(t) < RETRY_WINDOW => Err(then.settled()),
            _ => {
                given.insert(key, now);
                Err(FsError::Stale(then))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale() -> FsResult<()> {
        Err(FsError::Stale(Box::new(FsError::NotFound)))
    }

    #[test]
    fn estale_once_per_thread_and_target_then_the_plain_answer() {
        let g = StaleGuard::default();
        let p7 = Caller {
            pid: 7,
            ..Caller::default()
        };
        let p8 = Caller {
            pid: 8,
            ..Caller::default()
        };
        let errno = |r: FsResult<()>| r.unwrap_err().to_errno();
        assert_eq!(errno(g.settle(p7, Ino(5), b"a", stale())), libc::ESTALE);
        // Another thread, or another target, gets its own retry.
        assert_eq!(errno(g.settle(p8, Ino(5), b"a", stale())), libc::ESTALE);
        assert_eq!(errno(g.settle(p7, Ino(5), b"b", stale())), libc::ESTALE);
        // The retry of the same request gets what a local disk would say.
        assert_eq!(errno(g.settle(p7, Ino(5), b"a", stale())), libc::ENOENT);
        // ...and the next stale view is answered ESTALE again.
        assert_eq!(errno(g.settle(p7, Ino(5), b"a", stale())), libc::ESTALE);
        // Not a process: no retry to wait for.
        let daemon = Caller::default();
        assert_eq!(errno(g.settle(daemon, Ino(5), b"a", stale())), libc::ENOENT);
        assert!(g.settle(p7, Ino(5), b"a", Ok(())).is_ok());
    }
}

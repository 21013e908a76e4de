//! Advisory locks (fcntl and flock) shared by every mount on the database.

use super::MemFs;
use crate::error::{FsError, FsResult};
use crate::ids::Ino;
use crate::store::{LockRow, LockSpec};

/// One attempt of a blocking lock request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStep {
    Granted,
    Blocked,
    /// Waiting would never end: the owner we wait for waits for us (EDEADLK).
    Deadlock,
}

impl MemFs {
    /// One try of F_SETLKW / flock: takes the lock, or says whether to keep waiting.
    /// Waiters of this mount are remembered, so that two owners each waiting for
    /// the other's lock get EDEADLK instead of hanging forever (as local locks do).
    pub fn setlk_wait(&self, spec: &LockSpec) -> FsResult<LockStep> {
        let step = self.db.write(|tx| {
            if let Some(c) = tx.lock_conflict(&self.holder, spec)? {
                if c.holder == self.holder {
                    let theirs = self
                        .waiting
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&c.owner)
                        .copied();
                    if let Some(w) = theirs {
                        if tx.owner_blocks(&self.holder, spec.owner, &w)? {
                            return Ok::<_, FsError>(LockStep::Deadlock);
                        }
                    }
                }
                return Ok(LockStep::Blocked);
            }
            tx.set_lock(&self.holder, spec, Some(spec.exclusive))?;
            Ok(LockStep::Granted)
        })?;
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match step {
            LockStep::Blocked => {
                waiting.insert(spec.owner, *spec);
            }
            _ => {
                waiting.remove(&spec.owner);
            }
        }
        drop(waiting);
        if step == LockStep::Granted {
            self.locked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(spec.ino);
        }
        Ok(step)
    }

    /// Forgets a waiter that gave up (its process is gone).
    pub fn stop_waiting(&self, owner: u64) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&owner);
    }

    /// F_GETLK: a conflicting lock held by someone else, if any.
    pub fn getlk(&self, spec: &LockSpec) -> FsResult<Option<LockRow>> {
        Ok(self.db.read(|tx| tx.lock_conflict(&self.holder, spec))?)
    }

    /// F_SETLK: takes (`Some(exclusive)`) or releases (`None`) a lock without
    /// waiting. Returns false when another owner's lock conflicts.
    pub fn setlk(&self, spec: &LockSpec, kind: Option<bool>) -> FsResult<bool> {
        let done = self.db.write(|tx| {
            if let Some(exclusive) = kind {
                let want = LockSpec { exclusive, ..*spec };
                if tx.lock_conflict(&self.holder, &want)?.is_some() {
                    return Ok::<_, FsError>(false);
                }
            }
            tx.set_lock(&self.holder, spec, kind)?;
            Ok(true)
        })?;
        if done && kind.is_some() {
            self.locked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(spec.ino);
        }
        Ok(done)
    }

    /// Drops an owner's locks on a file (on close). Cheap when this mount never
    /// locked the file.
    pub fn unlock_owner(&self, ino: Ino, owner: u64) -> FsResult<()> {
        let maybe = self
            .locked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&ino);
        if maybe {
            self.db
                .write(|tx| tx.unlock_owner(&self.holder, ino, owner))?;
        }
        Ok(())
    }
}

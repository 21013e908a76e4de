//! Advisory locks (fcntl and flock) shared by every mount on the database.

use super::MemFs;
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino};
use crate::store::{LockRow, LockSpec};

impl MemFs {
    /// F_GETLK: a conflicting lock held by someone else, if any.
    pub fn getlk(&self, spec: &LockSpec) -> FsResult<Option<LockRow>> {
        Ok(self
            .db
            .read(|tx| tx.lock_conflict(&self.holder, spec, now_ns()))?)
    }

    /// F_SETLK: takes (`Some(exclusive)`) or releases (`None`) a lock without
    /// waiting. Returns false when another owner's lock conflicts.
    pub fn setlk(&self, spec: &LockSpec, kind: Option<bool>) -> FsResult<bool> {
        let done = self.db.write(|tx| {
            if let Some(exclusive) = kind {
                let want = LockSpec { exclusive, ..*spec };
                if tx.lock_conflict(&self.holder, &want, now_ns())?.is_some() {
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

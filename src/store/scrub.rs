//! Making removed bytes leave the files: `secure_delete` while removing, then a
//! WAL checkpoint that truncates the log, `VACUUM`, and a second truncating
//! checkpoint (VACUUM writes the rebuilt database through the WAL).
//!
//! A checkpoint cannot finish while another connection (a running daemon) reads
//! an older snapshot; the WAL then still holds frames with the old bytes. We retry
//! until a deadline and report what is left; the caller says so and fails.

use super::Db;
use crate::error::{StoreError, StoreResult};
use std::time::{Duration, Instant};

/// The outcome of [`Db::scrub_files`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scrub {
    /// The WAL was checkpointed and truncated to zero bytes at the end.
    pub wal_clean: bool,
    /// VACUUM rebuilt the database (no free pages with old bytes).
    pub vacuumed: bool,
    /// WAL frames a reader still pinned at the last attempt (0 when clean).
    pub wal_frames_left: i64,
}

impl Db {
    /// Turns SQLite's `secure_delete` on or off for this connection: deleted
    /// content is overwritten with zeros instead of left in free space.
    pub fn set_secure_delete(&self, on: bool) -> StoreResult<()> {
        let _armed = self.arm();
        let mut g = self.lock();
        g.end_read();
        g.conn
            .pragma_update(None, "secure_delete", if on { "ON" } else { "OFF" })?;
        Ok(())
    }

    /// Checkpoints the WAL into the database and truncates it, vacuums, and
    /// checkpoints again, retrying a checkpoint that readers block until
    /// `patience` has passed. Does nothing for an in-memory database.
    pub fn scrub_files(&self, patience: Duration) -> StoreResult<Scrub> {
        if self.path.is_none() {
            return Ok(Scrub {
                wal_clean: true,
                vacuumed: false,
                wal_frames_left: 0,
            });
        }
        let deadline = Instant::now() + patience;
        let left = self.checkpoint_until(deadline)?;
        let vacuumed = {
            let _armed = self.arm();
            let mut g = self.lock();
            g.end_read();
            g.commit().map_err(StoreError::from)?;
            g.conn.execute_batch("VACUUM").is_ok()
        };
        let left = if vacuumed {
            self.checkpoint_until(deadline)?
        } else {
            left
        };
        Ok(Scrub {
            wal_clean: left == 0,
            vacuumed,
            wal_frames_left: left,
        })
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)` until it succeeds or `deadline` passes.
    /// Returns the WAL frames left (0 when the log was emptied and truncated).
    fn checkpoint_until(&self, deadline: Instant) -> StoreResult<i64> {
        loop {
            let (busy, log, done) = {
                let _armed = self.arm();
                let mut g = self.lock();
                g.end_read();
                g.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })?
            };
            // Success: not busy, and the log is empty (TRUNCATE resets it to 0).
            if busy == 0 && log <= 0 {
                return Ok(0);
            }
            if Instant::now() >= deadline {
                return Ok((log - done).max(1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

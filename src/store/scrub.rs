//! Making removed bytes leave the files: `secure_delete` while removing, then a
//! WAL checkpoint that truncates the log, `VACUUM`, and a second truncating
//! checkpoint (VACUUM writes the rebuilt database through the WAL).
//!
//! A checkpoint cannot finish while another connection (a running daemon) reads
//! an older snapshot; the WAL then still holds frames with the old bytes. We retry
//! until a deadline and report what is left; the caller says so and fails.

use super::{Db, Engine};
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
    /// What the engine could not do, told plainly (PostgreSQL: removal is
    /// logical; see "Erasure on PostgreSQL" in docs/FORMAT.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What stays after a removal on PostgreSQL, whatever memfs does.
pub const PG_ERASURE_NOTE: &str = "PostgreSQL: the rows are deleted and the tables vacuumed \
     (their space is reusable), but old bytes can stay in the data files until overwritten, \
     in the WAL until it is recycled, and in replicas and backups; encrypted stores' \
     crypto-shredding (memfsctl store shred) reaches every copy";

impl Db {
    /// Turns SQLite's `secure_delete` on or off for this connection: deleted
    /// content is overwritten with zeros instead of left in free space.
    pub fn set_secure_delete(&self, on: bool) -> StoreResult<()> {
        let Engine::Lite(lite) = &self.engine else {
            return Ok(());
        };
        let _armed = lite.arm();
        let mut g = lite.lock();
        g.end_read();
        g.conn
            .pragma_update(None, "secure_delete", if on { "ON" } else { "OFF" })?;
        Ok(())
    }

    /// Checkpoints the WAL into the database and truncates it, vacuums, and
    /// checkpoints again, retrying a checkpoint that readers block until
    /// `patience` has passed. Does nothing for an in-memory database.
    /// On PostgreSQL: VACUUM of the tables removals touch (what can be done
    /// from a client), and a note of what remains.
    pub fn scrub_files(&self, patience: Duration) -> StoreResult<Scrub> {
        if let Engine::Pg(p) = &self.engine {
            p.autocommit("VACUUM chunks, versions, audit, changes, store_keys")?;
            return Ok(Scrub {
                wal_clean: false,
                vacuumed: true,
                wal_frames_left: 0,
                note: Some(PG_ERASURE_NOTE.into()),
            });
        }
        let Some(lite) = self.lite().ok().filter(|l| l.path.is_some()) else {
            return Ok(Scrub {
                wal_clean: true,
                vacuumed: false,
                wal_frames_left: 0,
                note: None,
            });
        };
        let deadline = Instant::now() + patience;
        let left = self.checkpoint_until(deadline)?;
        let vacuumed = {
            let _armed = lite.arm();
            let mut g = lite.lock();
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
            note: None,
        })
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)` until it succeeds or `deadline` passes.
    /// Returns the WAL frames left (0 when the log was emptied and truncated).
    fn checkpoint_until(&self, deadline: Instant) -> StoreResult<i64> {
        loop {
            let (busy, log, done) = {
                let lite = self.lite()?;
                let _armed = lite.arm();
                let mut g = lite.lock();
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

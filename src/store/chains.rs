//! Per-store ordering on an engine with parallel writers (PostgreSQL).
//!
//! Every store is a *chain*: its changes are totally ordered, and its audit
//! entries form their own hash chain (store-less entries, such as API key
//! management, form chain 0). A write transaction takes the writer lock of
//! each chain it touches (`pg_advisory_xact_lock(CHAIN_NS, chain)`) before it
//! reads or writes anything of that store, so writes to one store run one at
//! a time and writes to different stores never wait for each other. The lock
//! is held to the end of the transaction (commit, rollback or a lost
//! connection), so a store's commit order is its lock order.
//!
//! Followers (the change feed, the API's event stream) read rows by one
//! global position (`changes.seq`, `audit.id`), drawn from sequences. Two
//! stores commit concurrently, so a position can become visible after a
//! higher one. A transaction therefore also takes a shared `DRAWN_NS` lock on
//! its chain right before drawing positions; a follower reads the sequence's
//! last value `L`, then the chains with a granted `DRAWN_NS` lock, then (in a
//! fresh snapshot) the rows, and delivers only positions `<= L` and below the
//! first position each such chain may still commit (its newest committed
//! position + 1: positions within a chain are drawn under its writer lock).
//! Nothing is skipped and nothing waits for a writer that has not drawn yet.
//!
//! SQLite has one writer per database: every method here is a no-op there.

use super::sql::{Dialect, OptionalExtension};
use super::Txn;
use crate::error::StoreResult;
use crate::ids::{Ino, StoreId, VersionId};

/// The first key of a chain's writer lock ("memf").
pub(super) const CHAIN_NS: i32 = 0x6d65_6d66;
/// The first key of the lock taken before drawing positions in a chain ("memd").
pub(super) const DRAWN_NS: i32 = 0x6d65_6d64;

/// A chain's lock key: the store id (store ids never reach 2^31 in practice;
/// two stores sharing a key would only share a lock).
pub(super) fn chain_key(chain: i64) -> i32 {
    (chain & 0x7fff_ffff) as i32
}

impl Txn<'_> {
    fn parallel(&self) -> bool {
        self.write && self.dialect() == Dialect::Postgres
    }

    /// Takes chain `chain`'s writer lock for this transaction (once).
    pub(super) fn enter_chain(&self, chain: i64) -> StoreResult<()> {
        if !self.parallel() || self.locked.borrow().contains(&chain) {
            return Ok(());
        }
        // A draft's chunks are its base's, and a merge writes the base, then
        // rebases the draft: a transaction touching a draft takes its base's
        // lock first, so every transaction takes the two in the same order.
        if let Some(base) = self.draft_of_chain(chain)? {
            self.enter_chain(base)?;
        }
        // The transaction id comes back with the first lock: if the connection
        // is lost during COMMIT, the engine asks the server how it ended. The
        // first lock of a transaction usually is its first statement: it goes
        // with the BEGIN, in one round trip (the keys are integers).
        let first = self.conn.begin_with(&format!(
            "SELECT pg_current_xact_id()::text FROM \
             (SELECT pg_advisory_xact_lock({CHAIN_NS}, {})) AS l",
            chain_key(chain)
        ))?;
        let xid: String = match first {
            Some(row) => row
                .into_iter()
                .next()
                .flatten()
                .ok_or_else(|| crate::error::StoreError::Invalid("no transaction id".into()))?,
            None => self.conn.query_row(
                "SELECT pg_current_xact_id()::text FROM \
                 (SELECT pg_advisory_xact_lock(?1::int4, ?2::int4)) AS l",
                (CHAIN_NS, chain_key(chain)),
                |r| r.get(0),
            )?,
        };
        self.conn.note_xid(&xid);
        self.locked.borrow_mut().push(chain);
        Ok(())
    }

    /// The store chain `chain` is a draft of, if it is one.
    fn draft_of_chain(&self, chain: i64) -> StoreResult<Option<i64>> {
        if chain <= 0 {
            return Ok(None);
        }
        if let Some(d) = self.conn.cached_draft_of(chain) {
            return Ok(d);
        }
        let row: Option<Option<i64>> = self
            .conn
            .query_row("SELECT draft_of FROM stores WHERE id = ?1", [chain], |r| {
                r.get(0)
            })
            .optional()?;
        // A store being made has no row yet: asked again next time.
        if let Some(d) = row {
            self.conn.cache_draft_of(chain, d);
        }
        Ok(row.flatten())
    }

    /// Before touching store `s`.
    pub(super) fn enter_store(&self, s: StoreId) -> StoreResult<()> {
        self.enter_chain(s.0)
    }

    /// Before touching inode `ino` (its store's chain).
    pub(super) fn enter_ino(&self, ino: Ino) -> StoreResult<()> {
        // Inode 1 is the mount root, which belongs to no store and never changes.
        if !self.parallel() || ino.0 <= 1 {
            return Ok(());
        }
        let store = match self.conn.cached_store_of(ino.0) {
            Some(s) => Some(s),
            None => {
                let s: Option<Option<i64>> = self
                    .conn
                    .query_row("SELECT store_id FROM inodes WHERE ino = ?1", [ino.0], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let s = s.flatten();
                if let Some(s) = s {
                    self.conn.cache_store_of(ino.0, s);
                }
                s
            }
        };
        match store {
            Some(s) => self.enter_chain(s),
            None => Ok(()),
        }
    }

    /// Before touching version `v` (its store's chain).
    pub(super) fn enter_version(&self, v: VersionId) -> StoreResult<()> {
        if !self.parallel() {
            return Ok(());
        }
        let s: Option<i64> = self
            .conn
            .query_row("SELECT store_id FROM versions WHERE id = ?1", [v.0], |r| {
                r.get(0)
            })
            .optional()?;
        match s {
            Some(s) => self.enter_chain(s),
            None => Ok(()),
        }
    }

    /// Right before drawing audit ids or feed positions in `chain` (see the
    /// module comment); takes the chain's writer lock first.
    pub(super) fn drawing(&self, chain: i64) -> StoreResult<()> {
        self.enter_chain(chain)?;
        if !self.parallel() || self.drawn.borrow().contains(&chain) {
            return Ok(());
        }
        self.conn.query_row(
            "SELECT 1 FROM (SELECT pg_advisory_xact_lock_shared(?1::int4, ?2::int4)) AS l",
            (DRAWN_NS, chain_key(chain)),
            |_| Ok(()),
        )?;
        self.drawn.borrow_mut().push(chain);
        Ok(())
    }

    /// The chains this transaction drew positions in (NOTIFY's payload).
    pub(super) fn drawn_chains(&self) -> Vec<i64> {
        self.drawn.borrow().clone()
    }

    /// The highest position of `seq_sql`'s kind (`changes.seq` or `audit.id`)
    /// that followers may read past: every position up to it is committed or
    /// will never be. `None` on SQLite (no bound: one writer commits in order).
    /// `newest_in_chain` is the query for a chain's newest committed position.
    pub(super) fn settled(
        &self,
        sequence: &str,
        newest_in_chain: &str,
    ) -> StoreResult<Option<i64>> {
        if self.dialect() != Dialect::Postgres {
            return Ok(None);
        }
        let Some((last, drawing)) = self.conn.probe_in_flight(sequence, DRAWN_NS)? else {
            // This transaction's snapshot is older than the probe: deliver
            // nothing new rather than risk skipping a late commit.
            return Ok(Some(i64::MIN));
        };
        let mut bound = last;
        for chain in drawing {
            let newest: Option<i64> =
                self.conn
                    .query_row(newest_in_chain, [i64::from(chain)], |r| r.get(0))?;
            bound = bound.min(newest.unwrap_or(0));
        }
        Ok(Some(bound))
    }
}

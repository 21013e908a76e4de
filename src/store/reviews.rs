//! Review marks of the web console (migration 9): for each console user and
//! store, the newest audit entry they marked reviewed, and when.

use super::sql::{params, OptionalExtension};
use super::Txn;
use crate::error::StoreResult;

impl Txn<'_> {
    /// `user`'s mark on the store with API id `store`: (audit id, when).
    pub fn review_mark(&self, user: &str, store: &str) -> StoreResult<Option<(i64, i64)>> {
        self
            .conn
            .prepare_cached(
                "SELECT audit_id, at_ns FROM console_reviews WHERE \"user\" = ?1 AND store_api_id = ?2",
            )?
            .query_row(params![user, store], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }

    /// Sets `user`'s mark on a store.
    pub fn set_review_mark(
        &self,
        user: &str,
        store: &str,
        audit_id: i64,
        at_ns: i64,
    ) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO console_reviews (\"user\", store_api_id, audit_id, at_ns) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (\"user\", store_api_id) \
                 DO UPDATE SET audit_id = excluded.audit_id, at_ns = excluded.at_ns",
            )?
            .execute(params![user, store, audit_id, at_ns])?;
        Ok(())
    }

    /// Removes every mark of `user` (forgetting a user); how many went.
    pub fn forget_review_marks(&self, user: &str) -> StoreResult<usize> {
        self.conn
            .prepare_cached("DELETE FROM console_reviews WHERE \"user\" = ?1")?
            .execute([user])
    }
}

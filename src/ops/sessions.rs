//! What a sandbox session attaches, for the SDK's session memory sync
//! (`SessionMemoryStores` reads `GET /v1/sessions/{id}`): every store the
//! principal may see, read-write where it may write (and the store is not
//! archived), read-only otherwise. memfs has no session objects of its own; a
//! session is whatever the platform calls one, and its stores are its key's.

use super::{Ops, Principal};
use crate::error::OpResult;
use crate::store::StoreRow;

/// One store a session attaches, and how.
#[derive(Clone, Debug)]
pub struct SessionStore {
    pub store: StoreRow,
    pub read_only: bool,
}

impl Ops {
    /// The stores `p` attaches to a session, by slug.
    pub fn session_stores(&self, p: &Principal) -> OpResult<Vec<SessionStore>> {
        let mut out = Vec::new();
        for row in self.visible_stores(p)? {
            let (row, set) = self.store(p, &row.api_id)?;
            let read_only = row.archived || !p.may_write(&row, &set);
            out.push(SessionStore {
                store: row,
                read_only,
            });
        }
        out.sort_by(|a, b| a.store.name.cmp(&b.store.name));
        Ok(out)
    }
}

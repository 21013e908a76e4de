//! Stores at a glance, for people: every store a principal may see with its
//! size now and its last change. Anyone who may see a store may see this
//! (unlike `store_details`, which also shows who may attach it).

use super::{Ops, Principal};
use crate::error::{OpResult, StoreError};
use crate::store::{AuditEntry, AuditFilter, StoreRow};
use serde::Serialize;

/// One store with its usage and last change.
#[derive(Clone, Debug, Serialize)]
pub struct StoreSummary {
    #[serde(flatten)]
    pub row: StoreRow,
    /// Live files and directories (the root not counted).
    pub files: u64,
    /// Bytes of their current content.
    pub bytes: u64,
    pub last_change: Option<AuditEntry>,
    /// The principal may change its memory (archived aside).
    pub writable: bool,
}

impl Ops {
    /// Every store `p` may see, by name, archived ones included.
    pub fn store_summaries(&self, p: &Principal) -> OpResult<Vec<StoreSummary>> {
        let all = self.read(|tx| {
            let mut out = Vec::new();
            for r in tx.stores()? {
                let set = crate::settings::load(tx, r.id)?;
                if !p.may_see(&r, &set) {
                    continue;
                }
                let (live, bytes) = tx.store_usage(r.id)?;
                let last = tx
                    .audit_entries(&AuditFilter {
                        store: Some(r.id),
                        limit: Some(1),
                        ..Default::default()
                    })?
                    .pop();
                let writable = p.may_write(&r, &set);
                out.push(StoreSummary {
                    row: r,
                    files: live.saturating_sub(1),
                    bytes,
                    last_change: last,
                    writable,
                });
            }
            Ok::<_, StoreError>(out)
        })?;
        let mut all = all;
        all.sort_by(|a, b| a.row.name.cmp(&b.row.name));
        Ok(all)
    }
}

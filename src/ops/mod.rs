//! The operations core: what a person or an agent can ask memfs for, written
//! once for every front end. memfsctl, the HTTP API, the console and the MCP
//! server parse a request, call one function here, and render its result; no
//! operation exists twice. Results are plain data (`Serialize`), errors are
//! typed ([`OpError`], whose HTTP class lives in `error.rs` next to the errno
//! mapping); nothing here prints, speaks HTTP or knows clap.
//!
//! Changes to memory go through the filesystem core (`fs/`), so policies,
//! quotas, content rules, leases, versions, the audit log and the change feed
//! are the same whoever writes; reads of the past go through `history.rs`.

pub mod access;
pub mod actor;
pub mod check;
pub mod drafts;
pub mod events;
pub mod files;
pub mod history;
pub mod interchange;
pub mod jobs;
pub mod keys;
pub mod leases;
pub mod log;
pub mod memories;
pub mod memory_tool;
pub mod merge3;
pub mod overview;
pub mod page;
pub mod paths;
pub mod prompt;
pub mod removal;
pub mod review;
pub mod rollback;
pub mod search;
pub mod sessions;
pub mod store_admin;
pub mod stores;
#[cfg(test)]
mod tests;
pub mod time;
pub mod tree;
pub mod versions;

pub use access::{Principal, Role};
pub use actor::Actor;
pub use page::Page;

use crate::error::{OpError, OpResult};
use crate::fs::{Attached, FsOptions, MemFs};
use crate::settings::StoreSettings;
use crate::store::{Db, StoreRow};
use std::sync::Arc;

/// The operations core over one database.
#[derive(Clone)]
pub struct Ops {
    db: Arc<Db>,
    /// Extra connections for reads (a server's): reads do not queue behind
    /// writes and run on both cores. Empty: reads use `db`.
    readers: Arc<Vec<Arc<Db>>>,
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
    fs_opts: FsOptions,
    /// Largest content shown as text by reads (the API's `content`).
    pub max_content_bytes: u64,
}

impl Ops {
    pub fn new(db: Arc<Db>) -> Ops {
        Ops {
            db,
            readers: Arc::new(Vec::new()),
            next_reader: Default::default(),
            fs_opts: FsOptions::default(),
            max_content_bytes: 1 << 20,
        }
    }

    /// Adds connections that serve reads. They must be on the same database
    /// file; each read is one transaction, so it sees every change committed
    /// before it began (writes are committed before they are answered).
    pub fn with_readers(mut self, readers: Vec<Arc<Db>>) -> Ops {
        self.readers = Arc::new(readers);
        self
    }

    pub fn with_fs_options(mut self, opts: FsOptions) -> Ops {
        self.fs_opts = opts;
        self
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// A filesystem core acting for `p` on `store` alone: read-only unless `p`
    /// may write it, with the store's settings in force.
    pub(crate) fn fs_for(&self, p: &Principal, store: &StoreRow, set: &StoreSettings) -> MemFs {
        let writable = p.may_write(store, set);
        MemFs::new(
            self.db.clone(),
            p.who.clone(),
            vec![Attached::new(store.clone(), !writable, set.policy())],
            self.fs_opts.clone(),
        )
    }

    /// Runs a read, mapping storage errors.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&crate::store::Txn<'_>) -> Result<T, crate::error::StoreError>,
    ) -> OpResult<T> {
        let db = match self.readers.len() {
            0 => &self.db,
            n => {
                let i = self
                    .next_reader
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                &self.readers[i % n]
            }
        };
        db.read(f).map_err(OpError::from)
    }
}

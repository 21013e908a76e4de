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
pub mod events;
pub mod keys;
pub mod memories;
pub mod page;
pub mod paths;
pub mod stores;
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
    fs_opts: FsOptions,
    /// Largest content shown as text by reads (the API's `content`).
    pub max_content_bytes: u64,
}

impl Ops {
    pub fn new(db: Arc<Db>) -> Ops {
        Ops {
            db,
            fs_opts: FsOptions::default(),
            max_content_bytes: 1 << 20,
        }
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
        self.db.read(f).map_err(OpError::from)
    }
}

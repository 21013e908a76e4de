//! Moving a store in and out (see `interchange/` for the format): export to
//! an archive written to any `Write` (a file, stdout, an HTTP response),
//! import from any `Read` as a new store (all or nothing), and a store's
//! history as a git repository. Only an admin may; the store exported must be
//! visible to it.

use super::{Ops, Principal};
use crate::config::Config;
use crate::error::{OpError, OpResult, StoreError};
use crate::interchange::git::GitExported;
use crate::interchange::import::Imported;
use crate::interchange::progress::Progress;
use crate::interchange::{InterchangeError, Manifest};
use std::io::{Read, Write};
use std::path::Path;

impl From<InterchangeError> for OpError {
    fn from(e: InterchangeError) -> Self {
        match e {
            InterchangeError::Refused(_) => OpError::Invalid(e.to_string()),
            InterchangeError::Invalid(m) => OpError::Invalid(m),
            InterchangeError::Store(s) => OpError::Store(s),
            InterchangeError::Io(io) => OpError::Store(StoreError::Io(io)),
        }
    }
}

impl Ops {
    /// Writes `store` as an archive to `out` (with every version and the
    /// audit log if `history`). Returns the manifest written and `out`.
    pub fn export_archive<W: Write>(
        &self,
        p: &Principal,
        store: &str,
        history: bool,
        out: W,
        progress: &mut Progress,
    ) -> OpResult<(Manifest, W)> {
        p.require_admin("export stores")?;
        let row = self.visible_store(p, store)?;
        Ok(crate::interchange::export::write_archive(
            self.db(),
            &row.name,
            history,
            out,
            progress,
        )?)
    }

    /// Writes `store`'s history into a new git repository at `dir` (which
    /// must not exist or be empty): one commit per change.
    pub fn export_git(
        &self,
        p: &Principal,
        store: &str,
        dir: &Path,
        progress: &mut Progress,
    ) -> OpResult<GitExported> {
        p.require_admin("export stores")?;
        let row = self.visible_store(p, store)?;
        Ok(crate::interchange::git::export_git(
            self.db(),
            &row.name,
            dir,
            progress,
        )?)
    }

    /// Imports the archive read from `source` as a new store, named
    /// `as_name` or as in the archive; `config` gives the new store's limits.
    /// A refused archive creates nothing.
    pub fn import_archive<R: Read>(
        &self,
        p: &Principal,
        config: &Config,
        source: R,
        as_name: Option<&str>,
        progress: &mut Progress,
    ) -> OpResult<Imported> {
        p.require_admin("import stores")?;
        if let Some(name) = as_name {
            if self.read(|tx| tx.store_by_name(name))?.is_some() {
                return Err(OpError::Conflict(format!(
                    "a store named '{name}' already exists; import under another name"
                )));
            }
        }
        Ok(crate::interchange::import::import_archive(
            self.db(),
            config,
            source,
            as_name,
            &p.who,
            progress,
        )?)
    }
}

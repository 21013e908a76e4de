//! Naming what the operations on the past act on: a store by API id or slug
//! (absent for a principal that may not see it, so its existence does not
//! leak), and a file in it by store-relative path, now or as the audit log last
//! saw it (a deleted file still has a history).

use super::{Ops, Principal};
use crate::error::{OpError, OpResult};
use crate::history::find_file;
use crate::ids::Ino;
use crate::settings::StoreSettings;
use crate::store::StoreRow;

/// A file of a store.
#[derive(Clone, Debug)]
pub struct FileRef {
    pub store: StoreRow,
    /// Store-relative, without leading or trailing `/`.
    pub path: String,
    pub ino: Ino,
}

impl FileRef {
    /// `STORE/PATH`, as people name a file.
    pub fn display(&self) -> String {
        format!("{}/{}", self.store.name, self.path)
    }
}

/// A store-relative path as given (`/a/b`, `a/b/`), checked to name a file.
fn file_path(path: &str) -> OpResult<String> {
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Err(OpError::Invalid(
            "name a file in the store, not the store itself".into(),
        ));
    }
    Ok(path.to_string())
}

impl Ops {
    /// A store `p` may see, by API id or slug.
    pub fn visible_store(&self, p: &Principal, store: &str) -> OpResult<StoreRow> {
        self.store_named(p, store).map(|(row, _)| row)
    }

    /// A store `p` may see and its settings; "no store named" otherwise.
    pub(crate) fn store_named(
        &self,
        p: &Principal,
        store: &str,
    ) -> OpResult<(StoreRow, StoreSettings)> {
        self.store(p, store).map_err(|e| match e {
            OpError::NotFound(_) => OpError::NotFound(format!("no store named '{store}'")),
            e => e,
        })
    }

    /// Every store `p` may see, archived ones included, by name; drafts only
    /// when `p` is limited to them by name (`memfs mcp --store STORE@DRAFT`).
    pub fn visible_stores(&self, p: &Principal) -> OpResult<Vec<StoreRow>> {
        let all = self.read(|tx| {
            let mut rows = tx.stores()?;
            for name in p.stores.iter().flatten().filter(|n| n.contains('@')) {
                if let Some(d) = tx.store_by_name(name)? {
                    rows.push(d);
                }
            }
            rows.into_iter()
                .map(|r| crate::settings::load(tx, r.id).map(|s| (r, s)))
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(all
            .into_iter()
            .filter(|(r, s)| p.may_see(r, s))
            .map(|(r, _)| r)
            .collect())
    }

    /// The file at `path` in `store` now, or the last file the audit log saw
    /// there (for history, cat, diff and purge of deleted files).
    pub fn find_file(&self, p: &Principal, store: &str, path: &str) -> OpResult<FileRef> {
        let row = self.visible_store(p, store)?;
        let path = file_path(path)?;
        match self.read(|tx| find_file(tx, &row, &path))? {
            Some(ino) => Ok(FileRef {
                store: row,
                path,
                ino,
            }),
            None => Err(OpError::NotFound(format!(
                "no file '{path}' in store '{}', now or in its history",
                row.name
            ))),
        }
    }

    /// What is at `path` in `store` now (a file or a directory), if anything.
    pub fn live_file(&self, p: &Principal, store: &str, path: &str) -> OpResult<Option<FileRef>> {
        let row = self.visible_store(p, store)?;
        let path = file_path(path)?;
        let ino = self.read(|tx| tx.resolve_path(row.root, &path))?;
        Ok(ino.map(|ino| FileRef {
            store: row,
            path,
            ino,
        }))
    }
}

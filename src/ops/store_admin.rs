//! Stores as an operator manages them, beyond what the API's store calls do
//! (`stores.rs`): creating a store a config declares (its settings and
//! template with it), every visible store at once, a store's usage and
//! settings, archiving with strict answers (already archived is an error
//! here), crypto-shredding, and changing settings by `KEY=VALUE`
//! assignments. Only an admin changes a store.

use super::stores::NewStore;
use super::{Ops, Principal};
use crate::attach::apply_template;
use crate::config::StoreDecl;
use crate::error::{OpError, OpResult, StoreError};
use crate::ids::now_ns;
use crate::settings::StoreSettings;
use crate::store::StoreRow;
use serde::Serialize;

/// A store with its usage and settings.
#[derive(Clone, Debug, Serialize)]
pub struct StoreDetails {
    #[serde(flatten)]
    pub row: StoreRow,
    pub created: String,
    /// Names in the store (the root not counted).
    pub files: u64,
    /// Bytes of the files' current content.
    pub bytes: u64,
    pub versions: u64,
    /// Bytes of every version's chunks and manifests.
    pub history_bytes: u64,
    // The settings most people look for, at the top level (as before they
    // lived in the database); `settings` has them all.
    pub readers: Option<Vec<String>>,
    pub writers: Option<Vec<String>>,
    pub read_only_paths: Vec<String>,
    pub read_only_writers: Vec<String>,
    pub append_only_paths: Vec<String>,
    pub max_file_bytes: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_files: Option<u64>,
    pub settings: StoreSettings,
}

impl Ops {
    /// Creates a store, and if the config declares it, gives it the declared
    /// settings and its template directories and seed files. (Two steps: the
    /// store exists with default settings for a moment before the declared
    /// ones replace them.)
    pub fn create_declared_store(
        &self,
        p: &Principal,
        ns: &NewStore,
        decl: Option<&StoreDecl>,
    ) -> OpResult<StoreRow> {
        let row = self.create_store(p, ns)?;
        let Some(decl) = decl else {
            return Ok(row);
        };
        self.set_store_settings(p, &row.api_id, &decl.settings())?;
        apply_template(self.db(), &row, decl, &p.who)?;
        Ok(self.read(|tx| tx.store_by_id(row.id))?.unwrap_or(row))
    }

    /// A store's usage and settings. Only an admin may (settings name who
    /// may attach it).
    pub fn store_details(&self, p: &Principal, id: &str) -> OpResult<StoreDetails> {
        p.require_admin("read store settings")?;
        let (row, set) = self.store_named(p, id)?;
        let (live, bytes, versions, (chunk_bytes, manifest_bytes, _)) = self.read(|tx| {
            let (live, bytes) = tx.store_usage(row.id)?;
            Ok::<_, StoreError>((
                live,
                bytes,
                tx.store_versions(row.id)?,
                tx.storage_stats(row.id)?,
            ))
        })?;
        Ok(StoreDetails {
            created: crate::timefmt::rfc3339(row.created_ns),
            files: live.saturating_sub(1),
            bytes,
            versions,
            history_bytes: chunk_bytes + manifest_bytes,
            readers: set.readers.clone(),
            writers: set.writers.clone(),
            read_only_paths: set.policy.read_only.clone(),
            read_only_writers: set.policy.read_only_writers.clone(),
            append_only_paths: set.policy.append_only.clone(),
            max_file_bytes: set.quota.max_file_bytes,
            max_bytes: set.quota.max_bytes,
            max_files: set.quota.max_files,
            settings: set,
            row,
        })
    }

    /// Archives or unarchives a store; refused when it already is, and a
    /// crypto-shredded store stays archived.
    pub fn change_archived(&self, p: &Principal, id: &str, archived: bool) -> OpResult<StoreRow> {
        p.require_admin("archive stores")?;
        let (row, _) = self.store_named(p, id)?;
        if row.shredded && !archived {
            return Err(OpError::Invalid(format!(
                "store '{}' was crypto-shredded; it stays archived",
                row.name
            )));
        }
        if row.archived == archived {
            return Err(OpError::Conflict(format!(
                "store '{}' is already {}",
                row.name,
                if archived { "archived" } else { "active" }
            )));
        }
        self.set_archived(p, &row, archived)
    }

    /// Destroys an encrypted store's key: every version of it becomes
    /// unreadable, also in copies of the database; the store is archived.
    pub fn shred_store(&self, p: &Principal, id: &str) -> OpResult<StoreRow> {
        p.require_admin("shred stores")?;
        let (row, _) = self.store_named(p, id)?;
        if row.shredded {
            return Err(OpError::Conflict(format!(
                "store '{}' was already crypto-shredded",
                row.name
            )));
        }
        // Deleted rows (the sealed data key) are overwritten, and the WAL is
        // truncated, so this file keeps no copy of the key either.
        self.db().set_secure_delete(true)?;
        let shredded = self
            .db()
            .write(|tx| tx.shred_store(&row, &p.who, now_ns()))
            .map_err(|e| match e {
                StoreError::Invalid(m) => OpError::Invalid(m),
                e => e.into(),
            })
            .and_then(|()| Ok(self.db().checkpoint()?));
        let off = self.db().set_secure_delete(false);
        shredded?;
        off?;
        self.read(|tx| tx.store_by_id(row.id))?
            .ok_or_else(|| OpError::NotFound(format!("no store named '{}'", row.name)))
    }

    /// Changes a store's settings by `KEY=VALUE` assignments (see
    /// [`StoreSettings::set`]), all or none; returns the new settings.
    pub fn assign_store_settings(
        &self,
        p: &Principal,
        id: &str,
        assignments: &[String],
    ) -> OpResult<StoreSettings> {
        p.require_admin("change store settings")?;
        let (row, mut set) = self.store_named(p, id)?;
        if assignments.is_empty() {
            return Err(OpError::Invalid(
                "give at least one KEY=VALUE setting".into(),
            ));
        }
        for a in assignments {
            set.set(a).map_err(OpError::Invalid)?;
        }
        self.set_store_settings(p, &row.api_id, &set)
    }
}

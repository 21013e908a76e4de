//! Removal for good: redacting one version, purging a file with all its
//! versions, forgetting a user (every store they own), and scrubbing the
//! database files afterwards. Only an admin may; forgetting a user and
//! scrubbing reach the whole database, so they also need an admin over every
//! store. Who changed what and when stays in the audit log (its entries about
//! the removed content are sealed, and the chain still verifies).
//!
//! Every removal runs the same way, whoever asks (memfsctl, the API): with
//! SQLite's `secure_delete` on, then a WAL checkpoint, `VACUUM` and a
//! truncating checkpoint, so the removed bytes are in neither the database
//! file, its free pages nor its WAL. A running daemon that reads an older
//! snapshot can keep the WAL from being emptied: the removal is committed
//! anyway, and its [`Scrub`] says what is left ([`scrub_problem`]).

use super::{Ops, Principal};
use crate::error::{OpError, OpResult, StoreError};
use crate::ids::{now_ns, Ino, VersionId};
use crate::store::{Forgotten, Removal, Scope, Scrub, VersionRow};
use serde::Serialize;
use std::time::Duration;

/// How long to retry a WAL checkpoint that running daemons block.
const PATIENCE: Duration = Duration::from_secs(10);

/// A version redacted.
#[derive(Clone, Debug, Serialize)]
pub struct Redacted {
    pub redacted: VersionId,
    pub removal: Removal,
    pub scrub: Scrub,
}

/// What purging a file would remove.
#[derive(Clone, Debug, Serialize)]
pub struct PurgePlan {
    pub store: String,
    pub path: String,
    pub ino: Ino,
    /// Every version that would go, oldest first.
    pub versions: Vec<VersionRow>,
    /// Names of the file that would leave the namespace.
    pub names: usize,
}

/// A file purged.
#[derive(Clone, Debug, Serialize)]
pub struct Purged {
    pub store: String,
    pub path: String,
    pub ino: Ino,
    pub removal: Removal,
    pub scrub: Scrub,
}

/// A user forgotten.
#[derive(Clone, Debug, Serialize)]
pub struct Forgot {
    pub forgotten: Forgotten,
    pub scrub: Scrub,
}

/// What is wrong with the files after a removal, if anything: a sentence for
/// the operator saying what to do.
pub fn scrub_problem(scrub: &Scrub) -> Option<String> {
    // An engine whose removal is logical says so in its note instead (the
    // caller shows it): there is no WAL file of ours to clean.
    if scrub.note.is_some() {
        return None;
    }
    if !scrub.wal_clean {
        return Some(format!(
            "the removal is committed, but the database's WAL file still holds {} frame(s) \
             with old bytes: a running memfs daemon is reading an older snapshot. They are \
             gone once the daemons checkpoint; to be sure now, stop the mounts and run \
             `memfsctl scrub`",
            scrub.wal_frames_left
        ));
    }
    if !scrub.vacuumed {
        return Some(
            "the removal is committed, but VACUUM failed: run `memfsctl scrub` again".into(),
        );
    }
    None
}

/// Refuses unless `p` is an admin over every store.
fn require_global_admin(p: &Principal, what: &str) -> OpResult<()> {
    p.require_admin(what)?;
    if p.stores.is_some() {
        return Err(OpError::Forbidden(format!(
            "only an admin over every store may {what} (this key is limited to some stores)"
        )));
    }
    Ok(())
}

impl Ops {
    /// Runs a removal with `secure_delete` on, then cleans the files.
    fn removing<T>(&self, remove: impl FnOnce() -> OpResult<T>) -> OpResult<(T, Scrub)> {
        self.db().set_secure_delete(true)?;
        // The search index holds copies of current content: it drops what
        // was removed before the files are scrubbed.
        let result = remove().and_then(|done| {
            self.search_catch_up_all()?;
            Ok((done, self.db().scrub_files(PATIENCE)?))
        });
        // A long-lived process (the server) goes back to ordinary deletes;
        // nothing removed before this point is left in free pages.
        let off = self.db().set_secure_delete(false);
        let (done, scrub) = result?;
        off?;
        Ok((done, scrub))
    }

    /// Redacts version `id`: its content, hash, size and path are removed for
    /// good; who wrote it and when stay. Refused (conflict) for a version
    /// already redacted and for the current content of a live file.
    pub fn redact(&self, p: &Principal, id: VersionId) -> OpResult<Redacted> {
        p.require_admin("redact versions")?;
        let none = || OpError::NotFound(format!("no version {id}"));
        let v = self.read(|tx| tx.version(id)).map_err(|_| none())?;
        let store = self.read(|tx| tx.store_by_id(v.store))?.ok_or_else(none)?;
        // A version in a store the principal may not see does not exist for it.
        self.visible_store(p, &store.name).map_err(|_| none())?;
        let (removal, scrub) = self.removing(|| {
            self.db()
                .write(|tx| tx.redact_version(id, &p.who, now_ns()))
                .map_err(|e| match e {
                    StoreError::Invalid(m) => OpError::Conflict(m),
                    e => e.into(),
                })
        })?;
        Ok(Redacted {
            redacted: id,
            removal,
            scrub,
        })
    }

    /// What purging the file at `path` in `store` (now, or last seen there)
    /// would remove.
    pub fn purge_plan(&self, p: &Principal, store: &str, path: &str) -> OpResult<PurgePlan> {
        p.require_admin("purge files")?;
        let f = self.find_file(p, store, path)?;
        let (versions, names, exists) = self.read(|tx| {
            let versions = tx.versions_of(f.ino)?;
            let names = tx.entries_of(f.ino)?.len();
            Ok::<_, StoreError>((versions, names, tx.inode(f.ino)?.is_some()))
        })?;
        if !exists {
            return Err(OpError::NotFound(format!(
                "no file '{}' in store '{}'",
                f.path, f.store.name
            )));
        }
        Ok(PurgePlan {
            store: f.store.name,
            path: f.path,
            ino: f.ino,
            versions,
            names,
        })
    }

    /// Removes every version of the file at `path` in `store` and the file
    /// itself, leaving tombstones (who and when).
    pub fn purge(&self, p: &Principal, store: &str, path: &str) -> OpResult<Purged> {
        let plan = self.purge_plan(p, store, path)?;
        let row = self.visible_store(p, &plan.store)?;
        let (removal, scrub) = self.removing(|| {
            self.db()
                .write(|tx| tx.purge_file(&row, plan.ino, &p.who, now_ns()))
                .map_err(OpError::from)
        })?;
        Ok(Purged {
            store: plan.store,
            path: plan.path,
            ino: plan.ino,
            removal,
            scrub,
        })
    }

    /// The stores forgetting `user` would delete (every user store they own).
    pub fn forget_user_plan(&self, p: &Principal, user: &str) -> OpResult<Vec<String>> {
        require_global_admin(p, "forget users")?;
        Ok(self
            .read(|tx| tx.stores())?
            .into_iter()
            .filter(|s| s.scope == Scope::User && s.owner.as_deref() == Some(user))
            .map(|s| s.name)
            .collect())
    }

    /// Deletes every store `user` owns with all its versions, and seals those
    /// stores' audit entries.
    pub fn forget_user(&self, p: &Principal, user: &str) -> OpResult<Forgot> {
        require_global_admin(p, "forget users")?;
        let (forgotten, scrub) = self.removing(|| {
            self.db()
                .write(|tx| {
                    let f = tx.forget_user(user, &p.who, now_ns())?;
                    // The console's review marks name the user too.
                    tx.forget_review_marks(user)?;
                    Ok::<_, StoreError>(f)
                })
                .map_err(OpError::from)
        })?;
        Ok(Forgot { forgotten, scrub })
    }

    /// Checkpoints and truncates the WAL and vacuums the database (after a
    /// removal that running daemons kept from cleaning the WAL).
    pub fn scrub(&self, p: &Principal) -> OpResult<Scrub> {
        require_global_admin(p, "scrub the database")?;
        Ok(self.db().scrub_files(PATIENCE)?)
    }
}

//! Checking the database against the format's invariants (docs/FORMAT.md):
//! `fsck` (SQLite's integrity check, every version's content against its
//! recorded hash, every file's head, link counts, the audit chain) and the
//! audit chain alone. Both read the whole database, so only an admin may.

use super::{Ops, Principal};
use crate::error::{OpResult, StoreError};
use crate::ids::{Ino, VersionId};
use serde::Serialize;

/// What `fsck` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FsckReport {
    pub sqlite: String,
    pub versions_checked: u64,
    /// Versions of crypto-shredded stores: unreadable by design, not checked.
    pub versions_shredded: u64,
    pub files_checked: u64,
    pub audit_entries: u64,
    pub problems: Vec<String>,
}

/// The audit chain's state: intact with `entries` entries, or broken at
/// `first_bad_entry` for `reason`.
#[derive(Clone, Debug, Serialize)]
pub struct AuditCheck {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_entry: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Ops {
    /// Checks the whole database; problems are listed, not errors.
    pub fn fsck(&self, p: &Principal) -> OpResult<FsckReport> {
        p.require_admin("check the database")?;
        let mut r = FsckReport::default();
        self.read(|tx| {
            r.sqlite = tx.integrity_check()?;
            if r.sqlite != "ok" {
                r.problems
                    .push(format!("database integrity check: {}", r.sqlite));
            }
            for fk in tx.foreign_key_check()? {
                r.problems.push(format!("foreign key: {fk}"));
            }
            // Every version reads back with the hash recorded for it.
            for (id, ino, size, hash) in tx.all_versions()? {
                let content = tx
                    .extents(VersionId(id))
                    .and_then(|ext| tx.read_extents(&ext, 0, ext.size()));
                match content {
                    Ok(bytes) => {
                        r.versions_checked += 1;
                        if bytes.len() as u64 != size {
                            r.problems.push(format!(
                                "version {id} of inode {ino}: {} bytes, recorded {size}",
                                bytes.len()
                            ));
                        } else if blake3::hash(&bytes).to_hex().as_str() != hash {
                            r.problems.push(format!(
                                "version {id} of inode {ino}: content does not match its hash"
                            ));
                        }
                    }
                    Err(StoreError::Shredded(_)) => r.versions_shredded += 1,
                    Err(e) => {
                        r.versions_checked += 1;
                        r.problems.push(format!("version {id} of inode {ino}: {e}"));
                    }
                }
            }
            for id in tx.redacted_with_content()? {
                r.problems
                    .push(format!("version {id} is redacted but still holds content"));
            }
            // Each file's head is its newest committed (non-conflict) version,
            // and its size is that version's size.
            for (ino, head, size, newest, newest_size) in tx.file_heads()? {
                r.files_checked += 1;
                if head != newest {
                    r.problems.push(format!(
                        "inode {ino}: head {head:?} is not its newest committed version {newest:?}"
                    ));
                } else if size != newest_size.unwrap_or(0) {
                    r.problems
                        .push(format!("inode {ino}: size {size} differs from its head's"));
                }
            }
            for (ino, names, nlink) in tx.link_counts()? {
                r.problems.push(format!(
                    "inode {}: {names} names but nlink {nlink}",
                    Ino(ino)
                ));
            }
            match tx.verify_audit()? {
                Ok(n) => r.audit_entries = n,
                Err(b) => r.problems.push(format!(
                    "audit chain broken at entry {}: {}",
                    b.id.0, b.reason
                )),
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(r)
    }

    /// Walks the audit log's hash chain from the first entry.
    pub fn verify_audit(&self, p: &Principal) -> OpResult<AuditCheck> {
        p.require_admin("verify the audit log")?;
        Ok(match self.read(|tx| tx.verify_audit())? {
            Ok(n) => AuditCheck {
                ok: true,
                entries: Some(n),
                first_bad_entry: None,
                reason: None,
            },
            Err(b) => AuditCheck {
                ok: false,
                entries: None,
                first_bad_entry: Some(b.id.0),
                reason: Some(b.reason),
            },
        })
    }
}

//! `memfsctl fsck`: checks the database against the format's invariants
//! (docs/FORMAT.md): SQLite's own integrity check, every version's content
//! against its recorded hash, every file's head, the namespace, the audit chain.

use super::Ctx;
use crate::ids::{Ino, VersionId};
use anyhow::{bail, Result};

#[derive(Default, serde::Serialize)]
struct Report {
    sqlite: String,
    versions_checked: u64,
    /// Versions of crypto-shredded stores: unreadable by design, not checked.
    versions_shredded: u64,
    files_checked: u64,
    audit_entries: u64,
    problems: Vec<String>,
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let mut r = Report::default();
    ctx.db.read(|tx| {
        r.sqlite = tx.integrity_check()?;
        if r.sqlite != "ok" {
            r.problems
                .push(format!("sqlite integrity_check: {}", r.sqlite));
        }
        for fk in tx.foreign_key_check()? {
            r.problems.push(format!("foreign key: {fk}"));
        }
        // Every version reads back with the hash recorded for it.
        for (id, ino, size, hash) in tx.all_versions()? {
            r.versions_checked += 1;
            let content = tx
                .extents(VersionId(id))
                .and_then(|ext| tx.read_extents(&ext, 0, ext.size()));
            match content {
                Ok(bytes) => {
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
                Err(crate::error::StoreError::Shredded(_)) => {
                    r.versions_checked -= 1;
                    r.versions_shredded += 1;
                }
                Err(e) => r.problems.push(format!("version {id} of inode {ino}: {e}")),
            }
        }
        for id in tx.redacted_with_content()? {
            r.problems
                .push(format!("version {id} is redacted but still holds content"));
        }
        // Each file's head is its newest committed (non-conflict) version, and its
        // size is that version's size.
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
        Ok::<_, crate::error::StoreError>(())
    })?;
    let n = r.problems.len();
    ctx.emit(&r, || {
        let mut out = format!(
            "sqlite: {}\nversions: {} checked ({} of shredded stores skipped)\nfiles: {} checked\naudit: {} entries verified\n",
            r.sqlite, r.versions_checked, r.versions_shredded, r.files_checked, r.audit_entries
        );
        for p in &r.problems {
            out.push_str(&format!("PROBLEM: {p}\n"));
        }
        if n == 0 {
            out.push_str("no problems found\n");
        }
        out
    })?;
    if n > 0 {
        bail!("{n} problem(s) found");
    }
    Ok(())
}

//! Whole-file changes for front ends without a kernel (the HTTP API, the
//! console, MCP, the memory tool): write a file's entire content, rename it,
//! remove it. Each is one change: one transaction, at most one version, one
//! audit entry per name change or content change, and the change-feed rows
//! that tell running mounts. They pass the same checks as a mount's write:
//! attachment mode, archive state, path policies, quotas, content rules, and
//! write leases (a file open for writing in a mount is not overwritten under
//! it: `Busy`). Missing parent directories are created as part of the change
//! (the API's directories are implicit) and listed in its audit entry.

use super::guard::{self, Verdict};
use super::policy::{check_new_name, check_path_len, Access};
use super::{check_name, Caller, MemFs};
use crate::digest::{self, ContentHasher};
use crate::error::{FsError, FsResult};
use crate::ids::{now_ns, Ino, StoreId, VersionId};
use crate::store::{chunk_bytes, Change, InodeRow, NewVersion, NodeKind, Txn};

/// Mode of files and directories the API creates: every agent's uid may read
/// and write them through a mount (memfs's policies, not Unix permissions,
/// decide who may change a store).
const API_FILE_PERM: u16 = 0o666;
const API_DIR_PERM: u16 = 0o777;

/// A directory entry: the directory and the name in it.
pub(super) type Entry = (Ino, Vec<u8>);

/// What a whole-file write expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Anything: create the file or replace its content.
    Any,
    /// No file at the path (a create that must not overwrite).
    Absent,
    /// An existing file whose current content has this SHA-256.
    Sha256([u8; 32]),
}

/// What a whole-file change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub ino: Ino,
    /// The file's head after the change (`None`: an empty file never written).
    pub version: Option<VersionId>,
    /// The file did not exist before.
    pub created: bool,
    /// A new version was made (false when the content was already this).
    pub changed: bool,
}

impl MemFs {
    /// Writes `content` as the whole content of `path` (store-relative, `/`
    /// separated) in `store`, creating the file and its parent directories
    /// as needed.
    pub fn put_file(
        &self,
        store: StoreId,
        path: &str,
        content: &[u8],
        expect: Expect,
    ) -> FsResult<Written> {
        let parts = split_path(path)?;
        let content = self.screen(store, None, path, content)?;
        self.db.write(|tx| {
            let att = self.attached_by_id(store)?;
            let (parent, made) = self.parents_in(tx, att.store.root, &parts)?;
            let name = parts[parts.len() - 1].as_bytes();
            let existing = tx.lookup_inode(parent, name)?;
            let (row, created) = match existing {
                Some(row) => {
                    if expect == Expect::Absent {
                        return Err(FsError::Exists);
                    }
                    (row, false)
                }
                None => {
                    if let Expect::Sha256(_) = expect {
                        return Err(FsError::NotFound);
                    }
                    let (ino, _, _) = self.make_node_in(
                        tx,
                        parent,
                        name,
                        NodeKind::File,
                        API_FILE_PERM,
                        0,
                        None,
                        Caller::default(),
                        "",
                    )?;
                    (tx.inode(ino)?.ok_or(FsError::NotFound)?, true)
                }
            };
            let mut entries: Vec<Entry> = made.clone();
            if created {
                entries.push((parent, name.to_vec()));
            }
            let made_paths = self.made_paths(tx, &made)?;
            self.write_content_in(
                tx, row, path, &content, expect, created, entries, made_paths,
            )
        })
    }

    /// Changes a file by inode: renames it to `new_path` and/or replaces its
    /// content, if its current content has the SHA-256 `expect` (when given).
    /// A rename and a rewrite in one call are one transaction with two audit
    /// entries (`rename`, then `write`), so undoing a session undoes each.
    pub fn update_file(
        &self,
        store: StoreId,
        ino: Ino,
        new_path: Option<&str>,
        content: Option<&[u8]>,
        expect: Option<[u8; 32]>,
    ) -> FsResult<Written> {
        let new_parts = new_path.map(split_path).transpose()?;
        let content = match content {
            Some(c) => {
                let path = match new_path {
                    Some(p) => p.to_string(),
                    None => self
                        .db
                        .read(|tx| tx.path_of(ino))?
                        .ok_or(FsError::NotFound)?,
                };
                Some(self.screen(store, Some(ino), &path, c)?)
            }
            None => None,
        };
        self.db.write(|tx| {
            let att = self.attached_by_id(store)?;
            let row = self.live_file(tx, store, ino)?;
            let old_path = tx.path_of(ino)?.ok_or(FsError::NotFound)?;
            if let Some(want) = expect {
                if self.current_sha(tx, &row)? != want {
                    return Err(FsError::Precondition(format!(
                        "the content of '{old_path}' changed: its SHA-256 is no longer the one given"
                    )));
                }
            }
            self.check_not_leased(tx, ino, &old_path)?;
            let mut path = old_path.clone();
            if let (Some(parts), Some(np)) = (&new_parts, new_path) {
                if *np != old_path {
                    self.move_in(tx, att, &row, &old_path, parts, np)?;
                    path = np.to_string();
                }
            }
            match &content {
                Some(c) => {
                    let row = tx.inode(ino)?.ok_or(FsError::NotFound)?;
                    let w = self.write_content_in(
                        tx,
                        row,
                        &path,
                        c,
                        Expect::Any,
                        false,
                        Vec::new(),
                        Vec::new(),
                    )?;
                    Ok(w)
                }
                None => Ok(Written {
                    ino,
                    version: row.head,
                    created: false,
                    changed: path != old_path,
                }),
            }
        })
    }

    /// Removes a file (every name it has), if its current content has the
    /// SHA-256 `expect` (when given). Its versions stay.
    pub fn remove_file(&self, store: StoreId, ino: Ino, expect: Option<[u8; 32]>) -> FsResult<()> {
        self.db.write(|tx| {
            let att = self.attached_by_id(store)?;
            let mut row = self.live_file(tx, store, ino)?;
            let path = tx.path_of(ino)?.ok_or(FsError::NotFound)?;
            if let Some(want) = expect {
                if self.current_sha(tx, &row)? != want {
                    return Err(FsError::Precondition(format!(
                        "the content of '{path}' changed: its SHA-256 is no longer the one given"
                    )));
                }
            }
            self.check_not_leased(tx, ino, &path)?;
            self.check_inode_change(tx, att, ino, Access::Remove)?;
            let now = now_ns();
            let names = tx.entries_of(ino)?;
            for (parent, name) in &names {
                tx.remove_dentry(*parent, name)?;
                let mut dir = tx.inode(*parent)?.ok_or(FsError::NotFound)?;
                super::touch_dir(tx, &mut dir, now)?;
            }
            row.nlink = 0;
            row.ctime_ns = now;
            tx.save_inode(&row)?;
            self.record(
                tx,
                now,
                Change {
                    store: Some(store),
                    op: "unlink",
                    path: Some(&path),
                    ino: Some(ino),
                    version: row.head,
                    entries: names,
                    detail: Some(serde_json::json!({ "nlink": 0 })),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
    }

    /// The SHA-256 of a file's current content (an empty file's when it has
    /// no version yet).
    pub fn current_sha(&self, tx: &Txn<'_>, row: &InodeRow) -> FsResult<[u8; 32]> {
        match row.head {
            Some(v) => tx
                .version_sha256(v)?
                .ok_or(FsError::Invalid("the file's current version was redacted")),
            None => Ok(digest::sha256(b"")),
        }
    }

    /// A regular file of `store` that still has a name.
    fn live_file(&self, tx: &Txn<'_>, store: StoreId, ino: Ino) -> FsResult<InodeRow> {
        let (row, att) = self.inode(tx, ino)?;
        if att.store.id != store || row.nlink == 0 {
            return Err(FsError::NotFound);
        }
        if row.kind != NodeKind::File {
            return Err(FsError::NotFound);
        }
        Ok(row)
    }

    /// Refuses to change a file that a mount holds open for writing.
    pub(super) fn check_not_leased(&self, tx: &Txn<'_>, ino: Ino, path: &str) -> FsResult<()> {
        if let Some(l) = tx.live_lease(ino)? {
            if l.holder != self.holder {
                return Err(FsError::Busy(format!(
                    "'{path}' is open for writing in a mount (agent {}, session {}); \
                     try again once it is closed",
                    l.agent, l.session
                )));
            }
        }
        Ok(())
    }

    /// Applies the store's content rules to the new content of `path`:
    /// the content to store (redacted, if the rules say so), or the refusal
    /// (audited as `rejected`, without the content).
    fn screen(
        &self,
        store: StoreId,
        ino: Option<Ino>,
        path: &str,
        content: &[u8],
    ) -> FsResult<Screened> {
        self.screen_as(store, ino, path, content, true)
    }

    /// [`screen`](Self::screen), recording a refusal in the audit log only
    /// when `record` (a dry run asks without leaving a trace).
    pub(super) fn screen_as(
        &self,
        store: StoreId,
        ino: Option<Ino>,
        path: &str,
        content: &[u8],
        record: bool,
    ) -> FsResult<Screened> {
        let policy = self.attached_by_id(store)?.policy();
        let max = policy.max_file_bytes(self.opts.max_file_bytes);
        if content.len() as u64 > max {
            return Err(FsError::TooBig);
        }
        if !guard::applies(&policy, path) || content.len() as u64 > guard::GUARD_MAX_BYTES {
            return Ok(Screened {
                data: content.to_vec(),
                detail: None,
            });
        }
        match guard::check(&policy, path, content) {
            Verdict::Store { detail } => Ok(Screened {
                data: content.to_vec(),
                detail,
            }),
            Verdict::Replace { data, detail } => Ok(Screened {
                data,
                detail: Some(detail),
            }),
            Verdict::Reject { error, detail } => {
                if record {
                    tracing::warn!(path, %detail, "change refused by the store's content rules");
                    self.record_rejection(store, ino, path, detail)?;
                }
                Err(error)
            }
        }
    }

    /// Creates the missing directories of `parts[..len-1]` under `root`.
    /// Returns the last one and the entries it made.
    pub(super) fn parents_in(
        &self,
        tx: &Txn<'_>,
        root: Ino,
        parts: &[&str],
    ) -> FsResult<(Ino, Vec<Entry>)> {
        let mut cur = root;
        let mut made = Vec::new();
        for part in &parts[..parts.len() - 1] {
            let name = part.as_bytes();
            cur = match tx.lookup_inode(cur, name)? {
                Some(r) if r.kind == NodeKind::Dir => r.ino,
                Some(_) => return Err(FsError::NotDir),
                None => {
                    let (ino, _, _) = self.make_node_in(
                        tx,
                        cur,
                        name,
                        NodeKind::Dir,
                        API_DIR_PERM,
                        0,
                        None,
                        Caller::default(),
                        "",
                    )?;
                    made.push((cur, name.to_vec()));
                    ino
                }
            };
        }
        Ok((cur, made))
    }

    pub(super) fn made_paths(&self, tx: &Txn<'_>, made: &[Entry]) -> FsResult<Vec<String>> {
        made.iter()
            .map(|(p, n)| self.child_path(tx, *p, n))
            .collect()
    }

    /// Moves `row` from `old_path` to `new_path` (`parts`), creating parents;
    /// the target must be free.
    pub(super) fn move_in(
        &self,
        tx: &Txn<'_>,
        att: &super::Attached,
        row: &InodeRow,
        old_path: &str,
        parts: &[&str],
        new_path: &str,
    ) -> FsResult<()> {
        self.check_inode_change(tx, att, row.ino, Access::Remove)?;
        let (parent, made) = self.parents_in(tx, att.store.root, parts)?;
        let name = parts[parts.len() - 1].as_bytes();
        if tx.lookup(parent, name)?.is_some() {
            return Err(FsError::Exists);
        }
        self.check_change(tx, att, new_path, Access::Create)?;
        let (old_parent, old_name) = tx.parent_entry(row.ino)?.ok_or(FsError::NotFound)?;
        let now = now_ns();
        tx.remove_dentry(old_parent, &old_name)?;
        tx.insert_dentry(parent, name, row.ino)?;
        for d in [old_parent, parent] {
            let mut dir = tx.inode(d)?.ok_or(FsError::NotFound)?;
            super::touch_dir(tx, &mut dir, now)?;
        }
        let mut moved = tx.inode(row.ino)?.ok_or(FsError::NotFound)?;
        moved.ctime_ns = now;
        tx.save_inode(&moved)?;
        let made_paths = self.made_paths(tx, &made)?;
        let mut entries = made;
        entries.push((old_parent, old_name));
        entries.push((parent, name.to_vec()));
        let detail =
            (!made_paths.is_empty()).then(|| serde_json::json!({ "created_dirs": made_paths }));
        self.record(
            tx,
            now,
            Change {
                store: Some(att.store.id),
                op: "rename",
                path: Some(old_path),
                path2: Some(new_path),
                ino: Some(row.ino),
                version: row.head,
                entries,
                detail,
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Makes `content` the new head of `row` (inside the caller's
    /// transaction), with its audit entry: `create` for a new file, `write`
    /// otherwise. Content equal to the head's makes no version for an
    /// existing file.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_content_in(
        &self,
        tx: &Txn<'_>,
        row: InodeRow,
        path: &str,
        content: &Screened,
        expect: Expect,
        created: bool,
        entries: Vec<Entry>,
        made_paths: Vec<String>,
    ) -> FsResult<Written> {
        self.write_content_as(
            tx,
            row,
            path,
            content,
            expect,
            created,
            (entries, made_paths),
            Access::Modify,
        )
    }

    /// [`write_content_in`](Self::write_content_in) judged by the path
    /// policies as `access` (an append-only file may take new content that
    /// extends its old: [`Access::Append`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_content_as(
        &self,
        tx: &Txn<'_>,
        mut row: InodeRow,
        path: &str,
        content: &Screened,
        expect: Expect,
        created: bool,
        (entries, made_paths): (Vec<Entry>, Vec<String>),
        access: Access,
    ) -> FsResult<Written> {
        let store = row.store.ok_or(FsError::NotFound)?;
        let att = self.attached_by_id(store)?;
        if row.kind != NodeKind::File {
            return Err(if row.kind == NodeKind::Dir {
                FsError::IsDir
            } else {
                FsError::Exists
            });
        }
        if !created {
            if let Expect::Sha256(want) = expect {
                if self.current_sha(tx, &row)? != want {
                    return Err(FsError::Precondition(format!(
                        "the content of '{path}' changed: its SHA-256 is no longer the one given"
                    )));
                }
            }
            self.check_not_leased(tx, row.ino, path)?;
            self.check_inode_change(tx, att, row.ino, access)?;
        }
        let mut h = ContentHasher::new();
        h.update(&content.data);
        let digests = h.finalize();
        if !created && self.current_sha(tx, &row).ok() == Some(digests.sha256) {
            return Ok(Written {
                ino: row.ino,
                version: row.head,
                created: false,
                changed: false,
            });
        }
        let mut tail = Vec::new();
        for c in chunk_bytes(&content.data) {
            tail.push(tx.put_chunk(store, c)?);
        }
        let now = now_ns();
        let op = if created { "create" } else { "write" };
        let (vid, size) = tx.insert_version(&NewVersion {
            ino: row.ino,
            store,
            base: None,
            base_len: 0,
            tail,
            base_full: None,
            hash: digests.blake3,
            sha256: Some(digests.sha256),
            op,
            path,
            who: &self.who,
            at_ns: now,
        })?;
        if let Some(max) = att.policy().quota.max_bytes {
            // Rolled back with the transaction: the old head stays.
            let (_, used) = tx.store_usage(store)?;
            if used - row.size.min(used) + size > max {
                return Err(FsError::Quota("store byte quota"));
            }
        }
        row.head = Some(vid);
        row.size = size;
        row.mtime_ns = now;
        row.ctime_ns = now;
        tx.save_inode(&row)?;
        let mut detail = serde_json::json!({
            "size": size,
            "hash": digests.blake3.to_hex().as_str(),
            "sha256": digest::hex(&digests.sha256),
        });
        if !made_paths.is_empty() {
            detail["created_dirs"] = made_paths.into();
        }
        if let Some(serde_json::Value::Object(extra)) = &content.detail {
            for (k, v) in extra {
                detail[k] = v.clone();
            }
        }
        self.record(
            tx,
            now,
            Change {
                store: Some(store),
                op,
                path: Some(path),
                ino: Some(row.ino),
                version: Some(vid),
                entries,
                detail: Some(detail),
                ..Default::default()
            },
        )?;
        Ok(Written {
            ino: row.ino,
            version: Some(vid),
            created,
            changed: true,
        })
    }

    /// Records that a store's content rules refused a change (without its
    /// content), in a transaction of its own: the refusal is kept even though
    /// the change is not.
    pub(super) fn record_rejection(
        &self,
        store: StoreId,
        ino: Option<Ino>,
        path: &str,
        detail: serde_json::Value,
    ) -> FsResult<()> {
        let now = now_ns();
        self.db.write(|tx| {
            self.record(
                tx,
                now,
                Change {
                    store: Some(store),
                    op: "rejected",
                    path: Some(path),
                    ino,
                    detail: Some(detail),
                    ..Default::default()
                },
            )
        })
    }
}

/// New content after the content rules: possibly redacted, with what the
/// rules found for the audit entry.
pub(super) struct Screened {
    pub(super) data: Vec<u8>,
    pub(super) detail: Option<serde_json::Value>,
}

/// Splits a store-relative path into checked components.
pub(super) fn split_path(path: &str) -> FsResult<Vec<&str>> {
    check_path_len(path)?;
    let parts: Vec<&str> = path.split('/').collect();
    if parts.is_empty() || path.is_empty() {
        return Err(FsError::Invalid("empty path"));
    }
    for p in &parts {
        check_name(p.as_bytes())?;
        check_new_name(p.as_bytes())?;
    }
    Ok(parts)
}

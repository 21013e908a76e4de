//! The interchange format: one store as a portable tar archive (`memfsctl export` /
//! `memfsctl import`), and a store's history as a git repository (`export --git`).
//!
//! The archive layout, version 1, is specified in docs/FORMAT.md ("Export
//! archive"). This module holds the record types every part shares; `archive`
//! reads and writes tar entries, `export` and `import` move a store in and out,
//! `validate` checks an archive's metadata before anything is written, `git`
//! replays the audit log into `git fast-import`, and `progress` prints a status
//! line on a terminal.
//!
//! Like `store/`, nothing here knows FUSE; unlike `fs/`, it reads and writes the
//! database through `Txn` directly, because an import builds a whole store in one
//! transaction rather than replaying POSIX operations.

pub mod archive;
pub mod export;
pub mod git;
pub mod import;
pub mod progress;
#[cfg(test)]
mod tests;
pub mod validate;

use crate::error::StoreError;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The `format` field of `memfs-export.json`.
pub const FORMAT_NAME: &str = "memfs-export";
/// The only archive format version this memfs writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Archive member names.
pub const MANIFEST: &str = "memfs-export.json";
pub const FILES: &str = "files.jsonl";
pub const UNLINKED: &str = "unlinked.jsonl";
pub const VERSIONS: &str = "versions.jsonl";
pub const AUDIT: &str = "audit.jsonl";
/// Prefix of head content entries (`head/<path>`).
pub const HEAD_DIR: &str = "head/";
/// Prefix of version content entries (`versions/<id>`).
pub const VERSIONS_DIR: &str = "versions/";

/// Why an export or import failed.
#[derive(Debug, Error)]
pub enum InterchangeError {
    /// The archive is malformed, unsafe, or does not fit this database; nothing
    /// was imported.
    #[error("archive refused: {0}")]
    Refused(String),
    /// The request itself cannot be done (a store exists, a directory is not empty).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, InterchangeError>;

/// Shorthand for a refusal with a message.
pub fn refuse<T>(msg: impl Into<String>) -> Result<T> {
    Err(InterchangeError::Refused(msg.into()))
}

/// `memfs-export.json`: what the archive holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub store: StoreInfo,
    /// RFC 3339, for people; `exported_at_ns` is exact.
    pub exported_at: String,
    pub exported_at_ns: i64,
    /// The memfs that wrote the archive (informational).
    #[serde(default)]
    pub memfs_version: String,
    /// Whether versions.jsonl, unlinked.jsonl, audit.jsonl and versions/ are present.
    pub history: bool,
    pub counts: Counts,
}

/// The exported store's identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreInfo {
    pub name: String,
    pub scope: String,
    pub owner: Option<String>,
    #[serde(default)]
    pub description: String,
    pub created_ns: i64,
    #[serde(default)]
    pub archived: bool,
}

/// How many records of each kind the archive holds (checked on import).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    /// Lines of files.jsonl (paths at head, the root included).
    pub paths: u64,
    /// Regular files at head, counted per path.
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Bytes of head content (per inode, not per hard link).
    pub bytes: u64,
    pub versions: u64,
    pub unlinked: u64,
    pub audit_entries: u64,
}

/// What an inode is, as the archive spells it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Chardev,
    Blockdev,
}

/// The version that is (or was, for an unlinked file) an inode's head, with its
/// attribution. In an archive without history this is all that is kept of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeadVersion {
    pub id: i64,
    pub op: String,
    pub path: String,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub at_ns: i64,
}

/// One line of files.jsonl (a path at head) or unlinked.jsonl (an inode no path
/// names any more; `path` is then absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Store-relative, `/`-separated; "" is the store root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub kind: Kind,
    /// The original inode number: paths with the same `ino` are hard links of one
    /// file; versions.jsonl and audit.jsonl refer to inodes by it.
    pub ino: i64,
    /// Permission bits in octal ("644"; setuid/setgid/sticky included).
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    /// blake3 (hex) of the head content; files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    pub mtime_ns: i64,
    pub atime_ns: i64,
    pub ctime_ns: i64,
    pub crtime_ns: i64,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A device's number.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u32,
    /// The head version; absent for a file never written (empty) and for non-files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<HeadVersion>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// One line of versions.jsonl: a committed version of a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub id: i64,
    pub ino: i64,
    pub size: u64,
    pub hash: String,
    pub op: String,
    /// The file's path when the version was written.
    pub path: String,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub at_ns: i64,
    /// RFC 3339 (informational).
    #[serde(default)]
    pub at: String,
    /// A write refused by fencing and kept aside; never a head.
    #[serde(default)]
    pub conflict: bool,
}

/// One line of audit.jsonl: an audit entry of the store, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ns: i64,
    #[serde(default)]
    pub at: String,
    pub op: String,
    pub path: Option<String>,
    pub path2: Option<String>,
    pub ino: Option<i64>,
    pub version: Option<i64>,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub detail: Option<serde_json::Value>,
    /// The entry's hash in the exporting database's chain (hex).
    pub hash: String,
}

/// blake3 of no bytes, the hash of an empty file.
pub fn empty_hash() -> String {
    blake3::hash(b"").to_hex().to_string()
}

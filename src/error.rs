//! Error types. `FsError::to_errno` is the ONE place that picks an errno.

use thiserror::Error;

/// Errors from the persistence layer.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt database: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Exists(String),
    /// The store's key was destroyed (`memfsctl store shred`).
    #[error("store '{0}' was crypto-shredded; its content is unrecoverable")]
    Shredded(String),
    /// Encrypted content, and no key (or the wrong one) to open it.
    #[error("{0}")]
    Locked(String),
}

impl StoreError {
    /// The database or a staging file ran out of space: the caller may retry once
    /// space is freed, nothing committed was lost.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sql(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Io(e) => e.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }
}

/// Errors of filesystem operations, each with one precise errno.
#[derive(Debug, Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("read-only: {0}")]
    ReadOnly(&'static str),
    #[error("permission denied")]
    Access,
    #[error("operation not permitted")]
    Perm,
    #[error("busy: {0}")]
    Busy(String),
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    #[error("name too long")]
    NameTooLong,
    #[error("file too large")]
    TooBig,
    #[error("store quota exceeded: {0}")]
    Quota(&'static str),
    #[error("cross-store link or rename")]
    CrossStore,
    #[error("operation not supported")]
    Unsupported,
    #[error("bad file handle")]
    BadHandle,
    /// The kernel addressed the request through a cached name that another mount
    /// has since removed or replaced: ESTALE makes Linux walk the path again with
    /// every cached name revalidated (see `fs::stale`). The inner error is the
    /// answer if the same thread asks again at once.
    #[error("stale view of the namespace (then: {0})")]
    Stale(Box<FsError>),
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
}

impl FsError {
    /// The errno the kernel (and so the agent's tool) sees for this error.
    pub fn to_errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::ReadOnly(_) => libc::EROFS,
            FsError::Access => libc::EACCES,
            FsError::Perm => libc::EPERM,
            FsError::Busy(_) => libc::EBUSY,
            FsError::Invalid(_) => libc::EINVAL,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::TooBig => libc::EFBIG,
            FsError::Quota(_) => libc::EDQUOT,
            FsError::CrossStore => libc::EXDEV,
            FsError::Unsupported => libc::EOPNOTSUPP,
            FsError::BadHandle => libc::EBADF,
            FsError::Stale(_) => libc::ESTALE,
            FsError::Store(StoreError::NotFound(_)) => libc::ENOENT,
            FsError::Store(StoreError::Exists(_)) => libc::EEXIST,
            FsError::Store(StoreError::Invalid(_)) => libc::EINVAL,
            FsError::Store(e) if e.is_disk_full() => libc::ENOSPC,
            FsError::Store(_) => libc::EIO,
        }
    }
}

impl FsError {
    /// The error to report to a caller that cannot retry: a stale view becomes
    /// what a local disk gives when the name is gone.
    pub fn settled(self) -> FsError {
        match self {
            FsError::Stale(then) => then.settled(),
            e => e,
        }
    }
}

impl From<rusqlite::Error> for FsError {
    fn from(e: rusqlite::Error) -> Self {
        FsError::Store(StoreError::Sql(e))
    }
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> Self {
        FsError::Store(StoreError::Io(e))
    }
}

pub type FsResult<T> = Result<T, FsError>;
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_eio_and_semantic_ones_are_precise() {
        assert_eq!(
            FsError::Store(StoreError::Corrupt("x".into())).to_errno(),
            libc::EIO
        );
        assert_eq!(FsError::TooBig.to_errno(), libc::EFBIG);
        assert_eq!(FsError::ReadOnly("root").to_errno(), libc::EROFS);
        assert_eq!(FsError::Busy("lease".into()).to_errno(), libc::EBUSY);
        assert_eq!(
            FsError::Store(StoreError::Exists("s".into())).to_errno(),
            libc::EEXIST
        );
    }
}

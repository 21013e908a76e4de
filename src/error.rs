//! Error types, and the ONE mapping of each to what a front end reports:
//! `FsError::to_errno` picks the errno a filesystem caller sees, and
//! `FsError::http` / `OpError::http` pick the HTTP status and the error type of
//! the API's error envelope. Both classify the same error kinds, so an
//! agent writing through a mount and a client calling the API learn the same
//! thing about the same refusal.

use thiserror::Error;

/// What went wrong in a database engine, in terms every engine shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A query that must return a row returned none.
    NoRows,
    /// The disk (or the server's) is full.
    DiskFull,
    /// A unique or foreign-key constraint refused the change.
    Constraint,
    /// A lock or statement timeout, a deadlock, a busy database: retry later.
    Busy,
    /// The connection to the server was lost (the change in flight did not
    /// commit); the engine reconnects on the next call.
    Unavailable,
    Other,
}

/// An engine's error, with its message.
#[derive(Clone, Debug)]
pub struct DbError {
    pub kind: DbErrorKind,
    pub msg: String,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// Errors from the persistence layer.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(DbError),
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
            StoreError::Db(e) => e.kind == DbErrorKind::DiskFull,
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
    /// A conditional change whose condition no longer holds (the file's
    /// content is not the one the caller last saw).
    #[error("precondition failed: {0}")]
    Precondition(String),
    /// A store's content rule refused the new content: `rule` is `validate`
    /// (the format check) or `pii` (blocked personal data or secrets).
    #[error("refused by the store's {rule} rule: {reason}")]
    ContentRule { rule: &'static str, reason: String },
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
            FsError::Precondition(_) => libc::ESTALE,
            FsError::ContentRule { rule: "pii", .. } => libc::EACCES,
            FsError::ContentRule { .. } => libc::EINVAL,
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

/// How an HTTP front end reports a failure: the status, the envelope's
/// `error.type` (values the Anthropic SDK knows) and a stable `error_code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpClass {
    pub status: u16,
    pub kind: &'static str,
    pub code: &'static str,
}

const fn class(status: u16, kind: &'static str, code: &'static str) -> HttpClass {
    HttpClass { status, kind, code }
}

impl FsError {
    /// The HTTP class of this error, for the API, the console and MCP over HTTP.
    /// A client's mistake is a 4xx; only storage failures are 5xx.
    pub fn http(&self) -> HttpClass {
        match self {
            FsError::NotFound => class(404, "not_found_error", "not_found"),
            FsError::Exists => class(409, "memory_path_conflict_error", "path_exists"),
            FsError::NotDir => class(409, "memory_path_conflict_error", "not_a_directory"),
            FsError::IsDir => class(409, "memory_path_conflict_error", "is_a_directory"),
            FsError::NotEmpty => class(409, "conflict_error", "directory_not_empty"),
            FsError::ReadOnly(_) => class(403, "permission_error", "read_only"),
            FsError::Access => class(403, "permission_error", "access_denied"),
            FsError::Perm => class(403, "permission_error", "append_only"),
            FsError::Busy(_) => class(409, "conflict_error", "file_busy"),
            FsError::Invalid(_) => class(400, "invalid_request_error", "invalid"),
            FsError::NameTooLong => class(400, "invalid_request_error", "path_too_long"),
            FsError::TooBig => class(413, "request_too_large", "file_too_large"),
            FsError::Quota(_) => class(413, "request_too_large", "quota_exceeded"),
            FsError::CrossStore => class(400, "invalid_request_error", "cross_store"),
            FsError::Unsupported => class(400, "invalid_request_error", "unsupported"),
            FsError::BadHandle => class(400, "invalid_request_error", "bad_handle"),
            FsError::Precondition(_) => class(
                409,
                "memory_precondition_failed_error",
                "precondition_failed",
            ),
            FsError::ContentRule { rule: "pii", .. } => {
                class(400, "invalid_request_error", "content_blocked_pii")
            }
            FsError::ContentRule { .. } => {
                class(400, "invalid_request_error", "content_invalid_format")
            }
            // Front ends without a kernel do not retry: what a local disk gives.
            FsError::Stale(then) => then.http(),
            FsError::Store(StoreError::NotFound(_)) => class(404, "not_found_error", "not_found"),
            FsError::Store(StoreError::Exists(_)) => class(409, "conflict_error", "exists"),
            FsError::Store(StoreError::Invalid(_)) => {
                class(400, "invalid_request_error", "invalid")
            }
            FsError::Store(StoreError::Shredded(_)) => class(410, "not_found_error", "shredded"),
            FsError::Store(e) if e.is_disk_full() => class(507, "api_error", "disk_full"),
            FsError::Store(_) => class(500, "api_error", "storage_error"),
        }
    }
}

/// Errors of the operations core: what memfsctl, the API, the console and the
/// MCP server ask for (stores, memories, history, rollback, keys...). Each
/// carries a message for a person; `http` classifies it.
#[derive(Debug, Error)]
pub enum OpError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// Store metadata breaks its limits (the SDK has an exception for this one).
    #[error("{0}")]
    InvalidMetadata(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PathConflict(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    TooLarge(String),
    /// A filesystem refusal, with what was being done.
    #[error("{context}: {source}")]
    Fs {
        context: String,
        #[source]
        source: FsError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpError {
    /// The HTTP class of this error (the one mapping; see [`FsError::http`]).
    pub fn http(&self) -> HttpClass {
        match self {
            OpError::NotFound(_) => class(404, "not_found_error", "not_found"),
            OpError::Invalid(_) => class(400, "invalid_request_error", "invalid_request"),
            OpError::InvalidMetadata(_) => class(400, "invalid_request_error", "invalid_metadata"),
            OpError::Unauthenticated(_) => class(401, "authentication_error", "invalid_api_key"),
            OpError::Forbidden(_) => class(403, "permission_error", "forbidden"),
            OpError::Conflict(_) => class(409, "conflict_error", "conflict"),
            OpError::PathConflict(_) => class(409, "memory_path_conflict_error", "path_exists"),
            OpError::Precondition(_) => class(
                409,
                "memory_precondition_failed_error",
                "precondition_failed",
            ),
            OpError::TooLarge(_) => class(413, "request_too_large", "too_large"),
            OpError::Fs { source, .. } => source.http(),
            OpError::Store(e) => FsError::http_of_store(e),
        }
    }

    /// Whether this is a failure of the service rather than of the request.
    pub fn is_internal(&self) -> bool {
        self.http().status >= 500
    }

    /// An `OpError` for a filesystem refusal while doing `context`.
    pub fn fs(context: impl Into<String>, source: FsError) -> OpError {
        OpError::Fs {
            context: context.into(),
            source: source.settled(),
        }
    }
}

impl FsError {
    fn http_of_store(e: &StoreError) -> HttpClass {
        match e {
            StoreError::NotFound(_) => class(404, "not_found_error", "not_found"),
            StoreError::Exists(_) => class(409, "conflict_error", "exists"),
            StoreError::Invalid(_) => class(400, "invalid_request_error", "invalid"),
            StoreError::Shredded(_) => class(410, "not_found_error", "shredded"),
            e if e.is_disk_full() => class(507, "api_error", "disk_full"),
            _ => class(500, "api_error", "storage_error"),
        }
    }
}

impl From<FsError> for OpError {
    fn from(e: FsError) -> Self {
        match e.settled() {
            FsError::Store(s) => OpError::Store(s),
            other => OpError::Fs {
                context: "refused".into(),
                source: other,
            },
        }
    }
}

pub type OpResult<T> = Result<T, OpError>;

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

    #[test]
    fn clients_mistakes_are_4xx_and_storage_failures_5xx() {
        assert_eq!(FsError::NotFound.http().status, 404);
        assert_eq!(FsError::Busy("x".into()).http().status, 409);
        assert_eq!(
            FsError::Precondition("x".into()).http().kind,
            "memory_precondition_failed_error"
        );
        assert_eq!(FsError::Exists.http().kind, "memory_path_conflict_error");
        assert_eq!(FsError::TooBig.http().status, 413);
        let rule = FsError::ContentRule {
            rule: "pii",
            reason: "email".into(),
        };
        assert_eq!((rule.to_errno(), rule.http().status), (libc::EACCES, 400));
        assert_eq!(
            FsError::Store(StoreError::Corrupt("x".into()))
                .http()
                .status,
            500
        );
        let op = OpError::fs("writing /a", FsError::ReadOnly("store attached read-only"));
        assert_eq!(op.http().status, 403);
        assert!(op.to_string().contains("writing /a"), "{op}");
        assert_eq!(OpError::Unauthenticated("x".into()).http().status, 401);
    }
}

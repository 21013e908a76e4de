//! `/v1/memfs/audit`, `/v1/memfs/stores/{id}/history`, `/diff` and `/content`:
//! the audit log with `memfsctl log`'s filters, a file's versions, the diff of
//! two versions, and a file's content at a version or a time, on the
//! operations core.

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Path, Query};
use super::{blocking, AppState};
use crate::ids::VersionId;
use crate::ops::history::Pick;
use crate::ops::log::LogQuery;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// A store by API id or slug.
    store: Option<String>,
    /// Entries at this store-relative path or below it (needs `store`).
    path: Option<String>,
    agent: Option<String>,
    session: Option<String>,
    user: Option<String>,
    /// create, write, rename, unlink, rollback, redact, ...
    op: Option<String>,
    /// RFC 3339 or an age such as `2h`.
    since: Option<String>,
    until: Option<String>,
    /// Entries per page (default 100, at most 1,000).
    limit: Option<u64>,
    page: Option<String>,
}

#[utoipa::path(get, path = "/v1/memfs/audit", tag = "memfs", params(AuditParams),
    responses((status = 200, description = "a page of audit entries, newest first", body = Object)))]
pub async fn log(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let query = LogQuery {
        store: q.store,
        path: q.path,
        agent: q.agent,
        session: q.session,
        user: q.user,
        op: q.op,
        since: q.since,
        until: q.until,
        limit: q.limit,
    };
    let ops = st.ops.clone();
    let page = blocking(move || ops.log_page(&p, &query, q.page.as_deref())).await?;
    Ok(Json(page).into_response())
}

/// A file by store-relative path (now, or last seen there in its history).
#[derive(Deserialize, utoipa::IntoParams)]
pub struct FileParams {
    path: String,
}

#[utoipa::path(get, path = "/v1/memfs/stores/{memory_store_id}/history", tag = "memfs",
    params(("memory_store_id" = String, Path), FileParams),
    responses((status = 200, description = "every version of the file, newest first", body = Object)))]
pub async fn history(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Query(q): Query<FileParams>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let h = blocking(move || ops.file_history(&p, &store, &q.path)).await?;
    Ok(Json(h).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DiffParams {
    path: String,
    /// The older version (memfs's version number, as in `history`).
    from: i64,
    /// The newer version (default: the head).
    to: Option<i64>,
}

#[utoipa::path(get, path = "/v1/memfs/stores/{memory_store_id}/diff", tag = "memfs",
    params(("memory_store_id" = String, Path), DiffParams),
    responses((status = 200, description = "the unified diff and its hunks", body = Object)))]
pub async fn diff(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Query(q): Query<DiffParams>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let d = blocking(move || ops.diff(&p, &store, &q.path, VersionId(q.from), q.to.map(VersionId)))
        .await?;
    Ok(Json(d).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ContentParams {
    path: String,
    /// A version number (default: the head).
    version: Option<i64>,
    /// Or the content as it was at a time: RFC 3339 or an age such as `2h`.
    at: Option<String>,
}

#[utoipa::path(get, path = "/v1/memfs/stores/{memory_store_id}/content", tag = "memfs",
    params(("memory_store_id" = String, Path), ContentParams),
    responses((status = 200, description = "the file's bytes, as an attachment")))]
pub async fn content(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Query(q): Query<ContentParams>,
) -> Result<Response, ApiError> {
    let pick = match (q.version, q.at) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("give version or at, not both")),
        (Some(v), None) => Pick::Version(VersionId(v)),
        (None, Some(t)) => Pick::At(t),
        (None, None) => Pick::Head,
    };
    let ops = st.ops.clone();
    let c = blocking(move || ops.file_content(&p, &store, &q.path, &pick)).await?;
    let name = c.file.path.rsplit('/').next().unwrap_or("file").replace(
        |ch: char| !ch.is_ascii_alphanumeric() && !"._-".contains(ch),
        "_",
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        c.data,
    )
        .into_response())
}

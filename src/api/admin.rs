//! Operators' endpoints under `/v1/memfs/`: rollback of a file, a session or
//! a store (a dry run first shows the plan and its conflicts), purge of a
//! file, forgetting a user, and write leases. All admin-only (the operations
//! core refuses other keys).

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Body, Path};
use super::{blocking, AppState};
use crate::ids::VersionId;
use crate::ops::rollback::Rollback;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct FileRollback {
    /// The file's store-relative path.
    path: String,
    /// The version to make its content again.
    to_version: i64,
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/v1/memfs/stores/{memory_store_id}/files/rollback", tag = "memfs",
    params(("memory_store_id" = String, Path)), request_body = FileRollback,
    responses((status = 200, description = "the rollback report", body = Object)))]
pub async fn rollback_file(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Body(b): Body<FileRollback>,
) -> Result<Response, ApiError> {
    let what = Rollback::File {
        store,
        path: b.path,
        to: VersionId(b.to_version),
    };
    report(st, p, what, b.dry_run).await
}

#[derive(Deserialize, ToSchema)]
pub struct SessionRollback {
    /// Only this store (API id or slug).
    #[serde(default)]
    store: Option<String>,
    /// Also undo files other sessions changed afterwards.
    #[serde(default)]
    force: bool,
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/v1/memfs/sessions/{session_id}/rollback", tag = "memfs",
    params(("session_id" = String, Path)), request_body = SessionRollback,
    responses((status = 200, description = "the plan (dry run) or what was done, with conflicts", body = Object)))]
pub async fn rollback_session(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(session): Path<String>,
    Body(b): Body<SessionRollback>,
) -> Result<Response, ApiError> {
    let what = Rollback::Session {
        session,
        store: b.store,
        force: b.force,
    };
    report(st, p, what, b.dry_run).await
}

#[derive(Deserialize, ToSchema)]
pub struct StoreRollback {
    /// RFC 3339 or an age such as `2h`.
    at: String,
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/v1/memfs/stores/{memory_store_id}/rollback", tag = "memfs",
    params(("memory_store_id" = String, Path)), request_body = StoreRollback,
    responses((status = 200, description = "the rollback report", body = Object)))]
pub async fn rollback_store(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Body(b): Body<StoreRollback>,
) -> Result<Response, ApiError> {
    report(st, p, Rollback::Store { store, at: b.at }, b.dry_run).await
}

async fn report(
    st: AppState,
    p: crate::ops::Principal,
    what: Rollback,
    dry_run: bool,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let r = blocking(move || ops.rollback(&p, &what, dry_run)).await?;
    Ok(Json(r).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct PurgeRequest {
    path: String,
    /// Only say what would go.
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/v1/memfs/stores/{memory_store_id}/purge", tag = "memfs",
    params(("memory_store_id" = String, Path)), request_body = PurgeRequest,
    responses((status = 200, description = "the plan (dry run) or what was removed", body = Object)))]
pub async fn purge(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Body(b): Body<PurgeRequest>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    if b.dry_run {
        let plan = blocking(move || ops.purge_plan(&p, &store, &b.path)).await?;
        return Ok(Json(plan).into_response());
    }
    let done = blocking(move || ops.purge(&p, &store, &b.path)).await?;
    Ok(Json(done).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct ForgetRequest {
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/v1/memfs/users/{user}/forget", tag = "memfs",
    params(("user" = String, Path)), request_body = ForgetRequest,
    responses((status = 200, description = "the stores that would go (dry run) or what was forgotten", body = Object)))]
pub async fn forget(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(user): Path<String>,
    Body(b): Body<ForgetRequest>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    if b.dry_run {
        let stores = blocking(move || ops.forget_user_plan(&p, &user)).await?;
        return Ok(Json(serde_json::json!({ "dry_run": true, "stores": stores })).into_response());
    }
    let done = blocking(move || ops.forget_user(&p, &user)).await?;
    Ok(Json(done).into_response())
}

#[utoipa::path(get, path = "/v1/memfs/leases", tag = "memfs",
    responses((status = 200, description = "live write leases in the stores the key may see", body = Object)))]
pub async fn leases(State(st): State<AppState>, Auth(p): Auth) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let l = blocking(move || ops.list_leases(&p)).await?;
    Ok(Json(serde_json::json!({ "data": l })).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct BreakLease {
    path: String,
}

#[utoipa::path(post, path = "/v1/memfs/stores/{memory_store_id}/leases/break", tag = "memfs",
    params(("memory_store_id" = String, Path)), request_body = BreakLease,
    responses((status = 200, description = "whose lease it was (its holder is fenced off)", body = Object)))]
pub async fn break_lease(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Body(b): Body<BreakLease>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let r = blocking(move || ops.break_lease(&p, &store, &b.path)).await?;
    Ok(Json(r).into_response())
}

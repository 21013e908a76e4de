//! Drafts under `/v1/memfs/`: list and make drafts of a store, review one
//! (its changes, the store's changes since its base, the merge plan and its
//! conflicts), merge it (all or chosen paths; `dry_run` first), discard it.
//! A draft is named `STORE@DRAFT` or by its own `memstore_...` id, wherever
//! a store id goes (the memory-store API reads and writes a draft the same
//! way).

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Body, Path, Query};
use super::{blocking, AppState};
use crate::ops::drafts::{MergeOptions, NewDraftRequest};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_all))
        .routes(routes!(list, create))
        .routes(routes!(show, discard))
        .routes(routes!(diff))
        .routes(routes!(merge))
}

#[utoipa::path(get, path = "/v1/memfs/drafts", tag = "drafts",
    responses((status = 200, description = "every draft of the stores the key may see", body = Object)))]
pub async fn list_all(State(st): State<AppState>, Auth(p): Auth) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let v = blocking(move || ops.list_drafts(&p, None)).await?;
    Ok(Json(serde_json::json!({ "data": v })).into_response())
}

#[utoipa::path(get, path = "/v1/memfs/stores/{memory_store_id}/drafts", tag = "drafts",
    params(("memory_store_id" = String, Path)),
    responses((status = 200, description = "the store's drafts", body = Object)))]
pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let v = blocking(move || ops.list_drafts(&p, Some(&store))).await?;
    Ok(Json(serde_json::json!({ "data": v })).into_response())
}

#[derive(Deserialize, ToSchema, Default)]
pub struct CreateDraft {
    /// Its name (`STORE@NAME`); `d1`, `d2`... when left out.
    #[serde(default)]
    name: Option<String>,
    /// The store as it was then (RFC 3339 or an age such as `2h`); now when left out.
    #[serde(default)]
    at: Option<String>,
}

#[utoipa::path(post, path = "/v1/memfs/stores/{memory_store_id}/drafts", tag = "drafts",
    params(("memory_store_id" = String, Path)), request_body = CreateDraft,
    responses((status = 200, description = "the new draft", body = Object)))]
pub async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Body(b): Body<CreateDraft>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let req = NewDraftRequest {
        name: b.name,
        at: b.at,
    };
    let v = blocking(move || ops.create_draft(&p, &store, &req)).await?;
    Ok(Json(v).into_response())
}

#[utoipa::path(get, path = "/v1/memfs/drafts/{draft_id}", tag = "drafts",
    params(("draft_id" = String, Path, description = "STORE@DRAFT or the draft's memstore_ id")),
    responses((status = 200, description = "the draft", body = Object)))]
pub async fn show(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let v = blocking(move || ops.show_draft(&p, &id)).await?;
    Ok(Json(v).into_response())
}

#[utoipa::path(delete, path = "/v1/memfs/drafts/{draft_id}", tag = "drafts",
    params(("draft_id" = String, Path)),
    responses((status = 200, description = "the discarded draft", body = Object)))]
pub async fn discard(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let v = blocking(move || ops.discard_draft(&p, &id)).await?;
    Ok(Json(serde_json::json!({ "discarded": true, "draft": v })).into_response())
}

#[derive(Deserialize, IntoParams, Default)]
pub struct DiffQuery {
    /// Include each changed file's diff.
    #[serde(default)]
    patch: bool,
}

#[utoipa::path(get, path = "/v1/memfs/drafts/{draft_id}/diff", tag = "drafts",
    params(("draft_id" = String, Path), DiffQuery),
    responses((status = 200, description = "what the draft changed, what the store changed since its base, the merge plan and its conflicts", body = Object)))]
pub async fn diff(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let d = blocking(move || ops.draft_diff(&p, &id, q.patch)).await?;
    Ok(Json(d).into_response())
}

#[derive(Deserialize, ToSchema, Default)]
pub struct MergeRequest {
    /// Say what would be merged; change nothing.
    #[serde(default)]
    dry_run: bool,
    /// Merge only these store-relative paths (and what is below them).
    #[serde(default)]
    paths: Vec<String>,
    /// Merge what merges cleanly and leave the conflicts; without it a merge
    /// with conflicts changes nothing (409).
    #[serde(default)]
    skip_conflicts: bool,
}

#[utoipa::path(post, path = "/v1/memfs/drafts/{draft_id}/merge", tag = "drafts",
    params(("draft_id" = String, Path)), request_body = MergeRequest,
    responses((status = 200, description = "what was merged (or would be), the merge's session and the conflicts left", body = Object),
        (status = 400, description = "the store's rules refuse the merge; every reason is in the message and in error.details.refused"),
        (status = 404, description = "no such draft"),
        (status = 409, description = "the draft and the store changed the same lines (or the same node two ways): nothing was merged; error.details.conflicts lists them")))]
pub async fn merge(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<MergeRequest>,
) -> Result<Response, ApiError> {
    let ops = st.ops.clone();
    let opts = MergeOptions {
        dry_run: b.dry_run,
        paths: b
            .paths
            .iter()
            .map(|s| s.trim_matches('/').to_string())
            .collect(),
        skip_conflicts: b.skip_conflicts,
    };
    let r = blocking(move || ops.merge_draft(&p, &id, &opts)).await?;
    if !r.refused.is_empty() {
        let why: Vec<String> = r
            .refused
            .iter()
            .map(|x| format!("{}: {}", x.path, x.reason))
            .collect();
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            "merge_refused",
            format!(
                "the rules of store '{}' refuse this merge, so nothing was merged: {}",
                r.store,
                why.join("; ")
            ),
        )
        .detail("refused", serde_json::json!(r.refused)));
    }
    if r.blocked && !r.dry_run {
        let why: Vec<String> = r
            .conflicts
            .iter()
            .map(|c| format!("{}: {}", c.path, c.reason))
            .collect();
        return Err(ApiError::new(
            409,
            "conflict_error",
            "merge_conflict",
            format!(
                "{} conflict(s) between draft '{}' and store '{}', so nothing was merged \
                 (resolve them in the draft, or merge the rest with skip_conflicts): {}",
                r.conflicts.len(),
                r.draft,
                r.store,
                why.join("; ")
            ),
        )
        .detail("conflicts", serde_json::json!(r.conflicts))
        .detail("report", serde_json::json!(r)));
    }
    Ok(Json(r).into_response())
}

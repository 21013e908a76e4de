//! `/v1/memory_stores/{id}/memory_versions`: list, retrieve and redact
//! memory versions on the operations core.

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Path, Query};
use super::memories::{full_view, ViewParam};
use super::{blocking, time, time_param, AppState};
use crate::digest::hex;
use crate::ops::versions::{MemoryVersion, VersionQuery};
use crate::ops::Actor;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who made a change: `session_actor`, `api_actor` or `user_actor`.
#[derive(Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct ActorOut(Actor);

/// One version of a memory.
#[derive(Serialize, ToSchema)]
pub struct VersionOut {
    id: String,
    #[serde(rename = "type")]
    #[schema(example = "memory_version")]
    kind: &'static str,
    memory_id: String,
    memory_store_id: String,
    /// `created`, `modified` or `deleted`.
    operation: &'static str,
    created_at: String,
    path: Option<String>,
    content: Option<String>,
    content_sha256: Option<String>,
    content_size_bytes: Option<u64>,
    created_by: Option<ActorOut>,
    redacted_at: Option<String>,
    redacted_by: Option<ActorOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memfs: Option<super::memories::MemoryExtra>,
}

impl From<MemoryVersion> for VersionOut {
    fn from(v: MemoryVersion) -> Self {
        let id = v.id();
        let operation = v.operation();
        let deleted = operation == "deleted";
        let e = v.entry;
        VersionOut {
            id,
            kind: "memory_version",
            memory_id: crate::ops::memories::memory_id(e.ino),
            memory_store_id: v.store_api_id,
            operation,
            created_at: time(e.at_ns),
            path: e.path.map(|p| format!("/{p}")),
            content: v.content,
            content_sha256: if deleted {
                None
            } else {
                e.sha256.map(|s| hex(&s))
            },
            content_size_bytes: if deleted { None } else { e.size },
            created_by: Some(ActorOut(v.created_by)),
            redacted_at: e.redacted_ns.map(time),
            redacted_by: v.redacted_by.map(ActorOut),
            memfs: v.unavailable.map(super::memories::MemoryExtra::from),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VersionPage {
    data: Vec<VersionOut>,
    next_page: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    api_key_id: Option<String>,
    #[serde(rename = "created_at[gte]")]
    #[param(rename = "created_at[gte]")]
    created_gte: Option<String>,
    #[serde(rename = "created_at[lte]")]
    #[param(rename = "created_at[lte]")]
    created_lte: Option<String>,
    limit: Option<i64>,
    memory_id: Option<String>,
    operation: Option<String>,
    page: Option<String>,
    service_account_id: Option<String>,
    session_id: Option<String>,
    view: Option<String>,
}

#[utoipa::path(get, path = "/v1/memory_stores/{memory_store_id}/memory_versions",
    tag = "memory_versions", params(("memory_store_id" = String, Path), ListParams),
    responses((status = 200, body = VersionPage)))]
pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<VersionPage>, ApiError> {
    let query = VersionQuery {
        memory_id: q.memory_id,
        operation: q.operation,
        session_id: q.session_id,
        api_key_id: q.api_key_id,
        service_account_id: q.service_account_id,
        since_ns: time_param("created_at[gte]", q.created_gte.as_deref())?,
        until_ns: time_param("created_at[lte]", q.created_lte.as_deref())?,
        limit: q.limit,
        page: q.page,
        full: full_view(q.view.as_deref(), false)?,
    };
    let ops = st.ops.clone();
    let page = blocking(move || ops.list_versions(&p, &store, &query)).await?;
    Ok(Json(VersionPage {
        data: page.data.into_iter().map(Into::into).collect(),
        next_page: page.next_page,
    }))
}

#[utoipa::path(get, path = "/v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}",
    tag = "memory_versions",
    params(("memory_store_id" = String, Path), ("memory_version_id" = String, Path), ViewParam),
    responses((status = 200, body = VersionOut)))]
pub async fn retrieve(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((store, id)): Path<(String, String)>,
    Query(v): Query<ViewParam>,
) -> Result<Json<VersionOut>, ApiError> {
    let full = full_view(v.view.as_deref(), true)?;
    let ops = st.ops.clone();
    let v = blocking(move || ops.get_version(&p, &store, &id, full)).await?;
    Ok(Json(v.into()))
}

#[utoipa::path(post,
    path = "/v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}/redact",
    tag = "memory_versions",
    params(("memory_store_id" = String, Path), ("memory_version_id" = String, Path)),
    responses((status = 200, body = VersionOut)))]
pub async fn redact(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((store, id)): Path<(String, String)>,
) -> Result<Json<VersionOut>, ApiError> {
    let ops = st.ops.clone();
    let v = blocking(move || ops.redact_version(&p, &store, &id)).await?;
    Ok(Json(v.into()))
}

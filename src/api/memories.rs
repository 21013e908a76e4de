//! `/v1/memory_stores/{id}/memories`: the memory-store API's memory endpoints
//! (create, retrieve, update, list, delete) on the operations core. Every
//! write is one change through the filesystem core, committed before the
//! answer.

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Body, Path, Query};
use super::{blocking, time, AppState};
use crate::digest::hex;
use crate::ops::memories::{self, Item, Memory, MemoryQuery, MemoryUpdate, Unavailable};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A memory: one file of the store.
#[derive(Serialize, ToSchema)]
pub struct MemoryOut {
    /// `mem_...`, kept across renames.
    id: String,
    #[serde(rename = "type")]
    #[schema(example = "memory")]
    kind: &'static str,
    memory_store_id: String,
    /// The version holding the current content (`null` for an empty file
    /// created through a mount and never written).
    memory_version_id: Option<String>,
    path: String,
    content_sha256: String,
    content_size_bytes: u64,
    created_at: String,
    updated_at: String,
    /// `null` under `view=basic`, and when the content cannot be shown as
    /// text (see `memfs.content_unavailable`).
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memfs: Option<MemoryExtra>,
}

/// Why memfs shows no content for a memory it was asked to show.
#[derive(Serialize, ToSchema)]
pub struct MemoryExtra {
    /// `binary` (not UTF-8 text) or `too_large` (over the server's
    /// `max_content_bytes`).
    content_unavailable: &'static str,
}

impl From<Unavailable> for MemoryExtra {
    fn from(u: Unavailable) -> Self {
        MemoryExtra {
            content_unavailable: match u {
                Unavailable::Binary => "binary",
                Unavailable::TooLarge => "too_large",
            },
        }
    }
}

impl From<Memory> for MemoryOut {
    fn from(m: Memory) -> Self {
        MemoryOut {
            id: memories::memory_id(m.ino),
            kind: "memory",
            memory_store_id: m.store_api_id,
            memory_version_id: m.version.map(|v| format!("memver_{}", v.0)),
            path: m.path,
            content_sha256: hex(&m.sha256),
            content_size_bytes: m.size,
            created_at: time(m.created_ns),
            updated_at: time(m.updated_ns),
            content: m.content,
            memfs: m.unavailable.map(MemoryExtra::from),
        }
    }
}

/// A list item: a memory, or a prefix for memories below `depth`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ListItem {
    Memory(MemoryOut),
    Prefix(MemoryPrefix),
}

#[derive(Serialize, ToSchema)]
pub struct MemoryPrefix {
    #[serde(rename = "type")]
    #[schema(example = "memory_prefix")]
    kind: &'static str,
    /// Ends in `/`; pass it back as `path_prefix` to list below it.
    path: String,
}

#[derive(Serialize, ToSchema)]
pub struct MemoryPage {
    data: Vec<ListItem>,
    next_page: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemoryDeleted {
    id: String,
    #[serde(rename = "type")]
    #[schema(example = "memory_deleted")]
    kind: &'static str,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateMemory {
    path: String,
    /// Required; `null` is taken as empty.
    content: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateMemory {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    precondition: Option<Precondition>,
}

#[derive(Deserialize, ToSchema)]
pub struct Precondition {
    /// Only `content_sha256`.
    #[serde(rename = "type")]
    kind: String,
    content_sha256: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ViewParam {
    /// `basic` or `full`.
    pub view: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    depth: Option<i64>,
    limit: Option<i64>,
    page: Option<String>,
    path_prefix: Option<String>,
    view: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DeleteParams {
    expected_content_sha256: Option<String>,
}

/// Whether `view` asks for content; `default` when absent.
pub fn full_view(view: Option<&str>, default: bool) -> Result<bool, ApiError> {
    match view {
        None => Ok(default),
        Some("full") => Ok(true),
        Some("basic") => Ok(false),
        Some(v) => Err(ApiError::invalid(format!(
            "view must be basic or full, not '{v}'"
        ))),
    }
}

#[utoipa::path(post, path = "/v1/memory_stores/{memory_store_id}/memories", tag = "memories",
    params(("memory_store_id" = String, Path), ViewParam), request_body = CreateMemory,
    responses((status = 200, body = MemoryOut)))]
pub async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Query(v): Query<ViewParam>,
    Body(b): Body<serde_json::Value>,
) -> Result<Json<MemoryOut>, ApiError> {
    let full = full_view(v.view.as_deref(), false)?;
    if !b.is_object() {
        return Err(ApiError::invalid(
            "invalid request body: expected a JSON object with path and content",
        ));
    }
    if b.get("content").is_none() {
        return Err(ApiError::invalid("content: this field is required"));
    }
    let b: CreateMemory = serde_json::from_value(b)
        .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))?;
    let ops = st.ops.clone();
    let content = b.content.unwrap_or_default();
    let m = blocking(move || ops.create_memory(&p, &store, &b.path, &content, full)).await?;
    Ok(Json(m.into()))
}

#[utoipa::path(get, path = "/v1/memory_stores/{memory_store_id}/memories/{memory_id}",
    tag = "memories", params(("memory_store_id" = String, Path), ("memory_id" = String, Path), ViewParam),
    responses((status = 200, body = MemoryOut)))]
pub async fn retrieve(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((store, id)): Path<(String, String)>,
    Query(v): Query<ViewParam>,
) -> Result<Json<MemoryOut>, ApiError> {
    let full = full_view(v.view.as_deref(), true)?;
    let ops = st.ops.clone();
    let m = blocking(move || ops.get_memory(&p, &store, &id, full)).await?;
    Ok(Json(m.into()))
}

#[utoipa::path(post, path = "/v1/memory_stores/{memory_store_id}/memories/{memory_id}",
    tag = "memories", params(("memory_store_id" = String, Path), ("memory_id" = String, Path), ViewParam),
    request_body = UpdateMemory, responses((status = 200, body = MemoryOut)))]
pub async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((store, id)): Path<(String, String)>,
    Query(v): Query<ViewParam>,
    Body(b): Body<UpdateMemory>,
) -> Result<Json<MemoryOut>, ApiError> {
    let full = full_view(v.view.as_deref(), false)?;
    let expect = match b.precondition {
        None => None,
        Some(pc) if pc.kind == "content_sha256" => Some(pc.content_sha256),
        Some(pc) => {
            return Err(ApiError::invalid(format!(
                "precondition.type must be content_sha256, not '{}'",
                pc.kind
            )))
        }
    };
    let u = MemoryUpdate {
        path: b.path,
        content: b.content,
        expect_sha256: expect,
    };
    let ops = st.ops.clone();
    let m = blocking(move || ops.update_memory(&p, &store, &id, &u, full)).await?;
    Ok(Json(m.into()))
}

#[utoipa::path(get, path = "/v1/memory_stores/{memory_store_id}/memories", tag = "memories",
    params(("memory_store_id" = String, Path), ListParams), responses((status = 200, body = MemoryPage)))]
pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<MemoryPage>, ApiError> {
    let query = MemoryQuery {
        path_prefix: q.path_prefix,
        depth: q.depth,
        limit: q.limit,
        page: q.page,
        full: full_view(q.view.as_deref(), false)?,
    };
    let ops = st.ops.clone();
    let page = blocking(move || ops.list_memories(&p, &store, &query)).await?;
    Ok(Json(MemoryPage {
        data: page
            .data
            .into_iter()
            .map(|i| match i {
                Item::Memory(m) => ListItem::Memory(m.into()),
                Item::Prefix(path) => ListItem::Prefix(MemoryPrefix {
                    kind: "memory_prefix",
                    path,
                }),
            })
            .collect(),
        next_page: page.next_page,
    }))
}

#[utoipa::path(delete, path = "/v1/memory_stores/{memory_store_id}/memories/{memory_id}",
    tag = "memories", params(("memory_store_id" = String, Path), ("memory_id" = String, Path), DeleteParams),
    responses((status = 200, body = MemoryDeleted)))]
pub async fn delete(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((store, id)): Path<(String, String)>,
    Query(q): Query<DeleteParams>,
) -> Result<Json<MemoryDeleted>, ApiError> {
    let ops = st.ops.clone();
    let mid = id.clone();
    blocking(move || ops.delete_memory(&p, &store, &mid, q.expected_content_sha256.as_deref()))
        .await?;
    Ok(Json(MemoryDeleted {
        id,
        kind: "memory_deleted",
    }))
}

//! `/v1/memory_stores`: the memory-store API's store endpoints (create,
//! retrieve, update, list, delete, archive) on the operations core.

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Body, Path, Query};
use super::{blocking, time, time_param, AppState};
use crate::ops::stores::{NewStore, StorePatch, StoreQuery};
use crate::store::StoreRow;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A memory store.
#[derive(Serialize, ToSchema)]
pub struct MemoryStore {
    /// `memstore_...`
    id: String,
    #[serde(rename = "type")]
    #[schema(example = "memory_store")]
    kind: &'static str,
    name: String,
    description: String,
    metadata: BTreeMap<String, String>,
    created_at: String,
    updated_at: String,
    archived_at: Option<String>,
    /// memfs's own fields.
    memfs: StoreExtra,
}

/// What memfs adds to a store.
#[derive(Serialize, ToSchema)]
pub struct StoreExtra {
    /// The directory name in a mount (`/mnt/memory/<slug>`), and the name
    /// `memfsctl` and `memfs mount --store` use.
    slug: String,
    /// `org` or `user`.
    scope: &'static str,
    owner: Option<String>,
    encrypted: bool,
}

impl From<StoreRow> for MemoryStore {
    fn from(r: StoreRow) -> Self {
        MemoryStore {
            id: r.api_id,
            kind: "memory_store",
            name: r.title.unwrap_or_else(|| r.name.clone()),
            description: r.description,
            metadata: r.metadata,
            created_at: time(r.created_ns),
            updated_at: time(r.updated_ns.max(r.created_ns)),
            archived_at: r.archived_ns.map(time),
            memfs: StoreExtra {
                slug: r.name,
                scope: r.scope.as_str(),
                owner: r.owner,
                encrypted: r.encrypted,
            },
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateStore {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateStore {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// A string sets a key, `null` removes it; keys left out stay.
    #[serde(default)]
    metadata: Option<BTreeMap<String, Option<String>>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListStores {
    #[serde(rename = "created_at[gte]")]
    #[param(rename = "created_at[gte]")]
    created_gte: Option<String>,
    #[serde(rename = "created_at[lte]")]
    #[param(rename = "created_at[lte]")]
    created_lte: Option<String>,
    include_archived: Option<bool>,
    limit: Option<i64>,
    page: Option<String>,
}

/// A page of stores.
#[derive(Serialize, ToSchema)]
pub struct StorePage {
    data: Vec<MemoryStore>,
    next_page: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StoreDeleted {
    id: String,
    #[serde(rename = "type")]
    #[schema(example = "memory_store_deleted")]
    kind: &'static str,
}

#[utoipa::path(post, path = "/v1/memory_stores", tag = "memory_stores",
    request_body = CreateStore, responses((status = 200, body = MemoryStore)))]
pub async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    Body(b): Body<CreateStore>,
) -> Result<Json<MemoryStore>, ApiError> {
    let ops = st.ops.clone();
    let ns = NewStore {
        title: Some(b.name),
        description: b.description.unwrap_or_default(),
        metadata: b.metadata.unwrap_or_default(),
        ..Default::default()
    };
    let row = blocking(move || ops.create_store(&p, &ns)).await?;
    Ok(Json(row.into()))
}

#[utoipa::path(get, path = "/v1/memory_stores/{memory_store_id}", tag = "memory_stores",
    params(("memory_store_id" = String, Path)), responses((status = 200, body = MemoryStore)))]
pub async fn retrieve(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<MemoryStore>, ApiError> {
    let ops = st.ops.clone();
    let (row, _) = blocking(move || ops.store(&p, &id)).await?;
    Ok(Json(row.into()))
}

#[utoipa::path(post, path = "/v1/memory_stores/{memory_store_id}", tag = "memory_stores",
    params(("memory_store_id" = String, Path)), request_body = UpdateStore,
    responses((status = 200, body = MemoryStore)))]
pub async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<UpdateStore>,
) -> Result<Json<MemoryStore>, ApiError> {
    let ops = st.ops.clone();
    let patch = StorePatch {
        title: b.name,
        description: b.description,
        metadata: b.metadata,
    };
    let row = blocking(move || ops.update_store(&p, &id, &patch)).await?;
    Ok(Json(row.into()))
}

#[utoipa::path(get, path = "/v1/memory_stores", tag = "memory_stores", params(ListStores),
    responses((status = 200, body = StorePage)))]
pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<ListStores>,
) -> Result<Json<StorePage>, ApiError> {
    let ops = st.ops.clone();
    let query = StoreQuery {
        include_archived: q.include_archived.unwrap_or(false),
        created_gte_ns: time_param("created_at[gte]", q.created_gte.as_deref())?,
        created_lte_ns: time_param("created_at[lte]", q.created_lte.as_deref())?,
        limit: q.limit,
        page: q.page,
    };
    let page = blocking(move || ops.list_stores(&p, &query)).await?;
    Ok(Json(StorePage {
        data: page.data.into_iter().map(Into::into).collect(),
        next_page: page.next_page,
    }))
}

#[utoipa::path(delete, path = "/v1/memory_stores/{memory_store_id}", tag = "memory_stores",
    params(("memory_store_id" = String, Path)), responses((status = 200, body = StoreDeleted)))]
pub async fn delete(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<StoreDeleted>, ApiError> {
    let ops = st.ops.clone();
    let row = blocking(move || ops.delete_store(&p, &id)).await?;
    Ok(Json(StoreDeleted {
        id: row.api_id,
        kind: "memory_store_deleted",
    }))
}

#[utoipa::path(post, path = "/v1/memory_stores/{memory_store_id}/archive", tag = "memory_stores",
    params(("memory_store_id" = String, Path)), responses((status = 200, body = MemoryStore)))]
pub async fn archive(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<MemoryStore>, ApiError> {
    let ops = st.ops.clone();
    let row = blocking(move || ops.archive_store(&p, &id)).await?;
    Ok(Json(row.into()))
}

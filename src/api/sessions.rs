//! `GET /v1/sessions/{id}`: the part of Claude Managed Agents' session object
//! that the SDK's sandbox memory sync (`SessionMemoryStores`) reads: its
//! `resources`, one `memory_store` entry per store the key attaches, with the
//! `mount_path` where the sandbox puts it (`[server] session_mount_root` and
//! the store's slug) and its `access`. memfs keeps no sessions: any id is
//! answered with the key's stores, so a platform gives each sandbox a key
//! limited to the stores it should see (`memfsctl apikey create --store`).

use super::auth::Auth;
use super::error::ApiError;
use super::extract::Path;
use super::{blocking, time, AppState, ServeOptions};
use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A memory store attached to the session.
#[derive(Serialize, ToSchema)]
pub struct SessionResource {
    #[serde(rename = "type")]
    #[schema(example = "memory_store")]
    kind: &'static str,
    id: String,
    memory_store_id: String,
    /// The store's display name (its slug when it has none).
    name: String,
    description: String,
    /// Where the sandbox mounts the store: the session mount root, then the slug.
    mount_path: String,
    /// `read_write` or `read_only`.
    access: &'static str,
    instructions: Option<String>,
}

/// A session, as far as memory goes.
#[derive(Serialize, ToSchema)]
pub struct SessionOut {
    id: String,
    #[serde(rename = "type")]
    #[schema(example = "session")]
    kind: &'static str,
    status: &'static str,
    created_at: String,
    updated_at: String,
    #[schema(value_type = Object)]
    metadata: serde_json::Map<String, serde_json::Value>,
    resources: Vec<SessionResource>,
    vault_ids: Vec<String>,
}

#[utoipa::path(get, path = "/v1/sessions/{session_id}", tag = "memfs",
    params(("session_id" = String, Path)),
    responses((status = 200, body = SessionOut)))]
pub async fn retrieve(
    State(st): State<AppState>,
    Extension(opts): Extension<Arc<ServeOptions>>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SessionOut>, ApiError> {
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(ApiError::invalid("invalid session id"));
    }
    let ops = st.ops.clone();
    let stores = blocking(move || ops.session_stores(&p)).await?;
    let root = opts.session_mount_root.trim_end_matches('/').to_string();
    let now = time(crate::ids::now_ns());
    let resources = stores
        .into_iter()
        .map(|s| SessionResource {
            kind: "memory_store",
            id: format!("sesrsc_{}", s.store.api_id.trim_start_matches("memstore_")),
            name: s
                .store
                .title
                .clone()
                .unwrap_or_else(|| s.store.name.clone()),
            description: s.store.description.clone(),
            mount_path: format!("{root}/{}", s.store.name),
            access: if s.read_only {
                "read_only"
            } else {
                "read_write"
            },
            instructions: None,
            memory_store_id: s.store.api_id,
        })
        .collect();
    Ok(Json(SessionOut {
        id,
        kind: "session",
        status: "idle",
        created_at: now.clone(),
        updated_at: now,
        metadata: Default::default(),
        resources,
        vault_ids: Vec::new(),
    }))
}

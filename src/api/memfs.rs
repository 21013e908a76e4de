//! memfs's own endpoints under `/v1/memfs/`, for what the memory-store API
//! lacks: who a key is, and a store's settings. (The audit log, history,
//! diffs, rollback, export/import, purge, forget-user and leases join them
//! as the operations core grows.)

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Body, Path};
use super::{blocking, AppState};
use crate::settings::StoreSettings;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(get_settings, set_settings))
}

/// Who the key acts as.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    key_id: Option<String>,
    key_name: Option<String>,
    /// `admin`, `writer` or `reader`.
    role: String,
    agent: String,
    /// The session its changes carry (a key's own id).
    session: String,
    user: Option<String>,
    /// Stores it is limited to (`null`: every store its identity may see).
    stores: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/v1/memfs/whoami", tag = "memfs",
    responses((status = 200, body = WhoAmI)))]
pub async fn whoami(Auth(p): Auth) -> Json<WhoAmI> {
    Json(WhoAmI {
        key_id: p.key_id,
        key_name: p.key_name,
        role: p.role.as_str().into(),
        agent: p.who.agent,
        session: p.who.session,
        user: p.who.user,
        stores: p.stores,
    })
}

/// A store's settings: allow-lists, path policies, quotas, content rules.
#[derive(Serialize, ToSchema)]
pub struct SettingsOut {
    memory_store_id: String,
    slug: String,
    #[schema(value_type = Object)]
    settings: StoreSettings,
}

#[utoipa::path(get, path = "/v1/memfs/stores/{memory_store_id}/settings", tag = "memfs",
    params(("memory_store_id" = String, Path)), responses((status = 200, body = SettingsOut)))]
pub async fn get_settings(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SettingsOut>, ApiError> {
    let ops = st.ops.clone();
    let (row, settings) = blocking(move || ops.store_settings(&p, &id)).await?;
    Ok(Json(SettingsOut {
        memory_store_id: row.api_id,
        slug: row.name,
        settings,
    }))
}

#[utoipa::path(put, path = "/v1/memfs/stores/{memory_store_id}/settings", tag = "memfs",
    params(("memory_store_id" = String, Path)), request_body(content = Object),
    responses((status = 200, body = SettingsOut)))]
pub async fn set_settings(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<serde_json::Value>,
) -> Result<Json<SettingsOut>, ApiError> {
    let settings: StoreSettings = serde_json::from_value(b)
        .map_err(|e| ApiError::invalid(format!("invalid store settings: {e}")))?;
    let ops = st.ops.clone();
    let (row, settings) = blocking(move || {
        let s = ops.set_store_settings(&p, &id, &settings)?;
        let (row, _) = ops.store(&p, &id)?;
        Ok((row, s))
    })
    .await?;
    Ok(Json(SettingsOut {
        memory_store_id: row.api_id,
        slug: row.name,
        settings,
    }))
}

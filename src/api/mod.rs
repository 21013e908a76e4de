//! `memfs serve`'s HTTP front end: the memory-store API of Claude Managed
//! Agents (so the official SDKs work against memfs by changing `base_url`),
//! memfs's own endpoints under `/v1/memfs/`, and the OpenAPI document. A thin
//! adapter: each handler decodes the request, calls one function of the
//! operations core (`crate::ops`) on a blocking thread (database work never
//! runs on the async runtime), and renders the result; errors are the
//! Anthropic error envelope (`error.rs`).

pub mod admin;
pub mod audit;
pub mod auth;
pub mod drafts;
pub mod dreams;
pub mod error;
pub mod events;
pub mod extract;
pub mod memfs;
pub mod memories;
pub mod memory_tool;
pub mod openapi;
pub mod serve;
pub mod sessions;
pub mod stores;
pub mod transfer;
pub mod versions;

use crate::error::{OpError, OpResult};
use crate::ops::Ops;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use error::ApiError;
use std::sync::Arc;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub ops: Ops,
    /// Set when the server drains: long-lived streams end.
    pub shutdown: watch::Receiver<bool>,
    pub limits: Arc<Limits>,
    /// The server's configuration (imports take their new stores' limits
    /// from it).
    pub config: Arc<crate::config::Config>,
    /// The web console's sessions and sign-in tokens.
    pub console: Arc<crate::console::Console>,
}

/// Request limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Largest archive `POST /v1/memfs/import` reads.
    pub max_import_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_import_bytes: 4 << 30,
        }
    }
}

/// How `memfs serve` serves what the API's state does not say: where
/// sessions mount stores, and `/mcp`.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// `[server] session_mount_root`: a session's stores are mounted below it.
    pub session_mount_root: String,
    pub mcp: crate::mcp::http::McpHttpOptions,
    /// The consolidation job runner (`/v1/dreams`); `None`: dreams are refused.
    pub jobs: Option<Arc<crate::jobs::Runner>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            session_mount_root: "/mnt/memory".into(),
            mcp: Default::default(),
            jobs: None,
        }
    }
}

/// Runs database work on a blocking thread, so the async runtime never waits
/// on SQLite.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> OpResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "a request's database work panicked or was cancelled");
            Err(ApiError::from(OpError::Store(
                crate::error::StoreError::Corrupt("internal error".into()),
            )))
        }
    }
}

/// RFC 3339 time of nanoseconds since the epoch.
pub fn time(ns: i64) -> String {
    crate::timefmt::rfc3339(ns)
}

/// A time query parameter (RFC 3339, as the SDK sends datetimes).
pub fn time_param(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => crate::timefmt::parse_time(s, crate::ids::now_ns())
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("{name}: {e}"))),
    }
}

/// The router and the OpenAPI document it was built with (one source: a
/// route is in the document because it was registered with its
/// `#[utoipa::path]`).
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    router_with(state, ServeOptions::default())
}

/// [`router`] with `memfs serve`'s options (`/mcp`, session mount paths).
pub fn router_with(state: AppState, opts: ServeOptions) -> (Router, utoipa::openapi::OpenApi) {
    let limits = state.limits.clone();
    let mut mcp_opts = opts.mcp.clone();
    mcp_opts.max_body_bytes = limits.max_body_bytes;
    let mcp = crate::mcp::http::router(state.ops.clone(), state.shutdown.clone(), &mcp_opts);
    let console_state = state.clone();
    let (router, api) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(stores::create, stores::list))
        .routes(routes!(stores::retrieve, stores::update, stores::delete))
        .routes(routes!(stores::archive))
        .routes(routes!(memories::create, memories::list))
        .routes(routes!(
            memories::retrieve,
            memories::update,
            memories::delete
        ))
        .routes(routes!(versions::list))
        .routes(routes!(versions::retrieve))
        .routes(routes!(versions::redact))
        .merge(memfs::routes())
        .merge(drafts::routes())
        .routes(routes!(audit::log))
        .routes(routes!(audit::history))
        .routes(routes!(audit::diff))
        .routes(routes!(audit::content))
        .routes(routes!(admin::rollback_file))
        .routes(routes!(admin::rollback_session))
        .routes(routes!(admin::rollback_store))
        .routes(routes!(admin::purge))
        .routes(routes!(admin::forget))
        .routes(routes!(admin::leases))
        .routes(routes!(admin::break_lease))
        .routes(routes!(transfer::export))
        .routes(routes!(transfer::import))
        .routes(routes!(events::events))
        .routes(routes!(memory_tool::memory_tool))
        .routes(routes!(sessions::retrieve))
        .routes(routes!(dreams::create, dreams::list))
        .routes(routes!(dreams::retrieve))
        .routes(routes!(dreams::cancel))
        .routes(routes!(dreams::archive))
        .with_state(state)
        .split_for_parts();
    let doc = Arc::new(api.clone());
    let router = router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .merge(mcp)
        .merge(crate::console::router(console_state))
        .fallback(not_found)
        .layer(axum::Extension(Arc::new(opts)))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn(request_id))
        // Prometheus metrics and health checks, without a key (no memory in them).
        .merge(crate::metrics::router());
    (router, api)
}

async fn not_found(req: Request) -> Response {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

/// Gives each request an id (`req_...`): in the `request-id` header, in error
/// bodies, and on every log line of the request.
async fn request_id(req: Request, next: Next) -> Response {
    let id = match crate::store::new_api_id("req_") {
        Ok(id) => id,
        Err(_) => format!("req_{:x}", crate::ids::now_ns()),
    };
    let span = tracing::info_span!("request", id = %id, method = %req.method(),
        path = %req.uri().path(), key = tracing::field::Empty);
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let mut resp = error::REQUEST_ID
        .scope(
            id.clone(),
            tracing::Instrument::instrument(next.run(req), span),
        )
        .await;
    let status = resp.status();
    // The API answers in its JSON envelope; the console's own pages say it in HTML.
    if resp.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED && path.starts_with("/v1/") {
        resp = error::REQUEST_ID
            .scope(id.clone(), async {
                ApiError::new(
                    405,
                    "invalid_request_error",
                    "method_not_allowed",
                    format!("{method} is not allowed on {path}"),
                )
                .into_response()
            })
            .await;
    }
    tracing::debug!(request_id = %id, %method, path, status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64, "request");
    crate::metrics::http_request(&route, resp.status().as_u16(), started.elapsed());
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests;

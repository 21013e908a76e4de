//! `POST /v1/memfs/stores/{id}/memory_tool`: the Anthropic memory tool as a
//! service. The body is one command object exactly as Claude emits it in
//! `tool_use.input` (`{"command": "view", "path": "/memories"}`), with
//! `/memories` as the store's root; the answer is the `tool_result` to send
//! back: `{"content": "...", "is_error": bool}`, with exactly the strings of
//! the SDK's reference implementation (`ops/memory_tool.rs`). A command that
//! fails is still 200 with `is_error: true`; only a request memfs cannot
//! serve (no key, an unknown store) is an HTTP error. An optional
//! `x-memfs-session` header names the conversation the changes are
//! attributed to (default: the key's own id).

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Body, Path};
use super::{blocking, AppState};
use crate::mcp::http::SESSION_HEADER;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// What the tool answers: the `tool_result` content and error flag.
#[derive(Serialize, ToSchema)]
pub struct MemoryToolResult {
    /// The text for the model, exactly as the SDK's reference memory tool gives it.
    content: String,
    /// The command failed (send the result with `is_error: true`).
    is_error: bool,
}

#[utoipa::path(post, path = "/v1/memfs/stores/{memory_store_id}/memory_tool", tag = "memfs",
    params(("memory_store_id" = String, Path),
        ("x-memfs-session" = Option<String>, Header,
            description = "The session (conversation) the changes are attributed to")),
    request_body(content = Object, description = "One memory tool command object, as in \
        tool_use.input: {command: view|create|str_replace|insert|delete|rename, ...}; \
        memfs also takes expected_sha256 (a precondition on the file's content)"),
    responses((status = 200, body = MemoryToolResult)))]
pub async fn memory_tool(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(command): Body<serde_json::Value>,
) -> Result<Json<MemoryToolResult>, ApiError> {
    let session = headers
        .get(SESSION_HEADER)
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::invalid(format!("{SESSION_HEADER} must be text")))
        })
        .transpose()?;
    let ops = st.ops.clone();
    let r = blocking(move || {
        let p = match session {
            Some(s) => p.with_session(&s)?,
            None => p,
        };
        ops.memory_tool(&p, &id, &command)
    })
    .await?;
    Ok(Json(MemoryToolResult {
        content: r.content,
        is_error: r.is_error,
    }))
}

//! `/mcp` in `memfs serve`: the MCP server over Streamable HTTP, behind the
//! API's key authentication. Protocol 2026-07-28 is stateless (no
//! `Mcp-Session-Id`), and older clients are served statelessly too, so the
//! identity comes with every request: the key gives agent, user, role and
//! stores, and the session its changes carry is the `x-memfs-session` header
//! (or the `session` query parameter, for clients that cannot set headers),
//! else the key's own id. A session name may not pass for another key's.

use super::{Caller, MemfsMcp};
use crate::api::error::ApiError;
use crate::api::{auth, blocking};
use crate::ids::now_ns;
use crate::ops::Ops;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;
use tokio::sync::watch;

/// The header naming the session an HTTP client's changes carry.
pub const SESSION_HEADER: &str = "x-memfs-session";

/// How `/mcp` is served.
#[derive(Clone, Debug, Default)]
pub struct McpHttpOptions {
    /// Host names (or `host:port`) accepted in `Host` besides loopback's (a
    /// guard against DNS rebinding; set it when serving other names).
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
}

/// The `/mcp` route: the MCP service behind API key authentication.
pub fn router(ops: Ops, shutdown: watch::Receiver<bool>, opts: &McpHttpOptions) -> Router {
    let server = MemfsMcp::new(ops.clone(), None, shutdown);
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
        .into_iter()
        .map(String::from)
        .collect();
    hosts.extend(opts.allowed_hosts.iter().cloned());
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts);
    if opts.max_body_bytes > 0 {
        config = config.with_max_request_body_bytes(opts.max_body_bytes);
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(ops, authenticate))
}

/// The session a request names: the header, else the `session` query
/// parameter.
fn requested_session(parts: &axum::http::request::Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(SESSION_HEADER) {
        return v.to_str().ok().map(str::to_string);
    }
    parts.uri.query().and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "session").then(|| percent_decode(v))
        })
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Authenticates the request's API key and attaches its caller.
async fn authenticate(State(ops): State<Ops>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let Some(secret) = auth::secret(&parts) else {
        return ApiError::new(
            401,
            "authentication_error",
            "missing_api_key",
            "no API key: send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY' \
             (make one with `memfsctl apikey create NAME`)"
                .into(),
        )
        .into_response();
    };
    let session = requested_session(&parts);
    let principal = match blocking(move || {
        let p = ops.authenticate(&secret)?;
        match session {
            Some(s) => p.with_session(&s),
            None => Ok(p),
        }
    })
    .await
    {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    parts.extensions.insert(Arc::new(Caller {
        principal,
        read_only: Vec::new(),
        since_ns: now_ns(),
    }));
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_comes_from_the_header_else_the_query() {
        let req = |uri: &str, h: Option<&str>| {
            let mut b = axum::http::Request::builder().uri(uri);
            if let Some(h) = h {
                b = b.header(SESSION_HEADER, h);
            }
            b.body(()).unwrap().into_parts().0
        };
        assert_eq!(requested_session(&req("/mcp", None)), None);
        assert_eq!(
            requested_session(&req("/mcp?session=chat%2042", None)).as_deref(),
            Some("chat 42")
        );
        assert_eq!(
            requested_session(&req("/mcp?session=q", Some("h"))).as_deref(),
            Some("h")
        );
    }
}

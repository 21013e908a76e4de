//! Authentication: an API key in `Authorization: Bearer KEY` (what the
//! Anthropic SDK sends) or `x-api-key: KEY`, turned into the principal it acts
//! as. A missing, unknown or revoked key is 401; what a key may do is decided
//! by the operations core.

use super::error::ApiError;
use super::{blocking, AppState};
use crate::ops::Principal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The authenticated principal of a request.
pub struct Auth(pub Principal);

pub(crate) fn secret(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get("authorization") {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(secret) = secret(parts) else {
            return Err(ApiError::new(
                401,
                "authentication_error",
                "missing_api_key",
                "no API key: send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY' \
                 (make one with `memfsctl apikey create NAME`)"
                    .into(),
            ));
        };
        let ops = state.ops.clone();
        let p = blocking(move || ops.authenticate(&secret)).await?;
        if let Some(id) = &p.key_id {
            tracing::Span::current().record("key", id.as_str());
        }
        Ok(Auth(p))
    }
}

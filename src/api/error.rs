//! The API's error envelope, exactly as the Anthropic SDK reads it:
//! `{"type":"error","error":{"type":...,"message":...,"details":{"error_code":...}},
//! "request_id":...}`, with the `request-id` header, and `x-should-retry: false`
//! on client errors (the SDK retries 409 by default; a failed precondition
//! or path conflict will fail the same way again). Status and type come from
//! the one mapping in `crate::error`; rejections of malformed requests by the
//! extractors become 4xx here, never 500.

use crate::error::{HttpClass, OpError};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

tokio::task_local! {
    /// The current request's id (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

/// The current request's id, if inside one.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub class: HttpClass,
    pub message: String,
    /// More fields for `error.details` (a merge's conflicts, say).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, code: &'static str, message: String) -> Self {
        ApiError {
            class: HttpClass { status, kind, code },
            message,
            details: None,
        }
    }

    /// Adds `key` to `error.details`.
    pub fn detail(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(
            400,
            "invalid_request_error",
            "invalid_request",
            message.into(),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, "not_found_error", "not_found", message.into())
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let class = e.http();
        let message = if class.status >= 500 {
            // Logged once with its cause; the client gets no internals.
            tracing::error!(error = %e, request_id = request_id().as_deref().unwrap_or("-"), "request failed");
            "the server could not complete the request; see its log for this request id".to_string()
        } else {
            e.to_string()
        };
        ApiError {
            class,
            message,
            details: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let rid = request_id();
        let mut details = self.details.unwrap_or_default();
        details.insert("error_code".into(), self.class.code.into());
        let body = serde_json::json!({
            "type": "error",
            "error": {
                "type": self.class.kind,
                "message": self.message,
                "details": details,
            },
            "request_id": rid,
        });
        let status =
            StatusCode::from_u16(self.class.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, axum::Json(body)).into_response();
        if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        r
    }
}

/// A rejection of the request by an extractor (bad JSON, wrong type, body
/// too large, bad query or path), as a 4xx envelope.
pub fn rejection(status: StatusCode, what: &str, text: String) -> ApiError {
    let (kind, code) = match status.as_u16() {
        413 => ("request_too_large", "request_too_large"),
        415 => ("invalid_request_error", "unsupported_media_type"),
        _ => ("invalid_request_error", "invalid_request"),
    };
    let status = if status.is_client_error() {
        status.as_u16()
    } else {
        400
    };
    ApiError::new(status, kind, code, format!("{what}: {text}"))
}

//! The console's static files, embedded in the binary: its style sheet and
//! its one script. They are served with a version in the URL (a hash of the
//! bytes), so browsers may keep them for good and a new build is fetched anew.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
const ICON: &str = include_str!("assets/favicon.svg");

fn version(bytes: &str) -> String {
    blake3::hash(bytes.as_bytes()).to_hex()[..12].to_string()
}

fn css_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| version(CSS))
}

fn js_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| version(JS))
}

pub fn css_url() -> String {
    format!("/console/assets/console.css?v={}", css_version())
}

pub fn js_url() -> String {
    format!("/console/assets/console.js?v={}", js_version())
}

/// `GET /console/assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind, v) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8", css_version()),
        "console.js" => (JS, "text/javascript; charset=utf-8", js_version()),
        "favicon.svg" => (ICON, "image/svg+xml", "1"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{v}\"")) {
        h.insert(header::ETAG, etag);
    }
    r
}

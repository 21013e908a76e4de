//! The web console, served by `memfs serve` under `/console`: people browse,
//! correct, review and undo what agents remember. A thin front end over the
//! operations core (`crate::ops`): each handler checks the session, calls
//! ops on a blocking thread, and renders HTML with maud (which escapes every
//! value: content written by agents is untrusted and is only ever shown as
//! text). Every asset is embedded in the binary; pages work without script,
//! and `console.js` adds live updates from the change stream.
//!
//! Security: a session cookie (HttpOnly, SameSite=Strict, Secure under TLS)
//! whose hash alone the server keeps; every state-changing request carries
//! the session's CSRF token and must come from this origin; a strict
//! Content-Security-Policy with no inline script or style.

pub mod assets;
pub mod auth;
mod browse;
mod edit;
mod history;
mod live;
mod logs;
mod manage;
pub mod page;
pub mod render;
mod review;
mod stores;
#[cfg(test)]
mod tests;

pub use auth::Console;

use crate::api::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// The console's routes, with their state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/stores") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/stores") }),
        )
        .route(
            "/console/signin",
            get(auth::signin_page).post(auth::signin_key),
        )
        .route("/console/signout", post(auth::signout))
        .route("/console/assets/{name}", get(assets::asset))
        .route("/console/events", get(live::events))
        .route("/console/stores", get(stores::list).post(stores::create))
        .route("/console/stores/archive", post(stores::archive))
        .route("/console/s/{store}", get(browse::tree))
        .route("/console/s/{store}/file", get(browse::file))
        .route("/console/s/{store}/raw", get(browse::raw))
        .route("/console/s/{store}/edit", get(edit::form).post(edit::save))
        .route(
            "/console/s/{store}/new",
            get(edit::new_form).post(edit::create),
        )
        .route("/console/s/{store}/rename", post(edit::rename))
        .route("/console/s/{store}/delete", post(edit::delete))
        .route("/console/s/{store}/history", get(history::timeline))
        .route("/console/s/{store}/diff", get(history::diff))
        .route("/console/s/{store}/version", get(history::version))
        .route("/console/s/{store}/restore", post(history::restore))
        .route(
            "/console/s/{store}/review",
            get(review::status).post(review::mark),
        )
        .route("/console/s/{store}/search", get(review::search))
        .route("/console/log", get(logs::log))
        .route("/console/session", get(logs::session))
        .route("/console/session/rollback", post(logs::rollback))
        .route("/console/admin", get(manage::admin))
        .route(
            "/console/admin/redact",
            get(manage::redact_form).post(manage::redact),
        )
        .route(
            "/console/admin/purge",
            get(manage::purge_form).post(manage::purge),
        )
        .route("/console/admin/forget", post(manage::forget))
        .route("/console/admin/keys", post(manage::create_key))
        .route("/console/admin/keys/revoke", post(manage::revoke_key))
        // Unknown console paths get the console's own 404 page (with its
        // headers), not the API's JSON one.
        .route(
            "/console/{*rest}",
            get(page::not_found).post(page::not_found),
        )
        .layer(axum::middleware::from_fn(headers))
        .with_state(state)
}

/// The Content-Security-Policy of every console answer: nothing but this
/// origin's own script and style, no inline code, no plugins, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self'; object-src 'none'; base-uri 'none'; \
                       form-action 'self'; frame-ancestors 'none'";

/// Security headers on every console answer; pages are not cached (they
/// show a person's view of live data), assets say so themselves.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not no-referrer: under it browsers send `Origin: null` with form
    // posts, and the CSRF check needs the real origin.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

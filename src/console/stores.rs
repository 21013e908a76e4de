//! The store list (scope, owner, files, bytes, last change, archived and
//! encrypted badges), creating a store and archiving one.

use super::auth::{run, Posted, Who};
use super::page::{csrf, Fail, Frame, Live};
use super::render::{badge, size, store_url, time};
use crate::api::AppState;
use crate::ops::stores::NewStore;
use crate::store::Scope;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

/// Whether a page request is the live refresh of `console.js` (which must
/// not take the page's one-time message).
pub fn is_refresh(h: &HeaderMap) -> bool {
    h.contains_key("x-console-live")
}

/// `GET /console/stores`.
pub async fn list(State(st): State<AppState>, Who(s): Who, h: HeaderMap) -> Response {
    let (ops, p) = (st.ops.clone(), s.principal.clone());
    let stores = match run(move || ops.store_summaries(&p)).await {
        Ok(v) => v,
        Err(e) => return Fail::from(e).into_response(),
    };
    let flash = (!is_refresh(&h))
        .then(|| st.console.take_flash(&s))
        .flatten();
    let body = html! {
        h1 { "Stores" }
        section #stores data-live-region {
            @if stores.is_empty() {
                p.note { "No store is visible to you yet." }
            } @else {
                div.scroll {
                    table.list {
                        caption.vh { "Stores you may see" }
                        thead { tr {
                            th scope="col" { "Store" } th scope="col" { "Scope" } th scope="col" { "Owner" }
                            th scope="col" class="num" { "Files" } th scope="col" class="num" { "Bytes" }
                            th scope="col" { "Last change" }
                            @if s.is_admin() { th scope="col" { span.vh { "Actions" } } }
                        } }
                        tbody {
                            @for x in &stores {
                                tr {
                                    td {
                                        a href=(store_url(&x.row.name, "", &[])) { (x.row.name) }
                                        @if let Some(t) = &x.row.title { @if *t != x.row.name { " " span.sub { (t) } } }
                                        @if x.row.archived { " " (badge("archived", "warn")) }
                                        @if x.row.encrypted { " " (badge("encrypted", "info")) }
                                        @if x.row.shredded { " " (badge("shredded", "bad")) }
                                        @if !x.writable { " " (badge("read-only for you", "plain")) }
                                    }
                                    td { (match x.row.scope { Scope::Org => "org", Scope::User => "user" }) }
                                    td { (x.row.owner.as_deref().unwrap_or("—")) }
                                    td.num { (x.files) }
                                    td.num { (size(x.bytes)) }
                                    td {
                                        @if let Some(e) = &x.last_change {
                                            (time(e.at_ns)) " · " (e.op) " "
                                            @if let Some(p) = &e.path { code { (p) } " " }
                                            "by " (e.agent)
                                        } @else { "—" }
                                    }
                                    @if s.is_admin() {
                                        td {
                                            @if !x.row.archived {
                                                form method="post" action="/console/stores/archive" class="inline" {
                                                    (csrf(&s))
                                                    input type="hidden" name="store" value=(x.row.name);
                                                    button type="submit" aria-label=(format!("Archive store {}", x.row.name)) { "Archive" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if s.is_admin() {
            section {
                h2 { "Create a store" }
                form method="post" action="/console/stores" class="fields" {
                    (csrf(&s))
                    div.field {
                        label for="name" { "Name" }
                        input #name name="name" required pattern="[a-z0-9][a-z0-9-]{0,62}" aria-describedby="name-hint";
                        span #name-hint.hint { "Lowercase letters, digits and -, e.g. team-kb" }
                    }
                    div.field {
                        label for="scope" { "Scope" }
                        select #scope name="scope" {
                            option value="org" { "org (shared by agents the allow-lists admit)" }
                            option value="user" { "user (private to its owner)" }
                        }
                    }
                    div.field { label for="owner" { "Owner (user stores)" } input #owner name="owner"; }
                    div.field { label for="description" { "Description" } input #description name="description"; }
                    div { button type="submit" { "Create" } }
                }
            }
        }
    };
    Frame::new("Stores", &s)
        .current("stores")
        .live(Live::All)
        .flash(flash)
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    scope: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    description: String,
}

/// `POST /console/stores`.
pub async fn create(State(st): State<AppState>, Posted(s, f): Posted<CreateForm>) -> Response {
    let scope = match f.scope.as_str() {
        "user" => Scope::User,
        _ => Scope::Org,
    };
    let ns = NewStore {
        slug: Some(f.name.trim().to_string()),
        title: None,
        description: f.description.trim().to_string(),
        metadata: Default::default(),
        scope: Some(scope),
        owner: Some(f.owner.trim().to_string()).filter(|o| !o.is_empty()),
    };
    let (ops, p) = (st.ops.clone(), s.principal.clone());
    match run(move || ops.create_store(&p, &ns)).await {
        Ok(row) => {
            st.console.flash(&s, format!("Created store {}.", row.name));
            Redirect::to(&store_url(&row.name, "", &[])).into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ArchiveForm {
    store: String,
}

/// `POST /console/stores/archive`.
pub async fn archive(State(st): State<AppState>, Posted(s, f): Posted<ArchiveForm>) -> Response {
    let (ops, p) = (st.ops.clone(), s.principal.clone());
    match run(move || ops.archive_store(&p, &f.store)).await {
        Ok(row) => {
            st.console.flash(
                &s,
                format!(
                    "Archived store {}: it is read-only for everyone now.",
                    row.name
                ),
            );
            Redirect::to("/console/stores").into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

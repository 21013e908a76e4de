//! A file's past: its timeline (operation, time, who, size; redacted
//! versions as tombstones, deletions too), the diff of any two versions,
//! one version with what it changed, and restoring a version (a rollback of
//! the file: the old content becomes a new head; history is never rewritten).

use super::auth::{run, Posted, Who};
use super::browse::crumbs;
use super::page::{csrf, Fail, Frame};
use super::render::{
    actor, diff_table, dir_of, file_url, query, size, store_url, time, version_url,
};
use super::stores::is_refresh;
use crate::api::AppState;
use crate::ids::VersionId;
use crate::ops::memories::memory_id;
use crate::ops::rollback::Rollback;
use crate::ops::versions::VersionQuery;
use crate::store::FileVersionKind;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct HistoryQuery {
    path: String,
    page: Option<String>,
}

/// `GET /console/s/{store}/history?path=`.
pub async fn timeline(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<HistoryQuery>,
    h: HeaderMap,
) -> Response {
    let path = q.path.trim_matches('/').to_string();
    let (ops, p, st2, p2, page) = (
        st.ops.clone(),
        s.principal.clone(),
        store.clone(),
        path.clone(),
        q.page.clone(),
    );
    let got = run(move || {
        let (row, set) = ops.store(&p, &st2)?;
        let f = ops.find_file(&p, &st2, &p2)?;
        let ops_by_id: HashMap<i64, String> = ops
            .file_history(&p, &st2, &p2)?
            .versions
            .into_iter()
            .map(|v| (v.version.id.0, v.version.op))
            .collect();
        let versions = ops.list_versions(
            &p,
            &row.api_id,
            &VersionQuery {
                memory_id: Some(memory_id(f.ino)),
                limit: Some(100),
                page,
                ..Default::default()
            },
        )?;
        let writable = p.may_write(&row, &set) && !row.archived;
        Ok((versions, ops_by_id, writable))
    })
    .await;
    let (versions, ops_by_id, writable) = match got {
        Ok(v) => v,
        Err(e) => return Fail::from(e).into_response(),
    };
    let flash = (!is_refresh(&h))
        .then(|| st.console.take_flash(&s))
        .flatten();
    let content: Vec<i64> = versions
        .data
        .iter()
        .filter(|v| v.entry.kind == FileVersionKind::Content && v.entry.redacted_ns.is_none())
        .map(|v| v.entry.id)
        .collect();
    let (def_to, def_from) = (content.first().copied(), content.get(1).copied());
    let body = html! {
        (crumbs(&store, dir_of(&path)))
        h1 { "History of " a href=(file_url(&store, &path)) { code { (path) } } }
        form method="get" action=(store_url(&store, "diff", &[])) {
            input type="hidden" name="path" value=(path);
            section #history data-live-region {
                div.scroll {
                    table.list {
                        caption { "Every version, newest first. Pick two to compare." }
                        thead { tr {
                            th scope="col" { "From" } th scope="col" { "To" }
                            th scope="col" { "Version" } th scope="col" { "Operation" }
                            th scope="col" { "Time" } th scope="col" { "Who" }
                            th scope="col" class="num" { "Size" } th scope="col" { span.vh { "Actions" } }
                        } }
                        tbody {
                            @for v in &versions.data {
                                @let e = &v.entry;
                                @let redacted = e.redacted_ns.is_some();
                                tr class=[redacted.then_some("tomb")] {
                                    @if e.kind == FileVersionKind::Content && !redacted {
                                        td { input type="radio" name="from" value=(e.id) checked[def_from == Some(e.id)] aria-label=(format!("Compare from version {}", e.id)); }
                                        td { input type="radio" name="to" value=(e.id) checked[def_to == Some(e.id)] aria-label=(format!("Compare to version {}", e.id)); }
                                        td { a href=(version_url(&store, e.id)) { (e.id) } }
                                    } @else {
                                        td {} td {}
                                        td { @if e.kind == FileVersionKind::Content { (e.id) } @else { "—" } }
                                    }
                                    td {
                                        (v.operation())
                                        @if let Some(op) = ops_by_id.get(&e.id) { @if op != "write" { " (" (op) ")" } }
                                        @if redacted { " " (super::render::badge("redacted", "bad")) }
                                    }
                                    td { (time(e.at_ns)) }
                                    td { (actor(&e.agent, &e.session, e.user.as_deref())) }
                                    td.num { @if let Some(n) = e.size { (size(n)) } @else { "—" } }
                                    td {
                                        @if redacted {
                                            span.sub {
                                                "content removed " @if let Some(t) = e.redacted_ns { (time(t)) }
                                                @if let Some(crate::ops::Actor::UserActor { user_id }) = &v.redacted_by { " by " (user_id) }
                                            }
                                        } @else if e.kind == FileVersionKind::Content {
                                            a href=(format!("{}&version={}", file_url(&store, &path), e.id)) { "View" }
                                            @if s.is_admin() {
                                                " · " a href=(format!("/console/admin/redact?{}", query(&[("store", &store), ("path", &path), ("version", &e.id.to_string())]))) { "Redact…" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &versions.next_page {
                    p { a href=(store_url(&store, "history", &[("path", &path), ("page", next)])) { "Older versions →" } }
                }
            }
            @if content.len() >= 2 {
                p { button type="submit" { "Compare the selected versions" } }
            }
        }
        @if writable { p.hint { "To restore a version, open it and choose Restore (admins) or Edit from this version." } }
    };
    Frame::new(format!("History of {store}/{path}"), &s)
        .store(&store, "tree")
        .flash(flash)
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct DiffQuery {
    path: String,
    from: i64,
    to: Option<i64>,
}

/// `GET /console/s/{store}/diff?path=&from=[&to=]` (to: the head).
pub async fn diff(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Response {
    let path = q.path.trim_matches('/').to_string();
    // Older first, whichever order they were picked in.
    let (from, to) = match q.to {
        Some(t) if t < q.from => (t, Some(q.from)),
        t => (q.from, t),
    };
    let (ops, p, st2, p2) = (
        st.ops.clone(),
        s.principal.clone(),
        store.clone(),
        path.clone(),
    );
    let got = run(move || ops.diff(&p, &st2, &p2, VersionId(from), to.map(VersionId))).await;
    let d = match got {
        Ok(d) => d,
        Err(e) => return Fail::from(e).into_response(),
    };
    let to_label = d.to.map_or("empty".to_string(), |v| v.0.to_string());
    let body = html! {
        (crumbs(&store, dir_of(&path)))
        h1 { "Diff of " a href=(file_url(&store, &path)) { code { (path) } } }
        p {
            "From version " a href=(version_url(&store, from)) { (from) }
            " to " @if let Some(t) = d.to { "version " a href=(version_url(&store, t.0)) { (t.0) } } @else { (to_label) }
            @if to.is_none() { " (the current content)" }
            ". "
            a href=(store_url(&store, "history", &[("path", &path)])) { "Back to the history" }
        }
        (diff_table(&d, &format!("Changes from version {from} to {to_label}")))
    };
    Frame::new(format!("Diff of {store}/{path}"), &s)
        .store(&store, "tree")
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct VersionQ {
    v: i64,
}

/// `GET /console/s/{store}/version?v=`: one version and what it changed.
pub async fn version(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<VersionQ>,
) -> Response {
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.clone());
    let id = q.v;
    let got = run(move || {
        let (row, set) = ops.store(&p, &st2)?;
        let c = ops.version_change(&p, &st2, VersionId(id))?;
        let writable = p.may_write(&row, &set) && !row.archived;
        Ok((c.version, c.path, c.diff, c.redacted, writable))
    })
    .await;
    let (v, path, d, redacted, writable) = match got {
        Ok(x) => x,
        Err(e) => return Fail::from(e).into_response(),
    };
    let shown = path.clone().unwrap_or_else(|| v.path.clone());
    let body = html! {
        (crumbs(&store, dir_of(&shown)))
        h1 { "Version " (v.id.0) " of " code { (shown) } }
        dl.meta {
            dt { "Operation" } dd { (v.op) }
            dt { "Time" } dd { (time(v.at_ns)) }
            dt { "Who" } dd { (actor(&v.agent, &v.session, v.user.as_deref())) }
            dt { "Size" } dd { @if redacted { "—" } @else { (size(v.size)) } }
            dt { "SHA-256" } dd { code.hash { (v.sha256.as_deref().unwrap_or("—")) } }
        }
        @if redacted {
            p.note { (super::render::badge("redacted", "bad")) " This version's content was removed for good; who wrote it and when stay." }
        } @else {
            h2 { "What it changed" }
            p.hint { @if let Some(f) = d.from { "Compared with version " a href=(version_url(&store, f.0)) { (f.0) } ", the content before it." } @else { "The file's first content." } }
            (diff_table(&d, &format!("Changes made by version {}", v.id.0)))
        }
        @if let Some(live) = &path {
            @if !redacted {
                p.actions {
                    a.button href=(format!("{}&version={}", file_url(&store, live), v.id.0)) { "View this version" }
                    " " a.button href=(store_url(&store, "history", &[("path", live)])) { "History" }
                    @if writable {
                        " " a.button href=(store_url(&store, "edit", &[("path", live), ("from", &v.id.0.to_string())])) { "Edit from this version" }
                    }
                    @if s.is_admin() {
                        " " a.button.danger href=(format!("/console/admin/redact?{}", query(&[("store", &store), ("path", live), ("version", &v.id.0.to_string())]))) { "Redact…" }
                    }
                }
                @if s.is_admin() && writable {
                    form method="post" action=(store_url(&store, "restore", &[])) class="row" {
                        (csrf(&s))
                        input type="hidden" name="path" value=(live);
                        input type="hidden" name="version" value=(v.id.0);
                        button type="submit" { "Restore this version" }
                        span.hint { "Its content becomes the file's newest version; nothing is erased." }
                    }
                }
            }
        } @else {
            p.note { "The file no longer exists." }
        }
    };
    Frame::new(format!("Version {}", v.id.0), &s)
        .store(&store, "tree")
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct RestoreForm {
    path: String,
    version: i64,
}

/// `POST /console/s/{store}/restore`.
pub async fn restore(
    State(st): State<AppState>,
    Path(store): Path<String>,
    Posted(s, f): Posted<RestoreForm>,
) -> Response {
    let path = f.path.trim_matches('/').to_string();
    let what = Rollback::File {
        store: store.clone(),
        path: path.clone(),
        to: VersionId(f.version),
    };
    let (ops, p) = (st.ops.clone(), s.principal.clone());
    match run(move || ops.rollback(&p, &what, false)).await {
        Ok(r) => {
            let outcome = r
                .steps
                .first()
                .map(|x| x.outcome.clone())
                .unwrap_or_default();
            let msg = if outcome == "unchanged" {
                format!("{path} already had the content of version {}.", f.version)
            } else {
                format!(
                    "Restored version {} of {path} as its newest version.",
                    f.version
                )
            };
            st.console.flash(&s, msg);
            Redirect::to(&file_url(&store, &path)).into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

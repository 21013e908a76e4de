//! Review for drift (per store: what changed since my last review, file by
//! file with diffs, and marking it reviewed) and full-text search across a
//! store with the matches highlighted (as text: the highlighting is markup
//! the console adds around escaped pieces of the file).

use super::auth::{run, Posted, Who};
use super::logs::entries_table;
use super::page::{csrf, Fail, Frame};
use super::render::{file_url, highlighted, store_url};
use super::stores::is_refresh;
use crate::api::AppState;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

/// `GET /console/s/{store}/review`.
pub async fn status(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    h: HeaderMap,
) -> Response {
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.clone());
    let r = match run(move || ops.review_status(&p, &st2)).await {
        Ok(r) => r,
        Err(e) => return Fail::from(e).into_response(),
    };
    let flash = (!is_refresh(&h))
        .then(|| st.console.take_flash(&s))
        .flatten();
    let newest = r.entries.first().map(|e| e.id.0);
    let body = html! {
        h1 { "Review " (store) }
        p {
            @if let Some(at) = &r.reviewed_at {
                "You (" strong { (r.reviewer) } ") last marked this store reviewed " time datetime=(at) { (at) }
                ", up to entry " (r.reviewed_through) "."
            } @else {
                "You (" strong { (r.reviewer) } ") have not reviewed this store yet: everything is new to you."
            }
        }
        section #review data-live-region {
            @if r.entries.is_empty() {
                p.note { "Nothing changed since your last review." }
            } @else {
                h2 { (r.files.len()) " file(s) changed since" }
                div.scroll {
                    table.list {
                        caption.vh { "Files changed since your last review" }
                        thead { tr { th scope="col" { "File" } th scope="col" class="num" { "Changes" } th scope="col" { "By" } th scope="col" { "Diff" } } }
                        tbody {
                            @for f in &r.files {
                                tr {
                                    td {
                                        @if f.live { a href=(file_url(&store, &f.path)) { code { (f.path) } } }
                                        @else { code { (f.path) } " " (super::render::badge("deleted", "warn")) }
                                    }
                                    td.num { (f.changes) }
                                    td { (f.agents.join(", ")) }
                                    td {
                                        @match (f.from, f.to) {
                                            (Some(a), Some(b)) if a != b => {
                                                a href=(store_url(&store, "diff", &[("path", &f.path), ("from", &a.0.to_string()), ("to", &b.0.to_string())])) { "since your review" }
                                            }
                                            (None, Some(b)) => { a href=(super::render::version_url(&store, b.0)) { "new file" } }
                                            (Some(_), Some(_)) => { "content unchanged" }
                                            (_, None) => { "—" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if r.truncated { p.note { "Only the first " (crate::ops::review::MAX_ENTRIES) " entries after your mark are shown." } }
                @if let Some(n) = newest {
                    form method="post" action=(store_url(&store, "review", &[])) class="row" {
                        (csrf(&s))
                        input type="hidden" name="through" value=(n);
                        button type="submit" { "Mark reviewed (up to entry " (n) ")" }
                        span.hint { "Changes that arrive after this page was shown stay unreviewed." }
                    }
                }
                h2 { "Entries since" }
                (entries_table(&r.entries, "Audit entries since your last review"))
            }
        }
    };
    Frame::new(format!("Review {store}"), &s)
        .store(&store, "review")
        .flash(flash)
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct MarkForm {
    through: i64,
}

/// `POST /console/s/{store}/review`.
pub async fn mark(
    State(st): State<AppState>,
    Path(store): Path<String>,
    Posted(s, f): Posted<MarkForm>,
) -> Response {
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.clone());
    match run(move || ops.mark_reviewed(&p, &st2, f.through)).await {
        Ok(n) => {
            st.console
                .flash(&s, format!("Marked reviewed up to entry {n}."));
            Redirect::to(&store_url(&store, "review", &[])).into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /console/s/{store}/search?q=`.
pub async fn search(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<SearchQuery>,
) -> Response {
    let (ops, p, st2, qq) = (
        st.ops.clone(),
        s.principal.clone(),
        store.clone(),
        q.q.clone(),
    );
    let got = run(move || ops.search(&p, &st2, &qq)).await;
    let body = html! {
        h1 { "Search " (store) }
        form method="get" action=(store_url(&store, "search", &[])) role="search" class="row" {
            label for="q" { "Words" }
            input #q type="search" name="q" value=(q.q) autofocus[q.q.is_empty()];
            button type="submit" { "Search" }
        }
        @match &got {
            Err(e) => { p.problem role="alert" { (e.to_string()) } }
            Ok(r) if !q.q.trim().is_empty() => {
                section #results data-live-region {
                    p role="status" { (r.hits.len()) " file(s) hold every word" @if r.hits.len() >= crate::ops::search::MAX_HITS { " (the first " (crate::ops::search::MAX_HITS) ")" } "." }
                    ol.hits {
                        @for hit in &r.hits {
                            li {
                                a href=(file_url(&store, &hit.path)) { code { (highlighted(&hit.path, &hit.path_ranges)) } }
                                @if !hit.lines.is_empty() {
                                    table.code {
                                        tbody {
                                            @for l in &hit.lines {
                                                tr { td.ln { (l.line) } td.tx { (highlighted(&l.text, &l.ranges)) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Ok(_) => { p.hint { "Finds files whose path or current content holds every word (ignoring case)." } }
        }
    };
    Frame::new(format!("Search {store}"), &s)
        .store(&store, "search")
        .render(body)
        .into_response()
}

//! The audit log with `memfsctl log`'s filters, a page at a time; a
//! session's page (everything it changed, as diffs) with "roll back this
//! session" as a dry-run preview (what would change, which files others
//! changed since) that the person then applies.

use super::auth::{run, Posted, Session, Who};
use super::page::{csrf, Fail, Frame, Live};
use super::render::{actor, diff_table, file_url, query, session_url, time, version_url};
use super::stores::is_refresh;
use crate::api::AppState;
use crate::ids::VersionId;
use crate::ops::history::VersionChange;
use crate::ops::log::LogQuery;
use crate::ops::rollback::{Rollback, RollbackReport};
use crate::store::AuditEntry;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// Entries per page of the log.
const PAGE: u64 = 50;
/// At most this many diffs on a session's page.
const MAX_DIFFS: usize = 50;

#[derive(Deserialize, Default, Clone)]
pub struct LogForm {
    #[serde(default)]
    store: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    session: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    page: Option<String>,
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The audit entries as a table (newest first).
pub fn entries_table(entries: &[AuditEntry], caption: &str) -> Markup {
    html! {
        div.scroll {
            table.list.log {
                caption.vh { (caption) }
                thead { tr {
                    th scope="col" class="num" { "#" } th scope="col" { "Time" } th scope="col" { "Store" }
                    th scope="col" { "Operation" } th scope="col" { "Path" } th scope="col" { "Who" }
                    th scope="col" class="num" { "Version" }
                } }
                tbody {
                    @for e in entries {
                        tr {
                            td.num { (e.id.0) }
                            td { (time(e.at_ns)) }
                            td { @if let Some(s) = &e.store { a href=(format!("/console/s/{s}")) { (s) } } @else { "—" } }
                            td { (e.op) }
                            td.path {
                                @match (&e.store, &e.path) {
                                    (Some(s), Some(p)) => { a href=(file_url(s, p)) { code { (p) } } }
                                    (None, Some(p)) => { code { (p) } }
                                    _ => { "—" }
                                }
                                @if let Some(p2) = &e.path2 { " → " code { (p2) } }
                                @if let Some(d) = &e.detail {
                                    @if e.op == "rejected" || e.op.starts_with("apikey") || e.op.starts_with("store") {
                                        details { summary { "detail" } code.detail { (d.to_string()) } }
                                    }
                                }
                            }
                            td { (actor(&e.agent, &e.session, e.user.as_deref())) }
                            td.num {
                                @match (&e.store, e.version) {
                                    (Some(s), Some(v)) => { a href=(version_url(s, v)) { (v) } }
                                    _ => { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn field(id: &str, label: &str, value: &str, hint: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(id) value=(value) placeholder=(hint);
        }
    }
}

/// `GET /console/log?store=&path=&agent=&session=&user=&op=&since=&until=&page=`.
pub async fn log(
    State(st): State<AppState>,
    Who(s): Who,
    Query(f): Query<LogForm>,
    h: HeaderMap,
) -> Response {
    let q = LogQuery {
        store: opt(&f.store),
        path: opt(&f.path),
        agent: opt(&f.agent),
        session: opt(&f.session),
        user: opt(&f.user),
        op: opt(&f.op),
        since: opt(&f.since),
        until: opt(&f.until),
        limit: Some(PAGE),
    };
    let (ops, p, page) = (st.ops.clone(), s.principal.clone(), f.page.clone());
    let got = run(move || ops.log_page(&p, &q, page.as_deref())).await;
    let flash = (!is_refresh(&h))
        .then(|| st.console.take_flash(&s))
        .flatten();
    let filters = [
        ("store", f.store.as_str()),
        ("path", f.path.as_str()),
        ("agent", f.agent.as_str()),
        ("session", f.session.as_str()),
        ("user", f.user.as_str()),
        ("op", f.op.as_str()),
        ("since", f.since.as_str()),
        ("until", f.until.as_str()),
    ];
    let next_url = got
        .as_ref()
        .ok()
        .and_then(|pg| pg.next_page.as_ref())
        .map(|next| {
            let mut pairs: Vec<(&str, &str)> = filters.to_vec();
            pairs.push(("page", next.as_str()));
            format!("/console/log?{}", query(&pairs))
        });
    let body = html! {
        h1 { "Audit log" }
        form method="get" action="/console/log" class="filters" aria-label="Filter the log" {
            (field("store", "Store", &f.store, "team-kb"))
            (field("path", "Path (and below)", &f.path, "notes/"))
            (field("agent", "Agent", &f.agent, "planner-7"))
            (field("session", "Session", &f.session, "2f9c"))
            (field("user", "User", &f.user, "alice"))
            (field("op", "Operation", &f.op, "write"))
            (field("since", "Since", &f.since, "2h or 2026-11-25T10:00:00Z"))
            (field("until", "Until", &f.until, ""))
            div.field { button type="submit" { "Filter" } a href="/console/log" { "Clear" } }
        }
        @match &got {
            Err(e) => { p.problem role="alert" { (e.to_string()) } }
            Ok(pg) => {
                section #log data-live-region {
                    @if pg.data.is_empty() { p.note { "No entries match." } }
                    @else { (entries_table(&pg.data, "Audit entries, newest first")) }
                    @if let Some(next) = &next_url {
                        p { a href=(next) { "Older entries →" } }
                    }
                }
            }
        }
    };
    let live = if f.page.is_none() {
        match opt(&f.store) {
            Some(s) => Live::Store(s),
            None => Live::All,
        }
    } else {
        Live::Off
    };
    Frame::new("Audit log", &s)
        .current("log")
        .live(live)
        .flash(flash)
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct SessionQuery {
    id: String,
    #[serde(default)]
    store: String,
}

fn report_table(r: &RollbackReport) -> Markup {
    html! {
        @if r.steps.is_empty() { p.note { "Nothing to undo." } } @else {
            div.scroll {
                table.list {
                    caption.vh { "Rollback steps" }
                    thead { tr { th scope="col" { "Step" } th scope="col" { "Store" } th scope="col" { "Path" } th scope="col" { "Outcome" } } }
                    tbody {
                        @for x in &r.steps {
                            tr {
                                td { (x.action) @if let Some(v) = x.version { " to version " (v) } }
                                td { (x.store) }
                                td { code { (x.path) } @if let Some(p2) = &x.path2 { " → " code { (p2) } } }
                                td { (x.outcome) }
                            }
                        }
                    }
                }
            }
        }
        @if !r.conflicts.is_empty() {
            h3 { "Changed by others since (left alone unless you include them)" }
            ul.conflicts {
                @for c in &r.conflicts {
                    li {
                        code { (c.store) "/" (c.path) } ": " (c.later_op) " by agent " strong { (c.later_agent) }
                        ", session " a href=(session_url(&c.later_session)) { code { (c.later_session) } }
                        " (entry " (c.later_entry) ")"
                    }
                }
            }
        }
    }
}

fn rollback_form(s: &Session, id: &str, store: &str, r: &RollbackReport) -> Markup {
    html! {
        form method="post" action="/console/session/rollback" class="stack" {
            (csrf(s))
            input type="hidden" name="id" value=(id);
            input type="hidden" name="store" value=(store);
            @if !r.conflicts.is_empty() {
                div.row {
                    input #force type="checkbox" name="force" value="yes";
                    label for="force" { "Also undo the files others changed since (their later changes are undone too)" }
                }
            }
            div.row { button.danger type="submit" { "Roll back this session" } }
        }
    }
}

/// `GET /console/session?id=[&store=]`.
pub async fn session(
    State(st): State<AppState>,
    Who(s): Who,
    Query(q): Query<SessionQuery>,
) -> Response {
    let (ops, p, id, store) = (
        st.ops.clone(),
        s.principal.clone(),
        q.id.clone(),
        opt(&q.store),
    );
    let admin = s.is_admin();
    let got = run(move || {
        let entries = ops.log(
            &p,
            &LogQuery {
                session: Some(id.clone()),
                store: store.clone(),
                limit: Some(1000),
                ..Default::default()
            },
        )?;
        let mut diffs: Vec<(i64, String, VersionChange)> = Vec::new();
        for e in entries.iter().rev() {
            if diffs.len() >= MAX_DIFFS {
                break;
            }
            if let (Some(st), Some(v)) = (&e.store, e.version) {
                if let Ok(c) = ops.version_change(&p, st, VersionId(v)) {
                    diffs.push((e.id.0, st.clone(), c));
                }
            }
        }
        let preview = if admin && !entries.is_empty() {
            let what = Rollback::Session {
                session: id,
                store,
                force: false,
            };
            Some(ops.rollback(&p, &what, true))
        } else {
            None
        };
        Ok((entries, diffs, preview))
    })
    .await;
    let (entries, diffs, preview) = match got {
        Ok(v) => v,
        Err(e) => return Fail::from(e).into_response(),
    };
    let first = entries.last();
    let body = html! {
        h1 { "Session " code { (q.id) } }
        @if let Some(e) = first {
            p { (entries.len()) " change(s), first " (time(e.at_ns)) ", by " (actor(&e.agent, &e.session, e.user.as_deref())) "." }
        } @else { p.note { "This session changed nothing you may see." } }
        @if !entries.is_empty() {
            section {
                h2 { "Roll back" }
                @match &preview {
                    None => { p.note { "Only an admin may roll back a session." } }
                    Some(Err(e)) => { p.problem role="alert" { (e.to_string()) } }
                    Some(Ok(r)) => {
                        p { "Preview (nothing changed yet): what rolling back this session would do." }
                        (report_table(r))
                        (rollback_form(&s, &q.id, &q.store, r))
                    }
                }
            }
            section {
                h2 { "What it changed" }
                @for (entry, store, c) in &diffs {
                    @let shown = c.path.clone().unwrap_or_else(|| c.version.path.clone());
                    article.change {
                        h3 {
                            code { (store) "/" (shown) } " · version "
                            a href=(version_url(store, c.version.id.0)) { (c.version.id.0) }
                            " · " (c.version.op) " · entry " (entry)
                        }
                        @if c.redacted { p.note { "Redacted: its content is gone." } }
                        @else { (diff_table(&c.diff, &format!("Changes of version {}", c.version.id.0))) }
                    }
                }
                @if diffs.is_empty() { p.note { "It wrote no content (only names or attributes changed)." } }
            }
            section {
                h2 { "Its audit entries" }
                (entries_table(&entries, "The session's audit entries, newest first"))
            }
        }
    };
    Frame::new(format!("Session {}", q.id), &s)
        .current("log")
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct RollbackForm {
    id: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    force: String,
}

/// `POST /console/session/rollback`: applies the rollback and shows what it did.
pub async fn rollback(State(st): State<AppState>, Posted(s, f): Posted<RollbackForm>) -> Response {
    let what = Rollback::Session {
        session: f.id.clone(),
        store: opt(&f.store),
        force: f.force == "yes",
    };
    let (ops, p) = (st.ops.clone(), s.principal.clone());
    let r = match run(move || ops.rollback(&p, &what, false)).await {
        Ok(r) => r,
        Err(e) => return Fail::from(e).into_response(),
    };
    let failed = r.failed();
    let body = html! {
        h1 { "Rolled back session " code { (f.id) } }
        @if failed > 0 {
            p.problem role="alert" { (failed) " step(s) could not be done; the others were." }
        } @else {
            p.flash role="status" { "Done: every change of the session was undone by new changes (nothing was erased)." }
        }
        (report_table(&r))
        p { a href=(session_url(&f.id)) { "Back to the session" } " · " a href="/console/log" { "Audit log" } }
    };
    Frame::new("Rollback done", &s)
        .current("log")
        .render(body)
        .into_response()
}

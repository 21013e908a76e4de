//! Drafts in the console: a store's drafts (and making one), a draft under
//! review (what it changed, what the store changed since its base, each with
//! its diff, and the conflicts a merge would leave), the merge previewed
//! (a dry run, of everything or of the paths the person ticks) and then
//! applied, and discarding a draft. Thin over `ops::drafts`; every value is
//! escaped by maud (file names, diffs and conflict text come from agents).

use super::auth::{run, Posted, Session, Who};
use super::page::{csrf, Fail, Frame};
use super::render::{actor, badge, diff_table, query, session_url, store_url};
use super::stores::is_refresh;
use crate::api::AppState;
use crate::ops::drafts::{
    Action, DraftChange, DraftView, MergeConflict, MergeOptions, MergeReport, NewDraftRequest,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

/// The console URL of a draft's page (`STORE@DRAFT`), or one of its actions.
pub fn draft_url(draft: &str, action: &str) -> String {
    let enc: String = url_segment(draft);
    if action.is_empty() {
        format!("/console/d/{enc}")
    } else {
        format!("/console/d/{enc}/{action}")
    }
}

/// A draft name as a URL path segment (names are slugs joined by `@`, which
/// paths allow; anything else is percent-encoded all the same).
fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'@' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn why(v: &DraftView) -> Markup {
    html! {
        (v.reason.as_str())
        @if let Some(s) = &v.for_session { " (session " code { (s) } ")" }
    }
}

/// `GET /console/s/{store}/drafts`.
pub async fn list(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    h: HeaderMap,
) -> Response {
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.clone());
    let drafts = match run(move || ops.list_drafts(&p, Some(&st2))).await {
        Ok(d) => d,
        Err(e) => return Fail::from(e).into_response(),
    };
    let flash = (!is_refresh(&h))
        .then(|| st.console.take_flash(&s))
        .flatten();
    let body = html! {
        h1 { "Drafts of " (store) }
        p.hint {
            "A draft is a copy-on-write branch of the store: agents write into it (mounted as "
            code { "memfs mount DIR --store " (store) "@NAME" } ", or sent there by the store's drafts rule) "
            "and the store changes only when a person merges it."
        }
        section #drafts data-live-region {
            @if drafts.is_empty() {
                p.note { "No drafts." }
            } @else {
                div.scroll {
                    table.list {
                        caption.vh { "Drafts of " (store) }
                        thead { tr {
                            th scope="col" { "Draft" } th scope="col" { "Why" } th scope="col" { "Made by" }
                            th scope="col" { "Base" } th scope="col" class="num" { "Files" } th scope="col" class="num" { "Own versions" }
                        } }
                        tbody {
                            @for d in &drafts {
                                tr {
                                    td { a href=(draft_url(&d.name, "")) { code { (d.name) } } }
                                    td { (why(d)) }
                                    td { (actor(&d.created_by.agent, &d.created_by.session, d.created_by.user.as_deref())) }
                                    td { time datetime=(d.base_at) { (d.base_at) } }
                                    td.num { (d.files) }
                                    td.num { (d.versions) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Make a draft" }
        form method="post" action=(store_url(&store, "drafts", &[])) class="row" {
            (csrf(&s))
            label for="name" { "Name" }
            input #name name="name" placeholder="d1, d2... when empty" pattern="[a-z0-9][a-z0-9-]{0,62}";
            button type="submit" { "Make a draft of " (store) " as it is now" }
        }
    };
    Frame::new(format!("Drafts of {store}"), &s)
        .store(&store, "drafts")
        .flash(flash)
        .render(body)
        .into_response()
}

/// `POST /console/s/{store}/drafts`.
pub async fn create(
    State(st): State<AppState>,
    Path(store): Path<String>,
    Posted(s, f): Posted<Vec<(String, String)>>,
) -> Response {
    let name = one(&f, "name").filter(|n| !n.trim().is_empty());
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.clone());
    let req = NewDraftRequest {
        name: name.map(|n| n.trim().to_string()),
        at: None,
    };
    match run(move || ops.create_draft(&p, &st2, &req)).await {
        Ok(v) => {
            st.console.flash(&s, format!("Made draft {}.", v.name));
            Redirect::to(&draft_url(&v.name, "")).into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

/// The first value of `key` in a posted form.
fn one(f: &[(String, String)], key: &str) -> Option<String> {
    f.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn letter(c: &DraftChange) -> Markup {
    let kind = match c.change {
        "added" => "info",
        "deleted" => "warn",
        _ => "plain",
    };
    badge(c.change, kind)
}

/// One side's changes, each with its diff.
fn changes(list: &[DraftChange], side: &str) -> Markup {
    html! {
        @if list.is_empty() {
            p.note { "No changes." }
        } @else {
            ul.changes {
                @for c in list {
                    li {
                        (letter(c)) " "
                        @if let Some(f) = &c.from { code { (f) } " → " }
                        code { (c.path) }
                        @if c.kind != "file" { " (" (c.kind) ")" }
                        @if let Some(d) = &c.diff {
                            (diff_table(d, &format!("{side}: {}", c.path)))
                        }
                    }
                }
            }
        }
    }
}

fn actions_table(actions: &[Action], caption: &str) -> Markup {
    html! {
        @if actions.is_empty() {
            p.note { "Nothing to apply." }
        } @else {
            div.scroll {
                table.list {
                    caption.vh { (caption) }
                    thead { tr { th scope="col" { "Path" } th scope="col" { "Change" } th scope="col" { "How" } } }
                    tbody {
                        @for a in actions {
                            tr {
                                td { @if let Some(f) = &a.from { code { (f) } " → " } code { (a.path) } }
                                td { (a.action) " (" (a.kind) ")" }
                                td { @match a.how {
                                    "draft" => { "the draft's change, as it is" }
                                    "merged" => { "both sides' changes, merged" }
                                    "same" => { "made on both sides already" }
                                    other => { (other) }
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn conflicts_list(list: &[MergeConflict]) -> Markup {
    html! {
        @if !list.is_empty() {
            section.conflicts aria-label="Conflicts" {
                h2 { (list.len()) " conflict(s), left for a person" }
                p.hint {
                    "A merge with conflicts changes nothing, unless you ask it to merge the rest. "
                    "Resolve one by making the draft's file agree with the store's change, or leave the file out."
                }
                ul {
                    @for c in list {
                        li.conflict {
                            code { (c.path) } ": " (c.reason)
                            " (draft: " (c.draft) ", store: " (c.store) ")"
                            @for h in &c.hunks {
                                div.scroll {
                                    table.code aria-label=(format!("Conflict in {} at base lines {}-{}", c.path, h.base_start, h.base_end.saturating_sub(1))) {
                                        tbody {
                                            tr { th scope="row" { "base" } td.tx { pre { (h.base) } } }
                                            tr.del { th scope="row" { "draft" } td.tx { pre { (h.ours) } } }
                                            tr.ins { th scope="row" { "store" } td.tx { pre { (h.theirs) } } }
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

/// The form that previews (or applies) a merge, with a box per path.
fn merge_form(
    s: &Session,
    draft: &str,
    paths: &[String],
    chosen: &[String],
    apply: bool,
) -> Markup {
    let all = chosen.is_empty();
    html! {
        form method="post" action=(draft_url(draft, "merge")) .merge {
            (csrf(s))
            @if apply {
                input type="hidden" name="apply" value="1";
                @for p in chosen { input type="hidden" name="path" value=(p); }
                button type="submit" { "Apply this merge" }
            } @else {
                fieldset {
                    legend { "What to merge" }
                    @for (i, p) in paths.iter().enumerate() {
                        div.check {
                            input type="checkbox" id=(format!("path{i}")) name="path" value=(p) checked[all || chosen.contains(p)];
                            label for=(format!("path{i}")) { code { (p) } }
                        }
                    }
                }
                button type="submit" { "Preview the merge" }
                span.hint { "A preview changes nothing." }
            }
        }
    }
}

/// `GET /console/d/{draft}`.
pub async fn show(
    State(st): State<AppState>,
    Who(s): Who,
    Path(draft): Path<String>,
    h: HeaderMap,
) -> Response {
    let (ops, p, d2) = (st.ops.clone(), s.principal.clone(), draft.clone());
    let d = match run(move || ops.draft_diff(&p, &d2, true)).await {
        Ok(d) => d,
        Err(e) => return Fail::from(e).into_response(),
    };
    let flash = (!is_refresh(&h))
        .then(|| st.console.take_flash(&s))
        .flatten();
    let v = &d.draft;
    let paths: Vec<String> = d.draft_changes.iter().map(|c| c.path.clone()).collect();
    let body = html! {
        h1 { "Draft " code { (v.name) } }
        dl.facts {
            dt { "Draft of" } dd { a href=(store_url(&v.store, "", &[])) { (v.store) } " (" a href=(store_url(&v.store, "drafts", &[])) { "its drafts" } ")" }
            dt { "Base" } dd { time datetime=(v.base_at) { (v.base_at) } " (the store's audit entry " (v.base_audit) ")" }
            dt { "Made" } dd { time datetime=(v.created_at) { (v.created_at) } " by " (actor(&v.created_by.agent, &v.created_by.session, v.created_by.user.as_deref())) }
            dt { "Why" } dd { (why(v)) }
            dt { "Files" } dd { (v.files) ", " (v.versions) " version(s) of its own" }
            dt { "Its files" } dd { a href=(store_url(&v.name, "", &[])) { "browse the draft" } " · " a href=(format!("/console/log?{}", query(&[("store", &v.name)]))) { "its log" } }
        }
        section #draft data-live-region {
            h2 { "Changed in the draft (" (d.draft_changes.len()) ")" }
            (changes(&d.draft_changes, "draft"))
            h2 { "Changed in the store since the base (" (d.store_changes.len()) ")" }
            (changes(&d.store_changes, "store"))
            h2 { "Merging all of it would" }
            (actions_table(&d.plan, "What merging would do"))
            (conflicts_list(&d.conflicts))
            @if !paths.is_empty() {
                h2 { "Merge" }
                (merge_form(&s, &v.name, &paths, &[], false))
            }
        }
        h2 { "Discard" }
        form method="post" action=(draft_url(&v.name, "discard")) class="row" {
            (csrf(&s))
            input #confirm type="checkbox" name="confirm" value="yes" required;
            label for="confirm" { "Drop this draft and what only it wrote (the store keeps everything it has)" }
            button.danger type="submit" { "Discard " (v.name) }
        }
    };
    Frame::new(format!("Draft {draft}"), &s)
        .store(&v.store, "drafts")
        .flash(flash)
        .render(body)
        .into_response()
}

/// `POST /console/d/{draft}/merge`: without `apply`, a preview (dry run) with
/// the form that applies it; with it, the merge, then what it did.
pub async fn merge(
    State(st): State<AppState>,
    Path(draft): Path<String>,
    Posted(s, f): Posted<Vec<(String, String)>>,
) -> Response {
    let apply = one(&f, "apply").is_some_and(|v| v == "1");
    let chosen: Vec<String> = f
        .iter()
        .filter(|(k, _)| k == "path")
        .map(|(_, v)| v.trim_matches('/').to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let (ops, p, d2) = (st.ops.clone(), s.principal.clone(), draft.clone());
    let opts = MergeOptions {
        dry_run: !apply,
        paths: chosen.clone(),
        skip_conflicts: false,
    };
    let r: MergeReport = match run(move || ops.merge_draft(&p, &d2, &opts)).await {
        Ok(r) => r,
        Err(e) => return Fail::from(e).into_response(),
    };
    let status = if !r.refused.is_empty() {
        StatusCode::BAD_REQUEST
    } else if r.blocked && apply {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let c = &r.counts;
    let body = html! {
        h1 {
            @if r.merged { "Merged " } @else if apply { "Not merged: " } @else { "Merge preview: " }
            code { (r.draft) } " into " code { (r.store) }
        }
        @if !chosen.is_empty() {
            p { "Only: " @for (i, p) in chosen.iter().enumerate() { @if i > 0 { ", " } code { (p) } } }
        }
        @if !r.refused.is_empty() {
            p.problem role="alert" { "The store's rules refuse this merge, so nothing was merged:" }
            ul { @for x in &r.refused { li { code { (x.path) } ": " (x.reason) } } }
        } @else {
            p role="status" {
                (c.taken) " change(s) from the draft as it is, " (c.merged) " merged line by line, "
                (c.same) " already on both sides; " (c.conflicts) " conflict(s)."
            }
            (actions_table(&r.actions, "The merge's changes"))
            (conflicts_list(&r.conflicts))
            @if !r.authors.is_empty() {
                p { "Written in the draft by: "
                    @for (i, a) in r.authors.iter().enumerate() {
                        @if i > 0 { "; " }
                        (actor(&a.agent, &a.session, a.user.as_deref()))
                    }
                }
            }
            @if r.merged {
                @if let Some(sess) = &r.session {
                    p {
                        "Merged as session " a href=(session_url(sess)) { code { (sess) } }
                        ": its page undoes the whole merge as one unit (or "
                        code { "memfsctl rollback --session '" (sess) "'" } ")."
                    }
                }
                p { a href=(format!("/console/log?{}", query(&[("store", &r.store)]))) { "The store's history" } " · " a href=(draft_url(&r.draft, "")) { "Back to the draft" } }
            } @else if r.blocked {
                p.problem role="alert" { "A merge with conflicts changes nothing. Leave the conflicting files out (untick them), or resolve them in the draft first." }
                p { a href=(draft_url(&r.draft, "")) { "Back to the draft" } }
            } @else if r.actions.iter().all(|a| a.action == "none") {
                p.note { "Nothing to merge." }
            } @else if !apply {
                (merge_form(&s, &r.draft, &[], &chosen, true))
                p { a href=(draft_url(&r.draft, "")) { "Back to the draft" } }
            }
        }
    };
    let page = Frame::new(format!("Merge {draft}"), &s)
        .store(&r.store, "drafts")
        .render(body);
    (status, page).into_response()
}

/// `POST /console/d/{draft}/discard`.
pub async fn discard(
    State(st): State<AppState>,
    Path(draft): Path<String>,
    Posted(s, f): Posted<Vec<(String, String)>>,
) -> Response {
    if one(&f, "confirm").as_deref() != Some("yes") {
        return Fail::new(
            400,
            "Tick the box to confirm: a discarded draft cannot be brought back.",
        )
        .into_response();
    }
    let (ops, p, d2) = (st.ops.clone(), s.principal.clone(), draft.clone());
    match run(move || ops.discard_draft(&p, &d2)).await {
        Ok(v) => {
            st.console.flash(&s, format!("Discarded draft {}.", v.name));
            Redirect::to(&store_url(&v.store, "drafts", &[])).into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

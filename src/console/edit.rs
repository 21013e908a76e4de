//! Changing memory from the browser: edit (the form carries the SHA-256 of
//! the content it was loaded with, so a change made meanwhile is never
//! overwritten silently: the person sees it as a diff and merges, or
//! overwrites on purpose), create, rename and delete. Every change goes
//! through the operations core like an API write (policies, quotas, content
//! rules, write leases), credited to the signed-in person.

use super::auth::{run, Posted, Session, Who};
use super::browse::crumbs;
use super::page::{csrf, Fail, Frame};
use super::render::{diff_table, dir_of, file_url, store_url};
use crate::api::AppState;
use crate::error::OpError;
use crate::ids::VersionId;
use crate::ops::history::{diff_texts, Diff, Pick};
use crate::ops::memories::{memory_id, Memory, MemoryUpdate};
use crate::ops::merge3::{merge3, Merged};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// What an edit form holds.
struct Draft<'a> {
    store: &'a str,
    path: &'a str,
    memory: &'a str,
    /// The version and SHA-256 the text was loaded from (what a save expects).
    version: Option<i64>,
    sha: &'a str,
    text: &'a str,
    /// The loaded content used CRLF line ends (browsers send CRLF always).
    crlf: bool,
}

/// The text a browser sent, with the line ends the file uses: forms send
/// every line end as CRLF, which would otherwise rewrite every LF file.
fn line_ends(text: &str, crlf: bool) -> String {
    if crlf {
        text.to_string()
    } else {
        text.replace("\r\n", "\n")
    }
}

fn textarea(id: &str, text: &str, label: &str) -> Markup {
    // A textarea drops one newline right after its start tag: give it one,
    // so content that starts with a newline keeps it.
    html! {
        label for=(id) { (label) }
        textarea id=(id) name="content" rows="24" spellcheck="false" { "\n" (text) }
    }
}

fn edit_form(s: &Session, d: &Draft<'_>, submit: &str) -> Markup {
    html! {
        form method="post" action=(store_url(d.store, "edit", &[])) class="stack editor"
            data-watch-memory=(d.memory) data-watch-version=(d.version.map(|v| v.to_string()).unwrap_or_default()) {
            (csrf(s))
            input type="hidden" name="path" value=(d.path);
            input type="hidden" name="memory" value=(d.memory);
            input type="hidden" name="sha" value=(d.sha);
            input type="hidden" name="base" value=(d.version.map(|v| v.to_string()).unwrap_or_default());
            input type="hidden" name="crlf" value=(if d.crlf { "1" } else { "" });
            (textarea("content", d.text, "Content"))
            div.row {
                button type="submit" { (submit) }
                a href=(file_url(d.store, d.path)) { "Cancel" }
            }
        }
    }
}

fn changed_banner() -> Markup {
    html! {
        div #changed-banner.banner role="alert" hidden {
            strong { "This file changed since you opened it." }
            " " span #changed-detail {}
            " Saving will not overwrite it: you will see the other change first."
        }
    }
}

fn edit_page(s: &Session, d: &Draft<'_>, problem: Option<&str>) -> Markup {
    let body = html! {
        (crumbs(d.store, dir_of(d.path)))
        h1 { "Edit " code { (d.path) } }
        (changed_banner())
        @if let Some(p) = problem { p.problem role="alert" { (p) } }
        (edit_form(s, d, "Save"))
    };
    Frame::new(format!("Edit {}/{}", d.store, d.path), s)
        .store(d.store, "tree")
        .render(body)
}

#[derive(Deserialize)]
pub struct EditQuery {
    path: String,
    /// Start from this version's content instead of the head's.
    from: Option<i64>,
}

/// The file at `path` now, as a memory with its content.
fn load(
    ops: &crate::ops::Ops,
    p: &crate::ops::Principal,
    store: &str,
    path: &str,
) -> crate::error::OpResult<(String, Memory)> {
    let (row, _) = ops.store(p, store)?;
    let f = ops
        .live_file(p, store, path)?
        .ok_or_else(|| OpError::NotFound(format!("no file '{path}' in store '{store}'")))?;
    let m = ops.get_memory(p, &row.api_id, &memory_id(f.ino), true)?;
    Ok((row.api_id, m))
}

/// `GET /console/s/{store}/edit?path=[&from=]`.
pub async fn form(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<EditQuery>,
) -> Response {
    let path = q.path.trim_matches('/').to_string();
    let (ops, p, st2, path2) = (
        st.ops.clone(),
        s.principal.clone(),
        store.clone(),
        path.clone(),
    );
    let from = q.from;
    let got = run(move || {
        let (row, set) = ops.store(&p, &st2)?;
        p.require_write(&row, &set)?;
        let (_, m) = load(&ops, &p, &st2, &path2)?;
        let start = match from {
            Some(v) => {
                let c = ops.file_content(&p, &st2, &path2, &Pick::Version(VersionId(v)))?;
                Some(String::from_utf8(c.data).map_err(|_| {
                    OpError::Invalid("that version is not text: it cannot be edited here".into())
                })?)
            }
            None => None,
        };
        Ok((m, start))
    })
    .await;
    let (m, start) = match got {
        Ok(v) => v,
        Err(e) => return Fail::from(e).into_response(),
    };
    let Some(text) = start.or(m.content.clone()) else {
        return Fail::new(
            400,
            "This file is binary or too large to edit in the browser; download it instead.",
        )
        .into_response();
    };
    let sha = crate::digest::hex(&m.sha256);
    let mem = memory_id(m.ino);
    let d = Draft {
        store: &store,
        path: &path,
        memory: &mem,
        version: m.version.map(|v| v.0),
        sha: &sha,
        crlf: text.contains("\r\n"),
        text: &text,
    };
    edit_page(&s, &d, None).into_response()
}

#[derive(Deserialize)]
pub struct SaveForm {
    path: String,
    memory: String,
    sha: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    crlf: String,
    content: String,
}

/// `POST /console/s/{store}/edit`: saves if the file still has the content
/// the form was loaded with; otherwise shows the conflict.
pub async fn save(
    State(st): State<AppState>,
    Path(store): Path<String>,
    Posted(s, f): Posted<SaveForm>,
) -> Response {
    let text = line_ends(&f.content, !f.crlf.is_empty());
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.clone());
    let (mem, sha, t2) = (f.memory.clone(), f.sha.clone(), text.clone());
    let saved = run(move || {
        let (row, _) = ops.store(&p, &st2)?;
        let u = MemoryUpdate {
            path: None,
            content: Some(t2),
            expect_sha256: Some(sha),
        };
        ops.update_memory(&p, &row.api_id, &mem, &u, false)
    })
    .await;
    match saved {
        Ok(m) => {
            let at = m.path.trim_start_matches('/').to_string();
            st.console.flash(
                &s,
                match m.version {
                    Some(v) => format!("Saved: version {} of {at}.", v.0),
                    None => format!("Saved {at}."),
                },
            );
            Redirect::to(&file_url(&store, &at)).into_response()
        }
        Err(OpError::Precondition(_)) => conflict(&st, &s, &store, &f, &text).await,
        Err(e) => {
            // Keep the person's text: show the form again with what went wrong.
            let fail = Fail::from(e);
            let base = f.base.parse::<i64>().ok();
            let d = Draft {
                store: &store,
                path: &f.path,
                memory: &f.memory,
                version: base,
                sha: &f.sha,
                text: &text,
                crlf: !f.crlf.is_empty(),
            };
            let status = StatusCode::from_u16(fail.status).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                edit_page(&s, &d, Some(&format!("Not saved: {}", fail.message))),
            )
                .into_response()
        }
    }
}

/// The conflict page: what changed meanwhile (from the version the form was
/// loaded with to the content now), how the person's text differs from the
/// content now, and the two ways on: save a merged text, or overwrite.
async fn conflict(st: &AppState, s: &Session, store: &str, f: &SaveForm, mine: &str) -> Response {
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.to_string());
    let (mem, base) = (f.memory.clone(), f.base.parse::<i64>().ok());
    let got = run(move || {
        let (row, _) = ops.store(&p, &st2)?;
        let now = ops.get_memory(&p, &row.api_id, &mem, true)?;
        let rel = now.path.trim_start_matches('/').to_string();
        let theirs: Option<Diff> = match base {
            Some(b) => Some(ops.diff(&p, &st2, &rel, VersionId(b), None)?),
            None => None,
        };
        // The text both started from, for a three-way merge.
        let base_text = match base {
            Some(b) => {
                let c = ops.file_content(&p, &st2, &rel, &Pick::Version(VersionId(b)))?;
                Some(String::from_utf8_lossy(&c.data).into_owned())
            }
            None => None,
        };
        let who = match now.version {
            Some(v) => {
                let h = ops.file_history(&p, &st2, &rel)?;
                h.versions.into_iter().find(|x| x.version.id == v)
            }
            None => None,
        };
        Ok((now, theirs, who, base_text))
    })
    .await;
    let (now, theirs, who, base_text) = match got {
        Ok(v) => v,
        Err(OpError::NotFound(_)) => return gone(s, store, f, mine),
        Err(e) => return Fail::from(e).into_response(),
    };
    let current = now.content.clone().unwrap_or_default();
    let (_, hunks) = diff_texts(current.as_bytes(), mine.as_bytes(), "now", "yours");
    let yours = Diff {
        from: now.version,
        to: None,
        same: current == mine,
        binary: false,
        diff: String::new(),
        hunks,
    };
    let sha = crate::digest::hex(&now.sha256);
    let rel = now.path.trim_start_matches('/').to_string();
    // Offer the three-way merge of both changes: clean where they do not
    // touch, with conflict markers where they do. The person checks it.
    let merged = base_text.map(|b| merge3(&b, mine, &current));
    let (text, merge_note) = match &merged {
        Some(Merged::Clean(t)) => (
            t.as_str(),
            "Your change and theirs do not touch: the text below holds both. Check it, then save.".to_string(),
        ),
        Some(Merged::Conflicts(t, cs)) => (
            t.as_str(),
            format!(
                "Your change and theirs touch in {} place{}, marked <<<<<<< ours / ======= / >>>>>>> theirs below. Keep what is right, remove the markers, then save.",
                cs.len(),
                if cs.len() == 1 { "" } else { "s" }
            ),
        ),
        None => (
            mine,
            "Edit your text to keep what you need of their change, then save. It will be checked against the content now.".to_string(),
        ),
    };
    let d = Draft {
        store,
        path: &rel,
        memory: &f.memory,
        version: now.version.map(|v| v.0),
        sha: &sha,
        text,
        crlf: !f.crlf.is_empty(),
    };
    let body = html! {
        (crumbs(store, dir_of(&rel)))
        h1 { "Not saved: " code { (rel) } " changed while you edited it" }
        p.problem role="alert" {
            "Someone else saved this file after you opened it"
            @if let Some(w) = &who {
                " (version " (w.version.id.0) ", "
                (super::render::actor(&w.version.agent, &w.version.session, w.version.user.as_deref()))
                ")"
            }
            ". Nothing was overwritten. Merge their change into your text below, or overwrite it on purpose."
        }
        section {
            h2 { "Their change" }
            @if let Some(t) = &theirs {
                p.hint { "From the version you opened (" (base.map(|b| b.to_string()).unwrap_or_default()) ") to the content now." }
                (diff_table(t, "Their change"))
            } @else { p.note { "The file had no content when you opened it." } }
            h2 { "Your text compared with the content now" }
            (diff_table(&yours, "Your text against the content now"))
        }
        section {
            h2 { "Merge" }
            p.hint { (merge_note) }
            (edit_form(s, &d, "Save merged text"))
        }
        section {
            h2 { "Or overwrite" }
            form method="post" action=(store_url(store, "edit", &[])) class="row" {
                (csrf(s))
                input type="hidden" name="path" value=(rel);
                input type="hidden" name="memory" value=(f.memory);
                input type="hidden" name="sha" value=(sha);
                input type="hidden" name="base" value=(d.version.map(|v| v.to_string()).unwrap_or_default());
                input type="hidden" name="crlf" value=(if d.crlf { "1" } else { "" });
                input type="hidden" name="content" value=(mine);
                button.danger type="submit" { "Overwrite their change with my text" }
            }
            p { a href=(file_url(store, &rel)) { "Discard my edit and keep theirs" } }
        }
    };
    let page = Frame::new(format!("Conflict in {store}/{rel}"), s)
        .store(store, "tree")
        .render(body);
    (StatusCode::CONFLICT, page).into_response()
}

/// The file was deleted (or is no longer visible) while being edited: the
/// person's text, and a way to create it again.
fn gone(s: &Session, store: &str, f: &SaveForm, mine: &str) -> Response {
    let body = html! {
        h1 { "Not saved: " code { (f.path) } " was deleted while you edited it" }
        p.problem role="alert" { "Nothing was written. Your text is below; you can create the file again with it." }
        (new_form_markup(s, store, &f.path, mine, None))
    };
    let page = Frame::new("File deleted meanwhile", s)
        .store(store, "tree")
        .render(body);
    (StatusCode::CONFLICT, page).into_response()
}

fn new_form_markup(
    s: &Session,
    store: &str,
    path: &str,
    text: &str,
    problem: Option<&str>,
) -> Markup {
    html! {
        @if let Some(p) = problem { p.problem role="alert" { (p) } }
        form method="post" action=(store_url(store, "new", &[])) class="stack" {
            (csrf(s))
            label for="path" { "Path in the store" }
            input #path name="path" value=(path) required aria-describedby="path-hint";
            span #path-hint.hint { "For example notes/decisions.md; missing directories are made." }
            (textarea("content", text, "Content"))
            div.row { button type="submit" { "Create" } }
        }
    }
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    dir: String,
}

/// `GET /console/s/{store}/new?dir=`.
pub async fn new_form(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<NewQuery>,
) -> Response {
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.clone());
    if let Err(e) = run(move || {
        let (row, set) = ops.store(&p, &st2)?;
        p.require_write(&row, &set)
    })
    .await
    {
        return Fail::from(e).into_response();
    }
    let dir = q.dir.trim_matches('/');
    let start = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let body = html! {
        (crumbs(&store, dir))
        h1 { "New file" }
        (new_form_markup(&s, &store, &start, "", None))
    };
    Frame::new("New file", &s)
        .store(&store, "tree")
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct CreateForm {
    path: String,
    content: String,
}

/// `POST /console/s/{store}/new`.
pub async fn create(
    State(st): State<AppState>,
    Path(store): Path<String>,
    Posted(s, f): Posted<CreateForm>,
) -> Response {
    let text = line_ends(&f.content, false);
    let rel = f.path.trim().trim_matches('/').to_string();
    let (ops, p, st2, t2, r2) = (
        st.ops.clone(),
        s.principal.clone(),
        store.clone(),
        text.clone(),
        rel.clone(),
    );
    let made = run(move || {
        let (row, _) = ops.store(&p, &st2)?;
        ops.create_memory(&p, &row.api_id, &format!("/{r2}"), &t2, false)
    })
    .await;
    match made {
        Ok(_) => {
            st.console.flash(&s, format!("Created {rel}."));
            Redirect::to(&file_url(&store, &rel)).into_response()
        }
        Err(e) => {
            let fail = Fail::from(e);
            let body = html! {
                h1 { "New file" }
                (new_form_markup(&s, &store, &rel, &text, Some(&format!("Not created: {}", fail.message))))
            };
            let status = StatusCode::from_u16(fail.status).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                Frame::new("New file", &s)
                    .store(&store, "tree")
                    .render(body),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    path: String,
    new_path: String,
    sha: String,
}

/// `POST /console/s/{store}/rename`.
pub async fn rename(
    State(st): State<AppState>,
    Path(store): Path<String>,
    Posted(s, f): Posted<RenameForm>,
) -> Response {
    let to = f.new_path.trim().trim_matches('/').to_string();
    let (ops, p, st2, to2) = (
        st.ops.clone(),
        s.principal.clone(),
        store.clone(),
        to.clone(),
    );
    let path = f.path.trim_matches('/').to_string();
    let done = run(move || {
        let (api, m) = load(&ops, &p, &st2, &path)?;
        let u = MemoryUpdate {
            path: Some(format!("/{to2}")),
            content: None,
            expect_sha256: Some(f.sha),
        };
        ops.update_memory(&p, &api, &memory_id(m.ino), &u, false)
    })
    .await;
    match done {
        Ok(_) => {
            st.console.flash(&s, format!("Renamed to {to}."));
            Redirect::to(&file_url(&store, &to)).into_response()
        }
        Err(OpError::Precondition(_)) => Fail::new(
            409,
            "Not renamed: the file changed since you loaded the page. Look at it again first.",
        )
        .into_response(),
        Err(e) => Fail::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    path: String,
    sha: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/s/{store}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    Path(store): Path<String>,
    Posted(s, f): Posted<DeleteForm>,
) -> Response {
    if f.confirm != "yes" {
        return Fail::new(400, "Tick the box to confirm the delete.").into_response();
    }
    let path = f.path.trim_matches('/').to_string();
    let (ops, p, st2, p2) = (
        st.ops.clone(),
        s.principal.clone(),
        store.clone(),
        path.clone(),
    );
    let done = run(move || {
        let (api, m) = load(&ops, &p, &st2, &p2)?;
        ops.delete_memory(&p, &api, &memory_id(m.ino), Some(&f.sha))
    })
    .await;
    match done {
        Ok(()) => {
            st.console
                .flash(&s, format!("Deleted {path}; its history stays."));
            Redirect::to(&store_url(&store, "", &[("dir", dir_of(&path))])).into_response()
        }
        Err(OpError::Precondition(_)) => Fail::new(
            409,
            "Not deleted: the file changed since you loaded the page. Look at it again first.",
        )
        .into_response(),
        Err(e) => Fail::from(e).into_response(),
    }
}

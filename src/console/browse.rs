//! Browsing a store: its tree, directory by directory, and a file with line
//! numbers, size, SHA-256, version count and current write lease (at its
//! head, or at any version), and downloading a file's bytes.

use super::auth::{run, Who};
use super::page::{csrf, Fail, Frame};
use super::render::{self, dir_of, file_url, numbered, size, store_url, time};
use super::stores::is_refresh;
use crate::api::AppState;
use crate::ids::VersionId;
use crate::ops::history::Pick;
use crate::ops::memories::{memory_id, Item, MemoryQuery};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// Entries shown per directory page.
const PAGE: i64 = 100;

#[derive(Deserialize)]
pub struct TreeQuery {
    #[serde(default)]
    dir: String,
    page: Option<String>,
}

/// Links to each directory above `dir`.
pub fn crumbs(store: &str, dir: &str) -> Markup {
    let mut links: Vec<(String, String)> = Vec::new();
    let mut acc = String::new();
    for p in dir.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(p);
        links.push((p.to_string(), acc.clone()));
    }
    html! {
        nav.crumbs aria-label="Directory" {
            a href=(store_url(store, "", &[])) { (store) }
            @for (name, to) in &links {
                " / " a href=(store_url(store, "", &[("dir", to)])) { (name) }
            }
        }
    }
}

/// `GET /console/s/{store}?dir=`.
pub async fn tree(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<TreeQuery>,
    h: HeaderMap,
) -> Response {
    let dir = q.dir.trim_matches('/').to_string();
    let prefix = if dir.is_empty() {
        "/".to_string()
    } else {
        format!("/{dir}/")
    };
    let (ops, p, st2) = (st.ops.clone(), s.principal.clone(), store.clone());
    let page = q.page.clone();
    let got = run(move || {
        let (row, set) = ops.store(&p, &st2)?;
        let items = ops.list_memories(
            &p,
            &row.api_id,
            &MemoryQuery {
                path_prefix: Some(prefix),
                depth: Some(1),
                limit: Some(PAGE),
                page,
                full: false,
            },
        )?;
        let writable = p.may_write(&row, &set) && !row.archived;
        Ok((row, items, writable))
    })
    .await;
    let (row, items, writable) = match got {
        Ok(v) => v,
        Err(e) => return Fail::from(e).into_response(),
    };
    let flash = (!is_refresh(&h))
        .then(|| st.console.take_flash(&s))
        .flatten();
    let name = row.name.clone();
    let body = html! {
        h1 { "Files" }
        (crumbs(&name, &dir))
        @if row.archived { p.note { "This store is archived: it is read-only for everyone." } }
        @if writable {
            p { a.button href=(store_url(&name, "new", &[("dir", &dir)])) { "New file here" } }
        }
        section #tree data-live-region {
            @if items.data.is_empty() {
                p.note { "No files here yet." }
            } @else {
                div.scroll {
                    table.list {
                        caption.vh { "Files and directories" }
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" class="num" { "Size" }
                            th scope="col" { "Last change" } th scope="col" class="num" { "Version" }
                        } }
                        tbody {
                            @for it in &items.data {
                                @match it {
                                    Item::Prefix(pp) => {
                                        @let rel = pp.trim_matches('/');
                                        tr {
                                            td { a.dir href=(store_url(&name, "", &[("dir", rel)])) { (rel.rsplit('/').next().unwrap_or(rel)) "/" } }
                                            td.num { "—" } td { "—" } td.num { "—" }
                                        }
                                    }
                                    Item::Memory(m) => {
                                        @let rel = m.path.trim_start_matches('/');
                                        tr {
                                            td { a href=(file_url(&name, rel)) { (rel.rsplit('/').next().unwrap_or(rel)) } }
                                            td.num { (size(m.size)) }
                                            td { (time(m.updated_ns)) }
                                            td.num { @if let Some(v) = m.version { a href=(render::version_url(&name, v.0)) { (v.0) } } @else { "—" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &items.next_page {
                    p { a href=(store_url(&name, "", &[("dir", &dir), ("page", next)])) { "More entries →" } }
                }
            }
        }
    };
    Frame::new(format!("{name}/{dir}"), &s)
        .store(&store, "tree")
        .flash(flash)
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct FileQuery {
    pub path: String,
    pub version: Option<i64>,
}

/// `GET /console/s/{store}/file?path=[&version=]`.
pub async fn file(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<FileQuery>,
    h: HeaderMap,
) -> Response {
    let path = q.path.trim_matches('/').to_string();
    let (ops, p, st2, path2) = (
        st.ops.clone(),
        s.principal.clone(),
        store.clone(),
        path.clone(),
    );
    let at = q.version;
    let got = run(move || {
        let (row, set) = ops.store(&p, &st2)?;
        let pick = at.map_or(Pick::Head, |v| Pick::Version(VersionId(v)));
        let content = ops.file_content(&p, &st2, &path2, &pick)?;
        let live = ops
            .live_file(&p, &st2, &path2)?
            .is_some_and(|f| f.ino == content.file.ino);
        let history = ops.file_history(&p, &st2, &path2)?;
        let head = if live {
            Some(ops.get_memory(&p, &row.api_id, &memory_id(content.file.ino), false)?)
        } else {
            None
        };
        let lease = ops
            .list_leases(&p)?
            .into_iter()
            .find(|l| l.store == row.name && l.path.as_deref() == Some(path2.as_str()));
        let writable = p.may_write(&row, &set) && !row.archived;
        Ok((row, content, history, head, lease, writable))
    })
    .await;
    let (row, content, history, head, lease, writable) = match got {
        Ok(v) => v,
        Err(e) => return Fail::from(e).into_response(),
    };
    let flash = (!is_refresh(&h))
        .then(|| st.console.take_flash(&s))
        .flatten();
    let name = row.name.clone();
    let at_head =
        q.version.is_none() || head.as_ref().and_then(|m| m.version).map(|v| v.0) == q.version;
    let text = std::str::from_utf8(&content.data).ok();
    let sha = match (&content.version, &head) {
        (_, Some(m)) if at_head => Some(crate::digest::hex(&m.sha256)),
        (Some(v), _) => v.sha256.clone(),
        _ => None,
    };
    let body = html! {
        (crumbs(&name, dir_of(&path)))
        h1 { code { (path.rsplit('/').next().unwrap_or(&path)) } }
        @if head.is_none() {
            p.note role="status" { "This file does not exist any more; this is its last content." }
        } @else if !at_head {
            p.note role="status" {
                "You are looking at an older version. "
                a href=(file_url(&name, &path)) { "See the current content" }
            }
        }
        section #file data-live-region {
            dl.meta {
                dt { "Size" } dd { (size(content.data.len() as u64)) " (" (content.data.len()) " bytes)" }
                dt { "SHA-256" } dd { code.hash { (sha.as_deref().unwrap_or("—")) } }
                dt { "Version" } dd {
                    @if let Some(v) = &content.version {
                        a href=(render::version_url(&name, v.id.0)) { (v.id.0) } " · " (time(v.at_ns)) " · "
                        (render::actor(&v.agent, &v.session, v.user.as_deref()))
                    } @else { "none (empty)" }
                }
                dt { "Versions" } dd { a href=(store_url(&name, "history", &[("path", &path)])) { (history.versions.len()) " in its history" } }
                dt { "Write lease" } dd {
                    @if let Some(l) = &lease {
                        "held by agent " strong { (l.agent) } ", session " code { (l.session) }
                        " (open for writing in a mount; expires " (l.expires) ")"
                    } @else { "none" }
                }
            }
            @if let Some(t) = text {
                @if t.is_empty() { p.note { "(empty)" } } @else { (numbered(t)) }
            } @else {
                p.note { "Binary content: not shown. " }
            }
        }
        p.actions {
            a.button href=(store_url(&name, "raw", &[("path", &path), ("version", &content.version.as_ref().map(|v| v.id.0.to_string()).unwrap_or_default())])) { "Download" }
            " "
            a.button href=(store_url(&name, "history", &[("path", &path)])) { "History" }
            @if writable && head.is_some() {
                " "
                @if at_head {
                    a.button href=(store_url(&name, "edit", &[("path", &path)])) { "Edit" }
                } @else if let Some(v) = &content.version {
                    a.button href=(store_url(&name, "edit", &[("path", &path), ("from", &v.id.0.to_string())])) { "Edit from this version" }
                }
            }
            @if s.is_admin() && head.is_some() {
                " "
                a.button.danger href=(format!("/console/admin/purge?{}", render::query(&[("store", &name), ("path", &path)]))) { "Purge…" }
            }
        }
        @if writable && at_head {
            @if let Some(m) = &head {
                @let sha = crate::digest::hex(&m.sha256);
                section {
                    h2 { "Rename or move" }
                    form method="post" action=(store_url(&name, "rename", &[])) class="row" {
                        (csrf(&s))
                        input type="hidden" name="path" value=(path);
                        input type="hidden" name="sha" value=(sha);
                        label for="new_path" { "New path" }
                        input #new_path name="new_path" value=(path) required;
                        button type="submit" { "Rename" }
                    }
                    h2 { "Delete" }
                    form method="post" action=(store_url(&name, "delete", &[])) class="row" {
                        (csrf(&s))
                        input type="hidden" name="path" value=(path);
                        input type="hidden" name="sha" value=(sha);
                        input #confirm-delete type="checkbox" name="confirm" value="yes" required;
                        label for="confirm-delete" { "Delete this file (its history stays)" }
                        button.danger type="submit" { "Delete" }
                    }
                }
            }
        }
    };
    Frame::new(format!("{name}/{path}"), &s)
        .store(&store, "tree")
        .flash(flash)
        .render(body)
        .into_response()
}

/// `GET /console/s/{store}/raw?path=[&version=]`: the bytes, as a download
/// (never rendered by the browser).
pub async fn raw(
    State(st): State<AppState>,
    Who(s): Who,
    Path(store): Path<String>,
    Query(q): Query<FileQuery>,
) -> Response {
    let path = q.path.trim_matches('/').to_string();
    let (ops, p, path2) = (st.ops.clone(), s.principal.clone(), path.clone());
    let pick = q
        .version
        .map_or(Pick::Head, |v| Pick::Version(VersionId(v)));
    let got = run(move || ops.file_content(&p, &store, &path2, &pick)).await;
    let content = match got {
        Ok(c) => c,
        Err(e) => return Fail::from(e).into_response(),
    };
    let base = path.rsplit('/').next().unwrap_or("file");
    // The name as plain ASCII (quoted) plus its UTF-8 form (RFC 6266).
    let ascii: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let utf8 = render::query(&[("x", base)]);
    let utf8 = utf8.trim_start_matches("x=").replace('+', "%20");
    let disp = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{utf8}");
    let mut r = content.data.into_response();
    let hd = r.headers_mut();
    hd.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&disp) {
        hd.insert(header::CONTENT_DISPOSITION, v);
    } else {
        hd.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    r
}

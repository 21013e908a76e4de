//! Administration: redacting a version, purging a file and forgetting a user
//! (each irreversible, each behind a typed confirmation), and API keys
//! (create, with the secret shown once; list; revoke). The operations core
//! refuses all of it to anyone but an admin.

use super::auth::{run, Posted, Who};
use super::page::{csrf, Fail, Frame};
use super::render::{actor, file_url, size, store_url, time};
use crate::api::AppState;
use crate::ids::VersionId;
use crate::ops::keys::NewKey;
use crate::ops::removal::scrub_problem;
use crate::ops::Role;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

fn confirm_field(expected: &str, what: &str) -> Markup {
    html! {
        div.field {
            label for="confirm" { "Type " code { (expected) } " to confirm " (what) }
            input #confirm name="confirm" required autocomplete="off" spellcheck="false";
        }
    }
}

fn refused_confirmation(expected: &str) -> Response {
    Fail::new(
        400,
        format!("Nothing was done: the confirmation did not match (type {expected} exactly)."),
    )
    .into_response()
}

/// `GET /console/admin`.
pub async fn admin(State(st): State<AppState>, Who(s): Who) -> Response {
    let (ops, p) = (st.ops.clone(), s.principal.clone());
    let keys = match run(move || ops.list_keys(&p)).await {
        Ok(k) => k,
        Err(e) => return Fail::from(e).into_response(),
    };
    let flash = st.console.take_flash(&s);
    let body = html! {
        h1 { "Admin" }
        section {
            h2 { "API keys" }
            div.scroll {
                table.list {
                    caption.vh { "API keys (their secrets are never shown again)" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Role" }
                        th scope="col" { "Agent" } th scope="col" { "User" } th scope="col" { "Stores" }
                        th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "State" }
                    } }
                    tbody {
                        @for k in &keys {
                            tr {
                                td { (k.name) } td { code { (k.id) } } td { (k.role) } td { (k.agent) }
                                td { (k.user.as_deref().unwrap_or("—")) }
                                td { (k.stores.as_ref().map(|s| s.join(", ")).unwrap_or_else(|| "all it may see".into())) }
                                td { (time(k.created_ns)) }
                                td { @if let Some(t) = k.last_used_ns { (time(t)) } @else { "never" } }
                                td {
                                    @if let Some(t) = k.revoked_ns { "revoked " (time(t)) } @else {
                                        form method="post" action="/console/admin/keys/revoke" class="inline" {
                                            (csrf(&s))
                                            input type="hidden" name="id" value=(k.id);
                                            button.danger type="submit" aria-label=(format!("Revoke key {}", k.name)) { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Create a key" }
            form method="post" action="/console/admin/keys" class="fields" {
                (csrf(&s))
                div.field { label for="kname" { "Name" } input #kname name="name" required; }
                div.field {
                    label for="krole" { "Role" }
                    select #krole name="role" {
                        option value="reader" { "reader" } option value="writer" { "writer" } option value="admin" { "admin" }
                    }
                }
                div.field { label for="kuser" { "User (their private stores)" } input #kuser name="user"; }
                div.field { label for="kagent" { "Agent (default: the name)" } input #kagent name="agent"; }
                div.field { label for="kstores" { "Limit to stores (comma-separated)" } input #kstores name="stores"; }
                div { button type="submit" { "Create key" } }
            }
        }
        section {
            h2 { "Forget a user" }
            p { "Deletes every store the user owns, with all versions, and seals those stores' audit entries. It cannot be undone." }
            form method="post" action="/console/admin/forget" class="fields" {
                (csrf(&s))
                div.field { label for="fuser" { "User" } input #fuser name="user" required autocomplete="off"; }
                div.field { label for="fconfirm" { "Type the user's name again to confirm" } input #fconfirm name="confirm" required autocomplete="off"; }
                div { button.danger type="submit" { "Forget this user" } }
            }
        }
        section {
            h2 { "Redact and purge" }
            p { "Redact a version from a file's history (Redact… next to it); purge a file from its page (Purge…)." }
        }
    };
    Frame::new("Admin", &s)
        .current("admin")
        .flash(flash)
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct KeyForm {
    name: String,
    role: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    stores: String,
}

/// `POST /console/admin/keys`: shows the new secret, this once.
pub async fn create_key(State(st): State<AppState>, Posted(s, f): Posted<KeyForm>) -> Response {
    let role = match Role::parse(f.role.trim()) {
        Ok(r) => r,
        Err(e) => return Fail::from(e).into_response(),
    };
    let nk = NewKey {
        name: f.name.trim().to_string(),
        user: Some(f.user.trim().to_string()).filter(|u| !u.is_empty()),
        agent: Some(f.agent.trim().to_string()).filter(|a| !a.is_empty()),
        role,
        stores: f
            .stores
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
    };
    let (ops, p) = (st.ops.clone(), s.principal.clone());
    let k = match run(move || ops.create_key(&p, &nk)).await {
        Ok(k) => k,
        Err(e) => return Fail::from(e).into_response(),
    };
    let body = html! {
        h1 { "Key " (k.row.name) " created" }
        p.flash role="status" { "Copy the secret now: it is shown this once, and only its hash is kept." }
        div.field {
            label for="secret" { "Secret of " code { (k.row.id) } }
            input #secret readonly value=(k.key) size="72";
        }
        p { a href="/console/admin" { "Back to admin" } }
    };
    Frame::new("Key created", &s)
        .current("admin")
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct RevokeForm {
    id: String,
}

/// `POST /console/admin/keys/revoke`.
pub async fn revoke_key(State(st): State<AppState>, Posted(s, f): Posted<RevokeForm>) -> Response {
    let (ops, p, id) = (st.ops.clone(), s.principal.clone(), f.id.clone());
    match run(move || ops.revoke_key(&p, &id)).await {
        Ok(k) => {
            st.console.end_key_sessions(&k.id);
            st.console
                .flash(&s, format!("Revoked key {} ({}).", k.name, k.id));
            Redirect::to("/console/admin").into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct RedactQuery {
    store: String,
    path: String,
    version: i64,
}

/// `GET /console/admin/redact?store=&path=&version=`: what would go, and
/// the typed confirmation.
pub async fn redact_form(
    State(st): State<AppState>,
    Who(s): Who,
    Query(q): Query<RedactQuery>,
) -> Response {
    if let Err(e) = s.principal.require_admin("redact versions") {
        return Fail::from(e).into_response();
    }
    let (ops, p, store, v) = (
        st.ops.clone(),
        s.principal.clone(),
        q.store.clone(),
        q.version,
    );
    let c = match run(move || ops.version_change(&p, &store, VersionId(v))).await {
        Ok(c) => c,
        Err(e) => return Fail::from(e).into_response(),
    };
    let expected = q.version.to_string();
    let body = html! {
        h1 { "Redact version " (q.version) " of " code { (q.store) "/" (q.path) } }
        dl.meta {
            dt { "Written" } dd { (time(c.version.at_ns)) " by " (actor(&c.version.agent, &c.version.session, c.version.user.as_deref())) }
            dt { "Size" } dd { (size(c.version.size)) }
        }
        p.problem {
            "Redacting removes this version's content, hash, size and path from the database for good. "
            "Who wrote it and when stay in the history as a tombstone. It cannot be undone."
        }
        form method="post" action="/console/admin/redact" class="stack" {
            (csrf(&s))
            input type="hidden" name="store" value=(q.store);
            input type="hidden" name="path" value=(q.path);
            input type="hidden" name="version" value=(q.version);
            (confirm_field(&expected, "the redaction"))
            div.row {
                button.danger type="submit" { "Redact for good" }
                a href=(store_url(&q.store, "history", &[("path", &q.path)])) { "Cancel" }
            }
        }
    };
    Frame::new("Redact a version", &s)
        .store(&q.store, "tree")
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct RedactForm {
    store: String,
    path: String,
    version: i64,
    confirm: String,
}

/// `POST /console/admin/redact`.
pub async fn redact(State(st): State<AppState>, Posted(s, f): Posted<RedactForm>) -> Response {
    let expected = f.version.to_string();
    if f.confirm.trim() != expected {
        return refused_confirmation(&expected);
    }
    let (ops, p, store, v) = (
        st.ops.clone(),
        s.principal.clone(),
        f.store.clone(),
        f.version,
    );
    let done = run(move || {
        // The version must be one of this store's, as the page said.
        ops.version_change(&p, &store, VersionId(v))?;
        ops.redact(&p, VersionId(v))
    })
    .await;
    match done {
        Ok(r) => {
            let mut msg = format!(
                "Redacted version {}: its content is gone for good.",
                f.version
            );
            if let Some(problem) = scrub_problem(&r.scrub) {
                msg.push(' ');
                msg.push_str(&problem);
            }
            st.console.flash(&s, msg);
            Redirect::to(&store_url(&f.store, "history", &[("path", &f.path)])).into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct PurgeQuery {
    store: String,
    path: String,
}

/// `GET /console/admin/purge?store=&path=`: the plan and the confirmation.
pub async fn purge_form(
    State(st): State<AppState>,
    Who(s): Who,
    Query(q): Query<PurgeQuery>,
) -> Response {
    let (ops, p, store, path) = (
        st.ops.clone(),
        s.principal.clone(),
        q.store.clone(),
        q.path.clone(),
    );
    let plan = match run(move || ops.purge_plan(&p, &store, &path)).await {
        Ok(pl) => pl,
        Err(e) => return Fail::from(e).into_response(),
    };
    let body = html! {
        h1 { "Purge " code { (plan.store) "/" (plan.path) } }
        p.problem {
            "Purging removes the file and all " (plan.versions.len()) " of its versions from the database for good "
            "(who changed it and when stay in the audit log). It cannot be undone."
        }
        form method="post" action="/console/admin/purge" class="stack" {
            (csrf(&s))
            input type="hidden" name="store" value=(plan.store);
            input type="hidden" name="path" value=(plan.path);
            (confirm_field(&plan.path, "the purge"))
            div.row {
                button.danger type="submit" { "Purge for good" }
                a href=(file_url(&plan.store, &plan.path)) { "Cancel" }
            }
        }
    };
    Frame::new("Purge a file", &s)
        .store(&q.store, "tree")
        .render(body)
        .into_response()
}

#[derive(Deserialize)]
pub struct PurgeForm {
    store: String,
    path: String,
    confirm: String,
}

/// `POST /console/admin/purge`.
pub async fn purge(State(st): State<AppState>, Posted(s, f): Posted<PurgeForm>) -> Response {
    if f.confirm.trim() != f.path {
        return refused_confirmation(&f.path);
    }
    let (ops, p, store, path) = (
        st.ops.clone(),
        s.principal.clone(),
        f.store.clone(),
        f.path.clone(),
    );
    match run(move || ops.purge(&p, &store, &path)).await {
        Ok(r) => {
            let mut msg = format!("Purged {}/{}.", r.store, r.path);
            if let Some(problem) = scrub_problem(&r.scrub) {
                msg.push(' ');
                msg.push_str(&problem);
            }
            st.console.flash(&s, msg);
            Redirect::to(&store_url(&f.store, "", &[])).into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ForgetForm {
    user: String,
    confirm: String,
}

/// `POST /console/admin/forget`.
pub async fn forget(State(st): State<AppState>, Posted(s, f): Posted<ForgetForm>) -> Response {
    let user = f.user.trim().to_string();
    if user.is_empty() || f.confirm.trim() != user {
        return refused_confirmation(&user);
    }
    let (ops, p, u) = (st.ops.clone(), s.principal.clone(), user.clone());
    match run(move || ops.forget_user(&p, &u)).await {
        Ok(r) => {
            let f = &r.forgotten;
            let mut msg = format!(
                "Forgot user {user}: deleted {} store(s) ({}) with {} version(s); sealed {} audit entries.",
                f.stores.len(),
                f.stores.join(", "),
                f.versions,
                f.entries_sealed
            );
            if let Some(problem) = scrub_problem(&r.scrub) {
                msg.push(' ');
                msg.push_str(&problem);
            }
            st.console.flash(&s, msg);
            Redirect::to("/console/admin").into_response()
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

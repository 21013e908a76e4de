//! Signing in and the session: the one-time sign-in URL `memfs serve` prints
//! for the local operator (as notebook servers do: the token is single-use
//! and expires after [`SIGNIN_TTL_NS`]; a fresh one is printed when the
//! sign-in page is opened and none is left), sign-in with an API key, the
//! session cookie, and the checks every request passes: a live session, and
//! for changes a same-origin request carrying the session's CSRF token.
//!
//! The server keeps sessions in memory, keyed by the blake3 hash of their
//! cookie (never the cookie itself); restarting the server signs everyone
//! out. A session acts with the rights of who signed in (the operator is an
//! admin; a key keeps its role, stores and allow-lists) and its changes are
//! credited to the person: agent `console`, session `console-<id>`, user the
//! operator's or the key's user (else its name), so the API and the audit
//! log show them as a `user_actor`.

use super::page::{self, Fail};
use crate::api::AppState;
use crate::error::{OpError, OpResult};
use crate::ids::{now_ns, Identity};
use crate::ops::Principal;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a printed sign-in token may be used.
pub const SIGNIN_TTL_NS: i64 = 15 * 60 * 1_000_000_000;
/// How long a session lasts.
pub const SESSION_TTL_NS: i64 = 12 * 3600 * 1_000_000_000;
/// The session cookie's name.
pub const COOKIE: &str = "memfs_console";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// A signed-in person.
#[derive(Clone, Debug)]
pub struct Session {
    /// What the console acts as (rights of who signed in, credited to the person).
    pub principal: Principal,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The person, as the audit log names them.
    pub user: String,
    /// How they signed in, for the header ("operator", "key ci-bot").
    pub how: String,
    /// The key they signed in with: the session ends when it is revoked.
    pub key_id: Option<String>,
    expires_ns: i64,
    id_hash: [u8; 32],
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.principal.role == crate::ops::Role::Admin
    }
}

/// Live sessions by the hash of their cookie, each with its pending message.
type Sessions = HashMap<[u8; 32], (Session, Option<String>)>;

struct SignIn {
    hash: [u8; 32],
    expires_ns: i64,
}

/// The console's own state: sessions and sign-in tokens.
pub struct Console {
    sessions: Mutex<Sessions>,
    signins: Mutex<Vec<SignIn>>,
    /// Cookies get `Secure` (the server speaks TLS).
    pub secure: bool,
    /// Where the server listens (`http://127.0.0.1:8420`), once it does.
    base: Mutex<Option<String>>,
    /// The local operator's name (the Unix user running the server).
    operator: String,
}

fn random_hex() -> OpResult<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| {
        OpError::Store(crate::error::StoreError::Io(std::io::Error::other(
            e.to_string(),
        )))
    })?;
    Ok(crate::digest::hex(&raw))
}

fn hash(s: &str) -> [u8; 32] {
    *blake3::hash(s.as_bytes()).as_bytes()
}

/// Equal secrets, compared without an early exit (blake3 hashes compare in
/// constant time).
fn same_secret(a: &str, b: &str) -> bool {
    blake3::hash(a.as_bytes()) == blake3::hash(b.as_bytes())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Console {
    /// A console whose operator is `operator`; `secure` under TLS.
    pub fn new(operator: &str, secure: bool) -> Console {
        Console {
            sessions: Mutex::new(HashMap::new()),
            signins: Mutex::new(Vec::new()),
            secure,
            base: Mutex::new(None),
            operator: operator.to_string(),
        }
    }

    /// Notes where the server listens (for the sign-in URLs it prints).
    pub fn set_base(&self, url: &str) {
        *lock(&self.base) = Some(url.trim_end_matches('/').to_string());
    }

    /// Makes a one-time sign-in token for the local operator; returns the
    /// URL that uses it (a path alone before the server listens).
    pub fn signin_url(&self) -> OpResult<String> {
        let token = random_hex()?;
        let now = now_ns();
        let mut s = lock(&self.signins);
        s.retain(|t| t.expires_ns > now);
        s.push(SignIn {
            hash: hash(&token),
            expires_ns: now + SIGNIN_TTL_NS,
        });
        let base = lock(&self.base).clone().unwrap_or_default();
        Ok(format!("{base}/console/signin?token={token}"))
    }

    /// Prints a fresh sign-in URL on the server's standard error (the
    /// operator's terminal or log), unless an unused one is still valid.
    pub fn announce_if_none(&self) {
        let now = now_ns();
        let live = lock(&self.signins).iter().any(|t| t.expires_ns > now);
        if !live {
            self.announce();
        }
    }

    /// Prints a fresh sign-in URL on standard error.
    pub fn announce(&self) {
        match self.signin_url() {
            Ok(url) => {
                eprintln!("memfs: console: open {url} to sign in (works once, for 15 minutes)")
            }
            Err(e) => tracing::error!(error = %e, "cannot make a console sign-in token"),
        }
    }

    /// Uses up a sign-in token: true if it was valid.
    fn take_signin(&self, token: &str) -> bool {
        let h = blake3::hash(token.as_bytes());
        let now = now_ns();
        let mut s = lock(&self.signins);
        let found = s
            .iter()
            .position(|t| t.expires_ns > now && blake3::Hash::from(t.hash) == h);
        match found {
            Some(i) => {
                s.remove(i);
                true
            }
            None => false,
        }
    }

    /// Starts a session acting as `principal` (with its rights), credited to
    /// `user`; returns the cookie value.
    fn start(&self, principal: Principal, user: &str, how: String) -> OpResult<String> {
        let cookie = random_hex()?;
        let short = &random_hex()?[..8];
        let who = Identity::new("console", &format!("console-{short}"), Some(user));
        let key_id = principal.key_id.clone();
        let s = Session {
            principal: principal.crediting(who),
            csrf: random_hex()?,
            user: user.to_string(),
            how,
            key_id,
            expires_ns: now_ns() + SESSION_TTL_NS,
            id_hash: hash(&cookie),
        };
        let mut m = lock(&self.sessions);
        let now = now_ns();
        m.retain(|_, (s, _)| s.expires_ns > now);
        m.insert(s.id_hash, (s, None));
        Ok(cookie)
    }

    /// The live session a cookie names.
    fn session(&self, cookie: &str) -> Option<Session> {
        let m = lock(&self.sessions);
        let (s, _) = m.get(&hash(cookie))?;
        (s.expires_ns > now_ns()).then(|| s.clone())
    }

    fn end(&self, s: &Session) {
        lock(&self.sessions).remove(&s.id_hash);
    }

    /// Ends every session signed in with key `id` (it was revoked).
    pub fn end_key_sessions(&self, id: &str) {
        lock(&self.sessions).retain(|_, (s, _)| s.key_id.as_deref() != Some(id));
    }

    /// Leaves a message for the session's next page.
    pub fn flash(&self, s: &Session, msg: impl Into<String>) {
        if let Some((_, f)) = lock(&self.sessions).get_mut(&s.id_hash) {
            *f = Some(msg.into());
        }
    }

    /// Takes the session's message, if any.
    pub fn take_flash(&self, s: &Session) -> Option<String> {
        lock(&self.sessions)
            .get_mut(&s.id_hash)
            .and_then(|(_, f)| f.take())
    }

    /// The `Set-Cookie` value starting a session.
    pub(crate) fn cookie(&self, value: &str) -> String {
        format!(
            "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
            SESSION_TTL_NS / 1_000_000_000,
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value ending one.
    fn cookie_gone(&self) -> String {
        format!(
            "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// The session cookie's value in a request.
fn cookie_of(h: &HeaderMap) -> Option<String> {
    for v in h.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k == COOKIE && !val.is_empty() {
                    return Some(val.to_string());
                }
            }
        }
    }
    None
}

/// Whether a request comes from a page of this origin: browsers send
/// `Sec-Fetch-Site` and `Origin` with every form post, and a cross-site
/// form or script cannot forge either.
pub fn same_origin(h: &HeaderMap) -> bool {
    if let Some(site) = h.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin") | Ok("none")) {
            return false;
        }
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let bare = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        if bare != Some(host) {
            return false;
        }
    }
    true
}

/// Runs database work on a blocking thread, keeping the operation's error.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> OpResult<T> + Send + 'static,
) -> OpResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "a console request's database work panicked");
            Err(OpError::Store(crate::error::StoreError::Corrupt(
                "internal error".into(),
            )))
        }
    }
}

/// The signed-in person of a request. Without a live session, a page
/// request goes to the sign-in page and anything else is refused.
pub struct Who(pub Session);

async fn session_of(parts: &Parts, st: &AppState) -> Result<Session, Response> {
    let found = cookie_of(&parts.headers).and_then(|c| st.console.session(&c));
    let Some(s) = found else {
        return Err(
            if parts.method == Method::GET || parts.method == Method::HEAD {
                Redirect::to("/console/signin").into_response()
            } else {
                Fail::new(
                    401,
                    "You are not signed in (or your session ended). Sign in again.",
                )
                .into_response()
            },
        );
    };
    if let Some(id) = s.key_id.clone() {
        let ops = st.ops.clone();
        let live = run(move || ops.key_is_live(&id)).await.unwrap_or(false);
        if !live {
            st.console.end(&s);
            return Err(Redirect::to("/console/signin").into_response());
        }
    }
    Ok(s)
}

impl FromRequestParts<AppState> for Who {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        session_of(parts, st).await.map(Who)
    }
}

/// A form posted by the signed-in person from a console page: same origin,
/// with the session's CSRF token; `T` is the form's other fields.
pub struct Posted<T>(pub Session, pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        if !same_origin(&parts.headers) {
            return Err(Fail::new(
                403,
                "Refused: this request did not come from a console page.",
            )
            .into_response());
        }
        let s = session_of(&parts, st).await?;
        let req = Request::from_parts(parts.clone(), body);
        let bytes = Bytes::from_request(req, st)
            .await
            .map_err(|e| Fail::new(e.status().as_u16(), e.body_text()).into_response())?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| Fail::new(400, format!("Malformed form: {e}")).into_response())?;
        let token = pairs
            .iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !same_secret(token, &s.csrf) {
            return Err(Fail::new(
                403,
                "Refused: the form's security token is missing or stale. Reload the page and try again.",
            )
            .into_response());
        }
        let t = serde_urlencoded::from_bytes::<T>(&bytes)
            .map_err(|e| Fail::new(400, format!("Malformed form: {e}")).into_response())?;
        Ok(Posted(s, t))
    }
}

#[derive(Deserialize)]
pub struct SignInQuery {
    token: Option<String>,
}

/// `GET /console/signin`: with `?token=`, signs the operator in (once); else
/// the sign-in page.
pub async fn signin_page(State(st): State<AppState>, Query(q): Query<SignInQuery>) -> Response {
    if let Some(token) = q.token.filter(|t| !t.is_empty()) {
        if st.console.take_signin(&token) {
            let op = st.console.operator.clone();
            return match st.console.start(
                Principal::operator(Identity::new("console", "console", Some(&op))),
                &op,
                "operator".into(),
            ) {
                Ok(cookie) => signed_in(&st, &cookie),
                Err(e) => Fail::from(e).into_response(),
            };
        }
        st.console.announce_if_none();
        return signin_form(
            StatusCode::UNAUTHORIZED,
            Some("That sign-in link was already used or has expired. A fresh one was printed where memfs serve runs."),
        );
    }
    st.console.announce_if_none();
    signin_form(StatusCode::OK, None)
}

/// The answer that sets the session cookie. A page (not a redirect) that
/// moves on by itself: a redirect answering a link followed from another
/// site would not carry the new SameSite=Strict cookie.
fn signed_in(st: &AppState, cookie: &str) -> Response {
    let body = page::bare(
        "Signed in",
        html! {
            meta http-equiv="refresh" content="0;url=/console/stores";
        },
        html! {
            h1 { "Signed in" }
            p { a href="/console/stores" { "Continue to the console" } }
        },
    );
    let mut r = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&st.console.cookie(cookie)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn signin_form(status: StatusCode, problem: Option<&str>) -> Response {
    let body = page::bare(
        "Sign in",
        html! {},
        html! {
            h1 { "Sign in to the memfs console" }
            @if let Some(p) = problem {
                p.problem role="alert" { (p) }
            }
            p {
                "Open the sign-in link that " code { "memfs serve" }
                " printed (it works once; opening this page prints a fresh one when none is left), or sign in with an API key:"
            }
            form method="post" action="/console/signin" class="stack" {
                label for="key" { "API key" }
                input id="key" name="key" type="password" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
            p.hint { "Make a key with " code { "memfsctl apikey create NAME --role admin" } "." }
        },
    );
    (status, body).into_response()
}

#[derive(Deserialize)]
pub struct KeyForm {
    key: String,
}

/// `POST /console/signin`: sign in with an API key.
pub async fn signin_key(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers) {
        return Fail::new(
            403,
            "Refused: this request did not come from a console page.",
        )
        .into_response();
    }
    let Ok(f) = serde_urlencoded::from_bytes::<KeyForm>(&body) else {
        return signin_form(StatusCode::BAD_REQUEST, Some("Give an API key."));
    };
    let ops = st.ops.clone();
    let secret = f.key.trim().to_string();
    match run(move || ops.authenticate(&secret)).await {
        Ok(p) => {
            let user = p
                .who
                .user
                .clone()
                .or(p.key_name.clone())
                .unwrap_or_else(|| p.who.agent.clone());
            let how = format!("key {}", p.key_name.clone().unwrap_or_default());
            match st.console.start(p, &user, how) {
                Ok(cookie) => signed_in(&st, &cookie),
                Err(e) => Fail::from(e).into_response(),
            }
        }
        Err(OpError::Unauthenticated(_)) => signin_form(
            StatusCode::UNAUTHORIZED,
            Some("That key is unknown or revoked."),
        ),
        Err(e) => Fail::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct Nothing {}

/// `POST /console/signout`.
pub async fn signout(State(st): State<AppState>, Posted(s, _): Posted<Nothing>) -> Response {
    st.console.end(&s);
    let mut r = Redirect::to("/console/signin").into_response();
    if let Ok(v) = HeaderValue::from_str(&st.console.cookie_gone()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

//! The console driven in-process (no socket, no browser): sign-in and
//! cookies, CSRF refusal, rights (a reader cannot edit), escaping of
//! agent-written content in every view, the edit conflict flow, search kept
//! in step with commits, review marks, session rollback, and the headers
//! every answer carries.

mod flows;
mod security;

use crate::api::{router, AppState, Limits};
use crate::ids::Identity;
use crate::ops::keys::NewKey;
use crate::ops::stores::NewStore;
use crate::ops::{Ops, Principal, Role};
use crate::store::Db;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

pub struct T {
    pub app: Router,
    pub ops: Ops,
    pub console: Arc<super::Console>,
}

pub fn operator() -> Principal {
    Principal::operator(Identity::new("memfsctl", "memfsctl-test", Some("root")))
}

/// A principal writing as an agent through a mount would.
pub fn agent(name: &str, session: &str) -> Principal {
    Principal {
        who: Identity::new(name, session, Some("alice")),
        role: Role::Writer,
        stores: None,
        key_id: None,
        key_name: None,
        rights_of: None,
    }
}

pub fn setup() -> T {
    let ops = Ops::new(Arc::new(Db::open_in_memory().unwrap()));
    ops.create_store(
        &operator(),
        &NewStore {
            slug: Some("kb".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let (_, rx) = tokio::sync::watch::channel(false);
    let console = Arc::new(super::Console::new("root", false));
    let state = AppState {
        ops: ops.clone(),
        shutdown: rx,
        limits: Arc::new(Limits::default()),
        config: Arc::new(crate::config::Config::default()),
        console: console.clone(),
    };
    let (app, _) = router(state);
    T { app, ops, console }
}

pub fn key(ops: &Ops, name: &str, role: Role, user: Option<&str>, agent: Option<&str>) -> String {
    ops.create_key(
        &operator(),
        &NewKey {
            name: name.into(),
            user: user.map(Into::into),
            agent: agent.map(Into::into),
            role,
            stores: vec![],
        },
    )
    .unwrap()
    .key
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A browser with a session.
pub struct Client {
    pub cookie: String,
    pub csrf: String,
}

/// The value of the first `name="..." value="..."` hidden field named `field`.
pub fn field(body: &str, field: &str) -> String {
    let pat = format!("name=\"{field}\" value=\"");
    let i = body
        .find(&pat)
        .unwrap_or_else(|| panic!("no field {field} in {body}"))
        + pat.len();
    body[i..i + body[i..].find('"').unwrap()].to_string()
}

impl T {
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, c: Option<&Client>, uri: &str) -> Resp {
        let mut b = Request::builder().uri(uri).header("host", "localhost");
        if let Some(c) = c {
            b = b.header("cookie", format!("{}={}", super::auth::COOKIE, c.cookie));
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    /// Posts a form from a console page (same origin, with the CSRF token).
    pub async fn post(&self, c: &Client, uri: &str, form: &[(&str, &str)]) -> Resp {
        let mut pairs: Vec<(&str, &str)> = vec![("_csrf", c.csrf.as_str())];
        pairs.extend_from_slice(form);
        self.post_raw(Some(c), uri, &pairs, &[("origin", "http://localhost")])
            .await
    }

    pub async fn post_raw(
        &self,
        c: Option<&Client>,
        uri: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder()
            .method("POST")
            .uri(uri)
            .header("host", "localhost")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = c {
            b = b.header("cookie", format!("{}={}", super::auth::COOKIE, c.cookie));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    /// Finishes a sign-in answer: the cookie it set, and the CSRF token of
    /// the session (from a page's forms).
    async fn session_of(&self, r: Resp) -> Client {
        assert_eq!(r.status, 200, "{}", r.body);
        let set = r.headers.get("set-cookie").unwrap().to_str().unwrap();
        let cookie = set
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_string();
        let page = self
            .get(
                Some(&Client {
                    cookie: cookie.clone(),
                    csrf: String::new(),
                }),
                "/console/stores",
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        Client {
            csrf: field(&page.body, "_csrf"),
            cookie,
        }
    }

    /// Signs the local operator in through a printed sign-in URL.
    pub async fn operator(&self) -> Client {
        let url = self.console.signin_url().unwrap();
        let r = self.get(None, &url).await;
        self.session_of(r).await
    }

    /// Signs in with an API key.
    pub async fn with_key(&self, key: &str) -> Client {
        let r = self
            .post_raw(
                None,
                "/console/signin",
                &[("key", key)],
                &[("origin", "http://localhost")],
            )
            .await;
        self.session_of(r).await
    }

    /// The store's API id.
    pub fn kb(&self) -> String {
        self.ops.store(&operator(), "kb").unwrap().0.api_id
    }

    /// Writes a file as `p` (a mount's agent, say); returns its memory id.
    pub fn write(&self, p: &Principal, path: &str, content: &str) -> String {
        let kb = self.kb();
        let found = self.ops.live_file(p, "kb", path).unwrap();
        match found {
            None => {
                let m = self
                    .ops
                    .create_memory(p, &kb, &format!("/{path}"), content, false)
                    .unwrap();
                crate::ops::memories::memory_id(m.ino)
            }
            Some(f) => {
                let id = crate::ops::memories::memory_id(f.ino);
                let u = crate::ops::memories::MemoryUpdate {
                    content: Some(content.into()),
                    ..Default::default()
                };
                self.ops.update_memory(p, &kb, &id, &u, false).unwrap();
                id
            }
        }
    }

    /// A file's current content.
    pub fn read(&self, path: &str) -> String {
        let c = self
            .ops
            .file_content(&operator(), "kb", path, &Default::default())
            .unwrap();
        String::from_utf8(c.data).unwrap()
    }
}

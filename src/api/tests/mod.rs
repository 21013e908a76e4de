//! The API's routes driven in-process (no socket): every endpoint, the error
//! envelope for each kind of bad input, access by role and scope, and the
//! OpenAPI document against the routes.

mod access;
mod agents;
mod errors;
mod memories;
mod openapi;
mod operator;
mod stores;

use super::{router, AppState, Limits};
use crate::ids::Identity;
use crate::ops::keys::NewKey;
use crate::ops::stores::NewStore;
use crate::ops::{Ops, Principal, Role};
use crate::store::Db;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub struct T {
    pub app: Router,
    pub ops: Ops,
    pub admin: String,
    pub writer: String,
    pub reader: String,
    /// The API id of store `kb`.
    pub kb: String,
}

pub fn operator() -> Principal {
    Principal::operator(Identity::new("memfsctl", "memfsctl-test", Some("root")))
}

pub fn key(ops: &Ops, name: &str, role: Role, stores: &[&str], user: Option<&str>) -> String {
    ops.create_key(
        &operator(),
        &NewKey {
            name: name.into(),
            user: user.map(Into::into),
            agent: None,
            role,
            stores: stores.iter().map(|s| s.to_string()).collect(),
        },
    )
    .unwrap()
    .key
}

pub fn setup() -> T {
    setup_with(Limits::default())
}

pub fn setup_with(limits: Limits) -> T {
    let db = Db::open_in_memory().unwrap();
    let ops = Ops::new(Arc::new(db));
    let kb = ops
        .create_store(
            &operator(),
            &NewStore {
                slug: Some("kb".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let (_, rx) = tokio::sync::watch::channel(false);
    let state = AppState {
        ops: ops.clone(),
        shutdown: rx,
        limits: Arc::new(limits),
        config: Arc::new(crate::config::Config::default()),
        console: Arc::new(crate::console::Console::new("root", false)),
    };
    let (app, _) = router(state);
    T {
        admin: key(&ops, "admin", Role::Admin, &[], None),
        writer: key(&ops, "writer", Role::Writer, &[], None),
        reader: key(&ops, "reader", Role::Reader, &[], None),
        app,
        ops,
        kb: kb.api_id,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The error envelope's `error.type`.
    pub fn error_type(&self) -> &str {
        self.body["error"]["type"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl T {
    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: &str, uri: &str, key: &str, body: Option<Value>) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {key}"))
            .header("anthropic-version", "2026-10-21")
            .header("anthropic-beta", "agent-memory-2026-07-22");
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.raw(b.body(body).unwrap()).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, &self.admin.clone(), None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Resp {
        self.call("POST", uri, &self.admin.clone(), Some(body))
            .await
    }

    /// Creates a memory as `key`, asserting success; returns it.
    pub async fn mem(&self, key: &str, path: &str, content: &str) -> Value {
        let r = self
            .call(
                "POST",
                &format!("/v1/memory_stores/{}/memories", self.kb),
                key,
                Some(serde_json::json!({"path": path, "content": content})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }
}

pub fn sha(s: &str) -> String {
    crate::digest::hex(&crate::digest::sha256(s.as_bytes()))
}

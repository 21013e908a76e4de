//! Bad input: each a 4xx in the error envelope with a precise message.

use super::*;
use serde_json::json;

#[tokio::test]
async fn malformed_requests_are_precise_4xx() {
    let t = setup();
    let kb = t.kb.clone();
    let url = format!("/v1/memory_stores/{kb}/memories");
    let raw = |body: &str, ct: Option<&str>| {
        let mut b = Request::builder()
            .method("POST")
            .uri(&url)
            .header("x-api-key", t.admin.as_str());
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (
            raw("{\"path\": ", Some("application/json")),
            400,
            "invalid request body",
        ),
        (
            raw(
                "{\"path\": 5, \"content\": \"x\"}",
                Some("application/json"),
            ),
            400,
            "invalid type",
        ),
        (
            raw("{\"path\": \"/a\"}", Some("application/json")),
            400,
            "content",
        ),
        (
            raw("{\"path\": \"/a\", \"content\": \"x\"}", Some("text/plain")),
            415,
            "Content-Type",
        ),
        (raw("[]", Some("application/json")), 400, "invalid"),
    ];
    for (req, status, needle) in cases {
        let r = t.raw(req).await;
        assert_eq!(r.status.as_u16(), status, "{}", r.body);
        assert_eq!(r.body["type"], "error");
        assert!(r.message().contains(needle), "{needle}: {}", r.message());
        assert!(r.headers.contains_key("request-id"));
        assert_eq!(
            r.body["request_id"],
            r.headers["request-id"].to_str().unwrap()
        );
    }
    for (path, needle) in [
        ("a.md", "start with '/'"),
        ("/a//b", "empty segment"),
        ("/a/../b", "'..'"),
        ("/a\u{200b}b", "format character"),
        ("/", "empty segment"),
    ] {
        let r = t.post(&url, json!({"path": path, "content": "x"})).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.message().contains(needle), "{path}: {}", r.message());
    }
    for q in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "limit=99999999999999999999",
        "page=garbage",
        "page=pg_00",
        "view=huge",
        "depth=-1",
        "path_prefix=notes",
    ] {
        let r = t.get(&format!("{url}?{q}")).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert_eq!(r.error_type(), "invalid_request_error", "{q}");
    }
    for u in [
        format!("/v1/memory_stores/{kb}/memories/mem_999999"),
        format!("/v1/memory_stores/{kb}/memories/nonsense"),
        "/v1/memory_stores/memstore_nope".to_string(),
        format!("/v1/memory_stores/{kb}/memory_versions/memver_424242"),
        format!("/v1/memory_stores/{kb}/memory_versions/x"),
        "/v1/no/such/route".to_string(),
    ] {
        let r = t.get(&u).await;
        assert_eq!(r.status, 404, "{u}: {}", r.body);
        assert_eq!(r.error_type(), "not_found_error");
    }
    let r = t
        .post(
            &format!("{url}/mem_1"),
            json!({"precondition": {"type": "etag", "content_sha256": "x"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    let m = t.mem(&t.admin, "/p.md", "x").await;
    let r = t
        .post(
            &format!("{url}/{}", m["id"].as_str().unwrap()),
            json!({"content": "y", "precondition": {"type": "content_sha256", "content_sha256": "ABC"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("64 lowercase"), "{}", r.message());
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_and_store_nothing() {
    let t = setup_with(Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    });
    let url = format!("/v1/memory_stores/{}/memories", t.kb);
    let r = t
        .post(&url, json!({"path": "/big", "content": "x".repeat(4096)}))
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.error_type(), "request_too_large");
    let list = t.get(&url).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn keys_missing_wrong_or_revoked_are_401() {
    let t = setup();
    let req = Request::builder()
        .uri("/v1/memory_stores")
        .body(Body::empty())
        .unwrap();
    let r = t.raw(req).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_type(), "authentication_error");
    let r = t
        .call("GET", "/v1/memory_stores", "memfs_wrong", None)
        .await;
    assert_eq!(r.status, 401);
    let k = key(&t.ops, "gone", Role::Writer, &[], None);
    assert_eq!(
        t.call("GET", "/v1/memory_stores", &k, None).await.status,
        200
    );
    t.ops.revoke_key(&operator(), "gone").unwrap();
    assert_eq!(
        t.call("GET", "/v1/memory_stores", &k, None).await.status,
        401
    );
    // x-api-key works as well as Bearer.
    let req = Request::builder()
        .uri("/v1/memory_stores")
        .header("x-api-key", t.reader.as_str())
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.raw(req).await.status, 200);
}

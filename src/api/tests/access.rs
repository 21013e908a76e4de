//! Access by role and scope: readers read, writers write, admins manage; a
//! store a key may not see is 404.

use super::*;
use serde_json::json;

#[tokio::test]
async fn roles_and_scopes() {
    let t = setup();
    let kb = t.kb.clone();
    let url = format!("/v1/memory_stores/{kb}/memories");
    // Reader: reads, cannot write.
    t.mem(&t.writer, "/w.md", "w").await;
    let r = t
        .call(
            "POST",
            &url,
            &t.reader,
            Some(json!({"path": "/r.md", "content": "r"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.error_type(), "permission_error");
    assert_eq!(t.call("GET", &url, &t.reader, None).await.status, 200);
    // Writer: cannot manage stores, redact or read settings.
    let r = t
        .call(
            "POST",
            "/v1/memory_stores",
            &t.writer,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.message().contains("admin"), "{}", r.message());
    let r = t
        .call(
            "GET",
            &format!("/v1/memfs/stores/{kb}/settings"),
            &t.writer,
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    // A key scoped to another store does not see kb at all.
    t.ops
        .create_store(
            &operator(),
            &crate::ops::stores::NewStore {
                slug: Some("other".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let scoped = key(&t.ops, "scoped", Role::Writer, &["other"], None);
    let r = t
        .call("GET", &format!("/v1/memory_stores/{kb}"), &scoped, None)
        .await;
    assert_eq!(r.status, 404);
    let list = t.call("GET", "/v1/memory_stores", &scoped, None).await;
    let names: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["memfs"]["slug"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["other"]);
    // Allow-lists in the store's settings bind keys like mounts: only
    // curator writes kb, everyone reads.
    let set = json!({"writers": ["curator"], "readers": ["*"]});
    let r = t
        .call(
            "PUT",
            &format!("/v1/memfs/stores/{kb}/settings"),
            &t.admin,
            Some(set),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = t
        .call(
            "POST",
            &url,
            &t.writer,
            Some(json!({"path": "/x.md", "content": "x"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.message().contains("may only read"), "{}", r.message());
    let curator = t
        .ops
        .create_key(
            &operator(),
            &crate::ops::keys::NewKey {
                name: "cur".into(),
                user: None,
                agent: Some("curator".into()),
                role: Role::Writer,
                stores: vec![],
            },
        )
        .unwrap()
        .key;
    let r = t
        .call(
            "POST",
            &url,
            &curator,
            Some(json!({"path": "/x.md", "content": "x"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A user store is invisible to keys of other users.
    t.ops
        .create_store(
            &operator(),
            &crate::ops::stores::NewStore {
                slug: Some("alice".into()),
                scope: Some(crate::store::Scope::User),
                owner: Some("alice".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let bob = key(&t.ops, "bob", Role::Writer, &[], Some("bob"));
    let alice = key(&t.ops, "alice", Role::Writer, &[], Some("alice"));
    assert_eq!(
        t.call("GET", "/v1/memory_stores/alice", &bob, None)
            .await
            .status,
        404
    );
    assert_eq!(
        t.call("GET", "/v1/memory_stores/alice", &alice, None)
            .await
            .status,
        200
    );
    // whoami.
    let w = t.call("GET", "/v1/memfs/whoami", &alice, None).await;
    assert_eq!(w.body["user"], "alice");
    assert_eq!(w.body["role"], "writer");
}

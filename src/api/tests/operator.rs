//! memfs's own endpoints: the audit log, history and diff, content
//! downloads, rollback (dry run, then for real), purge and forget plans,
//! leases, and a streamed export imported back.

use super::*;
use serde_json::json;

#[tokio::test]
async fn audit_history_diff_and_content() {
    let t = setup();
    let kb = t.kb.clone();
    let m = t.mem(&t.writer, "/notes/a.md", "one\ntwo\n").await;
    let id = m["id"].as_str().unwrap();
    t.post(
        &format!("/v1/memory_stores/{kb}/memories/{id}"),
        json!({"content": "one\nTWO\n"}),
    )
    .await;
    let log = t.get("/v1/memfs/audit?store=kb&op=write").await;
    assert_eq!(log.status, 200, "{}", log.body);
    assert_eq!(log.body["data"][0]["path"], "notes/a.md");
    let page = t.get("/v1/memfs/audit?limit=1").await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 1);
    let next = page.body["next_page"].as_str().unwrap();
    let page2 = t.get(&format!("/v1/memfs/audit?limit=1&page={next}")).await;
    assert_ne!(page.body["data"][0]["id"], page2.body["data"][0]["id"]);
    let h = t
        .get(&format!("/v1/memfs/stores/{kb}/history?path=notes/a.md"))
        .await;
    assert_eq!(h.status, 200, "{}", h.body);
    let versions = h.body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let first = versions[1]["id"].as_i64().unwrap();
    let d = t
        .get(&format!(
            "/v1/memfs/stores/{kb}/diff?path=notes/a.md&from={first}"
        ))
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    assert!(
        d.body["diff"].as_str().unwrap().contains("-two\n+TWO"),
        "{}",
        d.body
    );
    let c = t
        .call(
            "GET",
            &format!("/v1/memfs/stores/{kb}/content?path=notes/a.md&version={first}"),
            &t.reader,
            None,
        )
        .await;
    assert_eq!(c.status, 200);
    assert_eq!(
        c.headers["content-disposition"],
        "attachment; filename=\"a.md\""
    );
    assert_eq!(c.headers["x-content-type-options"], "nosniff");
    // The reader may not use the admin endpoints.
    let r = t
        .call(
            "POST",
            "/v1/memfs/sessions/x/rollback",
            &t.reader,
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_session_is_rolled_back_after_its_dry_run() {
    let t = setup();
    let kb = t.kb.clone();
    t.mem(&t.admin, "/keep.md", "good\n").await;
    let bad = key(&t.ops, "poisoner", Role::Writer, &[], None);
    let w = t.call("GET", "/v1/memfs/whoami", &bad, None).await;
    let session = w.body["session"].as_str().unwrap().to_string();
    let keep = t
        .get(&format!("/v1/memory_stores/{kb}/memories"))
        .await
        .body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.call(
        "POST",
        &format!("/v1/memory_stores/{kb}/memories/{keep}"),
        &bad,
        Some(json!({"content": "poison\n"})),
    )
    .await;
    t.mem(&bad, "/junk.md", "junk").await;
    let plan = t
        .post(
            &format!("/v1/memfs/sessions/{session}/rollback"),
            json!({"dry_run": true}),
        )
        .await;
    assert_eq!(plan.status, 200, "{}", plan.body);
    assert_eq!(plan.body["dry_run"], true);
    assert_eq!(
        plan.body["steps"].as_array().unwrap().len(),
        2,
        "{}",
        plan.body
    );
    // Nothing changed yet.
    let m = t
        .get(&format!("/v1/memory_stores/{kb}/memories/{keep}"))
        .await;
    assert_eq!(m.body["content"], "poison\n");
    let done = t
        .post(&format!("/v1/memfs/sessions/{session}/rollback"), json!({}))
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let m = t
        .get(&format!("/v1/memory_stores/{kb}/memories/{keep}"))
        .await;
    assert_eq!(m.body["content"], "good\n");
    let list = t.get(&format!("/v1/memory_stores/{kb}/memories")).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn purge_forget_leases_and_an_export_imported_back() {
    let t = setup();
    let kb = t.kb.clone();
    t.mem(&t.admin, "/secret.md", "s3cret").await;
    t.mem(&t.admin, "/other.md", "fine").await;
    let plan = t
        .post(
            &format!("/v1/memfs/stores/{kb}/purge"),
            json!({"path": "secret.md", "dry_run": true}),
        )
        .await;
    assert_eq!(plan.status, 200, "{}", plan.body);
    assert_eq!(plan.body["versions"].as_array().unwrap().len(), 1);
    let f = t
        .post("/v1/memfs/users/nobody/forget", json!({"dry_run": true}))
        .await;
    assert_eq!(f.status, 200, "{}", f.body);
    assert_eq!(f.body["stores"], json!([]));
    let l = t.get("/v1/memfs/leases").await;
    assert_eq!(l.body["data"], json!([]));
    let b = t
        .post(
            &format!("/v1/memfs/stores/{kb}/leases/break"),
            json!({"path": "other.md"}),
        )
        .await;
    assert!(b.status.is_client_error(), "no lease to break: {}", b.body);
    // Export with history, then import the bytes as a new store.
    let req = Request::builder()
        .uri(format!("/v1/memfs/stores/{kb}/export?history=true"))
        .header("authorization", format!("Bearer {}", t.admin))
        .body(Body::empty())
        .unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-tar");
    let tar = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(tar.len() > 1024);
    let req = Request::builder()
        .method("POST")
        .uri("/v1/memfs/import?as=kb-copy")
        .header("authorization", format!("Bearer {}", t.admin))
        .header("content-type", "application/x-tar")
        .body(Body::from(tar))
        .unwrap();
    let r = t.raw(req).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let copy = t.get("/v1/memory_stores/kb-copy/memories?view=full").await;
    let contents: Vec<&str> = copy.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, vec!["fine", "s3cret"]);
    // Not a tar: a 4xx, nothing imported.
    let req = Request::builder()
        .method("POST")
        .uri("/v1/memfs/import?as=junk")
        .header("authorization", format!("Bearer {}", t.admin))
        .body(Body::from("not a tar at all"))
        .unwrap();
    let r = t.raw(req).await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.body);
    assert_eq!(t.get("/v1/memory_stores/junk").await.status, 404);
    // Purge for real.
    let done = t
        .post(
            &format!("/v1/memfs/stores/{kb}/purge"),
            json!({"path": "secret.md"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let list = t.get(&format!("/v1/memory_stores/{kb}/memories")).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

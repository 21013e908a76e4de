//! Memory and version endpoints.

use super::*;
use serde_json::json;

#[tokio::test]
async fn memories_round_trip_with_preconditions_and_versions() {
    let t = setup();
    let kb = t.kb.clone();
    let m = t.mem(&t.writer, "/notes/todo.md", "one\n").await;
    let id = m["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("mem_"));
    assert_eq!(m["type"], "memory");
    assert_eq!(m["path"], "/notes/todo.md");
    assert_eq!(m["content_sha256"], sha("one\n"));
    assert_eq!(m["content_size_bytes"], 4);
    assert_eq!(m["content"], Value::Null, "create defaults to view=basic");
    let v1 = m["memory_version_id"].as_str().unwrap().to_string();
    // Retrieve defaults to full.
    let g = t
        .get(&format!("/v1/memory_stores/{kb}/memories/{id}"))
        .await;
    assert_eq!(g.body["content"], "one\n");
    // A create onto an existing path is a path conflict.
    let dup = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{kb}/memories"),
            &t.writer,
            Some(json!({"path": "/notes/todo.md", "content": "x"})),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.error_type(), "memory_path_conflict_error");
    assert_eq!(dup.headers["x-should-retry"], "false");
    // Update with a stale precondition: 409, nothing changes.
    let stale = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{kb}/memories/{id}"),
            &t.writer,
            Some(json!({"content": "two\n", "precondition": {"type": "content_sha256", "content_sha256": sha("zero")}})),
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(stale.error_type(), "memory_precondition_failed_error");
    // With the right one, and a rename: same id.
    let up = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{kb}/memories/{id}?view=full"),
            &t.writer,
            Some(json!({"content": "two\n", "path": "/done/todo.md", "precondition": {"type": "content_sha256", "content_sha256": sha("one\n")}})),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["id"], id.as_str());
    assert_eq!(up.body["path"], "/done/todo.md");
    assert_eq!(up.body["content"], "two\n");
    // Versions: newest first, attributed to the writer key.
    let vs = t
        .get(&format!(
            "/v1/memory_stores/{kb}/memory_versions?memory_id={id}"
        ))
        .await;
    let data = vs.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{}", vs.body);
    assert_eq!(data[0]["operation"], "modified");
    assert_eq!(data[1]["operation"], "created");
    assert_eq!(data[1]["id"], v1.as_str());
    assert_eq!(data[0]["created_by"]["type"], "api_actor");
    let writer_id = data[0]["created_by"]["api_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(writer_id.starts_with("apikey_"));
    let by_key = t
        .get(&format!(
            "/v1/memory_stores/{kb}/memory_versions?api_key_id={writer_id}"
        ))
        .await;
    assert_eq!(by_key.body["data"].as_array().unwrap().len(), 2);
    let none = t
        .get(&format!(
            "/v1/memory_stores/{kb}/memory_versions?session_id=nobody"
        ))
        .await;
    assert_eq!(none.body["data"].as_array().unwrap().len(), 0);
    // Conditional delete: a wrong sha is 409, the right one deletes.
    let del = t
        .call(
            "DELETE",
            &format!(
                "/v1/memory_stores/{kb}/memories/{id}?expected_content_sha256={}",
                sha("x")
            ),
            &t.writer,
            None,
        )
        .await;
    assert_eq!(del.status, 409);
    let del = t
        .call(
            "DELETE",
            &format!(
                "/v1/memory_stores/{kb}/memories/{id}?expected_content_sha256={}",
                sha("two\n")
            ),
            &t.writer,
            None,
        )
        .await;
    assert_eq!(del.body, json!({"id": id, "type": "memory_deleted"}));
    assert_eq!(
        t.get(&format!("/v1/memory_stores/{kb}/memories/{id}"))
            .await
            .status,
        404
    );
    let vs = t
        .get(&format!(
            "/v1/memory_stores/{kb}/memory_versions?memory_id={id}&operation=deleted"
        ))
        .await;
    let d = &vs.body["data"][0];
    assert_eq!(d["operation"], "deleted");
    assert_eq!(d["content_sha256"], Value::Null);
    assert_eq!(d["path"], "/done/todo.md");
    // Redact the first version (not current: the memory is gone).
    let red = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{kb}/memory_versions/{v1}/redact"),
            &t.admin,
            None,
        )
        .await;
    assert_eq!(red.status, 200, "{}", red.body);
    for f in ["content", "path", "content_sha256", "content_size_bytes"] {
        assert_eq!(red.body[f], Value::Null, "{f}");
    }
    assert!(red.body["redacted_at"].is_string());
    assert_eq!(red.body["redacted_by"]["type"], "api_actor");
    assert_eq!(red.body["created_by"]["type"], "api_actor");
    let again = t
        .get(&format!("/v1/memory_stores/{kb}/memory_versions/{v1}"))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["content"], Value::Null);
}

#[tokio::test]
async fn list_with_prefixes_depth_and_pages() {
    let t = setup();
    for p in [
        "/a.md",
        "/notes/x.md",
        "/notes/y.md",
        "/notes/deep/z.md",
        "/notes-archive/q.md",
    ] {
        t.mem(&t.admin, p, p).await;
    }
    let kb = t.kb.clone();
    let all = t.get(&format!("/v1/memory_stores/{kb}/memories")).await;
    let paths: Vec<&str> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        // Directory by directory, each directory's entries by name.
        vec![
            "/a.md",
            "/notes/deep/z.md",
            "/notes/x.md",
            "/notes/y.md",
            "/notes-archive/q.md",
        ]
    );
    let under = t
        .get(&format!(
            "/v1/memory_stores/{kb}/memories?path_prefix=/notes/"
        ))
        .await;
    assert_eq!(
        under.body["data"].as_array().unwrap().len(),
        3,
        "whole segments only"
    );
    let top = t
        .get(&format!("/v1/memory_stores/{kb}/memories?depth=1"))
        .await;
    let items: Vec<(String, String)> = top.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap().into(),
                m["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        items,
        vec![
            ("memory".into(), "/a.md".into()),
            ("memory_prefix".into(), "/notes/".into()),
            ("memory_prefix".into(), "/notes-archive/".into()),
        ]
    );
    // Pages of one through the rolled-up listing give the same items.
    let mut rolled = Vec::new();
    let mut url = format!("/v1/memory_stores/{kb}/memories?depth=1&limit=1");
    loop {
        let r = t.get(&url).await;
        rolled.push(r.body["data"][0]["path"].as_str().unwrap().to_string());
        match r.body["next_page"].as_str() {
            Some(n) => url = format!("/v1/memory_stores/{kb}/memories?depth=1&limit=1&page={n}"),
            None => break,
        }
    }
    assert_eq!(rolled, vec!["/a.md", "/notes/", "/notes-archive/"]);
    // Pages of two, to the end.
    let mut seen = Vec::new();
    let mut url = format!("/v1/memory_stores/{kb}/memories?limit=2&view=full");
    loop {
        let r = t.get(&url).await;
        for m in r.body["data"].as_array().unwrap() {
            assert_eq!(m["content"], m["path"]);
            seen.push(m["path"].as_str().unwrap().to_string());
        }
        match r.body["next_page"].as_str() {
            Some(n) => url = format!("/v1/memory_stores/{kb}/memories?limit=2&view=full&page={n}"),
            None => break,
        }
    }
    assert_eq!(seen, paths);
    // view=full caps pages at 20.
    for i in 0..25 {
        t.mem(&t.admin, &format!("/many/{i:02}"), "x").await;
    }
    let r = t
        .get(&format!(
            "/v1/memory_stores/{kb}/memories?limit=100&view=full"
        ))
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 20);
    let r = t
        .get(&format!("/v1/memory_stores/{kb}/memories?limit=100"))
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 30);
}

#[tokio::test]
async fn content_that_is_not_text_is_null_with_a_reason() {
    let t = setup();
    let store = t.ops.store(&operator(), "kb").unwrap().0;
    let fs = crate::fs::MemFs::new(
        t.ops.db().clone(),
        Identity::new("agent", "s1", None),
        vec![crate::fs::Attached::plain(store.clone(), false)],
        Default::default(),
    );
    fs.put_file(
        store.id,
        "bin.dat",
        &[0xff, 0xfe, 0x00],
        crate::fs::Expect::Any,
    )
    .unwrap();
    let r = t
        .get(&format!("/v1/memory_stores/{}/memories?view=full", t.kb))
        .await;
    let m = &r.body["data"][0];
    assert_eq!(m["content"], Value::Null);
    assert_eq!(m["memfs"]["content_unavailable"], "binary");
    assert_eq!(m["content_size_bytes"], 3);
    // Written through a "mount" identity: a session actor.
    let v = t
        .get(&format!("/v1/memory_stores/{}/memory_versions", t.kb))
        .await;
    assert_eq!(
        v.body["data"][0]["created_by"],
        json!({"type": "session_actor", "session_id": "s1"})
    );
}

#[tokio::test]
async fn version_pages_walk_the_whole_history_once() {
    let t = setup();
    let kb = t.kb.clone();
    let m = t.mem(&t.admin, "/v.md", "0").await;
    let id = m["id"].as_str().unwrap().to_string();
    for i in 1..7 {
        let r = t
            .post(
                &format!("/v1/memory_stores/{kb}/memories/{id}"),
                json!({"content": i.to_string()}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    t.call(
        "DELETE",
        &format!("/v1/memory_stores/{kb}/memories/{id}"),
        &t.admin,
        None,
    )
    .await;
    let mut ops = Vec::new();
    let mut url = format!("/v1/memory_stores/{kb}/memory_versions?limit=3&view=full");
    loop {
        let r = t.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for v in r.body["data"].as_array().unwrap() {
            ops.push((
                v["operation"].as_str().unwrap().to_string(),
                v["content"].as_str().map(str::to_string),
            ));
        }
        match r.body["next_page"].as_str() {
            Some(n) => {
                url = format!("/v1/memory_stores/{kb}/memory_versions?limit=3&view=full&page={n}")
            }
            None => break,
        }
    }
    let want: Vec<(String, Option<String>)> = std::iter::once(("deleted".to_string(), None))
        .chain(
            (1..7)
                .rev()
                .map(|i| ("modified".to_string(), Some(i.to_string()))),
        )
        .chain(std::iter::once((
            "created".to_string(),
            Some("0".to_string()),
        )))
        .collect();
    assert_eq!(ops, want);
}

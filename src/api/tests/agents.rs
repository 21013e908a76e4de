//! What the API serves agents without a mount: the memory tool as a service
//! (`POST /v1/memfs/stores/{id}/memory_tool`), the session the SDK's sandbox
//! sync reads (`GET /v1/sessions/{id}`), and `/mcp` behind the API keys.

use super::*;
use serde_json::json;

fn tool_url(t: &T) -> String {
    format!("/v1/memfs/stores/{}/memory_tool", t.kb)
}

#[tokio::test]
async fn the_memory_tool_answers_commands_as_tool_results() {
    let t = setup();
    let url = tool_url(&t);
    let r = t
        .call(
            "POST",
            &url,
            &t.writer,
            Some(json!({"command": "create", "path": "/memories/a.md", "file_text": "one\ntwo\n"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"content": "File created successfully at: /memories/a.md", "is_error": false})
    );
    let r = t
        .call(
            "POST",
            &url,
            &t.writer,
            Some(json!({"command": "view", "path": "/memories/a.md", "view_range": [2, -1]})),
        )
        .await;
    assert_eq!(
        r.body["content"],
        "Here's the content of /memories/a.md with line numbers:\n     2\ttwo\n     3\t"
    );
    // A failed command is still a 200: the tool result carries the error.
    let r = t
        .call(
            "POST",
            &url,
            &t.writer,
            Some(json!({"command": "delete", "path": "/memories"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"content": "Cannot delete the /memories directory itself", "is_error": true})
    );
    // A reader reads, and is told it may not write.
    let r = t
        .call(
            "POST",
            &url,
            &t.reader,
            Some(json!({"command": "insert", "path": "/memories/a.md", "insert_line": 0, "insert_text": "x"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["is_error"], true);
    assert!(
        r.body["content"]
            .as_str()
            .unwrap()
            .contains("may only read"),
        "{}",
        r.body
    );
    // What memfs cannot serve is an HTTP error: no key, an unknown store.
    let r = t
        .raw(
            Request::post(&url)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = t
        .call(
            "POST",
            "/v1/memfs/stores/memstore_nope/memory_tool",
            &t.writer,
            Some(json!({"command": "view", "path": "/memories"})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = t
        .call("POST", &url, &t.writer, Some(json!("not an object")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["content"],
        "NotImplementedError('Unknown command: None')"
    );
}

#[tokio::test]
async fn a_session_header_attributes_memory_tool_changes() {
    let t = setup();
    let url = tool_url(&t);
    let req = |session: &str, path: &str| {
        Request::post(&url)
            .header("authorization", format!("Bearer {}", t.writer))
            .header("content-type", "application/json")
            .header("x-memfs-session", session.to_string())
            .body(Body::from(
                json!({"command": "create", "path": path, "file_text": "x"}).to_string(),
            ))
            .unwrap()
    };
    let r = t.raw(req("conversation-7", "/memories/b.md")).await;
    assert_eq!(r.body["is_error"], false, "{}", r.body);
    let r = t.raw(req("apikey_not_mine", "/memories/c.md")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let log = t
        .ops
        .log(
            &operator(),
            &crate::ops::log::LogQuery {
                store: Some("kb".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let e = log
        .iter()
        .find(|e| e.path.as_deref() == Some("b.md"))
        .unwrap();
    assert_eq!(
        (e.agent.as_str(), e.session.as_str()),
        ("writer", "conversation-7")
    );
    assert!(!log.iter().any(|e| e.path.as_deref() == Some("c.md")));
}

#[tokio::test]
async fn a_session_lists_the_keys_stores_with_mount_paths_and_access() {
    let t = setup();
    t.ops
        .create_store(
            &operator(),
            &crate::ops::stores::NewStore {
                slug: Some("archive".into()),
                title: Some("Old Archive".into()),
                ..Default::default()
            },
        )
        .unwrap();
    t.ops.archive_store(&operator(), "archive").unwrap();
    let r = t
        .call("GET", "/v1/sessions/sesn_abc", &t.writer, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], "sesn_abc");
    assert_eq!(r.body["type"], "session");
    let res = r.body["resources"].as_array().unwrap();
    let by_name = |n: &str| res.iter().find(|x| x["name"] == n).unwrap().clone();
    let kb = by_name("kb");
    assert_eq!(kb["type"], "memory_store");
    assert_eq!(kb["memory_store_id"], t.kb.as_str());
    assert_eq!(kb["mount_path"], "/mnt/memory/kb");
    assert_eq!(kb["access"], "read_write");
    let old = by_name("Old Archive");
    assert_eq!(old["mount_path"], "/mnt/memory/archive");
    assert_eq!(old["access"], "read_only");
    let r = t
        .call("GET", "/v1/sessions/sesn_abc", &t.reader, None)
        .await;
    assert!(r.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["access"] == "read_only"));
    let limited = key(&t.ops, "limited", Role::Writer, &["kb"], None);
    let r = t.call("GET", "/v1/sessions/s", &limited, None).await;
    assert_eq!(r.body["resources"].as_array().unwrap().len(), 1);
    let r = t
        .raw(Request::get("/v1/sessions/s").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn mcp_needs_an_api_key() {
    let t = setup();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let r = t
        .raw(
            Request::post("/mcp")
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.error_type(), "authentication_error");
}

//! Store endpoints.

use super::*;
use serde_json::json;

#[tokio::test]
async fn create_retrieve_update_list_archive_delete() {
    let t = setup();
    let r = t
        .post(
            "/v1/memory_stores",
            json!({"name": "User Preferences", "description": "d", "metadata": {"team": "a"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.body;
    let id = s["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("memstore_"));
    assert_eq!(s["type"], "memory_store");
    assert_eq!(s["name"], "User Preferences");
    assert_eq!(s["memfs"]["slug"], "user-preferences");
    assert_eq!(s["archived_at"], Value::Null);
    // The same name again: a unique slug.
    let again = t
        .post("/v1/memory_stores", json!({"name": "User Preferences"}))
        .await;
    assert_eq!(again.body["memfs"]["slug"], "user-preferences-2");
    let got = t.get(&format!("/v1/memory_stores/{id}")).await;
    assert_eq!(got.body["description"], "d");
    let up = t
        .post(
            &format!("/v1/memory_stores/{id}"),
            json!({"description": null, "metadata": {"team": null, "x": "1"}, "name": "Prefs"}),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["metadata"], json!({"x": "1"}));
    assert_eq!(up.body["name"], "Prefs");
    assert_eq!(up.body["description"], "d", "null leaves it as it was");
    // Pages of one.
    let p1 = t.get("/v1/memory_stores?limit=1").await;
    assert_eq!(p1.body["data"].as_array().unwrap().len(), 1);
    let next = p1.body["next_page"].as_str().unwrap().to_string();
    let p2 = t
        .get(&format!("/v1/memory_stores?limit=1&page={next}"))
        .await;
    assert_ne!(p1.body["data"][0]["id"], p2.body["data"][0]["id"]);
    // Archive: idempotent, hidden from lists unless asked, not updatable.
    let a = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{id}/archive"),
            &t.admin,
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body["archived_at"].is_string());
    let a2 = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{id}/archive"),
            &t.admin,
            None,
        )
        .await;
    assert_eq!(a2.body["archived_at"], a.body["archived_at"]);
    let all = t.get("/v1/memory_stores?limit=100").await;
    assert!(all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["id"] != id.as_str()));
    let all = t
        .get("/v1/memory_stores?limit=100&include_archived=true")
        .await;
    assert!(all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == id.as_str()));
    let up = t
        .post(&format!("/v1/memory_stores/{id}"), json!({"name": "x"}))
        .await;
    assert_eq!(up.status, 400, "{}", up.body);
    let mem = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{id}/memories"),
            &t.admin,
            Some(json!({"path": "/a.md", "content": "x"})),
        )
        .await;
    assert_eq!(mem.status, 400, "{}", mem.body);
    let d = t
        .call("DELETE", &format!("/v1/memory_stores/{id}"), &t.admin, None)
        .await;
    assert_eq!(d.body, json!({"id": id, "type": "memory_store_deleted"}));
    assert_eq!(t.get(&format!("/v1/memory_stores/{id}")).await.status, 404);
}

#[tokio::test]
async fn store_limits_are_400_with_codes() {
    let t = setup();
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = t
        .post("/v1/memory_stores", json!({"name": "x", "metadata": many}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["error_code"], "invalid_metadata");
    for bad in [
        json!({"name": ""}),
        json!({"name": "a\u{7}"}),
        json!({"name": "x".repeat(256)}),
    ] {
        let r = t.post("/v1/memory_stores", bad.clone()).await;
        assert_eq!(r.status, 400, "{bad} {}", r.body);
    }
    let r = t
        .post(
            "/v1/memory_stores",
            json!({"name": "x", "description": "d".repeat(1025)}),
        )
        .await;
    assert_eq!(r.status, 400);
}

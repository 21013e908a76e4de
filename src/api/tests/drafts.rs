//! Drafts over HTTP: make one, write into it through the memory-store API
//! (the draft addressed as `STORE@DRAFT` or by its own `memstore_` id), list,
//! review (diff), merge (dry run first), a conflict answered 409 with the
//! conflicts and nothing changed, discard; bad input answered with a precise
//! 4xx, never 500.

use super::*;
use serde_json::json;

async fn write(t: &T, store: &str, path: &str, content: &str) -> Value {
    let r = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{store}/memories"),
            &t.writer,
            Some(json!({"path": path, "content": content})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn update(t: &T, store: &str, id: &str, content: &str) {
    let r = t
        .call(
            "POST",
            &format!("/v1/memory_stores/{store}/memories/{id}"),
            &t.writer,
            Some(json!({ "content": content })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn read(t: &T, store: &str, id: &str) -> Resp {
    t.get(&format!("/v1/memory_stores/{store}/memories/{id}"))
        .await
}

/// The id of the memory at `path` in `store`, from its listing.
async fn id_of(t: &T, store: &str, path: &str) -> Option<String> {
    let r = t.get(&format!("/v1/memory_stores/{store}/memories")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == path)
        .map(|m| m["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_draft_is_made_written_reviewed_and_merged_over_http() {
    let t = setup();
    let kb = t.kb.clone();
    let notes = write(&t, &kb, "/notes.md", "one\ntwo\nthree\n").await;
    let nid = notes["id"].as_str().unwrap().to_string();
    let made = t
        .post("/v1/memfs/stores/kb/drafts", json!({"name": "review"}))
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["name"], "kb@review");
    let draft_api_id = made.body["api_id"].as_str().unwrap().to_string();
    assert!(draft_api_id.starts_with("memstore_"));
    assert_ne!(draft_api_id, kb);
    // The draft is addressed like a store in the memory-store API, by either
    // name. Its files are its own (ids of their own).
    let did = id_of(&t, "kb@review", "/notes.md").await.expect("listed");
    assert_ne!(did, nid);
    let got = read(&t, "kb@review", &did).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["content"], "one\ntwo\nthree\n");
    // The store's memory id is not one of the draft's.
    assert_eq!(read(&t, "kb@review", &nid).await.status, 404);
    update(&t, "kb@review", &did, "ONE\ntwo\nthree\n").await;
    write(&t, &draft_api_id, "/ideas/new.md", "fresh\n").await;
    // The store is unchanged; it changes another line meanwhile.
    assert_eq!(
        read(&t, &kb, &nid).await.body["content"],
        "one\ntwo\nthree\n"
    );
    update(&t, &kb, &nid, "one\ntwo\nTHREE\n").await;
    // Listed, per store and overall.
    let list = t.get(&format!("/v1/memfs/stores/{kb}/drafts")).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["data"][0]["name"], "kb@review");
    let all = t.get("/v1/memfs/drafts").await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 1);
    let one = t.get("/v1/memfs/drafts/kb@review").await;
    assert_eq!(one.body["api_id"], draft_api_id.as_str());
    // The draft is not a store of the store list.
    let stores = t.get("/v1/memory_stores").await;
    assert_eq!(stores.body["data"].as_array().unwrap().len(), 1);
    // Review.
    let diff = t.get("/v1/memfs/drafts/kb@review/diff?patch=true").await;
    assert_eq!(diff.status, 200, "{}", diff.body);
    let paths = |side: &str| -> Vec<String> {
        diff.body[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["change"].as_str().unwrap(),
                    c["path"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        paths("draft_changes"),
        ["added ideas", "added ideas/new.md", "modified notes.md"]
    );
    assert_eq!(paths("store_changes"), ["modified notes.md"]);
    assert!(diff.body["draft_changes"][2]["diff"]["diff"]
        .as_str()
        .unwrap()
        .contains("+ONE"));
    // Dry run, then merge.
    let dry = t
        .post(
            &format!("/v1/memfs/drafts/{draft_api_id}/merge"),
            json!({"dry_run": true}),
        )
        .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["merged"], false);
    assert_eq!(dry.body["counts"]["merged"], 1);
    assert_eq!(
        read(&t, &kb, &nid).await.body["content"],
        "one\ntwo\nTHREE\n"
    );
    let m = t.post("/v1/memfs/drafts/kb@review/merge", json!({})).await;
    assert_eq!(m.status, 200, "{}", m.body);
    assert_eq!(m.body["merged"], true);
    let session = m.body["session"].as_str().unwrap();
    assert!(session.starts_with("merge:kb@review:"), "{session}");
    assert_eq!(m.body["authors"][0]["agent"], "writer");
    assert_eq!(
        read(&t, &kb, &nid).await.body["content"],
        "ONE\ntwo\nTHREE\n"
    );

    // A conflict: 409, the conflicts listed, nothing changed.
    update(&t, "kb@review", &did, "ONE\nTWO (draft)\nthree\n").await;
    update(&t, &kb, &nid, "ONE\nTWO (store)\nTHREE\n").await;
    write(&t, "kb@review", "/later.md", "later\n").await;
    let c = t.post("/v1/memfs/drafts/kb@review/merge", json!({})).await;
    assert_eq!(c.status, 409, "{}", c.body);
    assert_eq!(c.error_type(), "conflict_error");
    assert_eq!(c.body["error"]["details"]["error_code"], "merge_conflict");
    let conflicts = c.body["error"]["details"]["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["path"], "notes.md");
    assert!(c.message().contains("notes.md"), "{}", c.message());
    assert_eq!(
        read(&t, &kb, &nid).await.body["content"],
        "ONE\nTWO (store)\nTHREE\n"
    );
    assert_eq!(id_of(&t, &kb, "/later.md").await, None);
    // The rest, on request.
    let rest = t
        .post(
            "/v1/memfs/drafts/kb@review/merge",
            json!({"skip_conflicts": true}),
        )
        .await;
    assert_eq!(rest.status, 200, "{}", rest.body);
    assert_eq!(rest.body["counts"]["taken"], 1);
    assert_eq!(rest.body["conflicts"].as_array().unwrap().len(), 1);

    // Discard.
    let d = t
        .call("DELETE", "/v1/memfs/drafts/kb@review", &t.admin, None)
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    let gone = t.get("/v1/memfs/drafts/kb@review").await;
    assert_eq!(gone.status, 404);
    assert_eq!(read(&t, "kb@review", &did).await.status, 404);
}

#[tokio::test]
async fn bad_draft_requests_get_a_precise_4xx() {
    let t = setup();
    let kb = t.kb.clone();
    let cases = [
        ("GET", "/v1/memfs/drafts/kb@", None, 400),
        ("GET", "/v1/memfs/drafts/kb@nope", None, 404),
        ("GET", "/v1/memfs/drafts/nostore@x", None, 404),
        ("GET", "/v1/memfs/drafts/kb", None, 400),
        ("GET", "/v1/memfs/drafts/kb@nope/diff", None, 404),
        (
            "POST",
            "/v1/memfs/drafts/kb@nope/merge",
            Some(json!({})),
            404,
        ),
        (
            "POST",
            "/v1/memfs/drafts/kb/merge",
            Some(json!({"dry_run": "yes"})),
            422,
        ),
        ("DELETE", "/v1/memfs/drafts/kb@nope", None, 404),
        ("GET", "/v1/memfs/stores/nostore/drafts", None, 404),
        (
            "POST",
            "/v1/memfs/stores/nostore/drafts",
            Some(json!({})),
            404,
        ),
        (
            "POST",
            "/v1/memfs/stores/kb/drafts",
            Some(json!({"name": "Bad Name"})),
            400,
        ),
        (
            "POST",
            "/v1/memfs/stores/kb/drafts",
            Some(json!({"at": "someday"})),
            400,
        ),
        (
            "POST",
            "/v1/memfs/stores/kb/drafts",
            Some(json!({"name": 7})),
            422,
        ),
    ];
    for (method, uri, body, want) in cases {
        let r = t.call(method, uri, &t.admin, body).await;
        assert_eq!(r.status, want, "{method} {uri}: {}", r.body);
        assert_eq!(r.body["type"], "error", "{method} {uri}: {}", r.body);
    }
    let ok = t
        .post(
            &format!("/v1/memfs/stores/{kb}/drafts"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    let dup = t
        .post(
            &format!("/v1/memfs/stores/{kb}/drafts"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    // A draft of a draft is refused.
    let dd = t.post("/v1/memfs/stores/kb@x/drafts", json!({})).await;
    assert_eq!(dd.status, 400, "{}", dd.body);
    // A reader may see drafts but not make, merge or discard them.
    let r = t
        .call(
            "POST",
            "/v1/memfs/stores/kb/drafts",
            &t.reader,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = t
        .call(
            "POST",
            "/v1/memfs/drafts/kb@x/merge",
            &t.reader,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = t
        .call("DELETE", "/v1/memfs/drafts/kb@x", &t.reader, None)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = t
        .call("GET", "/v1/memfs/drafts/kb@x", &t.reader, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// An agent the store's drafts rule names may not merge or discard drafts
/// (it would wave its own changes through).
#[tokio::test]
async fn an_agent_under_the_drafts_rule_may_not_merge() {
    let t = setup();
    let (_, mut set) = t.ops.store_settings(&operator(), "kb").unwrap();
    set.set("drafts.agents=untrusted-*").unwrap();
    t.ops.set_store_settings(&operator(), "kb", &set).unwrap();
    let k = key(&t.ops, "untrusted-7", Role::Writer, &[], None);
    let made = t
        .call(
            "POST",
            "/v1/memfs/stores/kb/drafts",
            &k,
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let r = t
        .call(
            "POST",
            "/v1/memfs/drafts/kb@mine/merge",
            &k,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.message().contains("drafts rule"), "{}", r.message());
    let r = t
        .call(
            "POST",
            "/v1/memfs/drafts/kb@mine/merge",
            &t.writer,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

//! The OpenAPI document lists every route, and every route it lists exists.

use super::*;

/// `(method, path)` of every `#[utoipa::path]` in the API's sources.
fn annotated() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for chunk in text.split("#[utoipa::path(").skip(1) {
            let method = chunk.split(',').next().unwrap().trim().to_string();
            let path = chunk
                .split("path = \"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string();
            out.push((method, path));
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_answers() {
    let t = setup();
    let doc = t.get("/v1/openapi.json").await.body;
    let paths = doc["paths"].as_object().unwrap();
    let routes = annotated();
    assert!(routes.len() >= 16, "{routes:?}");
    for (method, path) in &routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the OpenAPI document"
        );
    }
    let mut n = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            n += 1;
            assert!(
                routes.iter().any(|(m, p)| m == method && p == path),
                "{method} {path} is documented but not annotated"
            );
            let uri = path
                .replace("{memory_store_id}", &t.kb)
                .replace("{memory_id}", "mem_999999")
                .replace("{memory_version_id}", "memver_999999")
                .replace("{session_id}", "sesn_1");
            if path.ends_with("/events") {
                continue;
            }
            let r = t
                .call(
                    &method.to_uppercase(),
                    &uri,
                    &t.admin,
                    Some(serde_json::json!({})),
                )
                .await;
            assert!(
                r.status != 405
                    && r.body["error"]["message"]
                        .as_str()
                        .is_none_or(|m| !m.starts_with("no route")),
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
        }
    }
    assert_eq!(n, routes.len());
}

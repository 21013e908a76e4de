//! The memory tool on an in-memory database: the whole command script of the
//! differential test (`tests/python/memory_tool_script.json`) gives exactly
//! what the SDK's reference implementation gave for it
//! (`memory_tool_expected.json`, recorded with `memory_tool_reference.py` and
//! re-checked against the live reference by `test_memory_tool.py`); plus what
//! a local directory has no notion of: preconditions, read-only stores,
//! invisible stores, attribution and history.

use super::*;
use crate::ids::Identity;
use crate::ops::stores::NewStore;
use crate::ops::{Principal, Role};
use crate::store::{AuditFilter, Db, Scope};
use serde_json::json;
use std::sync::Arc;

const SCRIPT: &str = include_str!("../../../tests/python/memory_tool_script.json");
const EXPECTED: &str = include_str!("../../../tests/python/memory_tool_expected.json");

fn admin() -> Principal {
    Principal::operator(Identity::new("memfsctl", "memfsctl-1", Some("root")))
}

fn agent(role: Role) -> Principal {
    Principal {
        who: Identity::new("scribe", "conv-1", Some("alice")),
        role,
        stores: None,
        key_id: None,
        key_name: None,
        rights_of: None,
    }
}

fn setup() -> Ops {
    let ops = Ops::new(Arc::new(Db::open_in_memory().unwrap()));
    for slug in ["kb", "other"] {
        ops.create_store(
            &admin(),
            &NewStore {
                slug: Some(slug.into()),
                scope: Some(Scope::Org),
                ..Default::default()
            },
        )
        .unwrap();
    }
    ops
}

/// The script's shorthands, as `memory_tool_reference.py` expands them:
/// `@repeat:N` as a whole string is N times `x`, `@nameN` in a string is a
/// name of N characters.
fn expand(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        let v = match v.as_str() {
            Some(s) => {
                let s = match s.strip_prefix("@repeat:") {
                    Some(n) => "x".repeat(n.parse().unwrap()),
                    None => s.to_string(),
                };
                let s = match s.find("@name") {
                    Some(i) => {
                        let digits: String = s[i + 5..]
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        let n: usize = digits.parse().unwrap();
                        format!("{}{}{}", &s[..i], "n".repeat(n), &s[i + 5 + digits.len()..])
                    }
                    None => s,
                };
                Value::String(s)
            }
            None => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

#[test]
fn the_script_gives_exactly_what_the_reference_gave() {
    let ops = setup();
    let p = agent(Role::Writer);
    let script: Vec<Value> = serde_json::from_str(SCRIPT).unwrap();
    let expected: Vec<(String, bool)> = serde_json::from_str(EXPECTED).unwrap();
    assert_eq!(script.len(), expected.len());
    let mut wrong = Vec::new();
    for (i, (cmd, (want, want_err))) in script.iter().zip(&expected).enumerate() {
        let got = ops.memory_tool(&p, "kb", &expand(cmd)).unwrap();
        if got.content != *want || got.is_error != *want_err {
            wrong.push(format!(
                "#{i} {cmd}\n  want ({want_err}): {want:?}\n  got  ({}): {:?}",
                got.is_error, got.content
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differences:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn sizes_are_formatted_as_the_reference_formats_them() {
    for (n, s) in [
        (0, "0B"),
        (1, "1B"),
        (1023, "1023B"),
        (1024, "1K"),
        (1049, "1.0K"),
        (1100, "1.1K"),
        (1280, "1.2K"),
        (1536, "1.5K"),
        (2047, "2.0K"),
        (10 * 1024 * 1024 + 5, "10.0M"),
        (5 << 30, "5G"),
        (3 << 40, "3072G"),
    ] {
        assert_eq!(format_size(n), s, "{n}");
    }
}

fn run(ops: &Ops, p: &Principal, cmd: Value) -> ToolResult {
    ops.memory_tool(p, "kb", &cmd).unwrap()
}

#[test]
fn expected_sha256_guards_every_change_of_a_file() {
    let ops = setup();
    let p = agent(Role::Writer);
    let path = "/memories/a.md";
    assert!(
        !run(
            &ops,
            &p,
            json!({"command": "create", "path": path, "file_text": "one\n"})
        )
        .is_error
    );
    let sha = digest::hex(&digest::sha256(b"one\n"));
    let stale = digest::hex(&digest::sha256(b"other"));
    for cmd in [
        json!({"command": "str_replace", "path": path, "old_str": "one", "new_str": "two", "expected_sha256": stale}),
        json!({"command": "insert", "path": path, "insert_line": 0, "insert_text": "x", "expected_sha256": stale}),
        json!({"command": "delete", "path": path, "expected_sha256": stale}),
        json!({"command": "rename", "old_path": path, "new_path": "/memories/b.md", "expected_sha256": stale}),
    ] {
        let r = run(&ops, &p, cmd.clone());
        assert!(
            r.is_error && r.content.contains("expected content"),
            "{cmd}: {r:?}"
        );
    }
    let r = run(
        &ops,
        &p,
        json!({"command": "str_replace", "path": path, "old_str": "one", "new_str": "two", "expected_sha256": "nothex"}),
    );
    assert!(r.is_error && r.content.contains("expected_sha256"), "{r:?}");
    let r = run(
        &ops,
        &p,
        json!({"command": "str_replace", "path": path, "old_str": "one", "new_str": "two", "expected_sha256": sha}),
    );
    assert!(!r.is_error, "{r:?}");
    let f = ops.read_file(&p, "kb", "a.md").unwrap();
    assert_eq!(f.data, b"two\n");
}

#[test]
fn a_reader_gets_results_not_failures_and_changes_nothing() {
    let ops = setup();
    let w = agent(Role::Writer);
    run(
        &ops,
        &w,
        json!({"command": "create", "path": "/memories/a.md", "file_text": "x\n"}),
    );
    let r = agent(Role::Reader);
    let view = run(
        &ops,
        &r,
        json!({"command": "view", "path": "/memories/a.md"}),
    );
    assert!(
        !view.is_error && view.content.contains("     1\tx"),
        "{view:?}"
    );
    for cmd in [
        json!({"command": "create", "path": "/memories/b.md", "file_text": "x"}),
        json!({"command": "str_replace", "path": "/memories/a.md", "old_str": "x", "new_str": "y"}),
        json!({"command": "insert", "path": "/memories/a.md", "insert_line": 0, "insert_text": "y"}),
        json!({"command": "delete", "path": "/memories/a.md"}),
        json!({"command": "rename", "old_path": "/memories/a.md", "new_path": "/memories/c.md"}),
    ] {
        let res = run(&ops, &r, cmd.clone());
        assert!(
            res.is_error && res.content.contains("may only read"),
            "{cmd}: {res:?}"
        );
    }
    assert_eq!(ops.read_file(&w, "kb", "a.md").unwrap().data, b"x\n");
    assert!(ops.node_at(&w, "kb", "b.md").unwrap().is_none());
}

#[test]
fn a_store_the_principal_cannot_see_fails_the_call() {
    let ops = setup();
    let mut p = agent(Role::Writer);
    p.stores = Some(vec!["other".into()]);
    let e = ops
        .memory_tool(&p, "kb", &json!({"command": "view", "path": "/memories"}))
        .unwrap_err();
    assert!(matches!(e, OpError::NotFound(_)), "{e:?}");
}

#[test]
fn changes_are_versions_attributed_to_the_caller() {
    let ops = setup();
    let p = agent(Role::Writer);
    let cmds = [
        json!({"command": "create", "path": "/memories/d/a.md", "file_text": "1\n"}),
        json!({"command": "str_replace", "path": "/memories/d/a.md", "old_str": "1", "new_str": "2"}),
        json!({"command": "insert", "path": "/memories/d/a.md", "insert_line": 1, "insert_text": "3"}),
        json!({"command": "rename", "old_path": "/memories/d", "new_path": "/memories/e/d"}),
        json!({"command": "delete", "path": "/memories/e"}),
    ];
    for c in cmds {
        let r = run(&ops, &p, c.clone());
        assert!(!r.is_error, "{c}: {r:?}");
    }
    let h = ops.file_history(&admin(), "kb", "d/a.md").unwrap();
    assert_eq!(h.versions.len(), 3, "{h:?}");
    let entries = ops
        .read(|tx| {
            tx.audit_entries(&AuditFilter {
                ascending: true,
                ..Default::default()
            })
        })
        .unwrap();
    let mine: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.agent == "scribe")
        .map(|e| (e.op.as_str(), e.path.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        mine,
        [
            ("mkdir", "d"),
            ("create", "d/a.md"),
            ("write", "d/a.md"),
            ("write", "d/a.md"),
            ("mkdir", "e"),
            ("rename", "d"),
            ("unlink", "e/d/a.md"),
            ("rmdir", "e/d"),
            ("rmdir", "e"),
        ]
    );
    assert!(entries
        .iter()
        .filter(|e| e.agent == "scribe")
        .all(|e| e.session == "conv-1" && e.user.as_deref() == Some("alice")));
}

#[test]
fn a_command_that_is_not_an_object_is_an_unknown_command() {
    let ops = setup();
    let r = run(&ops, &agent(Role::Writer), json!("view /memories"));
    assert_eq!(
        r,
        ToolResult {
            content: "NotImplementedError('Unknown command: None')".into(),
            is_error: true
        }
    );
    let r = run(&ops, &agent(Role::Writer), json!({"command": "it's"}));
    assert_eq!(r.content, "NotImplementedError(\"Unknown command: it's\")");
}

/// Removing or moving a directory is checked for every path below it before
/// anything changes: an append-only file inside makes the whole command fail
/// and leaves the tree as it was.
#[test]
fn a_protected_file_inside_keeps_its_directory_whole() {
    let ops = setup();
    let p = agent(Role::Writer);
    for f in ["/memories/logs/a.md", "/memories/logs/keep/journal.md"] {
        let r = run(
            &ops,
            &p,
            json!({"command": "create", "path": f, "file_text": "x\n"}),
        );
        assert!(!r.is_error, "{r:?}");
    }
    let (_, mut set) = ops.store_settings(&admin(), "kb").unwrap();
    set.policy.append_only = vec!["logs/keep/**".into()];
    ops.set_store_settings(&admin(), "kb", &set).unwrap();
    let r = run(
        &ops,
        &p,
        json!({"command": "delete", "path": "/memories/logs"}),
    );
    assert!(r.is_error && r.content.contains("append-only"), "{r:?}");
    let r = run(
        &ops,
        &p,
        json!({"command": "rename", "old_path": "/memories/logs", "new_path": "/memories/old"}),
    );
    assert!(r.is_error && r.content.contains("append-only"), "{r:?}");
    for f in ["logs/a.md", "logs/keep/journal.md"] {
        assert!(ops.node_at(&p, "kb", f).unwrap().is_some(), "{f}");
    }
    // Unprotected parts still go, one version-keeping removal each.
    let r = run(
        &ops,
        &p,
        json!({"command": "delete", "path": "/memories/logs/a.md"}),
    );
    assert_eq!(r.content, "Successfully deleted /memories/logs/a.md");
    assert_eq!(
        ops.file_history(&admin(), "kb", "logs/a.md")
            .unwrap()
            .versions
            .len(),
        1
    );
}

//! The operations on the past and the operator's operations, on an in-memory
//! database: who may do what (a reader or writer is refused admin operations;
//! a store a principal may not see does not exist for it), the audit log a
//! page at a time, diffs, and a session rollback's plan before and after.

use super::history::{LineKind, Pick};
use super::log::LogQuery;
use super::memories::{memory_id, MemoryUpdate};
use super::rollback::Rollback;
use super::stores::NewStore;
use super::{Ops, Principal, Role};
use crate::error::OpError;
use crate::ids::{Identity, Ino, VersionId};
use crate::interchange::progress::Progress;
use crate::store::{Db, Scope};
use std::sync::Arc;

fn admin() -> Principal {
    Principal::operator(Identity::new("memfsctl", "memfsctl-1", Some("root")))
}

/// A key-like principal acting as `agent` in `session`.
fn principal(role: Role, agent: &str, session: &str, user: Option<&str>) -> Principal {
    Principal {
        who: Identity::new(agent, session, user),
        role,
        stores: None,
        key_id: None,
        key_name: None,
        rights_of: None,
    }
}

/// An org store `kb` and a user store `alice`.
fn setup() -> Ops {
    let ops = Ops::new(Arc::new(Db::open_in_memory().unwrap()));
    let a = admin();
    for (slug, scope, owner) in [
        ("kb", Scope::Org, None),
        ("alice", Scope::User, Some("alice")),
    ] {
        ops.create_store(
            &a,
            &NewStore {
                slug: Some(slug.into()),
                scope: Some(scope),
                owner: owner.map(str::to_string),
                ..Default::default()
            },
        )
        .unwrap();
    }
    ops
}

/// Writes `content` to `/path` in `store` as `p` (creating the file).
fn put(ops: &Ops, p: &Principal, store: &str, path: &str, content: &str) -> Ino {
    let rel = path.trim_start_matches('/');
    if let Some(f) = ops.live_file(&admin(), store, rel).unwrap() {
        let u = MemoryUpdate {
            content: Some(content.into()),
            ..Default::default()
        };
        ops.update_memory(p, store, &memory_id(f.ino), &u, false)
            .unwrap();
        return f.ino;
    }
    ops.create_memory(p, store, path, content, false)
        .unwrap()
        .ino
}

/// Version ids of a file, oldest first.
fn versions(ops: &Ops, store: &str, path: &str) -> Vec<VersionId> {
    let mut v: Vec<VersionId> = ops
        .file_history(&admin(), store, path)
        .unwrap()
        .versions
        .iter()
        .map(|e| e.version.id)
        .collect();
    v.reverse();
    v
}

fn content(ops: &Ops, store: &str, path: &str) -> String {
    let c = ops
        .file_content(&admin(), store, path, &Pick::Head)
        .unwrap();
    String::from_utf8(c.data).unwrap()
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, OpError>, what: &str) {
    match r {
        Err(OpError::Forbidden(_)) => {}
        other => panic!("{what}: expected Forbidden, got {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(r: Result<T, OpError>, what: &str) {
    match r {
        Err(e @ OpError::NotFound(_)) => assert_eq!(e.http().status, 404, "{what}"),
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[test]
fn readers_and_writers_are_refused_admin_operations() {
    let ops = setup();
    let v = {
        put(&ops, &admin(), "kb", "/f.md", "one\n");
        put(&ops, &admin(), "kb", "/f.md", "two\n");
        versions(&ops, "kb", "f.md")[0]
    };
    let config = crate::config::Config::parse("", std::path::Path::new("t.toml")).unwrap();
    for role in [Role::Reader, Role::Writer] {
        let p = principal(role, "bot", "s1", None);
        forbidden(ops.redact(&p, v), "redact");
        forbidden(ops.purge_plan(&p, "kb", "f.md"), "purge plan");
        forbidden(ops.purge(&p, "kb", "f.md"), "purge");
        forbidden(ops.forget_user_plan(&p, "alice"), "forget plan");
        forbidden(ops.forget_user(&p, "alice"), "forget");
        forbidden(ops.scrub(&p), "scrub");
        let file = Rollback::File {
            store: "kb".into(),
            path: "f.md".into(),
            to: v,
        };
        forbidden(ops.rollback(&p, &file, true), "rollback");
        forbidden(ops.break_lease(&p, "kb", "f.md"), "lease break");
        forbidden(ops.fsck(&p), "fsck");
        forbidden(ops.verify_audit(&p), "audit verify");
        forbidden(ops.change_archived(&p, "kb", true), "archive");
        forbidden(ops.shred_store(&p, "kb"), "shred");
        forbidden(ops.store_details(&p, "kb"), "store details");
        forbidden(
            ops.assign_store_settings(&p, "kb", &["pii=block".into()]),
            "store set",
        );
        forbidden(
            ops.export_archive(&p, "kb", true, Vec::new(), &mut Progress::silent()),
            "export",
        );
        forbidden(
            ops.import_archive(&p, &config, &b""[..], None, &mut Progress::silent()),
            "import",
        );
        // Reading the past of a visible store is allowed.
        assert_eq!(
            ops.file_history(&p, "kb", "f.md").unwrap().versions.len(),
            2
        );
    }
    // The API's redaction and memfsctl's are one path: the same refusal.
    let writer = principal(Role::Writer, "bot", "s1", None);
    forbidden(
        ops.redact_version(&writer, "kb", &format!("memver_{}", v.0)),
        "API redaction",
    );
    // An admin limited to some stores cannot reach the whole database.
    let mut scoped = admin();
    scoped.stores = Some(vec!["kb".into()]);
    forbidden(ops.forget_user(&scoped, "alice"), "scoped forget");
    forbidden(ops.scrub(&scoped), "scoped scrub");
}

#[test]
fn invisible_stores_do_not_exist_for_a_principal() {
    let ops = setup();
    put(&ops, &admin(), "alice", "/diary.md", "dear diary\n");
    put(&ops, &admin(), "kb", "/kb.md", "shared\n");
    let bob = principal(Role::Reader, "bot", "s-bob", Some("bob"));
    not_found(ops.file_history(&bob, "alice", "diary.md"), "history");
    not_found(
        ops.file_content(&bob, "alice", "diary.md", &Pick::Head),
        "cat",
    );
    not_found(
        ops.diff(&bob, "alice", "diary.md", VersionId(1), None),
        "diff",
    );
    let q = LogQuery {
        store: Some("alice".into()),
        ..Default::default()
    };
    not_found(ops.log(&bob, &q), "log --store");
    // Without a store filter, the log holds only what bob may see.
    let seen = ops.log(&bob, &LogQuery::default()).unwrap();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|e| e.store.as_deref() == Some("kb")),
        "{seen:#?}"
    );
    // Alice herself sees her store; an admin limited to kb does not.
    let alice = principal(Role::Reader, "bot", "s-alice", Some("alice"));
    assert_eq!(content(&ops, "alice", "diary.md"), "dear diary\n");
    assert!(ops.file_history(&alice, "alice", "diary.md").is_ok());
    let mut scoped = admin();
    scoped.stores = Some(vec!["kb".into()]);
    not_found(ops.purge_plan(&scoped, "alice", "diary.md"), "scoped purge");
    let v = versions(&ops, "alice", "diary.md")[0];
    not_found(ops.redact(&scoped, v), "scoped redact");
    // A version in a store one may not see is "no version", not forbidden.
    let err = ops.redact(&scoped, v).unwrap_err().to_string();
    assert!(err.contains(&format!("no version {v}")), "{err}");
}

#[test]
fn the_log_pages_by_audit_id_and_refuses_foreign_cursors() {
    let ops = setup();
    for i in 0..7 {
        put(&ops, &admin(), "kb", &format!("/f{i}.md"), "x\n");
    }
    let q = LogQuery {
        store: Some("kb".into()),
        limit: Some(3),
        ..Default::default()
    };
    let all = ops
        .log(
            &admin(),
            &LogQuery {
                limit: None,
                ..q.clone()
            },
        )
        .unwrap();
    assert!(all.len() >= 8, "{}", all.len());
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = ops.log_page(&admin(), &q, cursor.as_deref()).unwrap();
        assert!(page.data.len() <= 3);
        paged.extend(page.data.into_iter().map(|e| e.id));
        match page.next_page {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let ids: Vec<_> = all.iter().map(|e| e.id).collect();
    assert_eq!(paged, ids, "pages together are the whole log, newest first");
    // Filters apply across pages.
    let creates = LogQuery {
        op: Some("create".into()),
        ..q.clone()
    };
    let first = ops.log_page(&admin(), &creates, None).unwrap();
    assert!(first.data.iter().all(|e| e.op == "create"));
    let second = ops
        .log_page(&admin(), &creates, first.next_page.as_deref())
        .unwrap();
    assert!(second.data.iter().all(|e| e.id < first.data[2].id));
    // A cursor from another listing, garbage, or an absurd limit: 400.
    let foreign = super::page::encode("mem", &["/a"]);
    for bad in [foreign.as_str(), "pg_zz", "nonsense"] {
        let err = ops.log_page(&admin(), &q, Some(bad)).unwrap_err();
        assert_eq!(err.http().status, 400, "{bad}: {err}");
    }
    let huge = LogQuery {
        limit: Some(100_000),
        ..q
    };
    assert_eq!(
        ops.log_page(&admin(), &huge, None)
            .unwrap_err()
            .http()
            .status,
        400
    );
    // A path filter without a store is a client error.
    let pathless = LogQuery {
        path: Some("f1.md".into()),
        ..Default::default()
    };
    assert_eq!(ops.log(&admin(), &pathless).unwrap_err().http().status, 400);
}

/// A diff line as a tuple: kind, old and new line numbers, text, no newline.
type Line<'a> = (LineKind, Option<usize>, Option<usize>, &'a str, bool);

#[test]
fn diffs_are_hunks_and_unified_text() {
    let ops = setup();
    put(&ops, &admin(), "kb", "/f.md", "a\nb\nc\n");
    put(&ops, &admin(), "kb", "/f.md", "a\nB\nc\nd");
    let v = versions(&ops, "kb", "f.md");
    let d = ops.diff(&admin(), "kb", "f.md", v[0], Some(v[1])).unwrap();
    assert_eq!(
        (d.from, d.to, d.same, d.binary),
        (Some(v[0]), Some(v[1]), false, false)
    );
    assert!(
        d.diff.contains(&format!("--- kb/f.md@v{}", v[0]))
            && d.diff.contains(&format!("+++ kb/f.md@v{}", v[1]))
            && d.diff.contains("@@ -1,3 +1,4 @@")
            && d.diff.contains("\n-b\n+B\n"),
        "{}",
        d.diff
    );
    assert_eq!(d.hunks.len(), 1);
    let h = &d.hunks[0];
    assert_eq!(
        (h.old_start, h.old_lines, h.new_start, h.new_lines),
        (1, 3, 1, 4)
    );
    let got: Vec<Line<'_>> = h
        .lines
        .iter()
        .map(|l| {
            (
                l.kind,
                l.old_line,
                l.new_line,
                l.text.as_str(),
                l.no_newline,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (LineKind::Context, Some(1), Some(1), "a", false),
            (LineKind::Delete, Some(2), None, "b", false),
            (LineKind::Insert, None, Some(2), "B", false),
            (LineKind::Context, Some(3), Some(3), "c", false),
            (LineKind::Insert, None, Some(4), "d", true),
        ]
    );
    // Against the head by default; a version with itself is the same.
    let head = ops.diff(&admin(), "kb", "f.md", v[0], None).unwrap();
    assert_eq!(head.to, Some(v[1]));
    let same = ops.diff(&admin(), "kb", "f.md", v[1], None).unwrap();
    assert!(same.same && same.diff.is_empty() && same.hunks.is_empty());
    // Another file's version is refused, and says whose it is.
    put(&ops, &admin(), "kb", "/g.md", "g\n");
    let g = versions(&ops, "kb", "g.md")[0];
    let err = ops.diff(&admin(), "kb", "f.md", g, None).unwrap_err();
    assert_eq!(err.http().status, 400);
    assert!(err.to_string().contains("another file (g.md)"), "{err}");
}

#[test]
fn binary_content_is_noted_not_diffed() {
    let (a, b) = (b"\0\x01".as_slice(), b"\0\x02".as_slice());
    let (text, hunks) = super::history::diff_texts(a, b, "x@v1", "x@v2");
    assert_eq!(text, "Binary files x@v1 and x@v2 differ\n");
    assert!(hunks.is_empty());
}

#[test]
fn a_session_rollback_plans_first_then_undoes_with_conflicts_left_alone() {
    let ops = setup();
    let a = admin();
    put(&ops, &a, "kb", "/f.md", "good\n");
    put(&ops, &a, "kb", "/old.md", "keep me\n");
    put(&ops, &a, "kb", "/contested.md", "base\n");
    let bad = principal(Role::Writer, "agent-b", "sess-bad", None);
    put(&ops, &bad, "kb", "/f.md", "poisoned\n");
    put(&ops, &bad, "kb", "/new.md", "junk\n");
    put(&ops, &bad, "kb", "/contested.md", "bad edit\n");
    let old = ops.live_file(&a, "kb", "old.md").unwrap().unwrap();
    ops.delete_memory(&bad, "kb", &memory_id(old.ino), None)
        .unwrap();
    let later = principal(Role::Writer, "agent-c", "sess-c", None);
    put(&ops, &later, "kb", "/contested.md", "fixed by c\n");

    let what = Rollback::Session {
        session: "sess-bad".into(),
        store: None,
        force: false,
    };
    let before = ops.log(&a, &LogQuery::default()).unwrap().len();
    let plan = ops.rollback(&a, &what, true).unwrap();
    assert!(plan.dry_run && !plan.forced);
    assert!(
        plan.steps.iter().all(|s| s.outcome == "dry-run"),
        "{plan:#?}"
    );
    let steps: Vec<(&str, &str)> = plan
        .steps
        .iter()
        .map(|s| (s.action, s.path.as_str()))
        .collect();
    for want in [
        ("remove", "new.md"),
        ("bring-back", "old.md"),
        ("restore-content", "f.md"),
    ] {
        assert!(steps.contains(&want), "{want:?} not in {steps:?}");
    }
    assert!(
        !steps.iter().any(|(_, p)| *p == "contested.md"),
        "{steps:?}"
    );
    assert_eq!(plan.conflicts.len(), 1, "{plan:#?}");
    let c = &plan.conflicts[0];
    assert_eq!(
        (
            c.path.as_str(),
            c.later_session.as_str(),
            c.later_agent.as_str()
        ),
        ("contested.md", "sess-c", "agent-c")
    );
    // A dry run changes nothing.
    assert_eq!(ops.log(&a, &LogQuery::default()).unwrap().len(), before);
    assert_eq!(content(&ops, "kb", "f.md"), "poisoned\n");

    let done = ops.rollback(&a, &what, false).unwrap();
    assert_eq!(done.failed(), 0, "{done:#?}");
    assert!(done.steps.iter().all(|s| s.outcome == "done"), "{done:#?}");
    assert_eq!(content(&ops, "kb", "f.md"), "good\n");
    assert_eq!(content(&ops, "kb", "old.md"), "keep me\n");
    assert_eq!(content(&ops, "kb", "contested.md"), "fixed by c\n");
    assert!(ops.live_file(&a, "kb", "new.md").unwrap().is_none());
    // The rollback's changes are the operator's, in a rollback session, so
    // a second run finds nothing new to do and no new conflicts.
    let undo = ops.log(&a, &LogQuery::default()).unwrap();
    let mine = &undo[..undo.len() - before];
    assert!(mine
        .iter()
        .all(|e| e.agent == "memfsctl" && e.session.starts_with("rollback:sess-bad:")));
    let again = ops.rollback(&a, &what, false).unwrap();
    assert_eq!(again.conflicts.len(), 1);
    assert!(again
        .steps
        .iter()
        .all(|s| s.outcome == "unchanged" || s.outcome == "done"));
    // Nothing to undo for an unknown session: 404.
    let none = Rollback::Session {
        session: "nobody".into(),
        store: None,
        force: false,
    };
    assert_eq!(
        ops.rollback(&a, &none, true).unwrap_err().http().status,
        404
    );
}

#[test]
fn a_file_rolls_back_to_a_version_of_its_own() {
    let ops = setup();
    let a = admin();
    put(&ops, &a, "kb", "/f.md", "one\n");
    put(&ops, &a, "kb", "/f.md", "two\n");
    let v = versions(&ops, "kb", "f.md");
    let to_v1 = Rollback::File {
        store: "kb".into(),
        path: "f.md".into(),
        to: v[0],
    };
    let plan = ops.rollback(&a, &to_v1, true).unwrap();
    assert_eq!(plan.steps[0].outcome, "dry-run");
    assert_eq!(content(&ops, "kb", "f.md"), "two\n");
    let done = ops.rollback(&a, &to_v1, false).unwrap();
    assert_eq!(done.steps[0].outcome, "done");
    assert_eq!(content(&ops, "kb", "f.md"), "one\n");
    let again = ops.rollback(&a, &to_v1, false).unwrap();
    assert_eq!(again.steps[0].outcome, "unchanged");
    let missing = Rollback::File {
        store: "kb".into(),
        path: "f.md".into(),
        to: VersionId(999_999),
    };
    assert_eq!(
        ops.rollback(&a, &missing, true).unwrap_err().http().status,
        404
    );
}

#[test]
fn redaction_is_one_path_for_memfsctl_and_the_api() {
    let ops = setup();
    let a = admin();
    put(&ops, &a, "kb", "/f.md", "secret\n");
    put(&ops, &a, "kb", "/f.md", "clean\n");
    let v = versions(&ops, "kb", "f.md");
    // The head of a live file: refused the same way by both.
    let head = ops.redact(&a, v[1]).unwrap_err();
    assert_eq!(head.http().status, 409, "{head}");
    let api = ops
        .redact_version(&a, "kb", &format!("memver_{}", v[1].0))
        .unwrap_err();
    assert_eq!(api.to_string(), head.to_string());
    // Through the API's entry point: redacted, with its audit entry, and a
    // second API call changes nothing.
    let r = ops
        .redact_version(&a, "kb", &format!("memver_{}", v[0].0))
        .unwrap();
    assert!(r.entry.redacted_ns.is_some());
    ops.redact_version(&a, "kb", &format!("memver_{}", v[0].0))
        .unwrap();
    let redactions = LogQuery {
        op: Some("redact".into()),
        ..Default::default()
    };
    assert_eq!(ops.log(&a, &redactions).unwrap().len(), 1);
    // memfsctl's entry point refuses a second redaction (a conflict).
    assert_eq!(ops.redact(&a, v[0]).unwrap_err().http().status, 409);
    let err = ops
        .file_content(&a, "kb", "f.md", &Pick::Version(v[0]))
        .unwrap_err();
    assert!(err.to_string().contains("redacted"), "{err}");
}

#[test]
fn store_settings_change_by_assignments_all_or_none() {
    let ops = setup();
    let a = admin();
    let set = ops
        .assign_store_settings(&a, "kb", &["writers=curator".into(), "pii=block".into()])
        .unwrap();
    assert_eq!(set.writers, Some(vec!["curator".to_string()]));
    let err = ops
        .assign_store_settings(&a, "kb", &["max_files=3".into(), "colour=red".into()])
        .unwrap_err();
    assert_eq!(err.http().status, 400);
    let details = ops.store_details(&a, "kb").unwrap();
    assert_eq!(details.settings, set, "a refused batch changed nothing");
    assert!(details.row.api_id.starts_with("memstore_"));
    // A writer not in the list may no longer write.
    let bot = principal(Role::Writer, "bot", "s", None);
    assert!(ops.create_memory(&bot, "kb", "/x.md", "x", false).is_err());
    // Archiving is strict here (the API's archive is idempotent).
    ops.change_archived(&a, "kb", true).unwrap();
    assert_eq!(
        ops.change_archived(&a, "kb", true)
            .unwrap_err()
            .http()
            .status,
        409
    );
}

//! Drafts on real mounts: an agent writing into a draft (`memfs mount --store
//! STORE@DRAFT`, or sent there by the store's drafts rule) leaves the shared
//! store alone while other mounts read it; `memfsctl draft diff` and `merge`
//! bring its changes into the store, which every mount of it then sees; a
//! conflicting merge reports the conflict and changes nothing; a merge is
//! undone as one unit with `rollback --session`; a draft costs no copy of the
//! store's content. Every file is made by the test's agents through the
//! mounts (nothing is pre-created in the database). Needs root and /dev/fuse.

mod common;

use common::{assert_success, sh, Env};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[daemon]
lease_ttl_secs = 5.0
lease_wait_secs = 5.0

[[stores]]
name = "kb"
scope = "org"
description = "shared test store"

[stores.drafts]
agents = ["untrusted-*"]
"#;

/// How long a change may take to show in another mount (a deadline for a
/// poll, not a speed requirement).
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

/// A file's text, or why it cannot be read.
fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Waits until `path` reads `want` (`None`: does not exist).
fn eventually_reads(path: &Path, want: Option<&str>) {
    let start = Instant::now();
    loop {
        let got = read(path).ok();
        if got.as_deref() == want {
            return;
        }
        if start.elapsed() > VISIBLE_WITHIN {
            panic!(
                "{} reads {got:?}, want {want:?} (after {VISIBLE_WITHIN:?})",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `memfsctl --json ARGS`, expected to fail: its exit status must be
/// non-zero; returns (stdout parsed as JSON if it is JSON, stderr).
fn ctl_fails(env: &Env, args: &[&str]) -> (Option<Value>, String) {
    let out = env.run(env.memfsctl().arg("--json").args(args));
    assert!(
        !out.status.success(),
        "memfsctl {} unexpectedly succeeded:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    (
        serde_json::from_slice(&out.stdout).ok(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `memfsctl ARGS` as text, asserting success.
fn ctl_text(env: &Env, args: &[&str]) -> String {
    let out = env.run(env.memfsctl().args(args));
    assert_success(&format!("memfsctl {}", args.join(" ")), &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn changes(v: &Value, side: &str) -> Vec<(String, String)> {
    v[side]
        .as_array()
        .unwrap_or_else(|| panic!("no {side} in {v}"))
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap_or_default().to_string(),
                c["change"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A draft mount writes where the store does not see it; diff shows both
/// sides; merge brings the draft's changes into the store (seen by a mount
/// of the store); a conflicting merge changes nothing and says why; the merge
/// is undone as one unit by rolling back its session.
#[test]
fn a_draft_mount_is_reviewed_merged_and_the_merge_rolled_back() {
    let env = Env::with_config(CONFIG);
    let store = env.mount("planner", "sess-store", None, &["kb"]);
    let kb = store.store("kb");
    sh(&kb, "printf 'one\\ntwo\\nthree\\nfour\\n' > notes.md");
    let made = env.ctl(&["draft", "create", "kb", "--name", "review"]);
    assert_eq!(made["name"], "kb@review");
    let draft = env.mount("writer", "sess-draft", None, &["kb@review"]);
    // The agent sees an ordinary directory named after the store.
    let dk = draft.store("kb");
    assert_eq!(
        read(&dk.join("notes.md")).unwrap(),
        "one\ntwo\nthree\nfour\n"
    );
    // Tools that replace the file (sed -i renames a new file over it) and
    // plain writes.
    sh(
        &dk,
        "sed -i 's/^two$/TWO (draft)/' notes.md && mkdir -p ideas && echo fresh > ideas/new.md",
    );
    // Meanwhile the store changes another line of the same file.
    sh(&kb, "sed -i 's/^four$/FOUR (store)/' notes.md");
    // The store did not take the draft's writes, in this mount or another.
    let other = env.mount("reader", "sess-reader", None, &["kb:ro"]);
    let ok = other.store("kb");
    eventually_reads(
        &ok.join("notes.md"),
        Some("one\ntwo\nthree\nFOUR (store)\n"),
    );
    assert!(!ok.join("ideas").exists(), "the draft's directory leaked");
    assert!(!kb.join("ideas/new.md").exists());
    assert_eq!(
        read(&dk.join("notes.md")).unwrap(),
        "one\nTWO (draft)\nthree\nfour\n",
        "the draft does not see the store's later change"
    );

    let diff = env.ctl(&["draft", "diff", "kb@review"]);
    assert_eq!(
        changes(&diff, "draft_changes"),
        [
            ("ideas".into(), "added".into()),
            ("ideas/new.md".into(), "added".into()),
            ("notes.md".into(), "modified".into())
        ]
    );
    assert_eq!(
        changes(&diff, "store_changes"),
        [("notes.md".into(), "modified".into())]
    );
    assert_eq!(diff["conflicts"].as_array().unwrap().len(), 0, "{diff}");
    let text = ctl_text(&env, &["draft", "diff", "-p", "kb@review"]);
    assert!(text.contains("+TWO (draft)"), "{text}");
    assert!(text.contains("+FOUR (store)"), "{text}");

    // A dry run changes nothing.
    let dry = env.ctl(&["draft", "merge", "kb@review", "--dry-run"]);
    assert_eq!(dry["merged"], false);
    assert!(!kb.join("ideas").exists());

    let out = ctl_text(&env, &["draft", "merge", "kb@review"]);
    assert!(out.contains("merged kb@review into kb"), "{out}");
    let session = out
        .lines()
        .find_map(|l| l.strip_prefix("merge session: "))
        .unwrap_or_else(|| panic!("no merge session in:\n{out}"))
        .to_string();
    assert!(
        out.contains(&format!("memfsctl rollback --session '{session}'")),
        "the merge says how to undo it:\n{out}"
    );
    assert!(out.contains("agent writer (session sess-draft)"), "{out}");
    let merged = "one\nTWO (draft)\nthree\nFOUR (store)\n";
    eventually_reads(&ok.join("notes.md"), Some(merged));
    eventually_reads(&ok.join("ideas/new.md"), Some("fresh\n"));
    eventually_reads(&kb.join("notes.md"), Some(merged));
    // The draft is rebased on the merge: it reads the merged file, and has
    // nothing more to merge.
    eventually_reads(&dk.join("notes.md"), Some(merged));
    let again = env.ctl(&["draft", "diff", "kb@review"]);
    assert_eq!(
        again["draft_changes"].as_array().unwrap().len(),
        0,
        "{again}"
    );
    // The store's log: the draft's writer wrote, the person merged.
    let log = env.store_log("kb");
    let merge_entry = log
        .iter()
        .find(|e| e["op"] == "draft-merge")
        .expect("a draft-merge entry");
    assert_eq!(merge_entry["session"], session.as_str());
    assert_eq!(merge_entry["detail"]["authors"][0]["agent"], "writer");
    assert!(log
        .iter()
        .any(|e| e["session"] == session.as_str() && e["op"] == "write"));

    // The merge is undone as one unit: its write and its new files.
    let rb = env.ctl(&["rollback", "--session", &session]);
    let steps = rb["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["outcome"] == "done"), "{rb}");
    eventually_reads(&ok.join("ideas/new.md"), None);
    // The merge's directory is removed too (the mount learns it through
    // the change feed, maybe after the file).
    let start = Instant::now();
    while ok.join("ideas").exists() {
        assert!(
            start.elapsed() < VISIBLE_WITHIN,
            "the merge's directory is removed too"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eventually_reads(
        &ok.join("notes.md"),
        Some("one\ntwo\nthree\nFOUR (store)\n"),
    );
    // The draft keeps its own work.
    assert_eq!(read(&dk.join("ideas/new.md")).unwrap(), "fresh\n");

    // A conflicting merge: the same line changed on both sides.
    sh(
        &dk,
        "sed -i 's/^three$/THREE (draft)/' notes.md && echo more > more.md",
    );
    sh(&kb, "sed -i 's/^three$/THREE (store)/' notes.md");
    let stored = "one\ntwo\nTHREE (store)\nFOUR (store)\n";
    eventually_reads(&ok.join("notes.md"), Some(stored));
    let (report, err) = ctl_fails(&env, &["draft", "merge", "kb@review"]);
    let report = report.expect("the refused merge still prints its report");
    assert_eq!(report["merged"], false);
    assert_eq!(report["blocked"], true);
    let conflicts = report["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{report}");
    assert_eq!(conflicts[0]["path"], "notes.md");
    assert!(
        conflicts[0]["reason"].as_str().unwrap().contains("overlap"),
        "{report}"
    );
    assert!(err.contains("conflict"), "{err}");
    // Nothing changed: not the conflicting file, not the clean one.
    assert_eq!(read(&kb.join("notes.md")).unwrap(), stored);
    assert!(!kb.join("more.md").exists());
    // Its text form says why, too.
    let out = env.run(env.memfsctl().args(["draft", "merge", "kb@review"]));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("notes.md: changed on both sides"), "{text}");

    let fsck = env.ctl(&["fsck"]);
    assert_eq!(fsck["problems"].as_array().map(Vec::len), Some(0), "{fsck}");
    draft.stop();
    other.stop();
    store.stop();
}

/// The store's drafts rule sends `untrusted-*` agents to a draft of their
/// session: the agent writes as usual, the shared store does not change, the
/// draft is listed, and a person merges it. The agent itself may not.
#[test]
fn an_untrusted_agent_writes_to_its_session_draft_until_a_person_merges_it() {
    let env = Env::with_config(CONFIG);
    let trusted = env.mount("planner", "sess-planner", None, &["kb"]);
    let untrusted = env.mount("untrusted-1", "sess-u1", None, &["kb"]);
    let (tk, uk) = (trusted.store("kb"), untrusted.store("kb"));
    sh(
        &uk,
        "mkdir -p notes && echo 'the sky is green' > notes/claim.md",
    );
    assert_eq!(
        read(&uk.join("notes/claim.md")).unwrap(),
        "the sky is green\n"
    );
    // The shared store is unchanged, in the database and in another mount.
    let (_, err) = ctl_fails(&env, &["cat", "kb/notes/claim.md"]);
    assert!(err.contains("claim.md"), "{err}");
    assert!(
        !tk.join("notes").exists(),
        "the untrusted write reached the store"
    );

    let list = env.ctl(&["draft", "list", "kb"]);
    let drafts = list.as_array().unwrap();
    assert_eq!(drafts.len(), 1, "{list}");
    let name = drafts[0]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("kb@s-"), "{name}");
    assert_eq!(drafts[0]["reason"], "rule");
    assert_eq!(drafts[0]["for_session"], "sess-u1");

    // The untrusted agent cannot wave its own draft through (as its identity,
    // through the API or MCP; memfsctl is the operator). Review, then merge.
    let diff = env.ctl(&["draft", "diff", &name]);
    assert_eq!(
        changes(&diff, "draft_changes"),
        [
            ("notes".into(), "added".into()),
            ("notes/claim.md".into(), "added".into())
        ]
    );
    let r = env.ctl(&["draft", "merge", &name]);
    assert_eq!(r["merged"], true, "{r}");
    eventually_reads(&tk.join("notes/claim.md"), Some("the sky is green\n"));
    // Later writes of the session still go to its draft.
    sh(&uk, "echo 'second thought' >> notes/claim.md");
    let head = ctl_text(&env, &["cat", "kb/notes/claim.md"]);
    assert_eq!(head, "the sky is green\n");
    assert_eq!(
        read(&tk.join("notes/claim.md")).unwrap(),
        "the sky is green\n"
    );
    let list = env.ctl(&["draft", "list", "kb"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "one draft per session");
    untrusted.stop();
    trusted.stop();
}

/// Two untrusted sessions mount at once and write the same new names, from
/// nothing: each gets a draft of its own, the store stays empty, and merging
/// them one after the other takes the first and reports the second's clash.
#[test]
fn two_untrusted_sessions_racing_on_new_names_get_a_draft_each() {
    let env = Env::with_config(CONFIG);
    let a = env.mount("untrusted-a", "race-a", None, &["kb"]);
    let b = env.mount("untrusted-b", "race-b", None, &["kb"]);
    let (ak, bk) = (a.store("kb"), b.store("kb"));
    let script = |who: &str| {
        format!(
            "for i in $(seq 1 20); do mkdir -p d$i && echo {who} >> d$i/log && echo {who} > f$i; done"
        )
    };
    let (sa, sb) = (script("a"), script("b"));
    std::thread::scope(|s| {
        let ha = s.spawn(|| sh(&ak, &sa));
        let hb = s.spawn(|| sh(&bk, &sb));
        ha.join().expect("agent a");
        hb.join().expect("agent b");
    });
    for i in 1..=20 {
        assert_eq!(read(&ak.join(format!("f{i}"))).unwrap(), "a\n");
        assert_eq!(read(&bk.join(format!("d{i}/log"))).unwrap(), "b\n");
    }
    let list = env.ctl(&["draft", "list", "kb"]);
    let names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    let reader = env.mount("planner", "sess-reader", None, &["kb:ro"]);
    let entries = std::fs::read_dir(reader.store("kb")).unwrap().count();
    assert_eq!(entries, 0, "the store stays empty until a merge");
    let da = names.iter().find(|n| n.contains("race-a")).unwrap();
    let db = names.iter().find(|n| n.contains("race-b")).unwrap();
    let r = env.ctl(&["draft", "merge", da]);
    assert_eq!(r["merged"], true, "{r}");
    let (r, _) = ctl_fails(&env, &["draft", "merge", db]);
    let r = r.expect("a report");
    // Each of the 20 files and 20 logs was made on both sides.
    assert_eq!(r["counts"]["conflicts"], 40, "{r}");
    eventually_reads(&reader.store("kb").join("f7"), Some("a\n"));
    reader.stop();
    a.stop();
    b.stop();
}

/// The database's logical size: page_count * page_size (the WAL included).
fn db_bytes(db: &Path) -> u64 {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database");
    let n: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    (n * size) as u64
}

/// A draft shares the store's content: making one of a store holding 2 MiB
/// grows the database by a small fraction of that (its namespace rows only;
/// on PostgreSQL: adds no version and no chunk).
#[test]
fn a_draft_costs_no_copy_of_the_content() {
    let env = Env::with_config(CONFIG);
    let m = env.mount("planner", "sess-fill", None, &["kb"]);
    // 64 files of 32 KiB each, incompressible (random), through the mount.
    sh(
        &m.store("kb"),
        "for i in $(seq 1 64); do head -c 32768 /dev/urandom > f$i.bin; done",
    );
    let content: u64 = 64 * 32768;
    m.stop();
    if common::test_pg().is_some() {
        // PostgreSQL grows each table's and index's files by whole pages, so
        // its size says little about a few rows: what shows that nothing is
        // copied is that no version and no chunk is added.
        let counts = || {
            let db = memfs::store::Db::open(&env.db).expect("open the database");
            db.read(|tx| tx.content_counts())
                .expect("count versions and chunks")
        };
        let before = counts();
        env.ctl(&["draft", "create", "kb", "--name", "cheap"]);
        let after = counts();
        assert_eq!(
            before, after,
            "(versions, with content, chunks) before and after"
        );
    } else {
        let before = db_bytes(&env.db);
        assert!(
            before > content,
            "the content is in the database ({before} bytes)"
        );
        env.ctl(&["draft", "create", "kb", "--name", "cheap"]);
        let after = db_bytes(&env.db);
        let growth = after.saturating_sub(before);
        eprintln!("store content {content} bytes; database {before} -> {after} (+{growth})");
        assert!(
            growth * 10 < content,
            "a draft of {content} bytes of content grew the database by {growth} bytes"
        );
    }
    // And the draft reads the same content.
    let d = env.mount("writer", "sess-d", None, &["kb@cheap"]);
    assert_eq!(
        std::fs::read(d.store("kb").join("f9.bin")).unwrap().len(),
        32768
    );
    d.stop();
}

/// Bad input is refused with a clear message and a non-zero exit.
#[test]
fn bad_draft_names_are_refused_clearly() {
    let env = Env::with_config(CONFIG);
    let cases: &[(&[&str], &str)] = &[
        (&["draft", "show", "kb@"], "names no draft"),
        (
            &["draft", "show", "kb@nope"],
            "store 'kb' has no draft 'nope'",
        ),
        (&["draft", "show", "nostore@x"], "no memory store 'nostore'"),
        (&["draft", "merge", "kb"], "is a store, not a draft"),
        (&["draft", "create", "nostore"], "no memory store 'nostore'"),
        (
            &["draft", "create", "kb", "--name", "Bad_Name"],
            "invalid draft name",
        ),
        (
            &["draft", "create", "kb", "--at", "yesterday"],
            "cannot read time",
        ),
    ];
    for (args, want) in cases {
        let (_, err) = ctl_fails(&env, args);
        assert!(err.contains(want), "memfsctl {}: {err}", args.join(" "));
        assert!(!err.contains("panicked"), "{err}");
    }
    env.ctl(&["draft", "create", "kb", "--name", "gone"]);
    let (_, err) = ctl_fails(&env, &["draft", "create", "kb", "--name", "gone"]);
    assert!(err.contains("exists"), "{err}");
    let (_, err) = ctl_fails(&env, &["draft", "discard", "kb@gone"]);
    assert!(err.contains("--yes"), "{err}");
    env.ctl(&["draft", "discard", "kb@gone", "--yes"]);
    let (_, err) = ctl_fails(&env, &["draft", "merge", "kb@gone"]);
    assert!(err.contains("no draft 'gone'"), "{err}");
    // Mounting a draft that is not there says so.
    let e = env
        .try_mount("writer", "s", None, &["kb@gone"])
        .err()
        .expect("the mount is refused");
    assert!(e.log.contains("has no draft 'gone'"), "{}", e.log);
}

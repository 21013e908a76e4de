//! Real-FUSE tests of memfsctl's operator commands on the operations core:
//! `store set` (audited, picked up by a running mount), `store show` and
//! `store list` with API ids, `store create` of a declared store (its
//! settings and template come with it), `apikey create|list|revoke`, and the
//! identities `memfs mount` refuses because they belong to keys and tools.
//!
//! Needs root (or fusermount3) and /dev/fuse.

mod common;

use common::{assert_success, s, Env, DAEMON_DEADLINE};
use serde_json::Value;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

fn ctl_out(env: &Env, args: &[&str]) -> Output {
    env.run(env.memfsctl().args(args))
}

/// `memfsctl ARGS...` (text), asserting success; its stdout.
fn ctl_text(env: &Env, args: &[&str]) -> String {
    let out = ctl_out(env, args);
    assert_success(&format!("memfsctl {}", args.join(" ")), &out);
    String::from_utf8(out.stdout).expect("memfsctl output is UTF-8")
}

/// `memfsctl ARGS...`, asserting failure with an error line; its stderr.
fn ctl_fails(env: &Env, args: &[&str]) -> String {
    let out = ctl_out(env, args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "memfsctl {args:?} succeeded");
    assert!(err.contains("memfsctl: error: "), "{err}");
    err
}

fn append(dir: &Path, file: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(file))?;
    f.write_all(b"probe\n")?;
    f.sync_all()
}

#[test]
fn store_set_is_audited_shown_and_applied_by_running_mounts() {
    let env = Env::new();
    let m = env.mount("bot", "sess-1", None, &["kb"]);
    let kb = m.store("kb");
    append(&kb, "f.txt").expect("bot writes kb before the change");

    let set = env.ctl(&["store", "set", "kb", "writers=curator", "readers=*"]);
    assert_eq!(set["writers"], serde_json::json!(["curator"]), "{set:#}");
    // The running mount reloads the settings from the change feed: bot may
    // now only read. (Polled against a deadline; no time is asserted.)
    let deadline = Instant::now() + DAEMON_DEADLINE;
    loop {
        match append(&kb, "f.txt") {
            Err(e) if e.kind() == ErrorKind::ReadOnlyFilesystem => break,
            Err(e) => panic!("unexpected error while waiting for the new rules: {e}"),
            Ok(()) => {
                assert!(Instant::now() < deadline, "the mount kept the old rules");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    assert!(std::fs::read_to_string(kb.join("f.txt")).is_ok());
    m.stop();

    env.ctl(&["store", "set", "kb", "pii=block", "validate.**/*.json=json"]);
    let show = env.ctl(&["store", "show", "kb"]);
    assert_eq!(show["settings"]["policy"]["pii"], "block", "{show:#}");
    assert_eq!(show["writers"], serde_json::json!(["curator"]), "{show:#}");
    let api_id = s(&show, "api_id").expect("api_id").to_string();
    assert!(api_id.starts_with("memstore_"), "{api_id}");
    let text = ctl_text(&env, &["store", "show", "kb"]);
    for want in [
        format!("api id:       {api_id}"),
        "pii:          block".to_string(),
        "validate:     **/*.json = json".to_string(),
        "writers:      curator".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
    // Every change of settings is audited, attributed to the operator (the
    // first entry is `memfs init` seeding them from memfs.toml).
    let changes: Vec<Value> = env
        .store_log("kb")
        .into_iter()
        .filter(|e| s(e, "op") == Some("store-settings"))
        .collect();
    assert_eq!(changes.len(), 3, "{changes:#?}");
    assert!(changes[1..]
        .iter()
        .all(|e| s(e, "agent") == Some("memfsctl")));
    // Bad assignments change nothing and say why.
    let err = ctl_fails(&env, &["store", "set", "kb", "max_files=3", "colour=red"]);
    assert!(err.contains("unknown setting 'colour'"), "{err}");
    assert_eq!(env.ctl(&["store", "show", "kb"])["max_files"], Value::Null);
    ctl_fails(&env, &["store", "set", "nope", "pii=tag"]);
    // The list shows each store's API id and slug.
    let list = env.ctl(&["store", "list"]);
    for st in list.as_array().expect("list is an array") {
        assert!(s(st, "api_id").is_some_and(|i| i.starts_with("memstore_")));
        assert!(s(st, "name").is_some());
    }
    assert!(ctl_text(&env, &["store", "list"]).contains(&api_id));
}

#[test]
fn a_declared_store_created_later_gets_its_settings_and_template() {
    let env = Env::with_config(
        r#"
[[stores]]
name = "late"
writers = ["curator"]
template = ["notes/"]
[stores.quota]
max_files = 50
"#,
    );
    ctl_text(&env, &["store", "delete", "late", "--yes"]);
    let row = env.ctl(&["store", "create", "late", "--scope", "org"]);
    assert_eq!(s(&row, "name"), Some("late"));
    let show = env.ctl(&["store", "show", "late"]);
    assert_eq!(show["writers"], serde_json::json!(["curator"]), "{show:#}");
    assert_eq!(show["max_files"], 50, "{show:#}");
    let m = env.mount("curator", "s", None, &["late"]);
    assert!(m.store("late").join("notes").is_dir());
    m.stop();
    // Undeclared stores get default settings (every agent may write).
    env.ctl(&["store", "create", "free", "--scope", "org"]);
    assert_eq!(env.ctl(&["store", "show", "free"])["writers"], Value::Null);
}

#[test]
fn api_keys_are_made_listed_and_revoked() {
    let env = Env::new();
    let secret = ctl_text(&env, &["apikey", "create", "ci-bot", "--role", "writer"]);
    let lines: Vec<&str> = secret.lines().collect();
    assert_eq!(lines.len(), 1, "{secret:?}");
    assert!(
        lines[0].starts_with("memfs_") && lines[0].len() == 6 + 64,
        "{secret:?}"
    );
    let made = env.ctl(&[
        "apikey", "create", "alices", "--user", "alice", "--role", "admin", "--store", "alice",
    ]);
    assert!(s(&made, "key").is_some_and(|k| k.starts_with("memfs_")));
    assert!(s(&made, "id").is_some_and(|i| i.starts_with("apikey_")));
    assert_eq!(s(&made, "role"), Some("admin"));
    assert_eq!(s(&made, "user"), Some("alice"));
    assert_eq!(s(&made, "agent"), Some("alices"));
    assert_eq!(made["stores"], serde_json::json!(["alice"]));
    // Secrets are never shown again.
    let list = ctl_text(&env, &["--json", "apikey", "list"]);
    assert!(!list.contains(lines[0]), "{list}");
    assert!(!list.contains(s(&made, "key").unwrap_or("-")), "{list}");
    let keys: Value = serde_json::from_str(&list).expect("JSON");
    assert_eq!(keys.as_array().map(Vec::len), Some(2), "{keys:#}");
    // Revoked by name (or id), and listed as revoked.
    let revoked = env.ctl(&["apikey", "revoke", "ci-bot"]);
    assert!(revoked["revoked_ns"].as_i64().is_some(), "{revoked:#}");
    let text = ctl_text(&env, &["apikey", "list"]);
    assert!(
        text.lines()
            .any(|l| l.contains("ci-bot") && l.contains("revoked")),
        "{text}"
    );
    // The default role is reader; bad input is refused with a reason.
    assert_eq!(
        s(&env.ctl(&["apikey", "create", "viewer"]), "role"),
        Some("reader")
    );
    for (args, want) in [
        (
            &["apikey", "create", "x", "--agent", "memfs-x"][..],
            "reserved",
        ),
        (
            &["apikey", "create", "x", "--role", "boss"][..],
            "role must be",
        ),
        (
            &["apikey", "create", "x", "--store", "nope"][..],
            "no store named",
        ),
        (&["apikey", "revoke", "nope"][..], "no API key"),
    ] {
        let err = ctl_fails(&env, args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let made_entries = env
        .log()
        .into_iter()
        .filter(|e| s(e, "op") == Some("apikey-create"))
        .count();
    assert_eq!(made_entries, 3);
}

#[test]
fn mount_refuses_sessions_of_keys_and_agents_of_memfs_tools() {
    let env = Env::new();
    for (agent, session, want) in [
        (
            "bot",
            "apikey_0123abcd",
            "--session 'apikey_0123abcd' is refused",
        ),
        ("memfs-helper", "s1", "--agent 'memfs-helper' is refused"),
        ("memfsctl", "s1", "--agent 'memfsctl' is refused"),
        ("console", "s1", "--agent 'console' is refused"),
    ] {
        match env.try_mount(agent, session, None, &["kb"]) {
            Ok(m) => {
                m.stop();
                panic!("mount as {agent}/{session} succeeded");
            }
            Err(e) => {
                assert!(!e.status.success(), "{e}");
                assert!(e.log.contains(want), "{want:?} not in: {e}");
            }
        }
    }
    // A lookalike that is neither is fine.
    let m = env.mount("my-memfs-bot", "apikey-like", None, &["kb"]);
    m.stop();
}

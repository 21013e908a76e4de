//! Retention through real mounts: `memfsctl gc` keeps what the rules say and
//! what open files in a mount still read from, the daemons' background pass
//! collects on its own, a legal hold stops everything, and afterwards `fsck`
//! and `audit verify` pass.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// kb keeps its last version only; held keeps nothing under a legal hold. A
/// short lease TTL makes the grace period (3 TTLs) short.
const CONFIG: &str = r#"
[daemon]
lease_ttl_secs = 0.2
gc_interval_secs = 0

[[stores]]
name = "kb"
[stores.retention]
keep_versions = 1

[[stores]]
name = "held"
[stores.retention]
keep_versions = 1
legal_hold = true
"#;

/// (version id, hash) of every version of STORE/PATH, newest first; a removed
/// version has an empty hash.
fn versions(env: &Env, target: &str) -> Vec<(i64, String)> {
    env.ctl(&["history", target])
        .as_array()
        .expect("history is an array")
        .iter()
        .map(|v| {
            (
                v["id"].as_i64().expect("id"),
                v["hash"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn live(env: &Env, target: &str) -> usize {
    versions(env, target)
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .count()
}

/// Runs `memfsctl gc` until `done` holds for its report (the grace period
/// must pass first), failing after a deadline.
fn gc_until(env: &Env, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = env.ctl(&["gc"]);
        if done(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "gc never {what}; last report {r:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn removed(r: &Value, store: &str) -> u64 {
    r["stores"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["store"] == store))
        .and_then(|s| s["removed"].as_u64())
        .unwrap_or(0)
}

fn assert_sound(env: &Env) {
    env.ctl(&["fsck"]);
    env.ctl(&["audit", "verify"]);
}

#[test]
fn gc_keeps_the_last_version_and_what_an_open_file_reads_from() {
    let env = Env::with_config(CONFIG);
    let a = env.mount("agent-a", "s-a", None, &[]);
    let b = env.mount("agent-b", "s-b", None, &[]);
    sh(
        a.path(),
        "for i in 1 2 3 4 5; do echo \"version $i\" > kb/notes.md; done; echo base > kb/log.txt",
    );
    assert_eq!(live(&env, "kb/notes.md"), 5);
    // Mount A keeps log.txt open with staged appends (its base is the current
    // version) while mount B appends and so replaces that version.
    let go = env.path().join("go");
    let mut holder = ChildGuard(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import os, sys, time\n\
                 fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n\
                 os.write(fd, b'from a\\n')\n\
                 print('open', flush=True)\n\
                 while not os.path.exists(sys.argv[2]): time.sleep(0.02)\n\
                 os.close(fd)\n",
            )
            .arg(a.store("kb").join("log.txt"))
            .arg(&go)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3"),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.0.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("python3 says it has the file open");
    // marker's first version is replaced after log.txt's base: once gc takes
    // it, the base's grace period is over too, and only the pin keeps it.
    sh(
        b.path(),
        "echo 'from b' >> kb/log.txt; echo 1 > kb/marker; echo 2 > kb/marker",
    );
    let base = versions(&env, "kb/log.txt")[1].0;
    gc_until(&env, "removed the old notes and marker versions", |r| {
        live(&env, "kb/notes.md") == 1 && live(&env, "kb/marker") == 1 && removed(r, "kb") > 0
    });
    assert_eq!(live(&env, "kb/log.txt"), 2, "the pinned base was removed");
    let out = env.run(
        env.memfsctl()
            .args(["cat", "kb/log.txt", "--version"])
            .arg(base.to_string()),
    );
    assert_success("memfsctl cat of the pinned version", &out);
    // A closes: its append lands on B's head, and the old base may go.
    std::fs::write(&go, "").expect("write go file");
    let status = holder.0.wait().expect("python3 exits");
    assert!(status.success(), "python3 failed: {status}");
    gc_until(&env, "removed the unpinned base", |_| {
        live(&env, "kb/log.txt") == 1
    });
    assert_eq!(
        sh(b.path(), "cat kb/log.txt; cat kb/notes.md"),
        "base\nfrom b\nfrom a\nversion 5\n"
    );
    assert_sound(&env);
    // The write entries of removed versions are sealed (no path), and gc says so.
    let log = env.store_log("kb");
    assert!(log.iter().any(|e| s(e, "op") == Some("gc")), "no gc entry");
    assert!(
        log.iter()
            .any(|e| s(e, "op") == Some("write") && e["path"].is_null()),
        "no sealed write entry"
    );
    a.stop();
    b.stop();
}

#[test]
fn a_legal_hold_keeps_everything() {
    let env = Env::with_config(CONFIG);
    let m = env.mount("agent-a", "s-a", None, &[]);
    sh(m.path(), "for i in 1 2 3; do echo $i > held/f; done");
    let r = env.ctl(&["gc", "--store", "held"]);
    assert_eq!(r["stores"][0]["action"], "legal hold");
    assert_eq!(live(&env, "held/f"), 3);
    m.stop();
}

#[test]
fn the_daemons_background_pass_collects_on_its_own() {
    let env = Env::with_config(&CONFIG.replace("gc_interval_secs = 0", "gc_interval_secs = 1"));
    let m = env.mount("agent-a", "s-a", None, &["kb"]);
    sh(m.path(), "for i in 1 2 3 4; do echo $i > kb/f; done");
    let deadline = Instant::now() + Duration::from_secs(60);
    while live(&env, "kb/f") > 1 {
        assert!(
            Instant::now() < deadline,
            "the background pass removed nothing; daemon log:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let gc_entries = env.ctl(&["log", "--op", "gc"]);
    let e = &gc_entries[0];
    assert_eq!(s(e, "agent"), Some("memfs-gc"));
    assert_eq!(sh(m.path(), "cat kb/f"), "4\n");
    assert_sound(&env);
    m.stop();
}

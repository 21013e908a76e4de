//! Real-FUSE tests of stores, scopes and policies: who may attach which store and
//! how (user stores, allow-lists, `:ro`/`:rw`, archived stores), path policies
//! (read-only and append-only globs), templates and seed files, quotas, name rules,
//! the store lifecycle (`show`, `archive`, `unarchive`, `delete`) and
//! `memfsctl prompt`.
//!
//! Changes are made through mounted daemons with ordinary tools (bash, coreutils,
//! python3 for exact errnos); `memfsctl` checks what was committed. Waits are
//! deadline loops, never fixed sleeps.
//!
//! Needs root (or fusermount3) and /dev/fuse.

mod common;

use common::{assert_success, run_with_deadline, s, sh, sh_fails, Env, Mount, COMMAND_DEADLINE};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a change made by memfsctl may take to reach a running mount (the change
/// feed is polled every 50 ms; generous for a loaded 2-core machine).
const VISIBLE: Duration = Duration::from_secs(10);

const EROFS_MSG: &str = "Read-only file system";
const EPERM_MSG: &str = "Operation not permitted";

// ---------------------------------------------------------------- helpers

/// Python helpers prepended to every `py` script: `expect(errno, what, f)` asserts
/// `f()` fails with exactly that errno; `put` writes a file with one open, write
/// and close (an error at write or at close is raised); `get` reads one.
const PY_PRELUDE: &str = r#"
import errno, os, sys, unicodedata

def ename(code):
    return errno.errorcode.get(code, str(code))

def expect(code, what, f):
    try:
        f()
    except OSError as e:
        assert e.errno == code, f"{what}: expected {ename(code)}, got {ename(e.errno)} ({e})"
        return
    raise AssertionError(f"{what}: succeeded, expected {ename(code)}")

def put(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, flags, 0o644)
    err = None
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as e:
        err = e
    try:
        os.close(fd)
    except OSError as e:
        err = err or e
    if err is not None:
        raise err

def append(path, data):
    put(path, data, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

def get(path):
    with open(path, "rb") as f:
        return f.read()
"#;

/// Runs a python3 script (after [`PY_PRELUDE`]) in `dir`, asserting it succeeds;
/// returns its stdout.
fn py(dir: &Path, script: &str) -> String {
    let out = py_out(dir, script);
    assert_success(
        &format!("python script in {}:\n{script}\n", dir.display()),
        &out,
    );
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}

fn py_out(dir: &Path, script: &str) -> Output {
    run_with_deadline(
        Command::new("python3")
            .arg("-c")
            .arg(format!("{PY_PRELUDE}\n{script}"))
            .current_dir(dir)
            .env("LC_ALL", "C.UTF-8")
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        COMMAND_DEADLINE,
    )
}

/// Runs each shell command on its own in `dir`, asserting each fails with `msg`
/// (the strerror text) on stderr.
fn each_fails_with(dir: &Path, cmds: &[&str], msg: &str) {
    for cmd in cmds {
        let (_, _, stderr) = sh_fails(dir, cmd);
        assert!(
            stderr.contains(msg),
            "`{cmd}` in {}: expected \"{msg}\" on stderr, got: {stderr}",
            dir.display()
        );
    }
}

/// Every kind of write the brief names, as shell commands, for a store holding
/// `doc.txt` ("seed\n"), an empty directory `emptydir` and `dir/inner.txt`
/// (see [`populate`]).
const SHELL_WRITES: &[&str] = &[
    "echo x > doc.txt",
    "echo x >> doc.txt",
    "echo x > new.txt",
    "echo x >> new.txt",
    "mv doc.txt moved.txt",
    "mv doc.txt dir/",
    "rm doc.txt",
    "rm dir/inner.txt",
    "mkdir newdir",
    "rmdir emptydir",
    "touch doc.txt",
    "touch new.txt",
    "chmod 600 doc.txt",
    "ln -s doc.txt link",
    "ln doc.txt hard",
    "truncate -s 0 doc.txt",
];

/// The same writes at the system-call level, each expected to fail with EROFS.
const PY_WRITES_EROFS: &str = r#"
E = errno.EROFS
expect(E, "open w", lambda: open("doc.txt", "w"))
expect(E, "open a", lambda: open("doc.txt", "a"))
expect(E, "open r+", lambda: open("doc.txt", "r+"))
expect(E, "create", lambda: os.open("new.txt", os.O_CREAT | os.O_WRONLY, 0o644))
expect(E, "mkdir", lambda: os.mkdir("newdir"))
expect(E, "unlink", lambda: os.unlink("doc.txt"))
expect(E, "rmdir", lambda: os.rmdir("emptydir"))
expect(E, "rename", lambda: os.rename("doc.txt", "moved.txt"))
expect(E, "symlink", lambda: os.symlink("doc.txt", "link"))
expect(E, "link", lambda: os.link("doc.txt", "hard"))
expect(E, "chmod", lambda: os.chmod("doc.txt", 0o600))
expect(E, "truncate", lambda: os.truncate("doc.txt", 0))
expect(E, "utime", lambda: os.utime("doc.txt", (0, 0)))
assert get("doc.txt") == b"seed\n", get("doc.txt")
"#;

/// Asserts every write to the store at `dir` fails with EROFS, from the shell and
/// from python, and that nothing changed.
fn assert_all_writes_erofs(dir: &Path) {
    let before = tree(dir);
    each_fails_with(dir, SHELL_WRITES, EROFS_MSG);
    py(dir, PY_WRITES_EROFS);
    assert_eq!(
        tree(dir),
        before,
        "a refused write changed {}",
        dir.display()
    );
}

/// Every entry under `dir` with its type, and regular files' content.
fn tree(dir: &Path) -> String {
    sh(
        dir,
        "find . -mindepth 1 -printf '%y %p\\n' | sort; find . -type f | sort | xargs -r cat",
    )
}

/// Fills a store (through a mount as `agent`, who must be allowed to write) with
/// the files [`SHELL_WRITES`] expects.
fn populate(env: &Env, agent: &str, store: &str) {
    let m = env.mount(agent, "sess-populate", None, &[store]);
    sh(
        &m.store(store),
        "echo seed > doc.txt; mkdir emptydir dir; echo inner > dir/inner.txt",
    );
    m.stop();
}

static REFUSALS: AtomicU32 = AtomicU32::new(0);

/// Asserts `memfs mount` with this identity and stores is refused: it exits non-zero
/// without mounting, and its output contains `needle` (case-insensitive). Returns
/// the output.
fn refused(env: &Env, agent: &str, user: Option<&str>, stores: &[&str], needle: &str) -> String {
    let n = REFUSALS.fetch_add(1, Ordering::Relaxed);
    let mp = env.scratch(&format!("refused{n}"));
    match env.try_mount_at(&mp, agent, &format!("sess-refused{n}"), user, stores) {
        Ok(m) => {
            let log = m.log_text();
            drop(m);
            panic!(
                "agent {agent} (user {user:?}) mounted {stores:?}, which must be refused; log:\n{log}"
            );
        }
        Err(e) => {
            assert!(!e.status.success(), "refused mount exited 0: {e}");
            assert!(
                !common::is_mounted(&mp),
                "a refused mount left {} mounted",
                mp.display()
            );
            assert!(
                e.log.to_lowercase().contains(&needle.to_lowercase()),
                "refusal of {stores:?} for agent {agent} does not say \"{needle}\": {e}"
            );
            e.log
        }
    }
}

/// The daemon's startup line (`memfs: mounted ...`), waiting for it.
fn startup_line(m: &Mount) -> String {
    let deadline = Instant::now() + VISIBLE;
    loop {
        let log = m.log_text();
        if let Some(l) = log.lines().find(|l| l.starts_with("memfs: mounted")) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no startup line after {VISIBLE:?}; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names at the mount root (the attached stores), sorted.
fn root_listing(m: &Mount) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(m.path())
        .expect("read mount root")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// `memfsctl ARGS...` (no --json), not asserting anything.
fn ctl_out(env: &Env, args: &[&str]) -> Output {
    env.run(env.memfsctl().args(args))
}

/// `memfsctl ARGS...`, asserting success; its stdout as text.
fn ctl_text(env: &Env, args: &[&str]) -> String {
    let out = ctl_out(env, args);
    assert_success(&format!("memfsctl {}", args.join(" ")), &out);
    String::from_utf8(out.stdout).expect("memfsctl output is UTF-8")
}

/// `memfsctl ARGS...`, asserting it fails; its stderr.
fn ctl_fails(env: &Env, args: &[&str]) -> String {
    let out = ctl_out(env, args);
    assert!(
        !out.status.success(),
        "memfsctl {} unexpectedly succeeded:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {v}"))
}

/// How many versions `memfsctl history STORE/PATH` lists.
fn version_count(env: &Env, target: &str) -> usize {
    arr(&env.ctl(&["history", target])).len()
}

/// The store names `memfsctl store list --json` lists.
fn store_names(env: &Env) -> Vec<String> {
    arr(&env.ctl(&["store", "list"]))
        .iter()
        .map(|r| s(r, "name").expect("store row has a name").to_string())
        .collect()
}

/// `memfsctl store show NAME --json`.
fn show(env: &Env, name: &str) -> Value {
    env.ctl(&["store", "show", name])
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number '{key}' in {v:#}"))
}

/// Audit entries with this op, newest first.
fn ops(env: &Env, op: &str) -> Vec<Value> {
    arr(&env.ctl(&["log"]))
        .iter()
        .filter(|e| s(e, "op") == Some(op))
        .cloned()
        .collect()
}

/// Whether an audit entry is about store `name` (its store field, or its detail).
fn entry_names_store(e: &Value, name: &str) -> bool {
    s(e, "store") == Some(name) || e["detail"].to_string().contains(&format!("\"{name}\""))
}

// ---------------------------------------------------------------- 1. user stores

#[test]
fn user_store_attaches_only_for_its_owner() {
    let env = Env::new();

    // alice's store (declared in the config) is not bob's, nor anyone's without a user.
    for stores in [&["alice"][..], &["alice:ro"], &["kb", "alice"]] {
        refused(&env, "agent-bob", Some("bob"), stores, "private");
    }
    refused(&env, "agent-anon", None, &["alice"], "private");

    // Without --store, bob gets the org store only.
    let m = env.mount("agent-bob", "sess-bob", Some("bob"), &[]);
    assert_eq!(root_listing(&m), ["kb"]);
    m.stop();

    // alice attaches it and writes.
    let m = env.mount("agent-alice", "sess-alice", Some("alice"), &["alice"]);
    assert_eq!(
        sh(&m.store("alice"), "echo mine > note.md; cat note.md"),
        "mine\n"
    );
    m.stop();
    assert_eq!(ctl_text(&env, &["cat", "alice/note.md"]), "mine\n");

    // A user store made with memfsctl follows the same rule.
    ctl_text(
        &env,
        &[
            "store",
            "create",
            "bobs",
            "--scope",
            "user",
            "--owner",
            "bob",
            "--description",
            "Bob's notes",
        ],
    );
    let v = show(&env, "bobs");
    assert_eq!(s(&v, "scope"), Some("user"), "{v:#}");
    assert_eq!(s(&v, "owner"), Some("bob"), "{v:#}");
    assert_eq!(s(&v, "description"), Some("Bob's notes"), "{v:#}");
    refused(&env, "agent-alice", Some("alice"), &["bobs"], "private");
    let m = env.mount("agent-bob", "sess-bob2", Some("bob"), &["bobs"]);
    sh(&m.store("bobs"), "echo ok > x");
    m.stop();
}

// ---------------------------------------------------------------- 2. :ro attachment

#[test]
fn read_only_attachment_refuses_every_write() {
    let env = Env::new();
    populate(&env, "agent-w", "kb");
    let entries_before = env.log().len();

    let m = env.mount("agent-ro", "sess-ro", Some("alice"), &["kb:ro", "alice"]);
    assert!(
        startup_line(&m).contains("kb:ro"),
        "startup line: {}",
        startup_line(&m)
    );
    let kb = m.store("kb");
    assert_eq!(
        sh(&kb, "cat doc.txt dir/inner.txt; ls"),
        "seed\ninner\ndir\ndoc.txt\nemptydir\n"
    );
    assert_all_writes_erofs(&kb);
    // The other store of the same mount stays writable.
    assert_eq!(sh(&m.store("alice"), "echo ok > w; cat w"), "ok\n");
    m.stop();

    let log = env.log();
    for e in &log[entries_before..] {
        assert_eq!(s(e, "store"), Some("alice"), "entry through kb:ro: {e:#}");
    }
}

// ---------------------------------------------------------------- 3. allow-lists

const ALLOW_CONFIG: &str = r#"
[[stores]]
name = "kb"
scope = "org"
description = "Curated knowledge"
readers = ["*"]
writers = ["curator", "bot-*"]

[[stores]]
name = "team"
scope = "org"
description = "Team only"
readers = ["team-*"]
writers = ["curator"]

[[stores]]
name = "open"
scope = "org"
description = "Everyone reads and writes"

[[stores]]
name = "wonly"
scope = "org"
description = "Writers only: nobody else attaches"
writers = ["curator"]

[[stores]]
name = "ronly"
scope = "org"
description = "Readers only: nobody writes"
readers = ["staff-*"]
"#;

#[test]
fn allow_lists_decide_access() {
    let env = Env::with_config(ALLOW_CONFIG);

    // A writer attaches read-write.
    let m = env.mount("curator", "sess-cur", None, &["kb"]);
    let line = startup_line(&m);
    assert!(!line.contains("kb:ro"), "curator got kb read-only: {line}");
    sh(
        &m.store("kb"),
        "echo seed > doc.txt; mkdir emptydir dir; echo inner > dir/inner.txt",
    );
    m.stop();

    // A reader is attached read-only automatically.
    let m = env.mount("worker-1", "sess-w1", None, &["kb"]);
    let line = startup_line(&m);
    assert!(line.contains("kb:ro"), "reader's startup line: {line}");
    assert_eq!(sh(&m.store("kb"), "cat doc.txt"), "seed\n");
    assert_all_writes_erofs(&m.store("kb"));
    m.stop();

    // A reader cannot demand write access, but may ask for read-only.
    refused(&env, "worker-1", None, &["kb:rw"], "kb");
    let m = env.mount("worker-1", "sess-w1b", None, &["kb:ro"]);
    assert!(startup_line(&m).contains("kb:ro"));
    sh_fails(&m.store("kb"), "echo x >> doc.txt");
    m.stop();

    // Writer globs: bot-7 matches "bot-*".
    let m = env.mount("bot-7", "sess-bot", None, &["kb:rw"]);
    sh(&m.store("kb"), "echo bot >> doc.txt");
    m.stop();
    assert_eq!(ctl_text(&env, &["cat", "kb/doc.txt"]), "seed\nbot\n");
    // A curator can still ask for read-only.
    let m = env.mount("curator", "sess-cur2", None, &["kb:ro"]);
    assert!(startup_line(&m).contains("kb:ro"));
    each_fails_with(&m.store("kb"), &["echo x >> doc.txt"], EROFS_MSG);
    m.stop();

    // Matching neither list: refused.
    for stores in [&["team"][..], &["team:ro"], &["team:rw"], &["open", "team"]] {
        refused(&env, "outsider", None, stores, "may not attach");
    }
    // team-a reads team, but may not write it.
    let m = env.mount("team-a", "sess-ta", None, &["team"]);
    assert!(startup_line(&m).contains("team:ro"));
    sh(&m.store("team"), "ls");
    each_fails_with(&m.store("team"), &["echo x > t.txt"], EROFS_MSG);
    m.stop();
    refused(&env, "team-a", None, &["team:rw"], "team");
    let m = env.mount("curator", "sess-cur3", None, &["team:rw"]);
    sh(&m.store("team"), "echo curated > t.txt");
    m.stop();

    // Only writers given: everyone else is refused. Only readers given: read-only.
    refused(&env, "worker-1", None, &["wonly"], "may not attach");
    refused(&env, "worker-1", None, &["wonly:ro"], "may not attach");
    let m = env.mount("curator", "sess-cur4", None, &["wonly"]);
    sh(&m.store("wonly"), "echo w > w");
    m.stop();
    refused(&env, "worker-1", None, &["ronly"], "may not attach");
    refused(&env, "staff-1", None, &["ronly:rw"], "ronly");
    let m = env.mount("staff-1", "sess-st", None, &["ronly"]);
    assert!(startup_line(&m).contains("ronly:ro"));
    each_fails_with(&m.store("ronly"), &["echo x > x", "mkdir d"], EROFS_MSG);
    m.stop();

    // A store without lists is read-write for anyone.
    let m = env.mount("worker-1", "sess-w1c", None, &["open:rw"]);
    assert_eq!(sh(&m.store("open"), "echo free > f; cat f"), "free\n");
    m.stop();

    // Without --store: what the agent may attach, as it may.
    let m = env.mount("worker-1", "sess-w1d", None, &[]);
    assert_eq!(root_listing(&m), ["kb", "open"]);
    each_fails_with(&m.store("kb"), &["echo x >> doc.txt"], EROFS_MSG);
    sh(&m.store("open"), "echo more >> f");
    m.stop();
}

// ---------------------------------------------------------------- 4. path policies, templates

const POLICY_CONFIG: &str = r#"
[[stores]]
name = "kb"
scope = "org"
description = "Shared knowledge base"
template = ["preferences/", "knowledge_base/", "task_history/"]

[stores.seed]
"README.md" = "How to use this store\n"

[stores.policy]
read_only = ["knowledge_base/**"]
read_only_writers = ["curator"]
append_only = ["task_history/**"]
"#;

#[test]
fn templates_seed_read_only_and_append_only_paths() {
    let env = Env::with_config(POLICY_CONFIG);

    // init made the template dirs and the seed file.
    assert_eq!(
        ctl_text(&env, &["cat", "kb/README.md"]),
        "How to use this store\n"
    );
    let m = env.mount("curator", "sess-cur", None, &["kb"]);
    let kb = m.store("kb");
    assert_eq!(
        sh(&kb, "find . -mindepth 1 -printf '%y %p\\n' | sort"),
        "d ./knowledge_base\nd ./preferences\nd ./task_history\nf ./README.md\n"
    );
    // The curator writes under knowledge_base/ freely.
    sh(
        &kb,
        r#"
echo "fact 1" > knowledge_base/facts.md
echo "fact 2" >> knowledge_base/facts.md
mkdir knowledge_base/topics knowledge_base/empty
echo draft > knowledge_base/topics/draft.md
mv knowledge_base/topics/draft.md knowledge_base/topics/final.md
echo gone > knowledge_base/tmp.md
rm knowledge_base/tmp.md
echo "Read knowledge_base/ first." >> README.md
"#,
    );
    m.stop();

    // Running init again changes nothing.
    let out = env.run(env.memfs().arg("init"));
    assert_success("second memfs init", &out);
    assert_eq!(
        ctl_text(&env, &["cat", "kb/README.md"]),
        "How to use this store\nRead knowledge_base/ first.\n"
    );

    // Another writer (no allow-lists: everyone writes) cannot change knowledge_base/.
    let entries_before = env.log().len();
    let m = env.mount("worker-1", "sess-w1", None, &["kb"]);
    let kb = m.store("kb");
    assert_eq!(
        sh(
            &kb,
            "cat knowledge_base/facts.md knowledge_base/topics/final.md"
        ),
        "fact 1\nfact 2\ndraft\n"
    );
    let kb_before = tree(&kb.join("knowledge_base"));
    each_fails_with(
        &kb,
        &[
            "echo x > knowledge_base/new.md",
            "touch knowledge_base/new.md",
            "echo x > knowledge_base/facts.md",
            "echo x >> knowledge_base/facts.md",
            "truncate -s 0 knowledge_base/facts.md",
            "rm knowledge_base/facts.md",
            "mv knowledge_base/facts.md knowledge_base/renamed.md",
            "mv knowledge_base/facts.md moved-out.md",
            "mv README.md knowledge_base/README.md",
            "mkdir knowledge_base/sub",
            "rmdir knowledge_base/empty",
            "ln -s ../README.md knowledge_base/link",
        ],
        EROFS_MSG,
    );
    py(
        &kb,
        r#"
E = errno.EROFS
expect(E, "create", lambda: put("knowledge_base/py.md", "x"))
expect(E, "overwrite", lambda: put("knowledge_base/facts.md", "x"))
expect(E, "write in place", lambda: put("knowledge_base/facts.md", "x", os.O_WRONLY))
expect(E, "append", lambda: append("knowledge_base/facts.md", "x"))
expect(E, "truncate", lambda: os.truncate("knowledge_base/facts.md", 1))
expect(E, "unlink", lambda: os.unlink("knowledge_base/topics/final.md"))
expect(E, "rename", lambda: os.rename("knowledge_base/topics/final.md", "knowledge_base/x.md"))
expect(E, "rename in", lambda: os.rename("README.md", "knowledge_base/topics/final.md"))
expect(E, "mkdir", lambda: os.mkdir("knowledge_base/topics/sub"))
expect(E, "rmdir", lambda: os.rmdir("knowledge_base/empty"))
"#,
    );
    assert_eq!(tree(&kb.join("knowledge_base")), kb_before);
    assert!(kb.join("README.md").exists());

    // Outside the policies the worker writes as usual.
    sh(&kb, "echo dark > preferences/theme; echo more >> README.md");

    // task_history/ is append-only: creates, appends and mkdir work...
    sh(
        &kb,
        r#"
echo first >> task_history/log
echo second >> task_history/log
echo new > task_history/new
touch task_history/touched
mkdir task_history/2024
echo day >> task_history/2024/day.log
"#,
    );
    assert_eq!(
        sh(
            &kb,
            "cat task_history/log task_history/new task_history/2024/day.log"
        ),
        "first\nsecond\nnew\nday\n"
    );
    // ...but nothing already there is overwritten, truncated, removed or replaced.
    each_fails_with(
        &kb,
        &[
            "echo y > task_history/log",
            "truncate -s 0 task_history/log",
            "truncate -s 100 task_history/log",
            "rm task_history/log",
            "mv task_history/new task_history/log",
        ],
        EPERM_MSG,
    );
    py(
        &kb,
        r#"
E = errno.EPERM
expect(E, "overwrite", lambda: put("task_history/log", "y"))
expect(E, "write in place", lambda: put("task_history/log", "y", os.O_WRONLY))
expect(E, "truncate", lambda: os.truncate("task_history/log", 0))
expect(E, "unlink", lambda: os.unlink("task_history/2024/day.log"))
expect(E, "rename over", lambda: os.rename("task_history/touched", "task_history/new"))
append("task_history/log", "third\n")
"#,
    );
    assert_eq!(
        sh(&kb, "cat task_history/log task_history/new"),
        "first\nsecond\nthird\nnew\n"
    );
    m.stop();
    assert_eq!(
        ctl_text(&env, &["cat", "kb/task_history/log"]),
        "first\nsecond\nthird\n"
    );
    assert_eq!(
        ctl_text(&env, &["cat", "kb/knowledge_base/facts.md"]),
        "fact 1\nfact 2\n"
    );

    // Refused changes left no audit entries under knowledge_base/.
    for e in &env.log()[entries_before..] {
        let path = s(e, "path").unwrap_or_default();
        let path2 = s(e, "path2").unwrap_or_default();
        assert!(
            !path.starts_with("knowledge_base") && !path2.starts_with("knowledge_base"),
            "refused change was recorded: {e:#}"
        );
    }
}

// ---------------------------------------------------------------- 5. quotas

const QUOTA_CONFIG: &str = r#"
[[stores]]
name = "fsz"
description = "max_file_bytes"
[stores.quota]
max_file_bytes = 1000

[[stores]]
name = "bytes"
description = "max_bytes"
[stores.quota]
max_bytes = 3000

[[stores]]
name = "files"
description = "max_files"
[stores.quota]
max_files = 5
"#;

#[test]
fn quotas_refuse_and_keep_the_old_head() {
    let env = Env::with_config(QUOTA_CONFIG);
    let m = env.mount("agent-q", "sess-q", None, &["fsz", "bytes", "files"]);

    // max_file_bytes: EFBIG, and the committed content stays.
    let fsz = m.store("fsz");
    py(
        &fsz,
        r#"put("small.txt", "hello\n"); put("exact.bin", b"e" * 1000)"#,
    );
    let versions = version_count(&env, "fsz/small.txt");
    py(
        &fsz,
        r#"
E = errno.EFBIG
expect(E, "overwrite 1001", lambda: put("small.txt", b"x" * 1001))
expect(E, "append past", lambda: append("small.txt", b"y" * 1000))
def write_at(path, data, off):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, off)
    finally:
        os.close(fd)
expect(E, "write at 1000", lambda: write_at("small.txt", b"z", 1000))
expect(E, "truncate up", lambda: os.truncate("small.txt", 1001))
expect(E, "new file 2000", lambda: put("big.bin", b"b" * 2000))
assert get("small.txt") == b"hello\n", get("small.txt")
assert get("exact.bin") == b"e" * 1000
"#,
    );
    each_fails_with(
        &fsz,
        &[
            "head -c 5000 /dev/zero > small.txt",
            "truncate -s 1M small.txt",
        ],
        "File too large",
    );
    assert_eq!(sh(&fsz, "cat small.txt"), "hello\n");
    assert_eq!(ctl_text(&env, &["cat", "fsz/small.txt"]), "hello\n");
    assert_eq!(version_count(&env, "fsz/small.txt"), versions);

    // max_bytes: EDQUOT at write or close, and the old head stays.
    let bytes = m.store("bytes");
    py(
        &bytes,
        r#"put("a.txt", b"a" * 1000); put("b.txt", b"b" * 1000)"#,
    );
    assert_eq!(num(&show(&env, "bytes"), "bytes"), 2000);
    let versions_a = version_count(&env, "bytes/a.txt");
    py(
        &bytes,
        r#"
E = errno.EDQUOT
expect(E, "new file over", lambda: put("c.txt", b"c" * 1500))
expect(E, "overwrite over", lambda: put("a.txt", b"A" * 2500))
expect(E, "append over", lambda: append("b.txt", b"B" * 1200))
assert get("a.txt") == b"a" * 1000
assert get("b.txt") == b"b" * 1000
assert not os.path.exists("c.txt") or get("c.txt") == b""
"#,
    );
    assert_eq!(ctl_text(&env, &["cat", "bytes/a.txt"]), "a".repeat(1000));
    assert_eq!(ctl_text(&env, &["cat", "bytes/b.txt"]), "b".repeat(1000));
    assert_eq!(version_count(&env, "bytes/a.txt"), versions_a);
    assert_eq!(num(&show(&env, "bytes"), "bytes"), 2000);
    // Replacing a file counts its new size, not old + new; up to the limit is fine.
    py(
        &bytes,
        r#"
put("a.txt", b"A" * 1900)
os.unlink("b.txt")
put("c.txt", b"c" * 1100)
assert get("a.txt") == b"A" * 1900
"#,
    );
    assert_eq!(num(&show(&env, "bytes"), "bytes"), 3000);
    py(
        &bytes,
        r#"expect(errno.EDQUOT, "one more byte", lambda: append("c.txt", b"!"))"#,
    );

    // max_files: files, dirs and symlinks count; EDQUOT past the limit.
    let files = m.store("files");
    sh(
        &files,
        "touch f1; echo 2 > f2; mkdir d1; ln -s f1 l1; echo 3 > d1/f3",
    );
    each_fails_with(
        &files,
        &["touch f4", "echo 4 > d1/f4", "mkdir d2", "ln -s f1 l2"],
        "Disk quota exceeded",
    );
    py(
        &files,
        r#"
E = errno.EDQUOT
expect(E, "create", lambda: os.close(os.open("f5", os.O_CREAT | os.O_WRONLY, 0o644)))
expect(E, "mkdir", lambda: os.mkdir("d3"))
expect(E, "symlink", lambda: os.symlink("f1", "l3"))
expect(E, "mknod", lambda: os.mkfifo("fifo"))
"#,
    );
    // Renames and rewrites do not add entries; a removal frees one.
    sh(
        &files,
        "mv f2 f2b; echo again > f2b; rm f1; touch f4; test -f f4",
    );
    each_fails_with(&files, &["touch f6"], "Disk quota exceeded");
    assert_eq!(
        sh(&files, "find . -mindepth 1 | sort"),
        "./d1\n./d1/f3\n./f2b\n./f4\n./l1\n"
    );
    m.stop();
}

// ---------------------------------------------------------------- 6. names

#[test]
fn bad_names_are_refused_and_names_are_case_sensitive() {
    let env = Env::new();
    let m = env.mount("agent-n", "sess-n", None, &["kb"]);
    let kb = m.store("kb");
    py(
        &kb,
        r#"
put("src.txt", "src\n")
# Components: 255 bytes is fine, 256 is too long.
put("n" * 255, "ok")
os.mkdir("m" * 255)
L = errno.ENAMETOOLONG
for what, f in [
    ("create 256", lambda: put("n" * 256, "x")),
    ("mkdir 256", lambda: os.mkdir("m" * 256)),
    ("symlink 256", lambda: os.symlink("src.txt", "s" * 256)),
    ("rename to 256", lambda: os.rename("src.txt", "r" * 256)),
    ("link 256", lambda: os.link("src.txt", "h" * 256)),
    # 2-byte characters: 128 of them are 256 bytes.
    ("create 256 bytes of é", lambda: put("é" * 128, "x")),
]:
    expect(L, what, f)
put("é" * 127, "254 bytes")

# Whole store-relative paths: 1024 bytes is fine, 1025 is too long.
d = "/".join(["d" * 250] * 4)  # 1003 bytes
os.makedirs(d)
put(d + "/" + "f" * 20, "1024")
assert len((d + "/" + "f" * 20).encode()) == 1024
for what, f in [
    ("create 1025", lambda: put(d + "/" + "f" * 21, "x")),
    ("mkdir 1025", lambda: os.mkdir(d + "/" + "g" * 21)),
    ("symlink 1025", lambda: os.symlink("x", d + "/" + "s" * 21)),
    ("rename to 1025", lambda: os.rename("src.txt", d + "/" + "r" * 21)),
]:
    expect(L, what, f)

# Control characters, invalid UTF-8 and non-NFC names: EINVAL.
I = errno.EINVAL
nfd = unicodedata.normalize("NFD", "café")
assert nfd != "café"
for bad in [b"a\x01b", b"tab\there", b"new\nline", b"esc\x1b[0m", b"\x7f", b"\xff", b"caf\xc3", b"\xc3\xa9\xff", nfd.encode()]:
    expect(I, f"create {bad!r}", lambda: put(bad, "x"))
    expect(I, f"mkdir {bad!r}", lambda: os.mkdir(bad))
    expect(I, f"symlink {bad!r}", lambda: os.symlink(b"src.txt", bad))
    expect(I, f"rename to {bad!r}", lambda: os.rename(b"src.txt", bad))
    expect(I, f"link {bad!r}", lambda: os.link(b"src.txt", bad))
put("café", "nfc is fine")
put("日本語 with spaces & symbols!", "fine too")

# Case-sensitive: A and a are different files.
put("A", "upper\n")
put("a", "lower\n")
assert get("A") == b"upper\n" and get("a") == b"lower\n"
names = set(os.listdir(b"."))
assert {b"A", b"a"} <= names, names
for n in names:
    s = n.decode("utf-8")
    assert s == unicodedata.normalize("NFC", s), n
    assert not any(ord(c) < 32 or ord(c) == 127 for c in s), n
assert get("src.txt") == b"src\n"
print(len(names))
"#,
    );
    each_fails_with(
        &kb,
        &[
            "echo x > $'a\\x01b'",
            "mkdir $'\\xff'",
            "touch \"$(python3 -c 'import unicodedata; print(unicodedata.normalize(\"NFD\", \"é\"))')\"",
        ],
        "Invalid argument",
    );
    each_fails_with(
        &kb,
        &["touch $(printf 'x%.0s' $(seq 256))"],
        "File name too long",
    );
    assert_eq!(sh(&kb, "cat A a"), "upper\nlower\n");
    m.stop();
    assert_eq!(ctl_text(&env, &["cat", "kb/A"]), "upper\n");
    assert_eq!(ctl_text(&env, &["cat", "kb/a"]), "lower\n");
    assert_eq!(ctl_text(&env, &["cat", "kb/café"]), "nfc is fine");
}

// ---------------------------------------------------------------- 7. lifecycle

const LIFECYCLE_CONFIG: &str = r#"
[[stores]]
name = "kb"
scope = "org"
description = "Lifecycle test store"

[[stores]]
name = "other"
scope = "org"
description = "Stays around"
"#;

/// Appends to `file` through a mount until that fails with EROFS, within [`VISIBLE`].
fn wait_for_erofs(dir: &Path, file: &str) -> Duration {
    let start = Instant::now();
    loop {
        let out = py_out(
            dir,
            &format!(
                r#"
try:
    append({file:?}, "probe\n")
    print("ok")
except OSError as e:
    print(ename(e.errno))
"#
            ),
        );
        assert_success("append probe", &out);
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if got == "EROFS" {
            return start.elapsed();
        }
        assert_eq!(got, "ok", "append probe failed unexpectedly");
        assert!(
            start.elapsed() < VISIBLE,
            "writes still succeed {VISIBLE:?} after the store was archived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn store_lifecycle_show_archive_unarchive_delete() {
    let env = Env::with_config(LIFECYCLE_CONFIG);
    let m1 = env.mount("writer", "sess-life", None, &["kb"]);
    let kb = m1.store("kb");
    sh(
        &kb,
        "printf 'hello\\n' > a.txt; mkdir d; printf abc > d/b.txt; echo seed > doc.txt; mkdir emptydir dir; echo inner > dir/inner.txt",
    );

    // show: identity, state and size.
    let v = show(&env, "kb");
    assert_eq!(s(&v, "name"), Some("kb"), "{v:#}");
    assert_eq!(s(&v, "scope"), Some("org"), "{v:#}");
    assert!(v["owner"].is_null(), "{v:#}");
    assert_eq!(s(&v, "description"), Some("Lifecycle test store"), "{v:#}");
    assert_eq!(v["archived"], Value::Bool(false), "{v:#}");
    // a.txt, d/b.txt, doc.txt, dir/inner.txt (+ 3 dirs if dirs are counted).
    let files = num(&v, "files");
    assert!(files == 4 || files == 7, "files = {files}: {v:#}");
    assert_eq!(num(&v, "bytes"), 6 + 3 + 5 + 6, "{v:#}");
    assert!(num(&v, "versions") >= 4, "{v:#}");
    let text = ctl_text(&env, &["store", "show", "kb"]);
    assert!(
        text.contains("kb") && text.contains("Lifecycle test store"),
        "{text}"
    );

    // archive: the running read-write mount turns read-only.
    ctl_text(&env, &["store", "archive", "kb"]);
    assert_eq!(show(&env, "kb")["archived"], Value::Bool(true));
    let took = wait_for_erofs(&kb, "probe.log");
    eprintln!("running mount refused writes {took:?} after archive");
    assert_all_writes_erofs(&kb);
    assert_eq!(sh(&kb, "cat a.txt"), "hello\n");

    // New mounts: read-only only, and not attached by default.
    refused(&env, "writer", None, &["kb"], "archived");
    refused(&env, "writer", None, &["kb:rw"], "archived");
    let m2 = env.mount("reader", "sess-ro", None, &["kb:ro"]);
    assert_eq!(sh(&m2.store("kb"), "cat d/b.txt"), "abc");
    assert_all_writes_erofs(&m2.store("kb"));
    m2.stop();
    let m3 = env.mount("writer", "sess-default", None, &[]);
    assert_eq!(root_listing(&m3), ["other"]);
    m3.stop();
    m1.stop();

    // unarchive: read-write again.
    ctl_text(&env, &["store", "unarchive", "kb"]);
    assert_eq!(show(&env, "kb")["archived"], Value::Bool(false));
    let m4 = env.mount("writer", "sess-back", None, &["kb"]);
    sh(&m4.store("kb"), "echo back >> a.txt");
    m4.stop();
    assert_eq!(ctl_text(&env, &["cat", "kb/a.txt"]), "hello\nback\n");

    let archived = ops(&env, "store-archive");
    assert_eq!(archived.len(), 1, "{archived:#?}");
    assert!(entry_names_store(&archived[0], "kb"), "{:#}", archived[0]);
    let unarchived = ops(&env, "store-unarchive");
    assert_eq!(unarchived.len(), 1, "{unarchived:#?}");
    assert!(
        entry_names_store(&unarchived[0], "kb"),
        "{:#}",
        unarchived[0]
    );

    // delete without --yes: refused, nothing deleted.
    ctl_fails(&env, &["store", "delete", "kb"]);
    assert!(store_names(&env).contains(&"kb".to_string()));
    assert_eq!(ctl_text(&env, &["cat", "kb/a.txt"]), "hello\nback\n");
    assert!(ops(&env, "store-delete").is_empty());

    // delete --yes: gone, content gone, a tombstone in the audit log.
    ctl_text(&env, &["store", "delete", "kb", "--yes"]);
    let names = store_names(&env);
    assert!(!names.contains(&"kb".to_string()), "{names:?}");
    assert!(names.contains(&"other".to_string()), "{names:?}");
    ctl_fails(&env, &["store", "show", "kb"]);
    ctl_fails(&env, &["cat", "kb/a.txt"]);
    ctl_fails(&env, &["history", "kb/a.txt"]);
    refused(&env, "writer", None, &["kb"], "kb");
    let tomb = ops(&env, "store-delete");
    assert_eq!(tomb.len(), 1, "{tomb:#?}");
    assert!(
        tomb[0]["detail"].to_string().contains("\"kb\""),
        "tombstone detail does not name the store: {:#}",
        tomb[0]
    );
    assert_eq!(env.ctl(&["audit", "verify"])["ok"], true);
}

// ---------------------------------------------------------------- 8. prompt

const PROMPT_CONFIG: &str = r#"
[[stores]]
name = "kb"
scope = "org"
description = "Shared knowledge base"
readers = ["*"]
writers = ["curator"]

[stores.policy]
read_only = ["knowledge_base/**"]
read_only_writers = ["curator"]
append_only = ["task_history/**"]

[stores.quota]
max_file_bytes = 65536
max_bytes = 262144
max_files = 50

[[stores]]
name = "notes"
scope = "org"
description = "Scratch notes for every agent"

[[stores]]
name = "alice"
scope = "user"
owner = "alice"
description = "Alice's private memory"

[[stores]]
name = "staff"
scope = "org"
description = "Staff only"
readers = ["staff-*"]
"#;

fn prompt(env: &Env, args: &[&str]) -> String {
    let mut a = vec!["prompt"];
    a.extend_from_slice(args);
    let text = ctl_text(env, &a);
    assert!(!text.trim().is_empty(), "empty prompt for {args:?}");
    text
}

/// The JSON object anywhere in `v` whose "name" is `name`.
fn find_named<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => {
            if o.get("name").and_then(Value::as_str) == Some(name) {
                return Some(v);
            }
            o.values().find_map(|c| find_named(c, name))
        }
        Value::Array(a) => a.iter().find_map(|c| find_named(c, name)),
        _ => None,
    }
}

/// Whether a prompt-JSON store object says it is attached read-only.
fn json_read_only(store: &Value) -> bool {
    let t = store.to_string();
    t.contains("\"read-only\"")
        || t.contains("\"ro\"")
        || store["read_only"] == Value::Bool(true)
        || store["readonly"] == Value::Bool(true)
}

#[test]
fn prompt_describes_each_attachable_store() {
    let env = Env::with_config(PROMPT_CONFIG);
    let mp = ["--mountpoint", "/mnt/mem"];

    // Everything worker-1 (user alice) would attach.
    let all = prompt(
        &env,
        &["--agent", "worker-1", "--user", "alice", mp[0], mp[1]],
    );
    for want in [
        "/mnt/mem/kb/",
        "/mnt/mem/notes/",
        "/mnt/mem/alice/",
        "Shared knowledge base",
        "Scratch notes for every agent",
        "Alice's private memory",
        "read-only",
        "read-write",
        "knowledge_base/**",
        "task_history/**",
    ] {
        assert!(all.contains(want), "prompt lacks {want:?}:\n{all}");
    }
    assert!(!all.contains("/mnt/mem/staff"), "staff listed:\n{all}");

    // One store at a time: the mode, description and policies are that store's.
    let kb = prompt(
        &env,
        &["--agent", "worker-1", "--store", "kb", mp[0], mp[1]],
    );
    assert!(kb.contains("/mnt/mem/kb/"), "{kb}");
    assert!(kb.contains("read-only"), "{kb}");
    assert!(
        !kb.contains("read-write"),
        "reader's kb is not read-write:\n{kb}"
    );
    assert!(kb.contains("Shared knowledge base"), "{kb}");
    assert!(
        kb.contains("knowledge_base/**") && kb.contains("task_history/**"),
        "{kb}"
    );
    assert!(
        kb.to_lowercase().contains("append"),
        "no append-only policy:\n{kb}"
    );
    assert!(
        ["65536", "64 KiB", "64KiB", "64 KB", "64KB", "64.0 KiB"]
            .iter()
            .any(|q| kb.contains(q)),
        "no max_file_bytes quota:\n{kb}"
    );
    assert!(kb.contains("50"), "no max_files quota:\n{kb}");
    assert!(!kb.contains("/mnt/mem/notes"), "{kb}");

    let cur = prompt(&env, &["--agent", "curator", "--store", "kb", mp[0], mp[1]]);
    assert!(
        cur.contains("read-write"),
        "curator's kb is read-write:\n{cur}"
    );

    let notes = prompt(
        &env,
        &["--agent", "worker-1", "--store", "notes", mp[0], mp[1]],
    );
    assert!(notes.contains("/mnt/mem/notes/"), "{notes}");
    assert!(notes.contains("read-write"), "{notes}");
    assert!(notes.contains("Scratch notes for every agent"), "{notes}");
    assert!(!notes.contains("knowledge_base"), "{notes}");

    // Default mountpoint; no user: no user store.
    let dflt = prompt(&env, &["--agent", "worker-1"]);
    assert!(
        dflt.contains("/mnt/memory/kb/") && dflt.contains("/mnt/memory/notes/"),
        "{dflt}"
    );
    assert!(!dflt.contains("/mnt/memory/alice"), "{dflt}");
    assert!(!dflt.contains("/mnt/memory/staff"), "{dflt}");
    let staff = prompt(&env, &["--agent", "staff-1"]);
    assert!(staff.contains("/mnt/memory/staff/"), "{staff}");

    // JSON.
    let j = env.ctl(&[
        "prompt", "--agent", "worker-1", "--user", "alice", mp[0], mp[1],
    ]);
    let t = j.to_string();
    for want in [
        "/mnt/mem/kb",
        "/mnt/mem/notes",
        "/mnt/mem/alice",
        "Shared knowledge base",
        "knowledge_base/**",
        "task_history/**",
        "65536",
        "262144",
    ] {
        assert!(t.contains(want), "prompt JSON lacks {want:?}: {j:#}");
    }
    assert!(!t.contains("/mnt/mem/staff"), "{j:#}");
    let kb_j = find_named(&j, "kb").unwrap_or_else(|| panic!("no kb in {j:#}"));
    assert!(json_read_only(kb_j), "kb not read-only in {kb_j:#}");
    let notes_j = find_named(&j, "notes").unwrap_or_else(|| panic!("no notes in {j:#}"));
    assert!(!json_read_only(notes_j), "notes read-only in {notes_j:#}");
    let jc = env.ctl(&["prompt", "--agent", "curator", "--store", "kb"]);
    let kb_c = find_named(&jc, "kb").unwrap_or_else(|| panic!("no kb in {jc:#}"));
    assert!(!json_read_only(kb_c), "curator's kb read-only in {kb_c:#}");

    // An archived store is not attached by default, so not in the prompt.
    ctl_text(&env, &["store", "archive", "notes"]);
    let after = prompt(&env, &["--agent", "worker-1"]);
    assert!(!after.contains("/mnt/memory/notes"), "{after}");
    assert!(after.contains("/mnt/memory/kb/"), "{after}");
}

// ---------------------------------------------------------------- 9. ways around the rules
//
// The rules above must also hold when an agent takes an indirect route: another
// name for a protected file, moving a protected path's ancestor, growing a path by
// renaming a directory, a refused commit seen through the kernel's caches.

const ESCAPE_CONFIG: &str = r#"
[[stores]]
name = "kb"
scope = "org"
template = ["knowledge_base/", "task_history/", "docs/kb/", "agents/history/"]

[stores.policy]
read_only = ["knowledge_base/**", "docs/kb/**"]
read_only_writers = ["curator"]
append_only = ["task_history/**", "agents/history/**"]
"#;

/// Files the curator writes into the protected paths of [`ESCAPE_CONFIG`].
fn protected_world(env: &Env) {
    let m = env.mount("curator", "sess-cur", None, &["kb"]);
    sh(
        &m.store("kb"),
        r#"
echo fact > knowledge_base/facts.md
echo doc > docs/kb/facts.md
echo entry >> task_history/log
echo entry >> agents/history/log
"#,
    );
    m.stop();
}

/// The protected files' committed content, as memfsctl sees it.
fn protected_contents(env: &Env) -> Vec<String> {
    [
        "kb/knowledge_base/facts.md",
        "kb/docs/kb/facts.md",
        "kb/task_history/log",
        "kb/agents/history/log",
    ]
    .iter()
    .map(|t| ctl_text(env, &["cat", t]))
    .collect()
}

#[test]
fn hard_links_do_not_escape_path_policies() {
    let env = Env::with_config(ESCAPE_CONFIG);
    protected_world(&env);
    let m = env.mount("worker-1", "sess-w1", None, &["kb"]);
    let kb = m.store("kb");
    // Another name for a protected file, then writes through that name. Each step
    // may fail; what matters is that the protected content does not change.
    let out = run_with_deadline(
        &mut common::bash(
            &kb,
            r#"
set +e
ln knowledge_base/facts.md kb-alias; echo "ln read-only: $?"
echo hacked >> kb-alias
echo hacked > kb-alias
ln task_history/log log-alias; echo "ln append-only: $?"
echo truncated > log-alias
truncate -s 0 log-alias
true
"#,
        ),
        COMMAND_DEADLINE,
    );
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    m.stop();
    assert_eq!(
        protected_contents(&env),
        ["fact\n", "doc\n", "entry\n", "entry\n"],
        "a hard link let worker-1 change protected files:\n{report}"
    );
}

#[test]
fn moving_an_ancestor_does_not_escape_path_policies() {
    let env = Env::with_config(ESCAPE_CONFIG);
    protected_world(&env);
    let m = env.mount("worker-1", "sess-w1", None, &["kb"]);
    let kb = m.store("kb");
    // Move the directory above a protected path, change the files under their new
    // names (no longer matching the globs), move it back.
    let out = run_with_deadline(
        &mut common::bash(
            &kb,
            r#"
set +e
mv docs docs2 && { echo hacked > docs2/kb/facts.md; echo planted > docs2/kb/planted.md; mv docs2 docs; }
mv agents agents2 && { echo truncated > agents2/history/log; mv agents2 agents; }
true
"#,
        ),
        COMMAND_DEADLINE,
    );
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    let listing = sh(&kb, "find docs agents | sort");
    m.stop();
    assert_eq!(
        protected_contents(&env),
        ["fact\n", "doc\n", "entry\n", "entry\n"],
        "moving an ancestor let worker-1 change protected files:\n{report}"
    );
    assert_eq!(
        listing, "agents\nagents/history\nagents/history/log\ndocs\ndocs/kb\ndocs/kb/facts.md\n",
        "moving an ancestor let worker-1 add files to a read-only directory:\n{report}"
    );
}

#[test]
fn renaming_a_directory_cannot_make_paths_too_long() {
    let env = Env::new();
    let m = env.mount("agent-n", "sess-n", None, &["kb"]);
    py(
        &m.store("kb"),
        r#"
d = "/".join(["d" * 250] * 4)  # 1003 bytes
os.makedirs(d)
put(d + "/" + "f" * 20, "1024")  # a 1024-byte path: the longest allowed
os.makedirs("deep/er")
L = errno.ENAMETOOLONG
expect(L, "rename top dir longer", lambda: os.rename("d" * 250, "d" * 251))
expect(L, "move tree down", lambda: os.rename("d" * 250, "deep/er/" + "d" * 250))
long = []
for root, dirs, files in os.walk("."):
    for n in dirs + files:
        p = os.path.join(root, n)[2:]
        if len(p.encode()) > 1024:
            long.append(len(p.encode()))
assert not long, f"store-relative paths over 1024 bytes exist: {long}"
"#,
    );
    m.stop();
}

#[test]
fn refused_commit_leaves_no_stale_size_in_the_mount() {
    let env = Env::with_config(
        r#"
[[stores]]
name = "q"
[stores.quota]
max_bytes = 3000
"#,
    );
    let m = env.mount("agent-q", "sess-q", None, &["q"]);
    let q = m.store("q");
    // `truncate -s` grows the file through an open descriptor; the store quota
    // refuses the commit at close.
    sh(&q, "head -c 2000 /dev/zero > filler; echo hello > small");
    each_fails_with(&q, &["truncate -s 1800 small"], "Disk quota exceeded");
    assert_eq!(ctl_text(&env, &["cat", "q/small"]), "hello\n");
    // The mount must show the committed file, not the refused size.
    assert_eq!(
        sh(&q, "stat -c %s small; wc -c < small; cat small"),
        "6\n6\nhello\n"
    );
    m.stop();
}

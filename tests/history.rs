//! Real-FUSE tests of history, audit and rollback: `memfsctl log` filters,
//! `history`/`cat`/`diff`, rollback of a file, a session and a whole store, audit
//! chain verification, and the read-only `.memfs` directory at the mount root.
//!
//! Changes are made through mounted daemons with ordinary tools; `memfsctl` runs
//! beside them, and what it changes must show up in the running mounts (polled
//! with a deadline, never a fixed sleep). The only sleeps separate timestamps for
//! `--since`/`--until`/`--at`.
//!
//! Needs root (or fusermount3) and /dev/fuse.

mod common;

use common::{assert_success, s, sh, ChildGuard, Env, Mount, COMMAND_DEADLINE};
use memfs::ids::now_ns;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a change made by memfsctl (or another daemon) may take to show up in a
/// running mount. The change feed is polled every 50 ms; this is generous for a
/// loaded 2-core machine.
const VISIBLE: Duration = Duration::from_secs(10);

/// Gap on each side of a timestamp taken between two phases of changes.
const GAP: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------- helpers

/// A point in time strictly between the changes made before and after this call:
/// sleeps, takes the time, sleeps again. Returns (ns, RFC 3339 with nanoseconds).
fn stamp() -> (i64, String) {
    std::thread::sleep(GAP);
    let t = now_ns();
    std::thread::sleep(GAP);
    (t, rfc3339_ns(t))
}

/// RFC 3339 UTC with all nine fractional digits, so a time parses back exactly.
fn rfc3339_ns(t: i64) -> String {
    let ms = memfs::timefmt::rfc3339(t); // 2026-11-23T10:04:05.123Z
    format!("{}.{:09}Z", &ms[..19], t.rem_euclid(1_000_000_000))
}

/// Polls `get` until it returns `want`, failing with the last value after [`VISIBLE`].
fn eventually<T: PartialEq + std::fmt::Debug>(what: &str, want: &T, mut get: impl FnMut() -> T) {
    let deadline = Instant::now() + VISIBLE;
    loop {
        let got = get();
        if &got == want {
            return;
        }
        if Instant::now() > deadline {
            assert_eq!(&got, want, "{what}: still not seen after {VISIBLE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file's content through the mount (an error as text, so polls can retry).
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))
}

/// Writes a file with one open, write and close, in a child process. Not from this
/// (multi-threaded) test process: a fork by another test's thread between our open
/// and close would flush, and so commit, the file early, adding a version.
fn put(path: &Path, data: impl AsRef<[u8]>) {
    let hex: String = data.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let out = common::run_with_deadline(
        Command::new("python3")
            .arg("-c")
            .arg("import sys; open(sys.argv[1], 'wb').write(bytes.fromhex(sys.argv[2]))")
            .arg(path)
            .arg(hex),
        COMMAND_DEADLINE,
    );
    assert_success(&format!("write {}", path.display()), &out);
}

/// A python3 process holding a file open for writing, with bytes written but not
/// yet closed (so not committed), until [`HeldWriter::close`].
struct HeldWriter {
    child: ChildGuard,
    lines: mpsc::Receiver<String>,
}

impl HeldWriter {
    const SCRIPT: &'static str = r#"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, sys.argv[2].encode())
print("ready", flush=True)
sys.stdin.readline()
try:
    os.close(fd)
    print("ok", flush=True)
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
"#;

    fn start(path: &Path, data: &[u8]) -> HeldWriter {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(Self::SCRIPT)
            .arg(path)
            .arg(std::str::from_utf8(data).expect("UTF-8 data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        let out = child.stdout.take().expect("child stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut w = HeldWriter {
            child: ChildGuard(child),
            lines,
        };
        assert_eq!(w.next_line(), "ready", "the writer did not open and write");
        w
    }

    fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(COMMAND_DEADLINE)
            .unwrap_or_else(|e| panic!("the held writer said nothing ({e})"))
    }

    /// Closes the descriptor; returns "ok" or the errno name the close failed with.
    fn close(mut self) -> String {
        let stdin = self.child.0.stdin.as_mut().expect("child stdin");
        stdin
            .write_all(b"close\n")
            .expect("tell the writer to close");
        stdin.flush().expect("flush to the writer");
        let said = self.next_line();
        let _ = self.child.0.wait();
        said
    }
}

/// Everything below `dir`: relative path -> "dir MODE", "file MODE blake3" or
/// "link -> TARGET". Modification times are left out (undoing is a new change).
fn snapshot(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            let rel = p
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            let md = std::fs::symlink_metadata(&p)?;
            let mode = md.permissions().mode() & 0o7777;
            let desc = if md.is_dir() {
                walk(root, &p, out)?;
                format!("dir {mode:o}")
            } else if md.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p)?.display())
            } else {
                let data = std::fs::read(&p)?;
                format!("file {mode:o} {}", blake3::hash(&data).to_hex())
            };
            out.insert(rel, desc);
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out).map_err(|e| format!("walk {}: {e}", dir.display()))?;
    Ok(out)
}

/// What [`snapshot`] shows for a regular file.
fn file_desc(mode: u32, content: &[u8]) -> String {
    format!("file {mode:o} {}", blake3::hash(content).to_hex())
}

/// `find | sort` with types and modes, symlink targets and the sha256 of every
/// regular file below `dir` (run through the mount).
fn listing(dir: &Path) -> String {
    sh(
        dir,
        r#"
find . -mindepth 1 -printf '%y %m %p\n' | sort -k3
find . -type l -printf '%p -> %l\n' | sort
find . -type f -print0 | sort -z | xargs -0 -r sha256sum
"#,
    )
}

/// `memfsctl ARGS...` (no --json), not asserting anything.
fn ctl_out(env: &Env, args: &[&str]) -> Output {
    env.run(env.memfsctl().args(args))
}

/// `memfsctl ARGS...`, asserting success; its raw stdout.
fn ctl_raw(env: &Env, args: &[&str]) -> Vec<u8> {
    let out = ctl_out(env, args);
    assert_success(&format!("memfsctl {}", args.join(" ")), &out);
    out.stdout
}

/// `memfsctl ARGS...`, asserting success; its stdout as text.
fn ctl_text(env: &Env, args: &[&str]) -> String {
    String::from_utf8(ctl_raw(env, args)).expect("memfsctl output is UTF-8")
}

/// `memfsctl ARGS...`, asserting it fails the documented way; its stderr.
fn ctl_fails(env: &Env, args: &[&str]) -> String {
    let out = ctl_out(env, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "memfsctl {} unexpectedly succeeded:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("memfsctl: error: "),
        "memfsctl {} failed without an error line: {stderr}",
        args.join(" ")
    );
    stderr
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {v}"))
}

fn id(e: &Value) -> i64 {
    e["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("entry without id: {e}"))
}

fn ids(v: &[Value]) -> Vec<i64> {
    v.iter().map(id).collect()
}

/// `memfsctl log ARGS...` as entry ids (newest first).
fn log_ids(env: &Env, args: &[&str]) -> Vec<i64> {
    let mut a = vec!["log"];
    a.extend_from_slice(args);
    ids(arr(&env.ctl(&a)))
}

/// The ids of the entries of `all` (newest first) that `keep` accepts.
fn select(all: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<i64> {
    all.iter().filter(|e| keep(e)).map(id).collect()
}

/// `memfsctl history STORE/PATH`, oldest first.
fn history(env: &Env, target: &str) -> Vec<Value> {
    let mut v = arr(&env.ctl(&["history", target])).clone();
    v.reverse();
    v
}

fn at_or_below(p: Option<&str>, dir: &str) -> bool {
    p.is_some_and(|p| p == dir || p.starts_with(&format!("{dir}/")))
}

/// Whether entry `e` lies at or below `dir` of `store` (as path or path2).
fn under(e: &Value, store: &str, dir: &str) -> bool {
    s(e, "store") == Some(store)
        && (at_or_below(s(e, "path"), dir) || at_or_below(s(e, "path2"), dir))
}

fn steps(report: &Value) -> &Vec<Value> {
    arr(&report["steps"])
}

/// (action, path, path2) of every step of a rollback report.
fn step_keys(report: &Value) -> BTreeSet<(String, String, String)> {
    steps(report)
        .iter()
        .map(|st| {
            (
                s(st, "action").unwrap_or_default().to_string(),
                s(st, "path").unwrap_or_default().to_string(),
                s(st, "path2").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn key(action: &str, path: &str, path2: &str) -> (String, String, String) {
    (action.into(), path.into(), path2.into())
}

/// Asserts no step of a (non dry-run) rollback report was skipped.
fn assert_all_done(report: &Value) {
    for st in steps(report) {
        let outcome = s(st, "outcome").unwrap_or_default();
        assert!(
            outcome == "done" || outcome == "unchanged",
            "step not done: {st}\nreport: {report:#}"
        );
    }
    assert_eq!(report["dry_run"], Value::Bool(false), "{report:#}");
}

// ---------------------------------------------------------------- 1. log filters

#[test]
fn log_filters_narrow_entries() {
    let env = Env::new();
    let a = env.mount("agent-a", "sess-a", Some("alice"), &["kb", "alice"]);
    let b = env.mount("agent-b", "sess-b", Some("bob"), &["kb"]);

    // Phase 1: both sessions create files; alice also in her own store.
    sh(
        a.path(),
        r#"
mkdir kb/notes
printf 'a1\n' > kb/notes/a1.md
printf 'a2\n' > kb/notes/a2.md
printf 'not below notes/\n' > kb/notes-other.md
printf 'private\n' > alice/private.md
"#,
    );
    sh(
        b.path(),
        r#"
printf 'b1\n' > kb/b1.md
printf 'b note\n' > kb/notes/b-note.md
"#,
    );
    let (mid_ns, mid) = stamp();
    // Phase 2: a rename, a chmod, an unlink and an append.
    sh(
        a.path(),
        r#"
mkdir kb/archive
mv kb/notes/a1.md kb/archive/a1.md
chmod 600 kb/notes/a2.md
"#,
    );
    sh(
        b.path(),
        r#"
rm kb/b1.md
printf 'more\n' >> kb/notes/b-note.md
"#,
    );

    let all = arr(&env.ctl(&["log"])).clone();
    let all_ids = ids(&all);
    assert!(
        all_ids.windows(2).all(|w| w[0] > w[1]),
        "log is not newest first: {all_ids:?}"
    );
    for e in &all {
        for field in ["at", "op", "agent", "session", "hash"] {
            assert!(s(e, field).is_some(), "entry without {field}: {e}");
        }
        assert!(e["at_ns"].as_i64().is_some(), "entry without at_ns: {e}");
    }

    // Session, agent, user.
    let sess_a = log_ids(&env, &["--session", "sess-a"]);
    assert_eq!(sess_a, select(&all, |e| s(e, "session") == Some("sess-a")));
    assert!(sess_a.len() >= 8, "too few sess-a entries: {sess_a:?}");
    let stores_a: BTreeSet<&str> = all
        .iter()
        .filter(|e| s(e, "session") == Some("sess-a"))
        .filter_map(|e| s(e, "store"))
        .collect();
    assert_eq!(stores_a, BTreeSet::from(["alice", "kb"]));
    let agent_b = log_ids(&env, &["--agent", "agent-b"]);
    assert_eq!(agent_b, select(&all, |e| s(e, "agent") == Some("agent-b")));
    assert!(agent_b.len() >= 5, "too few agent-b entries: {agent_b:?}");
    assert_eq!(log_ids(&env, &["--user", "bob"]), agent_b);
    assert_eq!(log_ids(&env, &["--user", "alice"]), sess_a);
    assert_eq!(
        log_ids(&env, &["--session", "no-such-session"]),
        Vec::<i64>::new()
    );

    // Operation.
    let renames = arr(&env.ctl(&["log", "--op", "rename"])).clone();
    assert_eq!(renames.len(), 1, "{renames:#?}");
    let r = &renames[0];
    assert_eq!(s(r, "store"), Some("kb"));
    assert_eq!(s(r, "path"), Some("notes/a1.md"));
    assert_eq!(s(r, "path2"), Some("archive/a1.md"));
    assert_eq!(s(r, "session"), Some("sess-a"));
    assert_eq!(s(r, "agent"), Some("agent-a"));
    assert_eq!(s(r, "user"), Some("alice"));
    let unlinks = arr(&env.ctl(&["log", "--op", "unlink"])).clone();
    assert_eq!(unlinks.len(), 1, "{unlinks:#?}");
    assert_eq!(s(&unlinks[0], "path"), Some("b1.md"));
    assert_eq!(s(&unlinks[0], "session"), Some("sess-b"));
    let chmods = arr(&env.ctl(&["log", "--op", "chmod"])).clone();
    assert_eq!(chmods.len(), 1, "{chmods:#?}");
    assert_eq!(s(&chmods[0], "path"), Some("notes/a2.md"));
    let creates: BTreeSet<String> = arr(&env.ctl(&["log", "--op", "create", "--store", "kb"]))
        .iter()
        .map(|e| format!("{}:{}", s(e, "session").unwrap(), s(e, "path").unwrap()))
        .collect();
    let want: BTreeSet<String> = [
        "sess-a:notes/a1.md",
        "sess-a:notes/a2.md",
        "sess-a:notes-other.md",
        "sess-b:b1.md",
        "sess-b:notes/b-note.md",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(creates, want);

    // Store.
    let alice = log_ids(&env, &["--store", "alice"]);
    assert_eq!(alice, select(&all, |e| s(e, "store") == Some("alice")));
    assert!(
        all.iter()
            .any(|e| s(e, "store") == Some("alice") && s(e, "path") == Some("private.md")),
        "no entry for alice/private.md"
    );
    let kb = log_ids(&env, &["--store", "kb"]);
    assert_eq!(kb, select(&all, |e| s(e, "store") == Some("kb")));
    assert_eq!(
        kb.len() + alice.len(),
        all.len(),
        "every entry is in kb or alice"
    );

    // Path prefix: the directory itself and below it, as path or path2; a sibling
    // that merely starts with the same characters is not below it.
    let notes = arr(&env.ctl(&["log", "--path", "kb/notes"])).clone();
    assert_eq!(ids(&notes), select(&all, |e| under(e, "kb", "notes")));
    assert!(notes.iter().any(|e| s(e, "op") == Some("mkdir")));
    assert!(notes.iter().any(|e| s(e, "op") == Some("rename")));
    assert!(
        !notes.iter().any(|e| s(e, "path") == Some("notes-other.md")),
        "--path kb/notes matched notes-other.md: {notes:#?}"
    );
    let archive = arr(&env.ctl(&["log", "--path", "archive", "--store", "kb"])).clone();
    assert_eq!(ids(&archive), select(&all, |e| under(e, "kb", "archive")));
    assert!(
        archive.iter().any(|e| s(e, "op") == Some("rename")),
        "a rename into archive/ is found by its second path: {archive:#?}"
    );
    let one_file: Vec<String> = arr(&env.ctl(&["log", "--path", "kb/notes/a1.md"]))
        .iter()
        .map(|e| s(e, "op").unwrap().to_string())
        .collect();
    assert_eq!(one_file, ["rename", "write", "create"]);
    // The store name in --path and --store must agree on the store searched.
    assert_eq!(
        log_ids(&env, &["--path", "private.md", "--store", "alice"]),
        select(&all, |e| under(e, "alice", "private.md"))
    );

    // Time: RFC 3339 between the phases splits the log in two.
    let since = log_ids(&env, &["--since", &mid]);
    let until = log_ids(&env, &["--until", &mid]);
    assert_eq!(
        since,
        select(&all, |e| e["at_ns"].as_i64().unwrap() >= mid_ns)
    );
    assert_eq!(
        until,
        select(&all, |e| e["at_ns"].as_i64().unwrap() <= mid_ns)
    );
    let mut both = since.clone();
    both.extend(&until);
    assert_eq!(both, all_ids, "--since and --until {mid} split the log");
    assert!(since.contains(&id(r)), "the rename came after {mid}");
    let since_ops: BTreeSet<&str> = all
        .iter()
        .filter(|e| since.contains(&id(e)))
        .filter_map(|e| s(e, "op"))
        .collect();
    assert_eq!(
        since_ops,
        BTreeSet::from(["chmod", "mkdir", "rename", "unlink", "write"])
    );
    let b_since = log_ids(&env, &["--since", &mid, "--session", "sess-b"]);
    assert_eq!(
        b_since,
        select(&all, |e| {
            s(e, "session") == Some("sess-b") && e["at_ns"].as_i64().unwrap() >= mid_ns
        })
    );
    assert!(!b_since.is_empty());
    // Ages: everything happened within the last hour.
    assert_eq!(log_ids(&env, &["--since", "1h"]), all_ids);
    assert_eq!(log_ids(&env, &["--until", "1h"]), Vec::<i64>::new());

    // Limit keeps the newest entries.
    assert_eq!(log_ids(&env, &["--limit", "3"]), all_ids[..3]);
    assert_eq!(
        log_ids(&env, &["--limit", "2", "--session", "sess-b"]),
        select(&all, |e| s(e, "session") == Some("sess-b"))[..2]
    );
    // Filters combine.
    assert_eq!(
        log_ids(
            &env,
            &["--session", "sess-a", "--op", "write", "--store", "kb"]
        ),
        select(&all, |e| {
            s(e, "session") == Some("sess-a")
                && s(e, "op") == Some("write")
                && s(e, "store") == Some("kb")
        })
    );

    // The human listing.
    let text = ctl_text(&env, &["log", "--op", "rename"]);
    assert!(
        text.contains("rename")
            && text.contains("kb/notes/a1.md -> kb/archive/a1.md")
            && text.contains("agent=agent-a session=sess-a user=alice"),
        "{text}"
    );

    // Bad filters are errors, not empty results.
    ctl_fails(&env, &["log", "--path", "notes"]);
    ctl_fails(&env, &["log", "--store", "no-such-store"]);
    ctl_fails(&env, &["log", "--since", "yesterday"]);

    a.stop();
    b.stop();
}

// ---------------------------------------------------------------- 2. history, cat, diff

#[test]
fn history_cat_diff_follow_the_file() {
    let env = Env::new();
    let m = env.mount("agent-h", "sess-h", Some("carol"), &["kb"]);
    let kb = m.store("kb");
    let contents = [
        "alpha\nbeta\ngamma\n",
        "alpha\nBETA\ngamma\n",
        "alpha\nBETA\ngamma\ndelta\n",
        "zero\nalpha\nBETA\ngamma\ndelta\n",
    ];

    let (_, before) = stamp();
    put(&kb.join("doc.md"), contents[0]);
    let (_, t1) = stamp();
    put(&kb.join("doc.md"), contents[1]);
    let (_, t2) = stamp();
    put(&kb.join("doc.md"), contents[2]);
    std::fs::create_dir(kb.join("notes")).unwrap();
    std::fs::rename(kb.join("doc.md"), kb.join("notes/renamed.md")).unwrap();
    put(&kb.join("notes/renamed.md"), contents[3]);
    let ino = std::fs::metadata(kb.join("notes/renamed.md"))
        .unwrap()
        .ino();
    let kb_id = arr(&env.ctl(&["store", "list"]))
        .iter()
        .find(|st| s(st, "name") == Some("kb"))
        .and_then(|st| st["id"].as_i64())
        .expect("store kb in store list");

    // Four versions, oldest first here, all of one inode, across the rename.
    let h = history(&env, "kb/notes/renamed.md");
    assert_eq!(h.len(), 4, "{h:#?}");
    let vs = ids(&h);
    assert!(vs.windows(2).all(|w| w[0] < w[1]), "{vs:?}");
    for (i, v) in h.iter().enumerate() {
        assert_eq!(v["ino"].as_u64(), Some(ino), "{v}");
        // `history` gives the store's id where `log` gives its name: accept either.
        assert!(
            s(v, "store") == Some("kb") || v["store"].as_i64() == Some(kb_id),
            "{v}"
        );
        assert_eq!(s(v, "op"), Some("write"), "{v}");
        assert_eq!(v["size"].as_u64(), Some(contents[i].len() as u64), "{v}");
        let hash = blake3::hash(contents[i].as_bytes()).to_hex();
        assert_eq!(s(v, "hash"), Some(hash.as_str()), "{v}");
        assert_eq!(s(v, "agent"), Some("agent-h"));
        assert_eq!(s(v, "session"), Some("sess-h"));
        assert_eq!(s(v, "user"), Some("carol"));
        assert!(s(v, "at").is_some() && v["at_ns"].as_i64().is_some());
        let want_path = if i < 3 { "doc.md" } else { "notes/renamed.md" };
        assert_eq!(s(v, "path"), Some(want_path), "{v}");
    }
    // The old path is gone, but history finds the file last seen there.
    assert!(!kb.join("doc.md").exists());
    assert_eq!(ids(&history(&env, "kb/doc.md")), vs);
    ctl_fails(&env, &["history", "kb/never-existed.md"]);

    // cat: each version, the head, and as of a time.
    for (v, want) in vs.iter().zip(contents) {
        let got = ctl_raw(
            &env,
            &["cat", "kb/notes/renamed.md", "--version", &v.to_string()],
        );
        assert_eq!(String::from_utf8_lossy(&got), want, "version {v}");
    }
    assert_eq!(
        ctl_raw(&env, &["cat", "kb/notes/renamed.md"]),
        contents[3].as_bytes()
    );
    assert_eq!(
        read(&kb.join("notes/renamed.md")).unwrap(),
        contents[3].as_bytes()
    );
    assert_eq!(
        ctl_raw(&env, &["cat", "kb/notes/renamed.md", "--at", &t1]),
        contents[0].as_bytes()
    );
    assert_eq!(
        ctl_raw(&env, &["cat", "kb/doc.md", "--at", &t2]),
        contents[1].as_bytes()
    );
    assert_eq!(
        ctl_raw(&env, &["cat", "kb/notes/renamed.md", "--at", "0s"]),
        contents[3].as_bytes()
    );
    ctl_fails(&env, &["cat", "kb/notes/renamed.md", "--at", &before]);
    ctl_fails(&env, &["cat", "kb/notes/renamed.md", "--version", "999999"]);

    // diff between two versions.
    let d = env.ctl(&[
        "diff",
        "kb/notes/renamed.md",
        &vs[0].to_string(),
        &vs[1].to_string(),
    ]);
    assert_eq!(d["from"].as_i64(), Some(vs[0]));
    assert_eq!(d["to"].as_i64(), Some(vs[1]));
    assert_eq!(d["same"], Value::Bool(false));
    assert_eq!(d["binary"], Value::Bool(false));
    let text = s(&d, "diff").unwrap();
    assert!(
        text.contains(&format!("--- kb/notes/renamed.md@v{}", vs[0]))
            && text.contains(&format!("+++ kb/notes/renamed.md@v{}", vs[1]))
            && text.contains("\n-beta\n")
            && text.contains("\n+BETA\n")
            && text.contains("\n alpha\n")
            && !text.contains("-alpha")
            && !text.contains("+gamma"),
        "{text}"
    );
    // V2 defaults to the head.
    let d = env.ctl(&["diff", "kb/notes/renamed.md", &vs[2].to_string()]);
    assert_eq!(d["to"].as_i64(), Some(vs[3]));
    let text = s(&d, "diff").unwrap();
    assert!(
        text.contains("\n+zero\n") && !text.contains("+delta"),
        "{text}"
    );
    // The human form is the same unified diff.
    let text = ctl_text(&env, &["diff", "kb/notes/renamed.md", &vs[0].to_string()]);
    assert!(
        text.contains("-beta")
            && text.contains("+BETA")
            && text.contains("+delta")
            && text.contains("+zero"),
        "{text}"
    );
    let d = env.ctl(&[
        "diff",
        "kb/notes/renamed.md",
        &vs[1].to_string(),
        &vs[1].to_string(),
    ]);
    assert_eq!(d["same"], Value::Bool(true));
    assert_eq!(s(&d, "diff"), Some(""));

    // Binary content: no line diff.
    put(&kb.join("blob.bin"), b"\x00\x01\x02binary\xff");
    put(&kb.join("blob.bin"), b"\x00\x01\x03binary\xfe");
    let bh = history(&env, "kb/blob.bin");
    assert_eq!(bh.len(), 2, "{bh:#?}");
    let (b1, b2) = (id(&bh[0]), id(&bh[1]));
    let d = env.ctl(&["diff", "kb/blob.bin", &b1.to_string(), &b2.to_string()]);
    assert_eq!(d["binary"], Value::Bool(true));
    assert_eq!(d["same"], Value::Bool(false));
    assert_eq!(
        s(&d, "diff"),
        Some(format!("Binary files kb/blob.bin@v{b1} and kb/blob.bin@v{b2} differ\n").as_str())
    );
    let text = ctl_text(&env, &["diff", "kb/blob.bin", &b1.to_string()]);
    assert!(
        text.starts_with("Binary files") && text.trim_end().ends_with("differ"),
        "{text}"
    );
    assert_eq!(
        ctl_raw(&env, &["cat", "kb/blob.bin", "--version", &b1.to_string()]),
        b"\x00\x01\x02binary\xff"
    );
    // A version of another file is refused.
    ctl_fails(
        &env,
        &["cat", "kb/blob.bin", "--version", &vs[0].to_string()],
    );
    ctl_fails(&env, &["diff", "kb/blob.bin", &vs[0].to_string()]);

    m.stop();
}

// ---------------------------------------------------------------- 3. rollback of a file

#[test]
fn rollback_file_to_version() {
    let env = Env::new();
    let m = env.mount("agent-r", "sess-r", Some("bob"), &["kb"]);
    let f = m.store("kb").join("f.md");
    for text in ["one\n", "one\ntwo\n", "one\ntwo\nthree\n"] {
        put(&f, text);
    }
    // Read through the mount first, so the kernel caches content and attributes.
    assert_eq!(read(&f).unwrap(), b"one\ntwo\nthree\n");
    let h = history(&env, "kb/f.md");
    assert_eq!(h.len(), 3, "{h:#?}");
    let v1 = id(&h[0]).to_string();

    let r = env.ctl(&["--as", "user:alice", "rollback", "kb/f.md", "--to", &v1]);
    assert_all_done(&r);
    let st = &steps(&r)[0];
    assert_eq!(steps(&r).len(), 1, "{r:#}");
    assert_eq!(s(st, "action"), Some("restore-content"));
    assert_eq!(s(st, "path"), Some("f.md"));
    assert_eq!(st["version"].as_i64(), Some(id(&h[0])));
    assert_eq!(s(st, "outcome"), Some("done"));
    assert_eq!(arr(&r["conflicts"]).len(), 0);

    // The running mount sees the old content and size at once.
    eventually(
        "rolled-back content through the mount",
        &Ok(b"one\n".to_vec()),
        || read(&f),
    );
    eventually("rolled-back size through the mount", &4, || {
        std::fs::metadata(&f).map(|m| m.len()).unwrap_or(u64::MAX)
    });

    // A new head version, attributed to the operator; history is not rewritten.
    let h2 = history(&env, "kb/f.md");
    assert_eq!(h2.len(), 4, "{h2:#?}");
    assert_eq!(ids(&h2[..3]), ids(&h));
    let head = &h2[3];
    assert!(id(head) > id(&h[2]));
    assert_eq!(s(head, "op"), Some("rollback"));
    assert_eq!(s(head, "user"), Some("alice"));
    assert_eq!(s(head, "agent"), Some("memfsctl"));
    assert_eq!(s(head, "hash"), s(&h[0], "hash"));
    assert_eq!(head["size"].as_u64(), Some(4));
    assert_eq!(ctl_raw(&env, &["cat", "kb/f.md"]), b"one\n");
    let rb = arr(&env.ctl(&["log", "--op", "rollback"])).clone();
    assert_eq!(rb.len(), 1, "{rb:#?}");
    assert_eq!(s(&rb[0], "user"), Some("alice"));
    assert_eq!(s(&rb[0], "path"), Some("f.md"));
    assert_eq!(rb[0]["version"].as_i64(), Some(id(head)));
    assert_eq!(
        rb[0]["detail"]["restored_version"].as_i64(),
        Some(id(&h[0]))
    );

    // Rolling back to what the head already holds changes nothing.
    let again = env.ctl(&["rollback", "kb/f.md", "--to", &v1]);
    assert_eq!(s(&steps(&again)[0], "outcome"), Some("unchanged"));
    assert_eq!(history(&env, "kb/f.md").len(), 4);
    // A dry run changes nothing either.
    let v2 = id(&h[1]).to_string();
    let dry = env.ctl(&["rollback", "kb/f.md", "--to", &v2, "--dry-run"]);
    assert_eq!(dry["dry_run"], Value::Bool(true));
    assert_eq!(s(&steps(&dry)[0], "outcome"), Some("dry-run"));
    assert_eq!(history(&env, "kb/f.md").len(), 4);
    assert_eq!(read(&f).unwrap(), b"one\n");

    // Without --as, the change is the Unix user's.
    let r = env.ctl(&["rollback", "kb/f.md", "--to", &v2]);
    assert_all_done(&r);
    let head = history(&env, "kb/f.md").pop().unwrap();
    assert_eq!(s(&head, "op"), Some("rollback"));
    assert!(
        s(&head, "user").is_some_and(|u| !u.is_empty() && u != "alice"),
        "{head}"
    );
    eventually(
        "second rollback through the mount",
        &Ok(b"one\ntwo\n".to_vec()),
        || read(&f),
    );

    // Bad targets.
    put(&m.store("kb").join("other.md"), "other\n");
    let other = id(&history(&env, "kb/other.md")[0]).to_string();
    ctl_fails(&env, &["rollback", "kb/f.md", "--to", &other]);
    ctl_fails(&env, &["rollback", "kb/f.md", "--to", "999999"]);
    ctl_fails(&env, &["rollback", "kb/missing.md", "--to", &v1]);

    // The mount keeps working on the rolled-back file.
    put(&f, "after\n");
    assert_eq!(read(&f).unwrap(), b"after\n");
    let head = history(&env, "kb/f.md").pop().unwrap();
    assert_eq!(s(&head, "op"), Some("write"));
    assert_eq!(s(&head, "session"), Some("sess-r"));

    // A writer that has the file open while it is rolled back is fenced off: its
    // close fails with EBUSY and its bytes are kept as a conflict version, while
    // the rolled-back content stays the head. The writer is its own process: a
    // descriptor held here would be flushed (committed) by every fork+exec of
    // memfsctl below.
    let writer = HeldWriter::start(&f, b"in flight\n");
    let r = env.ctl(&["rollback", "kb/f.md", "--to", &v1]);
    assert_eq!(s(&steps(&r)[0], "outcome"), Some("done"), "{r:#}");
    assert_eq!(writer.close(), "EBUSY", "close of a fenced writer");
    eventually(
        "rolled-back content after a fenced write",
        &Ok(b"one\n".to_vec()),
        || read(&f),
    );
    assert_eq!(ctl_raw(&env, &["cat", "kb/f.md"]), b"one\n");
    let h = history(&env, "kb/f.md");
    let conflict = h.last().unwrap();
    assert_eq!(s(conflict, "op"), Some("conflict"), "{h:#?}");
    assert_eq!(s(conflict, "session"), Some("sess-r"));
    assert_eq!(s(&h[h.len() - 2], "op"), Some("rollback"), "{h:#?}");
    assert_eq!(
        ctl_raw(
            &env,
            &["cat", "kb/f.md", "--version", &id(conflict).to_string()]
        ),
        b"in flight\n"
    );

    m.stop();
}

// ---------------------------------------------------------------- 4. rollback of a session

/// What session A left, the inode of the file B deletes, and the content C writes.
struct SessionWorld<'e> {
    a: Mount<'e>,
    b: Mount<'e>,
    c: Mount<'e>,
    a_state: BTreeMap<String, String>,
    victim_ino: u64,
}

const C_CONTESTED: &str = "C contested\n";

/// Session A (mount a) sets up files; session B (mount b, its own daemon) creates,
/// edits, renames a directory, deletes and chmods; session C (mount c) then edits
/// one of the files B edited.
fn session_world(env: &Env) -> SessionWorld<'_> {
    let a = env.mount("agent-a", "sess-a", Some("alice"), &["kb"]);
    let kb_a = a.store("kb");
    sh(
        &kb_a,
        r#"
printf 'A keep\n' > keep.md
printf 'A edit\n' > edit.md
printf 'A contested\n' > contested.md
mkdir dir dir/sub
printf 'A x\n' > dir/x.md
printf 'A y\n' > dir/sub/y.md
printf 'A victim\n' > victim.md
printf 'echo hi\n' > script.sh
chmod 644 script.sh
"#,
    );
    let a_state = snapshot(&kb_a).expect("snapshot of A's state");
    assert_eq!(a_state.len(), 9, "{a_state:#?}");
    let victim_ino = std::fs::metadata(kb_a.join("victim.md")).unwrap().ino();

    let b = env.mount("agent-b", "sess-b", Some("bob"), &["kb"]);
    sh(
        &b.store("kb"),
        r#"
printf 'B new\n' > new-b.md
mkdir newdir
printf 'B z\n' > newdir/z.md
printf 'B edit 1\n' > edit.md
printf 'B edit 2\n' >> edit.md
printf 'B contested\n' > contested.md
mv dir dir2
printf 'B x\n' > dir2/x.md
rm victim.md
chmod 755 script.sh
test "$(cat dir2/sub/y.md)" = 'A y'
"#,
    );
    let c = env.mount("agent-c", "sess-c", Some("carol"), &["kb"]);
    put(&c.store("kb").join("contested.md"), C_CONTESTED);
    SessionWorld {
        a,
        b,
        c,
        a_state,
        victim_ino,
    }
}

/// The conflict every rollback of session B reports: C's later write.
fn assert_c_conflict(report: &Value) {
    let conflicts = arr(&report["conflicts"]);
    assert_eq!(conflicts.len(), 1, "{report:#}");
    let c = &conflicts[0];
    assert_eq!(s(c, "store"), Some("kb"));
    assert_eq!(s(c, "path"), Some("contested.md"));
    assert_eq!(s(c, "later_session"), Some("sess-c"));
    assert_eq!(s(c, "later_agent"), Some("agent-c"));
    assert_eq!(s(c, "later_op"), Some("write"));
    assert!(c["later_entry"].as_i64().is_some(), "{c}");
}

/// The namespace undo steps of B's rollback, present in every plan.
fn assert_b_plan(report: &Value) {
    let keys = step_keys(report);
    for want in [
        key("remove", "new-b.md", ""),
        key("remove", "newdir/z.md", ""),
        key("remove", "newdir", ""),
        key("move-back", "dir2", "dir"),
        key("bring-back", "victim.md", ""),
        key("restore-content", "edit.md", ""),
        key("restore-mode", "script.sh", ""),
    ] {
        assert!(keys.contains(&want), "no step {want:?} in {report:#}");
    }
    assert!(
        keys.iter()
            .any(|(a, p, _)| a == "restore-content" && (p == "dir/x.md" || p == "dir2/x.md")),
        "no content restore for dir/x.md in {report:#}"
    );
}

/// Checks through a mount what `ls`, `cat` and `stat` show after B is undone.
fn assert_b_undone_by_tools(kb: &Path, contested: &str) {
    let want = format!(
        "contested.md\ndir\nedit.md\nkeep.md\nscript.sh\nvictim.md\n---\n\
         A edit\nA x\nA y\nA victim\n{contested}---\n644 script.sh\ngone\n"
    );
    // A listing is fresh as soon as the rollback commits; names this mount's
    // kernel cached go when the change feed reaches it (one poll later).
    eventually("B undone, seen by shell tools", &want, || {
        sh(
            kb,
            r#"
ls
echo ---
cat edit.md dir/x.md dir/sub/y.md victim.md contested.md 2>&1
echo ---
stat -c '%a %n' script.sh
test ! -e dir2 && test ! -e new-b.md && test ! -e newdir && echo gone || echo cached
"#,
        )
    });
}

#[test]
fn rollback_session_dry_run_then_for_real_leaves_conflict() {
    let env = Env::new();
    let w = session_world(&env);
    let kb_a = w.a.store("kb");
    let kb_b = w.b.store("kb");
    let kb_c = w.c.store("kb");

    // Dry run: the plan and the conflict, and nothing changes.
    let log_before = env.log().len();
    let before = snapshot(&kb_c).unwrap();
    assert_ne!(before, w.a_state);
    let dry = env.ctl(&["rollback", "--session", "sess-b", "--dry-run"]);
    assert_eq!(dry["dry_run"], Value::Bool(true));
    for st in steps(&dry) {
        assert_eq!(s(st, "outcome"), Some("dry-run"), "{st}");
        assert_eq!(s(st, "store"), Some("kb"), "{st}");
        assert_ne!(
            s(st, "path"),
            Some("contested.md"),
            "conflicted file planned: {st}"
        );
    }
    assert_b_plan(&dry);
    assert_c_conflict(&dry);
    let text = ctl_text(&env, &["rollback", "--session", "sess-b", "--dry-run"]);
    assert!(
        text.contains("conflict") && text.contains("kb/contested.md") && text.contains("sess-c"),
        "{text}"
    );
    assert!(text.contains("dry run"), "{text}");
    assert_eq!(env.log().len(), log_before, "a dry run recorded changes");
    assert_eq!(
        snapshot(&kb_c).unwrap(),
        before,
        "a dry run changed the tree"
    );

    // For real: everything B did is undone except the file C changed afterwards.
    let r = env.ctl(&["--as", "user:ops", "rollback", "--session", "sess-b"]);
    assert_all_done(&r);
    assert_b_plan(&r);
    assert_c_conflict(&r);
    let mut want = w.a_state.clone();
    let mode = before["contested.md"].split(' ').nth(1).unwrap();
    let mode = u32::from_str_radix(mode, 8).unwrap();
    want.insert(
        "contested.md".into(),
        file_desc(mode, C_CONTESTED.as_bytes()),
    );
    for (name, kb) in [("A", &kb_a), ("B", &kb_b), ("C", &kb_c)] {
        eventually(
            &format!("B undone, seen by mount {name}"),
            &Ok(want.clone()),
            || snapshot(kb),
        );
    }
    assert_b_undone_by_tools(&kb_a, C_CONTESTED);
    assert_b_undone_by_tools(&kb_b, C_CONTESTED);
    // The deleted file came back as the same inode.
    assert_eq!(
        std::fs::metadata(kb_a.join("victim.md")).unwrap().ino(),
        w.victim_ino
    );

    // History is kept: B's entries are still there, the undo is new entries by
    // the operator, and the chain verifies.
    let log = env.log();
    assert!(log.len() > log_before);
    let undo: Vec<&Value> = log[log_before..].iter().collect();
    for e in &undo {
        assert_eq!(s(e, "agent"), Some("memfsctl"), "{e}");
        assert_eq!(s(e, "user"), Some("ops"), "{e}");
    }
    assert!(
        log.iter()
            .filter(|e| s(e, "session") == Some("sess-b"))
            .count()
            >= 10
    );
    assert!(ctl_text(&env, &["audit", "verify"]).starts_with("audit chain intact"));

    // The mounts keep working after the rollback.
    put(&kb_b.join("edit.md"), "B again\n");
    eventually(
        "B's new write seen by A",
        &Ok(b"B again\n".to_vec()),
        || read(&kb_a.join("edit.md")),
    );

    w.c.stop();
    w.b.stop();
    w.a.stop();
}

#[test]
fn rollback_session_force_undoes_conflicts_too() {
    let env = Env::new();
    let w = session_world(&env);
    let r = env.ctl(&["rollback", "--session", "sess-b", "--force"]);
    assert_all_done(&r);
    assert_b_plan(&r);
    assert_c_conflict(&r);
    assert!(
        step_keys(&r).contains(&key("restore-content", "contested.md", "")),
        "--force restores the conflicted file: {r:#}"
    );
    for (name, m) in [("A", &w.a), ("B", &w.b), ("C", &w.c)] {
        eventually(
            &format!("B undone with --force, seen by mount {name}"),
            &Ok(w.a_state.clone()),
            || snapshot(&m.store("kb")),
        );
    }
    assert_b_undone_by_tools(&w.c.store("kb"), "A contested\n");
    assert_eq!(
        ctl_raw(&env, &["cat", "kb/contested.md"]),
        b"A contested\n",
        "the head is A's content again"
    );
    // C's version is still in the history.
    let h = history(&env, "kb/contested.md");
    assert!(
        h.iter().any(|v| s(v, "session") == Some("sess-c")),
        "{h:#?}"
    );
    assert_eq!(s(h.last().unwrap(), "op"), Some("rollback"));
    // An unknown session is an error.
    ctl_fails(&env, &["rollback", "--session", "no-such-session"]);

    w.c.stop();
    w.b.stop();
    w.a.stop();
}

#[test]
fn rollback_session_again_with_force_after_a_conflict() {
    // The natural workflow: roll B back, read the conflict report, then roll B
    // back again with --force to undo the conflicted file too.
    let env = Env::new();
    let w = session_world(&env);
    let first = env.ctl(&["rollback", "--session", "sess-b"]);
    assert_all_done(&first);
    assert_c_conflict(&first);
    let out = ctl_out(
        &env,
        &["--json", "rollback", "--session", "sess-b", "--force"],
    );
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    // Whatever the report says, A's state must be back, C's file included.
    for (name, m) in [("A", &w.a), ("B", &w.b), ("C", &w.c)] {
        eventually(
            &format!("B undone twice (then --force), seen by mount {name}"),
            &Ok(w.a_state.clone()),
            || snapshot(&m.store("kb")),
        );
    }
    // The steps the first rollback already did are not failures the second time,
    // and the first rollback's own changes are not conflicts.
    assert!(
        out.status.success(),
        "second rollback --session sess-b --force exited {}\n--- stdout ---\n{report}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&report).expect("rollback --json output");
    assert_all_done(&r);
    assert_c_conflict(&r);

    w.c.stop();
    w.b.stop();
    w.a.stop();
}

#[test]
fn rollback_session_limited_to_one_store() {
    let env = Env::new();
    let a = env.mount("agent-a", "sess-a", Some("alice"), &["kb", "alice"]);
    sh(
        a.path(),
        "printf 'A\\n' > kb/shared.md; printf 'A\\n' > alice/mine.md",
    );
    let b = env.mount("agent-b", "sess-b2", Some("alice"), &["kb", "alice"]);
    sh(
        b.path(),
        r#"
printf 'B\n' > kb/shared.md
printf 'B\n' > kb/b-kb.md
printf 'B\n' > alice/mine.md
printf 'B\n' > alice/b-alice.md
"#,
    );
    let r = env.ctl(&["rollback", "--session", "sess-b2", "--store", "alice"]);
    assert_all_done(&r);
    assert!(
        steps(&r).iter().all(|st| s(st, "store") == Some("alice")),
        "{r:#}"
    );
    let state = |m: &Mount<'_>| {
        let p = m.path();
        (
            read(&p.join("alice/mine.md")),
            p.join("alice/b-alice.md").exists(),
            read(&p.join("kb/shared.md")),
            p.join("kb/b-kb.md").exists(),
        )
    };
    let want = (Ok(b"A\n".to_vec()), false, Ok(b"B\n".to_vec()), true);
    eventually("only alice undone (mount a)", &want, || state(&a));
    eventually("only alice undone (mount b)", &want, || state(&b));
    let r = env.ctl(&["rollback", "--session", "sess-b2", "--store", "kb"]);
    assert_all_done(&r);
    let want = (Ok(b"A\n".to_vec()), false, Ok(b"A\n".to_vec()), false);
    eventually("both undone (mount a)", &want, || state(&a));
    // A store the session never touched has nothing to undo.
    env.ctl(&["store", "create", "empty", "--scope", "org"]);
    ctl_fails(
        &env,
        &["rollback", "--session", "sess-b2", "--store", "empty"],
    );

    b.stop();
    a.stop();
}

// ---------------------------------------------------------------- 5. store to a time

#[test]
fn rollback_store_to_a_point_in_time() {
    let env = Env::new();
    let m = env.mount("agent-t", "sess-t", None, &["kb"]);
    let kb = m.store("kb");
    sh(
        &kb,
        r#"
mkdir -p d/sub keepdir
printf 'a0\n' > a.md
printf 'b0\n' > d/b.md
printf 'c0\n' > d/c.md
printf 's0\n' > d/sub/s.md
printf 'gone\n' > gone.md
printf 'k\n' > keepdir/k.md
ln -s a.md link-to-a
chmod 640 d/c.md
"#,
    );
    let at_t1 = listing(&kb);
    let (_, t1) = stamp();
    sh(
        &kb,
        r#"
printf 'a1\n' >> a.md
chmod 600 a.md
rm d/b.md
mkdir e
mv d/c.md e/c.md
mv d d2
printf 'new\n' > new.md
ln -s new.md link-to-new
rm gone.md
printf 'a different file, same name\n' > gone.md
rm -r keepdir
"#,
    );
    let (_, _t2) = stamp();
    sh(
        &kb,
        r#"
printf 'a2\n' > a.md
mv new.md d2/new.md
printf 's2\n' > d2/sub/s.md
truncate -s 0 e/c.md
"#,
    );
    let now = listing(&kb);
    assert_ne!(now, at_t1);

    // A dry run plans and changes nothing.
    let log_before = env.log().len();
    let dry = env.ctl(&["rollback", "kb", "--at", &t1, "--dry-run"]);
    assert_eq!(dry["dry_run"], Value::Bool(true));
    assert!(!steps(&dry).is_empty());
    assert!(
        steps(&dry)
            .iter()
            .all(|st| s(st, "outcome") == Some("dry-run")),
        "{dry:#}"
    );
    assert_eq!(env.log().len(), log_before);
    assert_eq!(listing(&kb), now);

    // For real: the tree, modes, links and contents are exactly as at T1.
    let r = env.ctl(&["rollback", "kb", "--at", &t1]);
    assert_all_done(&r);
    assert_eq!(arr(&r["conflicts"]).len(), 0, "{r:#}");
    eventually(
        "the store as it was at T1, through the mount",
        &at_t1,
        || listing(&kb),
    );
    assert_eq!(ctl_raw(&env, &["cat", "kb/gone.md"]), b"gone\n");
    assert!(ctl_text(&env, &["audit", "verify"]).starts_with("audit chain intact"));

    // Before the store existed there is nothing to go back to.
    let err = ctl_fails(&env, &["rollback", "kb", "--at", "1h"]);
    assert!(err.contains("did not exist"), "{err}");

    m.stop();
}

// ---------------------------------------------------------------- 6. audit verify

#[test]
fn audit_verify_catches_tampering() {
    let env = Env::new();
    let m = env.mount("agent-v", "sess-v", Some("vera"), &["kb"]);
    sh(
        &m.store("kb"),
        r#"
printf 'a\n' > a.md
printf 'b\n' > b.md
mv a.md c.md
rm b.md
mkdir d
"#,
    );
    let log = env.log();
    let n = log.len();
    assert_eq!(
        ctl_text(&env, &["audit", "verify"]).trim_end(),
        format!("audit chain intact: {n} entries verified")
    );
    let ok = env.ctl(&["audit", "verify"]);
    assert_eq!(ok["ok"], Value::Bool(true));
    assert_eq!(ok["entries"].as_u64(), Some(n as u64));

    // Alter one entry in the middle of the chain, beside the running daemon.
    let victim = log
        .iter()
        .find(|e| s(e, "op") == Some("create") && s(e, "path") == Some("b.md"))
        .expect("create of b.md");
    let bad = id(victim);
    assert!(bad > 1 && (bad as usize) < n);
    let tamper = |path: &str| {
        let cmd = if common::test_pg().is_some() {
            format!(
                "psql '{}' -qc \"UPDATE audit SET path='{path}' WHERE id={bad}\"",
                env.db.display()
            )
        } else {
            format!(
                "python3 -c \"import sqlite3; c = sqlite3.connect('{}'); \
                 c.execute(\\\"UPDATE audit SET path='{path}' WHERE id={bad}\\\"); c.commit()\"",
                env.db.display()
            )
        };
        sh(env.path(), &cmd);
    };
    tamper("x");
    let out = ctl_out(&env, &["audit", "verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify passed a tampered chain");
    assert!(
        stderr.contains("memfsctl: error: ") && stderr.contains(&format!("entry {bad}:")),
        "{stderr}"
    );
    let out = ctl_out(&env, &["--json", "audit", "verify"]);
    assert!(!out.status.success());
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(j["ok"], Value::Bool(false), "{j}");
    assert_eq!(j["first_bad_entry"].as_i64(), Some(bad), "{j}");
    assert!(s(&j, "reason").is_some_and(|r| !r.is_empty()), "{j}");

    // New entries do not hide the break.
    put(&m.store("kb").join("later.md"), "later\n");
    assert!(!ctl_out(&env, &["--json", "audit", "verify"])
        .status
        .success());
    let out = ctl_out(&env, &["audit", "verify"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("entry {bad}:")));

    // Putting the field back makes the chain whole again.
    tamper("b.md");
    let ok = env.ctl(&["audit", "verify"]);
    assert_eq!(ok["ok"], Value::Bool(true));
    assert_eq!(ok["entries"].as_u64(), Some(env.log().len() as u64));

    m.stop();
}

// ---------------------------------------------------------------- 7. .memfs

fn assert_erofs<T: std::fmt::Debug>(what: &str, r: std::io::Result<T>) {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
        other => panic!("{what}: expected EROFS, got {other:?}"),
    }
}

#[test]
fn dot_memfs_directory() {
    let env = Env::new();
    let m = env.mount("agent-dot", "sess-dot", Some("alice"), &["kb", "alice"]);
    let root = m.path();
    let kb = m.store("kb");
    let dot = root.join(".memfs");

    // Hidden from the root listing, reachable by path.
    let ls = sh(root, "ls -a");
    assert_eq!(ls, ".\n..\nalice\nkb\n", "ls -a of the mount root");
    assert!(
        std::fs::metadata(&dot).map(|m| m.is_dir()).unwrap_or(false),
        ".memfs is not a directory"
    );
    let inside = sh(root, "ls .memfs");
    for name in ["at", "history", "whoami"] {
        assert!(inside.lines().any(|l| l == name), "ls .memfs: {inside}");
    }

    // whoami.
    let who = std::fs::read_to_string(dot.join("whoami")).expect("read .memfs/whoami");
    let field = |k: &str| {
        who.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no '{k}:' line in whoami:\n{who}"))
            .to_string()
    };
    assert_eq!(field("agent"), "agent-dot");
    assert_eq!(field("session"), "sess-dot");
    assert_eq!(field("user"), "alice");
    let stores = field("stores");
    assert!(stores.contains("kb") && stores.contains("alice"), "{who}");

    // Versions as files.
    put(&kb.join("f.md"), "first\nshared\n");
    let (_, t) = stamp();
    put(&kb.join("f.md"), "second\nshared\n");
    put(&kb.join("later.md"), "made after T\n");
    let h = history(&env, "kb/f.md");
    assert_eq!(h.len(), 2);
    let vdir = dot.join("history/kb/f.md");
    let mut listed: Vec<String> = std::fs::read_dir(&vdir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", vdir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    let mut want: Vec<String> = h.iter().map(|v| format!("v{}", id(v))).collect();
    want.sort();
    assert_eq!(listed, want);
    for v in &h {
        let vid = id(v).to_string();
        let by_ctl = ctl_raw(&env, &["cat", "kb/f.md", "--version", &vid]);
        let by_fs = read(&vdir.join(format!("v{vid}"))).unwrap();
        assert_eq!(by_fs, by_ctl, "version {vid}");
    }
    let out = sh(
        root,
        &format!(
            "set +e; diff .memfs/history/kb/f.md/v{} .memfs/history/kb/f.md/v{}; echo rc=$?",
            id(&h[0]),
            id(&h[1])
        ),
    );
    assert!(
        out.contains("< first") && out.contains("> second") && out.ends_with("rc=1\n"),
        "{out}"
    );

    // The store as of a time.
    let at = format!(".memfs/at/{t}/kb");
    assert_eq!(
        read(&root.join(&at).join("f.md")).unwrap(),
        b"first\nshared\n"
    );
    let out = sh(root, &format!("set +e; diff {at}/f.md kb/f.md; echo rc=$?"));
    assert!(
        out.contains("< first") && out.contains("> second") && out.ends_with("rc=1\n"),
        "{out}"
    );
    assert!(!out.contains("shared"), "{out}");
    let out = sh(root, &format!("set +e; diff -r {at} kb; echo rc=$?"));
    assert!(
        out.contains("< first") && out.contains("Only in kb: later.md") && out.ends_with("rc=1\n"),
        "{out}"
    );
    assert_eq!(
        read(&root.join(".memfs/at/0s/kb/f.md")).unwrap(),
        b"second\nshared\n"
    );

    // Nothing under .memfs can be written.
    let v0 = vdir.join(format!("v{}", id(&h[0])));
    let open_w = |p: &Path| std::fs::OpenOptions::new().write(true).open(p);
    assert_erofs("write whoami", open_w(&dot.join("whoami")));
    assert_erofs(
        "create in .memfs",
        std::fs::File::create(dot.join("new-file")),
    );
    assert_erofs(
        "mkdir in .memfs/history",
        std::fs::create_dir(dot.join("history/newdir")),
    );
    assert_erofs("unlink whoami", std::fs::remove_file(dot.join("whoami")));
    assert_erofs(
        "chmod whoami",
        std::fs::set_permissions(dot.join("whoami"), std::fs::Permissions::from_mode(0o777)),
    );
    assert_erofs("write a version", open_w(&v0));
    assert_erofs("unlink a version", std::fs::remove_file(&v0));
    assert_erofs(
        "append to the past",
        std::fs::OpenOptions::new()
            .append(true)
            .open(root.join(&at).join("f.md")),
    );
    assert_erofs(
        "create in the past",
        std::fs::File::create(root.join(&at).join("new.md")),
    );
    assert_erofs(
        "rename into .memfs",
        std::fs::rename(kb.join("later.md"), dot.join("later.md")),
    );
    // And nothing was changed by the attempts.
    assert_eq!(read(&kb.join("f.md")).unwrap(), b"second\nshared\n");
    assert_eq!(read(&kb.join("later.md")).unwrap(), b"made after T\n");
    assert_eq!(history(&env, "kb/f.md").len(), 2);

    m.stop();
}

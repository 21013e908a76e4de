//! Real-FUSE tests of memfs's multi-mount concurrency: several daemons on one
//! database see each other's changes, appends from every mount all land, advisory
//! locks and write leases bind every mount, and a frozen, killed or broken lease
//! holder is fenced off instead of overwriting a newer head.
//!
//! Needs root (or fusermount3) and /dev/fuse. Waiting for an effect is always a
//! deadline loop; the only timings are printed figures, never asserted.

mod common;

use common::{run_with_deadline, s, sh, ChildGuard, Env, Mount};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a change made in one mount may take to show in another before the test
/// fails. The target is 200 ms; the measured delays are printed, and the assertion
/// is looser so that a loaded CI machine does not make the test flaky.
const VISIBLE_WITHIN: Duration = Duration::from_secs(2);
/// How long a helper process may take to get ready or to finish.
const HELPER_DEADLINE: Duration = Duration::from_secs(10);
const EBUSY: i32 = libc::EBUSY;

/// A config with the `kb` org store and the given lease TTL and lease wait.
fn config(lease_ttl_secs: f64, lease_wait_secs: f64) -> String {
    format!(
        r#"
[daemon]
lease_ttl_secs = {lease_ttl_secs:?}
lease_wait_secs = {lease_wait_secs:?}

[[stores]]
name = "kb"
scope = "org"
description = "shared test store"
"#
    )
}

/// Polls `check` until it returns `Ok`, panicking with its last `Err` after `limit`.
/// Returns how long it took.
fn wait_until(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<(), String>,
) -> Duration {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(()) => return start.elapsed(),
            Err(e) => e,
        };
        if start.elapsed() > limit {
            panic!("{what}: not within {limit:?}; last seen: {last}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A file's content, or the error reading it, for wait loops.
fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Waits until reading `p` gives exactly `want`.
fn wait_content(p: &Path, want: &str, what: &str) -> Duration {
    wait_until(VISIBLE_WITHIN, what, || match read(p) {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(format!("content {got:?}, want {want:?}")),
        Err(e) => Err(e),
    })
}

/// Waits until `p` does not exist (its lookup says ENOENT).
fn wait_gone(p: &Path, what: &str) -> Duration {
    wait_until(VISIBLE_WITHIN, what, || {
        match std::fs::symlink_metadata(p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", p.display())),
            Ok(m) => Err(format!("{} still exists ({} bytes)", p.display(), m.len())),
        }
    })
}

/// A python3 helper process running `script` in `dir`, its stdout and stderr going to
/// files in `env`'s temp dir. Killed when dropped.
struct Helper {
    child: ChildGuard,
    name: String,
    out: PathBuf,
}

impl Helper {
    fn spawn(env: &Env, name: &str, dir: &Path, script: &str) -> Helper {
        let out = env.path().join(format!("{name}.out"));
        let file = std::fs::File::create(&out).expect("create helper output");
        let child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup helper output"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn helper {name}: {e}"));
        Helper {
            child: ChildGuard(child),
            name: name.to_string(),
            out,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until `marker` exists, failing if the helper exits first.
    fn wait_ready(&mut self, marker: &Path) {
        let deadline = Instant::now() + HELPER_DEADLINE;
        while !marker.exists() {
            if let Some(st) = self.child.0.try_wait().expect("poll helper") {
                panic!(
                    "helper {} exited ({st}) before getting ready; its output:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "helper {} not ready within {HELPER_DEADLINE:?}; its output:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the helper to exit; returns its status and output.
    fn finish(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + HELPER_DEADLINE;
        loop {
            if let Some(st) = self.child.0.try_wait().expect("poll helper") {
                return (st, self.output());
            }
            assert!(
                Instant::now() < deadline,
                "helper {} did not finish within {HELPER_DEADLINE:?}; its output:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Runs a python3 snippet in `dir` to completion.
fn python(dir: &Path, script: &str) -> Output {
    run_with_deadline(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        common::COMMAND_DEADLINE,
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Tries to open `name` in `dir` for writing (no O_APPEND, so it needs the lease).
/// Returns `Ok(secs)` when it opened (and closed without writing), `Err((errno,
/// secs))` when open failed; `secs` is how long the open took.
fn try_open_for_write(dir: &Path, name: &str) -> Result<f64, (i32, f64)> {
    let out = python(
        dir,
        &format!(
            r#"
import os, time
t = time.monotonic()
try:
    fd = os.open("{name}", os.O_WRONLY)
except OSError as e:
    print("err", e.errno, time.monotonic() - t)
else:
    print("ok", 0, time.monotonic() - t)
    os.close(fd)
"#
        ),
    );
    common::assert_success("python open for write", &out);
    let line = text(&out.stdout);
    let f: Vec<&str> = line.split_whitespace().collect();
    let secs: f64 = f[2].parse().expect("seconds");
    match f[0] {
        "ok" => Ok(secs),
        _ => Err((f[1].parse().expect("errno"), secs)),
    }
}

/// Whether `flock -n LOCKFILE true` in `dir` gets the lock at once.
fn flock_free(dir: &Path, lockfile: &str) -> bool {
    let out = run_with_deadline(
        Command::new("flock")
            .args(["-n", lockfile, "true"])
            .current_dir(dir),
        common::COMMAND_DEADLINE,
    );
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "flock -n {lockfile} failed: {}\n{}",
            out.status,
            text(&out.stderr)
        ),
    }
}

/// `memfsctl leases --json`.
fn leases(env: &Env) -> Vec<Value> {
    env.ctl(&["leases"])
        .as_array()
        .expect("leases is an array")
        .clone()
}

/// The audit entries with operation `op`.
fn ops<'a>(log: &'a [Value], op: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| s(e, "op") == Some(op)).collect()
}

/// The state letter of a process (R, S, T, ...) from /proc.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A daemon frozen with SIGSTOP; dropping the guard resumes it (SIGCONT), also when
/// the test panics, so that its mount can be unmounted.
struct Frozen(u32);

impl Frozen {
    /// Freezes `m`'s daemon at a moment when it holds no database write lock (a
    /// daemon frozen inside a write transaction would block every other daemon for
    /// SQLite's busy timeout, which is not what the tests are about).
    fn stop(env: &Env, m: &Mount<'_>) -> Frozen {
        let pid = m.pid().expect("daemon running");
        for _ in 0..10 {
            send(pid, libc::SIGSTOP);
            wait_until(
                HELPER_DEADLINE,
                "daemon stops on SIGSTOP",
                || match proc_state(pid) {
                    Some('T') | Some('t') => Ok(()),
                    other => Err(format!("state {other:?}")),
                },
            );
            let frozen = Frozen(pid);
            if db_write_lock_free(env) {
                return frozen;
            }
            eprintln!("daemon frozen inside a write transaction; resuming and retrying");
            drop(frozen);
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!("could not freeze the daemon outside a write transaction");
    }
}

/// Whether a write transaction on the database can start at once (on
/// PostgreSQL: no store's writer lock is held, as `pg_locks` shows).
fn db_write_lock_free(env: &Env) -> bool {
    if common::test_pg().is_some() {
        let out = run_with_deadline(
            Command::new("psql").arg(&env.db).args([
                "-Atc",
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND classid = 1835363686 AND database = \
                 (SELECT oid FROM pg_database WHERE datname = current_database())",
            ]),
            common::COMMAND_DEADLINE,
        );
        common::assert_success("pg_locks probe", &out);
        return text(&out.stdout).trim() == "0";
    }
    let out = run_with_deadline(
        Command::new("python3")
            .arg("-c")
            .arg(
                r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0.2, isolation_level=None)
try:
    c.execute("BEGIN IMMEDIATE")
    c.execute("ROLLBACK")
    print("free")
except sqlite3.OperationalError as e:
    print("locked:", e)
"#,
            )
            .arg(&env.db),
        common::COMMAND_DEADLINE,
    );
    common::assert_success("sqlite write-lock probe", &out);
    text(&out.stdout).trim() == "free"
}

impl Drop for Frozen {
    fn drop(&mut self) {
        send(self.0, libc::SIGCONT);
    }
}

fn send(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) on a daemon we spawned and have not reaped.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// Changes made in one mount (daemon A) show in another (daemon B), although B's
/// kernel caches entries and attributes for 10 s: content overwrites, creates over
/// a cached miss, appends, renames, unlinks, chmod, mkdir.
#[test]
fn two_daemons_see_each_others_writes() {
    let env = Env::with_config(&config(2.0, 0.5));
    let a = env.mount("agent-a", "sess-a", None, &["kb"]);
    let b = env.mount("agent-b", "sess-b", None, &["kb"]);
    let (ka, kb) = (a.store("kb"), b.store("kb"));
    let mut delays: Vec<(String, Duration)> = Vec::new();

    // Create, where B has cached the miss.
    let doc_b = kb.join("doc.txt");
    assert!(!doc_b.exists(), "doc.txt exists before it was created");
    std::fs::write(ka.join("doc.txt"), "first\n").unwrap();
    delays.push((
        "create".into(),
        wait_content(&doc_b, "first\n", "create in A seen in B"),
    ));

    // Overwrites of different lengths; B has read (and cached) each previous one.
    let mut overwrites = Vec::new();
    for i in 1..=10 {
        let content = format!("overwrite {i} {}\n", "x".repeat((i * 37) % 100));
        std::fs::write(ka.join("doc.txt"), &content).unwrap();
        overwrites.push(wait_content(
            &doc_b,
            &content,
            &format!("overwrite {i} in A seen in B"),
        ));
    }

    // A descriptor B keeps open (as `tail -f` or an editor does) reads the new head.
    let held = std::fs::File::open(&doc_b).unwrap();
    let pread = |f: &std::fs::File| -> Result<String, String> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; 4096];
        let n = f.read_at(&mut buf, 0).map_err(|e| e.to_string())?;
        Ok(text(&buf[..n]))
    };
    assert!(pread(&held).unwrap().starts_with("overwrite 10 "));
    std::fs::write(ka.join("doc.txt"), "seen by an open descriptor\n").unwrap();
    delays.push((
        "overwrite, open fd in B".into(),
        wait_until(
            VISIBLE_WITHIN,
            "overwrite in A seen by B's open fd",
            || match pread(&held)? {
                c if c == "seen by an open descriptor\n" => Ok(()),
                c => Err(format!("content {c:?}")),
            },
        ),
    ));
    drop(held);
    let last = read(&doc_b).unwrap();

    // Append.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(ka.join("doc.txt"))
            .unwrap();
        f.write_all(b"appended\n").unwrap();
    }
    let appended = format!("{last}appended\n");
    delays.push((
        "append".into(),
        wait_content(&doc_b, &appended, "append in A seen in B"),
    ));

    // chmod (B has the attributes cached).
    let mode = std::fs::metadata(&doc_b).unwrap().permissions().mode() & 0o777;
    assert_ne!(
        mode, 0o600,
        "doc.txt already has the mode chmod will give it"
    );
    std::fs::set_permissions(ka.join("doc.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    delays.push((
        "chmod".into(),
        wait_until(VISIBLE_WITHIN, "chmod in A seen in B", || {
            let mode = std::fs::metadata(&doc_b)
                .map_err(|e| e.to_string())?
                .permissions()
                .mode()
                & 0o777;
            if mode == 0o600 {
                Ok(())
            } else {
                Err(format!("mode {mode:o}"))
            }
        }),
    ));

    // Rename: the old name goes, the new one (a cached miss in B) comes.
    let moved_b = kb.join("moved.txt");
    assert!(!moved_b.exists());
    std::fs::rename(ka.join("doc.txt"), ka.join("moved.txt")).unwrap();
    delays.push((
        "rename".into(),
        wait_until(VISIBLE_WITHIN, "rename in A seen in B", || {
            if doc_b.exists() {
                return Err("doc.txt still there".into());
            }
            match read(&moved_b)? {
                c if c == appended => Ok(()),
                c => Err(format!("moved.txt has {c:?}")),
            }
        }),
    ));

    // mkdir over a cached miss.
    let dir_b = kb.join("sub");
    assert!(!dir_b.exists());
    std::fs::create_dir(ka.join("sub")).unwrap();
    delays.push((
        "mkdir".into(),
        wait_until(VISIBLE_WITHIN, "mkdir in A seen in B", || {
            if dir_b.is_dir() {
                Ok(())
            } else {
                Err("no sub/".into())
            }
        }),
    ));

    // Unlink.
    std::fs::remove_file(ka.join("moved.txt")).unwrap();
    delays.push((
        "unlink".into(),
        wait_gone(&moved_b, "unlink in A seen in B"),
    ));

    // And the other way round: B writes, A sees.
    std::fs::write(kb.join("sub/back.txt"), "from B\n").unwrap();
    delays.push((
        "create B->A".into(),
        wait_content(
            &ka.join("sub/back.txt"),
            "from B\n",
            "create in B seen in A",
        ),
    ));

    // memfsctl has no command that changes content or names (only `leases break`,
    // which changes neither), so there is no memfsctl-made change to observe.

    let all: Vec<Duration> = overwrites
        .iter()
        .copied()
        .chain(delays.iter().map(|(_, d)| *d))
        .collect();
    eprintln!(
        "visibility across daemons: overwrite median {:?} (min {:?}, max {:?}, n={}); \
         max of all {:?}; target 200 ms",
        median(&overwrites),
        overwrites.iter().min().unwrap(),
        overwrites.iter().max().unwrap(),
        overwrites.len(),
        all.iter().max().unwrap()
    );
    for (what, d) in &delays {
        eprintln!("  {what}: {d:?}");
    }
    b.stop();
    a.stop();
}

const APPEND_MOUNTS: usize = 4;
const APPEND_PROCS: usize = 2;
const APPEND_LINES: usize = 500;

/// 4 mounts x 2 shell processes, each appending 500 distinct lines with `>>` (one
/// open, write, close per line): every line lands exactly once.
#[test]
fn appends_from_4_mounts_x_2_processes_all_land() {
    let env = Env::with_config(&config(2.0, 0.5));
    let mounts: Vec<Mount<'_>> = (1..=APPEND_MOUNTS)
        .map(|m| {
            env.mount(
                &format!("agent-app{m}"),
                &format!("sess-app{m}"),
                None,
                &["kb"],
            )
        })
        .collect();
    sh(&mounts[0].store("kb"), ": > app.log");
    for m in &mounts {
        wait_content(&m.store("kb").join("app.log"), "", "app.log created");
    }
    let dirs: Vec<String> = mounts
        .iter()
        .map(|m| format!("'{}'", m.store("kb").display()))
        .collect();
    let script = format!(
        r#"
dirs=({dirs})
pids=
for m in $(seq 1 {APPEND_MOUNTS}); do
  for p in $(seq 1 {APPEND_PROCS}); do
    ( cd "${{dirs[$((m-1))]}}"
      for i in $(seq 1 {APPEND_LINES}); do echo "m$m p$p line $i" >> app.log; done ) &
    pids="$pids $!"
  done
done
for p in $pids; do wait "$p"; done
"#,
        dirs = dirs.join(" ")
    );
    let start = Instant::now();
    sh(env.path(), &script);
    let took = start.elapsed();
    let total = APPEND_MOUNTS * APPEND_PROCS * APPEND_LINES;
    eprintln!(
        "{total} appends from {} concurrent writers in {took:?}: {:.0} appends/s",
        APPEND_MOUNTS * APPEND_PROCS,
        total as f64 / took.as_secs_f64()
    );

    let want: Vec<String> = (1..=APPEND_MOUNTS)
        .flat_map(|m| {
            (1..=APPEND_PROCS)
                .flat_map(move |p| (1..=APPEND_LINES).map(move |i| format!("m{m} p{p} line {i}")))
        })
        .collect();
    let want_set: HashSet<&str> = want.iter().map(String::as_str).collect();
    // Every mount sees the whole file (each read waits out the change feed).
    for m in &mounts {
        let path = m.store("kb").join("app.log");
        let what = format!("all appended lines through {}", m.path().display());
        wait_until(VISIBLE_WITHIN, &what, || {
            let got = read(&path)?;
            let mut count: BTreeMap<&str, usize> = BTreeMap::new();
            for l in got.lines() {
                *count.entry(l).or_default() += 1;
            }
            let missing: Vec<&String> = want
                .iter()
                .filter(|w| !count.contains_key(w.as_str()))
                .collect();
            let dup: Vec<(&&str, &usize)> = count.iter().filter(|(_, n)| **n > 1).collect();
            let extra: Vec<&&str> = count.keys().filter(|l| !want_set.contains(**l)).collect();
            if missing.is_empty() && dup.is_empty() && extra.is_empty() {
                return Ok(());
            }
            Err(format!(
                "{} lines; {} missing (e.g. {:?}), {} duplicated (e.g. {:?}), {} unexpected \
                 (e.g. {:?})",
                got.lines().count(),
                missing.len(),
                &missing[..missing.len().min(5)],
                dup.len(),
                &dup[..dup.len().min(5)],
                extra.len(),
                &extra[..extra.len().min(5)],
            ))
        });
    }
    let log = env.store_log("kb");
    let commits = log
        .iter()
        .filter(|e| s(e, "path") == Some("app.log") && e["version"].is_i64())
        .count();
    // Appends staged at the same moment by two processes of one mount share a commit.
    eprintln!("versions committed for app.log: {commits}");
    for m in mounts {
        m.stop();
    }
    assert_eq!(env.ctl(&["audit", "verify"])["ok"], true);
}

const LOCKERS_PER_MOUNT: usize = 2;
const LOCK_MOUNTS: usize = 2;
const INCREMENTS: usize = 200;

/// 4 processes over 2 mounts each increment a counter 200 times under `flock`,
/// reading it and writing it in place: no increment is lost.
#[test]
fn flock_counter_across_mounts() {
    // Between one writer's close and the next one's open the lease may not be
    // released yet (release is asynchronous): a generous lease wait covers it.
    let env = Env::with_config(&config(2.0, 5.0));
    let mounts: Vec<Mount<'_>> = (1..=LOCK_MOUNTS)
        .map(|m| {
            env.mount(
                &format!("agent-lk{m}"),
                &format!("sess-lk{m}"),
                None,
                &["kb"],
            )
        })
        .collect();
    sh(&mounts[0].store("kb"), "echo 0 > counter; : > lock");
    for m in &mounts {
        wait_content(&m.store("kb").join("counter"), "0\n", "counter created");
    }
    let dirs: Vec<String> = mounts
        .iter()
        .map(|m| format!("'{}'", m.store("kb").display()))
        .collect();
    let script = format!(
        r#"
dirs=({dirs})
pids=
for m in $(seq 1 {LOCK_MOUNTS}); do
  for p in $(seq 1 {LOCKERS_PER_MOUNT}); do
    ( cd "${{dirs[$((m-1))]}}"
      for i in $(seq 1 {INCREMENTS}); do
        flock lock -c 'n=$(cat counter); echo $((n+1)) > counter'
      done ) &
    pids="$pids $!"
  done
done
for p in $pids; do wait "$p"; done
"#,
        dirs = dirs.join(" ")
    );
    let start = Instant::now();
    sh(env.path(), &script);
    let took = start.elapsed();
    let total = LOCK_MOUNTS * LOCKERS_PER_MOUNT * INCREMENTS;
    eprintln!(
        "{total} locked increments in {took:?}: {:.0}/s",
        total as f64 / took.as_secs_f64()
    );
    for m in &mounts {
        wait_content(
            &m.store("kb").join("counter"),
            &format!("{total}\n"),
            &format!("final counter through {}", m.path().display()),
        );
    }
    for m in mounts {
        m.stop();
    }
    let log = env.store_log("kb");
    assert!(
        ops(&log, "conflict").is_empty(),
        "conflicts: {:#?}",
        ops(&log, "conflict")
    );
}

/// A writer in mount A holds the lease: a writer in mount B waits, then gets EBUSY;
/// another descriptor in A and appenders anywhere are not refused; `memfsctl
/// leases` shows the holder; once A closes, B opens.
#[test]
fn second_writer_gets_ebusy_then_succeeds() {
    let env = Env::with_config(&config(2.0, 0.5));
    let a = env.mount("agent-holder", "sess-holder", None, &["kb"]);
    let b = env.mount("agent-second", "sess-second", None, &["kb"]);
    let (ka, kb) = (a.store("kb"), b.store("kb"));
    std::fs::write(ka.join("f.txt"), "base\n").unwrap();
    wait_content(&kb.join("f.txt"), "base\n", "f.txt in B");
    assert!(leases(&env).is_empty(), "{:#?}", leases(&env));

    let ready = env.path().join("holder-ready");
    let go = env.path().join("holder-go");
    let mut holder = Helper::spawn(
        &env,
        "holder",
        &ka,
        &format!(
            r#"
import os, time
fd = os.open("f.txt", os.O_RDWR)
open("{ready}", "w").close()
while not os.path.exists("{go}"):
    time.sleep(0.01)
os.close(fd)
print("closed")
"#,
            ready = ready.display(),
            go = go.display()
        ),
    );
    holder.wait_ready(&ready);

    let held = leases(&env);
    assert_eq!(held.len(), 1, "{held:#?}");
    let l = &held[0];
    assert_eq!(s(l, "store"), Some("kb"), "{l:#}");
    assert_eq!(s(l, "path"), Some("f.txt"), "{l:#}");
    assert_eq!(s(l, "agent"), Some("agent-holder"), "{l:#}");
    assert_eq!(s(l, "session"), Some("sess-holder"), "{l:#}");
    assert!(l["token"].as_i64().is_some_and(|t| t > 0), "{l:#}");
    assert!(l["expires_in_ms"].as_i64().is_some_and(|t| t > 0), "{l:#}");

    // Mount B: refused after waiting for the lease.
    match try_open_for_write(&kb, "f.txt") {
        Err((errno, secs)) => {
            assert_eq!(errno, EBUSY, "open in B failed with errno {errno}");
            eprintln!("open for write in B: EBUSY after {secs:.3} s (lease_wait 0.5 s)");
        }
        Ok(_) => panic!("mount B opened f.txt for writing while A holds the lease"),
    }
    // Mount A: another process's descriptor shares the file.
    if let Err((errno, _)) = try_open_for_write(&ka, "f.txt") {
        panic!("a second writer in the lease holder's own mount got errno {errno}");
    }
    // Appenders take no lease.
    sh(&kb, "echo 'appended in B' >> f.txt");
    let want = "base\nappended in B\n";
    wait_content(&kb.join("f.txt"), want, "B's append");
    wait_content(&ka.join("f.txt"), want, "B's append seen in A");

    std::fs::write(&go, "").unwrap();
    let (st, out) = holder.finish();
    assert!(st.success() && out.contains("closed"), "{st}: {out}");
    wait_until(Duration::from_secs(5), "lease released after close", || {
        let l = leases(&env);
        if l.is_empty() {
            Ok(())
        } else {
            Err(format!("{l:?}"))
        }
    });
    if let Err((errno, _)) = try_open_for_write(&kb, "f.txt") {
        panic!("B still refused (errno {errno}) after A closed");
    }
    sh(&kb, "echo 'written by B' > f.txt");
    wait_content(&ka.join("f.txt"), "written by B\n", "B's write seen in A");
    b.stop();
    a.stop();
    let log = env.store_log("kb");
    assert!(ops(&log, "conflict").is_empty(), "{log:#?}");
}

/// A writer whose daemon is frozen (SIGSTOP) past the lease TTL loses its lease to
/// another mount; when it resumes, its close fails with EBUSY and its bytes are kept
/// as a conflict version, not as the head.
#[test]
fn sigstopped_holder_is_fenced() {
    let env = Env::with_config(&config(1.0, 3.0));
    let a = env.mount("agent-stale", "sess-stale", None, &["kb"]);
    let b = env.mount("agent-fresh", "sess-fresh", None, &["kb"]);
    let (ka, kb) = (a.store("kb"), b.store("kb"));
    std::fs::write(kb.join("f.txt"), "orig\n").unwrap();
    wait_content(&ka.join("f.txt"), "orig\n", "f.txt in A");

    let ready = env.path().join("stale-ready");
    let go = env.path().join("stale-go");
    // Declared before the freeze guard, so the guard (dropped first) resumes the
    // daemon before this process is killed and the mounts are unmounted.
    let mut stale = Helper::spawn(
        &env,
        "stale-writer",
        &ka,
        &format!(
            r#"
import os, time
fd = os.open("f.txt", os.O_RDWR)
os.write(fd, b"stale\n")
open("{ready}", "w").close()
while not os.path.exists("{go}"):
    time.sleep(0.01)
try:
    os.close(fd)
except OSError as e:
    print("close failed errno", e.errno, e.strerror)
else:
    print("close ok")
"#,
            ready = ready.display(),
            go = go.display()
        ),
    );
    stale.wait_ready(&ready);
    assert_eq!(leases(&env).len(), 1);

    // Freeze A's daemon (nothing may touch A's mount until it resumes). B's open waits
    // for A's lease to lapse (TTL 1 s < lease wait 3 s), then writes and commits.
    let frozen = Frozen::stop(&env, &a);
    let stopped_at = Instant::now();
    let t = Instant::now();
    sh(&kb, "printf 'fresh\\n' > f.txt");
    let b_took = t.elapsed();
    let l = leases(&env);
    assert!(
        l.iter().all(|l| s(l, "agent") != Some("agent-stale")),
        "the frozen holder's lease is still listed: {l:#?}"
    );
    // Keep A frozen for well over one TTL in all.
    while stopped_at.elapsed() < Duration::from_millis(2500) {
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("B's write while A was frozen took {b_took:?}");
    drop(frozen);

    std::fs::write(&go, "").unwrap();
    let (st, out) = stale.finish();
    eprintln!("stale writer: {}", out.trim());
    assert!(st.success(), "stale writer: {st}\n{out}");
    assert!(
        out.contains(&format!("close failed errno {EBUSY}")),
        "the fenced writer's close did not fail with EBUSY: {out}"
    );

    wait_content(&kb.join("f.txt"), "fresh\n", "head through B");
    wait_content(&ka.join("f.txt"), "fresh\n", "head through A");
    let log = env.store_log("kb");
    let conflicts = ops(&log, "conflict");
    assert_eq!(conflicts.len(), 1, "{log:#?}");
    let c = conflicts[0];
    assert_eq!(s(c, "agent"), Some("agent-stale"), "{c:#}");
    assert_eq!(s(c, "session"), Some("sess-stale"), "{c:#}");
    assert_eq!(s(c, "path"), Some("f.txt"), "{c:#}");
    assert!(c["version"].as_i64().is_some(), "{c:#}");
    assert_eq!(c["detail"]["size"].as_u64(), Some(6), "{c:#}");
    assert!(
        ops(&log, "write")
            .iter()
            .any(|e| s(e, "agent") == Some("agent-fresh")),
        "{log:#?}"
    );
    b.stop();
    a.stop();
    assert_eq!(env.ctl(&["audit", "verify"])["ok"], true);
}

/// A daemon killed with SIGKILL while its processes hold a write lease, a flock lock
/// and a POSIX lock: another mount gets all three once the dead holder's TTL passes.
#[test]
fn sigkilled_holder_leases_and_locks_expire() {
    let env = Env::with_config(&config(1.0, 0.5));
    let mut a = env.mount("agent-doomed", "sess-doomed", None, &["kb"]);
    let b = env.mount("agent-survivor", "sess-survivor", None, &["kb"]);
    let mp_a = a.path().to_path_buf();
    let (ka, kb) = (a.store("kb"), b.store("kb"));
    sh(&kb, "echo data > f.txt; : > lockfile; : > posix.lock");
    for f in ["f.txt", "lockfile", "posix.lock"] {
        wait_until(VISIBLE_WITHIN, &format!("{f} in A"), || {
            ka.join(f)
                .exists()
                .then_some(())
                .ok_or_else(|| "missing".into())
        });
    }

    let ready_w = env.path().join("writer-ready");
    let ready_l = env.path().join("locker-ready");
    let mut writer = Helper::spawn(
        &env,
        "doomed-writer",
        &ka,
        &format!(
            r#"
import os, time
fd = os.open("f.txt", os.O_WRONLY)
os.write(fd, b"never committed\n")
open("{r}", "w").close()
time.sleep(60)
"#,
            r = ready_w.display()
        ),
    );
    let mut locker = Helper::spawn(
        &env,
        "doomed-locker",
        &ka,
        &format!(
            r#"
import fcntl, os, time
fd = os.open("lockfile", os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
# O_APPEND: a write descriptor (needed for F_WRLCK) that takes no lease.
pfd = os.open("posix.lock", os.O_WRONLY | os.O_APPEND)
fcntl.lockf(pfd, fcntl.LOCK_EX)
open("{r}", "w").close()
time.sleep(60)
"#,
            r = ready_l.display()
        ),
    );
    writer.wait_ready(&ready_w);
    locker.wait_ready(&ready_l);

    let posix_try = r#"
import errno, fcntl, os
fd = os.open("posix.lock", os.O_WRONLY | os.O_APPEND)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError as e:
    print("busy", e.errno)
else:
    print("locked")
"#;
    let posix_free = |dir: &Path| -> bool {
        let out = python(dir, posix_try);
        common::assert_success("python lockf", &out);
        text(&out.stdout).trim() == "locked"
    };

    // While A lives, B is refused all three.
    assert!(!flock_free(&kb, "lockfile"), "flock not held across mounts");
    assert!(!posix_free(&kb), "POSIX lock not held across mounts");
    match try_open_for_write(&kb, "f.txt") {
        Err((EBUSY, _)) => {}
        other => panic!("open for write in B while A holds the lease: {other:?}"),
    }

    // Kill the daemon first, then its processes (their closes cannot reach it).
    a.kill9();
    let killed_at = Instant::now();
    drop(writer);
    drop(locker);

    let lease_free = wait_until(
        Duration::from_secs(8),
        "dead holder's lease expires",
        || {
            try_open_for_write(&kb, "f.txt")
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        },
    );
    let after_lease = killed_at.elapsed();
    wait_until(
        Duration::from_secs(8),
        "dead holder's flock lock expires",
        || {
            flock_free(&kb, "lockfile")
                .then_some(())
                .ok_or_else(|| "flock -n still refused".into())
        },
    );
    let after_flock = killed_at.elapsed();
    wait_until(
        Duration::from_secs(8),
        "dead holder's POSIX lock expires",
        || {
            posix_free(&kb)
                .then_some(())
                .ok_or_else(|| "lockf still refused".into())
        },
    );
    eprintln!(
        "after SIGKILL (lease TTL 1 s): lease free at {after_lease:?} (waited {lease_free:?}), \
         flock free at {after_flock:?}, POSIX lock free at {:?}",
        killed_at.elapsed()
    );
    // B writes; the dead writer's bytes were never committed.
    sh(&kb, "echo 'after the crash' > f.txt");
    assert_eq!(read(&kb.join("f.txt")).unwrap(), "after the crash\n");
    assert!(leases(&env).is_empty(), "{:#?}", leases(&env));

    common::assert_success("memfs umount of the dead mount", &env.umount(&mp_a));
    assert!(!common::is_mounted(&mp_a));
    drop(a);
    b.stop();
}

/// `memfsctl leases break` frees a held lease (audited as lease-break); the holder's
/// close then fails with EBUSY and its bytes become a conflict version.
#[test]
fn lease_break_fences_holder() {
    let env = Env::with_config(&config(2.0, 0.5));
    let a = env.mount("agent-broken", "sess-broken", None, &["kb"]);
    let b = env.mount("agent-watch", "sess-watch", None, &["kb"]);
    let (ka, kb) = (a.store("kb"), b.store("kb"));
    std::fs::write(ka.join("f.txt"), "original\n").unwrap();

    let ready = env.path().join("broken-ready");
    let go = env.path().join("broken-go");
    let mut holder = Helper::spawn(
        &env,
        "broken-holder",
        &ka,
        &format!(
            r#"
import os, time
fd = os.open("f.txt", os.O_RDWR)
os.write(fd, b"staged by A\n")
open("{ready}", "w").close()
while not os.path.exists("{go}"):
    time.sleep(0.01)
try:
    os.close(fd)
except OSError as e:
    print("close failed errno", e.errno, e.strerror)
else:
    print("close ok")
"#,
            ready = ready.display(),
            go = go.display()
        ),
    );
    holder.wait_ready(&ready);
    let held = leases(&env);
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!(s(&held[0], "agent"), Some("agent-broken"));

    let out = env.run(env.memfsctl().args(["leases", "break", "kb/f.txt"]));
    common::assert_success("memfsctl leases break kb/f.txt", &out);
    eprintln!("memfsctl leases break: {}", text(&out.stdout).trim());
    assert!(leases(&env).is_empty(), "{:#?}", leases(&env));
    // Nothing left to break.
    let again = env.run(env.memfsctl().args(["leases", "break", "kb/f.txt"]));
    assert!(
        !again.status.success() && text(&again.stderr).contains("no live lease"),
        "second break: {}\n{}",
        again.status,
        text(&again.stderr)
    );
    // The freed lease is available to another mount.
    if let Err((errno, _)) = try_open_for_write(&kb, "f.txt") {
        panic!("B refused (errno {errno}) after the lease was broken");
    }

    std::fs::write(&go, "").unwrap();
    let (st, out) = holder.finish();
    eprintln!("fenced holder: {}", out.trim());
    assert!(st.success(), "holder: {st}\n{out}");
    assert!(
        out.contains(&format!("close failed errno {EBUSY}")),
        "the fenced holder's close did not fail with EBUSY: {out}"
    );

    wait_content(&kb.join("f.txt"), "original\n", "head through B");
    wait_content(&ka.join("f.txt"), "original\n", "head through A");
    let log = env.store_log("kb");
    let breaks = ops(&log, "lease-break");
    assert_eq!(breaks.len(), 1, "{log:#?}");
    assert_eq!(s(breaks[0], "path"), Some("f.txt"), "{:#}", breaks[0]);
    assert_eq!(
        breaks[0]["detail"]["agent"].as_str(),
        Some("agent-broken"),
        "{:#}",
        breaks[0]
    );
    let conflicts = ops(&log, "conflict");
    assert_eq!(conflicts.len(), 1, "{log:#?}");
    let c = conflicts[0];
    assert_eq!(s(c, "agent"), Some("agent-broken"), "{c:#}");
    assert!(c["version"].as_i64().is_some(), "{c:#}");
    assert_eq!(c["detail"]["size"].as_u64(), Some(12), "{c:#}");
    b.stop();
    a.stop();
    assert_eq!(env.ctl(&["audit", "verify"])["ok"], true);
}

//! The randomized multi-mount checker: N processes across M mounts (M daemons on
//! one database) run seeded random sequences of what agents do on a small shared
//! namespace that starts empty (tests/torture_worker.py: `>>` appends, replacing
//! a file through a temp file and rename, reads, `mkdir -p`, mkdir, rmdir, mv, rm,
//! symlinks, hard links, flock-protected counters, git commits). Afterwards:
//!
//! - no operation failed with an errno a local filesystem could not give for
//!   some interleaving ([`allowed`] lists them per operation, with the reason);
//! - every append landed exactly once, in every mount's view;
//! - every flock-protected counter is exact;
//! - every replaced file, every file read while others replaced it, and every
//!   file in the tree holds one whole version somebody wrote;
//! - the git repository has one commit per successful commit, and `git fsck`
//!   passes;
//! - `memfsctl log` attributes every change to the agent and session of the
//!   mount that made it: each append's bytes, each replacement (a write of the
//!   temp file and its rename), one write per counter increment; no conflict;
//! - `memfsctl fsck` and `memfsctl audit verify` pass.
//!
//! CI runs a short seed set. `scripts/torture.sh` runs as long as asked
//! (`SEED=.. DURATION=600 PROCS=6 MOUNTS=2`); a failure prints how to replay its
//! seed (same operation sequences, not the same interleaving). Needs root and
//! /dev/fuse.

mod common;

use common::{run_with_deadline, ChildGuard, Env, Mount};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[daemon]
lease_ttl_secs = 10.0
lease_wait_secs = 10.0

[[stores]]
name = "kb"
scope = "org"
description = "torture store"
"#;

const WORKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/torture_worker.py");
/// How long a change may take to show in every mount.
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

/// One run's parameters.
#[derive(Clone, Debug)]
struct Params {
    seed: String,
    duration: f64,
    procs: usize,
    mounts: usize,
}

impl Params {
    fn replay(&self) -> String {
        format!(
            "SEED={} DURATION={} PROCS={} MOUNTS={} scripts/torture.sh",
            self.seed, self.duration, self.procs, self.mounts
        )
    }
}

/// The errnos a local filesystem can give an operation for some interleaving of
/// the other workers' operations, and why. Everything else is a violation: EEXIST
/// from `>>` or `mkdir -p`, ESTALE, EIO, and EBUSY (no worker holds a file open
/// for writing longer than a moment, so a lease conflict outlasting
/// `lease_wait_secs` is a bug here; README, "Many agents at once").
fn allowed(op: &str, rec: &Value) -> &'static [i32] {
    match op {
        // Never removed or renamed, created with their parents: must always work.
        "append" | "overwrite" | "counter" | "git" => &[],
        // Another worker removed the file (or has not made it yet).
        "read" | "remove_file" | "rm" => &[libc::ENOENT],
        // A parent removed by another worker between the steps.
        "mkdir_p" | "create" => &[libc::ENOENT],
        "mkdir" => &[libc::EEXIST, libc::ENOENT],
        "rmdir" => &[libc::ENOENT, libc::ENOTEMPTY],
        "symlink" | "hardlink" => &[libc::EEXIST, libc::ENOENT],
        // Renaming a directory over a non-empty one.
        "mv" if rec["kind"] == "dir" => &[libc::ENOENT, libc::ENOTEMPTY],
        "mv" => &[libc::ENOENT],
        _ => &[],
    }
}

fn params_from_env() -> Option<Params> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let seed = var("MEMFS_TORTURE_SEED");
    let duration = var("MEMFS_TORTURE_DURATION");
    if seed.is_none() && duration.is_none() {
        return None;
    }
    let num = |n: &str, d: f64| var(n).and_then(|v| v.parse().ok()).unwrap_or(d);
    Some(Params {
        seed: seed.unwrap_or_else(|| format!("{}", std::process::id())),
        duration: num("MEMFS_TORTURE_DURATION", 30.0),
        procs: num("MEMFS_TORTURE_PROCS", 6.0) as usize,
        mounts: num("MEMFS_TORTURE_MOUNTS", 2.0) as usize,
    })
}

/// CI: a short seed set (each a few seconds of 4 workers on 2 mounts). With
/// `MEMFS_TORTURE_SEED` or `MEMFS_TORTURE_DURATION` set (scripts/torture.sh),
/// one run as asked.
#[test]
fn torture() {
    match params_from_env() {
        Some(p) => run(&p),
        None => {
            for seed in ["ci-1", "ci-2"] {
                run(&Params {
                    seed: seed.into(),
                    duration: 6.0,
                    procs: 4,
                    mounts: 2,
                });
            }
        }
    }
}

/// What a run found wrong. Collected, then reported together with the replay line.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn add(&mut self, what: String) {
        self.0.push(what);
    }
}

fn run(p: &Params) {
    eprintln!("torture: {p:?}");
    let env = Env::with_config(CONFIG);
    let mounts: Vec<Mount<'_>> = (0..p.mounts.max(1))
        .map(|m| env.mount(&agent(m), &session(m), None, &["kb"]))
        .collect();
    let recs = run_workers(&env, &mounts, p);
    let mut f = Findings::default();
    let ops = check_errnos(&recs, &mut f);
    check_appends(&mounts, &recs, &mut f);
    check_counters(&mounts, &recs, &mut f);
    check_files(&mounts, &recs, &mut f);
    check_tree(&mounts[0], &recs, &mut f);
    check_git(&mounts[0], &recs, &mut f);
    for m in mounts {
        m.stop();
    }
    check_audit(&env, p, &recs, &mut f);
    let fsck = env.run(env.memfsctl().arg("fsck"));
    if !fsck.status.success() {
        f.add(format!(
            "memfsctl fsck failed:\n{}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        ));
    }
    if env.ctl(&["audit", "verify"])["ok"] != true {
        f.add("memfsctl audit verify failed".into());
    }
    eprintln!(
        "torture: seed {} ran {} operations in {} s ({} workers on {} mounts): {ops}; {} violations",
        p.seed,
        recs.len(),
        p.duration,
        p.procs,
        p.mounts,
        f.0.len()
    );
    if !f.0.is_empty() {
        let shown: Vec<&String> = f.0.iter().take(20).collect();
        panic!(
            "{} violations (first {}):\n{}\nreplay: {}",
            f.0.len(),
            shown.len(),
            shown
                .iter()
                .map(|s| format!("- {s}"))
                .collect::<Vec<_>>()
                .join("\n"),
            p.replay()
        );
    }
}

fn agent(m: usize) -> String {
    format!("torture-m{m}")
}

fn session(m: usize) -> String {
    format!("sess-m{m}")
}

/// Starts every worker at once, waits for all, and returns their records.
fn run_workers(env: &Env, mounts: &[Mount<'_>], p: &Params) -> Vec<Value> {
    let mut children = Vec::new();
    let mut outs = Vec::new();
    for proc in 0..p.procs {
        let m = proc % mounts.len();
        let out = env.path().join(format!("worker{proc}.jsonl"));
        let child = Command::new("python3")
            .arg(WORKER)
            .arg("--root")
            .arg(mounts[m].store("kb"))
            .args(["--proc", &proc.to_string(), "--mount", &m.to_string()])
            .args(["--seed", &p.seed, "--duration", &p.duration.to_string()])
            .arg("--out")
            .arg(&out)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", agent(m))
            .env("GIT_AUTHOR_EMAIL", "torture@memfs")
            .env("GIT_COMMITTER_NAME", agent(m))
            .env("GIT_COMMITTER_EMAIL", "torture@memfs")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(env.path().join(format!("worker{proc}.err")))
                    .expect("worker stderr"),
            )
            .spawn()
            .expect("spawn torture worker");
        children.push(ChildGuard(child));
        outs.push(out);
    }
    // Operations in flight at the deadline finish (a git commit takes a while).
    let deadline = Instant::now() + Duration::from_secs_f64(p.duration) + Duration::from_secs(300);
    for (proc, c) in children.iter_mut().enumerate() {
        loop {
            match c.0.try_wait().expect("poll worker") {
                Some(st) => {
                    let err = std::fs::read_to_string(env.path().join(format!("worker{proc}.err")))
                        .unwrap_or_default();
                    assert!(
                        st.success(),
                        "worker {proc} exited {st}:\n{err}\nreplay: {}",
                        p.replay()
                    );
                    break;
                }
                None if Instant::now() > deadline => {
                    panic!(
                        "worker {proc} hung past its deadline\nreplay: {}",
                        p.replay()
                    )
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    outs.iter()
        .flat_map(|o| {
            std::fs::read_to_string(o)
                .expect("worker output")
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("worker JSON"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn ok(r: &Value) -> bool {
    r["ok"] == true
}

fn op(r: &Value) -> &str {
    r["op"].as_str().unwrap_or("?")
}

fn mount_of(r: &Value) -> usize {
    r["m"].as_u64().unwrap_or(0) as usize
}

/// Every failure must be one a local filesystem could give. Returns a summary of
/// what ran and what failed how.
fn check_errnos(recs: &[Value], f: &mut Findings) -> String {
    let mut count: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for r in recs {
        let c = count.entry(op(r)).or_default();
        c.0 += 1;
        if ok(r) {
            continue;
        }
        c.1 += 1;
        let errno = r["errno"].as_i64().map(|e| e as i32);
        let name = errno.map_or("tool".to_string(), |e| {
            std::io::Error::from_raw_os_error(e).to_string()
        });
        *failed.entry(format!("{} {}", op(r), name)).or_default() += 1;
        if !errno.is_some_and(|e| allowed(op(r), r).contains(&e)) {
            f.add(format!("not an errno a local disk gives here: {r}"));
        }
    }
    let ran: Vec<String> = count
        .iter()
        .map(|(op, (n, bad))| format!("{op} {n} ({bad} failed)"))
        .collect();
    let why: Vec<String> = failed.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    format!("{}; failures: {}", ran.join(", "), why.join(", "))
}

/// Polls `check` until it passes or the deadline; returns its last complaint.
fn settle(mut check: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() > VISIBLE_WITHIN => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Every successful append's line is in its log exactly once, through every
/// mount; no line is there that nobody appended.
fn check_appends(mounts: &[Mount<'_>], recs: &[Value], f: &mut Findings) {
    let mut want: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut maybe: HashSet<String> = HashSet::new();
    for r in recs.iter().filter(|r| op(r) == "append") {
        let line = r["line"].as_str().unwrap_or_default().to_string();
        if ok(r) {
            want.entry(r["log"].as_u64().unwrap_or(0))
                .or_default()
                .push(line);
        } else {
            maybe.insert(line);
        }
    }
    for (k, lines) in &mut want {
        lines.sort();
        for m in mounts {
            let path = m.store("kb").join(format!("logs/L{k}"));
            let verdict = settle(|| {
                let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                let mut got: Vec<String> = text
                    .lines()
                    .filter(|l| !maybe.contains(*l))
                    .map(str::to_string)
                    .collect();
                got.sort();
                if &got == lines {
                    return Ok(());
                }
                let want_set: HashSet<&String> = lines.iter().collect();
                let got_set: HashSet<&String> = got.iter().collect();
                let missing: Vec<_> = lines
                    .iter()
                    .filter(|l| !got_set.contains(l))
                    .take(5)
                    .collect();
                let extra: Vec<_> = got
                    .iter()
                    .filter(|l| !want_set.contains(l))
                    .take(5)
                    .collect();
                Err(format!(
                    "{} lines for {} appends; missing e.g. {missing:?}, unexpected or repeated e.g. {extra:?}",
                    got.len(),
                    lines.len()
                ))
            });
            if let Err(e) = verdict {
                f.add(format!("{}: {e}", path.display()));
            }
        }
    }
}

/// Each counter holds the number of successful increments, in every mount.
fn check_counters(mounts: &[Mount<'_>], recs: &[Value], f: &mut Findings) {
    let mut want: BTreeMap<u64, u64> = BTreeMap::new();
    for r in recs.iter().filter(|r| op(r) == "counter" && ok(r)) {
        *want.entry(r["counter"].as_u64().unwrap_or(0)).or_default() += 1;
    }
    for (k, n) in want {
        for m in mounts {
            let path = m.store("kb").join(format!("counters/C{k}"));
            let verdict = settle(|| {
                let got = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                if got.trim() == n.to_string() {
                    Ok(())
                } else {
                    Err(format!("holds {got:?} after {n} increments"))
                }
            });
            if let Err(e) = verdict {
                f.add(format!("{}: {e}", path.display()));
            }
        }
    }
}

/// `(token, n)` if `data` is exactly what one write of `prefix` content made
/// (tests/torture_worker.py: lines `PREFIX TOKEN J` for J in 0..n), else `None`.
fn identify(data: &[u8], prefix: &str) -> Option<(String, u64)> {
    let text = std::str::from_utf8(data).ok()?.strip_suffix('\n')?;
    let lines: Vec<&str> = text.split('\n').collect();
    let mut first = lines[0].split(' ');
    let (p, token) = (first.next()?, first.next()?);
    if p != prefix {
        return None;
    }
    let whole = lines
        .iter()
        .enumerate()
        .all(|(j, l)| *l == format!("{prefix} {token} {j}"));
    whole.then(|| (token.to_string(), lines.len() as u64))
}

fn token(r: &Value) -> String {
    format!("p{}-{}", r["p"], r["i"])
}

/// Every replaced file holds one whole version somebody wrote, and so did every
/// read of one while others replaced it.
fn check_files(mounts: &[Mount<'_>], recs: &[Value], f: &mut Findings) {
    // (file, token, lines) of every replacement attempted.
    let written: HashSet<(u64, String, u64)> = recs
        .iter()
        .filter(|r| op(r) == "overwrite")
        .map(|r| {
            (
                r["file"].as_u64().unwrap_or(0),
                token(r),
                r["n"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let known = |k: u64, saw: &Option<(String, u64)>| {
        saw.as_ref()
            .is_some_and(|(t, n)| written.contains(&(k, t.clone(), *n)))
    };
    for r in recs.iter().filter(|r| op(r) == "read" && ok(r)) {
        let k = r["file"].as_u64().unwrap_or(0);
        let saw = r["saw"].as_array().map(|v| {
            (
                v[0].as_str().unwrap_or_default().to_string(),
                v[1].as_u64().unwrap_or(0),
            )
        });
        if !known(k, &saw) {
            f.add(format!(
                "a read of files/F{k} saw no version anybody wrote: {r}"
            ));
        }
    }
    for m in mounts {
        for k in 0..4 {
            let path = m.store("kb").join(format!("files/F{k}"));
            let verdict = settle(|| match std::fs::read(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.to_string()),
                Ok(data) if known(k, &identify(&data, &format!("F{k}"))) => Ok(()),
                Ok(data) => Err(format!(
                    "{} bytes that nobody wrote, starting {:?}",
                    data.len(),
                    String::from_utf8_lossy(&data[..data.len().min(60)])
                )),
            });
            if let Err(e) = verdict {
                f.add(format!("{}: {e}", path.display()));
            }
        }
    }
}

/// Every regular file under tree/ holds one whole version some create wrote, and
/// every symlink points where one was made to.
fn check_tree(m: &Mount<'_>, recs: &[Value], f: &mut Findings) {
    let written: HashSet<(String, u64)> = recs
        .iter()
        .filter(|r| op(r) == "create")
        .map(|r| (token(r), r["n"].as_u64().unwrap_or(0)))
        .collect();
    let mut stack: Vec<PathBuf> = vec![m.store("kb").join("tree")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&path).unwrap_or_default();
                let t = t.to_string_lossy();
                if !(t.len() == 2 && t.starts_with('n')) {
                    f.add(format!("{}: a symlink to {t:?}", path.display()));
                }
            } else {
                match std::fs::read(&path) {
                    Ok(d) if identify(&d, "T").is_some_and(|v| written.contains(&v)) => {}
                    Ok(d) => f.add(format!(
                        "{}: {} bytes that no create wrote: {:?}",
                        path.display(),
                        d.len(),
                        String::from_utf8_lossy(&d[..d.len().min(60)])
                    )),
                    Err(e) => f.add(format!("{}: {e}", path.display())),
                }
            }
        }
    }
}

/// One commit per successful `git commit`, all reachable, and `git fsck` passes.
fn check_git(m: &Mount<'_>, recs: &[Value], f: &mut Findings) {
    let want: HashSet<String> = recs
        .iter()
        .filter(|r| op(r) == "git" && ok(r))
        .map(token)
        .collect();
    if want.is_empty() {
        return;
    }
    // Under the repository's lock, as the workers committed.
    let out = run_with_deadline(
        &mut common::bash(
            &m.store("kb"),
            "flock repo.lock sh -c 'cd repo && git fsck --full && git log --format=%s'",
        ),
        common::COMMAND_DEADLINE,
    );
    if !out.status.success() {
        f.add(format!(
            "git fsck/log failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
        return;
    }
    let log = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = log.lines().collect();
    let got_set: HashSet<String> = got.iter().map(|s| s.to_string()).collect();
    if got.len() != want.len() || got_set != want {
        let missing: Vec<_> = want.difference(&got_set).take(5).collect();
        f.add(format!(
            "git log has {} commits for {} successful commits; missing e.g. {missing:?}",
            got.len(),
            want.len()
        ));
    }
}

/// The audit log attributes every change to the mount that made it.
fn check_audit(env: &Env, p: &Params, recs: &[Value], f: &mut Findings) {
    let log = env.store_log("kb");
    let known: HashMap<String, String> = (0..p.mounts.max(1))
        .map(|m| (agent(m), session(m)))
        .collect();
    let mut writes: HashSet<(String, String)> = HashSet::new();
    let mut renames: HashSet<(String, String, String)> = HashSet::new();
    // Bytes each agent's commits added to each log, and writes per counter.
    let mut log_bytes: HashMap<(String, String), i64> = HashMap::new();
    let mut last_size: HashMap<String, i64> = HashMap::new();
    let mut counter_writes: HashMap<(String, String), usize> = HashMap::new();
    for e in &log {
        let (a, s) = (
            e["agent"].as_str().unwrap_or_default().to_string(),
            e["session"].as_str().unwrap_or_default(),
        );
        let path = e["path"].as_str().unwrap_or_default().to_string();
        match known.get(&a) {
            Some(sess) if sess == s => {}
            _ if a == "memfs-init" => {}
            _ => f.add(format!("an entry attributed to no mount: {e}")),
        }
        let op = e["op"].as_str().unwrap_or_default();
        if op == "conflict" || op == "rejected" {
            f.add(format!("a {op} entry: {e}"));
        }
        if op == "write" {
            writes.insert((path.clone(), a.clone()));
            if path.starts_with("logs/") {
                let size = e["detail"]["size"].as_i64().unwrap_or(0);
                let before = last_size.insert(path.clone(), size).unwrap_or(0);
                *log_bytes.entry((path.clone(), a.clone())).or_default() += size - before;
            }
            if path.starts_with("counters/") && !path.ends_with(".lock") {
                *counter_writes.entry((path.clone(), a.clone())).or_default() += 1;
            }
        }
        if op == "rename" {
            let to = e["path2"].as_str().unwrap_or_default().to_string();
            renames.insert((path, to, a));
        }
    }
    let mut appended: HashMap<(String, String), i64> = HashMap::new();
    let mut increments: HashMap<(String, String), usize> = HashMap::new();
    for r in recs.iter().filter(|r| ok(r)) {
        let a = agent(mount_of(r));
        match op(r) {
            "append" => {
                let key = (format!("logs/L{}", r["log"]), a);
                *appended.entry(key).or_default() +=
                    r["line"].as_str().unwrap_or_default().len() as i64 + 1;
            }
            "overwrite" => {
                let tmp = r["tmp"].as_str().unwrap_or_default().to_string();
                let to = format!("files/F{}", r["file"]);
                if !writes.contains(&(tmp.clone(), a.clone())) {
                    f.add(format!("no write of {tmp} by {a} in the log"));
                }
                if !renames.contains(&(tmp.clone(), to.clone(), a.clone())) {
                    f.add(format!("no rename {tmp} -> {to} by {a} in the log"));
                }
            }
            "counter" => {
                *increments
                    .entry((format!("counters/C{}", r["counter"]), a))
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    if appended
        != log_bytes
            .clone()
            .into_iter()
            .filter(|(_, b)| *b != 0)
            .collect()
    {
        f.add(format!(
            "appended bytes per log and agent {appended:?}, but the log's write entries add {log_bytes:?}"
        ));
    }
    if increments != counter_writes {
        f.add(format!(
            "increments per counter and agent {increments:?}, but the log has writes {counter_writes:?}"
        ));
    }
}

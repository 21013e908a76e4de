//! Harness for the real-FUSE integration tests: a private temp dir with a config and
//! database, daemons mounted in it, and shell/memfsctl helpers.
//!
//! Every [`Mount`] is unmounted when dropped, also when the test panics, so a failing
//! test never leaves a mount behind.

// Each test binary that includes this module uses a different subset of it.
#![allow(dead_code)]

use serde_json::Value;
use std::cell::Cell;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const MEMFS: &str = env!("CARGO_BIN_EXE_memfs");
pub const MEMFSCTL: &str = env!("CARGO_BIN_EXE_memfsctl");

/// How long a daemon may take to mount.
pub const DAEMON_DEADLINE: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after SIGTERM (it gives a busy mount's open
/// files 10 s before it exits anyway).
pub const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// How long one shell script or CLI command may run before it is killed.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(10);

/// The config every test uses unless it writes its own: one org store and one
/// user store owned by alice.
pub const DEFAULT_CONFIG: &str = r#"
[[stores]]
name = "kb"
scope = "org"
description = "shared test store"

[[stores]]
name = "alice"
scope = "user"
owner = "alice"
description = "alice's private test store"
"#;

/// One test's world: a temp dir holding memfs.toml, the database, daemon logs and
/// mountpoints.
pub struct Env {
    /// Removed when the `Env` is dropped (after all its `Mount`s).
    dir: tempfile::TempDir,
    /// Canonical path of `dir` (mountinfo lists canonical paths).
    root: PathBuf,
    pub config: PathBuf,
    pub db: PathBuf,
    mounts: Cell<u32>,
    /// With `MEMFS_TEST_PG`, the test's own PostgreSQL database (dropped last).
    pg: Option<PgScratch>,
}

/// A PostgreSQL database made for one test, dropped with it.
struct PgScratch {
    server: String,
    name: String,
}

/// The last guard against a mount outliving its test: a daemon that died, or
/// a `Mount` a test leaked, leaves its mountpoint under the temp dir, where
/// removing the dir would fail on it and leave a dead mount on the machine.
/// Every mount still under the root is detached (its daemon then exits).
impl Drop for Env {
    fn drop(&mut self) {
        for mp in mounts_under(&self.root) {
            eprintln!(
                "{} still mounted after its test; detaching it",
                mp.display()
            );
            while is_mounted(&mp) && lazy_unmount(&mp) {}
        }
    }
}

/// Mountpoints at or below `root` (canonical), deepest first.
fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|mp| PathBuf::from(OsString::from_vec(unescape_mountinfo(mp))))
        .filter(|mp| mp.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        if let Err(e) = memfs::store::postgres::Pg::drop_scratch(&self.server, &self.name) {
            eprintln!("cannot drop test database {}: {e}", self.name);
        }
    }
}

/// The PostgreSQL server the tests run against (`MEMFS_TEST_PG`), if any.
pub fn test_pg() -> Option<String> {
    std::env::var("MEMFS_TEST_PG")
        .ok()
        .filter(|s| !s.is_empty())
}

/// True (and says so) when the test looks at SQLite's files and the suite
/// runs on PostgreSQL: the caller returns early.
pub fn skip_on_pg(what: &str) -> bool {
    if test_pg().is_some() {
        eprintln!("skipped on PostgreSQL: {what}");
        return true;
    }
    false
}

impl Env {
    /// A fresh environment with [`DEFAULT_CONFIG`], initialised with `memfs init`.
    pub fn new() -> Env {
        Env::with_config(DEFAULT_CONFIG)
    }

    /// A fresh environment with the given memfs.toml text, initialised with `memfs init`.
    pub fn with_config(toml: &str) -> Env {
        Env::with_config_and_db(toml, None)
    }

    /// Like [`Env::with_config`], with the database at `db` (say, on a small
    /// filesystem the test made) instead of inside the temp dir.
    pub fn with_config_and_db(toml: &str, db: Option<PathBuf>) -> Env {
        let mut dir = tempfile::Builder::new()
            .prefix("memfs-it-")
            .tempdir()
            .expect("create temp dir");
        // MEMFS_TEST_KEEP=1 keeps the temp dir (config, db, daemon logs) for debugging.
        if std::env::var_os("MEMFS_TEST_KEEP").is_some_and(|v| !v.is_empty()) {
            dir.disable_cleanup(true);
            eprintln!("keeping test dir {}", dir.path().display());
        }
        let root = dir.path().canonicalize().expect("canonicalize temp dir");
        let config = root.join("memfs.toml");
        std::fs::write(&config, toml).expect("write memfs.toml");
        let (db, pg) = match (db, test_pg()) {
            (Some(db), _) => (db, None),
            (None, Some(server)) => {
                let (url, name) = memfs::store::postgres::Pg::create_scratch(&server)
                    .expect("create a test database (MEMFS_TEST_PG)");
                (PathBuf::from(url), Some(PgScratch { server, name }))
            }
            (None, None) => (root.join("memfs.db"), None),
        };
        let env = Env {
            dir,
            db,
            config,
            root,
            mounts: Cell::new(0),
            pg,
        };
        let out = env.run(env.memfs().arg("init"));
        assert_success("memfs init", &out);
        env
    }

    /// The temp dir (canonical).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// A fresh directory inside the temp dir, outside any mount.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.root.join(name);
        std::fs::create_dir_all(&p).expect("create scratch dir");
        p
    }

    /// `memfs --config C --db D` (add the subcommand).
    pub fn memfs(&self) -> Command {
        let mut c = Command::new(MEMFS);
        c.arg("--config")
            .arg(&self.config)
            .arg("--db")
            .arg(&self.db);
        c
    }

    /// `memfsctl --config C --db D` (add the subcommand).
    pub fn memfsctl(&self) -> Command {
        let mut c = Command::new(MEMFSCTL);
        c.arg("--config")
            .arg(&self.config)
            .arg("--db")
            .arg(&self.db);
        c
    }

    /// `memfsctl --config C --db DB` for another database.
    pub fn memfs_ctl_on(&self, db: &str) -> Command {
        let mut c = Command::new(MEMFSCTL);
        c.arg("--config").arg(&self.config).arg("--db").arg(db);
        c
    }

    /// The same directory and config on another database (for mounts on a
    /// copy); the database is not created or dropped by it.
    pub fn on_db(&self, db: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("memfs-it-")
            .tempdir()
            .expect("create temp dir");
        let root = dir.path().canonicalize().expect("canonicalize temp dir");
        Env {
            dir,
            db: PathBuf::from(db),
            config: self.config.clone(),
            root,
            mounts: Cell::new(0),
            pg: None,
        }
    }

    /// Runs a command to completion with a deadline, capturing its output.
    pub fn run(&self, cmd: &mut Command) -> Output {
        run_with_deadline(cmd, COMMAND_DEADLINE)
    }

    /// `memfsctl --json ARGS...`, asserting success; its stdout parsed as JSON.
    pub fn ctl(&self, args: &[&str]) -> Value {
        let out = self.run(self.memfsctl().arg("--json").args(args));
        assert_success(&format!("memfsctl {}", args.join(" ")), &out);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "memfsctl {} printed invalid JSON ({e}):\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Every audit entry, oldest first (`memfsctl log` lists newest first).
    pub fn log(&self) -> Vec<Value> {
        let mut v = self
            .ctl(&["log"])
            .as_array()
            .expect("log is an array")
            .clone();
        v.reverse();
        v
    }

    /// Every audit entry of one store, oldest first.
    pub fn store_log(&self, store: &str) -> Vec<Value> {
        let mut v = self
            .ctl(&["log", "--store", store])
            .as_array()
            .expect("log is an array")
            .clone();
        v.reverse();
        v
    }

    /// Mounts with the given identity and stores (`NAME` or `NAME:ro`; empty means
    /// every visible store), waiting until the mount is live. Panics with the
    /// daemon's log when it fails.
    pub fn mount(
        &self,
        agent: &str,
        session: &str,
        user: Option<&str>,
        stores: &[&str],
    ) -> Mount<'_> {
        match self.try_mount(agent, session, user, stores) {
            Ok(m) => m,
            Err(e) => panic!("memfs mount failed: {e}"),
        }
    }

    /// Like [`Env::mount`], but returns the daemon's exit status and output when it
    /// exits before mounting (as it must when the mount is refused).
    pub fn try_mount(
        &self,
        agent: &str,
        session: &str,
        user: Option<&str>,
        stores: &[&str],
    ) -> Result<Mount<'_>, MountError> {
        let n = self.mounts.get() + 1;
        let mountpoint = self.root.join(format!("mnt{n}"));
        std::fs::create_dir_all(&mountpoint).expect("create mountpoint");
        self.try_mount_at(&mountpoint, agent, session, user, stores)
    }

    /// Like [`Env::try_mount`], at a given mountpoint (which must be a canonical path).
    pub fn try_mount_at(
        &self,
        mountpoint: &Path,
        agent: &str,
        session: &str,
        user: Option<&str>,
        stores: &[&str],
    ) -> Result<Mount<'_>, MountError> {
        self.try_mount_with(mountpoint, agent, session, user, stores, &[])
    }

    /// Like [`Env::mount`], with more `memfs mount` arguments (`--metrics ADDR`).
    pub fn mount_with(
        &self,
        agent: &str,
        session: &str,
        user: Option<&str>,
        stores: &[&str],
        extra: &[&str],
    ) -> Mount<'_> {
        let n = self.mounts.get() + 1;
        let mountpoint = self.root.join(format!("mnt{n}"));
        std::fs::create_dir_all(&mountpoint).expect("create mountpoint");
        match self.try_mount_with(&mountpoint, agent, session, user, stores, extra) {
            Ok(m) => m,
            Err(e) => panic!("memfs mount failed: {e}"),
        }
    }

    /// [`Env::try_mount_at`] with more `memfs mount` arguments.
    pub fn try_mount_with(
        &self,
        mountpoint: &Path,
        agent: &str,
        session: &str,
        user: Option<&str>,
        stores: &[&str],
        extra: &[&str],
    ) -> Result<Mount<'_>, MountError> {
        self.spawn_mount(
            self.memfs(),
            mountpoint,
            agent,
            session,
            user,
            stores,
            extra,
        )
    }

    /// Mounts as another "host": `launcher` runs the daemon (say `nsenter
    /// --net=...` and `faketime`), which reaches the database at `db`.
    pub fn mount_on_host(
        &self,
        launcher: &[String],
        db: &str,
        agent: &str,
        session: &str,
        stores: &[&str],
    ) -> Mount<'_> {
        let n = self.mounts.get() + 1;
        let mountpoint = self.root.join(format!("mnt{n}"));
        std::fs::create_dir_all(&mountpoint).expect("create mountpoint");
        let mut cmd = Command::new(&launcher[0]);
        cmd.args(&launcher[1..])
            .arg(MEMFS)
            .arg("--config")
            .arg(&self.config)
            .arg("--db")
            .arg(db);
        match self.spawn_mount(cmd, &mountpoint, agent, session, None, stores, &[]) {
            Ok(m) => m,
            Err(e) => panic!("memfs mount failed: {e}"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_mount(
        &self,
        mut cmd: Command,
        mountpoint: &Path,
        agent: &str,
        session: &str,
        user: Option<&str>,
        stores: &[&str],
        extra: &[&str],
    ) -> Result<Mount<'_>, MountError> {
        let n = self.mounts.get() + 1;
        self.mounts.set(n);
        let mountpoint = mountpoint.to_path_buf();
        let log = self.root.join(format!("daemon{n}.log"));
        let log_file = File::create(&log).expect("create daemon log");
        cmd.arg("mount")
            .arg(&mountpoint)
            .args(["--agent", agent, "--session", session]);
        if let Some(u) = user {
            cmd.args(["--user", u]);
        }
        for s in stores {
            cmd.args(["--store", s]);
        }
        cmd.args(extra);
        cmd.env(
            "RUST_LOG",
            std::env::var("MEMFS_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup log fd"))
        .stderr(log_file);
        // Something may already be mounted there (a dead mount): wait for one more.
        let base = mount_count(&mountpoint);
        let child = cmd.spawn().expect("spawn memfs mount");
        let mut m = Mount {
            child: Some(child),
            mountpoint,
            base,
            log,
            _env: PhantomData,
        };
        let deadline = Instant::now() + DAEMON_DEADLINE;
        loop {
            if m.is_mounted() {
                return Ok(m);
            }
            let child = m.child.as_mut().expect("daemon child");
            if let Some(status) = child.try_wait().expect("poll daemon") {
                m.child = None;
                return Err(MountError {
                    status,
                    log: m.log_text(),
                });
            }
            if Instant::now() > deadline {
                m.shutdown();
                panic!(
                    "daemon did not mount {} within {DAEMON_DEADLINE:?}; its log:\n{}",
                    m.mountpoint.display(),
                    m.log_text()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// `memfs umount PATH`, returning its output (not asserting success).
    pub fn umount(&self, path: &Path) -> Output {
        self.run(self.memfs().arg("umount").arg(path))
    }
}

/// A `memfs mount` that exited without mounting.
#[derive(Debug)]
pub struct MountError {
    pub status: ExitStatus,
    /// The daemon's stdout and stderr.
    pub log: String,
}

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "daemon exited with {} before mounting; its log:\n{}",
            self.status, self.log
        )
    }
}

/// A running `memfs mount` daemon. Dropping it always unmounts: SIGTERM, then
/// SIGKILL and a lazy unmount if the daemon does not go away in time.
///
/// It borrows its [`Env`], so it is always dropped (unmounted) before the temp dir.
pub struct Mount<'e> {
    child: Option<Child>,
    mountpoint: PathBuf,
    /// How many mounts were stacked on `mountpoint` before this one.
    base: usize,
    log: PathBuf,
    _env: PhantomData<&'e Env>,
}

impl Mount<'_> {
    /// The mountpoint (its children are the attached stores).
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// The root directory of one attached store.
    pub fn store(&self, name: &str) -> PathBuf {
        self.mountpoint.join(name)
    }

    /// Whether this mount is (still) in /proc/self/mountinfo.
    pub fn is_mounted(&self) -> bool {
        mount_count(&self.mountpoint) > self.base
    }

    /// The daemon's pid (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the daemon has written to stdout/stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no log: {e}>"))
    }

    /// Stops the daemon with SIGTERM and asserts it exits 0 and leaves no mount.
    pub fn stop(mut self) {
        let status = self.shutdown();
        let log = self.log_text();
        match status {
            Some(s) if s.success() => {}
            other => {
                panic!("daemon did not exit cleanly after SIGTERM ({other:?}); its log:\n{log}")
            }
        }
        assert!(
            !self.is_mounted(),
            "{} still mounted after the daemon exited; log:\n{log}",
            self.mountpoint.display()
        );
    }

    /// Waits for the daemon to exit on its own (after an external `memfs umount`)
    /// and asserts it exits 0.
    pub fn wait_exit(mut self) {
        let mut child = self.child.take().expect("daemon already stopped");
        let deadline = Instant::now() + STOP_DEADLINE;
        let status = loop {
            if let Some(s) = child.try_wait().expect("poll daemon") {
                break s;
            }
            if Instant::now() > deadline {
                self.child = Some(child);
                panic!(
                    "daemon did not exit within {STOP_DEADLINE:?} after its mount went away; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(POLL);
        };
        assert!(
            status.success(),
            "daemon exited with {status}; log:\n{}",
            self.log_text()
        );
        assert!(
            !self.is_mounted(),
            "daemon exited but {} is still mounted",
            self.mountpoint.display()
        );
    }

    /// SIGKILLs the daemon and reaps it, leaving its (now dead) mount in place.
    /// Dropping the `Mount` afterwards still cleans the mount up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon already stopped");
        signal(&child, libc::SIGKILL);
        let status = child.wait().expect("wait for killed daemon");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "daemon did not die of SIGKILL: {status}"
        );
    }

    /// Ends the daemon (SIGTERM, then SIGKILL past the deadline) and makes sure the
    /// mountpoint is unmounted. Returns the daemon's exit status if it was running.
    /// Never panics: it runs from `Drop`, possibly while a test unwinds.
    fn shutdown(&mut self) -> Option<ExitStatus> {
        let mut status = None;
        if let Some(mut child) = self.child.take() {
            status = match child.try_wait() {
                Ok(Some(s)) => Some(s),
                _ => {
                    signal(&child, libc::SIGTERM);
                    let deadline = Instant::now() + STOP_DEADLINE;
                    loop {
                        match child.try_wait() {
                            Ok(Some(s)) => break Some(s),
                            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                            _ => {
                                eprintln!(
                                    "memfs daemon for {} ignored SIGTERM; killing it",
                                    self.mountpoint.display()
                                );
                                signal(&child, libc::SIGKILL);
                                break child.wait().ok();
                            }
                        }
                    }
                }
            };
        }
        while self.is_mounted() {
            eprintln!("{} still mounted; detaching it", self.mountpoint.display());
            if !lazy_unmount(&self.mountpoint) {
                eprintln!("cannot unmount {}", self.mountpoint.display());
                break;
            }
        }
        status
    }
}

impl Drop for Mount<'_> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A helper process that is killed and reaped when dropped (also on test panic).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Detaches the topmost mount at `path` (`umount -l`), falling back to `memfs umount`.
/// Returns whether one was removed.
fn lazy_unmount(path: &Path) -> bool {
    let before = mount_count(path);
    if let Ok(c) = CString::new(path.as_os_str().as_bytes()) {
        // SAFETY: `c` is a valid NUL-terminated path.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
    if mount_count(path) == before {
        let _ = Command::new(MEMFS)
            .arg("umount")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    mount_count(path) < before
}

/// Whether `path` (canonical) is a mount point in /proc/self/mountinfo. Never touches
/// the path itself, so it is safe on dead or hung FUSE mounts.
pub fn is_mounted(path: &Path) -> bool {
    mount_count(path) > 0
}

/// How many mounts are stacked on `path` (canonical) per /proc/self/mountinfo.
pub fn mount_count(path: &Path) -> usize {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return 0;
    };
    let want = path.as_os_str().as_bytes();
    info.lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|mp| unescape_mountinfo(mp) == want)
        })
        .count()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, etc.).
fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Runs a command with stdin closed and output captured, killing its whole process
/// group if it outlives `limit` (a hung filesystem must fail the test, not hang it).
pub fn run_with_deadline(cmd: &mut Command, limit: Duration) -> Output {
    let mut stdout = tempfile::tempfile().expect("stdout temp file");
    let mut stderr = tempfile::tempfile().expect("stderr temp file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("dup stdout"))
        .stderr(stderr.try_clone().expect("dup stderr"))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("poll child") {
            break s;
        }
        if Instant::now() > deadline {
            let pgid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
            // SAFETY: signals the process group we created for this child.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = child.wait();
            let (o, e) = (read_all(&mut stdout), read_all(&mut stderr));
            panic!(
                "{cmd:?} did not finish within {limit:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(POLL);
    };
    Output {
        status,
        stdout: read_all(&mut stdout),
        stderr: read_all(&mut stderr),
    }
}

fn read_all(f: &mut File) -> Vec<u8> {
    let mut v = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("rewind output");
    f.read_to_end(&mut v).expect("read output");
    v
}

/// Panics, showing stdout and stderr, unless `out` is a success.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `bash -euo pipefail -c SCRIPT` command in `dir`, with a predictable locale and
/// git configuration that ignores the host's.
pub fn bash(dir: &Path, script: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    c
}

/// Runs a bash script in `dir`, asserting it succeeds; returns its stdout.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = run_with_deadline(&mut bash(dir, script), COMMAND_DEADLINE);
    assert_success(&format!("script in {}:\n{script}\n", dir.display()), &out);
    String::from_utf8(out.stdout).expect("script output is UTF-8")
}

/// Runs a bash script in `dir` that is expected to fail; returns (status, stdout, stderr).
pub fn sh_fails(dir: &Path, script: &str) -> (ExitStatus, String, String) {
    let out = run_with_deadline(&mut bash(dir, script), COMMAND_DEADLINE);
    assert!(
        !out.status.success(),
        "script in {} unexpectedly succeeded:\n{script}\n--- stdout ---\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Shorthand for a JSON field as a string (`None` for null or missing).
pub fn s<'a>(e: &'a Value, key: &str) -> Option<&'a str> {
    e.get(key).and_then(Value::as_str)
}

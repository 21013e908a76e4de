//! Running consolidation jobs (`POST /v1/dreams`) in `memfs serve`: each job
//! gets a thread (never the async runtime), which starts it in the operations
//! core (`ops/jobs`: the job's draft is made), writes the sessions' change
//! logs, mounts the draft with FUSE, runs the operator's command on it, and
//! ends it (`ops::Ops::finish_job`), taking the mount down and killing every
//! process of the command whatever happens.
//!
//! The job's directory, `[jobs] dir/<job id>/` (default: `jobs/` beside the
//! database), while it runs:
//!
//! ```text
//! mnt/                 the FUSE mount; mnt/<store>/ is the draft (the command's cwd)
//! sessions/<id>.jsonl  one line per change each input session made (audit
//!                      entries, with the content of small text writes)
//! stdout.log           the command's output
//! stderr.log           its errors (a failed job quotes their tail)
//! ```
//!
//! The command (`[jobs] consolidate`, run with `sh -c`) gets: `MEMFS_JOB_ID`,
//! `MEMFS_JOB_DIR` (the draft, its cwd), `MEMFS_JOB_SESSIONS` (the sessions
//! directory), `MEMFS_JOB_SESSION_IDS` (newline-separated), `MEMFS_JOB_STORE`
//! and `MEMFS_JOB_STORE_ID` (the input store's name and API id),
//! `MEMFS_JOB_MODEL`, `MEMFS_JOB_INSTRUCTIONS` (empty if none) and
//! `MEMFS_JOB_OUTPUT` (`create_new` or `update_existing`). It succeeds by
//! exiting 0; whatever it left in the draft is the result.

mod mount;
pub mod process;

pub use mount::JobMount;

use crate::config::Config;
use crate::ops::jobs::{JobError, Outcome, StartedJob};
use crate::ops::Ops;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// `[jobs]` in memfs.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// The consolidation command, run with `sh -c` in the job's mounted
    /// draft. Without one, `POST /v1/dreams` is refused.
    pub consolidate: Option<String>,
    /// A job whose command runs longer fails with `timeout`, in seconds.
    pub timeout_secs: f64,
    /// Where jobs' directories go (default: see [`default_dir`]).
    pub dir: Option<PathBuf>,
    /// Jobs running at once; more wait as `pending`.
    pub max_running: usize,
    /// How long a canceled or timed-out command has after SIGTERM before
    /// SIGKILL, in seconds.
    pub kill_grace_secs: f64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            consolidate: None,
            timeout_secs: 3600.0,
            dir: None,
            max_running: 2,
            kill_grace_secs: 5.0,
        }
    }
}

/// Why a running job is being stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    None,
    Cancel,
    Shutdown,
}

/// One job this server runs.
struct Running {
    stop: Mutex<Stop>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The jobs of one server process.
pub struct Runner {
    ops: Ops,
    config: Arc<Config>,
    /// Names this process in the `runner` column: host, pid and a nonce.
    token: String,
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Arc<Running>>>,
    /// Jobs holding a run slot.
    slots: (Mutex<usize>, Condvar),
    shutting_down: AtomicBool,
    /// The thread that keeps this runner's heartbeat (when it can run jobs).
    beating: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("token", &self.token)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether the runner `token` names is alive: on this host, a process that
/// is still there; on another host, one `heard_from` says beat lately (its
/// holder row in the database).
fn runner_alive(token: &str, me: &str, heard_from: impl Fn(&str) -> bool) -> bool {
    if token == me {
        return true;
    }
    let mut parts = token.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    if host != host_name() {
        return heard_from(token);
    }
    // Alive: the process is there and runs the same program (a pid reused
    // by another program does not keep a dead server's jobs running).
    let Ok(p) = pid.parse::<u32>() else {
        return false;
    };
    if p == std::process::id() {
        return false;
    }
    let exe = |pid: &str| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    match (exe(&p.to_string()), exe("self")) {
        (Some(theirs), Some(ours)) => theirs == ours,
        (Some(_), None) => true,
        // Not ours to read (another user's process): alive if it is there.
        (None, _) => Path::new(&format!("/proc/{p}")).exists(),
    }
}

/// A runner's heartbeat thread: beats `every` (a third of its TTL) until
/// the server stops or the runner is dropped, recovering the jobs of runners
/// that stopped beating; then removes the runner's row.
fn heartbeat(runner: std::sync::Weak<Runner>, every: Duration, ops: &Ops, token: &str) {
    let step = Duration::from_millis(100);
    'beats: loop {
        let until = Instant::now() + every;
        while Instant::now() < until {
            match runner.upgrade() {
                Some(r) if !r.shutting_down.load(Ordering::Relaxed) => {}
                _ => break 'beats,
            }
            std::thread::sleep(step.min(until.saturating_duration_since(Instant::now())));
        }
        let Some(r) = runner.upgrade() else {
            break;
        };
        if let Err(e) = ops.runner_heartbeat(token, r.ttl_ns()) {
            tracing::error!(error = %e, "cannot renew the dream runner's heartbeat");
        }
        if let Err(e) = r.recover() {
            tracing::error!(error = %e, "cannot recover the dreams of stopped servers");
        }
    }
    if let Err(e) = ops.runner_gone(token) {
        tracing::warn!(error = %e, "cannot remove the dream runner's heartbeat row");
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(1))
}

/// Where jobs' directories go unless configured: `jobs/` beside an SQLite
/// database; for a PostgreSQL URL (no directory of its own) a directory of
/// this host's temporary space, per user.
fn default_dir(database: &Path) -> PathBuf {
    if database.to_str().is_some_and(crate::store::is_url) {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        return std::env::temp_dir().join(format!("memfs-jobs-{uid}"));
    }
    database.parent().unwrap_or(Path::new(".")).join("jobs")
}

impl Runner {
    /// The runner of this server. Fails the jobs of runners that are gone
    /// (a server that crashed or was killed), cleaning up their directories.
    pub fn start(ops: Ops, config: Arc<Config>) -> anyhow::Result<Arc<Runner>> {
        let nonce = crate::store::new_api_id("")?;
        let token = format!("{}:{}:{}", host_name(), std::process::id(), &nonce[..8]);
        let dir = config
            .jobs
            .dir
            .clone()
            .unwrap_or_else(|| default_dir(&config.database));
        let runner = Arc::new(Runner {
            ops,
            config,
            token,
            dir,
            jobs: Mutex::new(HashMap::new()),
            slots: (Mutex::new(0), Condvar::new()),
            shutting_down: AtomicBool::new(false),
            beating: Mutex::new(None),
        });
        runner.recover()?;
        if runner.configured() {
            runner
                .ops
                .runner_heartbeat(&runner.token, runner.ttl_ns())?;
            let (beat, ops, token) = (
                Arc::downgrade(&runner),
                runner.ops.clone(),
                runner.token.clone(),
            );
            let every = Duration::from_nanos((runner.ttl_ns() / 3).max(1) as u64);
            let t = std::thread::Builder::new()
                .name("dream-heartbeat".into())
                .spawn(move || heartbeat(beat, every, &ops, &token))?;
            *runner.beating.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
        }
        Ok(runner)
    }

    /// How long this runner counts as alive after a heartbeat: a mount's
    /// lease TTL. Servers on other hosts fail its jobs after twice that.
    fn ttl_ns(&self) -> i64 {
        crate::store::ttl_ns(secs(self.config.daemon.lease_ttl_secs))
    }

    /// Fails the jobs of runners that are gone: on this host a server process
    /// that is no longer there, on another host one not heard from for two
    /// TTLs. Their commands are killed and their directories removed, as
    /// far as they are on this host.
    fn recover(&self) -> anyhow::Result<()> {
        let grace = self.ttl_ns();
        let heard_from = |t: &str| {
            // A database that cannot answer says nothing about the runner.
            self.ops.runner_heard_from(t, grace).unwrap_or(true)
        };
        let recovered = self
            .ops
            .recover_jobs(|t| runner_alive(t, &self.token, heard_from))?;
        for id in recovered {
            tracing::warn!(job = %id, "a dream's server stopped while it ran: marked failed");
            process::sweep(&id);
            self.clean_dir(&id);
        }
        Ok(())
    }

    /// What `create_job` records as the job's runner.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether a consolidation command is configured.
    pub fn configured(&self) -> bool {
        self.config.jobs.consolidate.is_some()
    }

    /// Runs job `id` (just created, pending) on a thread of its own.
    pub fn submit(self: &Arc<Self>, id: &str) {
        let running = Arc::new(Running {
            stop: Mutex::new(Stop::None),
            thread: Mutex::new(None),
        });
        self.lock_jobs().insert(id.to_string(), running.clone());
        let (me, job) = (self.clone(), id.to_string());
        let spawned = std::thread::Builder::new()
            .name("memfs-job".into())
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| me.clone().run(&job));
                if std::panic::catch_unwind(run).is_err() {
                    // A bug, not the command: end the job rather than leave it
                    // running forever (its mount went with the unwinding).
                    tracing::error!(job = %job, "a dream's thread panicked");
                    process::sweep(&job);
                    let outcome = Outcome::Failed(JobError::internal(
                        "the server failed while running the dream; see its log",
                    ));
                    let _ = me.ops.finish_job(&job, &outcome, &me.config, &me.dir);
                    me.clean_dir(&job);
                    let _ = me.ops.job_stopped(&job);
                    me.lock_jobs().remove(&job);
                }
            });
        match spawned {
            Ok(h) => *running.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(h),
            Err(e) => {
                tracing::error!(job = id, error = %e, "cannot start a dream's thread");
                self.lock_jobs().remove(id);
                let outcome = Outcome::Failed(JobError::internal("the server could not start it"));
                let _ = self.ops.finish_job(id, &outcome, &self.config, &self.dir);
                let _ = self.ops.job_stopped(id);
            }
        }
    }

    /// Stops job `id`'s command now (it was canceled).
    pub fn cancel(&self, id: &str) {
        if let Some(r) = self.lock_jobs().get(id) {
            *r.stop.lock().unwrap_or_else(|p| p.into_inner()) = Stop::Cancel;
        }
        self.slots.1.notify_all();
    }

    /// Stops every job (the server is stopping): each ends failed, its
    /// command killed and its mount gone, before this returns.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let all: Vec<Arc<Running>> = self.lock_jobs().values().cloned().collect();
        for r in &all {
            let mut s = r.stop.lock().unwrap_or_else(|p| p.into_inner());
            if *s == Stop::None {
                *s = Stop::Shutdown;
            }
        }
        self.slots.1.notify_all();
        for r in all {
            let t = r.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(t) = t {
                let _ = t.join();
            }
        }
        let beat = self
            .beating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = beat {
            let _ = t.join();
        }
    }

    fn lock_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Running>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why job `id` should stop: asked here, or canceled in the database
    /// (by `memfsctl jobs cancel` or another server).
    fn stop_of(&self, id: &str, check_db: bool) -> Stop {
        let asked = self
            .lock_jobs()
            .get(id)
            .map(|r| *r.stop.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or(Stop::None);
        if asked != Stop::None {
            return asked;
        }
        if check_db {
            if let Ok(Some(j)) = self.ops.job_row(id) {
                if j.status == "canceled" {
                    return Stop::Cancel;
                }
            }
        }
        Stop::None
    }

    fn clean_dir(&self, id: &str) {
        let d = self.dir.join(id);
        let mnt = d.join("mnt");
        if crate::daemon::is_mounted(&mnt) || crate::daemon::is_dead_mount(&mnt) {
            let _ = crate::daemon::unmount_path(&mnt, true);
        }
        if d.exists() {
            if let Err(e) = std::fs::remove_dir_all(&d) {
                tracing::warn!(job = id, error = %e, "cannot remove a dream's directory");
            }
        }
    }

    /// The job thread.
    fn run(self: Arc<Self>, id: &str) {
        let outcome = self.run_job(id);
        if let Some(outcome) = outcome {
            if let Err(e) = self
                .ops
                .finish_job(id, &outcome, &self.config, &self.dir.join(id))
            {
                tracing::error!(job = id, error = %e, "cannot end a dream");
            }
        }
        self.clean_dir(id);
        if let Err(e) = self.ops.job_stopped(id) {
            tracing::error!(job = id, error = %e, "cannot mark a dream stopped");
        }
        self.lock_jobs().remove(id);
        tracing::info!(job = id, "dream stopped");
    }

    /// Waits for a run slot, then runs the job. `None`: it never started
    /// (canceled while pending); nothing to finish but its stop.
    fn run_job(&self, id: &str) -> Option<Outcome> {
        // Wait for a slot, unless stopped first.
        {
            let (lock, cv) = &self.slots;
            let mut n = lock.lock().unwrap_or_else(|p| p.into_inner());
            let max = self.config.jobs.max_running.max(1);
            while *n >= max {
                match self.stop_of(id, true) {
                    Stop::None => {}
                    Stop::Cancel => return None,
                    Stop::Shutdown => return Some(shutdown_failure()),
                }
                n = cv
                    .wait_timeout(n, Duration::from_millis(500))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            *n += 1;
        }
        let outcome = self.run_started(id);
        {
            let (lock, cv) = &self.slots;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
            cv.notify_all();
        }
        outcome
    }

    fn run_started(&self, id: &str) -> Option<Outcome> {
        match self.stop_of(id, false) {
            Stop::Cancel => return None,
            Stop::Shutdown => return Some(shutdown_failure()),
            Stop::None => {}
        }
        let started = match self.ops.start_job(id, &self.token) {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(job = id, error = %e, "cannot start a dream");
                return Some(Outcome::Failed(JobError::internal(format!(
                    "cannot start: {e}"
                ))));
            }
        };
        tracing::info!(job = id, store = %started.store.name, draft = %started.draft.name,
            "dream running");
        Some(match self.execute(&started) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(job = id, error = %format!("{e:#}"), "a dream failed to run");
                Outcome::Failed(JobError::internal(format!("{e:#}")))
            }
        })
    }

    /// Writes the session logs, mounts the draft, runs the command to its end.
    fn execute(&self, s: &StartedJob) -> anyhow::Result<Outcome> {
        use anyhow::Context;
        let id = s.job.id.as_str();
        let Some(command) = self.config.jobs.consolidate.clone() else {
            return Ok(Outcome::Failed(JobError::internal(
                "no consolidation command is configured ([jobs] consolidate in memfs.toml)",
            )));
        };
        let dir = self.dir.join(id);
        let sessions = dir.join("sessions");
        std::fs::create_dir_all(&sessions)
            .with_context(|| format!("cannot create {}", sessions.display()))?;
        // The session logs name files and people: only the server's user
        // (whom the command runs as) reads them.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict {}", dir.display()))?;
        }
        for sid in &s.job.sessions {
            let entries = self.ops.session_log(s, sid)?;
            let mut text = String::new();
            for e in entries {
                text.push_str(&serde_json::to_string(&e)?);
                text.push('\n');
            }
            let file = sessions.join(format!("{}.jsonl", file_name_of(sid)));
            std::fs::write(&file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
        let mnt = dir.join("mnt");
        let mount = JobMount::mount(&self.config, &s.draft, &s.settings, &s.who, &mnt)?;
        let work = mnt.join(s.draft.dir_name());
        let env = vec![
            ("MEMFS_JOB_ID".to_string(), id.to_string()),
            ("MEMFS_JOB_DIR".into(), work.display().to_string()),
            ("MEMFS_JOB_SESSIONS".into(), sessions.display().to_string()),
            ("MEMFS_JOB_SESSION_IDS".into(), s.job.sessions.join("\n")),
            ("MEMFS_JOB_STORE".into(), s.store.name.clone()),
            ("MEMFS_JOB_STORE_ID".into(), s.store.api_id.clone()),
            ("MEMFS_JOB_MODEL".into(), s.job.model.id.clone()),
            (
                "MEMFS_JOB_INSTRUCTIONS".into(),
                s.job.instructions.clone().unwrap_or_default(),
            ),
            (
                "MEMFS_JOB_OUTPUT".into(),
                s.job.output_behavior.as_str().to_string(),
            ),
        ];
        let (out, err) = (dir.join("stdout.log"), dir.join("stderr.log"));
        let mut child = match process::spawn(&command, &work, &env, &out, &err) {
            Ok(c) => c,
            Err(e) => {
                drop(mount);
                return Ok(Outcome::Failed(JobError::internal(format!(
                    "cannot start the consolidation command: {e}"
                ))));
            }
        };
        let pgid = child.id();
        let timeout = secs(self.config.jobs.timeout_secs);
        let grace = secs(self.config.jobs.kill_grace_secs);
        let started = Instant::now();
        let mut last_db_check = Instant::now();
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    process::reap_leftovers(pgid, id);
                    break if status.success() {
                        Outcome::Succeeded
                    } else {
                        let how = match status.code() {
                            Some(c) => format!("exited with status {c}"),
                            None => "was killed by a signal".to_string(),
                        };
                        Outcome::Failed(JobError::internal(with_tail(
                            format!("the consolidation command {how}"),
                            &err,
                        )))
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    process::kill(&mut child, id, grace);
                    break Outcome::Failed(JobError::internal(format!(
                        "cannot wait for the consolidation command: {e}"
                    )));
                }
            }
            let check_db = last_db_check.elapsed() >= Duration::from_millis(500);
            if check_db {
                last_db_check = Instant::now();
            }
            match self.stop_of(id, check_db) {
                Stop::Cancel => {
                    process::kill(&mut child, id, grace);
                    break Outcome::Canceled;
                }
                Stop::Shutdown => {
                    process::kill(&mut child, id, grace);
                    break shutdown_failure();
                }
                Stop::None => {}
            }
            if started.elapsed() >= timeout {
                process::kill(&mut child, id, grace);
                break Outcome::Failed(JobError::timeout(with_tail(
                    format!(
                        "the consolidation command ran longer than {} s and was killed",
                        self.config.jobs.timeout_secs
                    ),
                    &err,
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Err(e) = mount.unmount() {
            tracing::warn!(job = id, error = %format!("{e:#}"), "cannot unmount a dream's draft cleanly");
        }
        Ok(outcome)
    }
}

/// A job stopped because the server stops.
fn shutdown_failure() -> Outcome {
    Outcome::Failed(JobError::internal(
        "the server stopped while the dream ran; start a new dream",
    ))
}

/// `what`, and the tail of the command's stderr if it wrote any.
fn with_tail(what: String, err: &Path) -> String {
    let tail = process::tail(err);
    if tail.is_empty() {
        what
    } else {
        format!("{what}; its stderr ends with: {tail}")
    }
}

/// A session id as a file name: `/` and NUL are replaced, and `.`/`..` avoided.
pub fn file_name_of(session: &str) -> String {
    let s: String = session
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if s == "." || s == ".." {
        format!("_{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::{default_dir, host_name, runner_alive};
    use std::path::Path;

    #[test]
    fn a_runner_elsewhere_is_alive_while_heard_from_and_one_here_while_its_process_is() {
        let me = format!("{}:{}:mine", host_name(), std::process::id());
        assert!(runner_alive(&me, &me, |_| false));
        // Another host: only its heartbeat can tell.
        assert!(runner_alive("elsewhere.example:7:aa", &me, |t| t
            == "elsewhere.example:7:aa"));
        assert!(!runner_alive("elsewhere.example:7:aa", &me, |_| false));
        // This host: the process decides, whatever the database says.
        let gone = format!("{}:{}:old", host_name(), u32::MAX - 1);
        assert!(!runner_alive(&gone, &me, |_| true));
        assert!(!runner_alive("not a token", &me, |_| true));
    }

    #[test]
    fn jobs_go_beside_an_sqlite_database_and_never_under_a_url() {
        assert_eq!(
            default_dir(Path::new("/var/lib/memfs/memfs.db")),
            Path::new("/var/lib/memfs/jobs")
        );
        let pg = default_dir(Path::new("postgres://memfs@db.internal/memfs"));
        assert!(pg.starts_with(std::env::temp_dir()), "{}", pg.display());
        assert!(!pg.to_string_lossy().contains("postgres:"));
    }
}

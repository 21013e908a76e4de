//! A job's command as a process group: started in a group of its own (and
//! killed with the server if the server dies), killed as a group, and swept:
//! any process left that carries the job's `MEMFS_JOB_ID` in its environment
//! (one that left the group) is killed too, so a job never leaves a process
//! behind.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How much of the command's stderr a failed job's error quotes.
pub const STDERR_TAIL_BYTES: u64 = 2000;

/// Starts `sh -c COMMAND` in `cwd` with `env`, in a new process group, its
/// output appended to `out` and `err`.
pub fn spawn(
    command: &str,
    cwd: &Path,
    env: &[(String, String)],
    out: &Path,
    err: &Path,
) -> std::io::Result<Child> {
    let stdout = std::fs::File::create(out)?;
    let stderr = std::fs::File::create(err)?;
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(command)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // SAFETY: only async-signal-safe calls (setpgid, prctl) between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // If the server dies, so does the command (the server's restart
            // fails the job, and nothing keeps writing to its draft).
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.spawn()
}

/// Sends `sig` to process group `pgid` (ESRCH: nothing left, fine).
fn signal_group(pgid: u32, sig: libc::c_int) {
    if let Ok(p) = libc::pid_t::try_from(pgid) {
        if p > 1 {
            // SAFETY: a plain kill(2) of a negative pid (a process group).
            unsafe { libc::kill(-p, sig) };
        }
    }
}

/// Whether process group `pgid` still has a member.
fn group_alive(pgid: u32) -> bool {
    match libc::pid_t::try_from(pgid) {
        // SAFETY: signal 0 only checks for existence.
        Ok(p) if p > 1 => unsafe { libc::kill(-p, 0) == 0 },
        _ => false,
    }
}

/// Ends the command: SIGTERM to its group, then SIGKILL after `grace` if
/// anything is left, reaps the child, and sweeps stragglers of job `job_id`.
pub fn kill(child: &mut Child, job_id: &str, grace: Duration) {
    let pgid = child.id();
    signal_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited && !group_alive(pgid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_group(pgid, libc::SIGKILL);
    let _ = child.wait();
    sweep(job_id);
}

/// Kills what is left of a finished command: its group and any process of
/// job `job_id` elsewhere.
pub fn reap_leftovers(pgid: u32, job_id: &str) {
    signal_group(pgid, libc::SIGKILL);
    sweep(job_id);
}

/// Kills (SIGKILL) every process whose environment holds
/// `MEMFS_JOB_ID=job_id`. Returns how many were found.
pub fn sweep(job_id: &str) -> usize {
    let want = format!("MEMFS_JOB_ID={job_id}");
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|v| v == want.as_bytes()) {
            n += 1;
            if let Ok(p) = libc::pid_t::try_from(pid) {
                // SAFETY: a plain kill(2) of one process.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
    n
}

/// The last [`STDERR_TAIL_BYTES`] of `path` as text, with secrets and PII
/// the scanner finds replaced by `[REDACTED:kind]`.
pub fn tail(path: &Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(STDERR_TAIL_BYTES);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(STDERR_TAIL_BYTES).read_to_end(&mut buf);
    let findings = crate::scan::pii::scan(&buf);
    let clean = crate::scan::pii::redact(&buf, &findings);
    let text = String::from_utf8_lossy(&clean);
    let text = text.trim();
    if from > 0 {
        format!("...{text}")
    } else {
        text.to_string()
    }
}

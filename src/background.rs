//! `memfs mount --background` and the mount helper: start the daemon again as a
//! child in its own session (so a closing terminal or mount(8) returning does
//! not take it down) and return once it serves, or fail with its exit status.
//!
//! The child is this same program with the same arguments, minus
//! `--background`, and `$MEMFS_READY_FD=1`: its stdout is a pipe on which it
//! writes one ready line once mounted ([`crate::notify::ready`]). Its stderr is
//! ours, so an error before it is ready shows where the command was typed (or in
//! the journal of a systemd mount unit); `--log-file` moves its logs to a file
//! once it runs.

use crate::notify::{READY_FD_VAR, READY_LINE};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Runs `memfs ARGS...` as a detached daemon and waits until it is ready.
/// Returns its pid.
pub fn spawn_ready(args: &[OsString]) -> Result<u32> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut cmd = Command::new(&exe);
    cmd.args(args)
        .env(READY_FD_VAR, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let pid = child.id();
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        // End of file without the line means the child exited (or closed it).
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    if line.trim_end() == READY_LINE {
        // The child lives on; once this process exits, init reaps it.
        return Ok(pid);
    }
    let status = child.wait().context("cannot wait for the daemon")?;
    bail!("the daemon exited before it was ready ({status})")
}

/// This process's arguments (after argv[0]) without `--background`.
pub fn args_without_background() -> Vec<OsString> {
    std::env::args_os()
        .skip(1)
        .filter(|a| a != "--background")
        .collect()
}

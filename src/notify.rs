//! Telling whoever started the daemon that it is ready (or stopping): systemd's
//! notify protocol, a datagram to the unix socket in `$NOTIFY_SOCKET` (see
//! sd_notify(3); a few lines, no crate), and the pipe that `memfs mount
//! --background` and the mount helper wait on (`$MEMFS_READY_FD`).

use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixDatagram;

/// The variable naming the descriptor a background parent waits on.
pub const READY_FD_VAR: &str = "MEMFS_READY_FD";
/// What the daemon writes on that descriptor once it serves.
pub const READY_LINE: &str = "READY";

/// Sends one notification (`KEY=VALUE` lines) to `$NOTIFY_SOCKET`, if set.
/// Returns whether one was sent. An abstract socket is written `@name`.
pub fn sd_notify(state: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET").filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), &path)?;
    }
    Ok(true)
}

/// Says the daemon serves: `READY=1` with a status line to systemd, and the
/// ready line on `$MEMFS_READY_FD` (after which that descriptor is closed, or
/// pointed at /dev/null if it is stdout). Best effort: a supervisor that went
/// away must not stop the daemon.
pub fn ready(status: &str) {
    let msg = format!("READY=1\nSTATUS={status}\nMAINPID={}", std::process::id());
    if let Err(e) = sd_notify(&msg) {
        tracing::warn!(error = %e, "cannot notify systemd of readiness");
    }
    if let Some(fd) = std::env::var(READY_FD_VAR)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    {
        // Children of the daemon (none today) must not inherit a stale number.
        std::env::remove_var(READY_FD_VAR);
        signal_ready_fd(fd);
    }
}

/// Tells systemd the daemon is stopping (before the unmount).
pub fn stopping() {
    let _ = sd_notify("STOPPING=1");
}

fn signal_ready_fd(fd: RawFd) {
    if fd == libc::STDOUT_FILENO {
        let _ = writeln!(std::io::stdout(), "{READY_LINE}");
        let _ = std::io::stdout().flush();
        // Keep descriptor 1 valid (anything printing later must not fail or hit
        // another file), but let the waiting parent see end-of-file.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: dup2 onto stdout, which this process owns; `null` stays
            // open for the duration of the call.
            unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
        }
    } else if fd > libc::STDERR_FILENO {
        // SAFETY: the parent created this descriptor for us alone and nothing
        // else in this process owns it; the File closes it when dropped.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        let _ = writeln!(f, "{READY_LINE}");
    }
}

/// Points this process's stderr at `path` (appending), so that logs go to a
/// file once the daemon runs in the background.
pub fn redirect_stderr(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // SAFETY: dup2 onto stderr, which this process owns; `f` is open.
    if unsafe { libc::dup2(f.as_raw_fd(), libc::STDERR_FILENO) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_reaches_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        // Only this test sets NOTIFY_SOCKET, and it reads it back at once.
        let sent = with_socket(&path, || sd_notify("READY=1\nSTATUS=test")).unwrap();
        assert!(sent);
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=test");
    }

    fn with_socket<T>(path: &std::path::Path, f: impl FnOnce() -> T) -> T {
        // Only this test touches NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", path);
        let out = f();
        std::env::remove_var("NOTIFY_SOCKET");
        out
    }
}

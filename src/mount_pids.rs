//! Which `memfs mount` daemons serve a mountpoint, read from /proc, so that
//! `memfs umount` returns only once they have finished (released their
//! leases and locks, left the database's list of live mounts): what comes
//! next, such as `memfsctl migrate-db` or a backup, then finds them gone.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The pids of `memfs mount` processes (other than this one) whose
/// mountpoint is `mp` (absolute), from their arguments or `MEMFS_MOUNTPOINT`.
pub fn daemons_of(mp: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && serves(pid, mp))
        .collect()
}

fn serves(pid: i32, mp: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let is_memfs = args.first().is_some_and(|a0| {
        Path::new(std::ffi::OsStr::from_bytes(a0)).file_name() == Some("memfs".as_ref())
    });
    if !is_memfs || !args.iter().any(|a| *a == b"mount") {
        return false;
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_else(|_| PathBuf::from("/"));
    let names_mp = |a: &[u8]| {
        let p = Path::new(std::ffi::OsStr::from_bytes(a));
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        normal(&abs) == mp
    };
    if args
        .iter()
        .skip(1)
        .any(|a| !a.starts_with(b"-") && names_mp(a))
    {
        return true;
    }
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|&b| b == 0)
            .filter_map(|kv| kv.strip_prefix(b"MEMFS_MOUNTPOINT="))
            .any(names_mp)
    })
}

/// `p` without `.` and `..` components (lexically; the mountpoint may be dead).
fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Waits until none of `pids` runs (a zombie counts as gone), at most
/// `limit`. Whether they all went.
pub fn wait_gone(pids: &[i32], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if pids.iter().all(|&pid| !running(pid)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // The state follows the command name in parentheses, which may hold spaces.
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_lexically() {
        assert_eq!(normal(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }

    #[test]
    fn this_process_is_running_and_a_free_pid_is_not() {
        assert!(running(std::process::id() as i32));
        assert!(!running(i32::MAX));
        assert!(wait_gone(&[i32::MAX], Duration::ZERO));
    }
}

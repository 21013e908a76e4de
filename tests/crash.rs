//! Crash safety: the daemon is killed with SIGKILL at arbitrary moments while a
//! process writes, appends, replaces (temp file + rename), renames, unlinks and
//! makes directories; then the database is checked with `memfsctl fsck`.
//!
//! What this guards: every change must be one transaction. If a commit wrote its
//! version row before its chunks, or moved the head before the version existed,
//! or audited a change that did not happen, a kill between the two would leave a
//! version that does not read back with its hash, a head that is not the newest
//! committed version, a name count that disagrees with nlink, or a broken audit
//! chain: `fsck` checks each of these, plus SQLite's own integrity check.

mod common;

use common::*;
use std::process::Stdio;
use std::time::Duration;

/// A writer that keeps changing files until its filesystem goes away.
const WORKLOAD: &str = r#"
exec python3 - <<'PY'
import errno, os, random
r = random.Random(os.getpid())
os.makedirs("w", exist_ok=True)
i = 0
while True:
    i += 1
    name = "w/f%d" % r.randrange(20)
    try:
        k = r.randrange(7)
        if k == 0:
            with open(name, "w") as f:
                f.write(("x%d " % i) * r.randrange(1, 5000))
        elif k == 1:
            with open(name, "a") as f:
                f.write("line %d\n" % i)
        elif k == 2:
            tmp = "w/.tmp%d" % i
            with open(tmp, "w") as f:
                f.write(os.urandom(r.randrange(1, 100000)).hex())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, name)
        elif k == 3:
            os.rename(name, "w/f%d" % r.randrange(20))
        elif k == 4:
            os.unlink(name)
        elif k == 5:
            os.makedirs("w/d%d/e" % r.randrange(5), exist_ok=True)
        else:
            with open(name, "r+") as f:
                f.seek(r.randrange(100))
                f.write("edit %d" % i)
    except (FileNotFoundError, IsADirectoryError, FileExistsError):
        pass
    except OSError as e:
        if e.errno in (errno.ENOTCONN, errno.EIO, errno.ENODEV):
            break
        raise
PY
"#;

fn rounds() -> u32 {
    std::env::var("MEMFS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

#[test]
fn sigkill_during_writes_leaves_only_whole_versions() {
    let env = Env::new();
    let n = rounds();
    for round in 0..n {
        let mut m = env.mount("crasher", &format!("round-{round}"), None, &["kb"]);
        let kb = m.store("kb");
        let mut cmd = bash(&kb, WORKLOAD);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let worker = ChildGuard(cmd.spawn().expect("start the workload"));
        // Kill at a different moment each round (40..400 ms into the workload).
        let delay = 40 + (u64::from(round) * 7919) % 360;
        std::thread::sleep(Duration::from_millis(delay));
        m.kill9();
        drop(worker);
        // An operator cleans the dead mount up.
        let out = env.umount(m.path());
        assert_success("memfs umount of the dead mount", &out);
        assert!(!m.is_mounted(), "round {round}: dead mount left behind");
        drop(m);
        let out = env.run(env.memfsctl().arg("fsck"));
        assert_success(&format!("fsck after crash round {round}"), &out);
    }
    // Every file reads back through a new daemon.
    let m = env.mount("reader", "after", None, &["kb"]);
    let listing = sh(
        &m.store("kb"),
        "find . -type f | wc -l; find . -type f -exec cat {} + | wc -c",
    );
    eprintln!(
        "{n} crash rounds survived; files and bytes afterwards: {}",
        listing.replace('\n', " ")
    );
    let fsck = env.ctl(&["fsck"]);
    eprintln!(
        "fsck: {} versions checked, {} files, {} audit entries",
        fsck["versions_checked"], fsck["files_checked"], fsck["audit_entries"]
    );
    assert!(
        fsck["versions_checked"].as_u64().unwrap_or(0) > 0,
        "the workload wrote nothing"
    );
}

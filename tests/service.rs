//! Starting memfs as a service: `memfs mount --background` returns once the
//! mount serves; under systemd the daemon says READY=1 (and STOPPING=1) on
//! $NOTIFY_SOCKET; mount(8) mounts through `mount.fuse.memfs`, from the command
//! line and from an fstab line; the unit files pass `systemd-analyze verify`;
//! JSON logs are one object per line.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills (by pid) any daemon still running on this test's database when
/// dropped: background daemons are not our children, and a failing test must
/// not leave one behind. Unmounts what is left at `mounts` first.
struct Daemons<'a> {
    db: &'a Path,
    mounts: Vec<PathBuf>,
}

impl Daemons<'_> {
    fn pids(&self) -> Vec<i32> {
        let want = self.db.as_os_str().as_encoded_bytes();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    c.windows(want.len()).any(|w| w == want) && c.starts_with(MEMFS.as_bytes())
                })
            })
            .collect()
    }

    /// Waits until no daemon of this database runs (they exit after an unmount).
    fn wait_gone(&self) -> bool {
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if self.pids().is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Daemons<'_> {
    fn drop(&mut self) {
        for m in &self.mounts {
            if is_mounted(m) {
                let _ = Command::new(MEMFS).arg("umount").arg(m).status();
            }
        }
        if !self.wait_gone() {
            for pid in self.pids() {
                eprintln!("killing leftover daemon {pid}");
                // SAFETY: kill(2) on a pid whose command line names this test's database.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn mount_background_returns_once_the_mount_serves() {
    let env = Env::new();
    let mp = env.scratch("bg");
    let guard = Daemons {
        db: &env.db,
        mounts: vec![mp.clone()],
    };
    let out = env.run(
        env.memfs()
            .arg("mount")
            .arg(&mp)
            .args(["--agent", "bg-agent", "--session", "s1", "--background"])
            .arg("--log-file")
            .arg(env.path().join("bg.log")),
    );
    assert_success("memfs mount --background", &out);
    // No waiting: the command returned, so the mount serves.
    assert!(is_mounted(&mp), "not mounted when --background returned");
    sh(&mp, "echo hello > kb/hi && cat kb/hi");
    assert_eq!(guard.pids().len(), 1, "one daemon runs");
    assert_success("memfs umount", &env.umount(&mp));
    // `memfs umount` returns once the daemon has finished (so a migration or
    // backup right after finds no live mount): no waiting here either.
    assert!(
        guard.pids().is_empty(),
        "memfs umount returned before its daemon exited"
    );
    // Attributed to the mount's agent (init's own entries come first).
    assert!(env
        .store_log("kb")
        .iter()
        .any(|e| s(e, "op") == Some("create") && s(e, "agent") == Some("bg-agent")));

    // A refused mount fails the command with the daemon's error.
    let out = env.run(env.memfs().arg("mount").arg(&mp).args([
        "--agent",
        "a",
        "--session",
        "s",
        "--store",
        "nope",
        "--background",
    ]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no store named 'nope'"), "{err}");
    assert!(!is_mounted(&mp));
}

#[test]
fn under_systemd_the_daemon_notifies_ready_and_stopping_and_logs_json() {
    let env = Env::new();
    let mp = env.scratch("notify");
    let guard = Daemons {
        db: &env.db,
        mounts: vec![mp.clone()],
    };
    let sock_path = env.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(DAEMON_DEADLINE))
        .expect("timeout");
    let log = env.path().join("daemon.log");
    // As memfs@.service runs it: arguments from the environment.
    let mut child = ChildGuard(
        env.memfs()
            .arg("mount")
            .env("MEMFS_MOUNTPOINT", &mp)
            .env("MEMFS_AGENT", "unit-agent")
            .env("MEMFS_SESSION", "boot")
            .env("MEMFS_STORES", "kb,alice:ro")
            .env("MEMFS_USER", "alice")
            .env("NOTIFY_SOCKET", &sock_path)
            .env("MEMFS_LOG_FORMAT", "json")
            .env("RUST_LOG", "memfs=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn memfs mount"),
    );
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a READY notification");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        msg.contains("READY=1") && msg.contains("STATUS=mounted kb, alice:ro"),
        "{msg}"
    );
    assert!(msg.contains(&format!("MAINPID={}", child.0.id())), "{msg}");
    assert!(is_mounted(&mp), "not mounted at READY=1");
    sh(&mp, "echo x > kb/f && ! echo y > alice/g 2>/dev/null");
    // SIGTERM, as systemctl stop sends it.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let n = sock.recv(&mut buf).expect("a STOPPING notification");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let status = child.0.wait().expect("daemon exits");
    assert!(status.success(), "daemon exited with {status}");
    assert!(!is_mounted(&mp));
    drop(guard);
    let text = std::fs::read_to_string(&log).expect("daemon log");
    let json_lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        json_lines.iter().any(|l| l["message"] == "mounted"
            && l["agent"] == "unit-agent"
            && l["level"] == "INFO"),
        "no JSON 'mounted' line in:\n{text}"
    );
}

#[test]
fn mount_dash_t_and_an_fstab_line_mount_through_the_helper() {
    let env = Env::new();
    let (m1, m2) = (env.scratch("m1"), env.scratch("m2"));
    let _guard = Daemons {
        db: &env.db,
        mounts: Vec::new(),
    };
    // mount(8) looks for helpers in /sbin only: inside a private mount
    // namespace, a directory holding mount.fuse.memfs is put over it.
    let sbin = env.scratch("sbin");
    std::os::unix::fs::symlink(MEMFS, sbin.join("mount.fuse.memfs")).expect("helper link");
    let sbin_dir = std::fs::canonicalize("/sbin").expect("/sbin");
    let fstab = env.path().join("fstab");
    let opts = |agent: &str, session: &str| {
        format!(
            "agent={agent},session={session},config={},db={}",
            env.config.display(),
            env.db.display()
        )
    };
    std::fs::write(
        &fstab,
        format!(
            "memfs#kb {} fuse.memfs {},_netdev,noauto,x-systemd.automount 0 0\n",
            m2.display(),
            opts("fstab-agent", "s2")
        ),
    )
    .expect("write fstab");
    let script = format!(
        r#"
        # Drop this namespace's copies of other FUSE mounts at once, so their
        # daemons are not kept alive by us.
        awk '$3 ~ /^fuse/ {{ print $2 }}' /proc/self/mounts | xargs -r -n1 umount -l 2>/dev/null || true
        trap 'umount -l {m1} 2>/dev/null || true; umount -l {m2} 2>/dev/null || true' EXIT
        mount --bind {sbin} {sbin_dir}
        mount -t fuse.memfs 'memfs#kb' {m1} -o {o1}
        echo one > {m1}/kb/from-dash-t
        mount -T {fstab} {m2}
        cat {m2}/kb/from-dash-t
        echo two > {m2}/kb/from-fstab
        grep -c ' fuse' /proc/self/mounts
        umount {m1}
        umount {m2}
        "#,
        m1 = m1.display(),
        m2 = m2.display(),
        sbin = sbin.display(),
        sbin_dir = sbin_dir.display(),
        o1 = opts("helper-agent", "s1"),
        fstab = fstab.display(),
    );
    let out = run_with_deadline(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "bash",
                "-euo",
                "pipefail",
                "-c",
            ])
            .arg(&script),
        COMMAND_DEADLINE,
    );
    assert_success("mount -t fuse.memfs and mount from fstab", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("one\n2\n"), "{stdout}");
    let log = env.store_log("kb");
    let writer = |path: &str| {
        log.iter()
            .find(|e| s(e, "op") == Some("write") && s(e, "path") == Some(path))
            .and_then(|e| s(e, "agent"))
            .map(str::to_string)
    };
    assert_eq!(writer("from-dash-t").as_deref(), Some("helper-agent"));
    assert_eq!(writer("from-fstab").as_deref(), Some("fstab-agent"));

    // A bad option fails like a mount(8) failure, and mounts nothing.
    let out = env.run(
        Command::new(sbin.join("mount.fuse.memfs"))
            .arg("memfs#kb")
            .arg(&m1)
            .args(["-o", "agent=a,session=s,colour=blue"]),
    );
    assert_eq!(out.status.code(), Some(32));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mount option 'colour=blue'"));
}

#[test]
fn the_unit_files_pass_systemd_analyze_verify() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed (scripts/setup.sh installs systemd)");
        return;
    };
    if !probe.status.success() {
        eprintln!("SKIPPED: systemd-analyze cannot run here");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    for unit in ["memfs@.service", "memfs-serve.service"] {
        // The units name the installed binary; verify against the one built here
        // (verify checks that ExecStart is executable).
        let text = std::fs::read_to_string(src.join(unit)).expect("read unit");
        std::fs::write(
            dir.path().join(unit),
            text.replace("/usr/local/bin/memfs", MEMFS),
        )
        .expect("write unit");
    }
    let out = run_with_deadline(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join("memfs@team-kb.service"))
            .arg(dir.path().join("memfs-serve.service")),
        COMMAND_DEADLINE,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() && text.contains("System has not been booted with systemd") {
        eprintln!("SKIPPED: systemd-analyze verify needs systemd here: {text}");
        return;
    }
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{text}"
    );
    // Unknown keys and bad values are warnings only: there must be none.
    assert!(
        text.trim().is_empty(),
        "systemd-analyze verify warned:\n{text}"
    );
}

#[test]
fn doctor_passes_here_and_names_the_fix_when_something_is_wrong() {
    let env = Env::new();
    let out = env.run(env.memfs().args(["doctor", "--json"]));
    let checks: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
    for name in ["/dev/fuse", "config", "database", "schema", "free space"] {
        let c = checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check in {checks:?}"));
        assert_eq!(c["status"], "ok", "{c}");
    }
    // The mounts check looks at the whole machine: a dead memfs mount left by
    // something else here fails it (rightly), but none of this test's may.
    let mounts = checks
        .iter()
        .find(|c| c["check"] == "mounts")
        .unwrap_or_else(|| panic!("no mounts check in {checks:?}"));
    let mine = env.path().display().to_string();
    let detail = mounts["detail"].as_str().unwrap_or_default();
    if mounts["status"] == "ok" {
        assert_success("memfs doctor", &out);
    } else {
        assert!(!detail.contains(&mine), "{mounts}");
        assert!(!out.status.success(), "a failed check exits non-zero");
    }
    // A database that does not exist, and an encrypted store without its key.
    let out = env.run(
        Command::new(MEMFS)
            .arg("--config")
            .arg(&env.config)
            .arg("--db")
            .arg(env.path().join("missing.db"))
            .args(["doctor"]),
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL  database") && text.contains("fix: run `memfs init`"),
        "{text}"
    );
    let keys = tempfile::tempdir().expect("key dir");
    let key = keys.path().join("master.key");
    assert_success(
        "memfsctl key generate",
        &env.run(Command::new(MEMFSCTL).args(["key", "generate"]).arg(&key)),
    );
    let keyed = env.path().join("keyed.toml");
    std::fs::write(
        &keyed,
        format!("key_file = {:?}\n", key.display().to_string()),
    )
    .expect("config");
    let ctl = |config: &Path, args: &[&str]| {
        let mut c = Command::new(MEMFSCTL);
        c.arg("--config")
            .arg(config)
            .arg("--db")
            .arg(&env.db)
            .args(args);
        env.run(&mut c)
    };
    assert_success(
        "store create",
        &ctl(&keyed, &["store", "create", "secret", "--scope", "org"]),
    );
    let plain = env.path().join("plain.toml");
    std::fs::write(&plain, "").expect("config");
    let out = env.run(
        Command::new(MEMFS)
            .arg("--config")
            .arg(&plain)
            .arg("--db")
            .arg(&env.db)
            .args(["doctor"]),
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL  keys")
            && text.contains("no master key configured")
            && text.contains("set key_file"),
        "{text}"
    );
}

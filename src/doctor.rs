//! `memfs doctor`: checks what a host needs to run memfs (`/dev/fuse`,
//! `fusermount3`, permissions, the database, key files, free space, dead
//! mounts) and says how to fix each problem. Changes nothing.

use crate::config::Config;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something should be looked at.
    Warn,
    /// memfs cannot work (or work safely) until it is fixed.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it (empty when all is well).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

fn ok(check: &'static str, detail: impl Into<String>) -> Check {
    Check {
        check,
        status: Status::Ok,
        detail: detail.into(),
        fix: String::new(),
    }
}

fn bad(
    check: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        check,
        status,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// Free space under which batching stops (see `store::batch`) and writes
/// soon fail: a failure. Under [`LOW_SPACE`]: a warning.
const MIN_SPACE: u64 = 256 << 20;
const LOW_SPACE: u64 = 1 << 30;

/// Runs every check. `config` is the loaded configuration, or why it could
/// not be loaded (then the checks that need it are skipped).
pub fn run(config: Result<&Config, String>, config_path: &str) -> Vec<Check> {
    let root = is_root();
    let mut out = vec![dev_fuse(), fusermount(root)];
    if !root {
        out.push(fuse_conf());
    }
    let config = match config {
        Ok(c) => {
            out.push(ok(
                "config",
                format!("{config_path}: {} store(s) declared", c.stores.len()),
            ));
            c
        }
        Err(e) => {
            out.push(bad(
                "config",
                Status::Fail,
                e,
                "fix the file (memfs.toml in the repository documents every key), or point \
                 --config / MEMFS_CONFIG at the right one",
            ));
            return out;
        }
    };
    let info = database(config, &mut out);
    keys(config, info.as_ref(), &mut out);
    if !config.database.to_str().is_some_and(crate::store::is_url) {
        out.push(free_space(&config.database));
    }
    if let Some(dir) = &config.daemon.spill_dir {
        out.push(spill_dir(dir));
    }
    out.push(dead_mounts());
    out
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether this process may read and write `path` (access(2), real ids).
fn access(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

fn dev_fuse() -> Check {
    const C: &str = "/dev/fuse";
    let path = Path::new("/dev/fuse");
    match std::fs::metadata(path) {
        Err(_) => bad(
            C,
            Status::Fail,
            "missing",
            "load the module (`modprobe fuse`); in a container, pass the device (docker run \
             --device /dev/fuse --cap-add SYS_ADMIN)",
        ),
        Ok(m) if !m.file_type().is_char_device() => bad(
            C,
            Status::Fail,
            "exists but is not a character device",
            "remove it and load the fuse module (`modprobe fuse`), or recreate it: mknod \
             /dev/fuse c 10 229",
        ),
        Ok(_) => match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(_) => ok(C, "character device, opens read-write"),
            Err(e) => bad(
                C,
                Status::Fail,
                format!("cannot open read-write: {e}"),
                "run as root, or give this user access (mode 0666 is the usual default: chmod \
                 666 /dev/fuse)",
            ),
        },
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn fusermount(root: bool) -> Check {
    const C: &str = "fusermount3";
    match which("fusermount3") {
        None if root => bad(
            C,
            Status::Warn,
            "not installed (root mounts without it, but `memfs umount` of another user's \
             mount and non-root mounts need it)",
            "apt-get install fuse3",
        ),
        None => bad(C, Status::Fail, "not installed", "apt-get install fuse3"),
        Some(p) => {
            let setuid = std::fs::metadata(&p)
                .is_ok_and(|m| m.permissions().mode() & 0o4000 != 0 && m.uid() == 0);
            if setuid || root {
                ok(C, p.display().to_string())
            } else {
                bad(
                    C,
                    Status::Fail,
                    format!(
                        "{} is not setuid root, so this user cannot mount",
                        p.display()
                    ),
                    format!(
                        "chown root {0} && chmod u+s {0} (or reinstall fuse3)",
                        p.display()
                    ),
                )
            }
        }
    }
}

fn fuse_conf() -> Check {
    const C: &str = "/etc/fuse.conf";
    let text = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    if text.lines().any(|l| l.trim() == "user_allow_other") {
        ok(C, "user_allow_other is set")
    } else {
        bad(
            C,
            Status::Fail,
            "user_allow_other is not set: memfs mounts with allow_other (agents often run as \
             another uid), which only root may do without it",
            "add a line `user_allow_other` to /etc/fuse.conf, or run memfs as root",
        )
    }
}

fn database(config: &Config, out: &mut Vec<Check>) -> Option<crate::store::inspect::DbInfo> {
    const C: &str = "database";
    let db = &config.database;
    if let Some(url) = db.to_str().filter(|u| crate::store::is_url(u)) {
        return match crate::store::postgres::inspect(url) {
            Ok(info) => {
                out.push(ok(C, format!("PostgreSQL at {url} answers")));
                schema_and_stores(config, &info, out);
                Some(info)
            }
            Err(e) => {
                out.push(bad(
                    C,
                    Status::Fail,
                    format!("cannot reach PostgreSQL at {url}: {e}"),
                    "check the URL (host, port, user, database, sslmode) and that the server runs"
                        .to_string(),
                ));
                None
            }
        };
    }
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !db.exists() {
        let fix = if dir.exists() && !access(dir, libc::W_OK) {
            format!(
                "{} is not writable for this user: run as the database's owner, then `memfs init`",
                dir.display()
            )
        } else {
            "run `memfs init` (it creates the database and the stores memfs.toml declares)".into()
        };
        out.push(bad(
            C,
            Status::Fail,
            format!("{} does not exist", db.display()),
            fix,
        ));
        return None;
    }
    if !access(db, libc::R_OK | libc::W_OK) || !access(dir, libc::W_OK) {
        out.push(bad(
            C,
            Status::Fail,
            format!(
                "{} (or its directory, where the WAL, -shm and -want files live) is not \
                 writable for this user",
                db.display()
            ),
            format!(
                "run memfs as the owner of {} (or chown the file and its directory)",
                dir.display()
            ),
        ));
    }
    let info = match crate::store::inspect::inspect(db) {
        Ok(i) => i,
        Err(e) => {
            out.push(bad(
                C,
                Status::Fail,
                format!("{}: cannot be read: {e}", db.display()),
                "check that it is a memfs database; restore a backup with `memfsctl restore \
                 BACKUP --db NEWPATH` if it is damaged",
            ));
            return None;
        }
    };
    out.push(if info.quick_check == "ok" {
        ok(
            C,
            format!(
                "{}: reachable, quick_check ok, {} store(s)",
                db.display(),
                info.stores.len()
            ),
        )
    } else {
        bad(
            C,
            Status::Fail,
            format!("{}: quick_check: {}", db.display(), info.quick_check),
            "the file is damaged: stop the mounts, keep a copy, and restore the newest backup \
             (`memfsctl restore BACKUP --db NEWPATH`); `memfsctl fsck` says more",
        )
    });
    schema_and_stores(config, &info, out);
    if info.auto_vacuum != "incremental" {
        out.push(bad(
            "auto_vacuum",
            Status::Warn,
            format!(
                "{}: gc frees pages but the file cannot shrink",
                info.auto_vacuum
            ),
            "once, with the mounts stopped: `memfsctl gc --vacuum` (a full VACUUM that switches \
             the database to incremental auto-vacuum)",
        ));
    }
    Some(info)
}

/// The schema version against this memfs's, and the stores memfs.toml
/// declares that the database lacks (both engines).
fn schema_and_stores(config: &Config, info: &crate::store::inspect::DbInfo, out: &mut Vec<Check>) {
    if info.schema == 0 {
        out.push(bad(
            "schema",
            Status::Fail,
            "no memfs tables: the database is empty".to_string(),
            "run `memfs init` (it creates memfs's tables and the stores memfs.toml declares)",
        ));
        return;
    }
    out.push(if info.schema > info.known_schema {
        bad(
            "schema",
            Status::Fail,
            format!(
                "version {} is newer than this memfs ({})",
                info.schema, info.known_schema
            ),
            "upgrade memfs (a newer one wrote this database)",
        )
    } else if info.schema < info.known_schema {
        bad(
            "schema",
            Status::Warn,
            format!(
                "version {}, this memfs writes {}",
                info.schema, info.known_schema
            ),
            "it is migrated the next time memfs opens it (memfs init, a mount, memfsctl); take \
             a backup first (`memfsctl backup PATH`)",
        )
    } else {
        ok("schema", format!("version {}", info.schema))
    });
    let missing: Vec<&str> = config
        .stores
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !info.stores.iter().any(|s| s == n))
        .collect();
    if !missing.is_empty() {
        out.push(bad(
            "stores",
            Status::Warn,
            format!(
                "declared in the config but not in the database: {}",
                missing.join(", ")
            ),
            "run `memfs init` to create them",
        ));
    }
}

fn keys(config: &Config, info: Option<&crate::store::inspect::DbInfo>, out: &mut Vec<Check>) {
    const C: &str = "keys";
    let keyed = info.map_or(&[][..], |i| &i.keyed_stores[..]);
    let Some((key, ring)) = crate::keys::paths(config) else {
        if !keyed.is_empty() {
            out.push(bad(
                C,
                Status::Fail,
                format!(
                    "{} encrypted store(s) and no master key configured",
                    keyed.len()
                ),
                "set key_file in memfs.toml (or MEMFS_KEY_FILE) to the key file these stores \
                 were created with",
            ));
        }
        return;
    };
    let master = match crate::keys::read_key_file(&key) {
        Ok(k) => k,
        Err(e) => {
            out.push(bad(
                C,
                Status::Fail,
                e.to_string(),
                "point key_file at the right file; `memfsctl key generate PATH` makes a new one \
                 (only for a database without encrypted stores)",
            ));
            return;
        }
    };
    match crate::store::keyring::load(&ring, &master) {
        Ok(None) if keyed.is_empty() => out.push(ok(
            C,
            format!(
                "{}: ok; keyring {} is created with the first encrypted store",
                key.display(),
                ring.display()
            ),
        )),
        Ok(None) => out.push(bad(
            C,
            Status::Fail,
            format!(
                "keyring {} is missing; {} store(s) need it",
                ring.display(),
                keyed.len()
            ),
            "restore the keyring from its backup (it is not in the database), or fix keyring = \
             in memfs.toml / MEMFS_KEYRING",
        )),
        Ok(Some(keks)) => {
            let lost: Vec<&str> = keyed
                .iter()
                .filter(|(_, id)| !keks.contains_key(id))
                .map(|(n, _)| n.as_str())
                .collect();
            if lost.is_empty() {
                out.push(ok(
                    C,
                    format!(
                        "{} and keyring {} open {} encrypted store(s)",
                        key.display(),
                        ring.display(),
                        keyed.len()
                    ),
                ));
            } else {
                out.push(bad(
                    C,
                    Status::Fail,
                    format!("the keyring lacks the keys of: {}", lost.join(", ")),
                    "restore a keyring backup that has them; without it those stores cannot be \
                     read",
                ));
            }
            let loose = std::fs::metadata(&ring).is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
            if loose {
                out.push(bad(
                    "keyring mode",
                    Status::Warn,
                    format!("{} is readable by group or others", ring.display()),
                    format!("chmod 600 {}", ring.display()),
                ));
            }
        }
        Err(e) => out.push(bad(
            C,
            Status::Fail,
            e.to_string(),
            "the master key and the keyring do not belong together: configure the key file \
             the keyring was made with",
        )),
    }
}

fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = path
        .ancestors()
        .find(|p| p.exists() && !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into a zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

fn free_space(db: &Path) -> Check {
    const C: &str = "free space";
    let Some(free) = free_bytes(db) else {
        return bad(
            C,
            Status::Warn,
            "cannot tell (statvfs failed)",
            "check with df",
        );
    };
    let mib = free >> 20;
    let detail = format!("{mib} MiB free where the database lives");
    let fix = "free space there, or move the database (`memfsctl backup` + `memfsctl restore \
               --db` elsewhere); `memfsctl gc` applies retention";
    if free < MIN_SPACE {
        bad(
            C,
            Status::Fail,
            format!("{detail}: writes will fail with ENOSPC soon"),
            fix,
        )
    } else if free < LOW_SPACE {
        bad(C, Status::Warn, detail, fix)
    } else {
        ok(C, detail)
    }
}

fn spill_dir(dir: &Path) -> Check {
    const C: &str = "spill_dir";
    if dir.is_dir() && access(dir, libc::W_OK) {
        ok(C, format!("{} is writable", dir.display()))
    } else {
        bad(
            C,
            Status::Fail,
            format!("{} is missing or not writable", dir.display()),
            format!(
                "mkdir -p {0} (a tmpfs is best: staged bytes are plaintext)",
                dir.display()
            ),
        )
    }
}

/// How long a mount may take to answer statfs before it counts as frozen.
const PROBE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the mount at `mp` is dead, on a thread of its own: a frozen daemon's
/// mount would block statfs for ever. `None` when it did not answer in time
/// (the thread is left behind; doctor exits soon after).
fn probe(mp: &Path) -> Option<bool> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mp = mp.to_path_buf();
    std::thread::Builder::new()
        .name("memfs-doctor-probe".into())
        .spawn(move || {
            let _ = tx.send(crate::daemon::is_dead_mount(&mp));
        })
        .ok()?;
    rx.recv_timeout(PROBE).ok()
}

/// memfs mounts whose daemon died ("Transport endpoint is not connected").
fn dead_mounts() -> Check {
    const C: &str = "mounts";
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut live = 0;
    let mut dead = Vec::new();
    let mut frozen = Vec::new();
    for l in info.lines() {
        let Some((left, right)) = l.split_once(" - ") else {
            continue;
        };
        let fstype = right.split(' ').next().unwrap_or("");
        let source = right.split(' ').nth(1).unwrap_or("");
        if !(fstype.starts_with("fuse") && source == "memfs") {
            continue;
        }
        let Some(mp) = left.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(mp.replace("\\040", " "));
        match probe(&mp) {
            Some(false) => live += 1,
            Some(true) => dead.push(mp.display().to_string()),
            None => frozen.push(mp.display().to_string()),
        }
    }
    if !frozen.is_empty() && dead.is_empty() {
        return bad(
            C,
            Status::Warn,
            format!("not answering within {PROBE:?} (a frozen or very busy daemon): {}", frozen.join(", ")),
            "look at the daemon (its log, `memfsctl leases`); if it is stuck, kill it and run              `memfs umount MOUNTPOINT`",
        );
    }
    if dead.is_empty() {
        ok(C, format!("{live} live memfs mount(s), none dead"))
    } else {
        bad(
            C,
            Status::Fail,
            format!("dead mounts (their daemon died): {}", dead.join(", ")),
            format!("memfs umount {}", dead.join(" && memfs umount ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What broke: on PostgreSQL doctor said only that the server answers, so
    /// an empty database (before `memfs init`) and missing stores passed.
    #[test]
    fn an_empty_database_and_missing_stores_are_named_on_either_engine() {
        let mut info = crate::store::inspect::DbInfo {
            schema: 0,
            known_schema: 3,
            quick_check: "ok".into(),
            journal_mode: String::new(),
            auto_vacuum: String::new(),
            stores: vec!["kb".into()],
            keyed_stores: Vec::new(),
        };
        let config: Config =
            toml::from_str("[[stores]]\nname = \"kb\"\n[[stores]]\nname = \"other\"\n")
                .expect("config");
        let mut out = Vec::new();
        schema_and_stores(&config, &info, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Fail);
        assert!(out[0].fix.contains("memfs init"), "{:?}", out[0]);
        info.schema = 3;
        let mut out = Vec::new();
        schema_and_stores(&config, &info, &mut out);
        let stores = out
            .iter()
            .find(|c| c.check == "stores")
            .expect("a stores check");
        assert!(stores.detail.contains("other"), "{stores:?}");
        assert!(out
            .iter()
            .any(|c| c.check == "schema" && c.status == Status::Ok));
    }

    #[test]
    fn a_missing_database_fails_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            database: dir.path().join("none.db"),
            ..Config::default()
        };
        let checks = run(Ok(&config), "test.toml");
        let db = checks.iter().find(|c| c.check == "database").unwrap();
        assert_eq!(db.status, Status::Fail);
        assert!(db.fix.contains("memfs init"), "{db:?}");
    }

    #[test]
    fn a_fresh_database_passes_its_checks() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            database: dir.path().join("memfs.db"),
            ..Config::default()
        };
        drop(crate::store::Db::open(&config.database).unwrap());
        let checks = run(Ok(&config), "test.toml");
        for name in ["database", "schema", "config"] {
            let c = checks.iter().find(|c| c.check == name).unwrap();
            assert_eq!(c.status, Status::Ok, "{c:?}");
        }
        assert!(!checks.iter().any(|c| c.check == "auto_vacuum"));
    }

    #[test]
    fn a_bad_config_is_reported_not_fatal() {
        let checks = run(Err("invalid config x: boom".into()), "x");
        let c = checks.iter().find(|c| c.check == "config").unwrap();
        assert_eq!(c.status, Status::Fail);
        assert!(checks.iter().any(|c| c.check == "/dev/fuse"));
    }
}

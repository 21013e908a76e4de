//! Real-FUSE tests of encryption at rest (issue 8): what a mount writes is not
//! in the raw database files, `memfsctl store shred` makes a store unreadable in
//! the database and in a copy taken before the shred, and a missing, wrong or
//! exposed master key is refused at start instead of reading garbage.
//!
//! Needs root (or fusermount3) and /dev/fuse.

mod common;

use common::{assert_success, sh, sh_fails, Env, MEMFSCTL};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const SENTENCE: &str = "The lighthouse keeper hides forty-one amber marbles under the loose stair.";
const SHREDDED: &str = "store 'secret' was crypto-shredded; its content is unrecoverable";

/// A new master key in its own directory (the keyring goes beside it, outside
/// the test's database directory).
fn new_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new(MEMFSCTL)
        .args(["key", "generate"])
        .arg(&key)
        .output()
        .expect("run memfsctl key generate");
    assert_success("memfsctl key generate", &out);
    key
}

fn keyed_env() -> (tempfile::TempDir, PathBuf, Env) {
    let keys = tempfile::tempdir().expect("key dir");
    let key = new_key(keys.path(), "master.key");
    let toml = format!(
        "key_file = {:?}\n[[stores]]\nname = \"secret\"\ndescription = \"encrypted\"\n",
        key.display().to_string()
    );
    let env = Env::with_config(&toml);
    (keys, key, env)
}

/// Whether any of the database's files (`memfs.db`, `-wal`, `-shm`) holds `needle`.
fn raw_db_contains(db: &Path, needle: &str) -> bool {
    ["", "-wal", "-shm"].iter().any(|suffix| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let hay = std::fs::read(PathBuf::from(p)).unwrap_or_default();
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

fn ctl_fails(env: &Env, cmd: &mut Command) -> String {
    let out = env.run(cmd);
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn content_is_not_in_the_raw_database_and_shredding_reaches_earlier_copies() {
    if common::skip_on_pg("reads SQLite's files byte by byte") {
        return;
    }
    let (_keys, _key, env) = keyed_env();
    let m = env.mount("writer", "s1", None, &["secret"]);
    let back = sh(
        m.path(),
        &format!("printf '%s' '{SENTENCE}' > secret/diary.md && cat secret/diary.md"),
    );
    assert_eq!(back, SENTENCE);
    m.stop();

    assert!(
        !raw_db_contains(&env.db, SENTENCE),
        "the sentence is in the raw database"
    );
    // The search itself works: names are metadata, stored in plaintext.
    assert!(raw_db_contains(&env.db, "diary.md"));
    let show = env.ctl(&["store", "show", "secret"]);
    assert_eq!(show["encrypted"], true);
    let out = env.run(env.memfsctl().args(["cat", "secret/diary.md"]));
    assert_success("memfsctl cat", &out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), SENTENCE);

    // A backup taken before the shred.
    let backup = env.scratch("backup");
    sh(env.path(), "cp memfs.db* backup/");

    let err = ctl_fails(&env, env.memfsctl().args(["store", "shred", "secret"]));
    assert!(err.contains("--yes"), "{err}");
    env.ctl(&["store", "shred", "secret", "--yes"]);
    let list = env.ctl(&["store", "list"]);
    assert_eq!(list[0]["shredded"], true);
    assert_eq!(list[0]["archived"], true);

    let err = ctl_fails(&env, env.memfsctl().args(["cat", "secret/diary.md"]));
    assert!(err.contains(SHREDDED), "{err}");
    let err = ctl_fails(
        &env,
        Command::new(MEMFSCTL)
            .arg("--config")
            .arg(&env.config)
            .arg("--db")
            .arg(backup.join("memfs.db"))
            .args(["cat", "secret/diary.md"]),
    );
    assert!(err.contains(SHREDDED), "the backup is readable: {err}");
    assert!(!raw_db_contains(&backup.join("memfs.db"), SENTENCE));

    // Through a mount: EIO, and the daemon says why.
    let m = env.mount("reader", "s2", None, &["secret:ro"]);
    let (_, _, stderr) = sh_fails(m.path(), "cat secret/diary.md");
    assert!(stderr.contains("Input/output error"), "{stderr}");
    let log = m.log_text();
    assert!(log.contains("store secret was shredded"), "{log}");
    m.stop();
    let err = ctl_fails(&env, env.memfsctl().args(["store", "unarchive", "secret"]));
    assert!(err.contains("crypto-shredded"), "{err}");
    let fsck = env.ctl(&["fsck"]);
    assert_eq!(fsck["problems"].as_array().map(Vec::len), Some(0), "{fsck}");
}

#[test]
fn a_missing_wrong_or_exposed_master_key_is_refused_at_start() {
    let (keys, key, env) = keyed_env();
    let no_key = env.path().join("no-key.toml");
    std::fs::write(&no_key, "[[stores]]\nname = \"secret\"\n").expect("write config");
    let err = ctl_fails(
        &env,
        Command::new(MEMFSCTL)
            .arg("--config")
            .arg(&no_key)
            .arg("--db")
            .arg(&env.db)
            .args(["store", "list"]),
    );
    assert!(err.contains("no master key is configured"), "{err}");

    let other = new_key(keys.path(), "other.key");
    let mut ring = key.as_os_str().to_owned();
    ring.push(".keyring");
    let err = ctl_fails(
        &env,
        env.memfsctl()
            .env("MEMFS_KEY_FILE", &other)
            .env("MEMFS_KEYRING", &ring)
            .args(["store", "list"]),
    );
    assert!(err.contains("wrong key file"), "{err}");
    let err = ctl_fails(
        &env,
        env.memfsctl()
            .env("MEMFS_KEY_FILE", &other)
            .args(["store", "list"]),
    );
    assert!(err.contains("does not exist"), "{err}");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = ctl_fails(&env, env.memfsctl().args(["store", "list"]));
    assert!(err.contains("chmod 600"), "{err}");
    let failed = env
        .try_mount("writer", "s1", None, &["secret"])
        .err()
        .expect("a mount with an exposed key file must fail");
    assert!(failed.log.contains("chmod 600"), "{}", failed.log);
}

//! Real-FUSE tests of removal for good: `memfsctl redact`, `purge` and
//! `forget-user`. Files are written through a mount (several versions, appends
//! so deltas exist), the mount is stopped, the content is removed, and then the
//! raw bytes of memfs.db, its WAL and its shm file must hold neither the removed
//! sentence nor the blake3 hash of a removed version; `audit verify` and `fsck`
//! must still pass.
//!
//! Needs root (or fusermount3) and /dev/fuse.

mod common;

use common::{assert_success, sh, Env};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

const REDACTED: &str = "Redact-me sentence: the vault opens with 8812-alpha-QZX.";
const PURGED: &str = "Purge-me sentence: the offsite key is 55-kilo-WRT.";
const FORGOTTEN: &str = "Forget-me sentence: the diary entry 3391-zulu.";

fn ctl_out(env: &Env, args: &[&str]) -> Output {
    env.run(env.memfsctl().args(args))
}

/// Version ids and hashes of a file, oldest first.
fn history(env: &Env, target: &str) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = env
        .ctl(&["history", target])
        .as_array()
        .expect("history is an array")
        .iter()
        .map(|e: &Value| {
            (
                e["id"].as_i64().expect("id"),
                e["hash"].as_str().expect("hash").to_string(),
            )
        })
        .collect();
    v.reverse();
    v
}

/// The database files' bytes, for searching (missing files are empty).
fn db_bytes(db: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let p = format!("{}{suffix}", db.display());
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

fn assert_absent(env: &Env, needles: &[&str]) {
    if common::test_pg().is_some() {
        // PostgreSQL's removal is logical (docs/FORMAT.md): what a dump of
        // the database holds is what can be checked.
        let out = common::run_with_deadline(
            std::process::Command::new("pg_dump").arg(&env.db),
            common::COMMAND_DEADLINE,
        );
        common::assert_success("pg_dump", &out);
        for n in needles {
            let found = out.stdout.windows(n.len()).any(|w| w == n.as_bytes());
            assert!(!found, "pg_dump still holds {n:?}");
        }
        return;
    }
    for (file, bytes) in db_bytes(&env.db) {
        for n in needles {
            let found = bytes.windows(n.len()).any(|w| w == n.as_bytes());
            assert!(!found, "{file} still holds {n:?}");
        }
    }
}

fn assert_sound(env: &Env) {
    assert_success("audit verify", &ctl_out(env, &["audit", "verify"]));
    assert_success("fsck", &ctl_out(env, &["fsck"]));
}

#[test]
fn redact_purge_and_forget_leave_no_bytes_behind() {
    let env = Env::new();
    let m = env.mount("agent-a", "sess-1", Some("alice"), &[]);
    let kb = m.store("kb");
    let prefix = "kept prefix line\n";
    sh(
        &kb,
        &format!(
            "printf '%s\\n%s\\n' '{prefix}' '{REDACTED}' > notes.txt
             python3 -c \"import sys; f=open('notes.txt','r+b'); f.seek({n}); f.truncate(); f.write(b'new tail\\n'); f.close()\"
             echo 'appended' >> notes.txt
             printf '%s\\n' '{PURGED}' > gone.txt
             echo 'more' >> gone.txt
             echo 'and more' >> gone.txt
             printf '%s\\n' '{FORGOTTEN}' > ../alice/diary.txt
             echo 'later' >> ../alice/diary.txt",
            prefix = prefix.trim_end(),
            n = prefix.len()
        ),
    );
    m.stop();

    // --- redact
    let notes = history(&env, "kb/notes.txt");
    assert_eq!(notes.len(), 3, "{notes:?}");
    let (v1, v2, v3) = (notes[0].0, notes[1].0, notes[2].0);
    let want_v2 = format!("{prefix}new tail\n");
    let want_v3 = format!("{want_v2}appended\n");
    let out = ctl_out(&env, &["redact", &v3.to_string()]);
    assert!(!out.status.success(), "redacting the live head must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("write a new version or delete the file first"),
        "{err}"
    );
    assert_success("redact", &ctl_out(&env, &["redact", &v1.to_string()]));
    let cat = |v: i64| ctl_out(&env, &["cat", "kb/notes.txt", "--version", &v.to_string()]);
    assert_eq!(String::from_utf8_lossy(&cat(v2).stdout), want_v2);
    assert_eq!(String::from_utf8_lossy(&cat(v3).stdout), want_v3);
    let out = cat(v1);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("version {v1} was redacted")), "{err}");
    let out = ctl_out(&env, &["rollback", "kb/notes.txt", "--to", &v1.to_string()]);
    assert!(
        !out.status.success(),
        "rollback to a redacted version must fail"
    );
    let log = env.store_log("kb");
    let redact = log
        .iter()
        .find(|e| e["op"] == "redact")
        .expect("redact entry");
    assert_eq!(redact["version"].as_i64(), Some(v1));
    assert_eq!(redact["user"].as_str(), Some(env_user().as_str()));

    // --- purge: without --yes nothing happens
    let gone = history(&env, "kb/gone.txt");
    let gone_ino = env.ctl(&["history", "kb/gone.txt"])[0]["ino"]
        .as_i64()
        .expect("ino");
    assert_eq!(gone.len(), 3, "{gone:?}");
    let out = ctl_out(&env, &["purge", "kb/gone.txt"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("would purge"));
    assert_eq!(history(&env, "kb/gone.txt").len(), 3);
    assert_success("purge", &ctl_out(&env, &["purge", "kb/gone.txt", "--yes"]));
    // The path is gone with the content: neither the namespace nor the audit
    // log names it; the log keeps a purge tombstone for the inode.
    assert!(!ctl_out(&env, &["history", "kb/gone.txt"]).status.success());
    let log = env.store_log("kb");
    assert!(
        log.iter()
            .any(|e| e["op"] == "purge" && e["ino"].as_i64() == Some(gone_ino)),
        "no purge entry for inode {gone_ino}"
    );
    assert!(!Value::from(log).to_string().contains("gone.txt"));

    // --- forget-user
    let diary = history(&env, "alice/diary.txt");
    assert_success(
        "forget-user",
        &ctl_out(&env, &["forget-user", "alice", "--yes"]),
    );
    let stores = env.ctl(&["store", "list"]);
    assert!(!stores.to_string().contains("\"alice\""), "{stores}");

    // Nothing left on disk: sentences, and the hashes of removed versions.
    let mut needles: Vec<String> = vec![REDACTED.into(), PURGED.into(), FORGOTTEN.into()];
    needles.push(notes[0].1.clone());
    needles.extend(gone.iter().map(|(_, h)| h.clone()));
    needles.extend(diary.iter().map(|(_, h)| h.clone()));
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    assert_absent(&env, &needles);
    assert_sound(&env);

    // A mount afterwards sees the rest intact.
    let m = env.mount("agent-a", "sess-2", None, &["kb"]);
    assert_eq!(
        std::fs::read_to_string(m.store("kb").join("notes.txt")).expect("read notes"),
        want_v3
    );
    assert!(!m.store("kb").join("gone.txt").exists());
    m.stop();

    // A store with a redacted version still exports with its history (the
    // redacted version is left out) and imports back.
    let tar = env.path().join("kb-after-redact.tar");
    let tar_s = tar.to_string_lossy().to_string();
    assert_success(
        "export after redact",
        &ctl_out(&env, &["export", "kb", "-o", &tar_s, "--history"]),
    );
    assert_success(
        "import after redact",
        &ctl_out(&env, &["import", &tar_s, "--as", "kb-copy"]),
    );
    let copy = history(&env, "kb-copy/notes.txt");
    assert_eq!(copy.len(), 2, "the redacted version came back: {copy:?}");
    let out = ctl_out(&env, &["cat", "kb-copy/notes.txt"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), want_v3);
    std::fs::remove_file(&tar).ok();
}

/// The operator name memfsctl attributes changes to (the Unix user).
fn env_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into())
}

//! Online backups: `memfsctl backup` while a mount writes, restored with
//! `memfsctl restore` into a fresh database that passes `fsck` and `audit
//! verify` and holds what was committed before the backup began.

mod common;

use common::*;
use std::process::Command;

#[test]
fn a_backup_taken_under_load_restores_to_a_sound_database() {
    if common::skip_on_pg("memfsctl backup is SQLite's online backup (PostgreSQL: pg_dump)") {
        return;
    }
    let env = Env::new();
    let m = env.mount("agent-a", "s-a", None, &["kb"]);
    sh(
        m.path(),
        "mkdir kb/docs; for i in $(seq 50); do head -c 20000 /dev/urandom > kb/docs/f$i; done; \
         echo before > kb/marker",
    );
    // An agent keeps writing (rewrites, appends, creates, deletes) during the backup.
    let stop = env.path().join("stop");
    let writer = ChildGuard(
        bash(
            m.path(),
            &format!(
                "i=0; while [ ! -e {stop} ]; do i=$((i+1)); \
                 head -c 30000 /dev/urandom > kb/docs/f$((i % 50 + 1)); \
                 echo line $i >> kb/log; echo $i > kb/tmp$i; rm -f kb/tmp$((i - 3)); done",
                stop = stop.display()
            ),
        )
        .spawn()
        .expect("spawn writer"),
    );
    let log = m.store("kb").join("log");
    let lines = || {
        std::fs::read_to_string(&log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + COMMAND_DEADLINE;
    while lines() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never wrote"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let written_before = lines();
    let bak = env.path().join("memfs.bak");
    let mut backups = 0;
    for _ in 0..3 {
        let out = env.run(
            env.memfsctl()
                .arg("backup")
                .arg(&bak)
                .arg("--force")
                .arg("--json"),
        );
        assert_success("memfsctl backup under load", &out);
        backups += 1;
    }
    let written_during = lines() - written_before;
    std::fs::write(&stop, "").expect("stop the writer");
    let mut writer = writer;
    let status = writer.0.wait().expect("writer exits");
    assert!(status.success(), "the writer failed: {status}");
    assert_eq!(backups, 3);
    assert!(
        written_during > 0,
        "nothing was written while the backups ran"
    );

    // Without --force an existing backup is never overwritten.
    let out = env.run(env.memfsctl().arg("backup").arg(&bak));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));

    let restored = env.path().join("restored").join("memfs.db");
    let restore = |db: &std::path::Path| {
        let mut c = Command::new(MEMFSCTL);
        c.arg("--config").arg(&env.config).arg("--db").arg(db);
        c
    };
    let out = env.run(restore(&restored).arg("restore").arg(&bak));
    assert_success("memfsctl restore", &out);
    for check in [&["fsck"][..], &["audit", "verify"]] {
        let out = env.run(restore(&restored).args(check));
        assert_success(&format!("{check:?} on the restored database"), &out);
    }
    let out = env.run(restore(&restored).args(["cat", "kb/marker"]));
    assert_success("cat from the restored database", &out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "before\n");
    // A restore never writes over a database.
    let out = env.run(restore(&restored).arg("restore").arg(&bak));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    m.stop();
}

/// A database with encrypted stores: the backup says the key file and keyring
/// are needed too, and a restore without them is in place but refused at open.
#[test]
fn a_backup_of_encrypted_stores_says_the_keys_are_needed_too() {
    if common::skip_on_pg("memfsctl backup is SQLite's online backup (PostgreSQL: pg_dump)") {
        return;
    }
    let keys = tempfile::tempdir().expect("key dir");
    let key = keys.path().join("master.key");
    let out = Command::new(MEMFSCTL)
        .args(["key", "generate"])
        .arg(&key)
        .output()
        .expect("run memfsctl key generate");
    assert_success("memfsctl key generate", &out);
    let env = Env::with_config(&format!(
        "key_file = {:?}\n[[stores]]\nname = \"secret\"\n",
        key.display().to_string()
    ));
    let bak = env.path().join("memfs.bak");
    let out = env.run(env.memfsctl().arg("backup").arg(&bak));
    assert_success("memfsctl backup", &out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("encrypted (secret)") && text.contains("master.key.keyring"),
        "{text}"
    );
    // Restored where no key is configured: the file is there, opening is refused.
    let plain = env.path().join("plain.toml");
    std::fs::write(&plain, "").expect("write an empty config");
    let restored = env.path().join("restored.db");
    let out = env.run(
        Command::new(MEMFSCTL)
            .arg("--config")
            .arg(&plain)
            .arg("--db")
            .arg(&restored)
            .arg("restore")
            .arg(&bak),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be opened yet"), "{err}");
    assert!(restored.exists());
    // With the key it opens and verifies.
    let out = env.run(
        Command::new(MEMFSCTL)
            .arg("--config")
            .arg(&env.config)
            .arg("--db")
            .arg(&restored)
            .arg("fsck"),
    );
    assert_success("fsck of the restored encrypted database", &out);
}

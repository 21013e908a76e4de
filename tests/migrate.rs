//! `memfsctl migrate-db`: a SQLite database with history moves to PostgreSQL
//! and back; ids, history and the audit chains survive, `audit verify` and
//! `fsck` pass on every side, a mount on the copy sees the files, and a
//! draft moves with its changes and merges on the other side. Runs
//! when `MEMFS_TEST_PG` names a server (scripts/test.sh starts one).

mod common;

use common::*;

#[test]
fn a_sqlite_database_moves_to_postgres_and_back_with_its_history() {
    let Some(server) = test_pg() else {
        eprintln!("skipped: needs MEMFS_TEST_PG");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = dir.path().join("memfs.db");
    let env = Env::with_config_and_db(DEFAULT_CONFIG, Some(sqlite.clone()));
    {
        let m = env.mount("agent-1", "s1", None, &["kb"]);
        let f = m.path().join("kb/facts.md");
        for i in 0..3 {
            std::fs::write(&f, format!("fact {i}\n")).expect("write");
        }
    }
    // A draft with a change of its own moves too, still mergeable.
    assert_success(
        "draft create",
        &env.run(
            env.memfsctl()
                .args(["draft", "create", "kb", "--name", "review"]),
        ),
    );
    {
        let m = env.mount("agent-1", "s1", None, &["kb@review"]);
        std::fs::write(m.path().join("kb/draft-only.md"), "from the draft\n").expect("write");
    }
    let before = env.ctl(&["history", "kb/facts.md"]);
    let (url, name) = memfs::store::postgres::Pg::create_scratch(&server).expect("scratch db");
    struct DropDb(String, String);
    impl Drop for DropDb {
        fn drop(&mut self) {
            let _ = memfs::store::postgres::Pg::drop_scratch(&self.0, &self.1);
        }
    }
    let _guard = DropDb(server.clone(), name);
    let out = env.run(env.memfsctl().args(["migrate-db", "--to", &url]));
    assert_success("migrate-db to postgres", &out);
    let on_pg = |args: &[&str]| {
        let out = env.run(env.memfs_ctl_on(&url).args(args));
        assert_success(&format!("memfsctl {args:?} on postgres"), &out);
        out
    };
    on_pg(&["audit", "verify"]);
    on_pg(&["fsck"]);
    let diff = on_pg(&["draft", "diff", "kb@review"]);
    assert!(
        String::from_utf8_lossy(&diff.stdout).contains("draft-only.md"),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    on_pg(&["draft", "merge", "kb@review"]);
    let after: serde_json::Value =
        serde_json::from_slice(&on_pg(&["--json", "history", "kb/facts.md"]).stdout).expect("json");
    assert_eq!(
        before, after,
        "versions keep their ids, times and attribution"
    );
    // A mount on the copy sees the file, and writes on.
    let pg_env = env.on_db(&url);
    {
        let m = pg_env.mount("agent-2", "s2", None, &["kb"]);
        assert_eq!(
            std::fs::read_to_string(m.path().join("kb/facts.md")).expect("read"),
            "fact 2\n"
        );
        std::fs::write(m.path().join("kb/facts.md"), "fact 3\n").expect("write on pg");
    }
    let back = dir.path().join("back.db");
    let out = env.run(
        env.memfs_ctl_on(&url)
            .args(["migrate-db", "--to"])
            .arg(&back),
    );
    assert_success("migrate-db back to sqlite", &out);
    let back_s = back.display().to_string();
    let out = env.run(env.memfs_ctl_on(&back_s).args(["audit", "verify"]));
    assert_success("audit verify on the way back", &out);
    let out = env.run(env.memfs_ctl_on(&back_s).arg("fsck"));
    assert_success("fsck on the way back", &out);
    let out = env.run(env.memfs_ctl_on(&back_s).args(["cat", "kb/facts.md"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fact 3\n");
    // The draft's change, merged on PostgreSQL, is in the store.
    let out = env.run(env.memfs_ctl_on(&back_s).args(["cat", "kb/draft-only.md"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the draft\n");
    let out = env.run(env.memfs_ctl_on(&back_s).args(["draft", "list", "kb"]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("review"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

//! Real-FUSE tests of `memfsctl export` / `import`: a store written with shell
//! tools by two sessions is exported with its history and imported as a copy,
//! which must have the same heads, versions (content, hashes, sizes) and
//! attribution; crafted archives with `../` members or escaping symlinks import
//! nothing and say why; `export --git` gives a repository whose log is the
//! store's history and whose tree is its head.
//!
//! Needs root (or fusermount3) and /dev/fuse, and `tar` and `git`.

mod common;

use common::{assert_success, s, sh, Env};
use serde_json::Value;
use std::path::Path;

/// Two sessions write, append, rename, link and delete in store "kb".
fn populate(env: &Env) {
    let m1 = env.mount("writer", "sess-1", Some("alice"), &["kb"]);
    sh(
        &m1.store("kb"),
        "mkdir -p notes/deep
         echo 'first' > notes/a.md
         echo 'second line' >> notes/a.md
         printf 'x%.0s' $(seq 1 5000) > notes/deep/big.txt
         ln -s ../a.md notes/deep/link
         ln notes/a.md hard.md
         echo doomed > doomed.txt
         rm doomed.txt",
    );
    m1.stop();
    let m2 = env.mount("editor", "sess-2", Some("bob"), &["kb"]);
    sh(
        &m2.store("kb"),
        "echo 'third, by bob' >> notes/a.md
         mv notes/deep notes/deeper
         chmod +x notes/deeper/big.txt
         : > empty.txt",
    );
    m2.stop();
}

/// One version as `memfsctl history` shows it, ids left out: size, hash, op,
/// agent, session, user, time.
type Version = (u64, String, String, String, String, Value, i64);

/// Every file's history (version list) under a store, by path.
fn histories(env: &Env, store: &str, paths: &[&str]) -> Vec<Vec<Version>> {
    paths
        .iter()
        .map(|p| {
            env.ctl(&["history", &format!("{store}/{p}")])
                .as_array()
                .expect("history is an array")
                .iter()
                .map(|v| {
                    (
                        v["size"].as_u64().expect("size"),
                        s(v, "hash").unwrap_or_default().to_string(),
                        s(v, "op").unwrap_or_default().to_string(),
                        s(v, "agent").unwrap_or_default().to_string(),
                        s(v, "session").unwrap_or_default().to_string(),
                        v["user"].clone(),
                        v["at_ns"].as_i64().expect("at_ns"),
                    )
                })
                .collect()
        })
        .collect()
}

/// `ls -lR`-like listing with content hashes of a mounted store.
fn listing(dir: &Path) -> String {
    sh(
        dir,
        "find . -mindepth 1 | LC_ALL=C sort | while read -r p; do
           if [ -L \"$p\" ]; then echo \"L $p -> $(readlink \"$p\")\";
           elif [ -d \"$p\" ]; then echo \"D $p $(stat -c %a \"$p\")\";
           else echo \"F $p $(stat -c '%a %s %h' \"$p\") $(sha256sum < \"$p\" | cut -c1-16)\"; fi
         done",
    )
}

#[test]
fn export_then_import_keeps_heads_versions_and_attribution() {
    let env = Env::new();
    populate(&env);
    let dir = env.scratch("out");
    let archive = dir.join("kb.tar");
    let out = env.ctl(&[
        "export",
        "kb",
        "-o",
        archive.to_str().expect("utf-8"),
        "--history",
    ]);
    assert_eq!(out["history"], true);
    // Standard tools read it.
    let members = sh(&dir, "tar tf kb.tar");
    for m in [
        "memfs-export.json",
        "files.jsonl",
        "versions.jsonl",
        "audit.jsonl",
        "head/notes/a.md",
    ] {
        assert!(
            members.lines().any(|l| l == m),
            "{m} missing from:\n{members}"
        );
    }
    let version = sh(
        &dir,
        "tar xOf kb.tar memfs-export.json | jq -r '.format + \" \" + (.version|tostring)'",
    );
    assert_eq!(version.trim(), "memfs-export 1");
    let paths = sh(
        &dir,
        "tar xOf kb.tar files.jsonl | jq -r .path | LC_ALL=C sort | tr '\\n' ' '",
    );
    assert_eq!(
        paths.trim(),
        "empty.txt hard.md notes notes/a.md notes/deeper notes/deeper/big.txt notes/deeper/link"
    );

    let done = env.ctl(&["import", archive.to_str().expect("utf-8"), "--as", "copy"]);
    assert_eq!(s(&done, "store"), Some("copy"));

    // Same histories, version for version.
    let files = [
        "notes/a.md",
        "hard.md",
        "notes/deeper/big.txt",
        "empty.txt",
        "doomed.txt",
    ];
    assert_eq!(
        histories(&env, "kb", &files),
        histories(&env, "copy", &files)
    );
    let a = histories(&env, "copy", &["notes/a.md"]).remove(0);
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!((a[0].3.as_str(), a[0].4.as_str()), ("editor", "sess-2"));
    assert_eq!((a[2].3.as_str(), a[2].4.as_str()), ("writer", "sess-1"));

    // Same heads, seen through a mount of both stores.
    let m = env.mount("reader", "sess-3", Some("alice"), &["kb", "copy"]);
    assert_eq!(listing(&m.store("kb")), listing(&m.store("copy")));
    let text = std::fs::read_to_string(m.store("copy").join("notes/a.md")).expect("read copy");
    assert_eq!(text, "first\nsecond line\nthird, by bob\n");
    m.stop();

    // The imported log carries each original entry's id and hash; the chain is new and intact.
    let log = env.store_log("copy");
    assert!(log.iter().any(|e| s(e, "op") == Some("import")));
    let renamed = log
        .iter()
        .find(|e| s(e, "op") == Some("rename"))
        .expect("the rename was imported");
    assert_eq!(s(renamed, "session"), Some("sess-2"));
    assert!(renamed["detail"]["imported_from"]["hash"].is_string());
    env.ctl(&["audit", "verify"]);
    env.ctl(&["fsck"]);

    // Importing again under a taken name says so.
    let out =
        env.run(
            env.memfsctl()
                .args(["import", archive.to_str().expect("utf-8"), "--as", "copy"]),
        );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already exists"), "{err}");
}

/// Imports `archive`, expecting a refusal that mentions `why`; no store appears.
fn refused(env: &Env, archive: &Path, why: &str) {
    let before = env.ctl(&["store", "list"]);
    let out =
        env.run(
            env.memfsctl()
                .args(["import", archive.to_str().expect("utf-8"), "--as", "evil"]),
        );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "import of {} succeeded",
        archive.display()
    );
    assert!(err.contains(why), "expected '{why}' in: {err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(
        env.ctl(&["store", "list"]),
        before,
        "a refused import changed the stores"
    );
}

#[test]
fn crafted_archives_import_nothing_and_say_why() {
    let env = Env::new();
    let m = env.mount("writer", "sess-1", None, &["kb"]);
    sh(&m.store("kb"), "echo hi > a.txt && ln -s a.txt l");
    m.stop();
    let dir = env.scratch("craft");
    env.ctl(&[
        "export",
        "kb",
        "-o",
        dir.join("kb.tar").to_str().expect("utf-8"),
    ]);
    // A `../evil` member added to a real export, with GNU tar's own options.
    sh(
        &dir,
        "mkdir x && cd x && tar xf ../kb.tar && echo evil > ../evil
         tar cf ../dotdot.tar --format=ustar -P memfs-export.json files.jsonl head ../evil
         tar tf ../dotdot.tar | grep -qx '../evil'",
    );
    refused(&env, &dir.join("dotdot.tar"), "'..'");
    // A symlink retargeted outside the store, in the metadata and the member alike.
    sh(
        &dir,
        "rm -rf y && mkdir y && cd y && tar xf ../kb.tar
         jq -c 'if .path == \"l\" then .target = \"../../etc/passwd\" else . end' files.jsonl > f && mv f files.jsonl
         rm head/l && ln -s ../../etc/passwd head/l
         tar cf ../escape.tar --format=ustar memfs-export.json files.jsonl head",
    );
    refused(&env, &dir.join("escape.tar"), "climbs above the store root");
    // Content that does not match its hash.
    sh(
        &dir,
        "rm -rf z && mkdir z && cd z && tar xf ../kb.tar && echo HO > head/a.txt
         tar cf ../tampered.tar --format=ustar memfs-export.json files.jsonl head",
    );
    refused(&env, &dir.join("tampered.tar"), "hash mismatch");
    // A future format version.
    sh(
        &dir,
        "rm -rf v && mkdir v && cd v && tar xf ../kb.tar
         jq '.version = 2' memfs-export.json > m && mv m memfs-export.json
         tar cf ../v2.tar --format=ustar memfs-export.json files.jsonl head",
    );
    refused(&env, &dir.join("v2.tar"), "version 2 is not supported");
    // Garbage.
    std::fs::write(dir.join("garbage.tar"), b"this is not a tar archive at all").expect("write");
    refused(&env, &dir.join("garbage.tar"), "archive refused");
}

#[test]
fn git_export_shows_the_history_and_ends_at_the_head() {
    let env = Env::new();
    populate(&env);
    let repo = env.path().join("repo");
    let out = env.ctl(&["export", "kb", "--git", repo.to_str().expect("utf-8")]);
    assert_eq!(
        out["head_fixup"], false,
        "replaying the log did not reach the head: {out}"
    );
    let log = sh(
        &repo,
        "git log --reverse --format='%an|%ae|%s|%b' | grep -v '^$'",
    );
    assert!(
        log.contains("writer|alice@memfs|create notes/a.md"),
        "{log}"
    );
    assert!(
        log.contains("editor|bob@memfs|rename notes/deep -> notes/deeper"),
        "{log}"
    );
    assert!(log.contains("Session: sess-2"), "{log}");
    let subjects = sh(&repo, "git log --format=%s");
    assert!(subjects.contains("write notes/a.md"), "{subjects}");
    // The original time, not the export's.
    let when = sh(
        &repo,
        "git log --format='%at %s' | grep ' rename ' | cut -d' ' -f1",
    );
    let rename = env
        .store_log("kb")
        .into_iter()
        .find(|e| s(e, "op") == Some("rename"))
        .expect("a rename");
    assert_eq!(
        when.trim().parse::<i64>().expect("epoch seconds"),
        rename["at_ns"].as_i64().expect("at_ns") / 1_000_000_000
    );
    // The final tree is the head.
    let m = env.mount("reader", "sess-3", None, &["kb:ro"]);
    let head = sh(
        &m.store("kb"),
        "find . -type f -o -type l | LC_ALL=C sort | xargs -d '\\n' sha256sum",
    );
    let tree = sh(
        &repo,
        "git ls-files | sed 's|^|./|' | LC_ALL=C sort | xargs -d '\\n' sha256sum",
    );
    assert_eq!(head, tree);
    assert_eq!(sh(&repo, "stat -c %a notes/deeper/big.txt").trim(), "755");
    assert_eq!(sh(&repo, "readlink notes/deeper/link").trim(), "../a.md");
    m.stop();
    let again =
        env.run(
            env.memfsctl()
                .args(["export", "kb", "--git", repo.to_str().expect("utf-8")]),
        );
    assert!(
        !again.status.success(),
        "export into a non-empty directory succeeded"
    );
    assert_success(
        "git fsck",
        &env.run(
            std::process::Command::new("git")
                .arg("-C")
                .arg(&repo)
                .arg("fsck"),
        ),
    );
}

//! Whole-file changes (the API's writes) on the core: one version and one
//! audit entry per change, implicit directories, preconditions, leases,
//! policies and content rules as for a mount.

use super::*;
use crate::digest::sha256;
use crate::fs::{Expect, PiiMode};

fn ops(fs: &MemFs) -> Vec<String> {
    fs.db
        .read(|tx| tx.audit_entries(&Default::default()))
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.op)
        .filter(|op| op != "store-create")
        .collect()
}

fn kb(fs: &MemFs) -> StoreId {
    fs.attached()[0].store.id
}

#[test]
fn a_put_creates_parents_and_is_one_version_and_one_entry() {
    let (fs, root) = setup();
    let w = fs
        .put_file(kb(&fs), "notes/deep/a.md", b"hello\n", Expect::Absent)
        .unwrap();
    assert!(w.created && w.changed);
    assert_eq!(read_all(&fs, w.ino), b"hello\n");
    assert_eq!(ops(&fs), vec!["create"]);
    let notes = fs.lookup(root, b"notes", ME).unwrap();
    assert_eq!(notes.kind, NodeKind::Dir);
    let e = fs
        .db
        .read(|tx| tx.audit_entries(&Default::default()))
        .unwrap()
        .remove(0);
    let d = e.detail.unwrap();
    assert_eq!(
        d["created_dirs"],
        serde_json::json!(["notes", "notes/deep"])
    );
    assert_eq!(d["sha256"], crate::digest::hex(&sha256(b"hello\n")));
    let v = versions(&fs, w.ino);
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].sha256.as_deref(),
        Some(&*crate::digest::hex(&sha256(b"hello\n")))
    );
    // Absent refuses an existing path; Any replaces; same content adds nothing.
    assert!(matches!(
        fs.put_file(kb(&fs), "notes/deep/a.md", b"x", Expect::Absent),
        Err(FsError::Exists)
    ));
    let w2 = fs
        .put_file(kb(&fs), "notes/deep/a.md", b"two\n", Expect::Any)
        .unwrap();
    assert!(!w2.created && w2.changed && w2.ino == w.ino);
    let w3 = fs
        .put_file(kb(&fs), "notes/deep/a.md", b"two\n", Expect::Any)
        .unwrap();
    assert!(!w3.changed);
    assert_eq!(ops(&fs), vec!["create", "write"]);
    // A file in the way of a directory, a directory in the way of a file.
    assert!(matches!(
        fs.put_file(kb(&fs), "notes/deep/a.md/b", b"x", Expect::Any),
        Err(FsError::NotDir)
    ));
    assert!(matches!(
        fs.put_file(kb(&fs), "notes", b"x", Expect::Any),
        Err(FsError::IsDir)
    ));
    for bad in ["", "a//b", "./a", "a/../b", "/abs"] {
        assert!(
            fs.put_file(kb(&fs), bad, b"x", Expect::Any).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn preconditions_compare_the_current_sha256() {
    let (fs, _) = setup();
    let w = fs.put_file(kb(&fs), "f.md", b"one", Expect::Any).unwrap();
    let err = fs
        .put_file(kb(&fs), "f.md", b"two", Expect::Sha256(sha256(b"zero")))
        .unwrap_err();
    assert!(matches!(err, FsError::Precondition(_)), "{err}");
    fs.put_file(kb(&fs), "f.md", b"two", Expect::Sha256(sha256(b"one")))
        .unwrap();
    // update_file: rename and rewrite in one call, two entries, one version.
    let w2 = fs
        .update_file(
            kb(&fs),
            w.ino,
            Some("moved/g.md"),
            Some(b"three"),
            Some(sha256(b"two")),
        )
        .unwrap();
    assert_eq!(w2.ino, w.ino);
    assert_eq!(read_all(&fs, w.ino), b"three");
    assert_eq!(ops(&fs), vec!["create", "write", "rename", "write"]);
    assert!(matches!(
        fs.update_file(kb(&fs), w.ino, None, Some(b"x"), Some(sha256(b"two"))),
        Err(FsError::Precondition(_))
    ));
    // Conditional delete.
    assert!(matches!(
        fs.remove_file(kb(&fs), w.ino, Some(sha256(b"two"))),
        Err(FsError::Precondition(_))
    ));
    fs.remove_file(kb(&fs), w.ino, Some(sha256(b"three")))
        .unwrap();
    assert!(matches!(
        fs.remove_file(kb(&fs), w.ino, None),
        Err(FsError::NotFound)
    ));
    assert_eq!(versions(&fs, w.ino).len(), 3, "versions outlive the file");
}

#[test]
fn a_file_open_for_writing_in_a_mount_is_not_overwritten() {
    let (fs, root) = setup();
    let (_, o) = fs.create(root, b"busy.md", 0o644, 0, W, ME).unwrap();
    fs.write(o.fh, 0, b"agent bytes").unwrap();
    let api = MemFs::new(
        fs.db.clone(),
        Identity::new("api", "apikey_1", None),
        fs.attached().to_vec(),
        FsOptions::default(),
    );
    let err = api
        .put_file(kb(&fs), "busy.md", b"api bytes", Expect::Any)
        .unwrap_err();
    assert!(
        matches!(&err, FsError::Busy(m) if m.contains("agent-1")),
        "{err}"
    );
    fs.release(o.fh).unwrap();
    let ino = fs.lookup(root, b"busy.md", ME).unwrap().ino;
    assert_eq!(read_all(&fs, ino), b"agent bytes");
    api.put_file(kb(&fs), "busy.md", b"api bytes", Expect::Any)
        .unwrap();
    assert_eq!(read_all(&fs, ino), b"api bytes");
}

#[test]
fn policies_quotas_and_content_rules_apply_to_whole_file_writes() {
    let policy = StorePolicy {
        append_only: vec!["log/**".into()],
        read_only: vec!["facts/**".into()],
        pii: PiiMode::Block,
        validate: vec![("**/*.json".into(), crate::scan::Format::Json)],
        quota: Quota {
            max_file_bytes: Some(32),
            ..Default::default()
        },
        ..Default::default()
    };
    let (mounts, _) = with_policy(policy, &["agent"]);
    let fs = &mounts[0];
    let s = kb(fs);
    fs.put_file(s, "log/a", b"x", Expect::Any).unwrap();
    assert!(matches!(
        fs.put_file(s, "log/a", b"y", Expect::Any),
        Err(FsError::Perm)
    ));
    assert!(matches!(
        fs.put_file(s, "facts/a", b"y", Expect::Any),
        Err(FsError::ReadOnly(_))
    ));
    assert!(matches!(
        fs.put_file(s, "big", &[b'a'; 33], Expect::Any),
        Err(FsError::TooBig)
    ));
    let err = fs.put_file(s, "a.json", b"{", Expect::Any).unwrap_err();
    assert!(
        matches!(
            err,
            FsError::ContentRule {
                rule: "validate",
                ..
            }
        ),
        "{err}"
    );
    let err = fs
        .put_file(s, "m.md", b"mail ann@example.com", Expect::Any)
        .unwrap_err();
    assert!(
        matches!(err, FsError::ContentRule { rule: "pii", .. }),
        "{err}"
    );
    let log = ops(fs);
    assert_eq!(log.iter().filter(|o| *o == "rejected").count(), 2);
    assert!(fs
        .db
        .read(|tx| tx.resolve_path(fs.attached()[0].store.root, "m.md"))
        .unwrap()
        .is_none());
}

#[test]
fn settings_changed_while_mounted_take_effect() {
    let (fs, root) = setup();
    let s = kb(&fs);
    fs.update_store(
        s,
        StorePolicy {
            append_only: vec!["*.log".into()],
            ..Default::default()
        },
        true,
    );
    put(&fs, root, "a.log", b"x");
    assert!(matches!(fs.unlink(root, b"a.log", ME), Err(FsError::Perm)));
    fs.update_store(s, StorePolicy::default(), false);
    assert!(matches!(
        fs.put_file(s, "b", b"x", Expect::Any),
        Err(FsError::ReadOnly(_))
    ));
    assert!(matches!(
        fs.mkdir(root, b"d", 0o755, 0, ME),
        Err(FsError::ReadOnly(_))
    ));
}

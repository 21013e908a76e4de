//! gc passes on real database files: what the rules expire goes (content,
//! chunks, pages), everything kept reads back byte for byte, the audit chain
//! still verifies, and pins, legal holds and the one-collector lease hold.

use super::*;
use crate::ids::{Ino, StoreId};
use crate::retention::DAY_NS;
use crate::store::{Change, NewInode, NewVersion, NodeKind, Scope, StoreRow, Txn};

fn who() -> Identity {
    Identity::new("agent-a", "sess-1", None)
}

struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    db: Db,
    store: StoreRow,
    ino: Ino,
    /// Every version, oldest first, with its full content.
    versions: Vec<(VersionId, Vec<u8>)>,
}

/// Deterministic, incompressible-looking bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Commits `content` as a new version of `ino`: a delta on `base` when it
/// starts with the base's content (an append), else flat.
fn commit(
    tx: &Txn<'_>,
    store: StoreId,
    ino: Ino,
    base: Option<(VersionId, &[u8])>,
    content: &[u8],
    at_ns: i64,
) -> Result<VersionId, StoreError> {
    let (base, base_len) = match base {
        Some((v, old)) if content.starts_with(old) => (Some(v), old.len()),
        _ => (None, 0),
    };
    let mut tail = Vec::new();
    for c in crate::store::chunk_bytes(&content[base_len..]) {
        tail.push(tx.put_chunk(store, c)?);
    }
    let me = who();
    let (v, size) = tx.insert_version(&NewVersion {
        ino,
        store,
        base,
        base_len: base_len as u64,
        tail,
        base_full: None,
        hash: blake3::hash(content),
        sha256: None,
        op: "write",
        path: "notes.md",
        who: &me,
        at_ns,
    })?;
    tx.record(
        &me,
        at_ns,
        &Change {
            store: Some(store),
            op: "write",
            path: Some("notes.md"),
            ino: Some(ino),
            version: Some(v),
            ..Default::default()
        },
    )?;
    let mut row = tx.inode(ino)?.ok_or(StoreError::NotFound("ino".into()))?;
    row.head = Some(v);
    row.size = size;
    tx.save_inode(&row)?;
    Ok(v)
}

/// One file with `n` versions a day apart ending yesterday: every third a
/// rewrite of 64 KiB, the others 8 KiB appends (deltas).
fn world(n: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memfs.db");
    let db = Db::open(&path).unwrap();
    let now = now_ns();
    let (store, ino, versions) = db
        .write(|tx| {
            let store = tx.create_store("kb", Scope::Org, None, "", &who(), 1)?;
            let ino = tx.insert_inode(&NewInode {
                store: store.id,
                kind: NodeKind::File,
                perm: 0o644,
                uid: 0,
                gid: 0,
                rdev: 0,
                nlink: 1,
                now_ns: 1,
                target: None,
            })?;
            tx.insert_dentry(store.root, b"notes.md", ino)?;
            let mut versions: Vec<(VersionId, Vec<u8>)> = Vec::new();
            for i in 0..n {
                let content = match versions.last() {
                    Some((_, old)) if i % 3 != 0 => {
                        [old.as_slice(), &noise(i as u64, 8 << 10)].concat()
                    }
                    _ => noise(1000 + i as u64, 64 << 10),
                };
                let at = now - (n - i) as i64 * DAY_NS;
                let base = versions.last().map(|(v, c)| (*v, c.as_slice()));
                let v = commit(tx, store.id, ino, base, &content, at)?;
                versions.push((v, content));
            }
            Ok::<_, StoreError>((store, ino, versions))
        })
        .unwrap();
    World {
        _dir: dir,
        path,
        db,
        store,
        ino,
        versions,
    }
}

fn opts() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        batch: 4,
        ..GcOptions::new(who(), Duration::from_secs(30))
    }
}

fn keep(days: Option<u32>, versions: Option<u32>) -> Vec<(String, Retention)> {
    vec![(
        "kb".into(),
        Retention {
            keep_days: days,
            keep_versions: versions,
            legal_hold: false,
        },
    )]
}

fn content(db: &Db, v: VersionId) -> Result<Vec<u8>, StoreError> {
    db.read(|tx| {
        let ext = tx.extents(v)?;
        tx.read_extents(&ext, 0, ext.size())
    })
}

fn count(db: &Db, sql: &str) -> i64 {
    db.read(|tx| tx.query_i64(sql)).unwrap()
}

#[test]
fn a_pass_removes_what_the_rules_expire_and_the_rest_reads_back() {
    let w = world(12);
    let report = collect(&w.db, &keep(None, Some(4)), &opts()).unwrap();
    let s = &report.stores[0];
    assert_eq!((s.action, s.files, s.versions), ("collected", 1, 12));
    assert_eq!((s.expired, s.removed), (8, 8));
    assert!(s.chunks_deleted > 0 && s.chunk_bytes_freed > 0, "{s:?}");
    for (i, (v, bytes)) in w.versions.iter().enumerate() {
        match content(&w.db, *v) {
            Ok(back) => {
                assert!(i >= 8, "version {v} should be gone");
                assert_eq!(&back, bytes, "version {v} reads back as it was");
            }
            Err(e) => {
                assert!(i < 8, "version {v} should stay: {e}");
                assert_eq!(e.to_string(), format!("version {v} was redacted"));
            }
        }
    }
    w.db.read(|tx| {
        assert!(tx.verify_audit()?.is_ok(), "the chain still verifies");
        assert!(tx.redacted_with_content()?.is_empty());
        // The write entries of removed versions are sealed; a gc entry per batch.
        let sealed = tx.query_i64(
            "SELECT count(*) FROM audit WHERE op = 'write' AND path IS NULL AND sealed IS NOT NULL",
        )?;
        assert_eq!(sealed, 8);
        assert_eq!(
            tx.query_i64("SELECT count(*) FROM audit WHERE op = 'gc'")?,
            2
        );
        Ok::<_, StoreError>(())
    })
    .unwrap();
    // Each chunk left is used by a kept version (except maybe the table's newest).
    let chunks = count(&w.db, "SELECT count(*) FROM chunks");
    let again = collect(&w.db, &keep(None, Some(4)), &opts()).unwrap();
    assert_eq!(again.stores[0].expired, 0);
    assert_eq!(count(&w.db, "SELECT count(*) FROM chunks"), chunks);
    let _ = (&w.store, w.ino);
}

#[test]
fn a_dry_run_changes_nothing() {
    let w = world(6);
    let before = count(&w.db, "SELECT count(*) FROM chunks");
    let report = collect(
        &w.db,
        &keep(Some(2), None),
        &GcOptions {
            dry_run: true,
            ..opts()
        },
    )
    .unwrap();
    // Versions from 6..1 days ago; the 2-day window starts a little after the
    // one from 3 days ago was replaced, so the four oldest expire.
    assert_eq!(report.stores[0].expired, 4, "{:?}", report.stores[0]);
    assert_eq!(report.stores[0].removed, 0);
    assert_eq!(count(&w.db, "SELECT count(*) FROM chunks"), before);
    assert_eq!(
        count(
            &w.db,
            "SELECT count(*) FROM versions WHERE redacted_ns IS NOT NULL"
        ),
        0
    );
}

#[test]
fn legal_hold_removes_nothing() {
    let w = world(6);
    let rules = vec![(
        "kb".into(),
        Retention {
            keep_days: Some(0),
            keep_versions: Some(1),
            legal_hold: true,
        },
    )];
    let report = collect(&w.db, &rules, &opts()).unwrap();
    assert_eq!(report.stores[0].action, "legal hold");
    assert_eq!(report.removed(), 0);
    assert_eq!(
        count(
            &w.db,
            "SELECT count(*) FROM versions WHERE redacted_ns IS NOT NULL"
        ),
        0
    );
}

#[test]
fn a_version_a_live_mount_pins_stays_until_unpinned() {
    let w = world(6);
    let pinned = w.versions[1].0;
    let holder = crate::store::HolderInfo {
        id: "mount-1".into(),
        who: who(),
        pid: 1,
    };
    w.db.write(|tx| {
        tx.register_holder(&holder, 60 * 1_000_000_000)?;
        tx.set_pins("mount-1", &[pinned])
    })
    .unwrap();
    collect(&w.db, &keep(None, Some(1)), &opts()).unwrap();
    assert_eq!(content(&w.db, pinned).unwrap(), w.versions[1].1);
    assert!(content(&w.db, w.versions[0].0).is_err());
    // The mount goes away: its pin no longer counts.
    w.db.write(|tx| tx.remove_holder("mount-1")).unwrap();
    collect(&w.db, &keep(None, Some(1)), &opts()).unwrap();
    assert!(content(&w.db, pinned).is_err());
    assert_eq!(count(&w.db, "SELECT count(*) FROM pins"), 0);
}

#[test]
fn another_collector_is_refused_while_one_holds_the_lease() {
    let w = world(3);
    w.db.write(|tx| tx.take_maintenance(LEASE, "someone-else", now_ns(), 60 * 1_000_000_000))
        .unwrap()
        .unwrap();
    let err = collect(&w.db, &keep(None, Some(1)), &opts()).unwrap_err();
    assert!(matches!(err, GcError::Busy(_)), "{err}");
    // A dry run needs no lease.
    let dry = GcOptions {
        dry_run: true,
        ..opts()
    };
    assert_eq!(
        collect(&w.db, &keep(None, Some(1)), &dry).unwrap().stores[0].expired,
        2
    );
}

#[test]
fn freed_pages_go_back_to_the_filesystem() {
    let w = world(30);
    w.db.checkpoint().unwrap();
    let before = std::fs::metadata(&w.path).unwrap().len();
    let report = collect(&w.db, &keep(None, Some(2)), &opts()).unwrap();
    assert_eq!(report.before.auto_vacuum, "incremental");
    assert!(report.pages_vacuumed > 0, "{report:?}");
    assert_eq!(report.after.freelist_count, 0);
    w.db.checkpoint().unwrap();
    let after = std::fs::metadata(&w.path).unwrap().len();
    assert!(after < before / 2, "file {before} -> {after} bytes");
    assert!(w.db.read(|tx| tx.verify_audit()).unwrap().is_ok());
}

#[test]
fn an_older_database_without_auto_vacuum_is_told_and_switched_by_a_full_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // A database made before incremental auto-vacuum: a table exists first.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE early (x); DROP TABLE early;")
            .unwrap();
    }
    let db = Db::open(&path).unwrap();
    assert_eq!(db.space().unwrap().auto_vacuum, "none");
    db.write(|tx| {
        let s = tx.create_store("kb", Scope::Org, None, "", &who(), 1)?;
        tx.put_chunk(s.id, &noise(1, 100_000))?;
        Ok::<_, StoreError>(())
    })
    .unwrap();
    db.write(|tx| tx.execute_raw("DELETE FROM chunks")).unwrap();
    let report = collect(&db, &keep(None, Some(1)), &opts()).unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("memfsctl gc --vacuum")),
        "{:?}",
        report.notes
    );
    let full = GcOptions {
        vacuum: Vacuum::Full,
        ..opts()
    };
    collect(&db, &keep(None, Some(1)), &full).unwrap();
    let space = db.space().unwrap();
    assert_eq!(
        (space.auto_vacuum.as_str(), space.freelist_count),
        ("incremental", 0)
    );
}

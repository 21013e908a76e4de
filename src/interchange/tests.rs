//! Export and import on in-memory databases: a round trip keeps heads, versions
//! and attribution; hostile or damaged archives are refused without creating
//! anything, and never panic.

use super::archive::{MemberMeta, Writer};
use super::export::write_archive;
use super::import::import_archive;
use super::progress::Progress;
use super::*;
use crate::config::Config;
use crate::fs::{Attached, Caller, FsOptions, MemFs, OpenMode, RenameMode};
use crate::ids::{Identity, Ino};
use crate::store::Db;
use std::sync::Arc;

const ME: Caller = Caller {
    uid: 0,
    gid: 0,
    pid: 0,
};
const W: OpenMode = OpenMode {
    read: false,
    exclusive: false,
    write: true,
    append: false,
    truncate: false,
};

fn op() -> Identity {
    Identity::new("op", "op-1", Some("root"))
}

/// A store "kb" with several versions, two sessions, a rename, a hard link, a
/// symlink, an unlinked file and a big file spanning many chunks.
fn source() -> Arc<Db> {
    let db = Arc::new(Db::open_in_memory().unwrap());
    let kb = db
        .write(|tx| tx.create_store("kb", crate::store::Scope::Org, None, "test", &op(), 1))
        .unwrap();
    let session = |s: &str| {
        let fs = MemFs::new(
            db.clone(),
            Identity::new("agent-1", s, Some("alice")),
            vec![Attached::plain(kb.clone(), false)],
            FsOptions::default(),
        );
        fs.register().unwrap();
        fs
    };
    let put = |fs: &MemFs, dir: Ino, name: &str, data: &[u8]| -> Ino {
        match fs.lookup(dir, name.as_bytes(), ME) {
            Ok(a) => {
                let o = fs
                    .open(
                        a.ino,
                        OpenMode {
                            read: false,
                            exclusive: false,
                            truncate: true,
                            ..W
                        },
                        ME,
                    )
                    .unwrap();
                fs.write(o.fh, 0, data).unwrap();
                fs.release(o.fh).unwrap();
                a.ino
            }
            Err(_) => {
                let (a, o) = fs.create(dir, name.as_bytes(), 0o644, 0, W, ME).unwrap();
                fs.write(o.fh, 0, data).unwrap();
                fs.release(o.fh).unwrap();
                a.ino
            }
        }
    };
    let s1 = session("s1");
    let d = s1.mkdir(kb.root, b"notes", 0o755, 0, ME).unwrap().ino;
    let f = put(&s1, d, "a.md", b"one\n");
    put(&s1, d, "a.md", b"one\ntwo\n");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    put(&s1, kb.root, "big.bin", &big);
    s1.symlink(kb.root, b"link", b"notes/a.md", ME).unwrap();
    s1.link(f, kb.root, b"hard", ME).unwrap();
    put(&s1, kb.root, "gone", b"bye");
    s1.unlink(kb.root, b"gone", ME).unwrap();
    let s2 = session("s2");
    put(&s2, d, "a.md", b"one\ntwo\nthree\n");
    s2.rename(
        kb.root,
        b"notes",
        kb.root,
        b"notes2",
        RenameMode::default(),
        ME,
    )
    .unwrap();
    put(&s2, kb.root, "empty", b"");
    db
}

fn export(db: &Db, store: &str, history: bool) -> Vec<u8> {
    write_archive(db, store, history, Vec::new(), &mut Progress::silent())
        .unwrap()
        .1
}

fn import(db: &Db, data: &[u8], name: Option<&str>) -> Result<import::Imported> {
    import_archive(
        db,
        &Config::default(),
        data,
        name,
        &op(),
        &mut Progress::silent(),
    )
}

/// The metadata members of an archive, parsed.
fn members(data: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut ar = tar::Archive::new(data);
    let mut out = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        out.insert(name, v);
    }
    out
}

fn lines<T: serde::de::DeserializeOwned>(data: &[u8]) -> Vec<T> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// What must survive a round trip, with database-specific ids left out.
fn essence(data: &[u8]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let m = members(data);
    let files: Vec<NodeRecord> = lines(&m[FILES]);
    let versions: Vec<VersionRecord> = m.get(VERSIONS).map(|d| lines(d)).unwrap_or_default();
    let audit: Vec<AuditRecord> = m.get(AUDIT).map(|d| lines(d)).unwrap_or_default();
    let f = files
        .iter()
        .map(|r| {
            let v = r
                .version
                .as_ref()
                .map(|v| (&v.op, &v.agent, &v.session, &v.user, v.at_ns));
            format!(
                "{:?} {:?} {} {} {:?} {:?} {} {:?} {}",
                r.path, r.kind, r.mode, r.size, r.hash, r.target, r.mtime_ns, v, r.nlink
            )
        })
        .collect();
    let v = versions
        .iter()
        .map(|v| {
            format!(
                "{} {} {} {} {} {} {:?} {}",
                v.size, v.hash, v.op, v.path, v.agent, v.session, v.user, v.at_ns
            )
        })
        .collect();
    let a = audit
        .iter()
        .map(|a| {
            format!(
                "{} {} {:?} {:?} {} {}",
                a.at_ns, a.op, a.path, a.path2, a.agent, a.session
            )
        })
        .collect();
    (f, v, a)
}

#[test]
fn round_trip_keeps_heads_versions_and_attribution() {
    let src = source();
    let first = export(&src, "kb", true);
    let dst = Db::open_in_memory().unwrap();
    let done = import(&dst, &first, Some("copy")).unwrap();
    assert_eq!(done.store, "copy");
    assert!(done.versions >= 6, "{done:?}");
    let second = export(&dst, "copy", true);
    let (f1, v1, a1) = essence(&first);
    let (f2, v2, a2) = essence(&second);
    assert_eq!(f1, f2);
    assert_eq!(v1, v2);
    // The copy's log is the original's, plus its own store-create and import.
    assert_eq!(a2.len(), a1.len() + 2);
    assert_eq!(&a2[1..a2.len() - 1], &a1[..]);
    // Every imported entry says where it came from.
    let audit: Vec<AuditRecord> = lines(&members(&second)[AUDIT]);
    let orig: Vec<AuditRecord> = lines(&members(&first)[AUDIT]);
    for (new, old) in audit[1..audit.len() - 1].iter().zip(&orig) {
        let from = &new.detail.as_ref().unwrap()["imported_from"];
        assert_eq!(from["id"], old.id);
        assert_eq!(from["hash"], old.hash.as_str());
    }
    // The new database is sound: hashes, heads, links, chain.
    dst.read(|tx| {
        assert!(tx.verify_audit()?.is_ok());
        assert!(tx.link_counts()?.is_empty());
        for (id, _, size, hash) in tx.all_versions()? {
            let ext = tx.extents(crate::ids::VersionId(id))?;
            let data = tx.read_extents(&ext, 0, ext.size())?;
            assert_eq!(data.len() as u64, size);
            assert_eq!(blake3::hash(&data).to_hex().as_str(), hash);
        }
        for (ino, head, _, newest, _) in tx.file_heads()? {
            assert_eq!(head, newest, "inode {ino}");
        }
        Ok::<_, crate::error::StoreError>(())
    })
    .unwrap();
}

#[test]
fn head_only_round_trip_keeps_the_head_and_its_attribution() {
    let src = source();
    let first = export(&src, "kb", false);
    let names: Vec<String> = members(&first).into_keys().collect();
    assert!(
        !names.iter().any(|n| n.starts_with(VERSIONS_DIR)),
        "{names:?}"
    );
    let dst = Db::open_in_memory().unwrap();
    import(&dst, &first, None).unwrap();
    let (f1, _, _) = essence(&first);
    let (f2, _, _) = essence(&export(&dst, "kb", false));
    assert_eq!(f1, f2);
}

#[test]
fn an_existing_store_name_is_refused() {
    let src = source();
    let data = export(&src, "kb", true);
    let err = import(&src, &data, None).unwrap_err().to_string();
    assert!(
        err.contains("already exists") && err.contains("--as"),
        "{err}"
    );
}

fn store_count(db: &Db) -> usize {
    db.read(|tx| tx.stores()).unwrap().len()
}

/// Builds an archive from metadata and members, as a hostile exporter might.
fn craft(files: &[NodeRecord], extra: impl FnOnce(&mut Writer<Vec<u8>>)) -> Vec<u8> {
    let m = Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        store: StoreInfo {
            name: "evil".into(),
            scope: "org".into(),
            owner: None,
            description: String::new(),
            created_ns: 1,
            archived: false,
        },
        exported_at: String::new(),
        exported_at_ns: 1,
        memfs_version: String::new(),
        history: false,
        counts: Counts {
            paths: files.len() as u64,
            ..Default::default()
        },
    };
    let meta = MemberMeta::plain(0);
    let mut w = Writer::new(Vec::new());
    let text = serde_json::to_vec(&m).unwrap();
    w.file(MANIFEST, text.len() as u64, &meta, text.as_slice())
        .unwrap();
    let mut jl = Vec::new();
    for f in files {
        jl.extend(serde_json::to_vec(f).unwrap());
        jl.push(b'\n');
    }
    w.file(FILES, jl.len() as u64, &meta, jl.as_slice())
        .unwrap();
    extra(&mut w);
    w.finish().unwrap()
}

fn rec(path: &str, kind: Kind, ino: i64, content: Option<&[u8]>) -> NodeRecord {
    NodeRecord {
        path: Some(path.into()),
        kind,
        ino,
        mode: "644".into(),
        uid: 0,
        gid: 0,
        nlink: 1,
        size: content.map_or(0, |c| c.len() as u64),
        hash: content.map(|c| blake3::hash(c).to_hex().to_string()),
        mtime_ns: 5,
        atime_ns: 5,
        ctime_ns: 5,
        crtime_ns: 5,
        target: None,
        rdev: 0,
        version: content.map(|_| HeadVersion {
            id: ino,
            op: "write".into(),
            path: path.into(),
            agent: "a".into(),
            session: "s".into(),
            user: None,
            at_ns: 5,
        }),
    }
}

fn refused(data: &[u8], want: &str) {
    let db = Db::open_in_memory().unwrap();
    let err = import(&db, data, None).unwrap_err().to_string();
    assert!(err.contains(want), "expected '{want}' in: {err}");
    assert_eq!(store_count(&db), 0, "a refused import created a store");
}

#[test]
fn a_crafted_archive_is_accepted_when_sound() {
    let files = [
        rec("", Kind::Dir, 1, None),
        rec("a", Kind::File, 2, Some(b"hi")),
    ];
    let data = craft(&files, |w| {
        w.file("head/a", 2, &MemberMeta::plain(0), &b"hi"[..])
            .unwrap();
    });
    let db = Db::open_in_memory().unwrap();
    import(&db, &data, None).unwrap();
    assert_eq!(store_count(&db), 1);
}

#[test]
fn dotdot_members_are_refused() {
    let files = [rec("", Kind::Dir, 1, None)];
    let data = craft(&files, |w| {
        w.file("head/../evil", 2, &MemberMeta::plain(0), &b"hi"[..])
            .unwrap();
    });
    refused(&data, "'..'");
}

#[test]
fn dotdot_and_absolute_paths_in_metadata_are_refused() {
    for path in ["../evil", "/etc/evil", "a/../../evil"] {
        let files = [rec("", Kind::Dir, 1, None), rec(path, Kind::File, 2, None)];
        refused(&craft(&files, |_| {}), path);
    }
}

#[test]
fn escaping_symlinks_are_refused() {
    for target in ["../outside", "/etc/passwd", "a/../../x"] {
        let mut l = rec("l", Kind::Symlink, 2, None);
        l.target = Some(target.into());
        let files = [rec("", Kind::Dir, 1, None), l];
        refused(&craft(&files, |_| {}), "symlink 'l'");
    }
}

#[test]
fn hash_mismatches_are_refused() {
    let files = [
        rec("", Kind::Dir, 1, None),
        rec("a", Kind::File, 2, Some(b"hi")),
    ];
    let data = craft(&files, |w| {
        w.file("head/a", 2, &MemberMeta::plain(0), &b"ho"[..])
            .unwrap();
    });
    refused(&data, "hash mismatch");
}

#[test]
fn hard_links_outside_the_archive_are_refused() {
    let files = [
        rec("", Kind::Dir, 1, None),
        rec("a", Kind::File, 2, Some(b"hi")),
    ];
    let data = craft(&files, |w| {
        w.hard_link("head/a", "/etc/shadow", &MemberMeta::plain(0))
            .unwrap();
    });
    refused(&data, "points outside");
}

#[test]
fn missing_content_and_unknown_members_are_refused() {
    let files = [
        rec("", Kind::Dir, 1, None),
        rec("a", Kind::File, 2, Some(b"hi")),
    ];
    refused(&craft(&files, |_| {}), "no content member for 'a'");
    let data = craft(&files, |w| {
        w.file("head/a", 2, &MemberMeta::plain(0), &b"hi"[..])
            .unwrap();
        w.file("README", 1, &MemberMeta::plain(0), &b"x"[..])
            .unwrap();
    });
    refused(&data, "unexpected member");
    let data = craft(&files, |w| {
        w.file("head/b", 2, &MemberMeta::plain(0), &b"hi"[..])
            .unwrap();
    });
    refused(&data, "not in files.jsonl");
}

#[test]
fn files_over_the_quota_are_refused() {
    let files = [
        rec("", Kind::Dir, 1, None),
        rec("a", Kind::File, 2, Some(b"hello")),
    ];
    let data = craft(&files, |w| {
        w.file("head/a", 5, &MemberMeta::plain(0), &b"hello"[..])
            .unwrap();
    });
    let mut config = Config::default();
    config.daemon.max_file_bytes = 4;
    let db = Db::open_in_memory().unwrap();
    let err = import_archive(
        &db,
        &config,
        data.as_slice(),
        None,
        &op(),
        &mut Progress::silent(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("maximum file size"), "{err}");
    assert_eq!(store_count(&db), 0);
}

#[test]
fn non_exports_are_refused() {
    refused(b"", "not a memfs export");
    refused(&[0u8; 1024], "not a memfs export");
    let mut w = Writer::new(Vec::new());
    w.file("hello.txt", 2, &MemberMeta::plain(0), &b"hi"[..])
        .unwrap();
    refused(&w.finish().unwrap(), "unexpected member");
}

/// Truncated, bit-flipped and garbage archives: an error or a sound import,
/// never a panic, and never half a store.
#[test]
fn damaged_archives_never_panic_or_half_import() {
    let src = source();
    let good = export(&src, "kb", true);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for cut in (0..good.len()).step_by(good.len() / 97 + 1) {
        cases.push(good[..cut].to_vec());
    }
    for _ in 0..150 {
        let mut bad = good.clone();
        for _ in 0..1 + rand() % 4 {
            let at = (rand() % bad.len() as u64) as usize;
            bad[at] ^= 1 << (rand() % 8);
        }
        cases.push(bad);
    }
    for _ in 0..20 {
        let len = (rand() % 4096) as usize;
        cases.push((0..len).map(|_| rand() as u8).collect());
    }
    for data in cases {
        let db = Db::open_in_memory().unwrap();
        let before = store_count(&db);
        match import(&db, &data, Some("copy")) {
            Ok(_) => {
                // A flip the format cannot see (a timestamp, padding) may pass;
                // the store must then be whole and sound.
                assert!(db.read(|tx| tx.verify_audit()).unwrap().is_ok());
                assert_eq!(store_count(&db), before + 1);
            }
            Err(_) => assert_eq!(store_count(&db), before),
        }
    }
}

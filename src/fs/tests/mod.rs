//! Core filesystem behaviour on an in-memory database (no FUSE).

use super::*;
use crate::store::Scope;

mod races;

const ME: Caller = Caller {
    uid: 0,
    gid: 0,
    pid: 0,
};

fn setup_with(read_only: bool) -> (MemFs, Ino) {
    let db = Db::open_in_memory().unwrap();
    let op = Identity::new("op", "op", None);
    let (kb, other) = db
        .write(|tx| {
            let kb = tx.create_store("kb", Scope::Org, None, "", &op, 1)?;
            let other = tx.create_store("other", Scope::Org, None, "", &op, 1)?;
            Ok::<_, crate::error::StoreError>((kb, other))
        })
        .unwrap();
    let root = kb.root;
    let fs = MemFs::new(
        Arc::new(db),
        Identity::new("agent-1", "sess-1", Some("alice")),
        vec![
            Attached::plain(kb, read_only),
            Attached::plain(other, false),
        ],
        FsOptions::default(),
    );
    fs.register().unwrap();
    (fs, root)
}

fn setup() -> (MemFs, Ino) {
    setup_with(false)
}

const W: OpenMode = OpenMode {
    read: false,
    exclusive: false,
    write: true,
    append: false,
    truncate: false,
};
const A: OpenMode = OpenMode {
    read: false,
    exclusive: false,
    write: true,
    append: true,
    truncate: false,
};
const R: OpenMode = OpenMode {
    read: false,
    exclusive: false,
    write: false,
    append: false,
    truncate: false,
};

fn put(fs: &MemFs, dir: Ino, name: &str, data: &[u8]) -> Ino {
    let (attr, o) = fs.create(dir, name.as_bytes(), 0o644, 0, W, ME).unwrap();
    fs.write(o.fh, 0, data).unwrap();
    fs.release(o.fh).unwrap();
    attr.ino
}

fn read_all(fs: &MemFs, ino: Ino) -> Vec<u8> {
    let o = fs.open(ino, R, ME).unwrap();
    let mut out = Vec::new();
    loop {
        let d = fs.read(o.fh, out.len() as u64, 100_000).unwrap();
        if d.is_empty() {
            break;
        }
        out.extend_from_slice(&d);
    }
    fs.release(o.fh).unwrap();
    out
}

fn versions(fs: &MemFs, ino: Ino) -> Vec<crate::store::VersionRow> {
    fs.db.read(|tx| tx.versions_of(ino)).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so chunking sees varied content.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn one_version_per_close_not_per_write() {
    let (fs, root) = setup();
    let (attr, o) = fs.create(root, b"notes.md", 0o644, 0o022, W, ME).unwrap();
    for i in 0..100u64 {
        fs.write(o.fh, i * 3, b"abc").unwrap();
    }
    fs.flush(o.fh).unwrap();
    fs.release(o.fh).unwrap();
    assert_eq!(versions(&fs, attr.ino).len(), 1);
    for _ in 0..4 {
        let o = fs.open(attr.ino, A, ME).unwrap();
        fs.write(o.fh, 0, b"more\n").unwrap();
        fs.flush(o.fh).unwrap();
        // A second flush of the same (duplicated) descriptor adds nothing.
        fs.flush(o.fh).unwrap();
        fs.release(o.fh).unwrap();
    }
    let vs = versions(&fs, attr.ino);
    assert_eq!(vs.len(), 5);
    assert!(vs
        .iter()
        .all(|v| v.agent == "agent-1" && v.session == "sess-1"));
    assert_eq!(vs[4].size, 300 + 20);
    let content = read_all(&fs, attr.ino);
    assert!(content.ends_with(b"more\nmore\n"));
    assert_eq!(vs[4].hash, blake3::hash(&content).to_hex().as_str());
}

#[test]
fn opening_for_read_or_closing_unwritten_adds_no_version() {
    let (fs, root) = setup();
    let ino = put(&fs, root, "a", b"x");
    for _ in 0..3 {
        let o = fs.open(ino, W, ME).unwrap();
        fs.flush(o.fh).unwrap();
        fs.release(o.fh).unwrap();
        read_all(&fs, ino);
    }
    assert_eq!(versions(&fs, ino).len(), 1);
}

#[test]
fn appends_cost_about_the_appended_bytes() {
    let (fs, root) = setup();
    let store = fs.attached()[0].store.id;
    let base = noise(1 << 20, 7);
    let ino = put(&fs, root, "log", &base);
    let (before, _, _) = fs.db.read(|tx| tx.storage_stats(store)).unwrap();
    let mut expect = base.clone();
    for i in 0..1000 {
        let line = format!("{i:099}\n");
        let o = fs.open(ino, A, ME).unwrap();
        fs.write(o.fh, 0, line.as_bytes()).unwrap();
        fs.release(o.fh).unwrap();
        expect.extend_from_slice(line.as_bytes());
    }
    let (after, manifests, n) = fs.db.read(|tx| tx.storage_stats(store)).unwrap();
    assert_eq!(n, 1001);
    let growth = (after - before) + manifests;
    eprintln!("1000 appends of 100 B to a 1 MiB file: history grew {growth} bytes");
    // A full copy per version would be ~1 GiB; the appended bytes are 100 KB.
    assert!(
        growth < 1 << 20,
        "history grew {growth} bytes for 100 KB of appends"
    );
    assert_eq!(read_all(&fs, ino), expect);
    let head = versions(&fs, ino).pop().unwrap();
    assert_eq!(head.hash, blake3::hash(&expect).to_hex().as_str());
}

/// Appends `n` lines to `ino`, each through an open, a write and a close of
/// its own (one version each), and to `expect`.
fn append_lines(fs: &MemFs, ino: Ino, n: usize, expect: &mut Vec<u8>) {
    for i in 0..n {
        let o = fs.open(ino, A, ME).unwrap();
        let line = format!("line {i}\n");
        fs.write(o.fh, 0, line.as_bytes()).unwrap();
        fs.release(o.fh).unwrap();
        expect.extend_from_slice(line.as_bytes());
    }
}

#[test]
fn long_append_chains_are_flattened_and_still_read_right() {
    let (fs, root) = setup();
    let ino = put(&fs, root, "f", b"start\n");
    let mut expect = b"start\n".to_vec();
    append_lines(&fs, ino, 300, &mut expect);
    let vs = versions(&fs, ino);
    assert!(vs.iter().all(|v| v.depth <= 64), "chain depth unbounded");
    assert!(
        vs.iter().any(|v| v.base.is_none() && v.id != vs[0].id),
        "never flattened"
    );
    assert_eq!(read_all(&fs, ino), expect);
    // Every historical version still reads back as it was.
    let v10 = &vs[10];
    let ext = fs.db.read(|tx| tx.extents(v10.id)).unwrap();
    let old = fs
        .db
        .read(|tx| tx.read_extents(&ext, 0, ext.size()))
        .unwrap();
    assert_eq!(blake3::hash(&old).to_hex().as_str(), v10.hash);
}

#[test]
fn a_flattened_append_reads_from_what_was_stored_once_unused_chunks_are_gone() {
    // At the depth limit a version is stored flat and its small appended
    // extents are re-chunked, so the chunk the last append wrote may be used by
    // no version. The mount must serve the file from the stored list: after
    // retention deletes the unused chunks, the composed list would name a
    // chunk that no longer exists.
    let (fs, root) = setup();
    let store = fs.attached()[0].store.id;
    let ino = put(&fs, root, "f", b"start\n");
    let mut expect = b"start\n".to_vec();
    append_lines(&fs, ino, 70, &mut expect);
    let vs = versions(&fs, ino);
    assert!(
        vs.iter().skip(1).any(|v| v.base.is_none()),
        "no version was stored flat"
    );
    let who = fs.who.clone();
    let removal = fs
        .db
        .write(|tx| {
            tx.expire_versions(
                store,
                &[vs[1].id],
                &crate::retention::Retention::default(),
                &who,
                now_ns(),
            )
        })
        .unwrap();
    assert!(removal.chunks_deleted > 0, "no unused chunk was deleted");
    assert_eq!(read_all(&fs, ino), expect);
    // And the next append builds on the stored list.
    let o = fs.open(ino, A, ME).unwrap();
    fs.write(o.fh, 0, b"after\n").unwrap();
    fs.release(o.fh).unwrap();
    expect.extend_from_slice(b"after\n");
    assert_eq!(read_all(&fs, ino), expect);
}

#[test]
fn random_offsets_read_back_and_middle_edits_dedup() {
    let (fs, root) = setup();
    let store = fs.attached()[0].store.id;
    let data = noise(700_000, 3);
    let (attr, o) = fs.create(root, b"blob", 0o644, 0, W, ME).unwrap();
    // Odd-sized pieces, written out of order.
    let mut pieces: Vec<(usize, usize)> =
        (0..data.len()).step_by(4099).map(|s| (s, 4099)).collect();
    pieces.reverse();
    for (s, n) in pieces {
        let e = (s + n).min(data.len());
        fs.write(o.fh, s as u64, &data[s..e]).unwrap();
    }
    fs.release(o.fh).unwrap();
    assert_eq!(read_all(&fs, attr.ino), data);
    let (c1, _, _) = fs.db.read(|tx| tx.storage_stats(store)).unwrap();
    // Rewrite a few bytes in the middle: only chunks near the edit are new.
    let o = fs.open(attr.ino, W, ME).unwrap();
    fs.write(o.fh, 350_000, b"EDIT").unwrap();
    fs.release(o.fh).unwrap();
    let (c2, _, _) = fs.db.read(|tx| tx.storage_stats(store)).unwrap();
    eprintln!(
        "a 4-byte edit in a 700 KB file stored {} new chunk bytes",
        c2 - c1
    );
    // Re-chunking starts at the edited chunk's boundary, so CDC finds the old cut
    // points again right after the edit: at most a couple of chunks are new.
    assert!(
        c2 - c1 <= 2 * 65_536,
        "a 4-byte edit stored {} new bytes",
        c2 - c1
    );
    let mut expect = data.clone();
    expect[350_000..350_004].copy_from_slice(b"EDIT");
    assert_eq!(read_all(&fs, attr.ino), expect);
    // Reads at arbitrary offsets through one handle.
    let o = fs.open(attr.ino, R, ME).unwrap();
    for off in [0u64, 1, 16_383, 16_384, 65_535, 349_999, 699_990] {
        let got = fs.read(o.fh, off, 100).unwrap();
        let end = (off as usize + 100).min(expect.len());
        assert_eq!(got, &expect[off as usize..end], "offset {off}");
    }
    fs.release(o.fh).unwrap();
}

#[test]
fn truncate_shrinks_extends_with_zeros_and_rejects_huge_sizes() {
    let (fs, root) = setup();
    let ino = put(&fs, root, "t", b"0123456789");
    let set = |size| SetAttr {
        size: Some(size),
        ..Default::default()
    };
    fs.setattr(ino, set(4), ME).unwrap();
    assert_eq!(read_all(&fs, ino), b"0123");
    fs.setattr(ino, set(8), ME).unwrap();
    assert_eq!(read_all(&fs, ino), b"0123\0\0\0\0");
    // Sparse: a 3 GiB hole stores nothing.
    fs.setattr(ino, set(3 << 30), ME).unwrap();
    assert_eq!(fs.getattr(ino).unwrap().size, 3 << 30);
    let err = fs.setattr(ino, set(999_999_999_999_999), ME).unwrap_err();
    assert_eq!(err.to_errno(), libc::EFBIG);
    fs.setattr(ino, set(2), ME).unwrap();
    assert_eq!(read_all(&fs, ino), b"01");
    let vs = versions(&fs, ino);
    assert_eq!(vs.len(), 5);
    assert!(vs[1..].iter().all(|v| v.op == "truncate"));
}

#[test]
fn open_with_truncate_then_write_is_one_version() {
    let (fs, root) = setup();
    let ino = put(&fs, root, "f", b"old content that is long");
    let o = fs
        .open(
            ino,
            OpenMode {
                read: false,
                exclusive: false,
                write: true,
                append: false,
                truncate: true,
            },
            ME,
        )
        .unwrap();
    assert_eq!(fs.getattr(ino).unwrap().size, 0);
    fs.write(o.fh, 0, b"new").unwrap();
    fs.release(o.fh).unwrap();
    assert_eq!(read_all(&fs, ino), b"new");
    assert_eq!(versions(&fs, ino).len(), 2);
}

#[test]
fn descriptors_in_one_mount_see_each_others_staged_writes() {
    let (fs, root) = setup();
    let ino = put(&fs, root, "shared", b"aaaa");
    let w = fs.open(ino, W, ME).unwrap();
    let r = fs.open(ino, R, ME).unwrap();
    fs.write(w.fh, 4, b"bbbb").unwrap();
    assert_eq!(fs.read(r.fh, 0, 100).unwrap(), b"aaaabbbb");
    assert_eq!(fs.getattr(ino).unwrap().size, 8);
    // Closing the reader does not commit the writer's bytes.
    fs.release(r.fh).unwrap();
    assert_eq!(versions(&fs, ino).len(), 1);
    fs.release(w.fh).unwrap();
    assert_eq!(versions(&fs, ino).len(), 2);
}

#[test]
fn unlink_while_open_keeps_the_descriptor_working() {
    let (fs, root) = setup();
    let ino = put(&fs, root, "tmp", b"hello");
    let o = fs.open(ino, W, ME).unwrap();
    fs.unlink(root, b"tmp", ME).unwrap();
    assert_eq!(
        fs.lookup(root, b"tmp", ME).unwrap_err().to_errno(),
        libc::ENOENT
    );
    fs.write(o.fh, 5, b" world").unwrap();
    assert_eq!(fs.read(o.fh, 0, 100).unwrap(), b"hello world");
    assert_eq!(fs.getattr(ino).unwrap().size, 11);
    assert_eq!(fs.getattr(ino).unwrap().nlink, 0);
    fs.fsync(o.fh).unwrap();
    fs.release(o.fh).unwrap();
    // The unlinked file's history is kept; nothing new was versioned after unlink.
    assert_eq!(versions(&fs, ino).len(), 1);
}

#[test]
fn rename_replaces_and_honours_noreplace_and_exchange() {
    let (fs, root) = setup();
    let a = put(&fs, root, "a", b"A");
    let b = put(&fs, root, "b", b"B");
    let nr = RenameMode {
        noreplace: true,
        exchange: false,
    };
    assert_eq!(
        fs.rename(root, b"a", root, b"b", nr, ME)
            .unwrap_err()
            .to_errno(),
        libc::EEXIST
    );
    let ex = RenameMode {
        noreplace: false,
        exchange: true,
    };
    fs.rename(root, b"a", root, b"b", ex, ME).unwrap();
    assert_eq!(fs.lookup(root, b"a", ME).unwrap().ino, b);
    assert_eq!(fs.lookup(root, b"b", ME).unwrap().ino, a);
    fs.rename(root, b"a", root, b"b", RenameMode::default(), ME)
        .unwrap();
    assert_eq!(fs.lookup(root, b"b", ME).unwrap().ino, b);
    assert_eq!(
        fs.lookup(root, b"a", ME).unwrap_err().to_errno(),
        libc::ENOENT
    );
    assert_eq!(fs.getattr(a).unwrap().nlink, 0);
    assert_eq!(read_all(&fs, b), b"B");
}

#[test]
fn directory_rules() {
    let (fs, root) = setup();
    let d = fs.mkdir(root, b"d", 0o755, 0, ME).unwrap();
    let sub = fs.mkdir(d.ino, b"sub", 0o755, 0, ME).unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 3);
    put(&fs, sub.ino, "f", b"x");
    let plain = RenameMode::default();
    assert_eq!(
        fs.rename(root, b"d", sub.ino, b"x", plain, ME)
            .unwrap_err()
            .to_errno(),
        libc::EINVAL
    );
    assert_eq!(
        fs.rmdir(d.ino, b"sub", ME).unwrap_err().to_errno(),
        libc::ENOTEMPTY
    );
    assert_eq!(
        fs.unlink(root, b"d", ME).unwrap_err().to_errno(),
        libc::EISDIR
    );
    assert_eq!(
        fs.rmdir(sub.ino, b"f", ME).unwrap_err().to_errno(),
        libc::ENOTDIR
    );
    // Moving a directory to another parent moves its ".." link count.
    let e = fs.mkdir(root, b"e", 0o755, 0, ME).unwrap();
    fs.rename(d.ino, b"sub", e.ino, b"sub", plain, ME).unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 2);
    assert_eq!(fs.getattr(e.ino).unwrap().nlink, 3);
    let mut names = Vec::new();
    let h = fs.opendir(e.ino).unwrap();
    fs.readdir(h, 0, |entry, _| {
        names.push(String::from_utf8_lossy(&entry.name).into_owned());
        false
    })
    .unwrap();
    fs.releasedir(h);
    assert_eq!(names, vec![".", "..", "sub"]);
    fs.unlink(sub.ino, b"f", ME).unwrap();
    fs.rmdir(e.ino, b"sub", ME).unwrap();
    assert_eq!(fs.getattr(e.ino).unwrap().nlink, 2);
    assert_eq!(
        fs.mkdir(root, b"e", 0o755, 0, ME).unwrap_err().to_errno(),
        libc::EEXIST
    );
}

#[test]
fn root_and_read_only_stores_refuse_changes() {
    let (fs, root) = setup_with(true);
    let e = |r: FsResult<Attr>| r.unwrap_err().to_errno();
    assert_eq!(e(fs.mkdir(Ino::ROOT, b"x", 0o755, 0, ME)), libc::EROFS);
    assert_eq!(e(fs.mkdir(root, b"x", 0o755, 0, ME)), libc::EROFS);
    assert_eq!(
        fs.create(root, b"x", 0o644, 0, W, ME)
            .unwrap_err()
            .to_errno(),
        libc::EROFS
    );
    let other = fs.attached()[1].store.root;
    let ino = put(&fs, other, "f", b"x");
    let err = fs
        .rename(other, b"f", root, b"f", RenameMode::default(), ME)
        .unwrap_err();
    assert_eq!(err.to_errno(), libc::EROFS);
    assert_eq!(
        fs.link(ino, root, b"g", ME).unwrap_err().to_errno(),
        libc::EROFS
    );
}

#[test]
fn cross_store_rename_and_link_are_exdev() {
    let (fs, root) = setup();
    let other = fs.attached()[1].store.root;
    let ino = put(&fs, root, "f", b"x");
    let err = fs
        .rename(root, b"f", other, b"f", RenameMode::default(), ME)
        .unwrap_err();
    assert_eq!(err.to_errno(), libc::EXDEV);
    assert_eq!(
        fs.link(ino, other, b"g", ME).unwrap_err().to_errno(),
        libc::EXDEV
    );
}

#[test]
fn names_are_checked() {
    let (fs, root) = setup();
    let long = vec![b'a'; 256];
    assert_eq!(
        fs.mkdir(root, &long, 0o755, 0, ME).unwrap_err().to_errno(),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        fs.lookup(root, &long, ME).unwrap_err().to_errno(),
        libc::ENAMETOOLONG
    );
    let ok = vec![b'a'; 255];
    fs.mkdir(root, &ok, 0o755, 0, ME).unwrap();
}

#[test]
fn symlinks_and_hard_links() {
    let (fs, root) = setup();
    let s = fs.symlink(root, b"ln", b"target/path", ME).unwrap();
    assert_eq!(fs.readlink(s.ino).unwrap(), b"target/path");
    let ino = put(&fs, root, "f", b"x");
    let l = fs.link(ino, root, b"g", ME).unwrap();
    assert_eq!(l.nlink, 2);
    fs.unlink(root, b"f", ME).unwrap();
    assert_eq!(fs.getattr(ino).unwrap().nlink, 1);
    let g = fs.lookup(root, b"g", ME).unwrap();
    assert_eq!(read_all(&fs, g.ino), b"x");
}

#[test]
fn every_change_is_audited_and_the_chain_verifies() {
    let (fs, root) = setup();
    let d = fs.mkdir(root, b"dir", 0o755, 0, ME).unwrap();
    let ino = put(&fs, d.ino, "a.txt", b"1");
    fs.rename(d.ino, b"a.txt", d.ino, b"b.txt", RenameMode::default(), ME)
        .unwrap();
    fs.setattr(
        ino,
        SetAttr {
            mode: Some(0o600),
            ..Default::default()
        },
        ME,
    )
    .unwrap();
    // Re-applying the same mode is not a change.
    fs.setattr(
        ino,
        SetAttr {
            mode: Some(0o600),
            ..Default::default()
        },
        ME,
    )
    .unwrap();
    fs.symlink(root, b"s", b"dir/b.txt", ME).unwrap();
    fs.unlink(d.ino, b"b.txt", ME).unwrap();
    fs.rmdir(root, b"dir", ME).unwrap();
    let entries = audit_all(&fs);
    let mine = op_paths(&entries, |e| e.agent == "agent-1");
    let expect = [
        ("mkdir", "dir"),
        ("create", "dir/a.txt"),
        ("write", "dir/a.txt"),
        ("rename", "dir/a.txt"),
        ("chmod", "dir/b.txt"),
        ("symlink", "s"),
        ("unlink", "dir/b.txt"),
        ("rmdir", "dir"),
    ];
    assert_eq!(mine, owned_pairs(&expect));
    assert!(entries
        .iter()
        .filter(|e| e.agent == "agent-1")
        .all(|e| e.session == "sess-1" && e.user.as_deref() == Some("alice")));
    let rename = entries.iter().find(|e| e.op == "rename").unwrap();
    assert_eq!(rename.path2.as_deref(), Some("dir/b.txt"));
    assert_eq!(
        fs.db.read(|tx| tx.verify_audit()).unwrap().unwrap(),
        entries.len() as u64
    );
    // Tampering with one row is caught, naming that row.
    fs.db
        .write(|tx| tx.execute_raw("UPDATE audit SET path = 'evil' WHERE op = 'chmod'"))
        .unwrap();
    let brk = fs.db.read(|tx| tx.verify_audit()).unwrap().unwrap_err();
    assert_eq!(
        Some(brk.id),
        entries.iter().find(|e| e.op == "chmod").map(|e| e.id)
    );
}

#[test]
fn large_files_spill_to_disk_and_read_back() {
    let db = Db::open_in_memory().unwrap();
    let op = Identity::new("op", "op", None);
    let kb = db
        .write(|tx| tx.create_store("kb", Scope::Org, None, "", &op, 1))
        .unwrap();
    let root = kb.root;
    let opts = FsOptions {
        spill_bytes: 64 * 1024,
        ..Default::default()
    };
    let fs = MemFs::new(
        Arc::new(db),
        Identity::new("a", "s", None),
        vec![Attached::plain(kb, false)],
        opts,
    );
    let data = noise(1_000_000, 11);
    let (attr, o) = fs.create(root, b"big", 0o644, 0, W, ME).unwrap();
    for (i, piece) in data.chunks(128 * 1024).enumerate() {
        fs.write(o.fh, (i * 128 * 1024) as u64, piece).unwrap();
    }
    // A write before earlier ones forces the spilled tail to grow at the front.
    let o2 = fs.open(attr.ino, W, ME).unwrap();
    fs.release(o.fh).unwrap();
    fs.write(o2.fh, 10, b"XY").unwrap();
    fs.release(o2.fh).unwrap();
    let mut expect = data;
    expect[10..12].copy_from_slice(b"XY");
    assert_eq!(read_all(&fs, attr.ino), expect);
}

/// Two mounts (two `MemFs`) over one database, as two daemons would be.
fn two_mounts() -> (MemFs, MemFs, Ino) {
    two_mounts_with(FsOptions::default())
}

fn two_mounts_with(opts: FsOptions) -> (MemFs, MemFs, Ino) {
    let (a0, root) = setup();
    let a = MemFs::new(
        a0.db.clone(),
        a0.who.clone(),
        a0.attached().to_vec(),
        opts.clone(),
    );
    let b = MemFs::new(
        a0.db.clone(),
        Identity::new("agent-2", "sess-2", None),
        a0.attached().to_vec(),
        opts,
    );
    a.register().unwrap();
    b.register().unwrap();
    (a, b, root)
}

fn quick_leases(ttl_ms: u64) -> FsOptions {
    FsOptions {
        lease_ttl: std::time::Duration::from_millis(ttl_ms),
        lease_wait: std::time::Duration::from_millis(100),
        ..Default::default()
    }
}

#[test]
fn appends_from_two_mounts_both_land() {
    let (a, b, root) = two_mounts();
    let ino = put(&a, root, "log", b"start\n");
    let ha = a.open(ino, A, ME).unwrap();
    a.write(ha.fh, 0, b"from a\n").unwrap();
    let hb = b.open(ino, A, ME).unwrap();
    b.write(hb.fh, 0, b"from b\n").unwrap();
    b.release(hb.fh).unwrap();
    // A's staging was based on the old head; its append lands after B's.
    a.release(ha.fh).unwrap();
    assert_eq!(read_all(&a, ino), b"start\nfrom b\nfrom a\n");
    let head = versions(&a, ino).pop().unwrap();
    assert_eq!(
        head.hash,
        blake3::hash(b"start\nfrom b\nfrom a\n").to_hex().as_str()
    );
}

/// A close (FLUSH) that commits gives up the lease of its only user in the
/// same transaction, so another mount may write at once; a later write
/// through the still open handle (a descriptor dup'ed before the close) takes
/// the lease back and builds on what the other mount committed.
#[test]
fn a_committing_close_gives_up_the_lease_and_a_later_write_takes_it_back() {
    let (a, b, root) = two_mounts_with(quick_leases(30_000));
    let ino = put(&a, root, "facts", b"v1\n");
    let ha = a.open(ino, W, ME).unwrap();
    a.write(ha.fh, 0, b"v2\n").unwrap();
    a.flush(ha.fh).unwrap();
    let live = |fs: &MemFs| fs.db.read(|tx| tx.live_lease(ino)).unwrap();
    assert!(
        live(&a).is_none(),
        "the lease outlived the committing close"
    );
    let hb = b.open(ino, W, ME).unwrap();
    b.write(hb.fh, 3, b"b\n").unwrap();
    // While b holds the lease, a write through a's handle waits, then fails.
    assert_eq!(a.write(ha.fh, 0, b"x").unwrap_err().to_errno(), libc::EBUSY);
    b.release(hb.fh).unwrap();
    a.write(ha.fh, 0, b"v3\n").unwrap();
    assert_eq!(live(&a).unwrap().holder, a.holder);
    a.release(ha.fh).unwrap();
    assert!(live(&a).is_none());
    assert_eq!(read_all(&a, ino), b"v3\nb\n");
    // A close that committed nothing keeps the lease to RELEASE, as before.
    let h = a.open(ino, W, ME).unwrap();
    a.flush(h.fh).unwrap();
    assert_eq!(live(&a).unwrap().holder, a.holder);
    a.release(h.fh).unwrap();
    assert!(live(&a).is_none());
}

#[test]
fn a_second_writer_gets_ebusy_until_the_first_closes() {
    let (a, b, root) = two_mounts_with(quick_leases(30_000));
    let ino = put(&a, root, "facts", b"v1\n");
    let ha = a.open(ino, W, ME).unwrap();
    let err = b.open(ino, W, ME).unwrap_err();
    assert_eq!(err.to_errno(), libc::EBUSY);
    assert!(err.to_string().contains("agent-1"), "{err}");
    // Readers and appenders are not excluded.
    let r = b.open(ino, R, ME).unwrap();
    b.release(r.fh).unwrap();
    a.write(ha.fh, 0, b"A2\n").unwrap();
    a.release(ha.fh).unwrap();
    let hb = b.open(ino, W, ME).unwrap();
    // B's open came after A's commit: it builds on A's version.
    assert_eq!(b.read(hb.fh, 0, 10).unwrap(), b"A2\n");
    b.write(hb.fh, 3, b"B3\n").unwrap();
    b.release(hb.fh).unwrap();
    assert_eq!(read_all(&a, ino), b"A2\nB3\n");
}

#[test]
fn a_writer_whose_lease_lapsed_is_fenced_and_its_bytes_kept_as_a_conflict() {
    // No renewal runs in this test, so leases lapse after 50 ms, as when a daemon
    // is frozen with SIGSTOP.
    let (a, b, root) = two_mounts_with(quick_leases(50));
    let ino = put(&a, root, "facts", b"v1\n");
    let ha = a.open(ino, W, ME).unwrap();
    a.write(ha.fh, 0, b"A2\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(80));
    let hb = b.open(ino, W, ME).unwrap();
    b.write(hb.fh, 0, b"B2\n").unwrap();
    b.release(hb.fh).unwrap();
    let err = a.flush(ha.fh).unwrap_err();
    assert_eq!(err.to_errno(), libc::EBUSY);
    a.release(ha.fh).unwrap();
    assert_eq!(read_all(&a, ino), b"B2\n");
    let vs = versions(&a, ino);
    let conflict = vs
        .iter()
        .find(|v| v.op == "conflict")
        .expect("conflict version");
    assert_eq!(conflict.agent, "agent-1");
    let ext = a.db.read(|tx| tx.extents(conflict.id)).unwrap();
    let kept = a.db.read(|tx| tx.read_extents(&ext, 0, 100)).unwrap();
    assert_eq!(kept, b"A2\n");
    let audit =
        a.db.read(|tx| tx.audit_entries(&Default::default()))
            .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.op == "conflict" && e.agent == "agent-1"));
}

#[test]
fn a_renewed_lease_does_not_lapse() {
    let opts = FsOptions {
        lease_ttl: std::time::Duration::from_millis(150),
        lease_wait: std::time::Duration::from_millis(10),
        ..Default::default()
    };
    let (a, b, root) = two_mounts_with(opts);
    let ino = put(&a, root, "f", b"1");
    let ha = a.open(ino, W, ME).unwrap();
    // Renewed every 50 ms, the lease outlives its 150 ms TTL several times over.
    for _ in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        a.renew().unwrap();
    }
    assert_eq!(b.open(ino, W, ME).unwrap_err().to_errno(), libc::EBUSY);
    a.release(ha.fh).unwrap();
}

#[test]
fn locks_bind_across_mounts_and_die_with_their_holder() {
    use crate::store::LockSpec;
    let (a, b, root) = two_mounts_with(quick_leases(50));
    let ino = put(&a, root, "lockfile", b"");
    let whole = |owner| LockSpec {
        ino,
        owner,
        start: 0,
        end: u64::MAX,
        exclusive: true,
        pid: 1,
    };
    assert!(a.setlk(&whole(1), Some(true)).unwrap());
    assert!(!b.setlk(&whole(2), Some(true)).unwrap());
    assert!(
        !b.setlk(&whole(2), Some(false)).unwrap(),
        "shared lock granted over exclusive"
    );
    assert!(b.getlk(&whole(2)).unwrap().is_some());
    // The same owner may re-lock; unlocking frees it for the other mount.
    assert!(a.setlk(&whole(1), Some(true)).unwrap());
    a.unlock_owner(ino, 1).unwrap();
    assert!(b.setlk(&whole(2), Some(true)).unwrap());
    b.setlk(&whole(2), None).unwrap();
    // Byte ranges: disjoint ranges do not conflict.
    let range = |owner, start, end| LockSpec {
        ino,
        owner,
        start,
        end,
        exclusive: true,
        pid: 1,
    };
    assert!(a.setlk(&range(1, 0, 9), Some(true)).unwrap());
    assert!(b.setlk(&range(2, 10, 19), Some(true)).unwrap());
    assert!(!b.setlk(&range(2, 5, 12), Some(true)).unwrap());
    // A holder that stops renewing (dead daemon) stops blocking others.
    std::thread::sleep(std::time::Duration::from_millis(80));
    b.renew().unwrap();
    assert!(b.setlk(&range(2, 0, 9), Some(true)).unwrap());
}

#[test]
fn reopening_after_another_close_sees_the_newest_head() {
    let (fs, root) = setup();
    let ino = put(&fs, root, "f", b"1\n");
    // Many open/append/close cycles interleaved on two descriptors.
    let h1 = fs.open(ino, A, ME).unwrap();
    for i in 0..20 {
        let h2 = fs.open(ino, A, ME).unwrap();
        fs.write(h2.fh, 0, format!("x{i}\n").as_bytes()).unwrap();
        fs.release(h2.fh).unwrap();
    }
    fs.write(h1.fh, 0, b"last\n").unwrap();
    fs.release(h1.fh).unwrap();
    let text = String::from_utf8(read_all(&fs, ino)).unwrap();
    assert_eq!(text.lines().count(), 22, "{text}");
    assert!(text.ends_with("x19\nlast\n"));
}

#[test]
fn pruning_the_change_feed_never_reuses_sequence_numbers() {
    let (a, b, root) = two_mounts();
    put(&a, root, "one", b"1");
    let mut since = b.feed_position().unwrap();
    assert!(since > 0);
    // Everything is old now; pruning must keep the newest row.
    a.db.write(|tx| tx.prune_changes(i64::MAX)).unwrap();
    put(&a, root, "two", b"2");
    let seen = b.poll_changes(&mut since).unwrap();
    assert!(
        seen.iter()
            .any(|i| matches!(i, Invalidation::Entry(_, n) if n == b"two")),
        "{seen:?}"
    );
}

#[test]
fn a_shell_redirect_over_a_file_makes_one_version() {
    // `echo x > f`: open(O_TRUNC), dup2, close the original (a flush), write,
    // close (flush + release).
    let (fs, root) = setup();
    let ino = put(&fs, root, "f", b"old\n");
    let o = fs
        .open(
            ino,
            OpenMode {
                read: false,
                exclusive: false,
                write: true,
                append: false,
                truncate: true,
            },
            ME,
        )
        .unwrap();
    fs.flush(o.fh).unwrap();
    fs.write(o.fh, 0, b"new\n").unwrap();
    fs.flush(o.fh).unwrap();
    fs.release(o.fh).unwrap();
    assert_eq!(versions(&fs, ino).len(), 2);
    // `: > f` alone still records the emptied file, at release.
    let o = fs
        .open(
            ino,
            OpenMode {
                read: false,
                exclusive: false,
                write: true,
                append: false,
                truncate: true,
            },
            ME,
        )
        .unwrap();
    fs.flush(o.fh).unwrap();
    assert_eq!(versions(&fs, ino).len(), 2);
    fs.release(o.fh).unwrap();
    let vs = versions(&fs, ino);
    assert_eq!(vs.len(), 3);
    assert_eq!(vs[2].size, 0);
}

#[test]
fn a_mount_does_not_hear_its_own_changes_from_the_feed() {
    // Its kernel already knows them; invalidating a directory entry that is some
    // process's working directory would break that process's getcwd.
    let (a, b, root) = two_mounts();
    let mut since_a = a.feed_position().unwrap();
    let mut since_b = b.feed_position().unwrap();
    a.mkdir(root, b"repo", 0o755, 0, ME).unwrap();
    assert!(a.poll_changes(&mut since_a).unwrap().is_empty());
    let seen = b.poll_changes(&mut since_b).unwrap();
    assert!(seen
        .iter()
        .any(|i| matches!(i, Invalidation::Entry(_, n) if n == b"repo")));
}

/// Mounts (one per agent) of one store with `policy`, over one database.
fn with_policy(policy: StorePolicy, agents: &[&str]) -> (Vec<MemFs>, Ino) {
    let (base, root) = setup();
    let old = &base.attached()[0];
    let att = Attached::new(old.store.clone(), old.read_only, policy);
    let mounts = agents
        .iter()
        .map(|agent| {
            MemFs::new(
                base.db.clone(),
                Identity::new(agent, "s", None),
                vec![att.clone()],
                FsOptions::default(),
            )
        })
        .collect();
    (mounts, root)
}

#[test]
fn quotas_refuse_and_leave_the_old_head() {
    let policy = StorePolicy {
        quota: Quota {
            max_file_bytes: Some(100),
            max_bytes: Some(150),
            max_files: Some(3),
        },
        ..Default::default()
    };
    let (mut mounts, root) = with_policy(policy, &["a"]);
    let fs = mounts.remove(0);
    let ino = put(&fs, root, "f", b"old");
    // Over the file limit: the write fails, and so does the close; nothing lands.
    let o = fs
        .open(
            ino,
            OpenMode {
                read: false,
                exclusive: false,
                write: true,
                append: false,
                truncate: true,
            },
            ME,
        )
        .unwrap();
    fs.write(o.fh, 0, &[b'x'; 64]).unwrap();
    assert_eq!(
        fs.write(o.fh, 64, &[b'x'; 64]).unwrap_err().to_errno(),
        libc::EFBIG
    );
    assert_eq!(fs.release(o.fh).unwrap_err().to_errno(), libc::EFBIG);
    assert_eq!(read_all(&fs, ino), b"old");
    let err = fs
        .setattr(
            ino,
            SetAttr {
                size: Some(101),
                ..Default::default()
            },
            ME,
        )
        .unwrap_err();
    assert_eq!(err.to_errno(), libc::EFBIG);
    // Over the store's byte quota at commit (3 + 90 + 60 > 150): EDQUOT, and the
    // new file keeps its old (empty) head.
    put(&fs, root, "g", &[b'g'; 90]);
    let (h, o) = fs.create(root, b"h", 0o644, 0, W, ME).unwrap();
    fs.write(o.fh, 0, &[b'h'; 60]).unwrap();
    assert_eq!(fs.release(o.fh).unwrap_err().to_errno(), libc::EDQUOT);
    assert!(read_all(&fs, h.ino).is_empty());
    // Entries: f, g and h; a fourth is refused.
    assert_eq!(
        fs.mkdir(root, b"e", 0o755, 0, ME).unwrap_err().to_errno(),
        libc::EDQUOT
    );
}

#[test]
fn read_only_and_append_only_paths() {
    let policy = StorePolicy {
        read_only: vec!["kb/**".into()],
        read_only_writers: vec!["curator".into()],
        append_only: vec!["log/**".into()],
        ..Default::default()
    };
    let (mounts, root) = with_policy(policy, &["curator", "worker"]);
    let (cur, fs) = (&mounts[0], &mounts[1]);
    let kb = cur.mkdir(root, b"kb", 0o755, 0, ME).unwrap();
    let log = cur.mkdir(root, b"log", 0o755, 0, ME).unwrap();
    let fact = put(cur, kb.ino, "fact", b"verified");
    let rofs = |r: FsResult<Attr>| r.unwrap_err().to_errno();
    assert_eq!(rofs(fs.mkdir(kb.ino, b"x", 0o755, 0, ME)), libc::EROFS);
    assert_eq!(fs.open(fact, W, ME).unwrap_err().to_errno(), libc::EROFS);
    assert_eq!(
        fs.unlink(kb.ino, b"fact", ME).unwrap_err().to_errno(),
        libc::EROFS
    );
    let e = fs
        .rename(kb.ino, b"fact", root, b"fact", RenameMode::default(), ME)
        .unwrap_err();
    assert_eq!(e.to_errno(), libc::EROFS);
    // Append-only: create and append yes; overwrite, truncate, unlink, rename-over no.
    let l = put(fs, log.ino, "l", b"1\n");
    let o = fs.open(l, A, ME).unwrap();
    fs.write(o.fh, 0, b"2\n").unwrap();
    fs.release(o.fh).unwrap();
    assert_eq!(read_all(fs, l), b"1\n2\n");
    assert_eq!(fs.open(l, W, ME).unwrap_err().to_errno(), libc::EPERM);
    let trunc = OpenMode {
        read: false,
        exclusive: false,
        write: true,
        append: false,
        truncate: true,
    };
    assert_eq!(fs.open(l, trunc, ME).unwrap_err().to_errno(), libc::EPERM);
    let e = fs
        .setattr(
            l,
            SetAttr {
                size: Some(0),
                ..Default::default()
            },
            ME,
        )
        .unwrap_err();
    assert_eq!(e.to_errno(), libc::EPERM);
    assert_eq!(
        fs.unlink(log.ino, b"l", ME).unwrap_err().to_errno(),
        libc::EPERM
    );
    put(fs, log.ino, "m", b"x");
    let e = fs
        .rename(log.ino, b"m", log.ino, b"l", RenameMode::default(), ME)
        .unwrap_err();
    assert_eq!(e.to_errno(), libc::EPERM);
}

#[test]
fn new_names_must_be_nfc_utf8_without_controls() {
    let (fs, root) = setup();
    let e = |r: FsResult<Attr>| r.unwrap_err().to_errno();
    assert_eq!(e(fs.mkdir(root, b"a\x01b", 0o755, 0, ME)), libc::EINVAL);
    assert_eq!(e(fs.mkdir(root, b"\xff", 0o755, 0, ME)), libc::EINVAL);
    assert_eq!(
        e(fs.mkdir(root, "e\u{301}".as_bytes(), 0o755, 0, ME)),
        libc::EINVAL
    );
    fs.mkdir(root, "\u{e9}".as_bytes(), 0o755, 0, ME).unwrap();
    // Case-sensitive.
    fs.mkdir(root, b"A", 0o755, 0, ME).unwrap();
    fs.mkdir(root, b"a", 0o755, 0, ME).unwrap();
    // Whole paths are limited to 1024 bytes.
    let mut dir = root;
    for _ in 0..4 {
        dir = fs.mkdir(dir, &[b'd'; 250], 0o755, 0, ME).unwrap().ino;
    }
    assert_eq!(
        e(fs.mkdir(dir, &[b'x'; 30], 0o755, 0, ME)),
        libc::ENAMETOOLONG
    );
}

#[test]
fn two_owners_waiting_for_each_other_get_edeadlk() {
    use crate::store::LockSpec;
    let (fs, root) = setup();
    let ino = put(&fs, root, "lockf", b"");
    let range = |owner, start, end| LockSpec {
        ino,
        owner,
        start,
        end,
        exclusive: true,
        pid: 1,
    };
    assert!(fs.setlk(&range(1, 0, 9), Some(true)).unwrap());
    assert!(fs.setlk(&range(2, 10, 19), Some(true)).unwrap());
    assert_eq!(fs.setlk_wait(&range(1, 10, 19)).unwrap(), LockStep::Blocked);
    assert_eq!(fs.setlk_wait(&range(2, 0, 9)).unwrap(), LockStep::Deadlock);
    // Once owner 2 lets go, owner 1's wait ends.
    fs.unlock_owner(ino, 2).unwrap();
    assert_eq!(fs.setlk_wait(&range(1, 10, 19)).unwrap(), LockStep::Granted);
}

#[test]
fn read_only_truncating_opens_are_refused_and_change_nothing() {
    let (fs, root) = setup();
    let ino = put(&fs, root, "prog", b"#!/bin/sh\n");
    let ro_trunc = OpenMode {
        read: false,
        exclusive: false,
        write: false,
        append: false,
        truncate: true,
    };
    assert_eq!(
        fs.open(ino, ro_trunc, ME).unwrap_err().to_errno(),
        libc::EINVAL
    );
    assert_eq!(read_all(&fs, ino), b"#!/bin/sh\n");
}

mod put;

/// Inside a group-committed batch the store caches directory paths and audit
/// chain heads (store/batch.rs `BatchCache`). A rename or removal of a
/// directory in the same batch must not leave a stale path behind: the next
/// change below it would be audited and versioned under the old name. The
/// core tests run on in-memory databases, which never batch; this one uses a
/// database file with an hour-long batch, so everything shares one batch.
#[test]
fn a_batch_never_audits_a_change_under_a_stale_directory_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("memfs.db")).unwrap();
    let op = Identity::new("op", "op", None);
    let kb = db
        .write(|tx| tx.create_store("kb", Scope::Org, None, "", &op, 1))
        .unwrap();
    let root = kb.root;
    assert!(db.enable_batching(crate::store::BatchPolicy {
        interval: std::time::Duration::from_secs(3600),
        min_free_bytes: 0,
        ..Default::default()
    }));
    let fs = MemFs::new(
        Arc::new(db),
        Identity::new("agent-1", "sess-1", None),
        vec![Attached::plain(kb, false)],
        FsOptions::default(),
    );
    fs.register().unwrap();
    let a = fs.mkdir(root, b"a", 0o755, 0, ME).unwrap().ino;
    let b = fs.mkdir(a, b"b", 0o755, 0, ME).unwrap().ino;
    put(&fs, b, "one", b"1");
    let nr = RenameMode::default();
    fs.rename(root, b"a", root, b"c", nr, ME).unwrap();
    put(&fs, b, "two", b"2");
    // The same name again, now a different directory.
    let a2 = fs.mkdir(root, b"a", 0o755, 0, ME).unwrap().ino;
    put(&fs, a2, "three", b"3");
    fs.unlink(b, b"one", ME).unwrap();
    fs.rmdir(b, b"nothing", ME).unwrap_err();
    fs.rename(a, b"b", a2, b"b", nr, ME).unwrap();
    put(&fs, b, "four", b"4");
    let paths = op_paths(&audit_all(&fs), |e| {
        ["create", "write", "unlink"].contains(&e.op.as_str())
    });
    let want = [
        ("create", "a/b/one"),
        ("write", "a/b/one"),
        ("create", "c/b/two"),
        ("write", "c/b/two"),
        ("create", "a/three"),
        ("write", "a/three"),
        ("unlink", "c/b/one"),
        ("create", "a/b/four"),
        ("write", "a/b/four"),
    ];
    assert_eq!(paths, owned_pairs(&want));
    fs.db.sync().unwrap();
    let n = fs.db.read(|tx| tx.verify_audit()).unwrap().unwrap();
    assert!(n >= 10, "{n}");
}

/// Expected (op, path) audit pairs as the owned strings entries hold.
fn owned_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(op, path)| (op.to_string(), path.to_string()))
        .collect()
}

/// Every audit entry, newest first.
fn audit_all(fs: &MemFs) -> Vec<crate::store::AuditEntry> {
    fs.db
        .read(|tx| tx.audit_entries(&crate::store::AuditFilter::default()))
        .unwrap()
}

/// The (op, path) pairs of the entries `keep` selects, oldest first.
fn op_paths(
    entries: &[crate::store::AuditEntry],
    keep: impl Fn(&crate::store::AuditEntry) -> bool,
) -> Vec<(String, String)> {
    entries
        .iter()
        .rev()
        .filter(|e| keep(e))
        .map(|e| (e.op.clone(), e.path.clone().unwrap_or_default()))
        .collect()
}

/// A change is audited under the file's path from the store root, however
/// deep: PostgreSQL walks up in one query, SQLite one level at a time. A file
/// with several names is audited under its first entry (by parent, then
/// name), and a renamed directory moves the paths below it.
#[test]
fn changes_deep_in_the_tree_are_audited_under_their_whole_path() {
    let (fs, root) = setup();
    let mut dir = root;
    for name in ["a", "b", "c", "d", "e"] {
        dir = fs.mkdir(dir, name.as_bytes(), 0o755, 0, ME).unwrap().ino;
    }
    let f = put(&fs, dir, "f.md", b"1");
    let overwrite = |data: &[u8]| {
        let h = fs.open(f, W, ME).unwrap();
        fs.write(h.fh, 0, data).unwrap();
        fs.release(h.fh).unwrap();
    };
    overwrite(b"2");
    // A second name in a directory made later (a higher inode) sorts after.
    let z = fs.mkdir(root, b"z", 0o755, 0, ME).unwrap().ino;
    fs.link(f, z, b"g.md", ME).unwrap();
    overwrite(b"3");
    let a = fs.lookup(root, b"a", ME).unwrap().ino;
    fs.rename(a, b"b", root, b"b2", RenameMode::default(), ME)
        .unwrap();
    overwrite(b"4");
    let paths = op_paths(&audit_all(&fs), |e| e.op == "write");
    let want = [
        ("write", "a/b/c/d/e/f.md"),
        ("write", "a/b/c/d/e/f.md"),
        ("write", "a/b/c/d/e/f.md"),
        ("write", "b2/c/d/e/f.md"),
    ];
    assert_eq!(paths, owned_pairs(&want));
    assert_eq!(read_all(&fs, f), b"4");
}

/// An open that read a file's head while this mount wrote nothing stages from
/// that head without reading it again; a write in between (a descriptor that
/// closed and committed) makes it read again.
#[test]
fn a_write_mark_tells_whether_this_handle_wrote_since() {
    let (fs, root) = setup();
    let f = put(&fs, root, "f", b"one");
    let mark = fs.db.write_mark().unwrap();
    assert!(fs.db.unwritten_since(mark));
    let h = fs.open(f, R, ME).unwrap();
    fs.release(h.fh).unwrap();
    assert!(fs.db.unwritten_since(mark), "a read-only open wrote");
    put(&fs, root, "f", b"two");
    assert!(!fs.db.unwritten_since(mark));
    let h = fs.open(f, R, ME).unwrap();
    assert_eq!(fs.read(h.fh, 0, 10).unwrap(), b"two");
    fs.release(h.fh).unwrap();
}

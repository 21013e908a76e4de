//! Two mounts racing on one database, and requests sent from a stale view: what
//! the kernel asks when its cache (or the reused read snapshot) is behind another
//! mount gets the answer a local disk would give (issue 12).

use super::*;

/// A thread of some process: ESTALE is answered once to those (the kernel retries).
const PROC: Caller = Caller {
    uid: 0,
    gid: 0,
    pid: 4242,
};

fn mode(read: bool, write: bool, append: bool, truncate: bool, exclusive: bool) -> OpenMode {
    OpenMode {
        read,
        write,
        append,
        truncate,
        exclusive,
    }
}

/// `flock FILE` opens O_RDONLY|O_CREAT.
const FLOCK: OpenMode = OpenMode {
    read: true,
    write: false,
    append: false,
    truncate: false,
    exclusive: false,
};

/// The operations of the audit entries at `path`, oldest first.
fn audit_ops(fs: &MemFs, path: &str) -> Vec<String> {
    let mut ops: Vec<String> = fs
        .db
        .read(|tx| tx.audit_entries(&crate::store::AuditFilter::default()))
        .unwrap()
        .into_iter()
        .filter(|e| e.path.as_deref() == Some(path))
        .map(|e| e.op)
        .collect();
    ops.reverse();
    ops
}

/// Named calls of one mount, to run each the same way.
type Calls<'a, A, T> = Vec<(&'static str, Box<dyn Fn(A) -> FsResult<T> + 'a>)>;

fn errno<T: std::fmt::Debug>(r: FsResult<T>) -> i32 {
    r.unwrap_err().to_errno()
}

#[test]
fn create_without_excl_opens_what_another_mount_created() {
    let (a, b, root) = two_mounts();
    let (made, o) = a.create(root, b"lock", 0o644, 0, FLOCK, ME).unwrap();
    a.release(o.fh).unwrap();
    // b's kernel thought the name free: `flock lock true` in b opens a's file.
    let (found, o) = b.create(root, b"lock", 0o600, 0, FLOCK, PROC).unwrap();
    assert_eq!(found.ino, made.ino);
    assert_eq!(found.perm, 0o644, "the existing file, not a new one");
    b.release(o.fh).unwrap();
    // `echo line >> log` from both mounts: both lines land, in one file.
    let append = mode(false, true, true, false, false);
    for (fs, line) in [(&a, "from a\n"), (&b, "from b\n")] {
        let (_, o) = fs.create(root, b"log", 0o644, 0, append, PROC).unwrap();
        fs.write(o.fh, 0, line.as_bytes()).unwrap();
        fs.release(o.fh).unwrap();
    }
    let log = a.lookup(root, b"log", ME).unwrap().ino;
    assert_eq!(read_all(&a, log), b"from a\nfrom b\n");
    // One create each; opening what exists is not a change.
    assert_eq!(audit_ops(&a, "lock"), ["create"]);
    assert_eq!(audit_ops(&a, "log"), ["create", "write", "write"]);
    // O_EXCL keeps its promise: EEXIST, after the kernel looked again (so that
    // it caches the name as present).
    let excl = mode(false, true, false, false, true);
    assert_eq!(
        errno(b.create(root, b"lock", 0o644, 0, excl, PROC)),
        libc::ESTALE
    );
    assert_eq!(
        errno(b.create(root, b"lock", 0o644, 0, excl, PROC)),
        libc::EEXIST
    );
}

#[test]
fn create_with_o_trunc_of_an_existing_file_is_one_version() {
    let (a, b, root) = two_mounts();
    let ino = put(&a, root, "f", b"old content\n");
    let trunc = mode(false, true, false, true, false);
    let (attr, o) = b.create(root, b"f", 0o644, 0, trunc, PROC).unwrap();
    assert_eq!((attr.ino, attr.size), (ino, 0), "staged empty");
    b.write(o.fh, 0, b"new\n").unwrap();
    b.release(o.fh).unwrap();
    assert_eq!(read_all(&a, ino), b"new\n");
    assert_eq!(versions(&a, ino).len(), 2);
    // `: > f` through a create: one (empty) version, as through open.
    let (_, o) = b.create(root, b"f", 0o644, 0, trunc, PROC).unwrap();
    b.release(o.fh).unwrap();
    assert!(read_all(&a, ino).is_empty());
    assert_eq!(versions(&a, ino).len(), 3);
    assert_eq!(audit_ops(&a, "f"), ["create", "write", "write", "write"]);
}

#[test]
fn create_of_an_existing_directory_symlink_or_fifo() {
    let (a, b, root) = two_mounts();
    a.mkdir(root, b"d", 0o755, 0, ME).unwrap();
    assert_eq!(
        errno(b.create(root, b"d", 0o644, 0, FLOCK, PROC)),
        libc::EISDIR
    );
    a.symlink(root, b"s", b"target", ME).unwrap();
    a.mknod(root, b"p", libc::S_IFIFO | 0o644, 0, 0, ME)
        .unwrap();
    for name in [&b"s"[..], b"p"] {
        // The kernel must follow the symlink or open the fifo itself: it looks
        // again, and a second try at once gets what O_EXCL would.
        assert_eq!(
            errno(b.create(root, name, 0o644, 0, FLOCK, PROC)),
            libc::ESTALE
        );
        assert_eq!(
            errno(b.create(root, name, 0o644, 0, FLOCK, PROC)),
            libc::EEXIST
        );
        // A caller that cannot retry never sees ESTALE.
        assert_eq!(
            errno(b.create(root, name, 0o644, 0, FLOCK, ME)),
            libc::EEXIST
        );
    }
}

#[test]
fn create_of_an_existing_file_checks_what_open_checks() {
    let policy = StorePolicy {
        append_only: vec!["log/**".into()],
        ..Default::default()
    };
    let (mounts, root) = with_policy(policy, &["a", "b"]);
    let (a, b) = (&mounts[0], &mounts[1]);
    let ino = put(a, root, "private", b"secret");
    a.setattr(
        ino,
        SetAttr {
            mode: Some(0o600),
            uid: Some(1000),
            gid: Some(1000),
            ..Default::default()
        },
        ME,
    )
    .unwrap();
    let stranger = Caller {
        uid: 2000,
        gid: 2000,
        pid: 7,
    };
    let owner = Caller {
        uid: 1000,
        gid: 2000,
        pid: 8,
    };
    // The kernel skipped its permission check (it thinks it created the file).
    assert_eq!(
        errno(b.create(root, b"private", 0o666, 0, FLOCK, stranger)),
        libc::EACCES
    );
    let (_, o) = b.create(root, b"private", 0o666, 0, FLOCK, owner).unwrap();
    b.release(o.fh).unwrap();
    // Path policies: appending is allowed, truncating an append-only file is not.
    let dir = a.mkdir(root, b"log", 0o755, 0, ME).unwrap().ino;
    put(a, dir, "today", b"line 1\n");
    let append = mode(false, true, true, false, false);
    let (_, o) = b.create(dir, b"today", 0o644, 0, append, PROC).unwrap();
    b.release(o.fh).unwrap();
    let trunc = mode(false, true, false, true, false);
    assert_eq!(
        errno(b.create(dir, b"today", 0o644, 0, trunc, PROC)),
        libc::EPERM
    );
}

#[test]
fn create_of_an_existing_file_in_a_read_only_store_opens_it_for_reading() {
    let (rw, root) = setup();
    put(&rw, root, "lock", b"");
    let ro = MemFs::new(
        rw.db.clone(),
        Identity::new("reader", "r", None),
        vec![Attached::plain(rw.attached()[0].store.clone(), true)],
        FsOptions::default(),
    );
    let (_, o) = ro.create(root, b"lock", 0o644, 0, FLOCK, PROC).unwrap();
    ro.release(o.fh).unwrap();
    let write = mode(false, true, false, false, false);
    assert_eq!(
        errno(ro.create(root, b"lock", 0o644, 0, write, PROC)),
        libc::EROFS
    );
    assert_eq!(
        errno(ro.create(root, b"new", 0o644, 0, FLOCK, PROC)),
        libc::EROFS
    );
}

#[test]
fn create_of_a_file_another_mount_writes_waits_for_its_lease() {
    let (a, b, root) = two_mounts_with(quick_leases(10_000));
    let ino = put(&a, root, "f", b"a's\n");
    let held = a.open(ino, W, ME).unwrap();
    let write = mode(false, true, false, false, false);
    let err = b.create(root, b"f", 0o644, 0, write, PROC).unwrap_err();
    assert_eq!(err.to_errno(), libc::EBUSY, "{err}");
    // Appenders and readers are never refused.
    let append = mode(false, true, true, false, false);
    let (_, o) = b.create(root, b"f", 0o644, 0, append, PROC).unwrap();
    b.release(o.fh).unwrap();
    a.release(held.fh).unwrap();
    let (_, o) = b.create(root, b"f", 0o644, 0, write, PROC).unwrap();
    b.release(o.fh).unwrap();
}

#[test]
fn open_of_a_file_removed_elsewhere_makes_the_kernel_look_again() {
    let (a, b, root) = two_mounts();
    let old = put(&a, root, "f", b"old\n");
    // b's kernel caches f -> old; a replaces f (temp file + rename).
    let replace = |content: &[u8]| {
        let tmp = put(&a, root, "f.tmp", content);
        a.rename(root, b"f.tmp", root, b"f", RenameMode::default(), ME)
            .unwrap();
        tmp
    };
    let new = replace(b"new\n");
    assert_eq!(errno(b.open(old, R, PROC)), libc::ESTALE);
    // The kernel's second walk finds the new file and opens it.
    assert_eq!(b.lookup(root, b"f", PROC).unwrap().ino, new);
    let o = b.open(new, R, PROC).unwrap();
    assert_eq!(b.read(o.fh, 0, 100).unwrap(), b"new\n");
    b.release(o.fh).unwrap();
    // If a replaces f again between that walk and the open, the open goes to
    // what the walk found, as the same race goes on a local disk.
    replace(b"newer\n");
    assert_eq!(errno(b.open(new, R, PROC)), libc::ESTALE);
    let found = b.lookup(root, b"f", PROC).unwrap().ino;
    replace(b"newest\n");
    let o = b.open(found, R, PROC).unwrap();
    assert_eq!(b.read(o.fh, 0, 100).unwrap(), b"newer\n");
    b.release(o.fh).unwrap();
    // A caller that does not retry (the daemon, memfsctl) opens what it names.
    let o = b.open(old, R, ME).unwrap();
    b.release(o.fh).unwrap();
    // An orphan this mount still has open can be reopened (/proc/PID/fd).
    let cur = a.lookup(root, b"f", ME).unwrap().ino;
    let keep = a.open(cur, R, ME).unwrap();
    a.unlink(root, b"f", ME).unwrap();
    let again = a.open(cur, R, PROC).unwrap();
    a.release(again.fh).unwrap();
    a.release(keep.fh).unwrap();
}

#[test]
fn requests_in_a_directory_removed_elsewhere_make_the_kernel_look_again() {
    let (a, b, root) = two_mounts();
    let old = a.mkdir(root, b"d", 0o755, 0, ME).unwrap().ino;
    a.rmdir(root, b"d", ME).unwrap();
    let new = a.mkdir(root, b"d", 0o755, 0, ME).unwrap().ino;
    put(&a, new, "x", b"x");
    // b's kernel still has d -> old.
    let calls: Calls<Caller, ()> = vec![
        (
            "mkdir",
            Box::new(|c| b.mkdir(old, b"y", 0o755, 0, c).map(drop)),
        ),
        (
            "create",
            Box::new(|c| b.create(old, b"z", 0o644, 0, W, c).map(drop)),
        ),
        ("unlink", Box::new(|c| b.unlink(old, b"x", c))),
        (
            "symlink",
            Box::new(|c| b.symlink(old, b"l", b"t", c).map(drop)),
        ),
    ];
    // A lookup there is plainly absent (the kernel does not retry an ESTALE
    // from the last lookup of mkdir or symlink, so the program would see it).
    for c in [PROC, PROC, ME] {
        assert_eq!(errno(b.lookup(old, b"x", c).map(drop)), libc::ENOENT);
    }
    for (what, call) in calls {
        assert_eq!(errno(call(PROC)), libc::ESTALE, "{what}");
        assert_eq!(errno(call(PROC)), libc::ENOENT, "{what}, retried");
        assert_eq!(errno(call(ME)), libc::ENOENT, "{what}, no retry");
    }
    // Nothing was created in the removed directory.
    assert!(b.db.read(|tx| tx.children(old)).unwrap().is_empty());
}

#[test]
fn link_of_a_file_removed_elsewhere_makes_the_kernel_look_again() {
    let (a, b, root) = two_mounts();
    let old = put(&a, root, "f", b"1");
    a.unlink(root, b"f", ME).unwrap();
    assert_eq!(errno(b.link(old, root, b"g", PROC)), libc::ESTALE);
    assert_eq!(errno(b.link(old, root, b"g", PROC)), libc::ENOENT);
}

#[test]
fn removing_what_another_mount_removed_first_is_enoent() {
    let (a, b, root) = two_mounts();
    put(&a, root, "f", b"1");
    a.mkdir(root, b"d", 0o755, 0, ME).unwrap();
    a.unlink(root, b"f", ME).unwrap();
    a.rmdir(root, b"d", ME).unwrap();
    assert_eq!(errno(b.unlink(root, b"f", PROC)), libc::ENOENT);
    assert_eq!(errno(b.rmdir(root, b"d", PROC)), libc::ENOENT);
    let mv = b.rename(root, b"f", root, b"g", RenameMode::default(), PROC);
    assert_eq!(errno(mv), libc::ENOENT);
    // mkdir, symlink and link onto what another mount made: the kernel looks
    // again (and caches the name, so `mkdir -p` finds it), then EEXIST.
    a.mkdir(root, b"p", 0o755, 0, ME).unwrap();
    let f = put(&a, root, "g", b"1");
    let calls: Calls<Caller, Attr> = vec![
        ("mkdir", Box::new(|c| b.mkdir(root, b"p", 0o755, 0, c))),
        ("symlink", Box::new(|c| b.symlink(root, b"p", b"t", c))),
        ("link", Box::new(|c| b.link(f, root, b"p", c))),
        (
            "mknod",
            Box::new(|c| b.mknod(root, b"p", libc::S_IFIFO | 0o644, 0, 0, c)),
        ),
    ];
    for (what, call) in calls {
        assert_eq!(errno(call(PROC)), libc::ESTALE, "{what}");
        assert_eq!(errno(call(PROC)), libc::EEXIST, "{what}, retried");
    }
    assert_eq!(b.lookup(root, b"p", PROC).unwrap().kind, NodeKind::Dir);
    let noreplace = RenameMode {
        noreplace: true,
        exchange: false,
    };
    let mv = || b.rename(root, b"g", root, b"p", noreplace, PROC);
    assert_eq!(errno(mv()), libc::ESTALE);
    assert_eq!(errno(mv()), libc::EEXIST);
}

#[test]
fn a_mount_knows_when_its_kernel_may_be_behind_another_mount() {
    let (a, b, root) = two_mounts();
    let ino = put(&a, root, "f", b"1");
    let seen = b.feed_position().unwrap();
    assert!(!b.changed_elsewhere(seen, None));
    // b's own changes are no news to b's kernel.
    put(&b, root, "mine", b"2");
    assert!(!b.changed_elsewhere(seen, None));
    let o = a.open(ino, W, ME).unwrap();
    a.write(o.fh, 0, b"longer now").unwrap();
    a.release(o.fh).unwrap();
    assert!(b.changed_elsewhere(seen, None));
    assert!(b.changed_elsewhere(seen, Some(ino)));
    assert!(!b.changed_elsewhere(seen, Some(Ino(ino.0 + 1000))));
    assert!(b.open_waits_for_feed(ino, R, seen));
    // A truncating or append-only open reads nothing the kernel cached.
    assert!(!b.open_waits_for_feed(ino, mode(false, true, false, true, false), seen));
    assert!(!b.open_waits_for_feed(ino, A, seen));
    // An open that follows the feed learns the same with the inode, in one query.
    for (m, waits) in [(R, true), (A, false)] {
        let (o, wait) = b.open_seen(ino, m, ME, seen).unwrap();
        assert_eq!(wait, waits);
        b.release(o.fh).unwrap();
    }
    let mut since = seen;
    b.poll_changes(&mut since).unwrap();
    assert!(!b.open_waits_for_feed(ino, R, since));
    let (o, wait) = b.open_seen(ino, R, ME, since).unwrap();
    assert!(!wait);
    assert_eq!(b.read(o.fh, 0, 64).unwrap(), b"longer now");
    b.release(o.fh).unwrap();
}

#[test]
fn the_feed_barrier_holds_replies_until_the_follower_caught_up() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sent = Arc::new(AtomicUsize::new(0));
    let reply = || {
        let sent = sent.clone();
        Box::new(move || {
            sent.fetch_add(1, Ordering::SeqCst);
        }) as AfterCatchUp
    };
    let barrier = FeedBarrier::default();
    // No follower: nothing is held.
    barrier.after_catch_up(reply());
    assert_eq!(sent.load(Ordering::SeqCst), 1);
    barrier.start(10);
    barrier.after_catch_up(reply());
    assert_eq!(sent.load(Ordering::SeqCst), 1, "held");
    let (held, stopping) = barrier.next_round(std::time::Duration::ZERO);
    assert_eq!((held.len(), stopping), (1, false));
    barrier.caught_up(12, held);
    assert_eq!((sent.load(Ordering::SeqCst), barrier.seen()), (2, 12));
    // A stopping follower sends what is held, and nothing is held after.
    barrier.after_catch_up(reply());
    barrier.shut_down();
    let (held, stopping) = barrier.next_round(std::time::Duration::from_secs(3600));
    assert!(stopping, "shutting down does not wait an hour");
    barrier.caught_up(12, held);
    barrier.stop();
    barrier.after_catch_up(reply());
    assert_eq!(sent.load(Ordering::SeqCst), 4);
}

#[test]
fn truncate_applies_to_the_current_head_under_the_lease() {
    let (a, b, root) = two_mounts_with(quick_leases(10_000));
    let ino = put(&a, root, "f", b"0123456789");
    // b has the file open for reading: its open state holds the old head.
    let r = b.open(ino, R, ME).unwrap();
    let w = a.open(ino, W, ME).unwrap();
    a.write(w.fh, 0, b"abcdefghijklmnop").unwrap();
    let to4 = SetAttr {
        size: Some(4),
        ..Default::default()
    };
    // a's writer holds the lease: b's truncate waits for it, then gets EBUSY.
    assert_eq!(errno(b.setattr(ino, to4, ME)), libc::EBUSY);
    a.release(w.fh).unwrap();
    // Then it cuts a's new content, not the version b's reader had loaded.
    b.setattr(ino, to4, ME).unwrap();
    assert_eq!(read_all(&a, ino), b"abcd");
    assert_eq!(b.read(r.fh, 0, 100).unwrap(), b"abcd");
    b.release(r.fh).unwrap();
    assert!(!audit_ops(&a, "f").contains(&"conflict".to_string()));
    // No lease is left behind: a writes again at once.
    let w = a.open(ino, W, ME).unwrap();
    a.release(w.fh).unwrap();
}

#[test]
fn chmod_of_a_file_replaced_elsewhere_makes_the_kernel_look_again() {
    let (a, b, root) = two_mounts();
    let old = put(&a, root, "f", b"1");
    let new = put(&a, root, "f.tmp", b"2");
    a.rename(root, b"f.tmp", root, b"f", RenameMode::default(), ME)
        .unwrap();
    let chmod = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    assert_eq!(errno(b.setattr(old, chmod, PROC)), libc::ESTALE);
    // The retry reaches the new file.
    assert_eq!(b.setattr(new, chmod, PROC).unwrap().perm, 0o600);
    // Through a descriptor of this mount (fchmod) an orphan may be changed.
    let o = a.open(new, R, ME).unwrap();
    a.unlink(root, b"f", ME).unwrap();
    assert_eq!(a.setattr(new, chmod, PROC).unwrap().perm, 0o600);
    a.release(o.fh).unwrap();
}

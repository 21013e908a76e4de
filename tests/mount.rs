//! Integration tests against a real FUSE mount: the `memfs` daemon is spawned, and
//! ordinary tools (bash, coreutils, git, python3) work inside the mounted stores.
//!
//! Needs root (or fusermount3) and /dev/fuse.

mod common;

use common::{s, sh, sh_fails, Env, Mount};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// Audit entries of one store and op, in log order (oldest first).
fn entries<'a>(log: &'a [Value], store: &str, op: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| s(e, "store") == Some(store) && s(e, "op") == Some(op))
        .collect()
}

/// A listing of everything below `dir`: type, mode, size, mtime and path of every
/// node, symlink targets, and the sha256 of every regular file.
fn tree_listing(dir: &Path) -> String {
    sh(
        dir,
        r#"
find . -mindepth 1 -printf '%y %m %s %T@ %p\n' | sort -k5
find . -type l -printf '%p -> %l\n' | sort
find . -type f -print0 | sort -z | xargs -0 -r sha256sum
"#,
    )
}

#[test]
fn echo_cat_append() {
    // Staged writes above 4 MiB spill to a temp file: the 6 MiB file below does.
    let env = Env::with_config(&format!(
        "{}\n[daemon]\nspill_bytes = 4194304\n",
        common::DEFAULT_CONFIG
    ));
    let m = env.mount("agent-echo", "sess-echo", None, &["kb"]);
    let kb = m.store("kb");

    let got = sh(
        &kb,
        r#"
echo hello > greeting.txt
echo world >> greeting.txt
printf 'no newline' >> greeting.txt
cat greeting.txt
"#,
    );
    assert_eq!(got, "hello\nworld\nno newline");
    assert_eq!(
        std::fs::read(kb.join("greeting.txt")).unwrap(),
        b"hello\nworld\nno newline"
    );
    // `>` truncates an existing file.
    assert_eq!(
        sh(&kb, "echo replaced > greeting.txt; cat greeting.txt"),
        "replaced\n"
    );

    let out = env.scratch("outside");
    sh(
        &kb,
        &format!(
            r#"
OUT='{out}'
printf '\x00\x01\x02\xff\xfe\r\n\x00tail\x00' > bin.dat
printf '\x00\x01\x02\xff\xfe\r\n\x00tail\x00' > "$OUT/bin.dat"
cmp bin.dat "$OUT/bin.dat"
test "$(stat -c %s bin.dat)" = 13

head -c 3145728 /dev/urandom > "$OUT/random.bin"
cp "$OUT/random.bin" random-cp.bin
dd if="$OUT/random.bin" of=random-dd.bin bs=65536 status=none
head -c 3145728 "$OUT/random.bin" > random-head.bin
cmp random-cp.bin "$OUT/random.bin"
cmp random-dd.bin "$OUT/random.bin"
cmp random-head.bin "$OUT/random.bin"
test "$(stat -c %s random-dd.bin)" = 3145728
# Reads with an odd block size.
dd if=random-cp.bin bs=4093 status=none | cmp - "$OUT/random.bin"

# Appending 3 MiB twice.
cat "$OUT/random.bin" > twice.bin
cat "$OUT/random.bin" >> twice.bin
cat "$OUT/random.bin" "$OUT/random.bin" > "$OUT/twice.bin"
cmp twice.bin "$OUT/twice.bin"

# Overwriting a few bytes in the middle of committed content.
printf 'XYZ' | dd of=random-dd.bin bs=1 seek=1000000 conv=notrunc status=none
printf 'XYZ' | dd of="$OUT/random.bin" bs=1 seek=1000000 conv=notrunc status=none
cmp random-dd.bin "$OUT/random.bin"
test "$(stat -c %s random-dd.bin)" = 3145728
"#,
            out = out.display()
        ),
    );
    m.stop();
}

#[test]
fn shell_tools() {
    let env = Env::new();
    let m = env.mount("agent-sh", "sess-sh", Some("alice"), &[]);
    let kb = m.store("kb");
    let alice = m.store("alice");
    let src = env.scratch("src");
    sh(
        &src,
        r#"
mkdir -p a/b/c d/e
for i in $(seq 1 50); do
  case $((i % 4)) in 0) d=.;; 1) d=a;; 2) d=a/b/c;; 3) d=d/e;; esac
  if [ $((i % 5)) -eq 0 ]; then w=needle; else w=hay; fi
  printf 'line %d %s\nsecond line %d\n' "$i" "$w" "$i" > "$d/f$i.txt"
done
"#,
    );

    let script = format!(
        r#"
mkdir -p deep/x/y/z
test -d deep/x/y/z
cp -r '{src}' tree
diff -r '{src}' tree
echo "needles=$(grep -rl needle tree | wc -l)"
echo "files=$(find tree -type f | wc -l)"
echo "dirs=$(find tree -type d | wc -l)"
echo "f1=$(find tree -name 'f1*.txt' | wc -l)"
"#,
        src = src.display()
    );
    let got = sh(&kb, &script);
    assert_eq!(got, "needles=10\nfiles=50\ndirs=6\nf1=11\n");

    // sed -i writes a temp file and renames it over the original.
    let got = sh(
        &kb,
        r#"
sed -i 's/needle/pin/' tree/f20.txt
cat tree/f20.txt
echo "needles=$(grep -rl needle tree | wc -l)"
"#,
    );
    assert_eq!(got, "line 20 pin\nsecond line 20\nneedles=9\n");

    // mv of a file and of a directory, rm -r, ls -la.
    let got = sh(
        &kb,
        r#"
mv tree/f20.txt tree/renamed.txt
test ! -e tree/f20.txt
mv tree/d tree/moved-d
test ! -e tree/d
cat tree/moved-d/e/f3.txt
rm -r tree/moved-d
test ! -e tree/moved-d
ls -la tree
"#,
    );
    assert!(got.starts_with("line 3 hay\nsecond line 3\n"), "{got}");
    assert!(got.contains(" renamed.txt\n"), "{got}");
    assert!(
        got.contains(" a\n") && got.contains(" .\n") && got.contains(" ..\n"),
        "{got}"
    );
    assert!(
        !got.contains("moved-d") && !got.contains("f20.txt"),
        "{got}"
    );
    assert_eq!(sh(&kb, "find tree -type f | wc -l").trim(), "38");

    // Symlinks, hard links, chmod, touch -d.
    let got = sh(
        &kb,
        r#"
cd tree
ln -s renamed.txt link
echo "target=$(readlink link)"
cat link
ln renamed.txt hard
echo "nlink=$(stat -c %h renamed.txt) $(stat -c %h hard)"
test "$(stat -c %i renamed.txt)" = "$(stat -c %i hard)"
echo appended >> hard
tail -n 1 renamed.txt
rm hard
echo "nlink=$(stat -c %h renamed.txt)"
chmod 600 renamed.txt
echo "mode=$(stat -c %a renamed.txt)"
ls -l renamed.txt | cut -c1-10
touch -d '2001-02-03 04:05:06 UTC' renamed.txt
echo "mtime=$(stat -c %Y renamed.txt)"
"#,
    );
    assert_eq!(
        got,
        "target=renamed.txt\nline 20 pin\nsecond line 20\nnlink=2 2\nappended\nnlink=1\n\
         mode=600\n-rw-------\nmtime=981173106\n"
    );

    // The mount root is read-only.
    let root = m.path();
    sh_fails(root, "touch x");
    sh(
        root,
        r#"
python3 - <<'EOF'
import errno, os
for what, f in [
    ("create", lambda: os.open("x", os.O_CREAT | os.O_WRONLY, 0o644)),
    ("mkdir", lambda: os.mkdir("newdir")),
    ("symlink", lambda: os.symlink("kb", "link")),
]:
    try:
        f()
    except OSError as e:
        assert e.errno == errno.EROFS, (what, e)
    else:
        raise AssertionError(what + " at the mount root succeeded")
assert sorted(os.listdir(".")) == ["alice", "kb"], os.listdir(".")
EOF
"#,
    );

    // rename(2) across stores is EXDEV; mv falls back to copy and delete.
    let script = format!(
        r#"
python3 - <<'EOF'
import errno, os
try:
    os.rename("{kb}/tree/renamed.txt", "{alice}/renamed.txt")
except OSError as e:
    assert e.errno == errno.EXDEV, e
else:
    raise AssertionError("rename across stores succeeded")
assert os.path.exists("{kb}/tree/renamed.txt")
assert not os.path.exists("{alice}/renamed.txt")
EOF
mv '{kb}/tree/a/f1.txt' '{alice}/f1.txt'
test ! -e '{kb}/tree/a/f1.txt'
cat '{alice}/f1.txt'
mv '{kb}/tree/a/b' '{alice}/b'
test ! -e '{kb}/tree/a/b'
find '{alice}/b' -type f | wc -l
"#,
        kb = kb.display(),
        alice = alice.display()
    );
    assert_eq!(sh(&alice, &script), "line 1 hay\nsecond line 1\n13\n");

    sh(&kb, "rm -r tree deep; test -z \"$(ls -A)\"");
    m.stop();
}

#[test]
fn git_in_store() {
    let env = Env::new();
    let m = env.mount("agent-git", "sess-git", None, &["kb"]);
    let kb = m.store("kb");
    let got = sh(
        &kb,
        r#"
mkdir repo && cd repo
git init -q -b main
git config user.name 'Test Agent'
git config user.email agent@example.com
mkdir -p src docs
printf 'fn main() {\n    println!("hi");\n}\n' > src/main.rs
echo '# Readme' > README.md
echo notes > docs/notes.txt
git add -A
git commit -q -m 'first commit'
git log --oneline | grep -q 'first commit'
test -z "$(git status --porcelain)"
git fsck --no-progress > fsck.out 2>&1 || { cat fsck.out; exit 1; }
cat fsck.out; rm fsck.out
sed -i 's/Readme/Read me/' README.md
git status --porcelain
git commit -q -am 'second commit'
test -z "$(git status --porcelain)"
git log --format=%s
git show HEAD:README.md
git fsck --full --strict --no-progress 2>&1
git gc -q 2>&1
git fsck --full --strict --no-progress 2>&1
test -z "$(git status --porcelain)"
git diff --stat HEAD~1 HEAD
"#,
    );
    assert_eq!(
        got,
        " M README.md\nsecond commit\nfirst commit\n# Read me\n \
         README.md | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n"
    );
    m.stop();
}

#[test]
fn git_clone_into_store() {
    let env = Env::new();
    let origin = env.scratch("origin");
    sh(
        &origin,
        r#"
git init -q -b main
git config user.name 'Origin'
git config user.email origin@example.com
echo one > one.txt
git add -A && git commit -q -m 'c1'
mkdir -p lib/nested
printf 'pub fn f() {}\n' > lib/nested/mod.rs
head -c 200000 /dev/urandom > blob.bin
git add -A && git commit -q -m 'c2: subdir and binary'
echo two >> one.txt
printf '\x00\x01\x02' >> blob.bin
git commit -q -am 'c3'
"#,
    );
    let m = env.mount("agent-clone", "sess-clone", None, &["kb"]);
    let kb = m.store("kb");
    let script = format!(
        r#"
git clone -q 'file://{origin}' clone
cd clone
git fsck --full --strict --no-progress 2>&1
test -z "$(git status --porcelain)"
echo "count=$(git rev-list --count HEAD)"
test "$(git rev-parse HEAD)" = "$(git -C '{origin}' rev-parse HEAD)"
diff -r --exclude=.git '{origin}' .
cmp blob.bin '{origin}/blob.bin'
git log --format=%s
"#,
        origin = origin.display()
    );
    assert_eq!(sh(&kb, &script), "count=3\nc3\nc2: subdir and binary\nc1\n");
    // A plain local clone (copies objects instead of using the pack protocol).
    let script = format!(
        "git clone -q --no-hardlinks '{}' clone2 && cd clone2 && git fsck --full --no-progress 2>&1 \
         && test -z \"$(git status --porcelain)\" && git rev-list --count HEAD",
        origin.display()
    );
    assert_eq!(sh(&kb, &script), "3\n");
    m.stop();
}

#[test]
fn python_json_replace() {
    let env = Env::new();
    let m = env.mount("agent-py", "sess-py", None, &["kb"]);
    let kb = m.store("kb");
    let out = sh(
        &kb,
        r#"
mkdir cfg
python3 - <<'EOF'
import json, os
target = "cfg/state.json"
for i in range(5):
    tmp = f"cfg/.state.json.tmp{i}"
    data = {"iteration": i, "items": list(range(i * 10)), "text": "é\u2603" * i}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, json.dumps(data).encode())
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, target)
    assert not os.path.exists(tmp)
    with open(target) as f:
        assert json.load(f) == data, i
assert sorted(os.listdir("cfg")) == ["state.json"], os.listdir("cfg")
EOF
cat cfg/state.json
"#,
    );
    let v: Value = serde_json::from_str(&out).expect("final state.json parses");
    assert_eq!(v["iteration"], 4);
    assert_eq!(v["items"].as_array().unwrap().len(), 40);

    let log = env.store_log("kb");
    let renames = entries(&log, "kb", "rename");
    let pairs: Vec<(Option<&str>, Option<&str>)> = renames
        .iter()
        .map(|e| (s(e, "path"), s(e, "path2")))
        .collect();
    let want: Vec<(String, String)> = (0..5)
        .map(|i| {
            (
                format!("cfg/.state.json.tmp{i}"),
                "cfg/state.json".to_string(),
            )
        })
        .collect();
    let want: Vec<(Option<&str>, Option<&str>)> = want
        .iter()
        .map(|(a, b)| (Some(a.as_str()), Some(b.as_str())))
        .collect();
    assert_eq!(pairs, want, "rename entries: {renames:#?}");
    m.stop();
}

#[test]
fn unlink_while_open() {
    let env = Env::new();
    let m = env.mount("agent-unlink", "sess-unlink", None, &["kb"]);
    let kb = m.store("kb");
    let got = sh(
        &kb,
        r#"
printf 'original\n' > f
python3 - <<'EOF'
import os
f = open("f", "r+b", buffering=0)
fd = f.fileno()
f.write(b"HELLO")
os.unlink("f")
assert not os.path.exists("f")
assert "f" not in os.listdir(".")
os.lseek(fd, 0, os.SEEK_END)
os.write(fd, b"more after unlink\n")
want = b"HELLOnal\nmore after unlink\n"
st = os.fstat(fd)
assert st.st_size == len(want), st
os.lseek(fd, 0, os.SEEK_SET)
assert os.read(fd, 1000) == want
os.lseek(fd, 3, os.SEEK_SET)
assert os.read(fd, 4) == b"LOna"
os.pwrite(fd, b"J", 0)
assert os.pread(fd, 5, 0) == b"JELLO"
# A new file under the same name is a different file.
with open("f", "wb") as g:
    g.write(b"new\n")
assert os.pread(fd, 100, 0) == b"JELLOnal\nmore after unlink\n"
assert os.fstat(fd).st_ino != os.stat("f").st_ino
os.fsync(fd)
f.close()
with open("f", "rb") as g:
    assert g.read() == b"new\n"
os.unlink("f")
print("ok")
EOF
ls -A
"#,
    );
    assert_eq!(got, "ok\n");
    sh(
        &kb,
        r#"
printf 'x' > g
python3 - <<'EOF'
import os
fd = os.open("g", os.O_RDONLY)
os.unlink("g")
st = os.fstat(fd)
assert st.st_nlink == 0, f"st_nlink of an unlinked open file is {st.st_nlink}, want 0"
os.close(fd)
EOF
"#,
    );
    m.stop();
}

#[test]
fn versions_per_close() {
    let env = Env::new();
    let m = env.mount("agent-ver", "sess-ver", None, &["kb"]);
    let kb = m.store("kb");
    sh(
        &kb,
        r#"
mkdir notes
python3 - <<'EOF'
for i in range(20):
    with open("notes/counter.txt", "w") as f:
        f.write(f"value {i}\n")
EOF
"#,
    );
    let log = env.store_log("kb");
    let writes: Vec<&Value> = entries(&log, "kb", "write")
        .into_iter()
        .filter(|e| s(e, "path") == Some("notes/counter.txt"))
        .collect();
    assert_eq!(writes.len(), 20, "write entries: {writes:#?}");
    let versions: HashSet<i64> = writes
        .iter()
        .map(|e| e["version"].as_i64().expect("version"))
        .collect();
    assert_eq!(versions.len(), 20, "versions not distinct: {writes:#?}");

    // One open, 100 write(2) calls, one close: one more version.
    let got = sh(
        &kb,
        r#"
python3 - <<'EOF'
import os
fd = os.open("notes/counter.txt", os.O_WRONLY | os.O_APPEND)
for i in range(100):
    assert os.write(fd, b"x") == 1
os.close(fd)
EOF
cat notes/counter.txt
"#,
    );
    assert_eq!(got, format!("value 19\n{}", "x".repeat(100)));
    let log = env.store_log("kb");
    let writes: Vec<&Value> = entries(&log, "kb", "write")
        .into_iter()
        .filter(|e| s(e, "path") == Some("notes/counter.txt"))
        .collect();
    assert_eq!(writes.len(), 21, "write entries: {writes:#?}");
    let last = writes[20]["version"].as_i64().unwrap();
    assert!(
        !versions.contains(&last),
        "the 21st version reuses an id: {writes:#?}"
    );
    // Reading creates no versions.
    sh(
        &kb,
        "cat notes/counter.txt > /dev/null; head -c 3 notes/counter.txt > /dev/null",
    );
    let log = env.store_log("kb");
    assert_eq!(
        entries(&log, "kb", "write")
            .iter()
            .filter(|e| s(e, "path") == Some("notes/counter.txt"))
            .count(),
        21
    );
    m.stop();
}

/// Writes a small tree of everything: nested dirs, a large random file, an empty
/// file, a symlink, a hard link, a chmod'ed file, and a file in alice's store.
fn write_tree(m: &Mount<'_>) {
    sh(
        &m.store("kb"),
        r#"
mkdir -p docs/deep/er empty-dir
echo 'top' > top.txt
for i in $(seq 1 10); do echo "doc $i" > "docs/deep/doc$i.md"; done
head -c 1048576 /dev/urandom > docs/deep/er/random.bin
: > empty.txt
ln -s docs/deep/doc1.md link-to-doc1
ln top.txt top-hardlink.txt
echo secret > private.txt
chmod 600 private.txt
touch -d '2020-01-01 00:00:00 UTC' top.txt
"#,
    );
    sh(&m.store("alice"), "echo 'alice memory' > memory.md");
}

#[test]
fn remount_and_new_daemon_keep_content_and_history() {
    let env = Env::new();
    let m = env.mount("agent-a", "session-one", Some("alice"), &[]);
    write_tree(&m);
    let listing = tree_listing(m.path());
    assert!(listing.contains("docs/deep/er/random.bin"), "{listing}");
    m.stop();
    let before = env.log();
    let mount_entries: Vec<&Value> = before.iter().filter(|e| !made_by_init(e)).collect();
    assert!(mount_entries.len() >= 20, "{before:#?}");
    for e in &mount_entries {
        assert_eq!(s(e, "session"), Some("session-one"), "{e:#}");
        assert_eq!(s(e, "agent"), Some("agent-a"), "{e:#}");
    }

    let m = env.mount("agent-b", "session-two", Some("alice"), &[]);
    assert_eq!(
        tree_listing(m.path()),
        listing,
        "content changed across remount"
    );
    sh(
        &m.store("kb"),
        "echo second >> top.txt; mkdir later; echo new > later/new.txt; rm empty.txt",
    );
    assert_eq!(sh(&m.store("kb"), "cat top-hardlink.txt"), "top\nsecond\n");
    m.stop();

    let after = env.log();
    assert!(after.len() > before.len());
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "earlier audit entries changed"
    );
    let new_ops: BTreeSet<&str> = after[before.len()..]
        .iter()
        .map(|e| {
            assert_eq!(s(e, "session"), Some("session-two"), "{e:#}");
            assert_eq!(s(e, "agent"), Some("agent-b"), "{e:#}");
            assert_eq!(s(e, "user"), Some("alice"), "{e:#}");
            s(e, "op").unwrap()
        })
        .collect();
    for op in ["write", "mkdir", "create", "unlink"] {
        assert!(new_ops.contains(op), "no {op} entry in {new_ops:?}");
    }
    let verify = env.ctl(&["audit", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");

    // A third daemon still sees the second one's changes.
    let m = env.mount("agent-c", "session-three", Some("alice"), &[]);
    assert_eq!(
        sh(&m.store("kb"), "cat later/new.txt; test ! -e empty.txt"),
        "new\n"
    );
    m.stop();
}

#[test]
fn attribution() {
    let env = Env::new();
    let m1 = env.mount("agent-nine", "sess-nine", Some("alice"), &[]);
    let m2 = env.mount("other-agent", "other-sess", None, &["kb"]);
    sh(
        &m1.store("kb"),
        r#"
mkdir a1
echo x > a1/f
mv a1/f a1/g
ln -s g a1/s
ln a1/g a1/h
chmod 600 a1/g
chown 1234:1234 a1/g
touch -d @1000000000 a1/g
python3 -c 'import os; os.truncate("a1/g", 1)'
mkfifo a1/p
rm a1/h a1/p
mkdir a1/tmp
rmdir a1/tmp
"#,
    );
    sh(&m1.store("alice"), "echo mine > a.txt; mv a.txt b.txt");
    sh(
        &m2.store("kb"),
        "mkdir b2; echo y > b2/f; mv b2/f b2/g; rm b2/g",
    );
    m1.stop();
    m2.stop();

    let log = env.log();
    let mut ops1 = BTreeSet::new();
    let mut count2 = 0;
    for e in &log {
        let who = (s(e, "agent"), s(e, "session"), s(e, "user"));
        if made_by_init(e) {
            continue;
        }
        let path = s(e, "path").unwrap_or("");
        let store = s(e, "store").unwrap_or("");
        if store == "alice" || path.starts_with("a1") {
            assert_eq!(
                who,
                (Some("agent-nine"), Some("sess-nine"), Some("alice")),
                "{e:#}"
            );
            ops1.insert(s(e, "op").unwrap());
        } else if path.starts_with("b2") {
            assert_eq!(
                who,
                (Some("other-agent"), Some("other-sess"), None),
                "{e:#}"
            );
            count2 += 1;
        } else {
            panic!("unexpected audit entry {e:#}");
        }
    }
    assert!(count2 >= 5, "{log:#?}");
    let want = [
        "create", "write", "mkdir", "rmdir", "unlink", "rename", "symlink", "link", "chmod",
        "chown", "utimes", "truncate", "mknod",
    ];
    let missing: Vec<&str> = want.into_iter().filter(|op| !ops1.contains(op)).collect();
    assert!(
        missing.is_empty(),
        "ops not audited: {missing:?} (got {ops1:?})"
    );
}

#[test]
fn killed_daemon_leaves_nothing_half_written() {
    let env = Env::new();
    let mut m = env.mount("agent-k", "sess-k", None, &["kb"]);
    let mp = m.path().to_path_buf();
    let kb = m.store("kb");
    let ready = env.path().join("writer-ready");
    sh(
        &kb,
        "mkdir dir; printf 'committed\\n' > dir/a.txt; printf 'also\\n' > b.txt",
    );

    // A writer with uncommitted writes in flight: it never closes its files.
    let script = format!(
        r#"
import os, time
fd = os.open("dir/a.txt", os.O_WRONLY)
os.write(fd, b"HALF-WRITTEN GARBAGE " * 1000)
fd2 = os.open("c.txt", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd2, b"never closed")
fd3 = os.open("d.txt", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd3, b"synced\n")
os.fsync(fd3)
os.write(fd3, b"not synced\n")
open("{ready}", "w").close()
time.sleep(120)
"#,
        ready = ready.display()
    );
    let mut writer = common::ChildGuard(
        std::process::Command::new("python3")
            .arg("-c")
            .arg(&script)
            .current_dir(&kb)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn writer"),
    );
    let deadline = std::time::Instant::now() + common::DAEMON_DEADLINE;
    while !ready.exists() {
        if let Some(st) = writer.0.try_wait().unwrap() {
            panic!("writer exited early: {st}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writer never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    // Crash first, then end the writer (its close must not reach a daemon).
    m.kill9();
    drop(writer);
    assert!(
        common::is_mounted(&mp),
        "the dead mount should still be listed"
    );

    // A new daemon refuses the dead mountpoint.
    match env.try_mount_at(&mp, "agent-k2", "sess-k2", None, &["kb"]) {
        Err(e) => assert!(!e.status.success() && e.log.contains("dead mount"), "{e}"),
        Ok(_) => panic!("mounted over a dead mount"),
    }

    let out = env.umount(&mp);
    common::assert_success("memfs umount of a dead mount", &out);
    assert!(!common::is_mounted(&mp), "memfs umount left the dead mount");
    drop(m);

    let m = env
        .try_mount_at(&mp, "agent-k2", "sess-k2", None, &["kb"])
        .unwrap_or_else(|e| panic!("remount failed: {e}"));
    let got = sh(
        &m.store("kb"),
        r#"
cat dir/a.txt
cat b.txt
cat d.txt
if [ -e c.txt ]; then echo "c.txt size $(stat -c %s c.txt)"; fi
"#,
    );
    let got = got.replace("c.txt size 0\n", "");
    assert_eq!(got, "committed\nalso\nsynced\n");
    // `memfs umount` of a live mount: the daemon notices and exits 0.
    common::assert_success("memfs umount", &env.umount(&mp));
    m.wait_exit();
    assert_eq!(env.ctl(&["audit", "verify"])["ok"], true);
}

#[test]
fn read_only_attachment() {
    let env = Env::new();
    let m = env.mount("agent-seed", "sess-seed", None, &["kb"]);
    sh(
        &m.store("kb"),
        "mkdir dir; echo seed > doc.txt; echo inner > dir/inner.txt",
    );
    m.stop();
    let entries_before = env.log().len();

    let m = env.mount("agent-ro", "sess-ro", Some("alice"), &["kb:ro", "alice"]);
    let got = sh(
        &m.store("kb"),
        r#"
cat doc.txt dir/inner.txt
ls
python3 - <<'EOF'
import errno, os
def erofs(what, f):
    try:
        f()
    except OSError as e:
        assert e.errno == errno.EROFS, (what, e)
    else:
        raise AssertionError(what + " succeeded on a read-only store")
erofs("open w", lambda: open("doc.txt", "w"))
erofs("open a", lambda: open("doc.txt", "a"))
erofs("open r+", lambda: open("doc.txt", "r+"))
erofs("create", lambda: os.open("new.txt", os.O_CREAT | os.O_WRONLY, 0o644))
erofs("mkdir", lambda: os.mkdir("newdir"))
erofs("unlink", lambda: os.unlink("doc.txt"))
erofs("rmdir", lambda: os.rmdir("dir"))
erofs("rename", lambda: os.rename("doc.txt", "moved.txt"))
erofs("symlink", lambda: os.symlink("doc.txt", "link"))
erofs("link", lambda: os.link("doc.txt", "hard"))
erofs("chmod", lambda: os.chmod("doc.txt", 0o600))
erofs("truncate", lambda: os.truncate("doc.txt", 0))
erofs("utime", lambda: os.utime("doc.txt", (0, 0)))
erofs("mkfifo", lambda: os.mkfifo("fifo"))
with open("doc.txt") as f:
    assert f.read() == "seed\n"
EOF
"#,
    );
    assert_eq!(got, "seed\ninner\ndir\ndoc.txt\n");
    sh_fails(&m.store("kb"), "touch doc.txt");
    // The other store in the same mount stays writable.
    assert_eq!(sh(&m.store("alice"), "echo ok > w.txt; cat w.txt"), "ok\n");
    m.stop();
    let log = env.log();
    for e in &log[entries_before..] {
        assert_eq!(
            s(e, "store"),
            Some("alice"),
            "entry made through a read-only store: {e:#}"
        );
    }

    // alice's private store is not bob's to mount, nor anyone's without a user.
    for user in [Some("bob"), None] {
        match env.try_mount("agent-bob", "sess-bob", user, &["alice"]) {
            Err(e) => assert!(!e.status.success() && e.log.contains("private"), "{e}"),
            Ok(_) => panic!("user {user:?} mounted alice's private store"),
        }
    }
    // Without --store, bob sees only the org store.
    let m = env.mount("agent-bob", "sess-bob", Some("bob"), &[]);
    assert_eq!(sh(m.path(), "ls"), "kb\n");
    m.stop();
}

#[test]
fn concurrent_readers_writers_in_one_mount() {
    let env = Env::new();
    let m = env.mount("agent-conc", "sess-conc", None, &["kb"]);
    let kb = m.store("kb");
    let outside = env.scratch("outside");
    let script = format!(
        r#"
head -c 500000 /dev/urandom > '{o}/shared.bin'
cp '{o}/shared.bin' shared.bin
mkdir out
pids=
for w in 1 2 3 4; do
  ( for j in $(seq 1 50); do printf 'writer %d file %d\n' "$w" "$j" > "out/w$w-$j.txt"; done ) &
  pids="$pids $!"
done
for r in 1 2; do
  ( for k in $(seq 1 30); do cmp shared.bin '{o}/shared.bin'; ls out > /dev/null; done ) &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
ls out | wc -l
"#,
        o = outside.display()
    );
    assert_eq!(sh(&kb, &script).trim(), "200");
    for w in 1..=4 {
        for j in 1..=50 {
            let p = kb.join(format!("out/w{w}-{j}.txt"));
            let got =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(got, format!("writer {w} file {j}\n"), "{}", p.display());
        }
    }
    m.stop();
    let log = env.store_log("kb");
    let creates = entries(&log, "kb", "create")
        .iter()
        .filter(|e| s(e, "path").is_some_and(|p| p.starts_with("out/")))
        .count();
    let writes = entries(&log, "kb", "write")
        .iter()
        .filter(|e| s(e, "path").is_some_and(|p| p.starts_with("out/")))
        .count();
    assert_eq!((creates, writes), (200, 200));
    assert_eq!(env.ctl(&["audit", "verify"])["ok"], true);
}

/// Appending processes, and lines each appends, in `concurrent_appenders_lose_no_lines`.
const APPENDERS: usize = 4;
const APPENDS: usize = 100;
const ROUNDS: usize = 4;

/// Which of the lines "writer W line J" are missing from `text`, and which lines are
/// there that should not be (torn or duplicated).
fn append_damage(text: &str) -> (Vec<String>, Vec<String>) {
    let mut want: BTreeSet<String> = (1..=APPENDERS)
        .flat_map(|w| (1..=APPENDS).map(move |j| format!("writer {w} line {j}")))
        .collect();
    let mut extra = Vec::new();
    for line in text.lines() {
        if !want.remove(line) {
            extra.push(line.to_string());
        }
    }
    (want.into_iter().collect(), extra)
}

/// Several processes appending to one file in one mount, as shells and loggers do:
/// O_APPEND writes all land, none torn, none lost.
#[test]
fn concurrent_appenders_lose_no_lines() {
    let env = Env::new();
    let m = env.mount("agent-app", "sess-app", None, &["kb"]);
    let kb = m.store("kb");
    let mut problems = Vec::new();
    // A race shows only sometimes: a few rounds, stopping at the first damage.
    for round in 1..=ROUNDS {
        // Shells, each `>>` opening, appending one line and closing, over and over.
        let shell_log = format!("shell-{round}.log");
        sh(
            &kb,
            &format!(
                r#"
: > {shell_log}
pids=
for w in $(seq 1 {APPENDERS}); do
  ( for j in $(seq 1 {APPENDS}); do printf 'writer %d line %d\n' "$w" "$j" >> {shell_log}; done ) &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
"#
            ),
        );
        // Processes each holding one O_APPEND descriptor for all their writes.
        let fd_log = format!("fd-{round}.log");
        sh(
            &kb,
            &format!(
                r#"
: > {fd_log}
pids=
for w in $(seq 1 {APPENDERS}); do
  python3 -c '
import os, sys
w = int(sys.argv[1])
fd = os.open("{fd_log}", os.O_WRONLY | os.O_APPEND)
for j in range(1, {APPENDS} + 1):
    assert os.write(fd, b"writer %d line %d\n" % (w, j)) > 0
os.close(fd)
' "$w" &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
"#
            ),
        );
        for name in [shell_log, fd_log] {
            let text = std::fs::read_to_string(kb.join(&name)).unwrap();
            let (missing, extra) = append_damage(&text);
            if !missing.is_empty() || !extra.is_empty() {
                problems.push(format!(
                    "{name}: {} of {} lines missing (e.g. {:?}), {} unexpected lines (e.g. {:?})",
                    missing.len(),
                    APPENDERS * APPENDS,
                    &missing[..missing.len().min(5)],
                    extra.len(),
                    &extra[..extra.len().min(5)]
                ));
            }
        }
        if !problems.is_empty() {
            break;
        }
    }
    m.stop();
    assert!(
        problems.is_empty(),
        "concurrent appends were lost:\n{}",
        problems.join("\n")
    );
}

/// Whether an audit entry is `memfs init`'s: creating a declared store, and
/// saving the settings memfs.toml declares for it.
fn made_by_init(e: &Value) -> bool {
    matches!(s(e, "op"), Some("store-create" | "store-settings"))
}

//! `memfsctl export STORE --git DIR`: the store's history as a git repository.
//!
//! The audit log is replayed, oldest first, on a model of the namespace (inodes
//! and directory entries, so renamed directories carry their contents along);
//! every entry that changes the tree of files becomes one commit, authored by the
//! entry's agent at the entry's time, with the session in the message. The stream
//! goes to `git fast-import`. If replaying the log does not end in exactly the
//! store's head (for instance a log written by an older memfs), one last commit
//! sets the tree to the head, so the repository always ends equal to it.
//! Git keeps files and symlinks only: empty directories, fifos and sockets are
//! not represented.

use super::export::{snapshot, ContentReader, Snapshot};
use super::progress::Progress;
use super::{InterchangeError, Result};
use crate::ids::{Ino, VersionId};
use crate::store::{AuditEntry, Db, NodeKind, Txn};
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// What the git export produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GitExported {
    pub store: String,
    pub dir: String,
    pub commits: u64,
    pub audit_entries: u64,
    /// Whether a final commit was needed to make the tree equal the head.
    pub head_fixup: bool,
}

/// What a path holds in a git tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Blob {
    /// File content, by blake3 hash (an empty file has the empty hash).
    Content(String),
    /// A symlink's target.
    Link(Vec<u8>),
}

/// A tree entry: git mode and blob.
type Leaf = (u32, Blob);

/// The namespace as the audit log builds it, entry by entry.
struct Model<'s> {
    snap: &'s Snapshot,
    entries: BTreeMap<(Ino, String), Ino>,
    /// A directory's one name.
    dir_entry: BTreeMap<Ino, (Ino, String)>,
    content: BTreeMap<Ino, VersionId>,
    modes: BTreeMap<Ino, u16>,
}

impl<'s> Model<'s> {
    fn new(snap: &'s Snapshot) -> Self {
        Model {
            snap,
            entries: BTreeMap::new(),
            dir_entry: BTreeMap::new(),
            content: BTreeMap::new(),
            modes: BTreeMap::new(),
        }
    }

    fn kind(&self, ino: Ino) -> Option<NodeKind> {
        self.snap.inodes.get(&ino).map(|r| r.kind)
    }

    fn resolve(&self, path: &str) -> Option<Ino> {
        let mut cur = self.snap.store.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur = *self.entries.get(&(cur, part.to_string()))?;
        }
        Some(cur)
    }

    fn split(&self, path: &str) -> Option<(Ino, String)> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        Some((self.resolve(dir)?, name.to_string()))
    }

    fn insert(&mut self, path: &str, ino: Ino) {
        if let Some(key) = self.split(path) {
            if self.kind(ino) == Some(NodeKind::Dir) {
                self.dir_entry.insert(ino, key.clone());
            }
            self.entries.insert(key, ino);
        }
    }

    fn remove(&mut self, path: &str) -> Option<Ino> {
        let key = self.split(path)?;
        let ino = self.entries.remove(&key)?;
        if self.dir_entry.get(&ino) == Some(&key) {
            self.dir_entry.remove(&ino);
        }
        Some(ino)
    }

    fn dir_path(&self, dir: Ino) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = dir;
        while cur != self.snap.store.root {
            let (parent, name) = self.dir_entry.get(&cur)?;
            parts.push(name.as_str());
            cur = *parent;
            if parts.len() > 4096 {
                return None;
            }
        }
        parts.reverse();
        Some(parts.join("/"))
    }

    /// Every path naming `ino` now.
    fn paths_of(&self, ino: Ino) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, i)| **i == ino)
            .filter_map(|((dir, name), _)| Some(join(&self.dir_path(*dir)?, name)))
            .collect()
    }

    fn leaf(&self, ino: Ino) -> Option<Leaf> {
        let row = self.snap.inodes.get(&ino)?;
        let perm = self.modes.get(&ino).copied().unwrap_or(row.perm);
        match row.kind {
            NodeKind::File => {
                let hash = match self.content.get(&ino) {
                    Some(v) => self.snap.versions.get(v)?.hash.clone(),
                    None => super::empty_hash(),
                };
                let mode = if perm & 0o111 != 0 {
                    0o100755
                } else {
                    0o100644
                };
                Some((mode, Blob::Content(hash)))
            }
            NodeKind::Symlink => {
                Some((0o120000, Blob::Link(row.target.clone().unwrap_or_default())))
            }
            _ => None,
        }
    }

    /// The files and symlinks at or below `path`.
    fn leaves_under(&self, path: &str, out: &mut BTreeMap<String, Leaf>) {
        let Some(ino) = self.resolve(path) else {
            return;
        };
        let mut stack = vec![(path.to_string(), ino)];
        while let Some((p, ino)) = stack.pop() {
            if self.kind(ino) == Some(NodeKind::Dir) {
                let from = (ino, String::new());
                for ((dir, name), child) in self.entries.range(from..) {
                    if *dir != ino {
                        break;
                    }
                    stack.push((join(&p, name), *child));
                }
            } else if let Some(l) = self.leaf(ino) {
                out.insert(p, l);
            }
        }
    }

    /// Applies one audit entry. Returns the paths whose subtrees it may change.
    fn apply(&mut self, e: &AuditEntry) -> Vec<String> {
        let path = e.path.clone().unwrap_or_default();
        let ino = e.ino.map(Ino);
        let mut roots = Vec::new();
        match e.op.as_str() {
            "create" | "mkdir" | "symlink" | "mknod" | "link" | "restore" => {
                if let Some(i) = ino {
                    self.insert(&path, i);
                    roots.push(path.clone());
                }
            }
            "unlink" | "rmdir" => {
                self.remove(&path);
                roots.push(path.clone());
            }
            "rename" => {
                if let Some(to) = e.path2.clone() {
                    let exchange = detail(e, "exchange").and_then(|v| v.as_bool()) == Some(true);
                    let a = self.remove(&path);
                    let b = self.remove(&to);
                    if let Some(a) = a {
                        self.insert(&to, a);
                    }
                    if let (true, Some(b)) = (exchange, b) {
                        self.insert(&path, b);
                    }
                    roots.push(path.clone());
                    roots.push(to);
                }
            }
            _ => {}
        }
        if let Some(mode) = detail(e, "mode").and_then(|m| m.as_str()) {
            if let (Some(i), Ok(m)) = (ino, u16::from_str_radix(mode, 8)) {
                self.modes.insert(i, m);
                roots.extend(self.paths_of(i));
            }
        }
        if let (Some(i), Some(v)) = (ino, e.version.map(VersionId)) {
            let committed = e.op != "conflict"
                && self
                    .snap
                    .versions
                    .get(&v)
                    .is_some_and(|r| r.op != "conflict");
            if committed && self.content.get(&i) != Some(&v) {
                self.content.insert(i, v);
                roots.extend(self.paths_of(i));
            }
        }
        roots
    }
}

fn detail<'a>(e: &'a AuditEntry, key: &str) -> Option<&'a serde_json::Value> {
    e.detail.as_ref()?.get(key)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The leaves at or below `root` in a flat view.
fn under(flat: &BTreeMap<String, Leaf>, root: &str) -> BTreeMap<String, Leaf> {
    let below = format!("{root}/");
    flat.range(root.to_string()..)
        .take_while(|(p, _)| p.starts_with(root))
        .filter(|(p, _)| root.is_empty() || p.as_str() == root || p.starts_with(&below))
        .map(|(p, l)| (p.clone(), l.clone()))
        .collect()
}

/// A path for the fast-import stream, C-quoted when it needs to be.
fn quote(path: &str) -> String {
    if !path.starts_with('"')
        && !path
            .chars()
            .any(|c| c == '\n' || c == '\\' || c.is_control())
    {
        return path.to_string();
    }
    let mut out = String::from("\"");
    for c in path.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\{:03o}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name or email for an author line (no angle brackets or line breaks).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '<' | '>' | '\n') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn author(e: &AuditEntry) -> String {
    let email = match &e.user {
        Some(u) if u.contains('@') => u.clone(),
        Some(u) => format!("{u}@memfs"),
        None => format!("{}@memfs", e.agent),
    };
    let secs = e.at_ns.div_euclid(1_000_000_000).max(0);
    format!("{} <{}> {secs} +0000", clean(&e.agent), clean(&email))
}

/// Writes the fast-import stream: blobs as needed, one commit per changing entry.
struct Stream<'t, 'c, W: Write> {
    tx: &'t Txn<'c>,
    out: W,
    marks: BTreeMap<Blob, u64>,
    next_mark: u64,
    /// A version holding each content hash.
    by_hash: BTreeMap<String, VersionId>,
    commits: u64,
}

impl<W: Write> Stream<'_, '_, W> {
    fn blob(&mut self, b: &Blob) -> Result<u64> {
        if let Some(m) = self.marks.get(b) {
            return Ok(*m);
        }
        self.next_mark += 1;
        let mark = self.next_mark;
        match b {
            Blob::Link(t) => {
                write!(self.out, "blob\nmark :{mark}\ndata {}\n", t.len())?;
                self.out.write_all(t)?;
            }
            Blob::Content(h) => {
                let v = self.by_hash.get(h).copied();
                let size = match v {
                    Some(v) => self.tx.version(v)?.size,
                    None => 0,
                };
                write!(self.out, "blob\nmark :{mark}\ndata {size}\n")?;
                let mut r = ContentReader::new(self.tx, v)?;
                let n = io::copy(&mut (&mut r).take(size), &mut self.out)?;
                if n != size {
                    return Err(InterchangeError::Invalid(format!(
                        "version {v:?}: content shorter than its size"
                    )));
                }
            }
        }
        self.out.write_all(b"\n")?;
        self.marks.insert(b.clone(), mark);
        Ok(mark)
    }

    /// One commit replacing the subtrees at `roots` with `leaves`.
    fn commit(
        &mut self,
        who: &str,
        message: &str,
        deletes: &[String],
        leaves: &BTreeMap<String, Leaf>,
        deleteall: bool,
    ) -> Result<()> {
        let mut ops = Vec::new();
        for (path, (mode, blob)) in leaves {
            let mark = self.blob(blob)?;
            ops.push(format!("M {mode:o} :{mark} {}\n", quote(path)));
        }
        write!(
            self.out,
            "commit refs/heads/main\nauthor {who}\ncommitter {who}\ndata {}\n{message}\n",
            message.len()
        )?;
        if deleteall {
            self.out.write_all(b"deleteall\n")?;
        }
        for d in deletes {
            writeln!(self.out, "D {}", quote(d))?;
        }
        for op in ops {
            self.out.write_all(op.as_bytes())?;
        }
        self.out.write_all(b"\n")?;
        self.commits += 1;
        Ok(())
    }
}

fn message(e: &AuditEntry) -> String {
    let mut subject = e.op.clone();
    if let Some(p) = e.path.as_deref().filter(|p| !p.is_empty()) {
        subject.push(' ');
        subject.push_str(p);
    }
    if let Some(p) = &e.path2 {
        subject.push_str(" -> ");
        subject.push_str(p);
    }
    format!(
        "{subject}\n\nAgent: {}\nSession: {}\nUser: {}\nAudit-Id: {}\nAudit-Hash: {}\n",
        e.agent,
        e.session,
        e.user.as_deref().unwrap_or("-"),
        e.id.0,
        e.hash
    )
}

/// The head tree as the database has it now.
fn head_leaves(snap: &Snapshot) -> BTreeMap<String, Leaf> {
    let mut m = Model::new(snap);
    for (ino, v) in &snap.heads {
        m.content.insert(*ino, v.id);
    }
    snap.tree
        .iter()
        .filter_map(|(p, ino)| m.leaf(*ino).map(|l| (p.clone(), l)))
        .collect()
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir);
    c
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| InterchangeError::Invalid(format!("cannot run git ({what}): {e}")))?;
    if !out.status.success() {
        return Err(InterchangeError::Invalid(format!(
            "git {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Exports store `name`'s history into a new git repository at `dir` (which must
/// not exist or be empty).
pub fn export_git(db: &Db, name: &str, dir: &Path, progress: &mut Progress) -> Result<GitExported> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(InterchangeError::Invalid(format!(
            "{} exists and is not empty",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)?;
    run(
        Command::new("git")
            .args(["init", "-q", "-b", "main"])
            .arg(dir),
        "init",
    )?;
    let mut child = git(dir)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| InterchangeError::Invalid(format!("cannot run git fast-import: {e}")))?;
    let Some(stdin) = child.stdin.take() else {
        return Err(InterchangeError::Invalid(
            "git fast-import has no stdin".into(),
        ));
    };
    let written = db.read(|tx| write_stream(tx, name, BufWriter::new(stdin), progress));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait()?;
    let (commits, entries, fixup) = written?;
    if !status.success() {
        return Err(InterchangeError::Invalid(format!(
            "git fast-import failed: {}",
            err.trim()
        )));
    }
    if commits > 0 {
        run(git(dir).args(["reset", "-q", "--hard", "main"]), "reset")?;
    }
    Ok(GitExported {
        store: name.to_string(),
        dir: dir.display().to_string(),
        commits,
        audit_entries: entries,
        head_fixup: fixup,
    })
}

fn write_stream<W: Write>(
    tx: &Txn<'_>,
    name: &str,
    out: W,
    progress: &mut Progress,
) -> Result<(u64, u64, bool)> {
    let snap = snapshot(tx, name, true)?;
    let mut s = Stream {
        tx,
        out,
        marks: BTreeMap::new(),
        next_mark: 0,
        by_hash: snap
            .versions
            .values()
            .map(|v| (v.hash.clone(), v.id))
            .collect(),
        commits: 0,
    };
    let mut model = Model::new(&snap);
    let mut flat: BTreeMap<String, Leaf> = BTreeMap::new();
    for e in &snap.audit {
        let mut roots = model.apply(e);
        roots.sort();
        roots.dedup();
        // Drop roots inside other roots: the outer one covers them.
        let outer: Vec<String> = roots
            .iter()
            .filter(|r| {
                !roots
                    .iter()
                    .any(|o| o != *r && (o.is_empty() || r.starts_with(&format!("{o}/"))))
            })
            .cloned()
            .collect();
        let mut deletes = Vec::new();
        let mut leaves = BTreeMap::new();
        let mut changed = false;
        for r in &outer {
            let old = under(&flat, r);
            let mut new = BTreeMap::new();
            model.leaves_under(r, &mut new);
            if old != new {
                changed = true;
                for p in old.keys() {
                    flat.remove(p);
                }
                flat.extend(new.iter().map(|(p, l)| (p.clone(), l.clone())));
                if !old.is_empty() {
                    deletes.push(r.clone());
                }
                leaves.extend(new);
            }
        }
        if changed || (e.op == "store-create" && s.commits == 0) {
            s.commit(&author(e), &message(e), &deletes, &leaves, false)?;
        }
        progress.add(0);
    }
    let head = head_leaves(&snap);
    let fixup = head != flat;
    if fixup || s.commits == 0 {
        let now = crate::ids::now_ns().div_euclid(1_000_000_000);
        let who = format!("memfsctl <memfsctl@memfs> {now} +0000");
        let msg = "memfsctl export: the tree as the store's head has it\n\nThe audit log replayed did not end in the head (or was empty).\n";
        s.commit(&who, msg, &[], &head, true)?;
    }
    s.out.write_all(b"done\n")?;
    s.out.flush()?;
    Ok((s.commits, snap.audit.len() as u64, fixup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_only_when_needed() {
        assert_eq!(quote("a/b c.md"), "a/b c.md");
        assert_eq!(quote("\"x"), "\"\\\"x\"");
        assert_eq!(quote("a\\b"), "\"a\\\\b\"");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn subtrees_do_not_include_siblings_with_a_common_prefix() {
        let mut flat = BTreeMap::new();
        for p in ["a", "a-b", "a/x", "a/y/z", "b"] {
            flat.insert(p.to_string(), (0o100644, Blob::Content(String::new())));
        }
        let keys: Vec<String> = under(&flat, "a").into_keys().collect();
        assert_eq!(keys, vec!["a", "a/x", "a/y/z"]);
        assert_eq!(under(&flat, "").len(), 5);
    }
}

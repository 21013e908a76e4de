//! Checks an archive's metadata before anything is written: paths and names
//! (memfs's name rules, no `..`, nothing absolute), symlinks that would lead out
//! of the store, hard links, quotas, versions and heads that agree, audit entries
//! that name only what the archive holds. Pure functions over parsed records, so
//! every rule has a unit test.

use super::{
    empty_hash, refuse, AuditRecord, Kind, Manifest, NodeRecord, Result, VersionRecord,
    FORMAT_NAME, FORMAT_VERSION,
};
use crate::fs::{check_new_name, check_path_len};
use crate::store::Scope;
use std::collections::{BTreeMap, BTreeSet};

/// Longest symlink target accepted (Linux's PATH_MAX less the NUL).
pub const TARGET_MAX: usize = 4095;

/// Everything an archive says about a store, parsed from its metadata members.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub manifest: Manifest,
    pub files: Vec<NodeRecord>,
    pub unlinked: Vec<NodeRecord>,
    pub versions: Vec<VersionRecord>,
    pub audit: Vec<AuditRecord>,
}

/// The target database's limits for the new store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_bytes: Option<u64>,
    pub max_files: Option<u64>,
}

/// What a tar member's name says it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// One of the metadata files (memfs-export.json, files.jsonl, ...).
    Meta(&'static str),
    /// `head/<path>`: content (or directory, symlink) at a store path.
    Head(String),
    /// `versions/<id>`: one version's content.
    Version(i64),
}

/// A namespace path: relative, no empty, `.` or `..` components, every component
/// passing memfs's rules for new names, the whole within the path length limit.
pub fn check_store_path(path: &str) -> Result<()> {
    check_shape(path)?;
    for part in path.split('/') {
        if let Err(e) = check_new_name(part.as_bytes()) {
            return refuse(format!("path '{path}': name '{part}' is not allowed ({e})"));
        }
    }
    if check_path_len(path).is_err() {
        return refuse(format!(
            "path '{}...' is longer than {} bytes",
            prefix(path),
            crate::fs::PATH_MAX
        ));
    }
    Ok(())
}

/// The shape rules alone (relative, no `..`, no empty or `.` component, no NUL).
fn check_shape(path: &str) -> Result<()> {
    if path.starts_with('/') {
        return refuse(format!("path '{path}' is absolute"));
    }
    if path.contains('\0') {
        return refuse(format!(
            "path '{}' contains a NUL byte",
            path.escape_debug()
        ));
    }
    for part in path.split('/') {
        match part {
            ".." => return refuse(format!("path '{path}' has a '..' component")),
            "." | "" => {
                return refuse(format!(
                    "path '{path}' has an empty or '.' component (not canonical)"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A path recorded in history (a version's or an audit entry's): "" or a
/// relative path without `..`. Names are not re-checked against today's rules.
pub fn check_history_path(path: &str) -> Result<()> {
    if path.is_empty() {
        Ok(())
    } else {
        check_shape(path)
    }
}

fn prefix(s: &str) -> &str {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A symlink at `link` (store-relative; `None` for an unlinked one, checked as if
/// at the root) must point inside the store: relative, and never climbing above
/// the store root on the way.
pub fn check_symlink(link: Option<&str>, target: &str) -> Result<()> {
    let at = link.unwrap_or("(unlinked symlink)");
    if target.is_empty() {
        return refuse(format!("symlink '{at}' has an empty target"));
    }
    if target.len() > TARGET_MAX || target.contains('\0') {
        return refuse(format!("symlink '{at}' has an invalid target"));
    }
    if target.starts_with('/') {
        return refuse(format!(
            "symlink '{at}' -> '{target}' is absolute: it would point outside the store"
        ));
    }
    // Depth of the directory holding the link, below the store root.
    let mut depth = link.map_or(0, |l| l.split('/').count().saturating_sub(1));
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth == 0 {
                    return refuse(format!(
                        "symlink '{at}' -> '{target}' climbs above the store root"
                    ));
                }
                depth -= 1;
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Permission bits from the archive's octal string.
pub fn parse_mode(s: &str) -> Result<u16> {
    match u16::from_str_radix(s, 8) {
        Ok(m) if m <= 0o7777 && !s.is_empty() => Ok(m),
        _ => refuse(format!("mode '{s}' is not octal permission bits")),
    }
}

/// A blake3 hash as 64 lowercase hex digits.
pub fn check_hash(what: &str, h: &str) -> Result<()> {
    if h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        refuse(format!("{what}: '{h}' is not a blake3 hash"))
    }
}

/// Classifies a tar member by name, refusing anything outside the layout.
pub fn classify_member(name: &[u8]) -> Result<Member> {
    let Ok(name) = std::str::from_utf8(name) else {
        return refuse(format!(
            "member '{}' has a name that is not UTF-8",
            String::from_utf8_lossy(name)
        ));
    };
    if name.starts_with('/') || name.split('/').any(|p| p == "..") {
        return refuse(format!(
            "member '{name}' is absolute or has a '..' component"
        ));
    }
    for meta in [
        super::MANIFEST,
        super::FILES,
        super::UNLINKED,
        super::VERSIONS,
        super::AUDIT,
    ] {
        if name == meta {
            return Ok(Member::Meta(meta));
        }
    }
    if let Some(rest) = name.strip_prefix(super::HEAD_DIR) {
        // A directory member may end in '/'.
        let path = rest.strip_suffix('/').unwrap_or(rest);
        if path.is_empty() {
            return Ok(Member::Head(String::new()));
        }
        check_store_path(path).map_err(|e| in_member(name, e))?;
        return Ok(Member::Head(path.to_string()));
    }
    if let Some(digits) = name.strip_prefix(super::VERSIONS_DIR) {
        // Canonical decimal only: no sign, no leading zeros.
        if let Ok(id) = digits.parse::<i64>() {
            if id > 0 && digits == id.to_string() {
                return Ok(Member::Version(id));
            }
        }
    }
    refuse(format!(
        "unexpected member '{name}' (not part of format version 1)"
    ))
}

fn in_member(name: &str, e: super::InterchangeError) -> super::InterchangeError {
    match e {
        super::InterchangeError::Refused(m) => {
            super::InterchangeError::Refused(format!("member '{name}': {m}"))
        }
        other => other,
    }
}

/// Checks everything the metadata says, against itself and the limits.
pub fn check_metadata(m: &Metadata, limits: &Limits) -> Result<()> {
    check_manifest(m)?;
    let inodes = check_nodes(m, limits)?;
    check_versions(m, &inodes, limits)?;
    check_heads(m)?;
    check_audit(m, &inodes)?;
    Ok(())
}

fn check_manifest(m: &Metadata) -> Result<()> {
    let man = &m.manifest;
    if man.format != FORMAT_NAME {
        return refuse(format!(
            "format '{}' is not '{FORMAT_NAME}'",
            man.format.escape_debug()
        ));
    }
    if man.version != FORMAT_VERSION {
        return refuse(format!(
            "format version {} is not supported (this memfs reads version {FORMAT_VERSION})",
            man.version
        ));
    }
    let scope = match Scope::parse(&man.store.scope) {
        Ok(s) => s,
        Err(e) => return refuse(format!("store scope: {e}")),
    };
    if scope == Scope::User && man.store.owner.as_deref().is_none_or(str::is_empty) {
        return refuse("a user store needs an owner");
    }
    let has_history = !(m.versions.is_empty() && m.unlinked.is_empty() && m.audit.is_empty());
    if has_history && !man.history {
        return refuse("the manifest says 'history: false' but history members are present");
    }
    let c = &man.counts;
    let checks = [
        ("paths", c.paths, m.files.len(), super::FILES),
        ("versions", c.versions, m.versions.len(), super::VERSIONS),
        ("unlinked", c.unlinked, m.unlinked.len(), super::UNLINKED),
        (
            "audit_entries",
            c.audit_entries,
            m.audit.len(),
            super::AUDIT,
        ),
    ];
    for (what, said, got, member) in checks {
        if said != got as u64 {
            return refuse(format!(
                "the manifest counts {said} {what} but {member} has {got} (truncated or edited?)"
            ));
        }
    }
    Ok(())
}

/// An inode as the archive describes it: its kind and, for files, head content.
#[derive(Debug, Clone)]
pub struct InodeInfo {
    pub kind: Kind,
    pub size: u64,
    pub hash: Option<String>,
    pub head: Option<i64>,
}

fn check_node(r: &NodeRecord, at: &str, limits: &Limits) -> Result<()> {
    parse_mode(&r.mode).map_err(|e| in_record(at, e))?;
    match r.kind {
        Kind::Chardev | Kind::Blockdev => {
            return refuse(format!("{at}: device nodes are not imported"))
        }
        Kind::Symlink => match &r.target {
            Some(t) => check_symlink(r.path.as_deref(), t)?,
            None => return refuse(format!("{at}: symlink without a target")),
        },
        Kind::File => {
            match &r.hash {
                Some(h) => check_hash(at, h)?,
                None => return refuse(format!("{at}: file without a hash")),
            }
            if r.size > limits.max_file_bytes {
                return refuse(format!(
                    "{at}: {} bytes is over the maximum file size of {} bytes",
                    r.size, limits.max_file_bytes
                ));
            }
            if let Some(v) = &r.version {
                check_history_path(&v.path).map_err(|e| in_record(at, e))?;
            }
        }
        Kind::Dir | Kind::Fifo | Kind::Socket => {}
    }
    if r.kind != Kind::File && r.version.is_some() {
        return refuse(format!("{at}: only files have versions"));
    }
    Ok(())
}

fn in_record(at: &str, e: super::InterchangeError) -> super::InterchangeError {
    match e {
        super::InterchangeError::Refused(m) => {
            super::InterchangeError::Refused(format!("{at}: {m}"))
        }
        other => other,
    }
}

/// Checks files.jsonl and unlinked.jsonl; returns every inode by original number.
fn check_nodes(m: &Metadata, limits: &Limits) -> Result<BTreeMap<i64, InodeInfo>> {
    let mut inodes: BTreeMap<i64, (InodeInfo, &NodeRecord)> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    let mut root = None;
    for r in &m.files {
        let Some(path) = r.path.as_deref() else {
            return refuse(format!("{}: a line without a path", super::FILES));
        };
        let at = format!("'{path}'");
        if path.is_empty() {
            if r.kind != Kind::Dir || root.replace(r.ino).is_some() {
                return refuse("the store root must be listed once, as a directory");
            }
        } else {
            check_store_path(path)?;
        }
        check_node(r, &at, limits)?;
        if kinds.insert(path, r.kind).is_some() {
            return refuse(format!("path {at} is listed twice"));
        }
        let info = InodeInfo {
            kind: r.kind,
            size: r.size,
            hash: r.hash.clone(),
            head: r.version.as_ref().map(|v| v.id),
        };
        match inodes.get(&r.ino) {
            None => {
                inodes.insert(r.ino, (info, r));
            }
            Some((first, _)) => {
                // A second path for one inode: a hard link, which must agree.
                if r.kind == Kind::Dir || first.kind == Kind::Dir {
                    return refuse(format!(
                        "path {at}: a directory cannot have two names (inode {})",
                        r.ino
                    ));
                }
                if first.kind != info.kind
                    || first.size != info.size
                    || first.hash != info.hash
                    || first.head != info.head
                {
                    return refuse(format!(
                        "path {at}: hard link to inode {} disagrees with its other names",
                        r.ino
                    ));
                }
            }
        }
    }
    if root.is_none() {
        return refuse("the store root (path \"\") is missing from files.jsonl");
    }
    // Every path's parent is a listed directory.
    for path in kinds.keys().filter(|p| !p.is_empty()) {
        let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
        match kinds.get(parent) {
            Some(Kind::Dir) => {}
            Some(_) => {
                return refuse(format!(
                    "'{path}': its parent '{parent}' is not a directory"
                ))
            }
            None => {
                return refuse(format!(
                    "'{path}': its parent directory '{parent}' is not listed"
                ))
            }
        }
    }
    for r in &m.unlinked {
        if r.path.is_some() {
            return refuse(format!("{}: inode {} has a path", super::UNLINKED, r.ino));
        }
        let at = format!("unlinked inode {}", r.ino);
        check_node(r, &at, limits)?;
        let info = InodeInfo {
            kind: r.kind,
            size: r.size,
            hash: r.hash.clone(),
            head: r.version.as_ref().map(|v| v.id),
        };
        if inodes.insert(r.ino, (info, r)).is_some() {
            return refuse(format!("{at} is also listed with a path, or twice"));
        }
    }
    // Quotas count what is live at head: inodes with a name, the root excluded.
    let live: Vec<&InodeInfo> = m
        .files
        .iter()
        .filter(|r| Some(r.ino) != root)
        .map(|r| r.ino)
        .collect::<BTreeSet<_>>()
        .iter()
        .filter_map(|i| inodes.get(i).map(|(info, _)| info))
        .collect();
    if let Some(max) = limits.max_files {
        if live.len() as u64 > max {
            return refuse(format!(
                "{} files and directories are over the store's quota of {max}",
                live.len()
            ));
        }
    }
    if let Some(max) = limits.max_bytes {
        let bytes: u64 = live.iter().map(|i| i.size).fold(0, u64::saturating_add);
        if bytes > max {
            return refuse(format!(
                "{bytes} bytes are over the store's quota of {max} bytes"
            ));
        }
    }
    Ok(inodes.into_iter().map(|(k, (info, _))| (k, info)).collect())
}

fn check_versions(m: &Metadata, inodes: &BTreeMap<i64, InodeInfo>, limits: &Limits) -> Result<()> {
    let mut last = 0i64;
    for v in &m.versions {
        let at = format!("version {}", v.id);
        if v.id <= last {
            return refuse(format!(
                "{at}: versions must be listed once each, by ascending id"
            ));
        }
        last = v.id;
        match inodes.get(&v.ino) {
            Some(i) if i.kind == Kind::File => {}
            Some(_) => return refuse(format!("{at}: inode {} is not a file", v.ino)),
            None => return refuse(format!("{at}: inode {} is not in the archive", v.ino)),
        }
        check_hash(&at, &v.hash)?;
        check_history_path(&v.path).map_err(|e| in_record(&at, e))?;
        if v.op.is_empty() || v.agent.is_empty() {
            return refuse(format!("{at}: missing op or agent"));
        }
        if v.conflict != (v.op == "conflict") {
            return refuse(format!("{at}: 'conflict' disagrees with op '{}'", v.op));
        }
        if v.size > limits.max_file_bytes {
            return refuse(format!(
                "{at}: {} bytes is over the maximum file size of {} bytes",
                v.size, limits.max_file_bytes
            ));
        }
    }
    Ok(())
}

/// A file's head must be its newest committed (non-conflict) version, with the
/// same size and hash, as the format's invariants require.
fn check_heads(m: &Metadata) -> Result<()> {
    let mut newest: BTreeMap<i64, &VersionRecord> = BTreeMap::new();
    for v in m.versions.iter().filter(|v| !v.conflict) {
        newest.insert(v.ino, v);
    }
    let empty = empty_hash();
    for r in m.files.iter().chain(&m.unlinked) {
        if r.kind != Kind::File {
            continue;
        }
        let at = r
            .path
            .as_deref()
            .map_or_else(|| format!("unlinked inode {}", r.ino), |p| format!("'{p}'"));
        let hash = r.hash.as_deref().unwrap_or_default();
        if m.manifest.history {
            match (&r.version, newest.get(&r.ino)) {
                (None, None) => {}
                (Some(h), Some(v)) if h.id == v.id => {
                    if v.size != r.size || v.hash != hash {
                        return refuse(format!(
                            "{at}: size or hash differs from its head version {}",
                            v.id
                        ));
                    }
                    continue;
                }
                _ => {
                    return refuse(format!(
                        "{at}: its head is not its newest committed version"
                    ))
                }
            }
        }
        if r.version.is_none() && (r.size != 0 || hash != empty) {
            return refuse(format!("{at}: content without a head version"));
        }
    }
    Ok(())
}

fn check_audit(m: &Metadata, inodes: &BTreeMap<i64, InodeInfo>) -> Result<()> {
    let versions: BTreeSet<i64> = m.versions.iter().map(|v| v.id).collect();
    let mut last = 0i64;
    for a in &m.audit {
        let at = format!("audit entry {}", a.id);
        if a.id <= last {
            return refuse(format!(
                "{at}: entries must be listed once each, oldest first"
            ));
        }
        last = a.id;
        if a.op.is_empty() || a.agent.is_empty() {
            return refuse(format!("{at}: missing op or agent"));
        }
        check_hash(&at, &a.hash)?;
        for p in [&a.path, &a.path2].into_iter().flatten() {
            check_history_path(p).map_err(|e| in_record(&at, e))?;
        }
        if let Some(i) = a.ino {
            if !inodes.contains_key(&i) {
                return refuse(format!("{at}: inode {i} is not in the archive"));
            }
        }
        if let Some(v) = a.version {
            if !versions.contains(&v) {
                return refuse(format!("{at}: version {v} is not in the archive"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interchange::{Counts, StoreInfo};

    fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn store_paths() {
        assert!(check_store_path("a/b.md").is_ok());
        assert!(check_store_path("café/x").is_ok());
        assert!(msg(check_store_path("../evil")).contains("'..'"));
        assert!(msg(check_store_path("a/../../evil")).contains("'..'"));
        assert!(msg(check_store_path("/etc/passwd")).contains("absolute"));
        assert!(msg(check_store_path("a//b")).contains("empty"));
        assert!(msg(check_store_path("a/./b")).contains("'.'"));
        assert!(msg(check_store_path("a/")).contains("empty"));
        assert!(msg(check_store_path("a\u{1}b")).contains("control"));
        assert!(msg(check_store_path("cafe\u{301}")).contains("NFC"));
        assert!(msg(check_store_path(&"x".repeat(256))).contains("too long"));
        let long = vec!["d".repeat(200); 6].join("/");
        assert!(msg(check_store_path(&long)).contains("longer than"));
    }

    #[test]
    fn symlinks_stay_inside() {
        assert!(check_symlink(Some("a"), "b").is_ok());
        assert!(check_symlink(Some("d/a"), "../b").is_ok());
        assert!(check_symlink(Some("d/e/a"), "../../b/./c").is_ok());
        assert!(msg(check_symlink(Some("a"), "../x")).contains("climbs above"));
        assert!(msg(check_symlink(Some("d/a"), "../../x")).contains("climbs above"));
        assert!(msg(check_symlink(Some("d/a"), "x/../../../y")).contains("climbs above"));
        assert!(msg(check_symlink(Some("a"), "/etc/passwd")).contains("absolute"));
        assert!(msg(check_symlink(Some("a"), "")).contains("empty"));
        assert!(msg(check_symlink(None, "../x")).contains("climbs above"));
    }

    #[test]
    fn members() {
        assert_eq!(
            classify_member(b"memfs-export.json").unwrap(),
            Member::Meta("memfs-export.json")
        );
        assert_eq!(
            classify_member(b"head/a/b").unwrap(),
            Member::Head("a/b".into())
        );
        assert_eq!(
            classify_member(b"head/d/").unwrap(),
            Member::Head("d".into())
        );
        assert_eq!(
            classify_member(b"head/").unwrap(),
            Member::Head(String::new())
        );
        assert_eq!(
            classify_member(b"versions/12").unwrap(),
            Member::Version(12)
        );
        assert!(msg(classify_member(b"head/../evil")).contains("'..'"));
        assert!(msg(classify_member(b"../evil")).contains("'..'"));
        assert!(msg(classify_member(b"/abs")).contains("absolute"));
        assert!(classify_member(b"versions/-1").is_err());
        assert!(classify_member(b"versions/012").is_err());
        assert!(classify_member(b"versions/x").is_err());
        assert!(msg(classify_member(b"other.txt")).contains("unexpected"));
        assert!(classify_member(b"head/\xff").is_err());
    }

    #[test]
    fn modes_and_hashes() {
        assert_eq!(parse_mode("644").unwrap(), 0o644);
        assert_eq!(parse_mode("4755").unwrap(), 0o4755);
        assert!(parse_mode("17777").is_err());
        assert!(parse_mode("9").is_err());
        assert!(parse_mode("").is_err());
        assert!(check_hash("x", &empty_hash()).is_ok());
        assert!(check_hash("x", "abc").is_err());
        assert!(check_hash("x", &"G".repeat(64)).is_err());
    }

    fn node(path: Option<&str>, kind: Kind, ino: i64) -> NodeRecord {
        NodeRecord {
            path: path.map(Into::into),
            kind,
            ino,
            mode: "644".into(),
            uid: 0,
            gid: 0,
            nlink: 1,
            size: 0,
            hash: (kind == Kind::File).then(empty_hash),
            mtime_ns: 0,
            atime_ns: 0,
            ctime_ns: 0,
            crtime_ns: 0,
            target: None,
            rdev: 0,
            version: None,
        }
    }

    fn meta(files: Vec<NodeRecord>) -> Metadata {
        Metadata {
            manifest: Manifest {
                format: FORMAT_NAME.into(),
                version: FORMAT_VERSION,
                store: StoreInfo {
                    name: "s".into(),
                    scope: "org".into(),
                    owner: None,
                    description: String::new(),
                    created_ns: 0,
                    archived: false,
                },
                exported_at: String::new(),
                exported_at_ns: 0,
                memfs_version: String::new(),
                history: false,
                counts: Counts {
                    paths: files.len() as u64,
                    ..Default::default()
                },
            },
            files,
            unlinked: vec![],
            versions: vec![],
            audit: vec![],
        }
    }

    const NO_LIMITS: Limits = Limits {
        max_file_bytes: u64::MAX,
        max_bytes: None,
        max_files: None,
    };

    fn base() -> Vec<NodeRecord> {
        vec![
            node(Some(""), Kind::Dir, 2),
            node(Some("d"), Kind::Dir, 3),
            node(Some("d/f"), Kind::File, 4),
        ]
    }

    #[test]
    fn a_sound_tree_passes() {
        check_metadata(&meta(base()), &NO_LIMITS).unwrap();
    }

    #[test]
    fn unknown_versions_and_bad_counts_are_refused() {
        let mut m = meta(base());
        m.manifest.version = 2;
        assert!(msg(check_metadata(&m, &NO_LIMITS)).contains("version 2 is not supported"));
        let mut m = meta(base());
        m.manifest.format = "zip".into();
        assert!(msg(check_metadata(&m, &NO_LIMITS)).contains("format"));
        let mut m = meta(base());
        m.manifest.counts.paths = 7;
        assert!(msg(check_metadata(&m, &NO_LIMITS)).contains("truncated"));
    }

    #[test]
    fn tree_shape_is_checked() {
        let mut files = base();
        files.push(node(Some("nodir/f"), Kind::File, 9));
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("not listed"));
        let mut files = base();
        files.push(node(Some("d/f/g"), Kind::File, 9));
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("not a directory"));
        let mut files = base();
        files.push(node(Some("d/f"), Kind::File, 9));
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("twice"));
        let files = base().into_iter().skip(1).collect();
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("root"));
        let mut files = base();
        files.push(node(Some("dev"), Kind::Chardev, 9));
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("device"));
    }

    #[test]
    fn hard_links_must_agree_and_dirs_have_one_name() {
        let mut files = base();
        files.push(node(Some("link"), Kind::File, 4));
        check_metadata(&meta(files.clone()), &NO_LIMITS).unwrap();
        files.last_mut().unwrap().size = 5;
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("disagrees"));
        let mut files = base();
        files.push(node(Some("d2"), Kind::Dir, 3));
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("two names"));
    }

    #[test]
    fn symlink_records_are_checked() {
        let mut files = base();
        let mut l = node(Some("d/l"), Kind::Symlink, 9);
        l.target = Some("../../etc/passwd".into());
        files.push(l);
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("climbs above"));
    }

    #[test]
    fn quotas_are_enforced() {
        let mut files = base();
        files[2].size = 10;
        files[2].hash = Some(blake3::hash(b"0123456789").to_hex().to_string());
        files[2].version = Some(crate::interchange::HeadVersion {
            id: 1,
            op: "write".into(),
            path: "d/f".into(),
            agent: "a".into(),
            session: "s".into(),
            user: None,
            at_ns: 0,
        });
        let m = meta(files);
        check_metadata(&m, &NO_LIMITS).unwrap();
        let small_file = Limits {
            max_file_bytes: 9,
            ..NO_LIMITS
        };
        assert!(msg(check_metadata(&m, &small_file)).contains("maximum file size"));
        let few_bytes = Limits {
            max_bytes: Some(9),
            ..NO_LIMITS
        };
        assert!(msg(check_metadata(&m, &few_bytes)).contains("quota of 9 bytes"));
        let few_files = Limits {
            max_files: Some(1),
            ..NO_LIMITS
        };
        assert!(msg(check_metadata(&m, &few_files)).contains("quota of 1"));
    }

    #[test]
    fn content_without_a_version_is_refused() {
        let mut files = base();
        files[2].size = 3;
        assert!(msg(check_metadata(&meta(files), &NO_LIMITS)).contains("without a head version"));
    }
}

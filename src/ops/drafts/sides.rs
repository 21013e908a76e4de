//! The three sides of a draft's merge, read in one snapshot: the base (what
//! the draft started from, `draft_base`), the draft now, and the store now.
//! Each side maps a file's *identity* to where it is and what it holds. A
//! file that existed at the base is known by its base inode on every side
//! (the draft's copy maps back to it), so a rename is seen as a rename and
//! the store's file keeps its inode (its memory id and history) when the
//! draft's change is taken. A file only one side made is known by that
//! side's inode.

use crate::history;
use crate::ids::{Ino, VersionId};
use crate::store::{NodeKind, StoreRow, Txn};
use std::collections::{BTreeMap, HashMap};

/// Who a node is across the sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// Existed at the base: its base inode.
    Base(Ino),
    /// Made in the draft: the draft's inode.
    Draft(Ino),
    /// Made in the store since the base: the store's inode.
    Store(Ino),
}

/// What a node holds, for comparing sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Dir,
    /// A file: its version (`None`: empty, never written) and that version's
    /// blake3 (`None`: redacted, its content is unknown).
    File {
        head: Option<VersionId>,
        hash: Option<String>,
    },
    Link(Vec<u8>),
    /// A fifo, socket or device: merges leave these alone.
    Other(NodeKind),
}

impl Content {
    /// Whether two contents are the same (an unknown one never is).
    pub fn same(&self, other: &Content) -> bool {
        match (self, other) {
            (Content::File { head: a, hash: ha }, Content::File { head: b, hash: hb }) => {
                a == b || (ha.is_some() && ha == hb)
            }
            (a, b) => a == b,
        }
    }

    pub fn kind(&self) -> NodeKind {
        match self {
            Content::Dir => NodeKind::Dir,
            Content::File { .. } => NodeKind::File,
            Content::Link(_) => NodeKind::Symlink,
            Content::Other(k) => *k,
        }
    }
}

/// A node on one side: where it is and what it holds.
#[derive(Clone, Debug)]
pub struct Node {
    pub path: String,
    /// This side's inode.
    pub ino: Ino,
    pub content: Content,
}

/// One side: identity -> node (a hard-linked file by its first path).
pub type Side = BTreeMap<Key, Node>;

/// The three sides of a merge.
#[derive(Debug, Default)]
pub struct Sides {
    pub base: Side,
    pub draft: Side,
    pub store: Side,
}

/// blake3 of no content: an empty file never written.
fn empty_hash() -> String {
    blake3::hash(b"").to_hex().to_string()
}

fn content_of(
    tx: &Txn<'_>,
    kind: NodeKind,
    head: Option<VersionId>,
    target: Option<Vec<u8>>,
) -> Result<Content, crate::error::StoreError> {
    Ok(match kind {
        NodeKind::Dir => Content::Dir,
        NodeKind::File => {
            let hash = match head {
                None => Some(empty_hash()),
                Some(v) => Some(tx.version(v)?.hash).filter(|h| !h.is_empty()),
            };
            Content::File { head, hash }
        }
        NodeKind::Symlink => Content::Link(target.unwrap_or_default()),
        k => Content::Other(k),
    })
}

/// A store's live namespace as a side; `key` says who each inode is.
fn side_of(
    tx: &Txn<'_>,
    store: &StoreRow,
    key: impl Fn(Ino) -> Key,
) -> Result<Side, crate::error::StoreError> {
    let mut side = Side::new();
    for (path, ino) in history::current_tree(tx, store)? {
        if path.is_empty() {
            continue;
        }
        let Some(row) = tx.inode(ino)? else {
            continue;
        };
        let k = key(ino);
        if side.contains_key(&k) {
            continue;
        }
        let content = content_of(tx, row.kind, row.head, row.target)?;
        side.insert(k, Node { path, ino, content });
    }
    Ok(side)
}

/// Reads the three sides of `draft` (a draft of `store`).
pub fn read(
    tx: &Txn<'_>,
    store: &StoreRow,
    draft: &StoreRow,
) -> Result<Sides, crate::error::StoreError> {
    let rows = tx.draft_base(draft.id)?;
    let mut base = Side::new();
    // The draft's inode -> the base inode it stands for. A draft inode that
    // two rows name (a directory moved by a merge that could not remove the
    // old one) stands for the row at its current place, else the first.
    let mut origin_of: HashMap<Ino, Vec<(String, Ino)>> = HashMap::new();
    let mut origins = std::collections::HashSet::new();
    for r in rows {
        if r.path.is_empty() {
            continue;
        }
        origins.insert(r.origin);
        if let Some(i) = r.ino {
            origin_of
                .entry(i)
                .or_default()
                .push((r.path.clone(), r.origin));
        }
        let k = Key::Base(r.origin);
        if base.contains_key(&k) {
            continue;
        }
        let content = content_of(tx, r.kind, r.head, r.target)?;
        base.insert(
            k,
            Node {
                path: r.path,
                ino: r.origin,
                content,
            },
        );
    }
    let draft_paths: HashMap<Ino, String> = history::current_tree(tx, draft)?
        .into_iter()
        .map(|(p, i)| (i, p))
        .collect();
    let draft_side = side_of(tx, draft, |ino| match origin_of.get(&ino) {
        Some(list) => {
            let here = draft_paths.get(&ino);
            let pick = list
                .iter()
                .find(|(p, _)| Some(p) == here)
                .or_else(|| list.first());
            pick.map_or(Key::Draft(ino), |(_, o)| Key::Base(*o))
        }
        None => Key::Draft(ino),
    })?;
    let mut draft_side = draft_side;
    let mut store_side = side_of(tx, store, |ino| {
        if origins.contains(&ino) {
            Key::Base(ino)
        } else {
            Key::Store(ino)
        }
    })?;
    follow_replacements(&base, &mut draft_side);
    follow_replacements(&base, &mut store_side);
    Ok(Sides {
        base,
        draft: draft_side,
        store: store_side,
    })
}

/// Takes a node that replaced a base node at its path (same kind, the base
/// node gone from that side) for that base node changed. That is how
/// `sed -i`, most editors and every "write a temporary file, rename it over"
/// save a file: a new inode renamed over the old one. Seen by identity alone
/// it would be the old file deleted and another one made at its name, which
/// merges as a conflict ("the store has another node there") even when the
/// two sides changed different lines.
fn follow_replacements(base: &Side, side: &mut Side) {
    let at_base: HashMap<&str, (Key, NodeKind)> = base
        .iter()
        .map(|(k, n)| (n.path.as_str(), (*k, n.content.kind())))
        .collect();
    let replacing: Vec<(Key, Key)> = side
        .iter()
        .filter(|(k, _)| !matches!(k, Key::Base(_)))
        .filter_map(|(k, n)| {
            let (bk, kind) = at_base.get(n.path.as_str())?;
            (*kind == n.content.kind() && !side.contains_key(bk)).then_some((*k, *bk))
        })
        .collect();
    for (new, old) in replacing {
        if let Some(n) = side.remove(&new) {
            side.insert(old, n);
        }
    }
}

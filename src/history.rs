//! Reading the past: which inode a path named, which version was a file's head at
//! a time, and a store's whole namespace at a time (by undoing, on the current
//! tree, every audited change made after that time).

use crate::error::StoreResult;
use crate::ids::{Ino, StoreId, VersionId};
use crate::store::{AuditEntry, AuditFilter, NodeKind, StoreRow, Txn, VersionRow};
use std::collections::BTreeMap;

/// A store's namespace: store-relative path -> inode ("" is the root).
pub type Tree = BTreeMap<String, Ino>;

/// The file at `path` now, or the last file the audit log saw at that path.
pub fn find_file(tx: &Txn<'_>, store: &StoreRow, path: &str) -> StoreResult<Option<Ino>> {
    let path = path.trim_matches('/');
    if let Some(ino) = tx.resolve_path(store.root, path)? {
        return Ok(Some(ino));
    }
    tx.last_ino_at_path(store.id, path)
}

/// The version that was `ino`'s head at `at_ns` (conflict versions never are).
pub fn version_at(tx: &Txn<'_>, ino: Ino, at_ns: i64) -> StoreResult<Option<VersionRow>> {
    Ok(tx
        .versions_of(ino)?
        .into_iter()
        .rev()
        .find(|v| v.op != "conflict" && v.at_ns <= at_ns))
}

/// The head versions of `ino` (conflict versions left out), oldest first.
pub fn head_versions(tx: &Txn<'_>, ino: Ino) -> StoreResult<Vec<VersionRow>> {
    Ok(tx
        .versions_of(ino)?
        .into_iter()
        .filter(|v| v.op != "conflict")
        .collect())
}

/// The store's current namespace.
pub fn current_tree(tx: &Txn<'_>, store: &StoreRow) -> StoreResult<Tree> {
    walk_tree(tx, store, |_, name| {
        Ok(String::from_utf8_lossy(&name).into_owned())
    })
}

/// Walks the store's current namespace. `component(dir, raw_name)` turns each
/// entry's name into its path component, or refuses it (and so the walk).
pub fn walk_tree<E: From<crate::error::StoreError>>(
    tx: &Txn<'_>,
    store: &StoreRow,
    mut component: impl FnMut(&str, Vec<u8>) -> Result<String, E>,
) -> Result<Tree, E> {
    let mut tree = Tree::new();
    tree.insert(String::new(), store.root);
    let mut stack = vec![(String::new(), store.root)];
    while let Some((dir, ino)) = stack.pop() {
        for (name, child, kind) in tx.children(ino)? {
            let name = component(&dir, name)?;
            let path = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            if kind == NodeKind::Dir {
                stack.push((path.clone(), child));
            }
            tree.insert(path, child);
        }
    }
    Ok(tree)
}

/// Audit entries of a store after `at_ns`, newest first.
pub fn entries_after(tx: &Txn<'_>, store: StoreId, at_ns: i64) -> StoreResult<Vec<AuditEntry>> {
    tx.audit_entries(&AuditFilter {
        store: Some(store),
        since_ns: Some(at_ns + 1),
        ..Default::default()
    })
}

/// The store's namespace as it was at `at_ns`.
pub fn tree_at(tx: &Txn<'_>, store: &StoreRow, at_ns: i64) -> StoreResult<Tree> {
    if store.created_ns > at_ns {
        return Ok(Tree::new());
    }
    let mut tree = current_tree(tx, store)?;
    for e in entries_after(tx, store.id, at_ns)? {
        undo_in_tree(&mut tree, &e);
    }
    Ok(tree)
}

fn ino_of(e: &AuditEntry) -> Option<Ino> {
    e.ino.map(Ino)
}

fn detail_i64(e: &AuditEntry, key: &str) -> Option<i64> {
    e.detail.as_ref()?.get(key)?.as_i64()
}

/// Moves `from` and everything below it to `to`.
fn move_subtree(tree: &mut Tree, from: &str, to: &str) {
    let prefix = format!("{from}/");
    let moved: Vec<(String, Ino)> = tree
        .iter()
        .filter(|(p, _)| p.as_str() == from || p.starts_with(&prefix))
        .map(|(p, i)| (p.clone(), *i))
        .collect();
    for (p, _) in &moved {
        tree.remove(p);
    }
    for (p, i) in moved {
        tree.insert(format!("{to}{}", &p[from.len()..]), i);
    }
}

/// Reverts one entry's effect on a path -> inode map.
pub fn undo_in_tree(tree: &mut Tree, e: &AuditEntry) {
    let path = e.path.clone().unwrap_or_default();
    match e.op.as_str() {
        "create" | "mkdir" | "symlink" | "mknod" | "link" | "restore" => {
            tree.remove(&path);
        }
        "unlink" | "rmdir" => {
            if let Some(ino) = ino_of(e) {
                tree.insert(path, ino);
            }
        }
        "rename" => {
            let Some(to) = e.path2.clone() else {
                return;
            };
            let exchange = e
                .detail
                .as_ref()
                .and_then(|d| d.get("exchange"))
                .is_some_and(|x| x.as_bool() == Some(true));
            if exchange {
                let tmp = format!("\u{0}exchange\u{0}{to}");
                move_subtree(tree, &to, &tmp);
                move_subtree(tree, &path, &to);
                move_subtree(tree, &tmp, &path);
            } else {
                move_subtree(tree, &to, &path);
                if let Some(replaced) = detail_i64(e, "replaced_ino") {
                    tree.insert(to, Ino(replaced));
                }
            }
        }
        _ => {}
    }
}

/// The version of each file in `tree` at `at_ns` (files without content are left out).
pub fn versions_at(tx: &Txn<'_>, tree: &Tree, at_ns: i64) -> StoreResult<BTreeMap<Ino, VersionId>> {
    let mut out = BTreeMap::new();
    for ino in tree.values() {
        if let Some(v) = version_at(tx, *ino, at_ns)? {
            out.insert(*ino, v.id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: &str, path: &str, path2: Option<&str>, ino: i64) -> AuditEntry {
        AuditEntry {
            id: crate::ids::AuditId(1),
            at_ns: 0,
            at: String::new(),
            store: None,
            op: op.into(),
            path: Some(path.into()),
            path2: path2.map(Into::into),
            ino: Some(ino),
            version: None,
            agent: String::new(),
            session: String::new(),
            user: None,
            detail: None,
            hash: String::new(),
        }
    }

    #[test]
    fn undoing_entries_restores_paths() {
        let mut tree = Tree::new();
        tree.insert("".into(), Ino(2));
        tree.insert("d2".into(), Ino(3));
        tree.insert("d2/a".into(), Ino(4));
        tree.insert("new".into(), Ino(5));
        // Newest first: rename d -> d2, create new, unlink old.
        for e in [
            entry("rename", "d", Some("d2"), 3),
            entry("create", "new", None, 5),
            entry("unlink", "old", None, 6),
        ] {
            undo_in_tree(&mut tree, &e);
        }
        let want: Vec<(&str, i64)> = vec![("", 2), ("d", 3), ("d/a", 4), ("old", 6)];
        let got: Vec<(&str, i64)> = tree.iter().map(|(p, i)| (p.as_str(), i.0)).collect();
        assert_eq!(got, want);
    }
}

//! Drafts of a store, as people and platforms use them: make one (of the store
//! as it is, or as it was), list, show and discard them, see what a draft
//! changed and what changed in the store meanwhile (`diff.rs`), and merge it
//! back (`plan.rs` decides, `merge.rs` applies). How a draft is stored:
//! `store/drafts.rs`.
//!
//! Addressing: a draft is named `STORE@DRAFT` (its store row's name), or by
//! its own API id (`memstore_...`); everything that takes a store takes a
//! draft the same way (`memfs mount --store STORE@DRAFT`, the memory-store
//! API, MCP).
//!
//! Rights: a draft is seen by whoever may see its store. Making one needs the
//! right to write the store; merging or discarding one needs that too, and is
//! refused to an agent the store's `drafts` rule names (a draft is the review
//! gate for that agent: it cannot wave its own changes through).

mod diff;
mod merge;
mod plan;
mod sides;

pub use diff::{DraftChange, DraftDiff};
pub use merge::{Author, MergeCounts, MergeOptions, MergeReport, Refusal};
pub use plan::{Action, MergeConflict};

use super::{Ops, Principal};
use crate::error::{OpError, OpResult, StoreError};
use crate::history;
use crate::ids::{now_ns, Identity, Ino};
use crate::settings::{self, StoreSettings};
use crate::store::{BaseEntry, Db, DraftReason, DraftRow, NewDraft, NodeKind, StoreRow, Txn};

/// A draft as front ends show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DraftView {
    /// `STORE@DRAFT`: what `memfs mount --store` and the API take.
    pub name: String,
    /// The draft's own name.
    pub draft: String,
    /// The store it is a draft of.
    pub store: String,
    /// Its API id (`memstore_...`).
    pub api_id: String,
    /// The store's API id.
    pub store_api_id: String,
    /// The base point: the store's newest audit entry then, and when.
    pub base_audit: i64,
    pub base_at: String,
    pub created_at: String,
    pub created_by: Creator,
    /// `manual`, `rule` (a session's draft by the store's drafts rule) or `job`.
    pub reason: DraftReason,
    /// The session a draft made by rule is for.
    pub for_session: Option<String>,
    /// Files, directories and links in the draft, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Versions the draft made itself.
    pub versions: u64,
}

/// Who made a draft.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Creator {
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
}

/// A new draft.
#[derive(Clone, Debug, Default)]
pub struct NewDraftRequest {
    /// Its name; a fresh `dN` when `None`.
    pub name: Option<String>,
    /// The store as it was then (RFC 3339 or an age such as `2h`); now when `None`.
    pub at: Option<String>,
}

/// The draft name a session gets from a store's drafts rule: `s-` and the
/// session's name made a slug; a session name that is not one already gets a
/// short hash of itself added, so two sessions never share a draft.
pub fn session_draft_name(session: &str) -> String {
    let slug = super::stores::slug_of(session);
    let mut name: String = format!("s-{slug}").chars().take(48).collect();
    while name.ends_with('-') {
        name.pop();
    }
    if slug != session || name.len() < 2 + slug.len() {
        let h = blake3::hash(session.as_bytes()).to_hex();
        name = format!("{name}-{}", &h.as_str()[..8]);
    }
    name
}

/// The store's namespace at `at_ns` (now with `None`), as a draft's base: every
/// path but the root, parents first, with each file's version then.
fn snapshot(
    tx: &Txn<'_>,
    base: &StoreRow,
    at_ns: Option<i64>,
) -> Result<Vec<BaseEntry>, StoreError> {
    let tree = match at_ns {
        None => history::current_tree(tx, base)?,
        Some(t) => history::tree_at(tx, base, t)?,
    };
    let mut out = Vec::with_capacity(tree.len());
    // A BTreeMap of paths lists a directory before everything below it.
    for (path, ino) in tree {
        if path.is_empty() {
            continue;
        }
        let head = match at_ns {
            None => tx.inode(ino)?.and_then(|r| r.head),
            Some(t) => history::version_at(tx, ino, t)?.map(|v| v.id),
        };
        out.push(BaseEntry {
            path,
            origin: ino,
            head,
        });
    }
    Ok(out)
}

/// Makes a draft of `base` in one transaction.
pub(crate) fn make_draft(
    tx: &Txn<'_>,
    base: &StoreRow,
    name: &str,
    at_ns: Option<i64>,
    reason: DraftReason,
    for_session: Option<&str>,
    who: &Identity,
) -> Result<StoreRow, StoreError> {
    let now = now_ns();
    let base_ns = at_ns.unwrap_or(now);
    let entries = snapshot(tx, base, at_ns)?;
    let base_audit = tx.newest_audit_of(base.id, base_ns)?;
    tx.create_draft(
        &NewDraft {
            base,
            name,
            entries,
            base_audit,
            base_ns,
            reason,
            for_session,
        },
        who,
        now,
    )
}

/// The draft of `base` that the store's drafts rule gives `who`'s session:
/// made (of the store as it is) the first time, the same one afterwards.
pub fn session_draft(db: &Db, base: &StoreRow, who: &Identity) -> Result<StoreRow, StoreError> {
    if let Some(d) = db.read(|tx| tx.session_draft(base.id, &who.session))? {
        return Ok(d.store);
    }
    db.write(|tx| {
        // Another mount of the same session may have made it meanwhile.
        if let Some(d) = tx.session_draft(base.id, &who.session)? {
            return Ok(d.store);
        }
        let name = session_draft_name(&who.session);
        make_draft(
            tx,
            base,
            &name,
            None,
            DraftReason::Rule,
            Some(&who.session),
            who,
        )
    })
}

/// What front ends show of a draft.
fn view(tx: &Txn<'_>, d: &DraftRow) -> Result<DraftView, StoreError> {
    let base = tx.store_by_id(d.base)?;
    let (files, bytes) = tx.store_usage(d.store.id)?;
    Ok(DraftView {
        name: d.store.name.clone(),
        draft: d.name.clone(),
        store: base.as_ref().map(|b| b.name.clone()).unwrap_or_default(),
        api_id: d.store.api_id.clone(),
        store_api_id: base.map(|b| b.api_id).unwrap_or_default(),
        base_audit: d.base_audit,
        base_at: crate::timefmt::rfc3339(d.base_ns),
        created_at: crate::timefmt::rfc3339(d.created_ns),
        created_by: Creator {
            agent: d.agent.clone(),
            session: d.session.clone(),
            user: d.user.clone(),
        },
        reason: d.reason,
        for_session: d.for_session.clone(),
        // The root directory does not count.
        files: files.saturating_sub(1),
        bytes,
        versions: tx.store_versions(d.store.id)?,
    })
}

/// A draft and its store, as a principal may see them.
pub(crate) struct Located {
    pub draft: DraftRow,
    pub store: StoreRow,
    pub settings: StoreSettings,
}

impl Ops {
    /// A draft by `STORE@DRAFT` or its API id, if `p` may see its store.
    pub(crate) fn locate_draft(&self, p: &Principal, id: &str) -> OpResult<Located> {
        if let Some((store, draft)) = id.split_once('@') {
            if store.is_empty() || draft.is_empty() {
                return Err(OpError::Invalid(format!(
                    "'{id}' names no draft: drafts are named STORE@DRAFT"
                )));
            }
        }
        let (row, settings) = self.store(p, id).map_err(|e| match e {
            OpError::NotFound(_) => match id.split_once('@') {
                // Say which part is missing: the store, or its draft.
                Some((store, draft)) => match self.store(p, store) {
                    Ok(_) => OpError::NotFound(format!(
                        "store '{store}' has no draft '{draft}' (discarded, or never made)"
                    )),
                    Err(e) => e,
                },
                None => OpError::NotFound(format!("no draft '{id}'")),
            },
            e => e,
        })?;
        let (draft, store) = self.read(|tx| {
            let d = tx.draft(row.id)?;
            let s = match &d {
                Some(d) => tx.store_by_id(d.base)?,
                None => None,
            };
            Ok((d, s))
        })?;
        match (draft, store) {
            (Some(draft), Some(store)) => Ok(Located {
                draft,
                store,
                settings,
            }),
            _ => Err(OpError::Invalid(format!(
                "'{id}' is a store, not a draft (drafts are named STORE@DRAFT)"
            ))),
        }
    }

    /// Refuses merging or discarding a draft of `store` unless `p` may write
    /// it and is not an agent the store's drafts rule sends to a draft.
    fn require_reviewer(
        &self,
        p: &Principal,
        store: &StoreRow,
        set: &StoreSettings,
    ) -> OpResult<()> {
        if p.role != super::Role::Admin && set.drafts.applies(&p.who.agent, &p.who.session) {
            return Err(OpError::Forbidden(format!(
                "agent '{}' writes to drafts of store '{}' by its drafts rule, so it may not \
                 merge or discard them: a person or another agent reviews them",
                p.who.agent, store.name
            )));
        }
        p.require_write(store, set)
    }

    /// Makes a draft of `store`, as it is or as it was at `req.at`.
    pub fn create_draft(
        &self,
        p: &Principal,
        store: &str,
        req: &NewDraftRequest,
    ) -> OpResult<DraftView> {
        let (base, set) = self.store(p, store)?;
        if base.is_draft() {
            return Err(OpError::Invalid(format!(
                "'{}' is a draft already; make a draft of '{}'",
                base.name,
                base.dir_name()
            )));
        }
        p.require_draft_maker(&base, &set)?;
        let at = super::time::parse_opt(req.at.as_deref())?;
        if at.is_some_and(|t| t < base.created_ns) {
            return Err(OpError::Invalid(format!(
                "store '{}' did not exist yet then",
                base.name
            )));
        }
        let view = self
            .db()
            .write(|tx| {
                let name = match &req.name {
                    Some(n) => n.clone(),
                    None => {
                        let taken = tx.drafts(Some(base.id))?.len();
                        (taken + 1..)
                            .map(|n| format!("d{n}"))
                            .find(|n| {
                                tx.store_by_name(&crate::store::draft_store_name(&base.name, n))
                                    .map(|s| s.is_none())
                                    .unwrap_or(false)
                            })
                            .unwrap_or_else(|| "d".into())
                    }
                };
                let row = make_draft(tx, &base, &name, at, DraftReason::Manual, None, &p.who)?;
                let d = tx
                    .draft(row.id)?
                    .ok_or_else(|| StoreError::Corrupt("a new draft vanished".into()))?;
                view(tx, &d)
            })
            .map_err(|e| match e {
                StoreError::Exists(m) => OpError::PathConflict(format!("{m} exists")),
                e => OpError::Store(e),
            })?;
        Ok(view)
    }

    /// The drafts `p` may see: of `store`, or of every store.
    pub fn list_drafts(&self, p: &Principal, store: Option<&str>) -> OpResult<Vec<DraftView>> {
        let base = match store {
            Some(s) => {
                let (row, _) = self.store(p, s)?;
                Some(row.id)
            }
            None => None,
        };
        let rows = self.read(|tx| {
            let mut out = Vec::new();
            for d in tx.drafts(base)? {
                let Some(b) = tx.store_by_id(d.base)? else {
                    continue;
                };
                let set = settings::load(tx, b.id)?;
                out.push((d, b, set));
            }
            Ok(out)
        })?;
        let visible: Vec<DraftRow> = rows
            .into_iter()
            .filter(|(_, b, set)| p.may_see(b, set))
            .map(|(d, _, _)| d)
            .collect();
        self.read(|tx| visible.iter().map(|d| view(tx, d)).collect())
    }

    /// One draft.
    pub fn show_draft(&self, p: &Principal, id: &str) -> OpResult<DraftView> {
        let l = self.locate_draft(p, id)?;
        self.read(|tx| view(tx, &l.draft))
    }

    /// Discards a draft: its files and versions go (what it shares with its
    /// store stays in the store); the store's log gets `draft-discard`.
    pub fn discard_draft(&self, p: &Principal, id: &str) -> OpResult<DraftView> {
        let l = self.locate_draft(p, id)?;
        self.require_reviewer(p, &l.store, &l.settings)?;
        let v = self.read(|tx| view(tx, &l.draft))?;
        self.db()
            .write(|tx| tx.discard_draft(&l.draft.store, &p.who, now_ns(), "discarded"))?;
        Ok(v)
    }

    /// The kind name front ends show.
    pub(crate) fn kind_name(k: NodeKind) -> &'static str {
        match k {
            NodeKind::File => "file",
            NodeKind::Dir => "dir",
            NodeKind::Symlink => "symlink",
            _ => "other",
        }
    }
}

/// Whether `path` is `sel` or below it.
pub(crate) fn within(path: &str, sel: &str) -> bool {
    let sel = sel.trim_matches('/');
    sel.is_empty()
        || path == sel
        || (path.len() > sel.len() && path.starts_with(sel) && path.as_bytes()[sel.len()] == b'/')
}

/// A draft inode and the base it was cloned from (for tests and tools).
pub fn origin_of(db: &Db, ino: Ino) -> OpResult<Option<Ino>> {
    Ok(db.read(|tx| tx.draft_origin(ino))?.map(|(o, _)| o))
}

#[cfg(test)]
mod tests;

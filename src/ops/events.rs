//! The change stream: audit entries after a position, as they happen, each
//! limited to what the principal may see (entries of stores it cannot see,
//! and store-less entries such as key management for non-admins, are left
//! out). The API serves it as server-sent events; the console follows it.

use super::{Actor, Ops, Principal};
use crate::error::{OpResult, StoreError};
use crate::settings;
use crate::store::AuditFilter;
use std::collections::HashMap;

/// One change, as followers see it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChangeEvent {
    /// The audit entry's id: resume after it.
    pub id: i64,
    pub at: String,
    pub at_ns: i64,
    /// The store's slug and API id.
    pub store: Option<String>,
    pub memory_store_id: Option<String>,
    pub op: String,
    pub path: Option<String>,
    pub path2: Option<String>,
    pub memory_id: Option<String>,
    pub version: Option<i64>,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub actor: Actor,
}

impl Ops {
    /// The newest audit entry's id (where a new follower starts).
    pub fn last_change_id(&self) -> OpResult<i64> {
        let last = self.read(|tx| {
            tx.audit_entries(&AuditFilter {
                limit: Some(1),
                ..Default::default()
            })
        })?;
        Ok(last.first().map_or(0, |e| e.id.0))
    }

    /// Up to `limit` changes after entry `after` that `p` may see, oldest
    /// first, and the position to continue from.
    pub fn changes_after(
        &self,
        p: &Principal,
        after: i64,
        limit: u64,
    ) -> OpResult<(Vec<ChangeEvent>, i64)> {
        let (entries, visible) = self.read(|tx| {
            let entries = tx.audit_entries(&AuditFilter {
                after_id: Some(after),
                ascending: true,
                limit: Some(limit),
                settled: true,
                ..Default::default()
            })?;
            let mut visible: HashMap<String, Option<String>> = HashMap::new();
            for s in tx.stores()? {
                let set = settings::load(tx, s.id)?;
                let api = p.may_see(&s, &set).then(|| s.api_id.clone());
                visible.insert(s.name.clone(), api);
            }
            Ok::<_, StoreError>((entries, visible))
        })?;
        let next = entries.last().map_or(after, |e| e.id.0);
        let out = entries
            .into_iter()
            .filter_map(|e| {
                let api_id = match &e.store {
                    Some(name) => Some(visible.get(name)?.clone()?),
                    None if p.role == super::Role::Admin => None,
                    None => return None,
                };
                Some(ChangeEvent {
                    id: e.id.0,
                    at: e.at,
                    at_ns: e.at_ns,
                    store: e.store,
                    memory_store_id: api_id,
                    op: e.op,
                    path: e.path.map(|p| format!("/{p}")),
                    path2: e.path2.map(|p| format!("/{p}")),
                    memory_id: e.ino.map(|i| format!("mem_{i}")),
                    version: e.version,
                    actor: Actor::of(&e.agent, &e.session, e.user.as_deref()),
                    agent: e.agent,
                    session: e.session,
                    user: e.user,
                })
            })
            .collect();
        Ok((out, next))
    }
}

/// Which changes to read, oldest first.
#[derive(Clone, Debug, Default)]
pub struct ChangeQuery {
    /// One store (API id or slug); `None`: every store the principal sees.
    pub store: Option<String>,
    /// From this time on (nanoseconds since the epoch).
    pub since_ns: Option<i64>,
    /// After this change (an audit entry's id).
    pub after: Option<i64>,
    pub limit: u64,
}

impl Ops {
    /// The audit entries of the stores `p` may see that `q` asks for, oldest
    /// first, and the id to continue after (what agents read as change lines:
    /// `crate::changes::line`).
    pub fn change_entries(
        &self,
        p: &Principal,
        q: &ChangeQuery,
    ) -> OpResult<(Vec<crate::store::AuditEntry>, i64)> {
        let stores = match &q.store {
            Some(s) => vec![self.visible_store(p, s)?.id],
            None => self.visible_stores(p)?.iter().map(|s| s.id).collect(),
        };
        let f = AuditFilter {
            stores: Some(stores),
            since_ns: q.since_ns,
            after_id: q.after,
            ascending: true,
            limit: Some(q.limit.clamp(1, 10_000)),
            ..Default::default()
        };
        let entries = self.read(|tx| tx.audit_entries(&f))?;
        let next = entries.last().map_or(q.after.unwrap_or(0), |e| e.id.0);
        Ok((entries, next))
    }
}

//! The audit log as people and programs query it: every filter of `memfsctl
//! log` (store, path at or below, agent, session, user, operation, time
//! window, limit), newest first, whole (memfsctl) or a page at a time with a
//! cursor by audit id (the API). A principal sees only the entries of stores
//! it may see; only an administrator over every store also sees entries about
//! no store (keys, for instance).

use super::page::{self, Page};
use super::{Ops, Principal, Role};
use crate::error::{OpError, OpResult};
use crate::store::{AuditEntry, AuditFilter};

/// Which audit entries to list. Every field narrows the result.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    /// A store by API id or slug.
    pub store: Option<String>,
    /// Entries at this store-relative path or below it (needs `store`).
    pub path: Option<String>,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub user: Option<String>,
    pub op: Option<String>,
    /// From this time on: RFC 3339 or an age such as `2h`.
    pub since: Option<String>,
    /// Up to this time.
    pub until: Option<String>,
    /// At most this many entries (a page's size with [`Ops::log_page`]).
    pub limit: Option<u64>,
}

/// Page sizes of [`Ops::log_page`].
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

impl Ops {
    /// The store filter for `q` as `p` may see it.
    fn audit_filter(&self, p: &Principal, q: &LogQuery) -> OpResult<AuditFilter> {
        let mut f = AuditFilter {
            agent: q.agent.clone(),
            session: q.session.clone(),
            user: q.user.clone(),
            op: q.op.clone(),
            since_ns: super::time::parse_opt(q.since.as_deref())?,
            until_ns: super::time::parse_opt(q.until.as_deref())?,
            limit: q.limit,
            ..Default::default()
        };
        match &q.store {
            Some(s) => f.store = Some(self.visible_store(p, s)?.id),
            None if p.role == Role::Admin && p.stores.is_none() => {}
            None => {
                let ids = self.visible_stores(p)?.iter().map(|s| s.id).collect();
                f.stores = Some(ids);
            }
        }
        if let Some(path) = &q.path {
            if f.store.is_none() {
                return Err(OpError::Invalid(
                    "a path filter needs a store to go with it".into(),
                ));
            }
            f.path = Some(path.trim_matches('/').to_string());
        }
        Ok(f)
    }

    /// Every audit entry matching `q`, newest first (at most `q.limit`).
    pub fn log(&self, p: &Principal, q: &LogQuery) -> OpResult<Vec<AuditEntry>> {
        let f = self.audit_filter(p, q)?;
        self.read(|tx| tx.audit_entries(&f))
    }

    /// One page of the entries matching `q`, newest first: `q.limit` entries
    /// (default 100, at most 1,000) before the entry `page` points after.
    pub fn log_page(
        &self,
        p: &Principal,
        q: &LogQuery,
        page_token: Option<&str>,
    ) -> OpResult<Page<AuditEntry>> {
        let size = page::limit(
            q.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            DEFAULT_PAGE,
            MAX_PAGE,
        )?;
        let mut f = self.audit_filter(p, q)?;
        if let Some(t) = page_token {
            let id = page::decode("log", t)?
                .first()
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| OpError::Invalid("invalid page cursor".into()))?;
            f.before_id = Some(id);
        }
        f.limit = Some(size as u64 + 1);
        let mut data = self.read(|tx| tx.audit_entries(&f))?;
        let more = data.len() > size;
        data.truncate(size);
        let next_page = match (more, data.last()) {
            (true, Some(last)) => Some(page::encode("log", &[&last.id.0.to_string()])),
            _ => None,
        };
        Ok(Page { data, next_page })
    }
}

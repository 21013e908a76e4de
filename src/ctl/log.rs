//! `memfsctl log`: audit entries, newest first, with filters.

use super::Ctx;
use crate::ops::log::LogQuery;
use crate::store::AuditEntry;
use anyhow::{bail, Result};

/// The filters of `memfsctl log`, as given on the command line.
#[derive(Debug, Default, Clone)]
pub struct LogArgs {
    pub store: Option<String>,
    pub path: Option<String>,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub user: Option<String>,
    pub op: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<u64>,
}

/// The query the command line asks for: `--path STORE/PATH` names the store
/// too.
pub fn query(a: &LogArgs) -> Result<LogQuery> {
    let (store, path) = match (&a.store, &a.path) {
        (None, Some(p)) if p.contains('/') => {
            let (s, rest) = p.split_once('/').unwrap_or((p, ""));
            (Some(s.to_string()), Some(rest.to_string()))
        }
        (s, p) => (s.clone(), p.clone()),
    };
    if path.is_some() && store.is_none() {
        bail!("--path needs a store: --store NAME, or --path STORE/PATH");
    }
    Ok(LogQuery {
        store,
        path,
        agent: a.agent.clone(),
        session: a.session.clone(),
        user: a.user.clone(),
        op: a.op.clone(),
        since: a.since.clone(),
        until: a.until.clone(),
        limit: a.limit,
    })
}

/// One line of the human listing.
pub fn line(e: &AuditEntry) -> String {
    let store = e.store.as_deref().unwrap_or("-");
    let mut path = format!("{store}/{}", e.path.as_deref().unwrap_or(""));
    if let Some(p2) = &e.path2 {
        path.push_str(&format!(" -> {store}/{p2}"));
    }
    let version = e.version.map_or(String::new(), |v| format!(" v{v}"));
    format!(
        "{:>6} {} {:<12} {}{} agent={} session={} user={}",
        e.id.0,
        e.at,
        e.op,
        path,
        version,
        e.agent,
        e.session,
        e.user.as_deref().unwrap_or("-")
    )
}

pub fn run(ctx: &Ctx, args: &LogArgs) -> Result<()> {
    let entries = ctx.ops.log(&ctx.p, &query(args)?)?;
    ctx.emit(&entries, || {
        entries.iter().map(|e| line(e) + "\n").collect::<String>()
    })
}

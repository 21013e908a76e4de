//! `memfsctl log`: audit entries, newest first.

use super::Ctx;
use crate::store::AuditFilter;
use anyhow::{bail, Result};

pub fn run(ctx: &Ctx, store: Option<&str>, limit: Option<u64>) -> Result<()> {
    let store_id = match store {
        None => None,
        Some(name) => match ctx.db.read(|tx| tx.store_by_name(name))? {
            Some(s) => Some(s.id),
            None => bail!("no store named '{name}'"),
        },
    };
    let entries = ctx.db.read(|tx| {
        tx.audit_entries(&AuditFilter {
            store: store_id,
            limit,
        })
    })?;
    ctx.emit(&entries, || {
        let mut out = String::new();
        for e in &entries {
            let store = e.store.as_deref().unwrap_or("-");
            let mut path = format!("{store}/{}", e.path.as_deref().unwrap_or(""));
            if let Some(p2) = &e.path2 {
                path.push_str(&format!(" -> {store}/{p2}"));
            }
            let version = e.version.map_or(String::new(), |v| format!(" v{v}"));
            out.push_str(&format!(
                "{:>6} {} {:<12} {}{} agent={} session={} user={}\n",
                e.id.0,
                e.at,
                e.op,
                path,
                version,
                e.agent,
                e.session,
                e.user.as_deref().unwrap_or("-")
            ));
        }
        out
    })
}

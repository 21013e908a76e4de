//! `memfsctl leases` and `memfsctl leases break STORE/PATH`.

use super::Ctx;
use crate::ids::now_ns;
use crate::store::Change;
use anyhow::{bail, Result};

#[derive(serde::Serialize)]
struct LeaseView {
    store: String,
    path: Option<String>,
    agent: String,
    session: String,
    user: Option<String>,
    token: i64,
    holder: String,
    acquired: String,
    expires: String,
    expires_in_ms: i64,
}

pub fn list(ctx: &Ctx) -> Result<()> {
    let now = now_ns();
    let views = ctx.db.read(|tx| {
        let stores = tx.stores()?;
        let mut out = Vec::new();
        for l in tx.leases(now)? {
            let store = stores
                .iter()
                .find(|s| s.id == l.store)
                .map_or_else(|| l.store.to_string(), |s| s.name.clone());
            out.push(LeaseView {
                store,
                path: tx.path_of(l.ino)?,
                agent: l.agent,
                session: l.session,
                user: l.user,
                token: l.token,
                holder: l.holder,
                acquired: crate::timefmt::rfc3339(l.acquired_ns),
                expires: crate::timefmt::rfc3339(l.expires_ns),
                expires_in_ms: (l.expires_ns - now) / 1_000_000,
            });
        }
        Ok::<_, crate::error::StoreError>(out)
    })?;
    ctx.emit(&views, || {
        let mut out = format!(
            "{:<32} {:<16} {:<16} {:>6} {:>9}\n",
            "STORE/PATH", "AGENT", "SESSION", "TOKEN", "EXPIRES"
        );
        for v in &views {
            out.push_str(&format!(
                "{:<32} {:<16} {:<16} {:>6} {:>8}s\n",
                format!("{}/{}", v.store, v.path.as_deref().unwrap_or("?")),
                v.agent,
                v.session,
                v.token,
                v.expires_in_ms / 1000
            ));
        }
        if views.is_empty() {
            out.push_str("(no live leases)\n");
        }
        out
    })
}

/// Frees a file's lease; its holder is fenced off (its next commit becomes a
/// conflict version). Audited as `lease-break`.
pub fn break_lease(ctx: &Ctx, spec: &str) -> Result<()> {
    let (store, path, ino) = super::resolve(&ctx.db, spec)?;
    let now = now_ns();
    let broken = ctx.db.write(|tx| {
        let broken = tx.break_lease(ino, now)?;
        if let Some(l) = &broken {
            tx.record(
                &ctx.who,
                now,
                &Change {
                    store: Some(store.id),
                    op: "lease-break",
                    path: Some(&path),
                    ino: Some(ino),
                    detail: Some(serde_json::json!({
                        "agent": l.agent, "session": l.session, "token": l.token
                    })),
                    origin: Some("memfsctl"),
                    ..Default::default()
                },
            )?;
        }
        Ok::<_, crate::error::StoreError>(broken)
    })?;
    match broken {
        Some(l) => ctx.emit(
            &serde_json::json!({"broken": true, "agent": l.agent, "session": l.session, "token": l.token}),
            || format!("broke the lease of agent {} (session {}) on {spec}", l.agent, l.session),
        ),
        None => bail!("{spec} has no live lease"),
    }
}

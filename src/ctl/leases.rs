//! `memfsctl leases` and `memfsctl leases break STORE/PATH`.

use super::Ctx;
use anyhow::Result;

pub fn list(ctx: &Ctx) -> Result<()> {
    let leases = ctx.ops.list_leases(&ctx.p)?;
    ctx.emit(&leases, || {
        let mut out = format!(
            "{:<32} {:<16} {:<16} {:>6} {:>9}\n",
            "STORE/PATH", "AGENT", "SESSION", "TOKEN", "EXPIRES"
        );
        for v in &leases {
            out.push_str(&format!(
                "{:<32} {:<16} {:<16} {:>6} {:>8}s\n",
                format!("{}/{}", v.store, v.path.as_deref().unwrap_or("?")),
                v.agent,
                v.session,
                v.token,
                v.expires_in_ms / 1000
            ));
        }
        if leases.is_empty() {
            out.push_str("(no live leases)\n");
        }
        out
    })
}

/// Frees a file's lease; its holder is fenced off (its next commit becomes a
/// conflict version).
pub fn break_lease(ctx: &Ctx, spec: &str) -> Result<()> {
    let (store, path) = super::split_spec(spec);
    let l = ctx.ops.break_lease(&ctx.p, store, path)?;
    ctx.emit(
        &serde_json::json!({"broken": true, "agent": l.agent, "session": l.session, "token": l.token}),
        || format!("broke the lease of agent {} (session {}) on {spec}", l.agent, l.session),
    )
}

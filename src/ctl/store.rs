//! `memfsctl store create|list`.

use super::Ctx;
use crate::ids::now_ns;
use crate::store::Scope;
use anyhow::Result;

pub fn create(
    ctx: &Ctx,
    name: &str,
    scope: &str,
    owner: Option<&str>,
    description: &str,
) -> Result<()> {
    let scope = Scope::parse(scope)?;
    if scope == Scope::Org && owner.is_some() {
        anyhow::bail!("--owner applies to user stores only");
    }
    let row = ctx
        .db
        .write(|tx| tx.create_store(name, scope, owner, description, &ctx.who, now_ns()))?;
    ctx.emit(&row, || {
        format!("created {} store '{}'", row.scope.as_str(), row.name)
    })
}

pub fn list(ctx: &Ctx) -> Result<()> {
    let rows = ctx.db.read(|tx| tx.stores())?;
    ctx.emit(&rows, || {
        let mut out = format!(
            "{:<24} {:<5} {:<16} DESCRIPTION\n",
            "NAME", "SCOPE", "OWNER"
        );
        for r in &rows {
            out.push_str(&format!(
                "{:<24} {:<5} {:<16} {}\n",
                r.name,
                r.scope.as_str(),
                r.owner.as_deref().unwrap_or("-"),
                r.description
            ));
        }
        out
    })
}

//! `memfsctl apikey create|list|revoke`: keys for the HTTP API. A new key's
//! secret is printed once, alone on stdout (so `KEY=$(memfsctl apikey create
//! ...)` works); only its hash is kept.

use super::Ctx;
use crate::ops::keys::NewKey;
use crate::ops::Role;
use crate::store::KeyRow;
use crate::timefmt::rfc3339;
use anyhow::Result;

pub fn create(ctx: &Ctx, nk: &NewKey) -> Result<()> {
    let made = ctx.ops.create_key(&ctx.p, nk)?;
    ctx.emit(&made, || made.key.clone())
}

fn stores(k: &KeyRow) -> String {
    k.stores
        .as_ref()
        .map_or("(all it may see)".to_string(), |l| l.join(","))
}

pub fn list(ctx: &Ctx) -> Result<()> {
    let keys = ctx.ops.list_keys(&ctx.p)?;
    ctx.emit(&keys, || {
        let mut out = format!(
            "{:<32} {:<16} {:<6} {:<16} {:<12} {:<8} {:<24} STORES\n",
            "ID", "NAME", "ROLE", "AGENT", "USER", "STATE", "LAST USED"
        );
        for k in &keys {
            out.push_str(&format!(
                "{:<32} {:<16} {:<6} {:<16} {:<12} {:<8} {:<24} {}\n",
                k.id,
                k.name,
                k.role,
                k.agent,
                k.user.as_deref().unwrap_or("-"),
                if k.revoked_ns.is_some() {
                    "revoked"
                } else {
                    "active"
                },
                k.last_used_ns.map_or("never".to_string(), rfc3339),
                stores(k)
            ));
        }
        if keys.is_empty() {
            out.push_str("(no API keys: make one with `memfsctl apikey create NAME`)\n");
        }
        out
    })
}

pub fn revoke(ctx: &Ctx, key: &str) -> Result<()> {
    let k = ctx.ops.revoke_key(&ctx.p, key)?;
    ctx.emit(&k, || {
        format!(
            "revoked API key '{}' ({}): it is refused from now on",
            k.name, k.id
        )
    })
}

/// Parses `--role`.
pub fn role(s: &str) -> Result<Role> {
    Ok(Role::parse(s)?)
}

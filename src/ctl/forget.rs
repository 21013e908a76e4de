//! `memfsctl forget-user USER --yes`: deletes every store the user owns with all
//! its versions, and seals those stores' audit entries.

use super::redact::{check_scrub, scrub_files};
use super::Ctx;
use crate::ids::now_ns;
use crate::store::Scope;
use anyhow::{bail, Result};

pub fn run(ctx: &Ctx, user: &str, yes: bool) -> Result<()> {
    let owned: Vec<String> = ctx
        .db
        .read(|tx| tx.stores())?
        .into_iter()
        .filter(|s| s.scope == Scope::User && s.owner.as_deref() == Some(user))
        .map(|s| s.name)
        .collect();
    if !yes {
        ctx.emit(
            &serde_json::json!({"user": user, "stores": owned, "forgotten": false}),
            || {
                format!(
                    "would delete {} store(s) owned by '{user}': {}",
                    owned.len(),
                    if owned.is_empty() {
                        "-".to_string()
                    } else {
                        owned.join(", ")
                    }
                )
            },
        )?;
        bail!("nothing deleted: add --yes to forget '{user}' for good");
    }
    ctx.db.set_secure_delete(true)?;
    let done = ctx
        .db
        .write(|tx| tx.forget_user(user, &ctx.who, now_ns()))?;
    let scrub = scrub_files(ctx)?;
    ctx.emit(
        &serde_json::json!({"forgotten": done, "scrub": scrub}),
        || {
            format!(
                "forgot '{user}': deleted {} store(s) ({}), {} version(s); {} audit entr(ies) sealed",
                done.stores.len(),
                if done.stores.is_empty() { "-".to_string() } else { done.stores.join(", ") },
                done.versions,
                done.entries_sealed
            )
        },
    )?;
    check_scrub(&scrub)
}

//! `memfsctl forget-user USER --yes`: deletes every store the user owns with all
//! its versions, and seals those stores' audit entries.

use super::redact::check_scrub;
use super::Ctx;
use anyhow::{bail, Result};

fn names(stores: &[String]) -> String {
    if stores.is_empty() {
        "-".to_string()
    } else {
        stores.join(", ")
    }
}

pub fn run(ctx: &Ctx, user: &str, yes: bool) -> Result<()> {
    if !yes {
        let owned = ctx.ops.forget_user_plan(&ctx.p, user)?;
        ctx.emit(
            &serde_json::json!({"user": user, "stores": owned, "forgotten": false}),
            || {
                format!(
                    "would delete {} store(s) owned by '{user}': {}",
                    owned.len(),
                    names(&owned)
                )
            },
        )?;
        bail!("nothing deleted: add --yes to forget '{user}' for good");
    }
    let done = ctx.ops.forget_user(&ctx.p, user)?;
    let f = &done.forgotten;
    ctx.emit(&done, || {
        format!(
            "forgot '{user}': deleted {} store(s) ({}), {} version(s); {} audit entr(ies) sealed",
            f.stores.len(),
            names(&f.stores),
            f.versions,
            f.entries_sealed
        )
    })?;
    check_scrub(&done.scrub)
}

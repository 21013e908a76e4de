//! memfsctl subcommands, one file each. They work on the database directly, safely
//! beside running daemons. Every command can print JSON (`--json`).

pub mod audit;
pub mod log;
pub mod store;

use crate::ids::Identity;
use anyhow::{bail, Result};
use serde::Serialize;

/// What every subcommand gets: the database, output mode and the operator identity.
pub struct Ctx {
    pub db: crate::store::Db,
    pub json: bool,
    pub who: Identity,
}

impl Ctx {
    /// Prints `value` as pretty JSON, or `human()` otherwise.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
        Ok(())
    }
}

/// The operator identity from `--as user:NAME` (default: the Unix user).
pub fn operator(as_user: Option<&str>) -> Result<Identity> {
    let name = match as_user {
        Some(s) => match s.strip_prefix("user:") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => bail!("--as takes user:NAME, not '{s}'"),
        },
        None => std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| format!("uid-{}", unsafe_getuid())),
    };
    Ok(Identity::new(
        "memfsctl",
        &format!("memfsctl-{}", std::process::id()),
        Some(&name),
    ))
}

fn unsafe_getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

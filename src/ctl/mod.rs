//! memfsctl subcommands, one file each. They work on the database directly, safely
//! beside running daemons. Every command can print JSON (`--json`).

pub mod audit;
pub mod backup;
pub mod export;
pub mod forget;
pub mod fsck;
pub mod gc;
pub mod history;
pub mod import;
pub mod key;
pub mod leases;
pub mod log;
pub mod prompt;
pub mod purge;
pub mod redact;
pub mod rollback;
pub mod store;

use crate::ids::Identity;
use anyhow::{bail, Result};
use serde::Serialize;

/// What every subcommand gets: the database, output mode and the operator identity.
pub struct Ctx {
    pub db: std::sync::Arc<crate::store::Db>,
    pub config: crate::config::Config,
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

/// Splits `STORE/PATH` and resolves it to the store and the inode.
pub fn resolve(
    db: &crate::store::Db,
    spec: &str,
) -> Result<(crate::store::StoreRow, String, crate::ids::Ino)> {
    let (store, path) = spec.split_once('/').unwrap_or((spec, ""));
    let path = path.trim_matches('/').to_string();
    let row = match db.read(|tx| tx.store_by_name(store))? {
        Some(r) => r,
        None => bail!("no store named '{store}'"),
    };
    let ino = match db.read(|tx| tx.resolve_path(row.root, &path))? {
        Some(i) => i,
        None => bail!("no file '{path}' in store '{store}'"),
    };
    Ok((row, path, ino))
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
            .or_else(|| passwd_name(unsafe_getuid()))
            .unwrap_or_else(|| format!("uid-{}", unsafe_getuid())),
    };
    Ok(Identity::new(
        "memfsctl",
        &format!("memfsctl-{}", std::process::id()),
        Some(&name),
    ))
}

/// The login name of `uid` from /etc/passwd.
fn passwd_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

fn unsafe_getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

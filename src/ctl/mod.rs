//! memfsctl subcommands, one file each, as thin adapters over the operations
//! core (`ops/`): parse what the command line says, call one operation as
//! the operator (`Principal::operator`, an admin over every store), and
//! render its result as text or JSON (`--json`), with the exit code. They
//! work on the database directly, safely beside running daemons.

pub mod apikey;
pub mod audit;
pub mod backup;
pub mod draft;
pub mod export;
pub mod forget;
pub mod fsck;
pub mod gc;
pub mod history;
pub mod import;
pub mod jobs;
pub mod key;
pub mod leases;
pub mod log;
pub mod migrate;
pub mod prompt;
pub mod purge;
pub mod redact;
pub mod rollback;
pub mod store;

use crate::ids::Identity;
use crate::ops::{Ops, Principal};
use anyhow::{bail, Result};
use serde::Serialize;

/// What every subcommand gets: the operations core, the config, the output
/// mode and the operator.
pub struct Ctx {
    pub ops: Ops,
    pub config: crate::config::Config,
    pub json: bool,
    /// The operator every change is attributed to.
    pub p: Principal,
}

impl Ctx {
    pub fn new(
        db: crate::store::Db,
        config: crate::config::Config,
        json: bool,
        who: Identity,
    ) -> Ctx {
        Ctx {
            ops: Ops::new(std::sync::Arc::new(db)),
            config,
            json,
            p: Principal::operator(who),
        }
    }

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

/// Splits `STORE/PATH` into the store and the path in it (`""` for none).
pub fn split_spec(spec: &str) -> (&str, &str) {
    let (store, path) = spec.split_once('/').unwrap_or((spec, ""));
    (store, path.trim_matches('/'))
}

/// Splits `STORE/PATH`, refusing a bare store.
pub fn file_spec(spec: &str) -> Result<(&str, &str)> {
    let (store, path) = split_spec(spec);
    if path.is_empty() {
        bail!("give a file as STORE/PATH, not just a store");
    }
    Ok((store, path))
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

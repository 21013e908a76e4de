//! Write leases as operators see them: the live ones (in stores the principal
//! may see), and breaking a stuck one. Breaking frees the file at once and
//! fences its holder off (its next commit becomes a conflict version, nothing
//! is lost); it is audited as `lease-break` and only an admin may do it.

use super::{Ops, Principal};
use crate::error::{OpError, OpResult, StoreError};
use crate::ids::{now_ns, Ino};
use crate::store::Change;
use crate::timefmt::rfc3339;
use serde::Serialize;

/// A live write lease.
#[derive(Clone, Debug, Serialize)]
pub struct LeaseInfo {
    pub store: String,
    /// The file's path now (`None` if it has no name any more).
    pub path: Option<String>,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    /// The fencing token: a holder with an older token cannot commit.
    pub token: i64,
    /// The mount (holder id) that holds it.
    pub holder: String,
    pub acquired: String,
    pub expires: String,
    pub expires_in_ms: i64,
}

/// A lease just broken: whose it was.
#[derive(Clone, Debug, Serialize)]
pub struct BrokenLease {
    pub store: String,
    pub path: String,
    pub ino: Ino,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub token: i64,
}

impl Ops {
    /// Every live write lease in the stores `p` may see.
    pub fn list_leases(&self, p: &Principal) -> OpResult<Vec<LeaseInfo>> {
        let stores = self.visible_stores(p)?;
        let now = now_ns();
        self.read(|tx| {
            let mut out = Vec::new();
            for l in tx.leases()? {
                let Some(store) = stores.iter().find(|s| s.id == l.store) else {
                    continue;
                };
                out.push(LeaseInfo {
                    store: store.name.clone(),
                    path: tx.path_of(l.ino)?,
                    agent: l.agent,
                    session: l.session,
                    user: l.user,
                    token: l.token,
                    holder: l.holder,
                    acquired: rfc3339(l.acquired_ns),
                    expires: rfc3339(l.expires_ns),
                    expires_in_ms: (l.expires_ns - now) / 1_000_000,
                });
            }
            Ok::<_, StoreError>(out)
        })
    }

    /// Frees the lease on the file at `path` in `store`. Only an admin may.
    pub fn break_lease(&self, p: &Principal, store: &str, path: &str) -> OpResult<BrokenLease> {
        p.require_admin("break leases")?;
        let Some(f) = self.live_file(p, store, path)? else {
            return Err(OpError::NotFound(format!(
                "no file '{}' in store '{store}'",
                path.trim_matches('/')
            )));
        };
        let now = now_ns();
        let broken = self.db().write(|tx| {
            let broken = tx.break_lease(f.ino)?;
            if let Some(l) = &broken {
                tx.record(
                    &p.who,
                    now,
                    &Change {
                        store: Some(f.store.id),
                        op: "lease-break",
                        path: Some(&f.path),
                        ino: Some(f.ino),
                        detail: Some(serde_json::json!({
                            "agent": l.agent, "session": l.session, "token": l.token
                        })),
                        // memfs's own tools mark their changes so; daemons
                        // follow every change not made by their own mount.
                        origin: Some("memfsctl"),
                        ..Default::default()
                    },
                )?;
            }
            Ok::<_, StoreError>(broken)
        })?;
        match broken {
            Some(l) => Ok(BrokenLease {
                store: f.store.name.clone(),
                path: f.path.clone(),
                ino: f.ino,
                agent: l.agent,
                session: l.session,
                user: l.user,
                token: l.token,
            }),
            None => Err(OpError::NotFound(format!(
                "{} has no live lease",
                f.display()
            ))),
        }
    }
}

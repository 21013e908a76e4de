//! API keys: made by an admin (memfsctl on the host, or an admin key), shown
//! once, kept only as a hash, listed and revoked; and authentication of a
//! presented secret into the principal it acts as.

use super::{Ops, Principal, Role};
use crate::error::{OpError, OpResult, StoreError};
use crate::ids::now_ns;
use crate::store::{new_api_id, Change, KeyRow};

/// What a new key acts as.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub name: String,
    /// The user it acts for (their private stores); none by default.
    pub user: Option<String>,
    /// The agent it acts as for allow-lists; the key's name by default.
    pub agent: Option<String>,
    pub role: Role,
    /// Store names it is limited to; empty: every store its identity may see.
    pub stores: Vec<String>,
}

/// A key just made: its secret, shown this once, and what it is.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub row: KeyRow,
}

/// Secrets look like `memfs_` and 64 hex characters.
const SECRET_PREFIX: &str = "memfs_";

/// How often a key's `last_used` is written (not on every request).
const TOUCH_EVERY_NS: i64 = 60 * 1_000_000_000;

fn hash(secret: &str) -> [u8; 32] {
    *blake3::hash(secret.as_bytes()).as_bytes()
}

fn check_label(what: &str, s: &str) -> OpResult<()> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(OpError::Invalid(format!(
            "invalid {what} '{s}': use 1-128 characters of A-Z, a-z, 0-9 and . _ : @ -"
        )))
    }
}

impl Ops {
    /// Makes a key. Only an admin may.
    pub fn create_key(&self, p: &Principal, nk: &NewKey) -> OpResult<CreatedKey> {
        p.require_admin("create API keys")?;
        check_label("key name", &nk.name)?;
        if let Some(u) = &nk.user {
            check_label("user", u)?;
        }
        let agent = nk.agent.clone().unwrap_or_else(|| nk.name.clone());
        check_label("agent", &agent)?;
        if super::actor::is_operator_agent(&agent) {
            return Err(OpError::Invalid(format!(
                "agent '{agent}' is reserved for memfs's own tools"
            )));
        }
        for s in &nk.stores {
            if self.read(|tx| tx.store_by_name(s))?.is_none() {
                return Err(OpError::NotFound(format!("no store named '{s}'")));
            }
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| OpError::Store(StoreError::Io(std::io::Error::other(e.to_string()))))?;
        let secret = format!("{SECRET_PREFIX}{}", crate::digest::hex(&raw));
        let now = now_ns();
        let row = KeyRow {
            id: new_api_id("apikey_")?,
            name: nk.name.clone(),
            role: nk.role.as_str().to_string(),
            agent,
            user: nk.user.clone(),
            stores: (!nk.stores.is_empty()).then(|| nk.stores.clone()),
            created_ns: now,
            revoked_ns: None,
            last_used_ns: None,
        };
        self.db().write(|tx| {
            tx.insert_key(&row, &hash(&secret))?;
            tx.record(
                &p.who,
                now,
                &Change {
                    op: "apikey-create",
                    detail: Some(serde_json::json!({
                        "id": row.id, "name": row.name, "role": row.role,
                        "agent": row.agent, "user": row.user, "stores": row.stores,
                    })),
                    ..Default::default()
                },
            )?;
            Ok::<_, StoreError>(())
        })?;
        Ok(CreatedKey { key: secret, row })
    }

    /// Every key (never a secret). Only an admin may list them.
    pub fn list_keys(&self, p: &Principal) -> OpResult<Vec<KeyRow>> {
        p.require_admin("list API keys")?;
        self.read(|tx| tx.keys())
    }

    /// Revokes a key by id or name. Only an admin may.
    pub fn revoke_key(&self, p: &Principal, key: &str) -> OpResult<KeyRow> {
        p.require_admin("revoke API keys")?;
        let mut found = self.read(|tx| tx.key_by_id_or_name(key))?;
        let k = match found.len() {
            0 => return Err(OpError::NotFound(format!("no API key '{key}'"))),
            1 => found.remove(0),
            n => {
                return Err(OpError::Invalid(format!(
                    "{n} keys are named '{key}': revoke one by its id"
                )))
            }
        };
        let now = now_ns();
        self.db().write(|tx| {
            if tx.revoke_key(&k.id, now)? {
                tx.record(
                    &p.who,
                    now,
                    &Change {
                        op: "apikey-revoke",
                        detail: Some(serde_json::json!({ "id": k.id, "name": k.name })),
                        ..Default::default()
                    },
                )?;
            }
            Ok::<_, StoreError>(())
        })?;
        let k = self
            .read(|tx| tx.key_by_id_or_name(&k.id))?
            .pop()
            .ok_or_else(|| OpError::NotFound(format!("no API key '{key}'")))?;
        Ok(k)
    }

    /// Whether the key with id `id` exists and is not revoked (a console
    /// session signed in with a key ends when the key is revoked).
    pub fn key_is_live(&self, id: &str) -> OpResult<bool> {
        let found = self.read(|tx| tx.key_by_id_or_name(id))?;
        Ok(found.iter().any(|k| k.id == id && k.revoked_ns.is_none()))
    }

    /// The principal a presented secret acts as; 401 for an unknown or
    /// revoked key (the same answer for both).
    pub fn authenticate(&self, secret: &str) -> OpResult<Principal> {
        let unknown = || OpError::Unauthenticated("invalid or revoked API key".into());
        if secret.is_empty() || secret.len() > 256 {
            return Err(unknown());
        }
        let k = self
            .read(|tx| tx.key_by_hash(&hash(secret)))?
            .ok_or_else(unknown)?;
        if k.revoked_ns.is_some() {
            return Err(unknown());
        }
        let now = now_ns();
        if k.last_used_ns.is_none_or(|t| now - t > TOUCH_EVERY_NS) {
            // Best effort: a failure to note the time must not refuse the key.
            if let Err(e) = self.db().write(|tx| tx.touch_key(&k.id, now)) {
                tracing::warn!(error = %e, key = %k.id, "cannot record a key's last use");
            }
        }
        Principal::from_key(&k)
    }
}

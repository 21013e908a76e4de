//! A store's settings: who may attach it (allow-lists), path policies, quotas
//! and content rules. They live in the database, one JSON document per store,
//! so every daemon, `memfs serve` and `memfsctl` enforce the same rules
//! whatever their own memfs.toml says. memfs.toml only seeds them: `memfs
//! init` (and a mount or server that finds a declared store without settings)
//! copies a store's declaration in once; `memfsctl store set` and the API
//! change them afterwards, audited, and running mounts reload them when the
//! change feed reports the change.

use crate::config::{Config, DraftsDecl, FormatName, PolicyDecl, QuotaDecl, RetentionDecl};
use crate::error::{StoreError, StoreResult};
use crate::fs::{PiiMode, Quota, StorePolicy};
use crate::ids::{now_ns, Identity, StoreId};
use crate::store::{Db, Txn};
use serde::{Deserialize, Serialize};

/// Everything a store enforces besides its scope and owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Agent globs that may attach this org store (read-only unless also
    /// writers). With neither list, every agent may read and write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers: Option<Vec<String>>,
    /// Agent globs that may write this org store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writers: Option<Vec<String>>,
    pub quota: QuotaDecl,
    pub policy: PolicyDecl,
    /// How long old versions are kept (see [`crate::retention`]).
    pub retention: RetentionDecl,
    /// Whose mounts write to a draft of their own (drafts by rule).
    #[serde(skip_serializing_if = "DraftsDecl::is_empty")]
    pub drafts: DraftsDecl,
}

impl StoreSettings {
    /// The policy the filesystem core enforces for these settings.
    pub fn policy(&self) -> StorePolicy {
        StorePolicy {
            quota: Quota {
                max_file_bytes: self.quota.max_file_bytes,
                max_bytes: self.quota.max_bytes,
                max_files: self.quota.max_files,
            },
            read_only: self.policy.read_only.clone(),
            read_only_writers: self.policy.read_only_writers.clone(),
            append_only: self.policy.append_only.clone(),
            pii: self.policy.pii,
            validate: self
                .policy
                .validate
                .iter()
                .map(|(glob, f)| (glob.clone(), (*f).into()))
                .collect(),
        }
    }

    /// Parses settings as stored, or as a client sent them.
    pub fn from_json(text: &str) -> Result<StoreSettings, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid store settings: {e}"))
    }

    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and maps with string keys always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Changes one setting from `KEY=VALUE` text (`memfsctl store set`):
    /// `readers`, `writers`, `read_only`, `read_only_writers`, `append_only`
    /// take comma-separated globs (empty: none; for the allow-lists, `-`
    /// removes the list, so every agent may attach); `pii` takes off, tag,
    /// redact or block; `max_file_bytes`, `max_bytes`, `max_files` take a
    /// number (`K`, `M`, `G` suffixes for bytes) or `none`;
    /// `validate.GLOB` takes json, jsonl, toml, yaml or nothing (removes it);
    /// `drafts.agents` and `drafts.sessions` take comma-separated globs.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("'{assignment}' is not KEY=VALUE"))?;
        let (key, value) = (key.trim(), value.trim());
        let globs = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect()
        };
        match key {
            "readers" | "writers" => {
                let list = (value != "-").then(|| globs(value));
                if key == "readers" {
                    self.readers = list;
                } else {
                    self.writers = list;
                }
            }
            "read_only" => self.policy.read_only = globs(value),
            "drafts.agents" => self.drafts.agents = globs(value),
            "drafts.sessions" => self.drafts.sessions = globs(value),
            "read_only_writers" => self.policy.read_only_writers = globs(value),
            "append_only" => self.policy.append_only = globs(value),
            "pii" => {
                self.policy.pii = match value {
                    "off" => PiiMode::Off,
                    "tag" => PiiMode::Tag,
                    "redact" => PiiMode::Redact,
                    "block" => PiiMode::Block,
                    _ => {
                        return Err(format!(
                            "pii must be off, tag, redact or block, not '{value}'"
                        ))
                    }
                }
            }
            "max_file_bytes" => self.quota.max_file_bytes = parse_amount(key, value, true)?,
            "max_bytes" => self.quota.max_bytes = parse_amount(key, value, true)?,
            "max_files" => self.quota.max_files = parse_amount(key, value, false)?,
            "keep_days" | "keep_versions" => {
                let n = match parse_amount(key, value, false)? {
                    None => None,
                    Some(n) => Some(u32::try_from(n).map_err(|_| format!("{key} is too large"))?),
                };
                if key == "keep_days" {
                    self.retention.keep_days = n;
                } else {
                    self.retention.keep_versions = n;
                }
            }
            "legal_hold" => {
                self.retention.legal_hold = match value {
                    "true" | "on" | "yes" => true,
                    "false" | "off" | "no" => false,
                    _ => return Err(format!("legal_hold takes true or false, not '{value}'")),
                }
            }
            _ => match key.strip_prefix("validate.") {
                Some(glob) if !glob.is_empty() => {
                    if value.is_empty() || value == "none" {
                        self.policy.validate.remove(glob);
                    } else {
                        let f = match value {
                            "json" => FormatName::Json,
                            "jsonl" => FormatName::Jsonl,
                            "toml" => FormatName::Toml,
                            "yaml" => FormatName::Yaml,
                            _ => {
                                return Err(format!(
                                    "validate takes json, jsonl, toml or yaml, not '{value}'"
                                ))
                            }
                        };
                        self.policy.validate.insert(glob.to_string(), f);
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown setting '{key}' (readers, writers, read_only, \
                         read_only_writers, append_only, pii, max_file_bytes, max_bytes, \
                         max_files, validate.GLOB, keep_days, keep_versions, legal_hold, \
                         drafts.agents, drafts.sessions)"
                    ))
                }
            },
        }
        Ok(())
    }
}

/// `none`/empty, or a number with an optional K/M/G (powers of 1024) suffix.
fn parse_amount(key: &str, v: &str, bytes: bool) -> Result<Option<u64>, String> {
    if v.is_empty() || v == "none" {
        return Ok(None);
    }
    let (digits, mult) = match v.char_indices().last() {
        Some((i, 'K' | 'k')) if bytes => (&v[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) if bytes => (&v[..i], 1 << 20),
        Some((i, 'G' | 'g')) if bytes => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .map(Some)
        .ok_or_else(|| format!("{key} takes a number or 'none', not '{v}'"))
}

/// A store's settings as the database holds them (defaults if never set).
pub fn load(tx: &Txn<'_>, store: StoreId) -> StoreResult<StoreSettings> {
    match tx.store_settings(store)? {
        None => Ok(StoreSettings::default()),
        Some(text) => StoreSettings::from_json(&text)
            .map_err(|e| StoreError::Corrupt(format!("store {store}: {e}"))),
    }
}

/// Replaces a store's settings, audited and announced to running mounts.
pub fn save(
    tx: &Txn<'_>,
    store: StoreId,
    settings: &StoreSettings,
    who: &Identity,
) -> StoreResult<()> {
    tx.set_store_settings(store, &settings.to_json(), who, now_ns())
}

/// The retention rules of every store that has any, from the database (the
/// input of [`crate::gc::collect`]).
pub fn retention_rules(db: &Db) -> StoreResult<Vec<(String, crate::retention::Retention)>> {
    db.read(|tx| {
        let mut out = Vec::new();
        for s in tx.stores()? {
            let r: crate::retention::Retention = load(tx, s.id)?.retention.into();
            if r != crate::retention::Retention::default() {
                out.push((s.name, r));
            }
        }
        Ok(out)
    })
}

/// Gives a store just created from its declaration its settings.
pub fn save_new(
    db: &Db,
    store: &crate::store::StoreRow,
    decl: &crate::config::StoreDecl,
    who: &Identity,
) -> StoreResult<()> {
    db.write(|tx| save(tx, store.id, &decl.settings(), who))
}

/// Copies the declarations of memfs.toml into stores that have no settings
/// yet (a database from before settings lived in it, or a store created
/// before its declaration was added). Settings already in the database win;
/// a declaration that differs from them is reported once in the log.
pub fn seed_from_config(db: &Db, config: &Config, who: &Identity) -> StoreResult<Vec<String>> {
    let mut seeded = Vec::new();
    for decl in &config.stores {
        let Some(store) = db.read(|tx| tx.store_by_name(&decl.name))? else {
            continue;
        };
        let wanted = decl.settings();
        let current = db.read(|tx| tx.store_settings(store.id))?;
        match current {
            None => {
                db.write(|tx| {
                    // Re-check inside the write: another process may have seeded it.
                    if tx.store_settings(store.id)?.is_none() {
                        save(tx, store.id, &wanted, who)?;
                    }
                    Ok::<_, StoreError>(())
                })?;
                seeded.push(decl.name.clone());
            }
            Some(text) => {
                if StoreSettings::from_json(&text).ok().as_ref() != Some(&wanted) {
                    tracing::info!(
                        store = %decl.name,
                        "memfs.toml declares other settings than the database holds; \
                         the database's apply (change them with `memfsctl store set`)"
                    );
                }
            }
        }
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_parses_each_key_and_refuses_unknown_ones() {
        let mut s = StoreSettings::default();
        s.set("writers=curator, bot-*").unwrap();
        s.set("readers=").unwrap();
        s.set("append_only=log/**").unwrap();
        s.set("pii=block").unwrap();
        s.set("max_file_bytes=1M").unwrap();
        s.set("max_files=10").unwrap();
        s.set("validate.**/*.json=json").unwrap();
        s.set("keep_versions=5").unwrap();
        s.set("legal_hold=true").unwrap();
        assert_eq!(s.retention.keep_versions, Some(5));
        assert!(s.retention.legal_hold);
        assert_eq!(s.writers, Some(vec!["curator".into(), "bot-*".into()]));
        assert_eq!(s.readers, Some(vec![]));
        assert_eq!(s.quota.max_file_bytes, Some(1 << 20));
        assert_eq!(s.policy.pii, PiiMode::Block);
        let p = s.policy();
        assert_eq!(p.append_only, vec!["log/**"]);
        assert_eq!(p.validate.len(), 1);
        s.set("writers=-").unwrap();
        s.set("validate.**/*.json=").unwrap();
        s.set("max_file_bytes=none").unwrap();
        assert_eq!(s.writers, None);
        assert!(s.policy.validate.is_empty());
        assert_eq!(s.quota.max_file_bytes, None);
        for bad in [
            "colour=red",
            "pii=maybe",
            "max_files=1K",
            "max_bytes=lots",
            "novalue",
        ] {
            assert!(s.set(bad).is_err(), "{bad}");
        }
        let back = StoreSettings::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
        assert!(StoreSettings::from_json(r#"{"writer": []}"#).is_err());
    }

    #[test]
    fn settings_round_trip_through_the_database_and_seed_once() {
        let db = Db::open_in_memory().unwrap();
        let who = Identity::new("t", "t", None);
        let kb = db
            .write(|tx| tx.create_store("kb", crate::store::Scope::Org, None, "", &who, 1))
            .unwrap();
        assert_eq!(
            db.read(|tx| load(tx, kb.id)).unwrap(),
            StoreSettings::default()
        );
        let config = Config::parse(
            "[[stores]]\nname = 'kb'\nwriters = ['curator']\n[stores.quota]\nmax_files = 3\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(seed_from_config(&db, &config, &who).unwrap(), vec!["kb"]);
        let got = db.read(|tx| load(tx, kb.id)).unwrap();
        assert_eq!(got.writers, Some(vec!["curator".into()]));
        assert_eq!(got.quota.max_files, Some(3));
        // Changed in the database: a second seeding leaves it alone.
        let mut changed = got.clone();
        changed.set("max_files=5").unwrap();
        db.write(|tx| save(tx, kb.id, &changed, &who)).unwrap();
        assert!(seed_from_config(&db, &config, &who).unwrap().is_empty());
        assert_eq!(
            db.read(|tx| load(tx, kb.id)).unwrap().quota.max_files,
            Some(5)
        );
        let ops: Vec<String> = db
            .read(|tx| tx.audit_entries(&Default::default()))
            .unwrap()
            .into_iter()
            .map(|e| e.op)
            .collect();
        assert_eq!(ops.iter().filter(|o| *o == "store-settings").count(), 2);
    }
}

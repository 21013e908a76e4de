//! Stores as people and platforms manage them: list, look up, create (with a
//! unique mount slug), describe, archive, delete, and their settings. Only an
//! admin changes a store; a store a principal may not see does not exist for
//! it (not found, so its existence does not leak).

use super::page::{self, Page};
use super::{Ops, Principal};
use crate::error::{OpError, OpResult, StoreError};
use crate::ids::now_ns;
use crate::settings::{self, StoreSettings};
use crate::store::{Scope, StoreInfo, StoreRow};
use std::collections::BTreeMap;

/// A new store.
#[derive(Clone, Debug, Default)]
pub struct NewStore {
    /// The mount slug; derived from `title` when `None` (the API's rule).
    pub slug: Option<String>,
    pub title: Option<String>,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    pub scope: Option<Scope>,
    pub owner: Option<String>,
}

/// Which stores to list.
#[derive(Clone, Debug, Default)]
pub struct StoreQuery {
    pub include_archived: bool,
    pub created_gte_ns: Option<i64>,
    pub created_lte_ns: Option<i64>,
    pub limit: Option<i64>,
    pub page: Option<String>,
}

/// A change of a store's descriptive fields. `metadata` entries set to
/// `None` remove the key; keys left out keep their values.
#[derive(Clone, Debug, Default)]
pub struct StorePatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, Option<String>>>,
}

pub const MAX_TITLE_CHARS: usize = 255;
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
pub const MAX_METADATA_PAIRS: usize = 16;

/// The mount slug for a display name: lowercased, each run of characters
/// other than ASCII letters and digits made one `-`, trimmed to memfs's store
/// name rule (`[a-z0-9][a-z0-9-]{0,62}`).
pub fn slug_of(title: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    let mut s: String = out.trim_matches('-').chars().take(63).collect();
    while s.ends_with('-') {
        s.pop();
    }
    if s.is_empty() {
        "store".to_string()
    } else {
        s
    }
}

fn check_title(t: &str) -> OpResult<()> {
    let n = t.chars().count();
    if n == 0 || n > MAX_TITLE_CHARS {
        return Err(OpError::Invalid(format!(
            "name must be 1 to {MAX_TITLE_CHARS} characters, not {n}"
        )));
    }
    if t.chars().any(char::is_control) {
        return Err(OpError::Invalid(
            "name must not contain control characters".into(),
        ));
    }
    Ok(())
}

fn check_description(d: &str) -> OpResult<()> {
    let n = d.chars().count();
    if n > MAX_DESCRIPTION_CHARS {
        return Err(OpError::Invalid(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters, not {n}"
        )));
    }
    Ok(())
}

/// The API's metadata limits: at most 16 pairs, keys of 1 to 64 characters,
/// values of at most 512.
pub fn check_metadata(m: &BTreeMap<String, String>) -> OpResult<()> {
    if m.len() > MAX_METADATA_PAIRS {
        return Err(OpError::InvalidMetadata(format!(
            "metadata may hold at most {MAX_METADATA_PAIRS} pairs, not {}",
            m.len()
        )));
    }
    for (k, v) in m {
        let kn = k.chars().count();
        if kn == 0 || kn > 64 {
            return Err(OpError::InvalidMetadata(format!(
                "metadata keys must be 1 to 64 characters ({kn} given)"
            )));
        }
        if v.chars().count() > 512 {
            return Err(OpError::InvalidMetadata(format!(
                "the value of metadata key '{k}' is longer than 512 characters"
            )));
        }
    }
    Ok(())
}

fn time_of(s: &StoreRow) -> String {
    s.created_ns.to_string()
}

impl Ops {
    /// A store by API id (`memstore_...`) or slug, if `p` may see it.
    pub fn store(&self, p: &Principal, id: &str) -> OpResult<(StoreRow, StoreSettings)> {
        let found = self.read(|tx| {
            let row = if id.starts_with("memstore_") {
                tx.store_by_api_id(id)?
            } else {
                tx.store_by_name(id)?
            };
            match row {
                Some(r) => {
                    let set = settings::load(tx, r.id)?;
                    Ok(Some((r, set)))
                }
                None => Ok(None),
            }
        })?;
        match found {
            Some((r, set)) if p.may_see(&r, &set) => Ok((r, set)),
            _ => Err(OpError::NotFound(format!("no memory store '{id}'"))),
        }
    }

    /// The stores `p` may see, oldest first, a page at a time.
    pub fn list_stores(&self, p: &Principal, q: &StoreQuery) -> OpResult<Page<StoreRow>> {
        let limit = page::limit(q.limit, 20, 100)?;
        let after = match &q.page {
            Some(t) => {
                let f = page::decode("st", t)?;
                let ns: i64 = f
                    .first()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| OpError::Invalid("invalid page cursor".into()))?;
                Some((ns, f.get(1).cloned().unwrap_or_default()))
            }
            None => None,
        };
        let all = self.read(|tx| {
            tx.stores()?
                .into_iter()
                .map(|r| settings::load(tx, r.id).map(|s| (r, s)))
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        let mut rows: Vec<StoreRow> = all
            .into_iter()
            .filter(|(r, s)| p.may_see(r, s))
            .map(|(r, _)| r)
            .filter(|r| q.include_archived || !r.archived)
            .filter(|r| q.created_gte_ns.is_none_or(|t| r.created_ns >= t))
            .filter(|r| q.created_lte_ns.is_none_or(|t| r.created_ns <= t))
            .collect();
        rows.sort_by(|a, b| (a.created_ns, &a.api_id).cmp(&(b.created_ns, &b.api_id)));
        if let Some((ns, id)) = after {
            rows.retain(|r| (r.created_ns, r.api_id.as_str()) > (ns, id.as_str()));
        }
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_page = match (more, rows.last()) {
            (true, Some(last)) => Some(page::encode("st", &[&time_of(last), &last.api_id])),
            _ => None,
        };
        Ok(Page {
            data: rows,
            next_page,
        })
    }

    /// Creates a store. Only an admin may. An org store by default.
    pub fn create_store(&self, p: &Principal, ns: &NewStore) -> OpResult<StoreRow> {
        p.require_admin("create stores")?;
        if let Some(t) = &ns.title {
            check_title(t)?;
        }
        check_description(&ns.description)?;
        check_metadata(&ns.metadata)?;
        let scope = ns.scope.unwrap_or(Scope::Org);
        if scope == Scope::Org && ns.owner.is_some() {
            return Err(OpError::Invalid(
                "an owner applies to user stores only".into(),
            ));
        }
        let now = now_ns();
        let row = self.db().write(|tx| {
            let slug = match &ns.slug {
                Some(s) => s.clone(),
                None => {
                    let base = slug_of(ns.title.as_deref().unwrap_or("store"));
                    let mut slug = base.clone();
                    let mut n = 2;
                    while tx.store_by_name(&slug)?.is_some() {
                        let suffix = format!("-{n}");
                        let keep = 63 - suffix.len();
                        let stem: String = base.chars().take(keep).collect();
                        slug = format!("{}{suffix}", stem.trim_end_matches('-'));
                        n += 1;
                    }
                    slug
                }
            };
            let row = tx.create_store(
                &slug,
                scope,
                ns.owner.as_deref(),
                &ns.description,
                &p.who,
                now,
            )?;
            if ns.title.is_some() || !ns.metadata.is_empty() {
                let info = StoreInfo {
                    title: ns.title.clone().map(Some),
                    description: None,
                    metadata: Some(ns.metadata.clone()),
                };
                tx.update_store_info(row.id, &info, &p.who, now)?;
            }
            settings::save(tx, row.id, &StoreSettings::default(), &p.who)?;
            tx.store_by_id(row.id)?
                .ok_or_else(|| StoreError::Corrupt("new store vanished".into()))
        });
        row.map_err(|e| match e {
            StoreError::Exists(m) => OpError::Conflict(format!("{m} already exists")),
            e => e.into(),
        })
    }

    /// Changes a store's name, description or metadata. Only an admin may;
    /// an archived store cannot be changed.
    pub fn update_store(&self, p: &Principal, id: &str, patch: &StorePatch) -> OpResult<StoreRow> {
        p.require_admin("change stores")?;
        let (row, _) = self.store(p, id)?;
        if row.archived {
            return Err(OpError::Invalid(format!(
                "memory store '{id}' is archived and cannot be updated"
            )));
        }
        if let Some(t) = &patch.title {
            check_title(t)?;
        }
        if let Some(d) = &patch.description {
            check_description(d)?;
        }
        let metadata = match &patch.metadata {
            None => None,
            Some(changes) => {
                let mut m = row.metadata.clone();
                for (k, v) in changes {
                    match v {
                        Some(v) => {
                            m.insert(k.clone(), v.clone());
                        }
                        None => {
                            m.remove(k);
                        }
                    }
                }
                check_metadata(&m)?;
                Some(m)
            }
        };
        let info = StoreInfo {
            title: patch.title.clone().map(Some),
            description: patch.description.clone(),
            metadata,
        };
        self.db()
            .write(|tx| {
                tx.update_store_info(row.id, &info, &p.who, now_ns())?;
                tx.store_by_id(row.id)?
                    .ok_or_else(|| StoreError::NotFound(format!("store '{id}'")))
            })
            .map_err(OpError::from)
    }

    /// Archives a store (one way here; memfsctl can unarchive). Idempotent.
    pub fn archive_store(&self, p: &Principal, id: &str) -> OpResult<StoreRow> {
        p.require_admin("archive stores")?;
        let (row, _) = self.store(p, id)?;
        if row.archived {
            return Ok(row);
        }
        self.set_archived(p, &row, true)
    }

    /// Archives or unarchives a store (memfsctl).
    pub fn set_archived(
        &self,
        p: &Principal,
        row: &StoreRow,
        archived: bool,
    ) -> OpResult<StoreRow> {
        p.require_admin("archive stores")?;
        self.db()
            .write(|tx| {
                tx.set_archived(row.id, archived, &p.who, now_ns())?;
                tx.store_by_id(row.id)?
                    .ok_or_else(|| StoreError::NotFound(format!("store '{}'", row.name)))
            })
            .map_err(OpError::from)
    }

    /// Deletes a store with all its memories and versions (the audit log
    /// keeps a tombstone). Only an admin may.
    pub fn delete_store(&self, p: &Principal, id: &str) -> OpResult<StoreRow> {
        p.require_admin("delete stores")?;
        let (row, _) = self.store(p, id)?;
        self.db()
            .write(|tx| tx.delete_store(&row, &p.who, now_ns()))
            .map_err(OpError::from)?;
        Ok(row)
    }

    /// A store's settings. Only an admin may read them (they name who may
    /// attach it).
    pub fn store_settings(&self, p: &Principal, id: &str) -> OpResult<(StoreRow, StoreSettings)> {
        p.require_admin("read store settings")?;
        self.store(p, id)
    }

    /// Replaces a store's settings (audited; running mounts reload them).
    pub fn set_store_settings(
        &self,
        p: &Principal,
        id: &str,
        new: &StoreSettings,
    ) -> OpResult<StoreSettings> {
        p.require_admin("change store settings")?;
        let (row, _) = self.store(p, id)?;
        if row.is_draft() {
            return Err(OpError::Invalid(format!(
                "'{}' is a draft: it follows the settings of its store '{}' (change those)",
                row.name,
                row.dir_name()
            )));
        }
        for glob in new.policy.validate.keys() {
            if glob.is_empty() {
                return Err(OpError::Invalid("an empty validate glob".into()));
            }
        }
        self.db()
            .write(|tx| settings::save(tx, row.id, new, &p.who))
            .map_err(OpError::from)?;
        Ok(new.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_api_rule_within_memfs_names() {
        assert_eq!(slug_of("User Preferences"), "user-preferences");
        assert_eq!(slug_of("  Team KB!! (v2) "), "team-kb-v2");
        assert_eq!(slug_of("Ünïcode"), "n-code");
        assert_eq!(slug_of("!!!"), "store");
        assert_eq!(slug_of(&"a".repeat(100)).len(), 63);
        for t in ["User Preferences", "!!!", "x-", &"ab-".repeat(40)] {
            crate::store::validate_store_name(&slug_of(t)).unwrap();
        }
    }

    #[test]
    fn metadata_limits() {
        let mut m = BTreeMap::new();
        m.insert("k".to_string(), "v".repeat(512));
        check_metadata(&m).unwrap();
        m.insert("k".to_string(), "v".repeat(513));
        assert!(matches!(
            check_metadata(&m),
            Err(OpError::InvalidMetadata(_))
        ));
        let many: BTreeMap<String, String> =
            (0..17).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_metadata(&many).is_err());
        let mut empty_key = BTreeMap::new();
        empty_key.insert(String::new(), "v".to_string());
        assert!(check_metadata(&empty_key).is_err());
    }
}

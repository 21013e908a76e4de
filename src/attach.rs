//! Who may attach which store, and how: user stores only by their owner, org
//! stores by their allow-lists (from the store's settings in the database),
//! archived stores read-only on request only. Also the schema templates a new
//! store gets.

use crate::config::StoreDecl;
use crate::error::{OpError, OpResult, StoreError};
use crate::fs::{matches_any, Attached, Caller, FsOptions, MemFs, OpenMode};
use crate::ids::{Identity, Ino};
use crate::settings::{self, StoreSettings};
use crate::store::{Db, Scope, StoreRow};
use std::sync::Arc;

/// Why stores cannot be attached as asked.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{0}")]
    NotFound(String),
    /// The identity may not attach the store, or not that way.
    #[error("{0}")]
    Denied(String),
    /// The request itself is wrong (a store named twice, nothing visible).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AttachError> for OpError {
    fn from(e: AttachError) -> Self {
        match e {
            AttachError::NotFound(m) => OpError::NotFound(m),
            AttachError::Denied(m) => OpError::Forbidden(m),
            AttachError::Invalid(m) => OpError::Invalid(m),
            AttachError::Store(s) => OpError::Store(s),
        }
    }
}

/// A store requested on the command line: `NAME` (as allowed), `NAME:ro`, or
/// `NAME:rw` (write access required).
#[derive(Clone, Debug)]
pub struct StoreSpec {
    pub name: String,
    pub read_only: bool,
    pub require_write: bool,
}

impl std::str::FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, ro, rw) = match s.rsplit_once(':') {
            Some((n, "ro")) => (n, true, false),
            Some((n, "rw")) => (n, false, true),
            Some((_, m)) => return Err(format!("unknown access mode '{m}' (use :ro or :rw)")),
            None => (s, false, false),
        };
        crate::store::validate_store_name(name).map_err(|e| e.to_string())?;
        Ok(StoreSpec {
            name: name.to_string(),
            read_only: ro,
            require_write: rw,
        })
    }
}

/// What an identity may do with a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Right {
    Write,
    Read,
    /// Not at all, and why.
    Denied(String),
}

/// The identity's right on `store` under its settings.
pub fn right(store: &StoreRow, settings: &StoreSettings, who: &Identity) -> Right {
    match store.scope {
        Scope::User => {
            if store.owner.is_some() && store.owner == who.user {
                Right::Write
            } else {
                Right::Denied(format!(
                    "store '{}' is private to user '{}'; this mount's user is {}",
                    store.name,
                    store.owner.as_deref().unwrap_or("?"),
                    who.user
                        .as_deref()
                        .map_or("not set".to_string(), |u| format!("'{u}'"))
                ))
            }
        }
        Scope::Org => match settings {
            d if d.readers.is_some() || d.writers.is_some() => {
                let writers = d.writers.as_deref().unwrap_or_default();
                let readers = d.readers.as_deref().unwrap_or_default();
                if matches_any(writers, &who.agent) {
                    Right::Write
                } else if matches_any(readers, &who.agent) {
                    Right::Read
                } else {
                    Right::Denied(format!(
                        "agent '{}' may not attach store '{}' (not in its readers or writers)",
                        who.agent, store.name
                    ))
                }
            }
            _ => Right::Write,
        },
    }
}

/// Decides which stores a mount attaches: the requested ones (each checked), or
/// every store the identity may see. Agents that may only read get read-only
/// attachments.
pub fn resolve_stores(
    db: &Db,
    who: &Identity,
    wanted: &[StoreSpec],
) -> Result<Vec<Attached>, AttachError> {
    let all: Vec<(StoreRow, StoreSettings)> = db.read(|tx| {
        tx.stores()?
            .into_iter()
            .map(|s| settings::load(tx, s.id).map(|set| (s, set)))
            .collect::<Result<Vec<_>, StoreError>>()
    })?;
    let attach = |(store, set): &(StoreRow, StoreSettings), read_only: bool| {
        Attached::new(store.clone(), read_only, set.policy())
    };
    if wanted.is_empty() {
        let out: Vec<Attached> = all
            .iter()
            .filter(|(s, _)| !s.archived)
            .filter_map(|e| match right(&e.0, &e.1, who) {
                Right::Write => Some(attach(e, false)),
                Right::Read => Some(attach(e, true)),
                Right::Denied(_) => None,
            })
            .collect();
        if out.is_empty() {
            return Err(AttachError::Invalid(
                "no store is visible to this identity (create one with `memfsctl store create`)"
                    .into(),
            ));
        }
        return Ok(out);
    }
    let mut out: Vec<Attached> = Vec::new();
    for w in wanted {
        if out.iter().any(|a| a.store.name == w.name) {
            return Err(AttachError::Invalid(format!(
                "store '{}' is named twice",
                w.name
            )));
        }
        let Some(entry) = all.iter().find(|(s, _)| s.name == w.name) else {
            return Err(AttachError::NotFound(format!(
                "no store named '{}' (see `memfsctl store list`)",
                w.name
            )));
        };
        let store = &entry.0;
        let read_only = match right(store, &entry.1, who) {
            Right::Denied(why) => return Err(AttachError::Denied(why)),
            Right::Read if w.require_write => {
                return Err(AttachError::Denied(format!(
                    "agent '{}' may only read store '{}' (attach it as {}:ro)",
                    who.agent, w.name, w.name
                )))
            }
            Right::Read => true,
            Right::Write => w.read_only,
        };
        if store.archived && !w.read_only {
            return Err(AttachError::Denied(format!(
                "store '{}' is archived: attach it read-only ({}:ro) or unarchive it",
                w.name, w.name
            )));
        }
        out.push(attach(entry, read_only || store.archived));
    }
    Ok(out)
}

/// Reloads the settings of `store` into a running mount (after the change
/// feed reported a store-level change): the new policy, and whether the
/// mount's identity may still write the store.
pub fn refresh_settings(fs: &MemFs, store: crate::ids::StoreId) -> Result<(), StoreError> {
    let Some(att) = fs.attached().iter().find(|a| a.store.id == store) else {
        return Ok(());
    };
    let (row, set) = fs.db().read(|tx| {
        let row = tx.store_by_id(store)?;
        let set = settings::load(tx, store)?;
        Ok::<_, StoreError>((row, set))
    })?;
    let Some(row) = row else {
        return Ok(());
    };
    let may_write = right(&row, &set, fs.identity()) == Right::Write && !row.archived;
    tracing::info!(store = %row.name, may_write, "store settings reloaded");
    fs.update_store(att.store.id, set.policy(), may_write);
    Ok(())
}

/// Creates a new store's template directories and seed files, as `who`.
pub fn apply_template(
    db: &Arc<Db>,
    store: &StoreRow,
    decl: &StoreDecl,
    who: &Identity,
) -> OpResult<()> {
    if decl.template.is_empty() && decl.seed.is_empty() {
        return Ok(());
    }
    let fs = MemFs::new(
        db.clone(),
        who.clone(),
        vec![Attached::plain(store.clone(), false)],
        FsOptions::default(),
    );
    let me = Caller::default();
    let mkdir_p = |path: &str| -> OpResult<Ino> {
        let mut cur = store.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur = match fs.lookup(cur, part.as_bytes(), me) {
                Ok(a) => a.ino,
                Err(_) => {
                    fs.mkdir(cur, part.as_bytes(), 0o755, 0, me)
                        .map_err(|e| OpError::fs(format!("template directory '{path}'"), e))?
                        .ino
                }
            };
        }
        Ok(cur)
    };
    for dir in &decl.template {
        mkdir_p(dir)?;
    }
    for (path, content) in &decl.seed {
        let path = path.trim_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let parent = mkdir_p(dir)?;
        let mode = OpenMode {
            write: true,
            ..Default::default()
        };
        let (_, o) = fs
            .create(parent, name.as_bytes(), 0o644, 0, mode, me)
            .map_err(|e| OpError::fs(format!("seed file '{path}'"), e))?;
        let written = fs.write(o.fh, 0, content.as_bytes());
        let released = fs.release(o.fh);
        written
            .and(released.map(|_| 0))
            .map_err(|e| OpError::fs(format!("seed file '{path}'"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> crate::config::Config {
        crate::config::Config::parse(toml, std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn store_specs_parse() {
        let s: StoreSpec = "team-kb:ro".parse().unwrap();
        assert!(s.read_only && !s.require_write);
        let s: StoreSpec = "team-kb:rw".parse().unwrap();
        assert!(s.require_write);
        assert!("Team".parse::<StoreSpec>().is_err());
        assert!("kb:rx".parse::<StoreSpec>().is_err());
    }

    #[test]
    fn attach_rules() {
        let db = Db::open_in_memory().unwrap();
        let op = Identity::new("t", "t", None);
        db.write(|tx| {
            tx.create_store("kb", Scope::Org, None, "", &op, 1)?;
            tx.create_store("open", Scope::Org, None, "", &op, 1)?;
            tx.create_store("alice", Scope::User, Some("alice"), "", &op, 1)
        })
        .unwrap();
        let c = config(
            "[[stores]]\nname = 'kb'\nreaders = ['team-*']\nwriters = ['curator']\n\
             [stores.policy]\nappend_only = ['log/**']\n",
        );
        settings::seed_from_config(&db, &c, &op).unwrap();
        let who = |agent: &str, user: Option<&str>| Identity::new(agent, "s", user);
        // Default set: what each may see, read-only where only a reader.
        let got = resolve_stores(&db, &who("team-1", Some("alice")), &[]).unwrap();
        let mut names: Vec<(String, bool)> = got
            .iter()
            .map(|a| (a.store.name.clone(), a.read_only))
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ("alice".into(), false),
                ("kb".into(), true),
                ("open".into(), false)
            ]
        );
        assert_eq!(
            got.iter()
                .find(|a| a.store.name == "kb")
                .unwrap()
                .policy()
                .append_only,
            vec!["log/**"]
        );
        let cur = resolve_stores(&db, &who("curator", None), &["kb".parse().unwrap()]).unwrap();
        assert!(!cur[0].read_only);
        let err =
            resolve_stores(&db, &who("outsider", None), &["kb".parse().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("may not attach"), "{err}");
        let err =
            resolve_stores(&db, &who("team-1", None), &["kb:rw".parse().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("may only read"), "{err}");
        let err =
            resolve_stores(&db, &who("x", Some("bob")), &["alice".parse().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("private to user 'alice'"), "{err}");
        let err = resolve_stores(&db, &who("x", None), &["nope".parse().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("no store named 'nope'"), "{err}");
        // Archived: not attached by default, refused read-write, allowed read-only.
        let kb = db.read(|tx| tx.store_by_name("open")).unwrap().unwrap();
        db.write(|tx| tx.set_archived(kb.id, true, &op, 2)).unwrap();
        let got = resolve_stores(&db, &who("team-2", None), &[]).unwrap();
        assert!(got.iter().all(|a| a.store.name != "open"));
        let err = resolve_stores(&db, &who("y", None), &["open".parse().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("archived"), "{err}");
        let ro = resolve_stores(&db, &who("y", None), &["open:ro".parse().unwrap()]).unwrap();
        assert!(ro[0].read_only);
    }
}

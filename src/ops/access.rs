//! Who is asking, and what they may do: a principal (the identity changes are
//! attributed to, its role, and the stores it is limited to) and its rights
//! on a store. memfsctl on the database's host acts as an admin operator; an
//! API key as the identity and role it was made with.

use crate::attach::{right, Right};
use crate::error::{OpError, OpResult};
use crate::ids::Identity;
use crate::settings::StoreSettings;
use crate::store::{KeyRow, StoreRow};

/// What a principal may do at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read what its identity may attach.
    Reader,
    /// Also write it.
    Writer,
    /// Also manage stores, settings and keys, and redact, purge, forget and roll back.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> OpResult<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "writer" => Ok(Role::Writer),
            "reader" => Ok(Role::Reader),
            _ => Err(OpError::Invalid(format!(
                "role must be admin, writer or reader, not '{s}'"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }
}

/// Who is asking.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Principal {
    /// What changes are attributed to (a key's session is its id).
    pub who: Identity,
    pub role: Role,
    /// Store names it is limited to; `None`: every store it may otherwise see.
    pub stores: Option<Vec<String>>,
    /// The API key it authenticated with, if any.
    pub key_id: Option<String>,
    /// The key's name, for people.
    pub key_name: Option<String>,
    /// The identity allow-lists and store owners are checked against, when
    /// it is not `who`: a console session signed in with a key has the key's
    /// rights, while its changes are credited to the person (agent `console`).
    #[serde(skip)]
    pub rights_of: Option<Identity>,
}

impl Principal {
    /// The operator on the database's host (memfsctl): an admin over everything.
    pub fn operator(who: Identity) -> Principal {
        Principal {
            who,
            role: Role::Admin,
            stores: None,
            key_id: None,
            key_name: None,
            rights_of: None,
        }
    }

    /// What an API key acts as.
    pub fn from_key(k: &KeyRow) -> OpResult<Principal> {
        Ok(Principal {
            who: Identity::new(&k.agent, &k.id, k.user.as_deref()),
            role: Role::parse(&k.role)?,
            stores: k.stores.clone(),
            key_id: Some(k.id.clone()),
            key_name: Some(k.name.clone()),
            rights_of: None,
        })
    }

    /// The same principal with its changes attributed to `session` (a key
    /// naming the conversation it writes for, as `x-memfs-session` does over
    /// HTTP). A session may not pass for another actor: names starting with
    /// `apikey_` belong to keys (only the key's own id is accepted), and a
    /// session name is 1 to 128 characters without control characters.
    pub fn with_session(mut self, session: &str) -> OpResult<Principal> {
        use super::actor::KEY_SESSION_PREFIX;
        let s = session.trim();
        let n = s.chars().count();
        if n == 0 || n > 128 || s.chars().any(char::is_control) {
            return Err(OpError::Invalid(
                "a session name must be 1 to 128 characters without control characters".into(),
            ));
        }
        if s.starts_with(KEY_SESSION_PREFIX) && self.key_id.as_deref() != Some(s) {
            return Err(OpError::Invalid(format!(
                "session '{s}' is refused: names starting with '{KEY_SESSION_PREFIX}' belong to \
                 API keys, and changes made under one would be attributed to that key"
            )));
        }
        self.who.session = s.to_string();
        Ok(self)
    }

    /// The same principal, but only reading (a store attached read-only).
    pub fn reading(mut self) -> Principal {
        self.role = self.role.min(Role::Reader);
        self
    }

    /// This principal acting as `who` (what its changes are credited to),
    /// with the rights it has now.
    pub fn crediting(mut self, who: Identity) -> Principal {
        let rights = std::mem::replace(&mut self.who, who);
        self.rights_of.get_or_insert(rights);
        self
    }

    /// The identity its rights on stores are decided by.
    fn rights_identity(&self) -> &Identity {
        self.rights_of.as_ref().unwrap_or(&self.who)
    }

    /// A key limited to a store also reaches that store's drafts.
    fn in_scope(&self, store: &StoreRow) -> bool {
        self.stores.as_ref().is_none_or(|l| {
            l.contains(&store.name) || (store.is_draft() && l.iter().any(|n| n == store.dir_name()))
        })
    }

    /// Whether the store exists for this principal (otherwise it is 404: its
    /// existence does not leak).
    pub fn may_see(&self, store: &StoreRow, set: &StoreSettings) -> bool {
        self.in_scope(store)
            && (self.role == Role::Admin
                || !matches!(right(store, set, self.rights_identity()), Right::Denied(_)))
    }

    /// Whether it may change the store's memory (archived stores aside).
    pub fn may_write(&self, store: &StoreRow, set: &StoreSettings) -> bool {
        self.in_scope(store)
            && match self.role {
                Role::Admin => true,
                Role::Writer => {
                    right(store, set, self.rights_identity()) == Right::Write
                        && !self.drafted(store, set)
                }
                Role::Reader => false,
            }
    }

    /// Whether the store's drafts rule names this (non-admin) principal's
    /// agent or session: its writes belong in a draft, never in the store
    /// itself. A mount attaches the session's draft in the store's place;
    /// through the API and MCP over HTTP the draft is addressed by name.
    fn drafted(&self, store: &StoreRow, set: &StoreSettings) -> bool {
        !store.is_draft() && set.drafts.applies(&self.who.agent, &self.who.session)
    }

    /// Refuses making a draft of `store` unless `p` may write it, or could but
    /// for the drafts rule (a draft is where its writes belong).
    pub fn require_draft_maker(&self, store: &StoreRow, set: &StoreSettings) -> OpResult<()> {
        let drafted_writer = self.in_scope(store)
            && self.role == Role::Writer
            && right(store, set, self.rights_identity()) == Right::Write;
        if drafted_writer {
            return Ok(());
        }
        self.require_write(store, set)
    }

    /// Refuses unless an admin: `what` says what was refused.
    pub fn require_admin(&self, what: &str) -> OpResult<()> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(OpError::Forbidden(format!(
                "only an admin key may {what} (this key's role is {})",
                self.role.as_str()
            )))
        }
    }

    /// Refuses writing `store` unless allowed, saying why.
    pub fn require_write(&self, store: &StoreRow, set: &StoreSettings) -> OpResult<()> {
        if self.may_write(store, set) {
            return Ok(());
        }
        if self.role == Role::Writer && self.drafted(store, set) {
            return Err(OpError::Forbidden(format!(
                "store '{}' sends the writes of agent '{}' (session '{}') to a draft by its \
                 drafts rule: write to a draft of it, such as '{}@{}' (`memfsctl draft list {}`)",
                store.name,
                self.who.agent,
                self.who.session,
                store.name,
                crate::ops::drafts::session_draft_name(&self.who.session),
                store.name
            )));
        }
        Err(OpError::Forbidden(match self.role {
            Role::Reader => format!(
                "agent '{}' may only read store '{}' (a reader key, or attached read-only)",
                self.rights_identity().agent,
                store.name
            ),
            _ => format!(
                "agent '{}' may only read store '{}' (see its writers)",
                self.rights_identity().agent,
                store.name
            ),
        }))
    }
}

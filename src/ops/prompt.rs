//! What to tell an agent about its memory: for an identity (agent, user) and
//! the stores it would attach, where each is mounted, its mode, description,
//! policies and quotas. The note's wording is the front end's; this is the
//! data. An admin may ask for any identity; anyone else only for its own.

use super::{Ops, Principal, Role};
use crate::attach::{resolve_stores, StoreSpec};
use crate::error::{OpError, OpResult};
use crate::ids::Identity;
use serde::Serialize;

/// One store as an agent would have it.
#[derive(Clone, Debug, Serialize)]
pub struct StoreNote {
    pub name: String,
    /// Where it is mounted (ends with `/`).
    pub path: String,
    /// `read-only` or `read-write`.
    pub mode: &'static str,
    pub scope: &'static str,
    pub owner: Option<String>,
    pub description: String,
    pub read_only_paths: Vec<String>,
    pub read_only_writers: Vec<String>,
    pub append_only_paths: Vec<String>,
    pub max_file_bytes: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_files: Option<u64>,
}

/// Everything a prompt note says.
#[derive(Clone, Debug, Serialize)]
pub struct PromptNote {
    /// Without a trailing `/`.
    pub mountpoint: String,
    pub agent: String,
    pub user: Option<String>,
    pub stores: Vec<StoreNote>,
}

impl Ops {
    /// The stores `agent` (acting for `user`) would attach at `mountpoint`
    /// (those in `stores`, or every one it may see), and their rules.
    pub fn prompt(
        &self,
        p: &Principal,
        agent: &str,
        user: Option<&str>,
        stores: &[StoreSpec],
        mountpoint: &str,
    ) -> OpResult<PromptNote> {
        let own = agent == p.who.agent && user == p.who.user.as_deref();
        if p.role != Role::Admin && !own {
            return Err(OpError::Forbidden(
                "only an admin may describe another identity's memory".into(),
            ));
        }
        let who = Identity::new(agent, "-", user);
        let mp = mountpoint.trim_end_matches('/').to_string();
        let notes = resolve_stores(self.db(), &who, stores)?
            .iter()
            .filter(|a| p.stores.as_ref().is_none_or(|l| l.contains(&a.store.name)))
            .map(|a| {
                let policy = a.policy();
                StoreNote {
                    name: a.store.name.clone(),
                    path: format!("{mp}/{}/", a.store.name),
                    mode: if a.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    },
                    scope: a.store.scope.as_str(),
                    owner: a.store.owner.clone(),
                    description: a.store.description.clone(),
                    read_only_paths: policy.read_only.clone(),
                    read_only_writers: policy.read_only_writers.clone(),
                    append_only_paths: policy.append_only.clone(),
                    max_file_bytes: policy.quota.max_file_bytes,
                    max_bytes: policy.quota.max_bytes,
                    max_files: policy.quota.max_files,
                }
            })
            .collect();
        Ok(PromptNote {
            mountpoint: mp,
            agent: agent.to_string(),
            user: user.map(str::to_string),
            stores: notes,
        })
    }
}

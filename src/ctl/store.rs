//! `memfsctl store create|list|show|set|archive|unarchive|delete|shred`.

use super::Ctx;
use crate::ops::stores::NewStore;
use crate::settings::StoreSettings;
use crate::store::{Scope, StoreRow};
use anyhow::{bail, Result};

pub fn create(
    ctx: &Ctx,
    name: &str,
    scope: &str,
    owner: Option<&str>,
    description: &str,
) -> Result<()> {
    let scope = Scope::parse(scope)?;
    if scope == Scope::Org && owner.is_some() {
        bail!("--owner applies to user stores only");
    }
    let ns = NewStore {
        slug: Some(name.to_string()),
        description: description.to_string(),
        scope: Some(scope),
        owner: owner.map(str::to_string),
        ..Default::default()
    };
    // A store the config declares gets its settings, template directories
    // and seed files.
    let row = ctx
        .ops
        .create_declared_store(&ctx.p, &ns, ctx.config.store(name))?;
    ctx.emit(&row, || {
        format!("created {} store '{}'", row.scope.as_str(), row.name)
    })
}

pub fn list(ctx: &Ctx) -> Result<()> {
    let rows = ctx.ops.visible_stores(&ctx.p)?;
    ctx.emit(&rows, || {
        let mut out = format!(
            "{:<24} {:<5} {:<16} {:<8} {:<33} DESCRIPTION\n",
            "NAME", "SCOPE", "OWNER", "STATE", "API ID"
        );
        for r in &rows {
            out.push_str(&format!(
                "{:<24} {:<5} {:<16} {:<8} {:<33} {}\n",
                r.name,
                r.scope.as_str(),
                r.owner.as_deref().unwrap_or("-"),
                state(r),
                r.api_id,
                r.description
            ));
        }
        out
    })
}

fn state(r: &StoreRow) -> &'static str {
    match (r.shredded, r.archived) {
        (true, _) => "shredded",
        (false, true) => "archived",
        (false, false) => "active",
    }
}

/// A setting's word as memfs.toml writes it (`block`, `json`).
fn word<T: serde::Serialize + std::fmt::Debug>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{v:?}"),
    }
}

/// The content rules, for people.
fn rules(set: &StoreSettings) -> (String, String) {
    let validate = if set.policy.validate.is_empty() {
        "-".to_string()
    } else {
        set.policy
            .validate
            .iter()
            .map(|(glob, f)| format!("{glob} = {}", word(f)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    (word(&set.policy.pii), validate)
}

pub fn show(ctx: &Ctx, name: &str) -> Result<()> {
    let v = ctx.ops.store_details(&ctx.p, name)?;
    ctx.emit(&v, || {
        let list = |l: &[String]| if l.is_empty() { "-".to_string() } else { l.join(", ") };
        let opt = |o: &Option<Vec<String>>| o.as_deref().map_or("(everyone)".to_string(), list);
        let num = |o: Option<u64>| o.map_or("unlimited".to_string(), |n| n.to_string());
        let (pii, validate) = rules(&v.settings);
        format!(
            "name:         {}\napi id:       {}\nscope:        {}\nowner:        {}\ndescription:  {}\nstate:        {}\nencrypted:    {}\ncreated:      {}\nfiles:        {} ({} bytes)\nversions:     {} ({} bytes of history)\nreaders:      {}\nwriters:      {}\nread-only:    {} (writable by: {})\nappend-only:  {}\nquota:        file {} bytes, total {} bytes, {} files\npii:          {}\nvalidate:     {}\n",
            v.row.name,
            v.row.api_id,
            v.row.scope.as_str(),
            v.row.owner.as_deref().unwrap_or("-"),
            v.row.description,
            state(&v.row),
            if v.row.encrypted { "yes (XChaCha20-Poly1305, own key)" } else { "no" },
            v.created,
            v.files,
            v.bytes,
            v.versions,
            v.history_bytes,
            opt(&v.readers),
            opt(&v.writers),
            list(&v.read_only_paths),
            list(&v.read_only_writers),
            list(&v.append_only_paths),
            num(v.max_file_bytes),
            num(v.max_bytes),
            num(v.max_files),
            pii,
            validate,
        )
    })
}

/// `memfsctl store set NAME KEY=VALUE...`: changes settings, audited; running
/// mounts pick them up from the change feed.
pub fn set(ctx: &Ctx, name: &str, assignments: &[String]) -> Result<()> {
    let set = ctx.ops.assign_store_settings(&ctx.p, name, assignments)?;
    ctx.emit(&set, || {
        format!(
            "updated the settings of store '{name}' ({}); running mounts apply them at once",
            assignments.join(", ")
        )
    })
}

pub fn set_archived(ctx: &Ctx, name: &str, archived: bool) -> Result<()> {
    ctx.ops.change_archived(&ctx.p, name, archived)?;
    ctx.emit(&serde_json::json!({"store": name, "archived": archived}), || {
        if archived {
            format!("archived '{name}': read-only for everyone; `memfsctl store unarchive {name}` reverses it")
        } else {
            format!("unarchived '{name}'")
        }
    })
}

pub fn delete(ctx: &Ctx, name: &str, yes: bool) -> Result<()> {
    // Looked up first, so a wrong name says so rather than asking for --yes.
    ctx.ops.visible_store(&ctx.p, name)?;
    if !yes {
        bail!("deleting store '{name}' removes all its files and versions for good; add --yes to confirm");
    }
    ctx.ops.delete_store(&ctx.p, name)?;
    ctx.emit(&serde_json::json!({"store": name, "deleted": true}), || {
        format!("deleted store '{name}' (the audit log keeps a tombstone)")
    })
}

pub fn shred(ctx: &Ctx, name: &str, yes: bool) -> Result<()> {
    ctx.ops.visible_store(&ctx.p, name)?;
    if !yes {
        bail!("shredding store '{name}' destroys its key: every version becomes unreadable, also in backups of the database; add --yes to confirm");
    }
    ctx.ops.shred_store(&ctx.p, name)?;
    ctx.emit(&serde_json::json!({"store": name, "shredded": true}), || {
        format!("crypto-shredded store '{name}': its key is destroyed, its content is unrecoverable (also in copies of the database); it is archived")
    })
}

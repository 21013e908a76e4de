//! `memfsctl store create|list|show|archive|unarchive|delete|shred`.

use super::Ctx;
use crate::attach::apply_template;
use crate::ids::now_ns;
use crate::store::{Scope, StoreRow};
use anyhow::{anyhow, bail, Result};

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
    let row = ctx
        .db
        .write(|tx| tx.create_store(name, scope, owner, description, &ctx.who, now_ns()))?;
    // A store the config declares gets its template directories and seed files.
    if let Some(decl) = ctx.config.store(name) {
        apply_template(&ctx.db, &row, decl, &ctx.who)?;
    }
    ctx.emit(&row, || {
        format!("created {} store '{}'", row.scope.as_str(), row.name)
    })
}

pub fn list(ctx: &Ctx) -> Result<()> {
    let rows = ctx.db.read(|tx| tx.stores())?;
    ctx.emit(&rows, || {
        let mut out = format!(
            "{:<24} {:<5} {:<16} {:<8} DESCRIPTION\n",
            "NAME", "SCOPE", "OWNER", "STATE"
        );
        for r in &rows {
            out.push_str(&format!(
                "{:<24} {:<5} {:<16} {:<8} {}\n",
                r.name,
                r.scope.as_str(),
                r.owner.as_deref().unwrap_or("-"),
                state(r),
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

fn named(ctx: &Ctx, name: &str) -> Result<StoreRow> {
    ctx.db
        .read(|tx| tx.store_by_name(name))?
        .ok_or_else(|| anyhow!("no store named '{name}'"))
}

#[derive(serde::Serialize)]
struct StoreView {
    #[serde(flatten)]
    row: StoreRow,
    created: String,
    files: u64,
    bytes: u64,
    versions: u64,
    history_bytes: u64,
    readers: Option<Vec<String>>,
    writers: Option<Vec<String>>,
    read_only_paths: Vec<String>,
    read_only_writers: Vec<String>,
    append_only_paths: Vec<String>,
    max_file_bytes: Option<u64>,
    max_bytes: Option<u64>,
    max_files: Option<u64>,
}

pub fn show(ctx: &Ctx, name: &str) -> Result<()> {
    let row = named(ctx, name)?;
    let (live, bytes) = ctx.db.read(|tx| tx.store_usage(row.id))?;
    let versions = ctx.db.read(|tx| tx.store_versions(row.id))?;
    let (chunk_bytes, manifest_bytes, _) = ctx.db.read(|tx| tx.storage_stats(row.id))?;
    let set = ctx.db.read(|tx| crate::settings::load(tx, row.id))?;
    let decl = Some(&set);
    let v = StoreView {
        created: crate::timefmt::rfc3339(row.created_ns),
        files: live.saturating_sub(1),
        bytes,
        versions,
        history_bytes: chunk_bytes + manifest_bytes,
        readers: decl.and_then(|d| d.readers.clone()),
        writers: decl.and_then(|d| d.writers.clone()),
        read_only_paths: decl.map(|d| d.policy.read_only.clone()).unwrap_or_default(),
        read_only_writers: decl
            .map(|d| d.policy.read_only_writers.clone())
            .unwrap_or_default(),
        append_only_paths: decl
            .map(|d| d.policy.append_only.clone())
            .unwrap_or_default(),
        max_file_bytes: decl.and_then(|d| d.quota.max_file_bytes),
        max_bytes: decl.and_then(|d| d.quota.max_bytes),
        max_files: decl.and_then(|d| d.quota.max_files),
        row,
    };
    ctx.emit(&v, || {
        let list = |l: &[String]| if l.is_empty() { "-".to_string() } else { l.join(", ") };
        let opt = |o: &Option<Vec<String>>| o.as_deref().map_or("(everyone)".to_string(), list);
        let num = |o: Option<u64>| o.map_or("unlimited".to_string(), |n| n.to_string());
        format!(
            "name:         {}\nscope:        {}\nowner:        {}\ndescription:  {}\nstate:        {}\nencrypted:    {}\ncreated:      {}\nfiles:        {} ({} bytes)\nversions:     {} ({} bytes of history)\nreaders:      {}\nwriters:      {}\nread-only:    {} (writable by: {})\nappend-only:  {}\nquota:        file {} bytes, total {} bytes, {} files\n",
            v.row.name,
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
        )
    })
}

pub fn set_archived(ctx: &Ctx, name: &str, archived: bool) -> Result<()> {
    let row = named(ctx, name)?;
    if row.shredded && !archived {
        bail!("store '{name}' was crypto-shredded; it stays archived");
    }
    if row.archived == archived {
        bail!(
            "store '{name}' is already {}",
            if archived { "archived" } else { "active" }
        );
    }
    ctx.db
        .write(|tx| tx.set_archived(row.id, archived, &ctx.who, now_ns()))?;
    ctx.emit(&serde_json::json!({"store": name, "archived": archived}), || {
        if archived {
            format!("archived '{name}': read-only for everyone; `memfsctl store unarchive {name}` reverses it")
        } else {
            format!("unarchived '{name}'")
        }
    })
}

pub fn delete(ctx: &Ctx, name: &str, yes: bool) -> Result<()> {
    let row = named(ctx, name)?;
    if !yes {
        bail!("deleting store '{name}' removes all its files and versions for good; add --yes to confirm");
    }
    ctx.db
        .write(|tx| tx.delete_store(&row, &ctx.who, now_ns()))?;
    ctx.emit(&serde_json::json!({"store": name, "deleted": true}), || {
        format!("deleted store '{name}' (the audit log keeps a tombstone)")
    })
}

pub fn shred(ctx: &Ctx, name: &str, yes: bool) -> Result<()> {
    let row = named(ctx, name)?;
    if !yes {
        bail!("shredding store '{name}' destroys its key: every version becomes unreadable, also in backups of the database; add --yes to confirm");
    }
    if row.shredded {
        bail!("store '{name}' was already crypto-shredded");
    }
    // Deleted rows (the sealed data key) are overwritten, and the WAL is
    // truncated, so this file keeps no copy of the key either.
    ctx.db.secure_delete()?;
    ctx.db
        .write(|tx| tx.shred_store(&row, &ctx.who, now_ns()))?;
    ctx.db.checkpoint()?;
    ctx.emit(&serde_json::json!({"store": name, "shredded": true}), || {
        format!("crypto-shredded store '{name}': its key is destroyed, its content is unrecoverable (also in copies of the database); it is archived")
    })
}

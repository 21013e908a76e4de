//! `memfsctl backup PATH [--force]` and `memfsctl restore BACKUP --db NEWPATH`:
//! a consistent copy of the database while mounts write, and bringing one back
//! into a fresh database.

use super::Ctx;
use crate::config::Config;
use crate::interchange::progress::Progress;
use crate::store::backup::Copied;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;

/// Feeds page counts from the backup API into a terminal progress line.
fn pages_progress(label: &'static str, page_size: u64, on: bool) -> (Progress, u64, u64) {
    let p = if on {
        Progress::counting(label, "pages")
    } else {
        Progress::silent()
    };
    (p, 0, page_size)
}

/// The page size a SQLite file's header records (bytes 16-17, big-endian;
/// 1 means 65536), or 4096 if it cannot be read.
fn header_page_size(path: &Path) -> u64 {
    use std::io::Read;
    let mut head = [0u8; 18];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    match (read, u16::from_be_bytes([head[16], head[17]])) {
        (Ok(()), 1) => 65536,
        (Ok(()), n) if n >= 512 => u64::from(n),
        _ => 4096,
    }
}

pub fn backup(ctx: &Ctx, path: &Path, force: bool) -> Result<()> {
    let page_size = ctx.ops.db().space()?.page_size;
    let (mut progress, mut seen, page) = pages_progress("backup", page_size, !ctx.json);
    let start = Instant::now();
    let copied = ctx
        .ops
        .db()
        .backup_to(path, force, &mut |done, _total| {
            progress.add_many(done.saturating_sub(seen), done.saturating_sub(seen) * page);
            seen = done;
        })
        .with_context(|| format!("cannot back up to {}", path.display()))?;
    progress.finish();
    let secs = start.elapsed().as_secs_f64();
    let keys = key_note(&ctx.config, &copied);
    ctx.emit(
        &serde_json::json!({"backup": copied, "seconds": secs, "note": keys}),
        || {
            let mut out = format!(
                "backup written to {}: {:.1} MiB ({} pages, schema {}) in {secs:.1} s",
                copied.path.display(),
                copied.bytes as f64 / (1024.0 * 1024.0),
                copied.pages,
                copied.schema
            );
            if let Some(k) = &keys {
                out.push_str(&format!("\nnote: {k}"));
            }
            out
        },
    )
}

/// What to say about key material when stores are encrypted.
fn key_note(config: &Config, copied: &Copied) -> Option<String> {
    if copied.encrypted_stores.is_empty() {
        return None;
    }
    let (key, ring) = crate::keys::paths(config).map_or_else(
        || ("the key file".to_string(), "its keyring".to_string()),
        |(k, r)| (k.display().to_string(), r.display().to_string()),
    );
    Some(format!(
        "{} store(s) are encrypted ({}): their content in this database cannot be read \
         without the master key file ({key}) and the keyring ({ring}), which are not in the \
         database. Back them up too, and keep them apart from the database backups.",
        copied.encrypted_stores.len(),
        copied.encrypted_stores.join(", ")
    ))
}

/// Restores `backup` into the configured database path (`--db`), which must
/// be new or empty, then checks it opens (and unlocks, with encrypted stores).
pub fn restore(config: &Config, backup: &Path, json: bool) -> Result<()> {
    let target = &config.database;
    let (mut progress, mut seen, page) = pages_progress("restore", header_page_size(backup), !json);
    let start = Instant::now();
    let copied = crate::store::backup::restore(backup, target, &mut |done, _| {
        progress.add_many(done.saturating_sub(seen), done.saturating_sub(seen) * page);
        seen = done;
    })
    .with_context(|| {
        format!(
            "cannot restore {} into {}",
            backup.display(),
            target.display()
        )
    })?;
    progress.finish();
    let secs = start.elapsed().as_secs_f64();
    let keys = key_note(config, &copied);
    // A database with encrypted stores is refused without its keys: say so now.
    let unlock = crate::daemon::open_db(config, false).err();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "restored": copied,
                "from": backup,
                "seconds": secs,
                "note": keys,
                "unlock_error": unlock.as_ref().map(|e| format!("{e:#}")),
            }))?
        );
    } else {
        println!(
            "restored {} into {} ({:.1} MiB, schema {}) in {secs:.1} s; check it with \
             `memfsctl --db {} fsck` and `audit verify`",
            backup.display(),
            target.display(),
            copied.bytes as f64 / (1024.0 * 1024.0),
            copied.schema,
            target.display()
        );
        if let Some(k) = &keys {
            println!("note: {k}");
        }
    }
    if let Some(e) = unlock {
        bail!(
            "the restored database is in place but cannot be opened yet: {e:#}. Configure the \
             master key file and keyring it was made with (key_file / keyring in memfs.toml, \
             or MEMFS_KEY_FILE / MEMFS_KEYRING)"
        );
    }
    Ok(())
}

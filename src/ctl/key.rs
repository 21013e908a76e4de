//! `memfsctl key generate PATH`: a new master key for encryption at rest.

use anyhow::Result;
use std::path::Path;

pub fn generate(path: &Path, json: bool) -> Result<()> {
    crate::keys::generate(path)?;
    if json {
        println!("{}", serde_json::json!({ "key_file": path }));
    } else {
        println!(
            "wrote a new master key to {p}\n\
             set key_file = \"{p}\" in memfs.toml (or MEMFS_KEY_FILE={p}): stores created from then on are encrypted.\n\
             Keep a copy of it and of its keyring ({p}.keyring) somewhere safe: without both, encrypted stores are unreadable.",
            p = path.display()
        );
    }
    Ok(())
}

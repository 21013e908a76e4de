//! `memfsctl prompt`: a short note for an agent's system prompt saying where its
//! memory is mounted and what it may do there (the data from `ops/prompt.rs`,
//! the wording here).

use super::Ctx;
use crate::attach::StoreSpec;
use anyhow::Result;

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

pub fn run(
    ctx: &Ctx,
    agent: &str,
    user: Option<&str>,
    stores: &[StoreSpec],
    mountpoint: &str,
) -> Result<()> {
    let note = ctx.ops.prompt(&ctx.p, agent, user, stores, mountpoint)?;
    let mp = note.mountpoint.as_str();
    let notes = &note.stores;
    ctx.emit(&note, || {
        let mut out = format!(
            "Your persistent memory is mounted at {mp}/. Use ordinary file tools on it (cat, grep -r, echo >>, sed -i, mv); every change is kept as a version and attributed to you (agent {agent}).\n"
        );
        for n in notes {
            let private = n.owner.as_ref().map_or(String::new(), |o| format!(", private to user {o}"));
            let desc = if n.description.is_empty() { String::new() } else { format!(": {}", n.description) };
            out.push_str(&format!("- {} ({}{private}){desc}\n", n.path, n.mode));
            if !n.read_only_paths.is_empty() {
                let by = if n.read_only_writers.is_empty() {
                    String::new()
                } else {
                    format!(" (only {} may change them)", n.read_only_writers.join(", "))
                };
                out.push_str(&format!("  Read-only paths: {}{by}.\n", n.read_only_paths.join(", ")));
            }
            if !n.append_only_paths.is_empty() {
                out.push_str(&format!(
                    "  Append-only paths: {} (create files or append with >>; no overwrite, truncate, rename-over or delete).\n",
                    n.append_only_paths.join(", ")
                ));
            }
            let mut q = Vec::new();
            if let Some(b) = n.max_file_bytes {
                q.push(format!("files up to {}", human_bytes(b)));
            }
            if let Some(b) = n.max_bytes {
                q.push(format!("{} in all", human_bytes(b)));
            }
            if let Some(f) = n.max_files {
                q.push(format!("at most {f} entries"));
            }
            if !q.is_empty() {
                out.push_str(&format!("  Quota: {}.\n", q.join("; ")));
            }
        }
        out.push_str(&format!(
            "Past versions: {mp}/.memfs/history/STORE/PATH/ (one file per version) and {mp}/.memfs/at/TIME/STORE/ (a store as it was, e.g. TIME = 2h); {mp}/.memfs/whoami shows this mount's identity.\n"
        ));
        out
    })
}

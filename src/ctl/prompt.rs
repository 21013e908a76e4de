//! `memfsctl prompt`: a short note for an agent's system prompt saying where its
//! memory is mounted and what it may do there (the data from `ops/prompt.rs`,
//! the wording here), then ready-to-paste MCP client configuration for the
//! same identity and stores (Claude Desktop, Claude Code, `.mcp.json`, and
//! `/mcp` of `memfs serve` over HTTP), for agents without a mount.

use super::Ctx;
use crate::attach::StoreSpec;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// An absolute form of `p` (as given if it cannot be resolved).
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

/// The `memfs` binary beside this `memfsctl` (else `memfs` on the PATH).
fn memfs_binary() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("memfs")))
        .filter(|p| p.exists())
        .map_or_else(|| "memfs".to_string(), |p| p.display().to_string())
}

/// Quotes a word for a POSIX shell when it needs it.
fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The MCP client configurations for `agent` (acting for `user`, with
/// `stores`), as JSON: `claude_desktop`, `claude_code`, `mcp_json` and `http`.
fn mcp_config(
    ctx: &Ctx,
    config_path: Option<&Path>,
    agent: &str,
    user: Option<&str>,
    stores: &[StoreSpec],
) -> Value {
    let mut args = vec!["mcp".to_string(), "--agent".into(), agent.to_string()];
    if let Some(u) = user {
        args.extend(["--user".into(), u.to_string()]);
    }
    for s in stores {
        let mode = if s.read_only {
            ":ro"
        } else if s.require_write {
            ":rw"
        } else {
            ""
        };
        args.extend(["--store".into(), format!("{}{mode}", s.name)]);
    }
    let mut env = serde_json::Map::new();
    let config = config_path
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("MEMFS_CONFIG").map(PathBuf::from))
        .or_else(|| Some(PathBuf::from("memfs.toml")).filter(|p| p.exists()));
    if let Some(c) = config {
        env.insert(
            "MEMFS_CONFIG".into(),
            absolute(&c).display().to_string().into(),
        );
    }
    env.insert(
        "MEMFS_DB".into(),
        absolute(&ctx.config.database).display().to_string().into(),
    );
    let bin = memfs_binary();
    let stdio = json!({ "command": bin, "args": args, "env": env });
    let mut mcp_json = stdio.clone();
    mcp_json["type"] = "stdio".into();
    let mut cmd = vec![
        "claude".to_string(),
        "mcp".into(),
        "add".into(),
        "memfs".into(),
    ];
    for (k, v) in &env {
        cmd.extend([
            "-e".into(),
            sh(&format!("{k}={}", v.as_str().unwrap_or(""))),
        ]);
    }
    cmd.push("--".into());
    cmd.push(sh(&bin));
    cmd.extend(args.iter().map(|a| sh(a)));
    let listen = &ctx.config.server.listen;
    let http = (!listen.starts_with("unix:")).then(|| {
        let scheme = if ctx.config.server.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let host = listen
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace("[::]:", "[::1]:");
        let url = format!("{scheme}://{host}/mcp");
        json!({
            "url": url,
            "claude_code": format!(
                "claude mcp add --transport http memfs {url} --header \"Authorization: Bearer $MEMFS_API_KEY\""
            ),
            "mcp_json": { "mcpServers": { "memfs": {
                "type": "http",
                "url": url,
                "headers": { "Authorization": "Bearer ${MEMFS_API_KEY}" },
            }}},
        })
    });
    json!({
        "claude_desktop": { "mcpServers": { "memfs": stdio } },
        "claude_code": cmd.join(" "),
        "mcp_json": { "mcpServers": { "memfs": mcp_json } },
        "http": http,
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

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
    config_path: Option<&Path>,
    agent: &str,
    user: Option<&str>,
    stores: &[StoreSpec],
    mountpoint: &str,
) -> Result<()> {
    let note = ctx.ops.prompt(&ctx.p, agent, user, stores, mountpoint)?;
    let mcp = mcp_config(ctx, config_path, agent, user, stores);
    let mut out = serde_json::to_value(&note)?;
    out["mcp"] = mcp.clone();
    let mp = note.mountpoint.as_str();
    let notes = &note.stores;
    ctx.emit(&out, || {
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
            "Past versions: {mp}/.memfs/history/STORE/PATH/ (one file per version) and {mp}/.memfs/at/TIME/STORE/ (a store as it was, e.g. TIME = 2h); {mp}/.memfs/whoami shows this mount's identity; {mp}/.memfs/changes/live lists what other agents change as they change it (tail -f it).\n"
        ));
        out.push_str(&format!(
            "\n--- For the operator: the same memory over MCP, for agents without a mount ---\n\n\
             Claude Desktop (claude_desktop_config.json):\n{}\n\n\
             Claude Code:\n{}\n\n\
             .mcp.json (a project's):\n{}\n",
            pretty(&mcp["claude_desktop"]),
            mcp["claude_code"].as_str().unwrap_or_default(),
            pretty(&mcp["mcp_json"]),
        ));
        if let Some(url) = mcp["http"]["url"].as_str() {
            out.push_str(&format!(
                "\nOver HTTP from `memfs serve` at {url}, with a key (memfsctl apikey create NAME --role writer \
                 --agent {agent}; the session is the x-memfs-session header):\n{}\n{}\n",
                mcp["http"]["claude_code"].as_str().unwrap_or_default(),
                pretty(&mcp["http"]["mcp_json"]),
            ));
        }
        out
    })
}

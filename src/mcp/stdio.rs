//! `memfs mcp`: the MCP server over stdio, for a client that starts it as a
//! subprocess (Claude Desktop, Claude Code, `.mcp.json`). Like `memfs mount`
//! it is run by the trusted host side: the command line states the identity
//! and the stores, checked by the same rules as a mount (`attach.rs`), and
//! every change is attributed to that agent, session and user. Each change is
//! committed (and fsynced) before its answer. Logs go to stderr; stdout is the
//! protocol's.

use super::{Caller, MemfsMcp};
use crate::attach::{resolve_stores, StoreSpec};
use crate::config::Config;
use crate::fs::FsOptions;
use crate::ids::{now_ns, Identity};
use crate::ops::{Ops, Principal, Role};
use anyhow::{Context, Result};
use rmcp::ServiceExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Who `memfs mcp` acts as, and with which stores.
#[derive(Clone, Debug)]
pub struct McpArgs {
    pub agent: String,
    /// `None`: `mcp-TIME-PID`, one session per server process.
    pub session: Option<String>,
    pub user: Option<String>,
    pub stores: Vec<StoreSpec>,
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(1))
}

/// The server's caller and operations core for `args`, with the checks a
/// mount makes (reserved identities, who may attach what).
pub fn build(config: &Config, args: &McpArgs) -> Result<(Ops, Caller)> {
    let session = match &args.session {
        Some(s) => s.clone(),
        None => format!(
            "mcp-{}-{}",
            crate::timefmt::rfc3339(now_ns())
                .chars()
                .filter(char::is_ascii_digit)
                .take(14)
                .collect::<String>(),
            std::process::id()
        ),
    };
    let who = Identity::new(&args.agent, &session, args.user.as_deref());
    crate::daemon::check_mount_identity(&who)?;
    let db = crate::daemon::open_db(config, false)?;
    crate::settings::seed_from_config(&db, config, &who)?;
    let attached = resolve_stores(&db, &who, &args.stores)?;
    db.set_durable()?;
    let principal = Principal {
        who,
        role: Role::Writer,
        stores: Some(attached.iter().map(|a| a.store.name.clone()).collect()),
        key_id: None,
        key_name: None,
        rights_of: None,
    };
    // Stores asked for read-only (`NAME:ro`); those the identity may only
    // read are read-only anyway, and say why in their own words.
    let read_only = args
        .stores
        .iter()
        .filter(|s| s.read_only)
        .map(|s| s.name.clone())
        .collect();
    let mut ops = Ops::new(Arc::new(db)).with_fs_options(FsOptions {
        max_file_bytes: config.daemon.max_file_bytes,
        spill_bytes: config.daemon.spill_bytes,
        spill_dir: config.daemon.spill_dir.clone(),
        lease_ttl: secs(config.daemon.lease_ttl_secs),
        lease_wait: secs(config.daemon.lease_wait_secs),
    });
    ops.max_content_bytes = config.server.max_content_bytes;
    let caller = Caller {
        principal,
        read_only,
        since_ns: now_ns(),
    };
    Ok((ops, caller))
}

/// Serves MCP on stdin/stdout until the client closes stdin or a signal
/// comes (SIGINT/SIGTERM: exit 0).
pub fn run(config: &Config, args: &McpArgs) -> Result<()> {
    let (ops, caller) = build(config, args)?;
    tracing::info!(agent = %caller.principal.who.agent, session = %caller.principal.who.session,
        stores = ?caller.principal.stores, "serving MCP on stdio");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .thread_name("memfs-mcp")
        .build()
        .context("cannot start the MCP runtime")?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (stop_tx, stop_rx) = watch::channel(false);
        let server = MemfsMcp::new(ops, Some(caller), stop_rx);
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let signalled = async {
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = sigint.recv() => {}
            }
        };
        tokio::pin!(signalled);
        // A signal also ends a server whose client never started a session.
        let running = tokio::select! {
            r = server.serve(rmcp::transport::stdio()) => {
                r.context("the MCP client did not start a session")?
            }
            _ = &mut signalled => return Ok(()),
        };
        let cancel = running.cancellation_token();
        tokio::select! {
            r = running.waiting() => {
                r.context("the MCP session failed")?;
            }
            _ = &mut signalled => {
                let _ = stop_tx.send(true);
                cancel.cancel();
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    // Blocking reads of stdin may still be parked; they must not hold the exit.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

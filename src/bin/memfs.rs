//! The memfs daemon: `init`, `mount`, `umount`, `serve`, `mcp`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use memfs::attach::StoreSpec;
use memfs::config::Config;
use memfs::daemon::{self, MountRequest};
use memfs::ids::Identity;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "memfs",
    version,
    about = "Versioned, audited memory stores for AI agents, mounted with FUSE"
)]
struct Cli {
    /// Config file (default: $MEMFS_CONFIG, else ./memfs.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database file (overrides the config; also $MEMFS_DB).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the database and the stores memfs.toml declares (idempotent).
    Init,
    /// Mount stores at MOUNTPOINT and serve until SIGINT/SIGTERM.
    Mount {
        mountpoint: PathBuf,
        /// The agent every change is attributed to.
        #[arg(long)]
        agent: String,
        /// The agent's session id.
        #[arg(long)]
        session: String,
        /// The user the agent acts for (needed to attach that user's private stores).
        #[arg(long)]
        user: Option<String>,
        /// A store to attach, NAME or NAME:ro; repeatable (default: all visible stores).
        #[arg(long = "store")]
        stores: Vec<StoreSpec>,
    },
    /// Unmount MOUNTPOINT, also when its daemon died.
    Umount { mountpoint: PathBuf },
    /// Serve MCP over stdio (for Claude Desktop, Claude Code, .mcp.json):
    /// memfs's tools, the memory tool and every file as a resource, with the
    /// same versions, attribution and policies as a mount.
    Mcp {
        /// The agent every change is attributed to.
        #[arg(long)]
        agent: String,
        /// The agent's session id (default: mcp-TIME-PID, one per server process).
        #[arg(long)]
        session: Option<String>,
        /// The user the agent acts for (needed to attach that user's private stores).
        #[arg(long)]
        user: Option<String>,
        /// A store to attach, NAME or NAME:ro; repeatable (default: all visible stores).
        #[arg(long = "store")]
        stores: Vec<StoreSpec>,
    },
    /// Serve the HTTP API (the memory-store API and memfs's own endpoints)
    /// until SIGTERM/SIGINT.
    Serve {
        /// HOST:PORT or unix:PATH (default: [server] listen, 127.0.0.1:8420).
        #[arg(long)]
        listen: Option<String>,
        /// Allow plain HTTP on a non-loopback address (keys cross the network
        /// in the clear).
        #[arg(long)]
        insecure_plain_http: bool,
    },
}

fn run(cli: Cli) -> Result<()> {
    let config = || Config::load(cli.config.as_deref(), cli.db.as_deref());
    match cli.cmd {
        Cmd::Init => {
            let config = config()?;
            let created = daemon::init(&config)?;
            eprintln!(
                "memfs: database {} ready; {}",
                config.database.display(),
                if created.is_empty() {
                    "no new stores".to_string()
                } else {
                    format!("created stores: {}", created.join(", "))
                }
            );
            Ok(())
        }
        Cmd::Mount {
            ref mountpoint,
            ref agent,
            ref session,
            ref user,
            ref stores,
        } => {
            let config = config()?;
            let req = MountRequest {
                mountpoint: mountpoint.clone(),
                who: Identity::new(agent, session, user.as_deref()),
                stores: stores.clone(),
            };
            daemon::mount(&config, req)
        }
        Cmd::Umount { ref mountpoint } => daemon::umount(mountpoint),
        Cmd::Mcp {
            ref agent,
            ref session,
            ref user,
            ref stores,
        } => {
            let config = config()?;
            let args = memfs::mcp::stdio::McpArgs {
                agent: agent.clone(),
                session: session.clone(),
                user: user.clone(),
                stores: stores.clone(),
            };
            memfs::mcp::stdio::run(&config, &args)
        }
        Cmd::Serve {
            ref listen,
            insecure_plain_http,
        } => {
            let config = config()?;
            let args = memfs::api::serve::ServeArgs {
                listen: listen.clone(),
                insecure_plain_http,
            };
            memfs::api::serve::serve(&config, &args, |url| {
                eprintln!(
                    "memfs: serving {url} (API under /v1/, OpenAPI at /v1/openapi.json, \
                     MCP at /mcp); stop with Ctrl-C"
                );
            })
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memfs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

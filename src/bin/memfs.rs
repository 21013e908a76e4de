//! The memfs daemon: `init`, `mount`, `umount`, `serve`, `mcp`.

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use memfs::attach::StoreSpec;
use memfs::cli::LogFormat;
use memfs::config::Config;
use memfs::daemon::{self, MountRequest, RunOptions};
use memfs::ids::Identity;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "memfs",
    about = "Versioned, audited memory stores for AI agents, mounted with FUSE"
)]
struct Cli {
    /// Config file (default: $MEMFS_CONFIG, else ./memfs.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database file (overrides the config; also $MEMFS_DB).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Log lines as text or as JSON objects (also $MEMFS_LOG_FORMAT).
    #[arg(
        long,
        global = true,
        env = "MEMFS_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the database and the stores memfs.toml declares (idempotent).
    Init,
    /// Mount stores at MOUNTPOINT and serve until SIGINT/SIGTERM.
    ///
    /// Every argument can also come from the environment (MEMFS_MOUNTPOINT,
    /// MEMFS_AGENT, MEMFS_SESSION, MEMFS_USER, MEMFS_STORES comma-separated), as
    /// the systemd unit memfs@.service passes them. Under systemd (Type=notify)
    /// readiness is reported on $NOTIFY_SOCKET.
    Mount {
        #[arg(env = "MEMFS_MOUNTPOINT")]
        mountpoint: PathBuf,
        /// The agent every change is attributed to.
        #[arg(long, env = "MEMFS_AGENT")]
        agent: String,
        /// The agent's session id.
        #[arg(long, env = "MEMFS_SESSION")]
        session: String,
        /// The user the agent acts for (needed to attach that user's private stores).
        #[arg(long, env = "MEMFS_USER")]
        user: Option<String>,
        /// A store to attach, NAME or NAME:ro; repeatable (default: all visible stores).
        #[arg(long = "store", env = "MEMFS_STORES", value_delimiter = ',')]
        stores: Vec<StoreSpec>,
        /// Return once the mount is ready, leaving the daemon running in its own
        /// session (its errors before that show here).
        #[arg(long)]
        background: bool,
        /// Once mounted, write logs to this file (appending) instead of stderr.
        #[arg(long, value_name = "PATH")]
        log_file: Option<PathBuf>,
        /// Serve Prometheus metrics on http://ADDR/metrics, and /healthz, /readyz.
        #[arg(long, value_name = "ADDR", env = "MEMFS_METRICS")]
        metrics: Option<std::net::SocketAddr>,
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
    /// Check this host: /dev/fuse, fusermount3, permissions, the database
    /// (reachable, schema version, integrity), key files, free space, dead
    /// mounts; say how to fix each problem. Exits non-zero if a check fails.
    Doctor {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Write man pages (memfs.1, memfs-mount.1, ...) into DIR.
    Man { dir: PathBuf },
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
            background,
            ref log_file,
            metrics,
        } => {
            if background {
                let pid =
                    memfs::background::spawn_ready(&memfs::background::args_without_background())?;
                eprintln!("memfs: daemon {pid} serves {}", mountpoint.display());
                return Ok(());
            }
            let config = config()?;
            let req = MountRequest {
                mountpoint: mountpoint.clone(),
                who: Identity::new(agent, session, user.as_deref()),
                stores: stores.clone(),
            };
            let run = RunOptions {
                log_file: log_file.clone(),
                metrics,
            };
            daemon::mount_with(&config, req, &run)
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
        Cmd::Doctor { json } => doctor(&cli, json),
        Cmd::Completions { shell } => {
            memfs::cli::completions(&mut command(), shell);
            Ok(())
        }
        Cmd::Man { ref dir } => {
            for p in memfs::cli::man_pages(&command(), dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?
            {
                println!("{}", p.display());
            }
            Ok(())
        }
    }
}

/// `memfs doctor`: every check, then a non-zero exit if any failed.
fn doctor(cli: &Cli, json: bool) -> Result<()> {
    use memfs::doctor::Status;
    let path = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("MEMFS_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("memfs.toml"));
    let config = Config::load(cli.config.as_deref(), cli.db.as_deref()).map_err(|e| e.to_string());
    let checks = memfs::doctor::run(
        config.as_ref().map_err(Clone::clone),
        &path.display().to_string(),
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            println!("{tag}  {:<14} {}", c.check, c.detail);
            if !c.fix.is_empty() {
                println!("      {:<14} fix: {}", "", c.fix);
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}

/// The clap definition, with the version line naming the schema.
fn command() -> clap::Command {
    Cli::command().version(memfs::cli::version())
}

/// `mount.fuse.memfs SOURCE MOUNTPOINT -o OPTIONS` (mount(8), fstab): a
/// background `memfs mount` that returns once the mount is ready.
fn mount_helper(args: &[OsString]) -> Result<()> {
    let req = memfs::mount_helper::parse(args)?;
    if req.fake {
        return Ok(());
    }
    let argv = memfs::mount_helper::daemon_args(
        &req,
        std::env::var_os("MEMFS_CONFIG").filter(|c| !c.is_empty()),
    );
    memfs::background::spawn_ready(&argv)?;
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("memfs")
        .to_string();
    if memfs::mount_helper::HELPER_NAMES.contains(&invoked_as.as_str()) {
        memfs::cli::init_logging(LogFormat::Text);
        return match mount_helper(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{invoked_as}: error: {e:#}");
                // mount(8) treats 32 as "mount failure".
                ExitCode::from(32)
            }
        };
    }
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    memfs::cli::init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memfs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! memfsctl: the operator's tool for stores and the audit log.

use anyhow::Result;
use clap::{Parser, Subcommand};
use memfs::config::Config;
use memfs::ctl::{self, Ctx};
use memfs::store::Db;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "memfsctl",
    version,
    about = "Inspect and manage memfs memory stores"
)]
struct Cli {
    /// Config file (default: $MEMFS_CONFIG, else ./memfs.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database file (overrides the config; also $MEMFS_DB).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Attribute changes to this human: user:NAME (default: the Unix user).
    #[arg(long = "as", global = true, value_name = "user:NAME")]
    as_user: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create and list stores.
    #[command(subcommand)]
    Store(StoreCmd),
    /// Audit entries, newest first.
    Log {
        /// Only this store's entries.
        #[arg(long)]
        store: Option<String>,
        /// At most N entries.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Check the audit log's hash chain.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// List live write leases, or break one.
    Leases {
        #[command(subcommand)]
        cmd: Option<LeaseCmd>,
    },
}

#[derive(Subcommand)]
enum LeaseCmd {
    /// Free the lease on STORE/PATH; its holder's next commit becomes a conflict.
    Break {
        /// STORE/PATH of the file.
        target: String,
    },
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Create a store.
    Create {
        name: String,
        /// org (shared) or user (private to --owner).
        #[arg(long)]
        scope: String,
        /// The owning user of a user store.
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List stores.
    List,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Walk the chain; exits non-zero naming the first entry that does not match.
    Verify,
}

fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref(), cli.db.as_deref())?;
    let db = Db::open_existing(&config.database)?;
    let ctx = Ctx {
        db,
        json: cli.json,
        who: ctl::operator(cli.as_user.as_deref())?,
    };
    match cli.cmd {
        Cmd::Store(StoreCmd::Create {
            name,
            scope,
            owner,
            description,
        }) => ctl::store::create(&ctx, &name, &scope, owner.as_deref(), &description),
        Cmd::Store(StoreCmd::List) => ctl::store::list(&ctx),
        Cmd::Log { store, limit } => ctl::log::run(&ctx, store.as_deref(), limit),
        Cmd::Audit(AuditCmd::Verify) => ctl::audit::verify(&ctx),
        Cmd::Leases { cmd: None } => ctl::leases::list(&ctx),
        Cmd::Leases {
            cmd: Some(LeaseCmd::Break { target }),
        } => ctl::leases::break_lease(&ctx, &target),
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
            eprintln!("memfsctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

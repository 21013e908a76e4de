//! memfsctl: the operator's tool for stores and the audit log.

use anyhow::{bail, Context, Result};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};
use memfs::config::Config;
use memfs::ctl::{self, Ctx};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "memfsctl", about = "Inspect and manage memfs memory stores")]
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
    /// With `import`, `--as NAME` (no `user:`) names the new store.
    #[arg(long = "as", global = true, value_name = "user:NAME", action = ArgAction::Append)]
    as_args: Vec<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create and list stores.
    #[command(subcommand)]
    Store(StoreCmd),
    /// Drafts of a store: make, review (diff), merge or discard them.
    #[command(subcommand)]
    Draft(DraftCmd),
    /// Audit entries, newest first.
    Log {
        /// Only this store's entries.
        #[arg(long)]
        store: Option<String>,
        /// Only entries at this path or below it (STORE/PATH, or PATH with --store).
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        session: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// Only this operation (create, write, rename, unlink, rollback, ...).
        #[arg(long)]
        op: Option<String>,
        /// From this time on: RFC 3339 or an age such as 2h, 30m, 3d.
        #[arg(long)]
        since: Option<String>,
        /// Up to this time: RFC 3339 or an age.
        #[arg(long)]
        until: Option<String>,
        /// At most N entries.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// The versions of one file (following it across renames).
    History {
        /// STORE/PATH
        target: String,
    },
    /// Print a file's content: the head, a version, or as it was at a time.
    Cat {
        /// STORE/PATH
        target: String,
        #[arg(long)]
        version: Option<i64>,
        /// RFC 3339 or an age such as 2h.
        #[arg(long)]
        at: Option<String>,
    },
    /// Unified diff between two versions of a file (V2 defaults to the head).
    Diff {
        /// STORE/PATH
        target: String,
        v1: i64,
        v2: Option<i64>,
    },
    /// Undo: a file to a version, a whole session, or a store to a time.
    ///
    /// memfsctl rollback STORE/PATH --to V |
    /// memfsctl rollback --session S [--store X] [--dry-run] [--force] |
    /// memfsctl rollback STORE --at TIME [--dry-run]
    Rollback {
        /// STORE/PATH (with --to) or STORE (with --at).
        target: Option<String>,
        /// The version to make the head again.
        #[arg(long)]
        to: Option<i64>,
        /// Undo everything this session changed.
        #[arg(long)]
        session: Option<String>,
        /// With --session: only this store.
        #[arg(long)]
        store: Option<String>,
        /// Return the store to this time (RFC 3339 or an age such as 2h).
        #[arg(long)]
        at: Option<String>,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also undo files that later sessions changed again.
        #[arg(long)]
        force: bool,
    },
    /// Check the database: SQLite integrity, every version against its hash, file
    /// heads, link counts, the audit chain. Exits non-zero on any problem.
    Fsck,
    /// Check the audit log's hash chain.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Print a note for an agent's system prompt: where its memory is and the rules.
    Prompt {
        #[arg(long)]
        agent: String,
        #[arg(long)]
        user: Option<String>,
        /// NAME, NAME:ro or NAME:rw; repeatable (default: all the identity may attach).
        #[arg(long = "store")]
        stores: Vec<memfs::attach::StoreSpec>,
        /// Where the stores are mounted.
        #[arg(long, default_value = "/mnt/memory")]
        mountpoint: String,
    },
    /// Write a store to one portable archive (tar: metadata as JSON, content as
    /// files), or its history to a git repository (one commit per change).
    Export {
        /// The store.
        store: String,
        /// The archive to write ('-' for stdout).
        #[arg(
            short = 'o',
            long = "output",
            value_name = "FILE",
            required_unless_present = "git"
        )]
        output: Option<PathBuf>,
        /// Include every version and the audit log, not just the head.
        #[arg(long)]
        history: bool,
        /// Write a git repository into DIR (new or empty) instead of an archive.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "history"])]
        git: Option<PathBuf>,
    },
    /// Import an archive written by `memfsctl export` as a new store (all or
    /// nothing; `--as NAME` picks its name).
    Import {
        /// The archive ('-' for stdin).
        file: PathBuf,
    },
    /// Remove one version's content, hash, size and path for good (who and when
    /// stay). The head of a live file is refused.
    Redact {
        /// The version id, as `memfsctl history` shows it.
        version: i64,
    },
    /// Remove every version of a file and the file itself for good, leaving
    /// tombstones (who and when). Without --yes, shows what would be removed.
    Purge {
        /// STORE/PATH (the file now, or the last file seen at that path).
        target: String,
        /// Confirm: the content cannot be recovered.
        #[arg(long)]
        yes: bool,
    },
    /// Delete every store USER owns with all its versions; seal their audit entries.
    ForgetUser {
        user: String,
        /// Confirm: the content cannot be recovered.
        #[arg(long)]
        yes: bool,
    },
    /// Checkpoint and truncate the WAL and vacuum the database, so removed bytes
    /// leave the files (redact/purge/forget-user do this themselves).
    Scrub,
    /// Apply the stores' retention rules now: remove expired versions (their
    /// audit entries are sealed, not deleted) and give the space back.
    Gc {
        /// Show what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Afterwards rewrite the database with a full VACUUM, switching an older
        /// database to incremental auto-vacuum (run with the mounts stopped).
        #[arg(long)]
        vacuum: bool,
        /// Only this store; repeatable (default: every store with rules).
        #[arg(long = "store")]
        stores: Vec<String>,
    },
    /// Copy the whole database to PATH, consistent as of one moment, while
    /// mounts keep writing (SQLite's online backup). Encrypted stores also need
    /// the key file and keyring, which are not in the database.
    Backup {
        /// The backup file to write (one self-contained SQLite file).
        path: PathBuf,
        /// Replace PATH if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Bring a backup back into a new database: the --db path (or the config's
    /// database), which must not exist or be empty.
    Restore {
        /// A file written by `memfsctl backup`.
        backup: PathBuf,
    },
    /// Move the whole database (every store, its history, the audit chains,
    /// keys, settings, API keys) into a new, empty database on another engine
    /// or place, ids kept: `--to postgres://HOST/DB` or `--to /path/memfs.db`.
    /// Stop the mounts first. The key file and keyring stay as they are.
    MigrateDb {
        /// Where to: a `postgres://` URL (the database must exist and be empty)
        /// or a new SQLite file.
        #[arg(long)]
        to: PathBuf,
        /// Copy even while mounts are live (their later changes are not moved).
        #[arg(long)]
        force: bool,
    },
    /// Master keys for encryption at rest.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Write man pages (memfsctl.1, memfsctl-gc.1, ...) into DIR.
    Man { dir: PathBuf },
    /// List live write leases, or break one.
    Leases {
        #[command(subcommand)]
        cmd: Option<LeaseCmd>,
    },
    /// Keys for the HTTP API (`memfs serve`).
    #[command(subcommand)]
    Apikey(ApikeyCmd),
    /// Consolidation jobs (the API's dreams; `memfs serve` runs them).
    #[command(subcommand)]
    Jobs(JobsCmd),
}

#[derive(Subcommand)]
enum JobsCmd {
    /// Jobs, newest first.
    List {
        /// Only jobs with this status (pending, running, completed, failed,
        /// canceled); repeatable.
        #[arg(long = "status")]
        statuses: Vec<String>,
        /// Archived jobs too.
        #[arg(long)]
        all: bool,
    },
    /// One job: its status, draft or result store, error and times.
    Show { id: String },
    /// Cancel a pending or running job (the server running it kills its
    /// command and unmounts its draft).
    Cancel { id: String },
    /// Archive a completed, failed or canceled job.
    Archive { id: String },
}

#[derive(Subcommand)]
enum ApikeyCmd {
    /// Make a key; prints its secret, once, as the only line on stdout.
    Create {
        name: String,
        /// The user it acts for (that user's private stores).
        #[arg(long)]
        user: Option<String>,
        /// The agent it acts as, for allow-lists and attribution (default: NAME).
        #[arg(long)]
        agent: Option<String>,
        /// reader (read only), writer (also write) or admin (also manage
        /// stores and keys, redact, purge, forget, roll back).
        #[arg(long, default_value = "reader")]
        role: String,
        /// Limit it to this store; repeatable (default: every store its
        /// identity may see).
        #[arg(long = "store")]
        stores: Vec<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id or name; it is refused from then on.
    Revoke { key: String },
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
enum DraftCmd {
    /// Make a draft of a store as it is (or was): a branch sharing its content
    /// and history; `memfs mount --store STORE@DRAFT` mounts it.
    Create {
        store: String,
        /// Its name (default: d1, d2, ...).
        #[arg(long)]
        name: Option<String>,
        /// The store as it was then: RFC 3339 or an age such as 2h.
        #[arg(long)]
        at: Option<String>,
    },
    /// The drafts of a store (or of every store).
    List { store: Option<String> },
    /// One draft: its base, who made it, its size.
    Show {
        /// STORE@DRAFT
        draft: String,
    },
    /// What the draft changed, what the store changed since its base, and
    /// what merging would do (conflicts included).
    Diff {
        /// STORE@DRAFT
        draft: String,
        /// With each file's unified diff.
        #[arg(long, short = 'p')]
        patch: bool,
    },
    /// Apply the draft's changes to its store as one change set, attributed to
    /// you under a session `merge:STORE@DRAFT:ID` (roll it back with
    /// `memfsctl rollback --session`). Conflicts are reported and left alone.
    Merge {
        /// STORE@DRAFT
        draft: String,
        /// Show what would be merged; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Merge only this path (and what is below it); repeatable.
        #[arg(long = "path")]
        paths: Vec<String>,
        /// Merge what merges cleanly and leave the conflicts (without it, a
        /// conflict means nothing is merged).
        #[arg(long)]
        skip_conflicts: bool,
    },
    /// Drop a draft and what only it wrote (its store is untouched).
    Discard {
        /// STORE@DRAFT
        draft: String,
        /// Confirm: the draft's own changes cannot be recovered.
        #[arg(long)]
        yes: bool,
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
    /// List stores (with --json: every field, the API id included).
    List,
    /// A store's details, usage and settings.
    Show { name: String },
    /// Change a store's settings (audited; running mounts apply them at once):
    /// readers, writers, read_only, read_only_writers, append_only (comma-separated
    /// globs; `-` removes an allow-list), pii (off|tag|redact|block),
    /// max_file_bytes, max_bytes, max_files (a number, K/M/G, or none),
    /// validate.GLOB (json|jsonl|toml|yaml, or empty to remove), drafts.agents,
    /// drafts.sessions (globs of the agents or sessions whose mounts write to a
    /// draft of their session; empty removes).
    Set {
        name: String,
        /// KEY=VALUE, one or more.
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Make a store read-only for everyone; it cannot be newly attached read-write.
    Archive { name: String },
    /// Undo `archive`.
    Unarchive { name: String },
    /// Delete a store with all its files and versions (the audit keeps a tombstone).
    Delete {
        name: String,
        /// Confirm: the content cannot be recovered.
        #[arg(long)]
        yes: bool,
    },
    /// Crypto-shred an encrypted store: destroy its key so every version is
    /// unreadable, also in copies of the database; the store is archived.
    Shred {
        name: String,
        /// Confirm: the content cannot be recovered.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Write a new random master key (64 hex characters, mode 0600) to PATH;
    /// point `key_file` in memfs.toml (or MEMFS_KEY_FILE) at it.
    Generate { path: PathBuf },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Walk the chain; exits non-zero naming the first entry that does not match.
    Verify,
}

fn run(cli: Cli) -> Result<()> {
    // `--as user:NAME` is the operator; a bare `--as NAME` names an imported store.
    let (users, names): (Vec<&String>, Vec<&String>) =
        cli.as_args.iter().partition(|a| a.starts_with("user:"));
    if users.len() > 1 || names.len() > 1 {
        bail!("give --as user:NAME at most once, and --as NAME (import) at most once");
    }
    let as_name = names.first().map(|s| s.as_str());
    let as_user = match (&cli.cmd, as_name) {
        (Cmd::Import { .. }, _) | (_, None) => users.first().map(|s| s.as_str()),
        // Not an import: let `operator` explain what --as takes.
        (_, Some(n)) => Some(n),
    };
    // Completions and man pages need neither config nor database.
    match &cli.cmd {
        Cmd::Completions { shell } => {
            memfs::cli::completions(&mut command(), *shell);
            return Ok(());
        }
        Cmd::Man { dir } => {
            for p in memfs::cli::man_pages(&command(), dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?
            {
                println!("{}", p.display());
            }
            return Ok(());
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref(), cli.db.as_deref())?;
    // Making a key needs no database, and a restore makes one.
    if let Cmd::Key(KeyCmd::Generate { path }) = &cli.cmd {
        return ctl::key::generate(path, cli.json);
    }
    if let Cmd::Restore { backup } = &cli.cmd {
        if cli.db.is_none() && std::env::var_os("MEMFS_DB").is_none() {
            bail!("say where to restore to: memfsctl restore BACKUP --db NEWPATH");
        }
        return ctl::backup::restore(&config, backup, cli.json);
    }
    if let Cmd::MigrateDb { to, force } = &cli.cmd {
        return ctl::migrate::migrate(&config, to, *force, cli.json);
    }
    let db = memfs::daemon::open_db(&config, false)?;
    let ctx = Ctx::new(db, config, cli.json, ctl::operator(as_user)?);
    match cli.cmd {
        Cmd::Store(StoreCmd::Create {
            name,
            scope,
            owner,
            description,
        }) => ctl::store::create(&ctx, &name, &scope, owner.as_deref(), &description),
        Cmd::Store(StoreCmd::List) => ctl::store::list(&ctx),
        Cmd::Store(StoreCmd::Show { name }) => ctl::store::show(&ctx, &name),
        Cmd::Store(StoreCmd::Set { name, settings }) => ctl::store::set(&ctx, &name, &settings),
        Cmd::Store(StoreCmd::Archive { name }) => ctl::store::set_archived(&ctx, &name, true),
        Cmd::Store(StoreCmd::Unarchive { name }) => ctl::store::set_archived(&ctx, &name, false),
        Cmd::Store(StoreCmd::Delete { name, yes }) => ctl::store::delete(&ctx, &name, yes),
        Cmd::Store(StoreCmd::Shred { name, yes }) => ctl::store::shred(&ctx, &name, yes),
        Cmd::Key(KeyCmd::Generate { path }) => ctl::key::generate(&path, ctx.json),
        Cmd::Draft(DraftCmd::Create { store, name, at }) => {
            ctl::draft::create(&ctx, &store, name, at)
        }
        Cmd::Draft(DraftCmd::List { store }) => ctl::draft::list(&ctx, store.as_deref()),
        Cmd::Draft(DraftCmd::Show { draft }) => ctl::draft::show(&ctx, &draft),
        Cmd::Draft(DraftCmd::Diff { draft, patch }) => ctl::draft::diff(&ctx, &draft, patch),
        Cmd::Draft(DraftCmd::Merge {
            draft,
            dry_run,
            paths,
            skip_conflicts,
        }) => ctl::draft::merge(&ctx, &draft, dry_run, paths, skip_conflicts),
        Cmd::Draft(DraftCmd::Discard { draft, yes }) => ctl::draft::discard(&ctx, &draft, yes),
        Cmd::Prompt {
            agent,
            user,
            stores,
            mountpoint,
        } => ctl::prompt::run(
            &ctx,
            cli.config.as_deref(),
            &agent,
            user.as_deref(),
            &stores,
            &mountpoint,
        ),
        Cmd::Log {
            store,
            path,
            agent,
            session,
            user,
            op,
            since,
            until,
            limit,
        } => ctl::log::run(
            &ctx,
            &ctl::log::LogArgs {
                store,
                path,
                agent,
                session,
                user,
                op,
                since,
                until,
                limit,
            },
        ),
        Cmd::History { target } => ctl::history::history(&ctx, &target),
        Cmd::Cat {
            target,
            version,
            at,
        } => ctl::history::cat(&ctx, &target, version, at.as_deref()),
        Cmd::Diff { target, v1, v2 } => ctl::history::diff(&ctx, &target, v1, v2),
        Cmd::Rollback {
            target,
            to,
            session,
            store,
            at,
            dry_run,
            force,
        } => ctl::rollback::run(
            &ctx,
            &ctl::rollback::RollbackArgs {
                target,
                to,
                session,
                store,
                at,
                dry_run,
                force,
            },
        ),
        Cmd::Audit(AuditCmd::Verify) => ctl::audit::verify(&ctx),
        Cmd::Fsck => ctl::fsck::run(&ctx),
        Cmd::Export {
            store,
            output,
            history,
            git,
        } => ctl::export::run(&ctx, &store, output.as_deref(), history, git.as_deref()),
        Cmd::Import { file } => ctl::import::run(&ctx, &file, as_name),
        Cmd::Redact { version } => ctl::redact::redact(&ctx, version),
        Cmd::Purge { target, yes } => ctl::purge::run(&ctx, &target, yes),
        Cmd::ForgetUser { user, yes } => ctl::forget::run(&ctx, &user, yes),
        Cmd::Scrub => ctl::redact::scrub(&ctx),
        Cmd::Backup { path, force } => ctl::backup::backup(&ctx, &path, force),
        Cmd::Restore { .. } | Cmd::MigrateDb { .. } | Cmd::Completions { .. } | Cmd::Man { .. } => {
            bail!("handled before the database is opened")
        }
        Cmd::Gc {
            dry_run,
            vacuum,
            stores,
        } => ctl::gc::run(
            &ctx,
            &ctl::gc::GcArgs {
                dry_run,
                vacuum,
                stores,
            },
        ),
        Cmd::Leases { cmd: None } => ctl::leases::list(&ctx),
        Cmd::Leases {
            cmd: Some(LeaseCmd::Break { target }),
        } => ctl::leases::break_lease(&ctx, &target),
        Cmd::Apikey(ApikeyCmd::Create {
            name,
            user,
            agent,
            role,
            stores,
        }) => ctl::apikey::create(
            &ctx,
            &memfs::ops::keys::NewKey {
                name,
                user,
                agent,
                role: ctl::apikey::role(&role)?,
                stores,
            },
        ),
        Cmd::Apikey(ApikeyCmd::List) => ctl::apikey::list(&ctx),
        Cmd::Apikey(ApikeyCmd::Revoke { key }) => ctl::apikey::revoke(&ctx, &key),
        Cmd::Jobs(JobsCmd::List { statuses, all }) => ctl::jobs::list(&ctx, &statuses, all),
        Cmd::Jobs(JobsCmd::Show { id }) => ctl::jobs::show(&ctx, &id),
        Cmd::Jobs(JobsCmd::Cancel { id }) => ctl::jobs::cancel(&ctx, &id),
        Cmd::Jobs(JobsCmd::Archive { id }) => ctl::jobs::archive(&ctx, &id),
    }
}

/// The clap definition, with the version line naming the schema.
fn command() -> clap::Command {
    Cli::command().version(memfs::cli::version())
}

fn main() -> ExitCode {
    let format = match std::env::var("MEMFS_LOG_FORMAT").as_deref() {
        Ok("json") => memfs::cli::LogFormat::Json,
        _ => memfs::cli::LogFormat::Text,
    };
    memfs::cli::init_logging(format);
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memfsctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

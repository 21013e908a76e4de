//! `memfs init`, `memfs mount` and `memfs umount`: opening the database, deciding
//! which stores a mount may attach, and running a FUSE session until a signal.

use crate::attach::{apply_template, resolve_stores, StoreSpec};
use crate::config::Config;
use crate::fs::{FeedBarrier, FsOptions, Invalidation, MemFs};
use crate::fuse::FuseFs;
use crate::ids::{now_ns, Identity};
use crate::store::{BatchPolicy, Db, Scope};
use anyhow::{bail, Context, Result};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Creates the database and the stores the config declares, with their template
/// directories and seed files. Idempotent.
pub fn init(config: &Config) -> Result<Vec<String>> {
    let db = Arc::new(open_db(config, true)?);
    let who = Identity::new("memfs-init", &format!("init-{}", std::process::id()), None);
    let mut created = Vec::new();
    for s in &config.stores {
        if db.read(|tx| tx.store_by_name(&s.name))?.is_some() {
            continue;
        }
        let scope = Scope::parse(&s.scope)?;
        let row = db
            .write(|tx| {
                tx.create_store(
                    &s.name,
                    scope,
                    s.owner.as_deref(),
                    &s.description,
                    &who,
                    now_ns(),
                )
            })
            .with_context(|| format!("cannot create store '{}'", s.name))?;
        crate::settings::save_new(&db, &row, s, &who)?;
        apply_template(&db, &row, s, &who)?;
        created.push(s.name.clone());
    }
    crate::settings::seed_from_config(&db, config, &who)?;
    Ok(created)
}

/// Opens the database (creating it if `create`) and unlocks it with the
/// configured master key: a database holding encrypted stores without the key,
/// or with the wrong one, is refused here rather than read as garbage later.
pub fn open_db(config: &Config, create: bool) -> Result<Db> {
    let path = &config.database;
    let mut db = if create {
        Db::open(path)
    } else {
        Db::open_existing(path)
    }
    .with_context(|| format!("cannot open database {}", path.display()))?;
    let (master, ring) = match crate::keys::paths(config) {
        Some((key, ring)) => (Some(crate::keys::read_key_file(&key)?), Some(ring)),
        None => (None, None),
    };
    db.unlock(master, ring)
        .with_context(|| format!("cannot unlock database {}", path.display()))?;
    Ok(db)
}

/// What to mount, where, as whom.
pub struct MountRequest {
    pub mountpoint: PathBuf,
    pub who: Identity,
    pub stores: Vec<StoreSpec>,
}

/// Refuses a mount identity that would pass for another kind of actor (see
/// `ops/actor.rs`): a session named like an API key's (`apikey_...`) would
/// attribute the mount's changes to that key, and an agent name memfs's own
/// tools use (`console`, `memfs*`) would attribute them to a person.
pub fn check_mount_identity(who: &Identity) -> Result<()> {
    use crate::ops::actor::{is_operator_agent, KEY_SESSION_PREFIX};
    if who.session.starts_with(KEY_SESSION_PREFIX) {
        bail!(
            "--session '{}' is refused: session names starting with '{KEY_SESSION_PREFIX}' \
             belong to API keys, and changes made under one would be attributed to a key",
            who.session
        );
    }
    if is_operator_agent(&who.agent) {
        bail!(
            "--agent '{}' is refused: 'console' and names starting with 'memfs' are reserved \
             for memfs's own tools, and changes made under one would be attributed to a person",
            who.agent
        );
    }
    Ok(())
}

/// Builds the filesystem for a mount (used by the daemon and by in-process tests).
pub fn build_fs(config: &Config, req: &MountRequest) -> Result<MemFs> {
    check_mount_identity(&req.who)?;
    let db = open_db(config, false)?;
    // A declared store without settings in the database (one from before they
    // lived there) gets them from this config, once.
    crate::settings::seed_from_config(&db, config, &req.who)?;
    let attached = resolve_stores(&db, &req.who, &req.stores)?;
    let opts = FsOptions {
        max_file_bytes: config.daemon.max_file_bytes,
        spill_bytes: config.daemon.spill_bytes,
        spill_dir: config.daemon.spill_dir.clone(),
        lease_ttl: secs(config.daemon.lease_ttl_secs),
        lease_wait: secs(config.daemon.lease_wait_secs),
    };
    db.enable_batching(BatchPolicy {
        interval: Duration::from_millis(config.daemon.commit_interval_ms),
        ..BatchPolicy::default()
    });
    Ok(MemFs::new(Arc::new(db), req.who.clone(), attached, opts))
}

fn fuse_config(config: &Config) -> fuser::Config {
    let mut c = fuser::Config::default();
    c.mount_options = vec![
        fuser::MountOption::FSName("memfs".into()),
        fuser::MountOption::Subtype("memfs".into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoAtime,
    ];
    // Agents in sandboxes often run as another uid than the daemon.
    c.acl = fuser::SessionACL::All;
    c.n_threads = Some(config.daemon.threads.max(1));
    c.clone_fd = config.daemon.threads > 1;
    c
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(1))
}

/// How a mount daemon runs besides what it mounts.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Once mounted, send stderr (logs) to this file, appending.
    pub log_file: Option<PathBuf>,
    /// Serve `/metrics`, `/healthz` and `/readyz` over HTTP here.
    pub metrics: Option<std::net::SocketAddr>,
}

/// Mounts and serves until SIGINT/SIGTERM or an external unmount. Returns when the
/// mount is gone.
pub fn mount(config: &Config, req: MountRequest) -> Result<()> {
    mount_with(config, req, &RunOptions::default())
}

/// [`mount`], with logging and metrics options. Says it is ready (systemd's
/// notify socket, `memfs mount --background`) once the mount serves.
pub fn mount_with(config: &Config, req: MountRequest, run: &RunOptions) -> Result<()> {
    let fs = build_fs(config, &req)?;
    // Bound before mounting, so a taken port fails the mount, not later.
    let metrics = match run.metrics {
        Some(addr) => {
            let server = crate::metrics::MetricsServer::start(addr)
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            crate::metrics::watch_database(config.database.clone());
            tracing::info!(addr = %server.addr(), "serving /metrics, /healthz, /readyz");
            Some(server)
        }
        None => None,
    };
    let names: Vec<String> = fs
        .attached()
        .iter()
        .map(|a| format!("{}{}", a.store.name, if a.read_only { ":ro" } else { "" }))
        .collect();
    let mp = &req.mountpoint;
    if is_dead_mount(mp) {
        bail!(
            "{} is a dead mount (its daemon died); run `memfs umount {}` first",
            mp.display(),
            mp.display()
        );
    }
    std::fs::create_dir_all(mp).with_context(|| format!("cannot create {}", mp.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    // Signal handlers go in before the mount, so an early SIGTERM still unmounts.
    let (mut sigint, mut sigterm) = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    let fs = Arc::new(fs);
    // Registered before mounting, and the feed position taken before it too, so
    // that no change made while mounting is missed.
    fs.register()
        .context("cannot register this mount in the database")?;
    let feed_start = fs.feed_position().context("cannot read the change feed")?;
    let barrier = Arc::new(FeedBarrier::default());
    barrier.start(feed_start);
    let ffs = FuseFs::new(
        fs.clone(),
        barrier.clone(),
        secs(config.cache.attr_ttl_secs),
        secs(config.cache.entry_ttl_secs),
    );
    let session = match fuser::Session::new(ffs, mp, &fuse_config(config)) {
        Ok(s) => s,
        // The mount's daemon may have died between the check above and now.
        Err(_) if is_dead_mount(mp) => bail!(
            "{} is a dead mount (its daemon died); run `memfs umount {}` first",
            mp.display(),
            mp.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot mount at {}", mp.display())),
    }
    .spawn()
    .context("cannot start the FUSE session")?;
    let stop = Arc::new(AtomicBool::new(false));
    let renewer = spawn_renewer(fs.clone(), stop.clone(), secs(config.daemon.lease_ttl_secs))?;
    set_read_ahead(mp, config.daemon.read_ahead_kb);
    let committer = spawn_committer(fs.clone(), stop.clone())?;
    let collector = spawn_collector(config, stop.clone())?;
    let checkpointer = spawn_checkpointer(fs.clone(), stop.clone())?;
    let follower = spawn_follower(
        fs.clone(),
        session.notifier(),
        barrier.clone(),
        feed_start,
        Duration::from_millis(config.daemon.feed_poll_ms.max(1)),
    )?;
    let listener = spawn_listener(&fs, barrier.clone(), stop.clone())?;
    tracing::info!(
        mountpoint = %mp.display(),
        stores = %names.join(","),
        agent = %req.who.agent,
        session = %req.who.session,
        user = req.who.user.as_deref().unwrap_or("-"),
        "mounted"
    );
    eprintln!(
        "memfs: mounted {} at {} (agent {}, session {}); stop with Ctrl-C or `memfs umount {}`",
        names.join(", "),
        mp.display(),
        req.who.agent,
        req.who.session,
        mp.display()
    );
    if let Some(log) = &run.log_file {
        if let Err(e) = crate::notify::redirect_stderr(log) {
            tracing::warn!(path = %log.display(), error = %e, "cannot log to file; logging to stderr");
        }
    }
    crate::metrics::set_ready(true);
    crate::notify::ready(&format!("mounted {} at {}", names.join(", "), mp.display()));
    let signalled = rt.block_on(async {
        let ended = async {
            while !session.guard.is_finished() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            _ = sigint.recv() => true,
            _ = sigterm.recv() => true,
            _ = ended => false,
        }
    });
    crate::metrics::set_ready(false);
    if signalled {
        crate::notify::stopping();
        tracing::info!(mountpoint = %mp.display(), "signal received, unmounting");
        unmount_path(mp, false)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !session.guard.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if session.guard.is_finished() {
        match session.join() {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "FUSE session ended with an error"),
        }
    } else {
        // Descriptors are still open in a lazily detached mount: save what they
        // staged before the process goes.
        match fs.commit_all() {
            Ok(n) => tracing::warn!(
                committed = n,
                "FUSE session still busy after unmount; exiting anyway"
            ),
            Err(e) => tracing::error!(error = %e, "cannot commit staged writes at exit"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    barrier.shut_down();
    for t in [renewer, follower, committer, checkpointer]
        .into_iter()
        .chain(collector)
        .chain(listener)
    {
        if t.join().is_err() {
            tracing::error!("a background thread panicked");
        }
    }
    if let Err(e) = fs.unregister() {
        tracing::warn!(error = %e, "cannot release this mount's leases and locks; they expire by TTL");
    }
    if let Err(e) = fs.db().sync() {
        tracing::error!(error = %e, "cannot commit the last changes at unmount");
    }
    if let Some(m) = metrics {
        m.stop();
    }
    tracing::info!(mountpoint = %mp.display(), "unmounted");
    crate::store::sql_profile::report();
    Ok(())
}

/// Sleeps `total` in small steps, returning early (true) once `stop` is set.
fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) -> bool {
    let step = Duration::from_millis(20);
    let mut left = total;
    while !left.is_zero() {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
    stop.load(Ordering::Relaxed)
}

/// Renews this mount's holder row and leases every third of the lease TTL, so
/// only a dead or frozen daemon's leases and locks lapse.
fn spawn_renewer(
    fs: Arc<MemFs>,
    stop: Arc<AtomicBool>,
    ttl: Duration,
) -> Result<std::thread::JoinHandle<()>> {
    let every = (ttl / 3).max(Duration::from_millis(50));
    Ok(std::thread::Builder::new()
        .name("memfs-renew".into())
        .spawn(move || {
            while !sleep_unless_stopped(&stop, every) {
                if let Err(e) = fs.renew() {
                    tracing::error!(error = %e, "cannot renew leases");
                }
            }
        })?)
}

/// Sets the kernel readahead of the mount at `mp` (its backing device's
/// `read_ahead_kb` in sysfs). Best effort: a failure only costs speed.
fn set_read_ahead(mp: &Path, kb: u64) {
    if kb == 0 {
        return;
    }
    let Some(dev) = mount_dev(mp) else {
        tracing::debug!("cannot find the mount's device for readahead");
        return;
    };
    let path = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    if let Err(e) = std::fs::write(&path, kb.to_string()) {
        tracing::debug!(path, error = %e, "cannot set readahead");
    }
}

/// Runs the retention pass (gc) every `gc_interval_secs`, first a minute after
/// mounting (sooner if the interval is shorter), on its own connection so its
/// short transactions never join this daemon's group commit. Daemons on one
/// database take turns (see [`crate::gc::background_pass`]). `None` when off.
fn spawn_collector(
    config: &Config,
    stop: Arc<AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>> {
    if config.daemon.gc_interval_secs == 0 {
        return Ok(None);
    }
    let config = config.clone();
    let every = Duration::from_secs(config.daemon.gc_interval_secs);
    Ok(Some(
        std::thread::Builder::new()
            .name("memfs-gc".into())
            .spawn(move || {
                let mut wait = every.min(Duration::from_secs(60));
                while !sleep_unless_stopped(&stop, wait) {
                    wait = every;
                    if let Err(e) = gc_pass(&config, every) {
                        tracing::error!(error = %format!("{e:#}"), "retention pass failed");
                    }
                }
            })?,
    ))
}

/// One background retention pass (see [`spawn_collector`]).
fn gc_pass(config: &Config, every: Duration) -> Result<()> {
    let db = open_db(config, false)?;
    let rules = crate::settings::retention_rules(&db)?;
    if !rules.iter().any(|(_, r)| r.collects()) {
        return Ok(());
    }
    let who = Identity::new("memfs-gc", &format!("gc-{}", std::process::id()), None);
    let opts = crate::gc::GcOptions::new(who, secs(config.daemon.lease_ttl_secs));
    if let Some(r) = crate::gc::background_pass(&db, &rules, &opts, every)? {
        tracing::info!(
            versions_removed = r.removed(),
            pages_vacuumed = r.pages_vacuumed,
            file_bytes_before = r.before.file_bytes,
            file_bytes_after = r.after.file_bytes,
            "retention pass done"
        );
        for n in &r.notes {
            tracing::warn!("{n}");
        }
    }
    Ok(())
}

/// Commits group-committed changes when they fall due (see `store::batch`).
fn spawn_committer(fs: Arc<MemFs>, stop: Arc<AtomicBool>) -> Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name("memfs-commit".into())
        .spawn(move || fs.db().run_committer(&stop))?)
}

/// Checkpoints the database's WAL off the request path (see
/// `Db::run_checkpointer`).
fn spawn_checkpointer(
    fs: Arc<MemFs>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name("memfs-checkpoint".into())
        .spawn(move || {
            fs.db()
                .run_checkpointer(&stop, Duration::from_millis(CHECKPOINT_EVERY_MS))
        })?)
}

/// How often the checkpointer looks at the WAL. Often enough that it stays
/// small under any write rate; each look is a stat(2) while nothing changed.
const CHECKPOINT_EVERY_MS: u64 = 200;

/// Follows the change feed and invalidates the kernel's caches for what other
/// mounts, daemons and memfsctl changed. Polls every `every`, and at once when a
/// reply waits at the barrier (a lock just granted, an open of a file changed
/// elsewhere); that reply goes once the kernel has been told.
fn spawn_follower(
    fs: Arc<MemFs>,
    notifier: fuser::Notifier,
    barrier: Arc<FeedBarrier>,
    mut since: i64,
    every: Duration,
) -> Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name("memfs-feed".into())
        .spawn(move || {
            loop {
                let (held, stopping) = barrier.next_round(every);
                if stopping {
                    barrier.caught_up(since, held);
                    break;
                }
                // Until a poll finds nothing new: a held reply waits for every
                // change made before it, also beyond one poll's row limit.
                loop {
                    let before = since;
                    let invalidations = match fs.poll_changes(&mut since) {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot read the change feed");
                            break;
                        }
                    };
                    for inv in invalidations {
                        // ENOENT means the kernel does not cache that inode or
                        // name: nothing to drop.
                        let _ = match &inv {
                            Invalidation::Inode(ino) => {
                                notifier.inval_inode(fuser::INodeNo(ino.0 as u64), 0, 0)
                            }
                            Invalidation::Entry(parent, name) => notifier.inval_entry(
                                fuser::INodeNo(parent.0 as u64),
                                std::ffi::OsStr::from_bytes(name),
                            ),
                            Invalidation::Store(store) => {
                                if let Err(e) = crate::attach::refresh_settings(&fs, *store) {
                                    tracing::error!(error = %e, "cannot reload a store's settings");
                                }
                                Ok(())
                            }
                        };
                    }
                    if since == before {
                        break;
                    }
                }
                barrier.caught_up(since, held);
            }
            barrier.stop();
        })?)
}

/// Wakes the follower as soon as another process commits, where the engine
/// tells (PostgreSQL's LISTEN/NOTIFY); the follower's own poll every
/// `feed_poll_ms` stays as the fallback. `None` on SQLite, which only polls.
fn spawn_listener(
    fs: &Arc<MemFs>,
    barrier: Arc<FeedBarrier>,
    stop: Arc<AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>> {
    let mut waiter = fs.db().feed_waiter();
    if !waiter.pushes() {
        return Ok(None);
    }
    Ok(Some(
        std::thread::Builder::new()
            .name("memfs-listen".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if waiter.wait(Duration::from_millis(500), &stop) {
                        barrier.poke();
                    }
                }
            })?,
    ))
}

/// Whether `path` is a FUSE mount whose daemon is gone ("Transport endpoint is not
/// connected").
pub fn is_dead_mount(path: &Path) -> bool {
    // statfs always reaches the daemon (stat may be answered from the kernel's
    // attribute cache even after the daemon died).
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into a zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 {
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOTCONN)
}

/// The `major:minor` device of the mount at `path`, from /proc/self/mountinfo
/// (no stat: that would go through the mount and cache its root's attributes).
fn mount_dev(path: &Path) -> Option<String> {
    let abs = std::path::absolute(path).ok()?;
    let want = abs.as_os_str().as_bytes();
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|l| {
        let mut f = l.split(' ');
        let dev = f.nth(2)?;
        let mp = f.nth(1)?;
        (unescape_mountinfo(mp).as_slice() == want).then(|| dev.to_string())
    })
}

/// Whether `path` is a mount point listed in /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(abs) = std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = abs.as_os_str().as_bytes();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp).as_slice() == want)
    })
}

fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Unmounts `path`: a plain unmount, falling back to a lazy one when busy or when
/// `lazy` is asked for (a dead daemon's mount).
pub fn unmount_path(path: &Path, lazy: bool) -> Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .context("mountpoint contains a NUL byte")?;
    if !lazy {
        // SAFETY: `c` is a valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINVAL) && !is_mounted(path) {
            bail!("{} is not mounted", path.display());
        }
        tracing::warn!(error = %err, "plain unmount failed; detaching lazily");
    }
    // SAFETY: as above.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    // Not root: fall back to fusermount3, which can unmount the caller's own mounts.
    let status = std::process::Command::new("fusermount3")
        .arg("-uz")
        .arg(path)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => bail!("cannot unmount {}: {err}", path.display()),
    }
}

/// `memfs umount`: cleans up a mount, including one whose daemon died.
pub fn umount(path: &Path) -> Result<()> {
    if !is_mounted(path) && !is_dead_mount(path) {
        bail!("{} is not mounted", path.display());
    }
    let dead = is_dead_mount(path);
    let abs = std::path::absolute(path).context("cannot resolve the mountpoint")?;
    let daemons = crate::mount_pids::daemons_of(&abs);
    unmount_path(path, dead)?;
    // The daemon finishes after its mount goes (it releases its leases and
    // locks and leaves the list of live mounts): wait for it, so what runs
    // next (a migration, a backup) finds the mount fully stopped.
    if !crate::mount_pids::wait_gone(&daemons, UMOUNT_WAIT) {
        tracing::warn!(pids = ?daemons, "unmounted, but its daemon has not exited yet");
    }
    Ok(())
}

/// How long `memfs umount` waits for the daemon to finish.
const UMOUNT_WAIT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/tmp/a\\040b"), b"/tmp/a b".to_vec());
    }
}

//! A job's draft, mounted for its command: a FUSE session inside the server
//! process, on a database connection of its own, with the same filesystem
//! core as `memfs mount` (policies, quotas, content rules, versions, audit).
//! The job's rights were checked when it was asked for, so the draft is
//! attached read-write as the job's identity without the attach-time
//! allow-lists (which name agents, and the job is not one).
//!
//! Unlike `memfs mount` there is no group commit (every change commits before
//! its reply, so nothing is lost when the job is killed) and no change-feed
//! follower (nothing but the job writes to its draft).

use crate::config::Config;
use crate::fs::{Attached, FeedBarrier, FsOptions, MemFs};
use crate::fuse::FuseFs;
use crate::ids::Identity;
use crate::settings::StoreSettings;
use crate::store::StoreRow;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A mounted draft; [`JobMount::unmount`] takes it down (so does drop).
pub struct JobMount {
    mountpoint: PathBuf,
    fs: Arc<MemFs>,
    session: Option<fuser::BackgroundSession>,
    stop: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(1))
}

impl JobMount {
    /// Mounts `draft` at `mountpoint` (made if missing) as `who`. The draft
    /// shows at `mountpoint/<store name>`.
    pub fn mount(
        config: &Config,
        draft: &StoreRow,
        settings: &StoreSettings,
        who: &Identity,
        mountpoint: &Path,
    ) -> Result<JobMount> {
        std::fs::create_dir_all(mountpoint)
            .with_context(|| format!("cannot create {}", mountpoint.display()))?;
        let db = crate::daemon::open_db(config, false)?;
        let opts = FsOptions {
            max_file_bytes: config.daemon.max_file_bytes,
            spill_bytes: config.daemon.spill_bytes,
            spill_dir: config.daemon.spill_dir.clone(),
            lease_ttl: secs(config.daemon.lease_ttl_secs),
            lease_wait: secs(config.daemon.lease_wait_secs),
        };
        let attached = vec![Attached::new(draft.clone(), false, settings.policy())];
        let fs = Arc::new(MemFs::new(Arc::new(db), who.clone(), attached, opts));
        fs.register()
            .context("cannot register the job's mount in the database")?;
        let ffs = FuseFs::new(
            fs.clone(),
            Arc::new(FeedBarrier::default()),
            secs(config.cache.attr_ttl_secs),
            secs(config.cache.entry_ttl_secs),
        );
        let mut fc = fuser::Config::default();
        fc.mount_options = vec![
            fuser::MountOption::FSName("memfs".into()),
            fuser::MountOption::Subtype("memfs".into()),
            fuser::MountOption::DefaultPermissions,
            fuser::MountOption::NoAtime,
        ];
        // The command may run as another uid than the server.
        fc.acl = fuser::SessionACL::All;
        fc.n_threads = Some(config.daemon.threads.max(1));
        fc.clone_fd = config.daemon.threads > 1;
        let session = fuser::Session::new(ffs, mountpoint, &fc)
            .with_context(|| format!("cannot mount the job's draft at {}", mountpoint.display()))?
            .spawn()
            .context("cannot start the job's FUSE session")?;
        let stop = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (fs, stop) = (fs.clone(), stop.clone());
            let every = (secs(config.daemon.lease_ttl_secs) / 3).max(Duration::from_millis(50));
            std::thread::Builder::new()
                .name("memfs-job-renew".into())
                .spawn(move || {
                    let step = Duration::from_millis(50);
                    let mut since = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(step);
                        if since.elapsed() >= every {
                            since = Instant::now();
                            if let Err(e) = fs.renew() {
                                tracing::error!(error = %e, "cannot renew a job mount's leases");
                            }
                        }
                    }
                })?
        };
        Ok(JobMount {
            mountpoint: mountpoint.to_path_buf(),
            fs,
            session: Some(session),
            stop,
            renewer: Some(renewer),
        })
    }

    /// Unmounts (lazily if something still uses it), waits for the FUSE
    /// session to end, commits what is staged and releases leases.
    pub fn unmount(mut self) -> Result<()> {
        self.take_down()
    }

    fn take_down(&mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        if crate::daemon::is_mounted(&self.mountpoint) {
            result = crate::daemon::unmount_path(&self.mountpoint, false);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !session.guard.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if session.guard.is_finished() {
            if let Err(e) = session.join() {
                tracing::warn!(error = %e, "a job's FUSE session ended with an error");
            }
        } else {
            // Detached lazily and still busy: keep what was staged.
            if let Err(e) = self.fs.commit_all() {
                tracing::error!(error = %e, "cannot commit a job mount's staged writes");
            }
            std::mem::forget(session);
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        if let Err(e) = self.fs.unregister() {
            tracing::warn!(error = %e, "cannot release a job mount's leases; they expire by TTL");
        }
        result
    }
}

impl Drop for JobMount {
    fn drop(&mut self) {
        if let Err(e) = self.take_down() {
            tracing::warn!(error = %format!("{e:#}"), "cannot unmount a job's draft");
        }
    }
}

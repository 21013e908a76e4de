//! `mount.fuse.memfs`: what mount(8) runs for `-t fuse.memfs` and for fstab
//! lines such as
//!
//! ```text
//! memfs#team-kb  /mnt/memory  fuse.memfs  agent=planner,session=s1,_netdev  0 0
//! ```
//!
//! mount(8) calls `mount.fuse.memfs SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]`.
//! The source names the stores (`memfs#A,B:ro`; plain `memfs` attaches every
//! visible store); the options carry the identity and where things are. This
//! module turns that into the arguments of `memfs mount`, which then runs in
//! the background and returns once the mount is ready.

use std::ffi::OsString;
use std::path::PathBuf;

/// The program names (argv[0]) that mean "act as the mount helper".
pub const HELPER_NAMES: &[&str] = &["mount.fuse.memfs", "mount.memfs"];

/// The config used when neither `config=` nor `$MEMFS_CONFIG` says (mount(8)
/// runs helpers from `/`, where no ./memfs.toml is).
pub const DEFAULT_CONFIG: &str = "/etc/memfs/memfs.toml";

/// What a helper invocation asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub mountpoint: PathBuf,
    pub stores: Vec<String>,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub config: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub metrics: Option<String>,
    /// `-f`: mount(8) asks to do everything but mount.
    pub fake: bool,
}

/// Malformed helper arguments or options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    #[error("usage: mount.fuse.memfs memfs#STORE[,STORE:ro...] MOUNTPOINT -o agent=A,session=S[,user=U,config=PATH,db=PATH,log=PATH]")]
    Usage,
    #[error("unknown mount option '{0}' (memfs takes agent=, session=, user=, store=, config=, db=, log=, metrics=, ro and the generic fstab options)")]
    Unknown(String),
    #[error("mount option {0}= needs a value")]
    Empty(&'static str),
    #[error("mount option {0}= is required")]
    Missing(&'static str),
}

/// Options mount(8), fstab or systemd add that concern them, not memfs.
fn generic(opt: &str) -> bool {
    const PLAIN: &[&str] = &[
        "rw",
        "defaults",
        "auto",
        "noauto",
        "nofail",
        "_netdev",
        "user",
        "users",
        "nouser",
        "owner",
        "group",
        "dev",
        "nodev",
        "suid",
        "nosuid",
        "exec",
        "noexec",
        "async",
        "sync",
        "atime",
        "noatime",
        "relatime",
        "norelatime",
        "strictatime",
        "diratime",
        "nodiratime",
        "lazytime",
        "nolazytime",
        "loud",
        "silent",
    ];
    PLAIN.contains(&opt)
        || opt.starts_with("x-")
        || opt.starts_with("comment=")
        || opt.starts_with("context=")
}

/// Parses `SOURCE MOUNTPOINT [-sfnv] [-o OPTS] [-t TYPE] [-N NS]` (the
/// arguments after argv[0]).
pub fn parse(args: &[OsString]) -> Result<Request, HelperError> {
    let mut positional: Vec<&OsString> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut fake = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-o") => {
                let o = it.next().ok_or(HelperError::Usage)?;
                let o = o.to_str().ok_or(HelperError::Usage)?;
                options.extend(o.split(',').filter(|s| !s.is_empty()).map(str::to_string));
            }
            Some(o) if o.starts_with("-o") && o.len() > 2 => {
                options.extend(
                    o[2..]
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
            // The type and the namespace say nothing memfs needs.
            Some("-t" | "-N") => {
                it.next().ok_or(HelperError::Usage)?;
            }
            Some(f) if f.starts_with('-') && f.len() > 1 => {
                for c in f[1..].chars() {
                    match c {
                        'f' => fake = true,
                        's' | 'n' | 'v' | 'r' | 'w' => {}
                        _ => return Err(HelperError::Usage),
                    }
                    if c == 'r' {
                        options.push("ro".into());
                    }
                }
            }
            _ => positional.push(a),
        }
    }
    let [source, mountpoint] = positional[..] else {
        return Err(HelperError::Usage);
    };
    let source = source.to_str().ok_or(HelperError::Usage)?;
    let mut req = Request {
        mountpoint: PathBuf::from(mountpoint),
        fake,
        ..Default::default()
    };
    let list = source
        .strip_prefix("memfs#")
        .or_else(|| source.strip_prefix("memfs:"))
        .unwrap_or(if source == "memfs" { "" } else { source });
    req.stores = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut read_only = false;
    for opt in options {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        let need = |name: &'static str| {
            value
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or(HelperError::Empty(name))
        };
        match key {
            "agent" => req.agent = need("agent")?,
            "session" => req.session = need("session")?,
            "user" if value.is_some() => req.user = Some(need("user")?),
            "store" => req.stores.push(need("store")?),
            "config" => req.config = Some(need("config")?.into()),
            "db" => req.db = Some(need("db")?.into()),
            "log" => req.log = Some(need("log")?.into()),
            "metrics" => req.metrics = Some(need("metrics")?),
            "ro" => read_only = true,
            _ if generic(&opt) => {}
            _ => return Err(HelperError::Unknown(opt.clone())),
        }
    }
    if req.agent.is_empty() {
        return Err(HelperError::Missing("agent"));
    }
    if req.session.is_empty() {
        return Err(HelperError::Missing("session"));
    }
    if read_only {
        for s in &mut req.stores {
            if !s.ends_with(":ro") && !s.ends_with(":rw") {
                s.push_str(":ro");
            }
        }
    }
    Ok(req)
}

/// The `memfs` arguments (after argv[0]) that run this request in the foreground;
/// the caller starts them in the background. `env_config` is `$MEMFS_CONFIG`.
pub fn daemon_args(req: &Request, env_config: Option<OsString>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let config = req
        .config
        .clone()
        .map(OsString::from)
        .or(env_config)
        .or_else(|| {
            std::path::Path::new(DEFAULT_CONFIG)
                .exists()
                .then(|| DEFAULT_CONFIG.into())
        });
    if let Some(c) = config {
        a.extend(["--config".into(), c]);
    }
    if let Some(db) = &req.db {
        a.extend(["--db".into(), db.into()]);
    }
    a.extend([
        "mount".into(),
        req.mountpoint.clone().into(),
        "--agent".into(),
        req.agent.clone().into(),
        "--session".into(),
        req.session.clone().into(),
    ]);
    if let Some(u) = &req.user {
        a.extend(["--user".into(), u.into()]);
    }
    for s in &req.stores {
        a.extend(["--store".into(), s.into()]);
    }
    if let Some(l) = &req.log {
        a.extend(["--log-file".into(), l.into()]);
    }
    if let Some(m) = &req.metrics {
        a.extend(["--metrics".into(), m.into()]);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn an_fstab_line_becomes_a_mount_request() {
        let r = parse(&args(&[
            "memfs#team-kb,alice:ro",
            "/mnt/memory",
            "-o",
            "rw,agent=planner,session=s1,user=alice,_netdev,noauto,x-systemd.automount,config=/etc/m.toml",
        ]))
        .unwrap();
        assert_eq!(r.stores, ["team-kb", "alice:ro"]);
        assert_eq!((r.agent.as_str(), r.session.as_str()), ("planner", "s1"));
        assert_eq!(r.user.as_deref(), Some("alice"));
        assert_eq!(r.config, Some(PathBuf::from("/etc/m.toml")));
        let a = daemon_args(&r, None);
        let text: Vec<&str> = a.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            text,
            [
                "--config",
                "/etc/m.toml",
                "mount",
                "/mnt/memory",
                "--agent",
                "planner",
                "--session",
                "s1",
                "--user",
                "alice",
                "--store",
                "team-kb",
                "--store",
                "alice:ro"
            ]
        );
    }

    #[test]
    fn ro_and_flags() {
        let r = parse(&args(&[
            "memfs",
            "/m",
            "-nv",
            "-oagent=a,session=s,ro,store=kb",
        ]))
        .unwrap();
        assert_eq!(r.stores, ["kb:ro"]);
        assert!(!r.fake);
        assert!(
            parse(&args(&["memfs#kb", "/m", "-f", "-o", "agent=a,session=s"]))
                .unwrap()
                .fake
        );
    }

    #[test]
    fn what_is_refused() {
        assert_eq!(
            parse(&args(&["memfs#kb", "/m", "-o", "agent=a"])),
            Err(HelperError::Missing("session"))
        );
        assert_eq!(
            parse(&args(&[
                "memfs#kb",
                "/m",
                "-o",
                "agent=a,session=s,colour=blue"
            ])),
            Err(HelperError::Unknown("colour=blue".into()))
        );
        assert_eq!(
            parse(&args(&["memfs#kb", "-o", "agent=a,session=s"])),
            Err(HelperError::Usage)
        );
        assert_eq!(
            parse(&args(&["memfs#kb", "/m", "-o", "agent=,session=s"])),
            Err(HelperError::Empty("agent"))
        );
    }
}

//! The `memfs.toml` model: where the database lives, kernel cache TTLs, and declared stores.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration file. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The database: a SQLite path or a `postgres://` URL (overridden by
    /// `--db` / `$MEMFS_DB`).
    pub database: PathBuf,
    /// Master key file (32 random bytes or 64 hex characters, mode 0600);
    /// overridden by `$MEMFS_KEY_FILE`. With a key, new stores are encrypted.
    pub key_file: Option<PathBuf>,
    /// The keyring of per-store key-encryption keys (default: the key file's
    /// path + `.keyring`); overridden by `$MEMFS_KEYRING`.
    pub keyring: Option<PathBuf>,
    pub cache: CacheConfig,
    pub daemon: DaemonConfig,
    pub server: ServerConfig,
    /// Consolidation jobs (`POST /v1/dreams`): the command they run.
    pub jobs: crate::jobs::JobsConfig,
    /// Stores that `memfs init` creates if they do not exist.
    pub stores: Vec<StoreDecl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long the kernel may cache attributes, in seconds.
    pub attr_ttl_secs: f64,
    /// How long the kernel may cache name lookups (and misses), in seconds.
    pub entry_ttl_secs: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// FUSE dispatch threads.
    pub threads: usize,
    /// Staged writes larger than this many bytes spill from memory to a temp file.
    pub spill_bytes: usize,
    /// Where spilled staging files go (default: the system temp dir).
    pub spill_dir: Option<PathBuf>,
    /// Largest file size accepted, in bytes (larger writes/truncates get EFBIG).
    pub max_file_bytes: u64,
    /// A write lease lives this long without renewal (a dead daemon's leases
    /// expire after it), in seconds.
    pub lease_ttl_secs: f64,
    /// How long an open for writing waits for another writer's lease before EBUSY.
    pub lease_wait_secs: f64,
    /// How often the change feed is polled for other mounts' changes, in ms.
    pub feed_poll_ms: u64,
    /// Group commit: changes commit together at most this many ms after the
    /// first of them (fsync and unmount commit at once). 0 commits every change
    /// before its reply.
    pub commit_interval_ms: u64,
    /// Kernel readahead for the mount, in KiB (the FUSE default is 128): larger
    /// means fewer, larger READ requests for big sequential reads. 0 leaves it.
    pub read_ahead_kb: u64,
    /// How often a daemon runs the retention pass (gc), in seconds; 0 never.
    /// Daemons on one database take turns: a pass is skipped when any
    /// process finished one less than this long ago.
    pub gc_interval_secs: u64,
}

/// `memfs serve`: the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `HOST:PORT`, or `unix:PATH` for a unix socket (its file mode is the
    /// access control). Overridden by `memfs serve --listen`.
    pub listen: String,
    /// PEM certificate chain and private key: serve HTTPS. Needed to listen
    /// on anything but loopback or a unix socket (or `--insecure-plain-http`).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Largest archive `POST /v1/memfs/import` accepts, in bytes.
    pub max_import_bytes: u64,
    /// Largest content the API shows as text, in bytes; larger memories are
    /// listed with `content: null` and `memfs.content_unavailable`.
    pub max_content_bytes: u64,
    /// Worker threads of the async runtime (database work runs on a
    /// separate blocking pool).
    pub threads: usize,
    /// Where `GET /v1/sessions/{id}` says a sandbox mounts each store
    /// (`mount_path` = this root, then the store's slug), for the SDK's
    /// session memory sync.
    pub session_mount_root: String,
    /// Host names `/mcp` accepts in `Host` besides loopback (a guard against
    /// DNS rebinding): list the names clients use when serving off-box.
    pub mcp_allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8420".into(),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: 8 << 20,
            max_import_bytes: 4 << 30,
            max_content_bytes: 1 << 20,
            threads: 2,
            session_mount_root: "/mnt/memory".into(),
            mcp_allowed_hosts: Vec::new(),
        }
    }
}

/// A store declared in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDecl {
    pub name: String,
    #[serde(default = "default_scope")]
    pub scope: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Agent globs that may attach this org store (read-only unless also writers).
    /// With neither list, every agent may read and write.
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// Agent globs that may write this org store.
    #[serde(default)]
    pub writers: Option<Vec<String>>,
    /// Directories created with the store (`preferences/`, `knowledge_base/`...).
    #[serde(default)]
    pub template: Vec<String>,
    /// Files created with the store: path = content.
    #[serde(default)]
    pub seed: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub quota: QuotaDecl,
    #[serde(default)]
    pub policy: PolicyDecl,
    /// How long history is kept (`memfsctl gc` and the daemons' gc pass).
    #[serde(default)]
    pub retention: RetentionDecl,
    /// Whose writes go to a draft of their own (drafts by rule).
    #[serde(default)]
    pub drafts: DraftsDecl,
}

/// `[stores.drafts]`: the agents and sessions (globs) whose mounts write to a
/// draft of the store, one per session, instead of the store itself; their
/// changes reach the store when a person merges the draft.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DraftsDecl {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
}

impl DraftsDecl {
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.sessions.is_empty()
    }

    /// Whether a mount of `agent` in `session` writes to a draft.
    pub fn applies(&self, agent: &str, session: &str) -> bool {
        crate::fs::matches_any(&self.agents, agent)
            || crate::fs::matches_any(&self.sessions, session)
    }
}

/// `[stores.retention]`: how long a store keeps old versions. Unset keeps
/// everything. See [`crate::retention`] for the exact rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionDecl {
    /// Keep every version that was current within this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_days: Option<u32>,
    /// Keep this many newest versions of each file (the head counts; at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_versions: Option<u32>,
    /// Remove nothing while set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

impl From<RetentionDecl> for crate::retention::Retention {
    fn from(d: RetentionDecl) -> Self {
        crate::retention::Retention {
            keep_days: d.keep_days,
            keep_versions: d.keep_versions,
            legal_hold: d.legal_hold,
        }
    }
}

/// Store quotas; unset means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaDecl {
    /// Largest file, in bytes (EFBIG beyond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
    /// Total bytes of the store's files (EDQUOT beyond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Files, directories and symlinks (EDQUOT beyond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u64>,
}

/// Path policies: globs on store-relative paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDecl {
    /// Paths only `read_only_writers` may change (others get EROFS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_only: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_only_writers: Vec<String>,
    /// Paths where files may only be created and appended to (others get EPERM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub append_only: Vec<String>,
    /// PII and secret scanning of every committed version: off, tag, redact, block.
    #[serde(default)]
    pub pii: crate::fs::PiiMode,
    /// Glob = format ("json", "jsonl", "toml", "yaml"): matching files must parse.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub validate: std::collections::BTreeMap<String, FormatName>,
}

/// A format name in `validate` (checked when the config is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Json,
    Jsonl,
    Toml,
    Yaml,
}

impl From<FormatName> for crate::scan::Format {
    fn from(f: FormatName) -> Self {
        match f {
            FormatName::Json => crate::scan::Format::Json,
            FormatName::Jsonl => crate::scan::Format::Jsonl,
            FormatName::Toml => crate::scan::Format::Toml,
            FormatName::Yaml => crate::scan::Format::Yaml,
        }
    }
}

impl StoreDecl {
    /// The settings this declaration seeds into the database (see
    /// [`crate::settings`]): allow-lists, policies, quotas, content rules.
    pub fn settings(&self) -> crate::settings::StoreSettings {
        crate::settings::StoreSettings {
            readers: self.readers.clone(),
            writers: self.writers.clone(),
            quota: self.quota.clone(),
            policy: self.policy.clone(),
            retention: self.retention,
            drafts: self.drafts.clone(),
        }
    }
}

impl Config {
    /// The declaration of store `name`, if the config has one.
    pub fn store(&self, name: &str) -> Option<&StoreDecl> {
        self.stores.iter().find(|s| s.name == name)
    }
}

fn default_scope() -> String {
    "org".to_string()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: PathBuf::from("/var/lib/memfs/memfs.db"),
            key_file: None,
            keyring: None,
            cache: CacheConfig::default(),
            daemon: DaemonConfig::default(),
            server: ServerConfig::default(),
            jobs: Default::default(),
            stores: Vec::new(),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            attr_ttl_secs: 10.0,
            entry_ttl_secs: 10.0,
        }
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            threads: 2,
            spill_bytes: 8 << 20,
            spill_dir: None,
            max_file_bytes: 4 << 30,
            lease_ttl_secs: 30.0,
            lease_wait_secs: 2.0,
            feed_poll_ms: 50,
            commit_interval_ms: 5,
            read_ahead_kb: 1024,
            gc_interval_secs: 3600,
        }
    }
}

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl Config {
    /// Parses a configuration from TOML text.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Finds and loads the config: `explicit` (from `--config`), else `$MEMFS_CONFIG`,
    /// else `./memfs.toml`; a missing `./memfs.toml` means all defaults. Then applies
    /// the database override (`--db`, else `$MEMFS_DB`).
    pub fn load(
        explicit: Option<&Path>,
        db_override: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let env_path = std::env::var_os("MEMFS_CONFIG").map(PathBuf::from);
        let (path, required) = match (explicit, env_path) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p, true),
            (None, None) => (PathBuf::from("memfs.toml"), false),
        };
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text, &path)?,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        if let Some(db) = db_override {
            config.database = db.to_path_buf();
        } else if let Some(db) = std::env::var_os("MEMFS_DB") {
            config.database = PathBuf::from(db);
        }
        if let Some(k) = std::env::var_os("MEMFS_KEY_FILE").filter(|k| !k.is_empty()) {
            config.key_file = Some(PathBuf::from(k));
        }
        if let Some(k) = std::env::var_os("MEMFS_KEYRING").filter(|k| !k.is_empty()) {
            config.keyring = Some(PathBuf::from(k));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        let c = Config::parse("", Path::new("x")).unwrap();
        assert_eq!(c.daemon.threads, 2);
        assert!(c.stores.is_empty());
    }

    #[test]
    fn repository_memfs_toml_parses() {
        let text = include_str!("../memfs.toml");
        let c = Config::parse(text, Path::new("memfs.toml")).unwrap();
        assert!(!c.stores.is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_path() {
        let err = Config::parse("databse = 'x'", Path::new("/etc/m.toml")).unwrap_err();
        assert!(err.to_string().contains("/etc/m.toml"), "{err}");
    }
}

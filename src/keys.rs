//! The master key file: finding it (`MEMFS_KEY_FILE`, else `key_file` in
//! memfs.toml), refusing one that others can read, parsing it (32 raw bytes or
//! 64 hex characters) and generating a new one (`memfsctl key generate`).

use crate::config::Config;
use crate::store::keyring::{hex, unhex};
use crate::store::Key;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {path} is readable by group or others (mode {mode:03o}); run `chmod 600 {path}`"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("key file {path} must hold 32 random bytes or 64 hex characters")]
    Format { path: PathBuf },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a key: {0}")]
    Random(String),
}

/// The configured key file and keyring paths, if a key file is configured.
/// The keyring defaults to `KEY_FILE.keyring` beside the key file, outside the
/// database's directory, so copies of the database do not take it along.
pub fn paths(config: &Config) -> Option<(PathBuf, PathBuf)> {
    let key = config.key_file.clone()?;
    let ring = config.keyring.clone().unwrap_or_else(|| {
        let mut s = key.as_os_str().to_owned();
        s.push(".keyring");
        PathBuf::from(s)
    });
    Some((key, ring))
}

/// Reads a master key file.
pub fn read_key_file(path: &Path) -> Result<Key, KeyError> {
    let read = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let raw = if bytes.len() == 32 {
        Some(bytes)
    } else {
        std::str::from_utf8(&bytes)
            .ok()
            .map(str::trim)
            .filter(|s| s.len() == 64)
            .and_then(unhex)
    };
    raw.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(Key::from_bytes)
        .ok_or_else(|| KeyError::Format {
            path: path.to_path_buf(),
        })
}

/// Writes a new random master key (64 hex characters, mode 0600) to `path`,
/// which must not exist.
pub fn generate(path: &Path) -> Result<(), KeyError> {
    let write = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let key: [u8; 32] =
        crate::store::crypto::random().map_err(|e| KeyError::Random(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write)?;
    f.write_all(format!("{}\n", hex(&key)).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_read_back_and_exposed_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        generate(&p).unwrap();
        assert!(generate(&p).is_err(), "never overwrites a key");
        let k = read_key_file(&p).unwrap();
        std::fs::write(dir.path().join("raw"), k.0).unwrap();
        let raw = dir.path().join("raw");
        std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key_file(&raw).unwrap().0, k.0);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_key_file(&p).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::write(&raw, "short").unwrap();
        let err = read_key_file(&raw).unwrap_err().to_string();
        assert!(err.contains("64 hex"), "{err}");
    }
}

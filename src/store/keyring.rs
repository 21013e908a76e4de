//! The keyring file: each encrypted store's key-encryption key, sealed under the
//! master key, kept outside the database so that removing an entry makes that
//! store unreadable in every copy of the database.
//!
//! A text file (mode 0600), rewritten whole (temp file, fsync, rename, fsync of
//! the directory) under an exclusive `flock` on `PATH.lock`:
//!
//! ```text
//! memfs-keyring 1
//! check NONCE TAG                 the master key seals "" with AD "memfs keyring check v1"
//! key KEY_ID NONCE SEALED_KEK     AD "memfs keyring kek v1" || KEY_ID
//! ```

use super::crypto::{open, seal, Key, KEY_LEN};
use crate::error::{StoreError, StoreResult};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const HEADER: &str = "memfs-keyring 1";
const CHECK_AD: &[u8] = b"memfs keyring check v1";

fn kek_ad(key_id: &[u8]) -> Vec<u8> {
    let mut ad = b"memfs keyring kek v1".to_vec();
    ad.extend_from_slice(key_id);
    ad
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// One parsed keyring: the check line and the sealed entries, in file order.
struct Ring {
    check: (Vec<u8>, Vec<u8>),
    entries: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

fn bad(path: &Path, what: &str) -> StoreError {
    StoreError::Corrupt(format!("keyring {}: {what}", path.display()))
}

fn parse(path: &Path, text: &str) -> StoreResult<Ring> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad(path, "not a memfs keyring (bad first line)"));
    }
    let mut check = None;
    let mut entries = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["check", n, t] => {
                check = Some((
                    unhex(n).ok_or_else(|| bad(path, "bad check line"))?,
                    unhex(t).ok_or_else(|| bad(path, "bad check line"))?,
                ))
            }
            ["key", id, n, k] => entries.push((
                unhex(id).ok_or_else(|| bad(path, "bad key line"))?,
                unhex(n).ok_or_else(|| bad(path, "bad key line"))?,
                unhex(k).ok_or_else(|| bad(path, "bad key line"))?,
            )),
            [""] => {}
            _ => return Err(bad(path, "unknown line")),
        }
    }
    let check = check.ok_or_else(|| bad(path, "no check line"))?;
    Ok(Ring { check, entries })
}

fn render(ring: &Ring) -> String {
    let mut out = format!(
        "{HEADER}\ncheck {} {}\n",
        hex(&ring.check.0),
        hex(&ring.check.1)
    );
    for (id, n, k) in &ring.entries {
        out.push_str(&format!("key {} {} {}\n", hex(id), hex(n), hex(k)));
    }
    out
}

/// Reads the keyring, `None` if the file does not exist.
fn read(path: &Path, master: &Key) -> StoreResult<Option<Ring>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot read keyring {}: {e}", path.display()),
            )))
        }
    };
    let ring = parse(path, &text)?;
    if open(master, CHECK_AD, &ring.check.0, &ring.check.1).is_none() {
        return Err(StoreError::Locked(format!(
            "the master key does not open keyring {} (wrong key file?)",
            path.display()
        )));
    }
    Ok(Some(ring))
}

/// Every key-encryption key in the keyring by key id; `None` if the file does not exist.
pub fn load(path: &Path, master: &Key) -> StoreResult<Option<HashMap<Vec<u8>, Key>>> {
    let Some(ring) = read(path, master)? else {
        return Ok(None);
    };
    let mut out = HashMap::new();
    for (id, nonce, sealed) in ring.entries {
        let kek = open(master, &kek_ad(&id), &nonce, &sealed)
            .and_then(|b| <[u8; KEY_LEN]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| bad(path, &format!("entry {} does not open", hex(&id))))?;
        out.insert(id, Key::from_bytes(kek));
    }
    Ok(Some(out))
}

/// Adds a key-encryption key (creating the keyring if needed).
pub fn add(path: &Path, master: &Key, key_id: &[u8], kek: &Key) -> StoreResult<()> {
    let _lock = lock(path)?;
    let mut ring = match read(path, master)? {
        Some(r) => r,
        None => {
            let (n, t) = seal(master, CHECK_AD, b"")?;
            Ring {
                check: (n.to_vec(), t),
                entries: Vec::new(),
            }
        }
    };
    let (nonce, sealed) = seal(master, &kek_ad(key_id), &kek.0)?;
    ring.entries.push((key_id.to_vec(), nonce.to_vec(), sealed));
    write(path, &render(&ring))
}

/// Removes a key-encryption key. Removing one that is not there is not an error
/// (a shred that failed half-way is finished by running it again).
pub fn remove(path: &Path, master: &Key, key_id: &[u8]) -> StoreResult<()> {
    let _lock = lock(path)?;
    let Some(mut ring) = read(path, master)? else {
        return Ok(());
    };
    let before = ring.entries.len();
    ring.entries.retain(|(id, _, _)| id.as_slice() != key_id);
    if ring.entries.len() == before {
        return Ok(());
    }
    write(path, &render(&ring))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// An exclusive lock on `PATH.lock`, released when dropped (the file closes).
fn lock(path: &Path) -> StoreResult<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(with_suffix(path, ".lock"))?;
    // SAFETY: flock on a descriptor we own; it has no memory preconditions.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(StoreError::Io(std::io::Error::last_os_error()));
    }
    Ok(f)
}

/// Replaces the keyring atomically and durably.
fn write(path: &Path, text: &str) -> StoreResult<()> {
    let tmp = with_suffix(path, ".tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

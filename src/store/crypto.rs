//! Encryption at rest: sealing chunks with a per-store data key, and the key
//! hierarchy that makes crypto-shredding hold for every copy of the database.
//!
//! Three keys (all 32 bytes, XChaCha20-Poly1305 with a random 24-byte nonce):
//!
//! - the **master key**, in a key file outside the database;
//! - one **key-encryption key (KEK)** per store, only in the keyring file
//!   ([`super::keyring`]), sealed under the master key;
//! - one **data key (DEK)** per store, in `store_keys`, sealed under that KEK.
//!
//! Shredding a store removes its KEK from the keyring. Every copy of the
//! database still holds the sealed DEK, but nothing can open it any more.
//! Chunk encryption and dedupe keys are derived from the DEK, so the database
//! alone reveals neither content nor which stores share content.

use super::sql::{params, OptionalExtension};
use super::{keyring, Db, Engine, Txn};
use crate::error::{StoreError, StoreResult};
use crate::ids::StoreId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;
pub const KEY_ID_LEN: usize = 16;

/// A secret key. Its `Debug` never prints the bytes.
#[derive(Clone)]
pub struct Key(pub(crate) [u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Key {
        Key(b)
    }

    /// A fresh random key from the operating system.
    pub fn random() -> StoreResult<Key> {
        Ok(Key(random()?))
    }

    /// A subkey for one purpose (blake3's key derivation).
    fn derive(&self, context: &str) -> Key {
        Key(blake3::derive_key(context, &self.0))
    }
}

/// Random bytes from the operating system.
pub fn random<const N: usize>() -> StoreResult<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| StoreError::Io(std::io::Error::other(format!("no randomness: {e}"))))?;
    Ok(b)
}

/// Encrypts and authenticates `plain` with `ad`: returns the nonce and ciphertext.
pub fn seal(key: &Key, ad: &[u8], plain: &[u8]) -> StoreResult<([u8; NONCE_LEN], Vec<u8>)> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let ct = XChaCha20Poly1305::new((&key.0).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: ad,
            },
        )
        .map_err(|_| StoreError::Invalid("encryption failed".into()))?;
    Ok((nonce, ct))
}

/// Decrypts `ct`; `None` if it was not sealed with this key, nonce and `ad`.
pub fn open(key: &Key, ad: &[u8], nonce: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    if nonce.len() != NONCE_LEN {
        return None;
    }
    XChaCha20Poly1305::new((&key.0).into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: ad })
        .ok()
}

/// An unlocked store data key: the chunk cipher key and the dedupe MAC key.
pub struct StoreKey {
    enc: Key,
    mac: Key,
}

impl StoreKey {
    fn new(dek: &Key) -> StoreKey {
        StoreKey {
            enc: dek.derive("memfs 2026 chunk encryption"),
            mac: dek.derive("memfs 2026 chunk dedupe"),
        }
    }

    /// The dedupe key of a chunk: keyed blake3, so equal chunks in different
    /// stores get different hashes and a guessed plaintext cannot be confirmed.
    pub fn chunk_hash(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.mac.0, data).as_bytes()
    }

    /// `nonce || ciphertext || tag`, bound to the store and the chunk's hash.
    pub fn seal_chunk(&self, store: StoreId, hash: &[u8], data: &[u8]) -> StoreResult<Vec<u8>> {
        let (nonce, ct) = seal(&self.enc, &chunk_ad(store, hash), data)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open_chunk(&self, store: StoreId, hash: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ct) = sealed.split_at_checked(NONCE_LEN)?;
        open(&self.enc, &chunk_ad(store, hash), nonce, ct)
    }
}

fn chunk_ad(store: StoreId, hash: &[u8]) -> Vec<u8> {
    let mut ad = b"memfs chunk v1".to_vec();
    ad.extend_from_slice(&store.0.to_le_bytes());
    ad.extend_from_slice(hash);
    ad
}

fn dek_ad(store: StoreId, key_id: &[u8]) -> Vec<u8> {
    let mut ad = b"memfs store key v1".to_vec();
    ad.extend_from_slice(&store.0.to_le_bytes());
    ad.extend_from_slice(key_id);
    ad
}

/// A store's key row as read from the database.
pub(crate) struct KeyRow {
    pub name: String,
    pub encrypted: bool,
    /// `(key_id, sealed data key, nonce)`; `None` once shredded.
    pub key: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

/// Unlocked store keys by (store id, key id).
type UnlockedKeys = HashMap<(i64, Vec<u8>), Arc<StoreKey>>;

/// The keys a database handle holds: the master key and keyring path (when
/// configured), the KEKs read from the keyring, and unlocked store keys.
#[derive(Default)]
pub struct Crypto {
    master: Option<Key>,
    keyring: Option<PathBuf>,
    keks: Mutex<HashMap<Vec<u8>, Key>>,
    stores: Mutex<UnlockedKeys>,
    /// Shredded stores already logged (one log line per store per process).
    logged: Mutex<HashSet<i64>>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Crypto {
    /// Whether new stores are encrypted (a master key is configured).
    pub fn enabled(&self) -> bool {
        self.master.is_some()
    }

    fn keyring_path(&self) -> StoreResult<(&Key, &Path)> {
        match (&self.master, &self.keyring) {
            (Some(m), Some(k)) => Ok((m, k)),
            _ => Err(StoreError::Locked(
                "no master key is configured (MEMFS_KEY_FILE or key_file in memfs.toml)".into(),
            )),
        }
    }

    /// Re-reads the keyring (another process may have added or removed keys).
    fn reload(&self) -> StoreResult<()> {
        let (master, path) = self.keyring_path()?;
        let keks = keyring::load(path, master)?.unwrap_or_default();
        *guard(&self.keks) = keks;
        Ok(())
    }

    /// The unlocked key of an encrypted store (`row.encrypted` is true).
    pub(crate) fn store_key(&self, store: StoreId, row: &KeyRow) -> StoreResult<Arc<StoreKey>> {
        let Some((key_id, sealed, nonce)) = &row.key else {
            return Err(self.shredded(store, &row.name));
        };
        if let Some(k) = guard(&self.stores).get(&(store.0, key_id.clone())) {
            return Ok(k.clone());
        }
        if self.master.is_none() {
            return Err(StoreError::Locked(format!(
                "store '{}' is encrypted and no master key is configured (MEMFS_KEY_FILE or key_file in memfs.toml)",
                row.name
            )));
        }
        let mut kek = guard(&self.keks).get(key_id).cloned();
        if kek.is_none() {
            self.reload()?;
            kek = guard(&self.keks).get(key_id).cloned();
        }
        let Some(kek) = kek else {
            // The keyring no longer has this store's KEK: this database (or this
            // copy of it) belongs to a store that was shredded.
            return Err(self.shredded(store, &row.name));
        };
        let dek = open(&kek, &dek_ad(store, key_id), nonce, sealed)
            .and_then(|b| <[u8; KEY_LEN]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the data key of store '{}' does not open with its keyring entry",
                    row.name
                ))
            })?;
        let key = Arc::new(StoreKey::new(&Key(dek)));
        guard(&self.stores).insert((store.0, key_id.clone()), key.clone());
        Ok(key)
    }

    fn shredded(&self, store: StoreId, name: &str) -> StoreError {
        if guard(&self.logged).insert(store.0) {
            tracing::error!(
                store = name,
                "store {name} was shredded; its content is unrecoverable"
            );
        }
        StoreError::Shredded(name.to_string())
    }

    /// Makes a new store's keys: its KEK goes to the keyring (durably, before
    /// the database row that needs it), its sealed DEK is returned for
    /// `store_keys`. `None` when encryption is not configured.
    fn new_store_key(&self, store: StoreId) -> StoreResult<Option<NewKey>> {
        if self.master.is_none() {
            return Ok(None);
        }
        let (master, path) = self.keyring_path()?;
        let key_id: [u8; KEY_ID_LEN] = random()?;
        let kek = Key::random()?;
        let dek = Key::random()?;
        keyring::add(path, master, &key_id, &kek)?;
        guard(&self.keks).insert(key_id.to_vec(), kek.clone());
        let (nonce, sealed) = seal(&kek, &dek_ad(store, &key_id), &dek.0)?;
        guard(&self.stores).insert((store.0, key_id.to_vec()), Arc::new(StoreKey::new(&dek)));
        Ok(Some(NewKey {
            key_id: key_id.to_vec(),
            sealed,
            nonce: nonce.to_vec(),
        }))
    }

    /// Removes a store's KEK from the keyring: the shred itself.
    fn destroy(&self, key_id: &[u8]) -> StoreResult<()> {
        let (master, path) = self.keyring_path()?;
        keyring::remove(path, master, key_id)?;
        guard(&self.keks).remove(key_id);
        guard(&self.stores).retain(|(_, k), _| k.as_slice() != key_id);
        Ok(())
    }
}

struct NewKey {
    key_id: Vec<u8>,
    sealed: Vec<u8>,
    nonce: Vec<u8>,
}

/// What [`Db::unlock`] found.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnlockInfo {
    /// Stores whose content is encrypted (shredded ones included).
    pub encrypted: u64,
    /// Encrypted stores whose key is gone.
    pub shredded: u64,
}

impl Db {
    /// Configures the master key and keyring, and checks them against the
    /// database: a database with encrypted stores needs the master key, and the
    /// master key must open the keyring. Without a master key new stores are
    /// stored in plaintext.
    pub fn unlock(
        &mut self,
        master: Option<Key>,
        keyring_path: Option<PathBuf>,
    ) -> StoreResult<UnlockInfo> {
        let (encrypted, keyed): (i64, i64) = self.read(|tx| {
            tx.conn.query_row(
                "SELECT count(*), count(k.store_id) FROM stores s \
                 LEFT JOIN store_keys k ON k.store_id = s.id WHERE s.encrypted <> 0",
                (),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })?;
        let info = UnlockInfo {
            encrypted: encrypted.max(0) as u64,
            shredded: (encrypted - keyed).max(0) as u64,
        };
        let Some(master) = master else {
            if keyed > 0 {
                return Err(StoreError::Locked(format!(
                    "the database holds {keyed} encrypted store(s) and no master key is configured \
                     (set MEMFS_KEY_FILE or key_file in memfs.toml)"
                )));
            }
            return Ok(info);
        };
        let path = keyring_path.ok_or_else(|| StoreError::Invalid("no keyring path".into()))?;
        let keks = match keyring::load(&path, &master)? {
            Some(k) => k,
            None if keyed > 0 => {
                return Err(StoreError::Locked(format!(
                    "keyring {} does not exist, but the database holds {keyed} encrypted store(s) \
                     (wrong keyring path, or the keyring was lost)",
                    path.display()
                )))
            }
            None => HashMap::new(),
        };
        self.crypto = Crypto {
            master: Some(master),
            keyring: Some(path),
            keks: Mutex::new(keks),
            ..Crypto::default()
        };
        Ok(info)
    }

    /// Whether new stores get encrypted.
    pub fn encrypting(&self) -> bool {
        self.crypto.enabled()
    }

    /// Turns on SQLite's `secure_delete` for this handle (freed pages and
    /// deleted rows are overwritten with zeros).
    pub fn secure_delete(&self) -> StoreResult<()> {
        let Engine::Lite(lite) = &self.engine else {
            return Ok(());
        };
        let mut g = lite.lock();
        g.end_read();
        g.commit()?;
        g.conn.pragma_update(None, "secure_delete", "ON")?;
        Ok(())
    }

    /// Copies the WAL into the database and truncates it, so deleted rows do not
    /// linger in WAL frames.
    pub fn checkpoint(&self) -> StoreResult<()> {
        let Engine::Lite(lite) = &self.engine else {
            return Ok(());
        };
        let mut g = lite.lock();
        g.end_read();
        g.commit()?;
        g.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

impl Txn<'_> {
    /// The key state of a store: `None` when its content is plaintext.
    pub(crate) fn store_sealing(&self, store: StoreId) -> StoreResult<Option<Arc<StoreKey>>> {
        if let Some(k) = self.with_cache(|c| c.sealing.get(&store.0).cloned()) {
            return Ok(k);
        }
        let key = self.read_store_sealing(store)?;
        self.with_cache(|c| c.sealing.insert(store.0, key.clone()));
        Ok(key)
    }

    fn read_store_sealing(&self, store: StoreId) -> StoreResult<Option<Arc<StoreKey>>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT s.name, s.encrypted, k.key_id, k.wrapped_key, k.nonce FROM stores s \
                 LEFT JOIN store_keys k ON k.store_id = s.id WHERE s.id = ?1",
            )?
            .query_row([store.0], key_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("store {}", store.0)))?;
        if !row.encrypted {
            return Ok(None);
        }
        self.crypto.store_key(store, &row).map(Some)
    }

    /// Gives a new store its keys when encryption is configured.
    pub(crate) fn init_store_key(&self, store: StoreId, now_ns: i64) -> StoreResult<bool> {
        self.with_cache(|c| c.sealing.clear());
        let Some(k) = self.crypto.new_store_key(store)? else {
            return Ok(false);
        };
        self.conn
            .prepare_cached(
                "INSERT INTO store_keys (store_id, key_id, wrapped_key, nonce, created_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![store.0, k.key_id, k.sealed, k.nonce, now_ns])?;
        self.conn
            .prepare_cached("UPDATE stores SET encrypted = 1 WHERE id = ?1")?
            .execute([store.0])?;
        Ok(true)
    }

    /// Destroys a store's key: its KEK leaves the keyring first (so a failure
    /// after that still leaves the store unreadable), then its sealed DEK leaves
    /// the database. Returns false if the store was not encrypted.
    pub(crate) fn destroy_store_key(&self, store: StoreId) -> StoreResult<bool> {
        self.with_cache(|c| c.sealing.clear());
        let row: Option<(bool, Option<Vec<u8>>)> = self
            .conn
            .prepare_cached(
                "SELECT s.encrypted, k.key_id FROM stores s \
                 LEFT JOIN store_keys k ON k.store_id = s.id WHERE s.id = ?1",
            )?
            .query_row([store.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((true, key_id)) = row else {
            return Ok(false);
        };
        if let Some(key_id) = key_id {
            self.crypto.destroy(&key_id)?;
        }
        self.conn
            .prepare_cached("DELETE FROM store_keys WHERE store_id = ?1")?
            .execute([store.0])?;
        Ok(true)
    }
}

fn key_row(r: &super::sql::Row<'_>) -> StoreResult<KeyRow> {
    key_row_at(r, 0)
}

/// Reads `name, encrypted, key_id, wrapped_key, nonce` starting at column `at`.
pub(crate) fn key_row_at(r: &super::sql::Row<'_>, at: usize) -> StoreResult<KeyRow> {
    let key_id: Option<Vec<u8>> = r.get(at + 2)?;
    Ok(KeyRow {
        name: r.get(at)?,
        encrypted: r.get(at + 1)?,
        key: match key_id {
            Some(id) => Some((id, r.get(at + 3)?, r.get(at + 4)?)),
            None => None,
        },
    })
}

#[cfg(test)]
mod tests;

//! Encryption at rest on real database files: sealing, tamper detection,
//! crypto-shredding (also of an earlier copy), unlock errors, and plaintext
//! stores from before encryption staying readable.

use super::*;
use crate::ids::{ChunkId, Identity};
use crate::store::Scope;

const SENTENCE: &[u8] = b"the quiet heron counts seventeen copper bells at dawn";

struct World {
    dir: tempfile::TempDir,
    master: Key,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            master: Key::random().unwrap(),
        }
    }
    fn db_path(&self) -> PathBuf {
        self.dir.path().join("memfs.db")
    }
    fn ring(&self) -> PathBuf {
        self.dir.path().join("keys").join("master.key.keyring")
    }
    fn open(&self, path: &Path, keyed: bool) -> StoreResult<Db> {
        let mut db = Db::open(path)?;
        if keyed {
            db.unlock(Some(self.master.clone()), Some(self.ring()))?;
        } else {
            db.unlock(None, None)?;
        }
        Ok(db)
    }
}

fn who() -> Identity {
    Identity::new("test", "s1", None)
}

fn store_with(db: &Db, name: &str, data: &[u8]) -> (StoreId, ChunkId) {
    db.write(|tx| {
        let s = tx.create_store(name, Scope::Org, None, "", &who(), 1)?;
        let e = tx.put_chunk(s.id, data)?;
        Ok::<_, StoreError>((s.id, e.chunk.unwrap()))
    })
    .unwrap()
}

fn raw_contains(path: &Path, needle: &[u8]) -> bool {
    let mut hay = std::fs::read(path).unwrap_or_default();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    hay.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn seal_and_open_bind_key_and_associated_data() {
    let k = Key::random().unwrap();
    let (n, ct) = seal(&k, b"ad", b"hello").unwrap();
    assert_eq!(open(&k, b"ad", &n, &ct).unwrap(), b"hello");
    assert!(open(&k, b"other ad", &n, &ct).is_none());
    assert!(open(&Key::random().unwrap(), b"ad", &n, &ct).is_none());
    let mut bad = ct.clone();
    bad[0] ^= 1;
    assert!(open(&k, b"ad", &n, &bad).is_none());
}

#[test]
fn keyring_add_remove_and_wrong_master() {
    let w = World::new();
    let kek = Key::random().unwrap();
    keyring::add(&w.ring(), &w.master, b"id-1", &kek).unwrap();
    keyring::add(&w.ring(), &w.master, b"id-2", &Key::random().unwrap()).unwrap();
    let keks = keyring::load(&w.ring(), &w.master).unwrap().unwrap();
    assert_eq!(keks[b"id-1".as_slice()].0, kek.0);
    keyring::remove(&w.ring(), &w.master, b"id-1").unwrap();
    let keks = keyring::load(&w.ring(), &w.master).unwrap().unwrap();
    assert!(!keks.contains_key(b"id-1".as_slice()) && keks.len() == 1);
    let err = keyring::load(&w.ring(), &Key::random().unwrap()).unwrap_err();
    assert!(err.to_string().contains("does not open keyring"), "{err}");
    let text = std::fs::read_to_string(w.ring()).unwrap();
    assert!(!text.contains(&keyring::hex(&kek.0)), "KEKs are sealed");
}

#[test]
fn encrypted_chunks_read_back_and_leave_no_plaintext() {
    let w = World::new();
    let db = w.open(&w.db_path(), true).unwrap();
    let (_, c) = store_with(&db, "secret", SENTENCE);
    assert_eq!(db.read(|tx| tx.chunk_data(c)).unwrap(), SENTENCE);
    db.checkpoint().unwrap();
    assert!(!raw_contains(&w.db_path(), SENTENCE));
    // Dedupe still works within the store.
    let again = db
        .write(|tx| {
            let s = tx.store_by_name("secret")?.unwrap();
            tx.put_chunk(s.id, SENTENCE)
        })
        .unwrap();
    assert_eq!(again.chunk, Some(c));
}

#[test]
fn a_modified_chunk_is_an_authentication_error_not_garbage() {
    let w = World::new();
    let db = w.open(&w.db_path(), true).unwrap();
    let (_, c) = store_with(&db, "secret", SENTENCE);
    let (_, other) = store_with(&db, "other", b"another store's chunk, same key hierarchy");
    db.write(|tx| {
        let mut data: Vec<u8> =
            tx.conn
                .query_row("SELECT data FROM chunks WHERE id = ?1", [c.0], |r| r.get(0))?;
        data[30] ^= 0x01;
        tx.conn.execute(
            "UPDATE chunks SET data = ?2 WHERE id = ?1",
            crate::store::sql::params![c.0, data],
        )
    })
    .unwrap();
    let err = db.read(|tx| tx.chunk_data(c)).unwrap_err();
    assert!(err.to_string().contains("fails authentication"), "{err}");
    // A chunk moved into another store does not open there either.
    db.write(|tx| {
        tx.conn
            .execute("UPDATE chunks SET store_id = (SELECT store_id FROM chunks WHERE id = ?1) WHERE id = ?2", [c.0, other.0])})
    .unwrap();
    assert!(db.read(|tx| tx.chunk_data(other)).is_err());
}

#[test]
fn shredding_makes_the_store_unreadable_also_in_an_earlier_copy() {
    let w = World::new();
    let db = w.open(&w.db_path(), true).unwrap();
    let (_, c) = store_with(&db, "secret", SENTENCE);
    let (_, keep) = store_with(&db, "kept", b"this store is not shredded");
    db.checkpoint().unwrap();
    let copy = w.dir.path().join("backup.db");
    std::fs::copy(w.db_path(), &copy).unwrap();

    db.secure_delete().unwrap();
    db.write(|tx| {
        let s = tx.store_by_name("secret")?.unwrap();
        tx.shred_store(&s, &who(), 2)
    })
    .unwrap();
    db.checkpoint().unwrap();
    let err = db.read(|tx| tx.chunk_data(c)).unwrap_err();
    assert!(matches!(err, StoreError::Shredded(_)), "{err}");
    assert!(err.to_string().contains("crypto-shredded"), "{err}");
    let s = db.read(|tx| tx.store_by_name("secret")).unwrap().unwrap();
    assert!(s.shredded && s.archived && s.encrypted);
    assert!(db.read(|tx| tx.chunk_data(keep)).is_ok());

    // The copy still holds the sealed data key, but its KEK is gone.
    let old = w.open(&copy, true).unwrap();
    let err = old.read(|tx| tx.chunk_data(c)).unwrap_err();
    assert!(matches!(err, StoreError::Shredded(_)), "{err}");
    assert!(old.read(|tx| tx.chunk_data(keep)).is_ok());
}

#[test]
fn unlock_refuses_a_missing_or_wrong_key() {
    let w = World::new();
    store_with(&w.open(&w.db_path(), true).unwrap(), "secret", SENTENCE);
    let err = w.open(&w.db_path(), false).err().unwrap();
    assert!(err.to_string().contains("no master key"), "{err}");
    let mut db = Db::open(&w.db_path()).unwrap();
    let err = db
        .unlock(Some(Key::random().unwrap()), Some(w.ring()))
        .unwrap_err();
    assert!(err.to_string().contains("wrong key file"), "{err}");
    let err = db
        .unlock(Some(w.master.clone()), Some(w.dir.path().join("nope")))
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn plaintext_stores_stay_readable_after_encryption_is_turned_on() {
    let w = World::new();
    let plain_db = w.open(&w.db_path(), false).unwrap();
    let (_, old) = store_with(&plain_db, "old", SENTENCE);
    drop(plain_db);
    let db = w.open(&w.db_path(), true).unwrap();
    assert_eq!(db.read(|tx| tx.chunk_data(old)).unwrap(), SENTENCE);
    let (_, new) = store_with(&db, "new", SENTENCE);
    assert_eq!(db.read(|tx| tx.chunk_data(new)).unwrap(), SENTENCE);
    let stores = db.read(|tx| tx.stores()).unwrap();
    let enc: Vec<(String, bool)> = stores
        .iter()
        .map(|s| (s.name.clone(), s.encrypted))
        .collect();
    assert_eq!(enc, [("new".into(), true), ("old".into(), false)]);
    // The same content gets unrelated dedupe hashes in the two stores.
    let hashes: Vec<Vec<u8>> = db
        .read(|tx| {
            let mut st = tx.conn.prepare("SELECT hash FROM chunks ORDER BY id")?;
            let rows = st.query_map((), |r| r.get(0))?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    assert_eq!(hashes[0], blake3::hash(SENTENCE).as_bytes());
    assert_ne!(hashes[0], hashes[1]);
}

/// Regression: redacting a version whose only chunk a later, shorter version
/// still uses in part cuts that chunk to the part in use. In an encrypted store
/// the cut chunk must be sealed again under its keyed hash; it was written back
/// as plaintext with a plain blake3 hash, so the surviving version failed to
/// open ("fails authentication") and the plaintext sat in the database.
#[test]
fn trimming_a_chunk_of_an_encrypted_store_keeps_it_sealed() {
    use crate::store::{NewInode, NewVersion, NodeKind};
    let w = World::new();
    let db = w.open(&w.db_path(), true).unwrap();
    let (v2, ino) = db
        .write(|tx| {
            let s = tx.create_store("kb", Scope::Org, None, "", &who(), 1)?;
            let ino = tx.insert_inode(&NewInode {
                store: s.id,
                kind: NodeKind::File,
                perm: 0o644,
                uid: 0,
                gid: 0,
                rdev: 0,
                nlink: 1,
                now_ns: 1,
                target: None,
            })?;
            tx.insert_dentry(s.root, b"f", ino)?;
            let tail = vec![tx.put_chunk(s.id, SENTENCE)?];
            let me = who();
            let new = |base, base_len, tail, hash| NewVersion {
                ino,
                store: s.id,
                base,
                base_len,
                tail,
                base_full: None,
                hash,
                sha256: None,
                op: "write",
                path: "f",
                who: &me,
                at_ns: 2,
            };
            let (v1, _) = tx.insert_version(&new(None, 0, tail, blake3::hash(SENTENCE)))?;
            // A truncate to 10 bytes: a delta on v1 keeping a prefix of its chunk.
            let (v2, _) =
                tx.insert_version(&new(Some(v1), 10, vec![], blake3::hash(&SENTENCE[..10])))?;
            let mut row = tx.inode(ino)?.unwrap();
            row.head = Some(v2);
            row.size = 10;
            tx.save_inode(&row)?;
            tx.redact_version(v1, &who(), 3)?;
            Ok::<_, StoreError>((v2, ino))
        })
        .unwrap();
    let back = db
        .read(|tx| {
            let ext = tx.extents(v2)?;
            tx.read_extents(&ext, 0, ext.size())
        })
        .unwrap();
    assert_eq!(back, &SENTENCE[..10], "inode {ino}");
    db.sync().unwrap();
    drop(db);
    assert!(!raw_contains(&w.db_path(), &SENTENCE[..10]));
}

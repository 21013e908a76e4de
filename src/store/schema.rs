//! Schema migrations: an append-only list tracked by `PRAGMA user_version`.
//! A shipped migration is never edited; changes are new entries at the end.
//! The on-disk format and its invariants are described in `docs/FORMAT.md`.

use crate::error::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE stores (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        scope       TEXT NOT NULL CHECK (scope IN ('org', 'user')),
        owner       TEXT,
        description TEXT NOT NULL DEFAULT '',
        root_ino    INTEGER NOT NULL,
        created_ns  INTEGER NOT NULL,
        CHECK (scope = 'org' OR owner IS NOT NULL)
    );
    CREATE TABLE inodes (
        ino       INTEGER PRIMARY KEY,
        store_id  INTEGER REFERENCES stores(id),
        kind      INTEGER NOT NULL,
        perm      INTEGER NOT NULL,
        uid       INTEGER NOT NULL,
        gid       INTEGER NOT NULL,
        nlink     INTEGER NOT NULL,
        size      INTEGER NOT NULL DEFAULT 0,
        rdev      INTEGER NOT NULL DEFAULT 0,
        atime_ns  INTEGER NOT NULL,
        mtime_ns  INTEGER NOT NULL,
        ctime_ns  INTEGER NOT NULL,
        crtime_ns INTEGER NOT NULL,
        head      INTEGER,
        target    BLOB
    );
    CREATE TABLE dentries (
        parent INTEGER NOT NULL REFERENCES inodes(ino),
        name   BLOB NOT NULL,
        ino    INTEGER NOT NULL REFERENCES inodes(ino),
        PRIMARY KEY (parent, name)
    ) WITHOUT ROWID;
    CREATE INDEX dentries_by_ino ON dentries(ino);
    CREATE TABLE chunks (
        id       INTEGER PRIMARY KEY,
        store_id INTEGER NOT NULL REFERENCES stores(id),
        hash     BLOB NOT NULL,
        len      INTEGER NOT NULL,
        data     BLOB NOT NULL,
        UNIQUE (store_id, hash)
    );
    CREATE TABLE versions (
        id       INTEGER PRIMARY KEY,
        ino      INTEGER NOT NULL REFERENCES inodes(ino),
        store_id INTEGER NOT NULL REFERENCES stores(id),
        size     INTEGER NOT NULL,
        base     INTEGER REFERENCES versions(id),
        base_len INTEGER NOT NULL DEFAULT 0,
        depth    INTEGER NOT NULL DEFAULT 0,
        extents  BLOB NOT NULL,
        hash     BLOB NOT NULL,
        op       TEXT NOT NULL,
        path     TEXT NOT NULL,
        agent    TEXT NOT NULL,
        session  TEXT NOT NULL,
        user     TEXT,
        at_ns    INTEGER NOT NULL
    );
    CREATE INDEX versions_by_ino ON versions(ino, id);
    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY,
        at_ns     INTEGER NOT NULL,
        store_id  INTEGER,
        op        TEXT NOT NULL,
        path      TEXT,
        path2     TEXT,
        ino       INTEGER,
        version   INTEGER,
        agent     TEXT NOT NULL,
        session   TEXT NOT NULL,
        user      TEXT,
        detail    TEXT,
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    );
    CREATE TABLE changes (
        seq      INTEGER PRIMARY KEY,
        store_id INTEGER,
        ino      INTEGER,
        parent   INTEGER,
        name     BLOB,
        at_ns    INTEGER NOT NULL
    );
    -- Inode 1 is reserved for the virtual mount root; it never holds data, and
    -- reserving it keeps every stored inode number > 1.
    INSERT INTO inodes (ino, store_id, kind, perm, uid, gid, nlink,
                        atime_ns, mtime_ns, ctime_ns, crtime_ns)
    VALUES (1, NULL, 2, 365, 0, 0, 2, 0, 0, 0, 0);
    "#,
    // 2: leases with fencing tokens, advisory locks, live holders (mounts), and the
    // origin of each change-feed row (so a daemon skips its own changes).
    r#"
    CREATE TABLE holders (
        id             TEXT PRIMARY KEY,
        agent          TEXT NOT NULL,
        session        TEXT NOT NULL,
        user           TEXT,
        pid            INTEGER NOT NULL,
        started_ns     INTEGER NOT NULL,
        alive_until_ns INTEGER NOT NULL
    );
    CREATE TABLE leases (
        ino         INTEGER PRIMARY KEY REFERENCES inodes(ino),
        store_id    INTEGER NOT NULL REFERENCES stores(id),
        holder      TEXT NOT NULL,
        token       INTEGER NOT NULL,
        agent       TEXT NOT NULL,
        session     TEXT NOT NULL,
        user        TEXT,
        acquired_ns INTEGER NOT NULL,
        expires_ns  INTEGER NOT NULL
    );
    CREATE TABLE fences (
        ino   INTEGER PRIMARY KEY REFERENCES inodes(ino),
        token INTEGER NOT NULL
    );
    CREATE TABLE locks (
        id        INTEGER PRIMARY KEY,
        ino       INTEGER NOT NULL REFERENCES inodes(ino),
        holder    TEXT NOT NULL,
        owner     INTEGER NOT NULL,
        start     INTEGER NOT NULL,
        end       INTEGER NOT NULL,
        exclusive INTEGER NOT NULL,
        pid       INTEGER NOT NULL
    );
    CREATE INDEX locks_by_ino ON locks(ino);
    ALTER TABLE changes ADD COLUMN origin TEXT;
    "#,
    // 3: indexes for history queries (log filters, history of a file, rollback).
    r#"
    CREATE INDEX audit_by_session ON audit(session, id);
    CREATE INDEX audit_by_agent ON audit(agent, id);
    CREATE INDEX audit_by_user ON audit(user, id);
    CREATE INDEX audit_by_ino ON audit(ino, id);
    CREATE INDEX audit_by_path ON audit(path);
    CREATE INDEX audit_by_path2 ON audit(path2);
    CREATE INDEX audit_by_time ON audit(at_ns);
    CREATE INDEX versions_by_time ON versions(ino, at_ns);
    "#,
    // 4: archived stores (read-only for everyone, not newly attachable).
    r#"
    ALTER TABLE stores ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX inodes_by_store ON inodes(store_id, nlink);
    "#,
    // 5: redaction and purge. A redacted version keeps its attribution and loses
    // its content (`redacted_ns` says when). Audit entries get a random `salt`:
    // their hash covers a salted digest of path, path2 and detail, so those can be
    // removed later (`sealed` keeps the digest) without breaking the chain.
    r#"
    ALTER TABLE versions ADD COLUMN redacted_ns INTEGER;
    ALTER TABLE audit ADD COLUMN salt BLOB;
    ALTER TABLE audit ADD COLUMN sealed BLOB;
    CREATE INDEX versions_by_base ON versions(base);
    CREATE INDEX audit_by_version ON audit(version);
    CREATE INDEX audit_by_store ON audit(store_id, id);
    "#,
    // 6: encryption at rest. `encrypted` stores seal their chunks with a data key
    // kept here sealed under a key-encryption key that lives only in the keyring
    // file (see src/store/crypto.rs). An encrypted store without a row here was
    // shredded. Existing stores stay plaintext.
    r#"
    ALTER TABLE stores ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE store_keys (
        store_id    INTEGER PRIMARY KEY REFERENCES stores(id),
        key_id      BLOB NOT NULL UNIQUE,
        wrapped_key BLOB NOT NULL,
        nonce       BLOB NOT NULL,
        created_ns  INTEGER NOT NULL
    );
    "#,
    // 7: audit indexes on mostly-NULL columns only index the rows that have a
    // value (rename targets, versions), so most inserts skip those two b-trees.
    r#"
    DROP INDEX audit_by_path2;
    CREATE INDEX audit_by_path2 ON audit(path2) WHERE path2 IS NOT NULL;
    DROP INDEX audit_by_version;
    CREATE INDEX audit_by_version ON audit(version) WHERE version IS NOT NULL;
    "#,
    // 8: the service. Stores get an API id (`memstore_...`), a display title and
    // metadata (the memory-store API's `name` and `metadata`), update and archive
    // times, and their settings (allow-lists, policies, quotas, content rules) as
    // JSON, so every daemon, the server and memfsctl enforce the same rules.
    // Versions get the SHA-256 of their content (the API's `content_sha256`),
    // filled at commit (NULL for versions from before: computed once on demand).
    // API keys are kept as a blake3 hash of the secret only.
    r#"
    ALTER TABLE stores ADD COLUMN api_id TEXT;
    UPDATE stores SET api_id = 'memstore_' || lower(hex(randomblob(12)));
    CREATE UNIQUE INDEX stores_by_api_id ON stores(api_id);
    ALTER TABLE stores ADD COLUMN title TEXT;
    ALTER TABLE stores ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE stores ADD COLUMN updated_ns INTEGER;
    ALTER TABLE stores ADD COLUMN archived_ns INTEGER;
    ALTER TABLE stores ADD COLUMN settings TEXT;
    UPDATE stores SET updated_ns = created_ns;
    ALTER TABLE versions ADD COLUMN sha256 BLOB;
    CREATE INDEX versions_by_store ON versions(store_id, id);
    CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        secret_hash  BLOB NOT NULL UNIQUE,
        role         TEXT NOT NULL CHECK (role IN ('admin', 'writer', 'reader')),
        agent        TEXT NOT NULL,
        user         TEXT,
        stores       TEXT,
        created_ns   INTEGER NOT NULL,
        revoked_ns   INTEGER,
        last_used_ns INTEGER
    );
    "#,
    // 9 (retention): a live mount lists the versions its open files
    // read from (`pins`, rewritten by its renewer), so gc keeps them; one
    // collector at a time holds the `maintenance` row named 'gc' (`done_ns`:
    // when a pass last finished, so many daemons do not each run one).
    r#"
    CREATE TABLE pins (
        holder  TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (holder, version)
    ) WITHOUT ROWID;
    CREATE TABLE maintenance (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        pid        INTEGER NOT NULL,
        started_ns INTEGER NOT NULL,
        expires_ns INTEGER NOT NULL,
        done_ns    INTEGER
    );
    "#,
    // 10 (the web console): what each console user last reviewed of a
    // store (`audit_id`: the newest entry they marked reviewed), and the
    // full-text index of stores' current content. `search_text` holds one row
    // per live regular file (rowid = inode) of the stores searched so far;
    // `search_state` says up to which audit entry each store's rows are
    // current (brought up to date from the audit log before every search, so
    // the index cannot drift from the heads). FTS5's secure-delete option
    // removes a deleted row's terms from the index itself, so a purged file
    // leaves nothing behind in it.
    r#"
    CREATE TABLE console_reviews (
        user         TEXT NOT NULL,
        store_api_id TEXT NOT NULL,
        audit_id     INTEGER NOT NULL,
        at_ns        INTEGER NOT NULL,
        PRIMARY KEY (user, store_api_id)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE search_text USING fts5(path, body, store_id UNINDEXED);
    INSERT INTO search_text(search_text, rank) VALUES ('secure-delete', 1);
    CREATE TABLE search_state (
        store_id     INTEGER PRIMARY KEY,
        store_api_id TEXT NOT NULL,
        audit_id     INTEGER NOT NULL
    );
    "#,
    // 11 (audit format 2, many hosts): every store has its own audit chain
    // (`chain` = store id, 0 for entries about no store; `seq` = 1, 2, 3, ...
    // within it), so engines with parallel writers order each store's
    // entries without one database-wide lock. Entries from before keep their
    // format-1 global chain, ended by a cut-over entry (written in Rust
    // after this SQL, see `audit::write_cutover`) whose hash every chain
    // starts from. Holders record their host; the change feed gets an index
    // per store (followers ask for a store's newest row).
    r#"
    ALTER TABLE audit ADD COLUMN chain INTEGER;
    ALTER TABLE audit ADD COLUMN seq INTEGER;
    CREATE UNIQUE INDEX audit_by_chain ON audit(chain, seq) WHERE seq IS NOT NULL;
    CREATE INDEX audit_legacy ON audit(id) WHERE seq IS NULL;
    CREATE INDEX changes_by_store ON changes(store_id, seq);
    ALTER TABLE holders ADD COLUMN host TEXT;
    "#,
    // 12 (drafts): a draft is a store row of its own (`draft_of` names the
    // store it is a draft of) whose namespace was cloned from its base at
    // creation: its inodes' heads point at the base's versions, so no
    // content is copied, and its new chunks go to the base's chunk space
    // (one dedupe space and one key per base store). `drafts` says what
    // each draft is (its name, base point, who made it and why);
    // `draft_base` is the base as the draft last saw it, one row per path:
    // the common ancestor of a three-way merge (`origin`: the base's inode,
    // `ino`: the draft's, `head`: the base's version then).
    r#"
    ALTER TABLE stores ADD COLUMN draft_of INTEGER REFERENCES stores(id);
    CREATE INDEX stores_by_draft_of ON stores(draft_of) WHERE draft_of IS NOT NULL;
    CREATE TABLE drafts (
        store_id    INTEGER PRIMARY KEY REFERENCES stores(id),
        base_id     INTEGER NOT NULL REFERENCES stores(id),
        name        TEXT NOT NULL,
        base_audit  INTEGER NOT NULL,
        base_ns     INTEGER NOT NULL,
        created_ns  INTEGER NOT NULL,
        agent       TEXT NOT NULL,
        session     TEXT NOT NULL,
        "user"      TEXT,
        reason      TEXT NOT NULL,
        for_session TEXT,
        UNIQUE (base_id, name)
    );
    CREATE TABLE draft_base (
        draft_id INTEGER NOT NULL REFERENCES stores(id),
        path     TEXT NOT NULL,
        kind     INTEGER NOT NULL,
        origin   INTEGER NOT NULL,
        ino      INTEGER,
        head     INTEGER,
        target   BLOB,
        PRIMARY KEY (draft_id, path)
    );
    CREATE INDEX draft_base_by_ino ON draft_base(ino);
    CREATE INDEX draft_base_by_head ON draft_base(head) WHERE head IS NOT NULL;
    "#,
    // 13 (consolidation jobs, the dreams endpoint): one row per job, kept
    // after it ends (`status`: pending, running, completed, failed,
    // canceled). `request` is the job as asked (JSON); `draft_id` the draft
    // it works in, `output_id` the store it produced; `runner` the server
    // process that runs it (a job whose runner is gone is failed at start).
    r#"
    CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        store_id    INTEGER NOT NULL,
        draft_id    INTEGER,
        output_id   INTEGER,
        request     TEXT NOT NULL,
        status      TEXT NOT NULL,
        error       TEXT,
        agent       TEXT NOT NULL,
        session     TEXT NOT NULL,
        "user"      TEXT,
        key_id      TEXT,
        created_ns  INTEGER NOT NULL,
        started_ns  INTEGER,
        ended_ns    INTEGER,
        archived_ns INTEGER,
        runner      TEXT
    );
    CREATE INDEX jobs_by_time ON jobs(created_ns);
    "#,
];

/// The migration after whose SQL the format-1 audit chain gets its cut-over entry.
const AUDIT_V2: usize = 11;

/// The schema version this memfs writes (the number of migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies every migration newer than the database's `user_version`, all in one
/// exclusive transaction. Refuses a database from a newer memfs.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this memfs ({known}); upgrade memfs"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        if i + 1 == AUDIT_V2 {
            super::audit::write_cutover(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let roots: i64 = conn
            .query_row("SELECT count(*) FROM inodes WHERE ino = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(roots, 1);
    }

    #[test]
    fn a_database_from_before_encryption_migrates_with_plaintext_stores() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute_batch(
            "INSERT INTO stores (id, name, scope, root_ino, created_ns) VALUES (1, 'kb', 'org', 2, 0);
             INSERT INTO chunks (store_id, hash, len, data) VALUES (1, x'00', 5, 'hello');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (enc, data): (bool, String) = conn
            .query_row(
                "SELECT s.encrypted, c.data FROM stores s JOIN chunks c ON c.store_id = s.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(!enc);
        assert_eq!(data, "hello");
        let keys: i64 = conn
            .query_row("SELECT count(*) FROM store_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(keys, 0);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}

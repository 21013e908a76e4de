//! The append-only, hash-chained audit log and the change feed that rides with it.
//!
//! Each entry's hash covers its own fields and the previous entry's hash, so editing,
//! deleting or reordering any row breaks the chain from that row on.

use super::sql::{params, OptionalExtension};
use super::Txn;
use crate::error::{StoreError, StoreResult};
use crate::ids::{AuditId, Identity, Ino, StoreId, VersionId};

/// An audit row as stored, for verification.
struct RawEntry {
    id: i64,
    at_ns: i64,
    store: Option<i64>,
    op: String,
    path: Option<String>,
    path2: Option<String>,
    ino: Option<i64>,
    version: Option<i64>,
    agent: String,
    session: String,
    user: Option<String>,
    detail: Option<String>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    salt: Option<Vec<u8>>,
    sealed: Option<Vec<u8>>,
    chain: Option<i64>,
    seq: Option<i64>,
}

/// What an entry's hash covers of path, path2 and detail: the salted seal
/// (or, for a format-1 entry from before migration 5, the fields).
enum Covered {
    Body(Body<'static>),
    /// A legacy entry sealed by redaction: only its place in the chain counts.
    PlaceOnly,
}

impl RawEntry {
    fn brk(&self, reason: &str) -> ChainBreak {
        ChainBreak {
            id: AuditId(self.id),
            reason: reason.to_string(),
        }
    }

    fn who(&self) -> (&str, &str, Option<&str>) {
        (&self.agent, &self.session, self.user.as_deref())
    }

    fn covered(&self) -> Result<Covered, ChainBreak> {
        let fields_left = self.path.is_some() || self.path2.is_some() || self.detail.is_some();
        Ok(match (&self.salt, &self.sealed) {
            (None, None) => Covered::Body(Body::Legacy {
                path: None,
                path2: None,
                detail: None,
            }),
            (Some(salt), None) => Covered::Body(Body::Sealed(seal(
                salt,
                self.path.as_deref(),
                self.path2.as_deref(),
                self.detail.as_deref(),
            ))),
            (None, Some(_)) if fields_left => {
                return Err(self.brk("a sealed entry still holds path or detail (altered)"))
            }
            (None, Some(digest)) => match <[u8; 32]>::try_from(digest.as_slice()) {
                Ok(d) => Covered::Body(Body::Sealed(d)),
                Err(_) if digest.is_empty() => Covered::PlaceOnly,
                Err(_) => return Err(self.brk("sealed digest has the wrong length")),
            },
            (Some(_), Some(_)) => {
                return Err(self.brk("an entry is both salted and sealed (altered)"))
            }
        })
    }

    /// A format-1 entry after `prev`.
    fn check_v1(&self, prev: &[u8]) -> Result<(), ChainBreak> {
        if self.prev_hash != prev {
            return Err(self.brk("prev_hash does not match the previous entry's hash"));
        }
        let body = match self.covered()? {
            Covered::PlaceOnly => return Ok(()),
            Covered::Body(Body::Legacy { .. }) => Body::Legacy {
                path: self.path.as_deref(),
                path2: self.path2.as_deref(),
                detail: self.detail.as_deref(),
            },
            Covered::Body(b) => b,
        };
        let h = entry_hash(
            prev,
            self.id,
            self.at_ns,
            self.store,
            &self.op,
            &body,
            self.ino,
            self.version,
            self.who(),
        );
        if h.as_bytes().as_slice() != self.hash.as_slice() {
            return Err(self.brk("fields do not match the entry's hash (altered)"));
        }
        Ok(())
    }

    /// A format-2 entry after `prev` in its chain.
    fn check_v2(&self, prev: &[u8]) -> Result<(), ChainBreak> {
        if self.prev_hash != prev {
            return Err(self.brk("prev_hash does not match the previous entry's hash"));
        }
        let digest = match self.covered()? {
            Covered::Body(Body::Sealed(d)) => d,
            _ => return Err(self.brk("a format-2 entry without a seal (altered)")),
        };
        let h = entry_hash_v2(
            prev,
            self.chain.unwrap_or(-1),
            self.seq.unwrap_or(0),
            self.id,
            self.at_ns,
            self.store,
            &self.op,
            &digest,
            self.ino,
            self.version,
            self.who(),
        );
        if h.as_bytes().as_slice() != self.hash.as_slice() {
            return Err(self.brk("fields do not match the entry's hash (altered)"));
        }
        Ok(())
    }
}

/// A chain's newest entry: its seq and hash.
type ChainHead = (i64, Vec<u8>);

/// A chain's newest committed feed position (chain 0: store-less rows).
const NEWEST_CHANGE: &str = "SELECT CASE WHEN CAST(?1 AS BIGINT) = 0 \
     THEN (SELECT max(seq) FROM changes WHERE store_id IS NULL) \
     ELSE (SELECT max(seq) FROM changes WHERE store_id = ?1) END";

/// One change about to be recorded: an audit entry plus change-feed rows.
#[derive(Debug, Default)]
pub struct Change<'a> {
    pub store: Option<StoreId>,
    pub op: &'a str,
    pub path: Option<&'a str>,
    /// The second path of a rename or link.
    pub path2: Option<&'a str>,
    pub ino: Option<Ino>,
    pub version: Option<VersionId>,
    /// Directory entries whose meaning changed (for cache invalidation in other mounts).
    pub entries: Vec<(Ino, Vec<u8>)>,
    pub detail: Option<serde_json::Value>,
    /// Which mount (holder id) or tool made the change; daemons skip their own.
    pub origin: Option<&'a str>,
}

/// An audit entry as read back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at_ns: i64,
    pub at: String,
    pub store: Option<String>,
    pub op: String,
    pub path: Option<String>,
    pub path2: Option<String>,
    pub ino: Option<i64>,
    pub version: Option<i64>,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub detail: Option<serde_json::Value>,
    pub hash: String,
}

/// One change-feed row: an inode whose content or attributes changed, or a
/// directory entry whose meaning changed.
#[derive(Debug, Clone)]
pub struct FeedRow {
    /// When the change was committed (its transaction's time).
    pub at_ns: i64,
    pub store: Option<StoreId>,
    pub ino: Option<Ino>,
    pub parent: Option<Ino>,
    pub name: Option<Vec<u8>>,
}

/// Which audit entries to list. Every field narrows the result.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub store: Option<StoreId>,
    /// Only entries of one of these stores (entries about no store are left
    /// out): what a principal limited to some stores may see.
    pub stores: Option<Vec<StoreId>>,
    /// Entries whose path or second path is this path or lies below it.
    pub path: Option<String>,
    pub ino: Option<Ino>,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub user: Option<String>,
    pub op: Option<String>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// Only entries after this id (for replaying from a point).
    pub after_id: Option<i64>,
    /// Only entries before this id (the next page of a newest-first listing).
    pub before_id: Option<i64>,
    pub limit: Option<u64>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    /// Only entries that no transaction still in flight can precede (a
    /// follower reading `after_id` onwards misses nothing on engines where
    /// stores commit in parallel). Must be the read's first query.
    pub settled: bool,
}

/// Where the chain first fails to verify.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChainBreak {
    pub id: AuditId,
    pub reason: String,
}

/// What an entry's hash covers of its path, path2 and detail.
pub(super) enum Body<'a> {
    /// Entries written before migration 5: the fields themselves.
    Legacy {
        path: Option<&'a str>,
        path2: Option<&'a str>,
        detail: Option<&'a str>,
    },
    /// The salted digest of the three fields ([`seal`]); kept in `audit.sealed`
    /// once the fields and the salt are removed (redaction, purge).
    Sealed([u8; 32]),
}

/// An entry's path, path2, detail, salt and seal, as read for sealing.
type SealRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// Feeds one length-prefixed, presence-tagged field to an entry or seal hash.
fn hash_field(h: &mut blake3::Hasher, b: Option<&[u8]>) {
    match b {
        None => {
            h.update(&[0]);
        }
        Some(b) => {
            h.update(&[1]);
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        }
    }
}

/// The salted digest of an entry's path, path2 and detail. Without the salt (a
/// random 16 bytes, deleted with the fields) it does not confirm a guessed path.
pub(super) fn seal(
    salt: &[u8],
    path: Option<&str>,
    path2: Option<&str>,
    detail: Option<&str>,
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"memfs-audit-seal-v1");
    let mut field = |b: Option<&[u8]>| hash_field(&mut h, b);
    field(Some(salt));
    field(path.map(str::as_bytes));
    field(path2.map(str::as_bytes));
    field(detail.map(str::as_bytes));
    *h.finalize().as_bytes()
}

/// Salts drawn from the kernel in one getrandom(2) call (256 salts).
const SALT_POOL: usize = 4096;

/// Random bytes from the kernel, handed out 16 at a time: one getrandom(2) per
/// 256 audit entries instead of one per entry. Each salt is wiped from the
/// pool as it is taken, so the process's memory holds only salts not yet
/// used, never one that a later redaction deletes from the database. A child
/// made by fork(2) without exec would share the rest of the pool; memfs only
/// forks to exec.
struct SaltPool {
    bytes: [u8; SALT_POOL],
    /// Bytes from here on are unused.
    next: usize,
}

static SALTS: std::sync::Mutex<SaltPool> = std::sync::Mutex::new(SaltPool {
    bytes: [0; SALT_POOL],
    next: SALT_POOL,
});

/// 16 random bytes from the kernel (getrandom(2), through [`SaltPool`]).
fn new_salt() -> StoreResult<[u8; 16]> {
    let mut pool = SALTS.lock().unwrap_or_else(|p| p.into_inner());
    if pool.next + 16 > SALT_POOL {
        let mut fresh = [0u8; SALT_POOL];
        getrandom::fill(&mut fresh)
            .map_err(|e| StoreError::Io(std::io::Error::other(format!("no randomness: {e}"))))?;
        pool.bytes = fresh;
        pool.next = 0;
    }
    let at = pool.next;
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&pool.bytes[at..at + 16]);
    pool.bytes[at..at + 16].fill(0);
    pool.next = at + 16;
    Ok(salt)
}

/// The fields an entry's hash covers, in a fixed, length-prefixed encoding.
#[allow(clippy::too_many_arguments)]
fn entry_hash(
    prev: &[u8],
    id: i64,
    at_ns: i64,
    store: Option<i64>,
    op: &str,
    body: &Body<'_>,
    ino: Option<i64>,
    version: Option<i64>,
    who: (&str, &str, Option<&str>),
) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    let mut field = |b: Option<&[u8]>| hash_field(&mut h, b);
    field(Some(prev));
    field(Some(&id.to_le_bytes()));
    field(Some(&at_ns.to_le_bytes()));
    field(store.map(i64::to_le_bytes).as_ref().map(|b| &b[..]));
    field(Some(op.as_bytes()));
    let legacy_detail = match body {
        Body::Legacy {
            path,
            path2,
            detail,
        } => {
            field(path.map(str::as_bytes));
            field(path2.map(str::as_bytes));
            Some(*detail)
        }
        Body::Sealed(digest) => {
            field(Some(&digest[..]));
            None
        }
    };
    field(ino.map(i64::to_le_bytes).as_ref().map(|b| &b[..]));
    field(version.map(i64::to_le_bytes).as_ref().map(|b| &b[..]));
    field(Some(who.0.as_bytes()));
    field(Some(who.1.as_bytes()));
    field(who.2.map(str::as_bytes));
    if let Some(detail) = legacy_detail {
        field(detail.map(str::as_bytes));
    }
    h.finalize()
}

/// The hash of an entry in audit format 2 (per-chain): the format's tag, the
/// chain and the entry's place in it, then the fields format 1 covers.
#[allow(clippy::too_many_arguments)]
pub(super) fn entry_hash_v2(
    prev: &[u8],
    chain: i64,
    seq: i64,
    id: i64,
    at_ns: i64,
    store: Option<i64>,
    op: &str,
    seal: &[u8; 32],
    ino: Option<i64>,
    version: Option<i64>,
    who: (&str, &str, Option<&str>),
) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"memfs-audit-v2");
    let mut field = |b: Option<&[u8]>| hash_field(&mut h, b);
    field(Some(prev));
    field(Some(&chain.to_le_bytes()));
    field(Some(&seq.to_le_bytes()));
    field(Some(&id.to_le_bytes()));
    field(Some(&at_ns.to_le_bytes()));
    field(store.map(i64::to_le_bytes).as_ref().map(|b| &b[..]));
    field(Some(op.as_bytes()));
    field(Some(&seal[..]));
    field(ino.map(i64::to_le_bytes).as_ref().map(|b| &b[..]));
    field(version.map(i64::to_le_bytes).as_ref().map(|b| &b[..]));
    field(Some(who.0.as_bytes()));
    field(Some(who.1.as_bytes()));
    field(who.2.map(str::as_bytes));
    h.finalize()
}

/// The op of the entry that ends the format-1 (global) chain when a database
/// moves to per-store chains.
pub(super) const CUTOVER_OP: &str = "audit-format";

/// Ends a format-1 database's global chain with a cut-over entry (format 1,
/// salted), so every per-store chain of format 2 starts from its hash (the
/// anchor). Nothing to do on a database without entries. Runs inside the
/// migration's transaction.
pub(super) fn write_cutover(conn: &rusqlite::Connection) -> StoreResult<()> {
    use rusqlite::OptionalExtension as _;
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((last_id, prev)) = last else {
        return Ok(());
    };
    let id = last_id + 1;
    let at_ns = crate::ids::now_ns();
    let detail = serde_json::json!({"format": 2, "chains": "per-store"}).to_string();
    let salt = new_salt()?;
    let digest = seal(&salt, None, None, Some(&detail));
    let (agent, session) = ("memfs", "migration");
    let hash = entry_hash(
        &prev,
        id,
        at_ns,
        None,
        CUTOVER_OP,
        &Body::Sealed(digest),
        None,
        None,
        (agent, session, None),
    );
    conn.execute(
        "INSERT INTO audit (id, at_ns, store_id, op, agent, session, detail, prev_hash, hash, salt) \
         VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            id,
            at_ns,
            CUTOVER_OP,
            agent,
            session,
            detail,
            prev,
            hash.as_bytes().as_slice(),
            salt.as_slice()
        ],
    )?;
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Txn<'_> {
    /// The hash every format-2 chain starts from: the last format-1 entry's
    /// (the cut-over entry), or 32 zero bytes in a database born in format 2.
    fn audit_anchor(&self) -> StoreResult<Vec<u8>> {
        Ok(self
            .conn
            .prepare_cached("SELECT hash FROM audit WHERE seq IS NULL ORDER BY id DESC LIMIT 1")?
            .query_row((), |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| vec![0u8; 32]))
    }

    /// Draws the next audit id and reads the chain's newest entry (seq,
    /// hash), after taking the chain's locks (see store/chains.rs). Ids stay
    /// unique and increase within a chain (drawn under its lock); on SQLite,
    /// with one writer, they are consecutive as before. On PostgreSQL the
    /// DRAWN lock, the newest entry and the id come in one round trip.
    fn draw_audit_position(&self, chain: i64) -> StoreResult<(i64, Option<ChainHead>)> {
        const NEWEST: &str = "SELECT seq, hash FROM audit WHERE chain = ?1 AND seq IS NOT NULL \
                              ORDER BY seq DESC LIMIT 1";
        if self.dialect() == super::sql::Dialect::Postgres && self.write {
            self.enter_chain(chain)?;
            if !self.drawn.borrow().contains(&chain) {
                let (id, seq, hash): (i64, Option<i64>, Option<Vec<u8>>) = self
                    .conn
                    .prepare_cached(
                        "SELECT nextval('audit_id_seq'), a.seq, a.hash FROM \
                         (SELECT pg_advisory_xact_lock_shared(?1::int4, ?2::int4)) AS l \
                         LEFT JOIN LATERAL (SELECT seq, hash FROM audit WHERE chain = ?3 \
                           AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1) AS a ON true",
                    )?
                    .query_row(
                        params![
                            super::chains::DRAWN_NS,
                            super::chains::chain_key(chain),
                            chain
                        ],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )?;
                self.drawn.borrow_mut().push(chain);
                return Ok((id, seq.zip(hash)));
            }
        }
        self.drawing(chain)?;
        // On SQLite (one writer), the entries this batch or transaction
        // wrote are known. (PostgreSQL draws ids from a sequence, above.)
        let known = self
            .with_cache(|c| Some((c.next_audit_id?, c.chain_heads.get(&chain)?.clone())))
            .filter(|_| self.dialect() == super::sql::Dialect::Sqlite);
        if let Some((id, head)) = known {
            return Ok((id, Some(head)));
        }
        let last: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(NEWEST)?
            .query_row([chain], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let id: i64 = match self.dialect() {
            super::sql::Dialect::Sqlite => self
                .conn
                .prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM audit")?
                .query_row((), |r| r.get(0))?,
            super::sql::Dialect::Postgres => self
                .conn
                .prepare_cached("SELECT nextval('audit_id_seq')")?
                .query_row((), |r| r.get(0))?,
        };
        Ok((id, last))
    }

    /// Appends an audit entry to its store's chain (chain 0 for an entry about
    /// no store) and its change-feed rows. Returns the entry's id.
    pub fn record(&self, who: &Identity, at_ns: i64, c: &Change<'_>) -> StoreResult<AuditId> {
        let chain = c.store.map_or(0, |s| s.0);
        let (id, last) = self.draw_audit_position(chain)?;
        let (seq, prev) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, self.audit_anchor()?),
        };
        let detail = c.detail.as_ref().map(|d| d.to_string());
        let salt = new_salt()?;
        let digest = seal(&salt, c.path, c.path2, detail.as_deref());
        let hash = entry_hash_v2(
            &prev,
            chain,
            seq,
            id,
            at_ns,
            c.store.map(|s| s.0),
            c.op,
            &digest,
            c.ino.map(|i| i.0),
            c.version.map(|v| v.0),
            (&who.agent, &who.session, who.user.as_deref()),
        );
        self.conn
            .prepare_cached(
                "INSERT INTO audit (id, at_ns, store_id, op, path, path2, ino, version, agent, \
                 session, \"user\", detail, prev_hash, hash, salt, chain, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?
            .execute(params![
                id,
                at_ns,
                c.store.map(|s| s.0),
                c.op,
                c.path,
                c.path2,
                c.ino.map(|i| i.0),
                c.version.map(|v| v.0),
                who.agent,
                who.session,
                who.user,
                detail,
                prev,
                hash.as_bytes().as_slice(),
                salt.as_slice(),
                chain,
                seq,
            ])?;
        self.with_cache(|c| {
            c.chain_heads.insert(chain, (seq, hash.as_bytes().to_vec()));
            c.next_audit_id = Some(id + 1);
        });
        let mut feed = self.conn.prepare_cached(
            "INSERT INTO changes (store_id, ino, parent, name, at_ns, origin) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        if c.ino.is_some() || c.entries.is_empty() {
            feed.execute(params![
                c.store.map(|s| s.0),
                c.ino.map(|i| i.0),
                None::<i64>,
                None::<Vec<u8>>,
                at_ns,
                c.origin
            ])?;
        }
        for (parent, name) in &c.entries {
            feed.execute(params![
                c.store.map(|s| s.0),
                None::<i64>,
                parent.0,
                name,
                at_ns,
                c.origin
            ])?;
        }
        Ok(AuditId(id))
    }

    /// Audit entries matching `f`, newest first (or oldest first if asked).
    pub fn audit_entries(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        // Only the conditions asked for go into the SQL, so SQLite can use the
        // index for the most selective one (session, agent, path, ...).
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<super::sql::Value<'static>> = Vec::new();
        let mut push = |cond: &str, v: super::sql::Value<'static>| {
            args.push(v);
            conds.push(cond.replace('?', &format!("?{}", args.len())));
        };
        if let Some(s) = f.store {
            push("a.store_id = ?", s.0.into());
        }
        if let Some(i) = f.ino {
            push("a.ino = ?", i.0.into());
        }
        if let Some(v) = &f.agent {
            push("a.agent = ?", v.clone().into());
        }
        if let Some(v) = &f.session {
            push("a.session = ?", v.clone().into());
        }
        if let Some(v) = &f.user {
            push("a.\"user\" = ?", v.clone().into());
        }
        if let Some(v) = &f.op {
            push("a.op = ?", v.clone().into());
        }
        if let Some(v) = f.since_ns {
            push("a.at_ns >= ?", v.into());
        }
        if let Some(v) = f.until_ns {
            push("a.at_ns <= ?", v.into());
        }
        if let Some(v) = f.after_id {
            push("a.id > ?", v.into());
        }
        if let Some(v) = f.before_id {
            push("a.id < ?", v.into());
        }
        if f.settled {
            // Followers: nothing an in-flight transaction may still commit
            // below (see store/chains.rs).
            let newest = "SELECT id FROM audit WHERE chain = ?1 AND seq IS NOT NULL \
                          ORDER BY seq DESC LIMIT 1";
            if let Some(bound) = self.settled("audit_id_seq", newest)? {
                push("a.id <= ?", bound.into());
            }
        }
        if let Some(ids) = &f.stores {
            if ids.is_empty() {
                conds.push("1 = 0".into());
            } else {
                let list: Vec<String> = ids.iter().map(|s| s.0.to_string()).collect();
                // Integers formatted by us: no injection, and one statement
                // shape per set of stores for the statement cache.
                conds.push(format!("a.store_id IN ({})", list.join(",")));
            }
        }
        if let Some(p) = &f.path {
            // `p` itself, or anything below it: the range ["p/", "p0") holds exactly
            // the strings starting with "p/" ('0' follows '/'), so each of the four
            // terms is an index range and SQLite unions them.
            let p = p.trim_matches('/').to_string();
            let n = args.len();
            args.push(p.clone().into());
            args.push(format!("{p}/").into());
            args.push(format!("{p}0").into());
            conds.push(format!(
                "(a.path = ?{a} OR (a.path >= ?{b} AND a.path < ?{c}) \
                 OR a.path2 = ?{a} OR (a.path2 >= ?{b} AND a.path2 < ?{c}))",
                a = n + 1,
                b = n + 2,
                c = n + 3
            ));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let order = if f.ascending { "ASC" } else { "DESC" };
        let limit = match f.limit {
            Some(l) => format!("LIMIT {}", l.min(i64::MAX as u64)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT a.id, a.at_ns, s.name, a.op, a.path, a.path2, a.ino, a.version, a.agent, \
             a.session, a.\"user\", a.detail, a.hash \
             FROM audit a LEFT JOIN stores s ON s.id = a.store_id \
             {filter} ORDER BY a.id {order} {limit}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            let detail: Option<String> = r.get(11)?;
            let hash: Vec<u8> = r.get(12)?;
            let at_ns: i64 = r.get(1)?;
            Ok(AuditEntry {
                id: AuditId(r.get(0)?),
                at_ns,
                at: crate::timefmt::rfc3339(at_ns),
                store: r.get(2)?,
                op: r.get(3)?,
                path: r.get(4)?,
                path2: r.get(5)?,
                ino: r.get(6)?,
                version: r.get(7)?,
                agent: r.get(8)?,
                session: r.get(9)?,
                user: r.get(10)?,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                hash: hex(&hash),
            })
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// Walks every chain: the format-1 global chain (entries from before the
    /// move to per-store chains, ids 1, 2, 3, ... ending with the cut-over
    /// entry), then each format-2 chain (each store's, and chain 0 for
    /// store-less entries) from its first entry, which must link to the
    /// anchor. Returns the number of entries verified, or where a chain
    /// first breaks.
    pub fn verify_audit(&self) -> StoreResult<Result<u64, ChainBreak>> {
        const PAGE: i64 = 5000;
        const COLS: &str = "id, at_ns, store_id, op, path, path2, ino, version, agent, session, \
                            \"user\", detail, prev_hash, hash, salt, sealed, chain, seq";
        let mut n = 0u64;
        // Format 1: one global chain by id.
        let mut prev = vec![0u8; 32];
        let mut expect_id = 1i64;
        let mut last_op: Option<String> = None;
        loop {
            let sql = format!(
                "SELECT {COLS} FROM audit WHERE seq IS NULL AND id >= ?1 ORDER BY id LIMIT {PAGE}"
            );
            let rows = self.audit_page(&sql, (expect_id,))?;
            if rows.is_empty() {
                break;
            }
            for e in rows {
                if e.id != expect_id {
                    return Ok(Err(e.brk(&format!("entry {expect_id} is missing"))));
                }
                if let Err(b) = e.check_v1(&prev) {
                    return Ok(Err(b));
                }
                prev = e.hash.clone();
                last_op = Some(e.op.clone());
                expect_id += 1;
                n += 1;
            }
        }
        let anchor = prev;
        let legacy = n > 0;
        // Format 2: each chain by its sequence.
        let (mut chain, mut seq) = (i64::MIN, 0i64);
        let mut prev = anchor.clone();
        loop {
            let sql = format!(
                "SELECT {COLS} FROM audit WHERE seq IS NOT NULL AND (chain > ?1 OR (chain = ?1 AND seq > ?2)) \
                 ORDER BY chain, seq LIMIT {PAGE}"
            );
            let rows = self.audit_page(&sql, (chain, seq))?;
            if rows.is_empty() {
                break;
            }
            for e in rows {
                let (c, q) = (e.chain.unwrap_or(-1), e.seq.unwrap_or(0));
                if c != chain {
                    if legacy && last_op.as_deref() != Some(CUTOVER_OP) {
                        return Ok(Err(e.brk(
                            "the format-1 chain does not end with its cut-over entry (truncated)",
                        )));
                    }
                    chain = c;
                    seq = 0;
                    prev = anchor.clone();
                }
                if c != e.store.unwrap_or(0) {
                    return Ok(Err(e.brk("entry is in another store's chain (altered)")));
                }
                if q != seq + 1 {
                    return Ok(Err(
                        e.brk(&format!("entry {} of chain {chain} is missing", seq + 1))
                    ));
                }
                if let Err(b) = e.check_v2(&prev) {
                    return Ok(Err(b));
                }
                prev = e.hash.clone();
                seq = q;
                n += 1;
            }
        }
        Ok(Ok(n))
    }

    fn audit_page<P: super::sql::Params>(&self, sql: &str, p: P) -> StoreResult<Vec<RawEntry>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(p, |r| {
            Ok(RawEntry {
                id: r.get(0)?,
                at_ns: r.get(1)?,
                store: r.get(2)?,
                op: r.get(3)?,
                path: r.get(4)?,
                path2: r.get(5)?,
                ino: r.get(6)?,
                version: r.get(7)?,
                agent: r.get(8)?,
                session: r.get(9)?,
                user: r.get(10)?,
                detail: r.get(11)?,
                prev_hash: r.get(12)?,
                hash: r.get(13)?,
                salt: r.get(14)?,
                sealed: r.get(15)?,
                chain: r.get(16)?,
                seq: r.get(17)?,
            })
        })?;
        rows.collect()
    }

    /// Seals the audit entries `ids` names: their path, path2 and detail (and the
    /// salt) are removed and the salted digest the hash covered is kept, so the
    /// chain still verifies. Returns how many entries were sealed (already sealed
    /// ones are skipped).
    pub(super) fn seal_entries(&self, ids: &[i64]) -> StoreResult<u64> {
        let mut n = 0;
        for &id in ids {
            let row: Option<SealRow> = self
                .conn
                .prepare_cached(
                    "SELECT path, path2, detail, salt, sealed FROM audit WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            let Some((path, path2, detail, salt, sealed)) = row else {
                continue;
            };
            if sealed.is_some() {
                continue;
            }
            // A legacy entry (no salt) cannot keep a digest its hash covers: it is
            // marked with an empty one and verified by its place in the chain only.
            let digest: Vec<u8> = match salt {
                Some(salt) => {
                    seal(&salt, path.as_deref(), path2.as_deref(), detail.as_deref()).to_vec()
                }
                None => Vec::new(),
            };
            self.conn
                .prepare_cached(
                    "UPDATE audit SET path = NULL, path2 = NULL, detail = NULL, salt = NULL, \
                     sealed = ?2 WHERE id = ?1",
                )?
                .execute(params![id, digest])?;
            n += 1;
        }
        Ok(n)
    }

    /// A change-feed row with no audit entry: asks every mount (`origin` is not
    /// theirs) to drop its kernel cache of `ino`, after a refused commit changed
    /// nothing but a mount's kernel already believed it had.
    pub fn notify_inode(
        &self,
        store: StoreId,
        ino: Ino,
        at_ns: i64,
        origin: &str,
    ) -> StoreResult<()> {
        self.drawing(store.0)?;
        self.conn
            .prepare_cached(
                "INSERT INTO changes (store_id, ino, parent, name, at_ns, origin) \
                 VALUES (?1, ?2, NULL, NULL, ?3, ?4)",
            )?
            .execute(params![store.0, ino.0, at_ns, origin])?;
        Ok(())
    }

    /// Change-feed rows after `seq` not made by `skip_origin`, oldest first, at most
    /// `limit`. Returns the rows and the newest sequence number seen.
    pub fn changes_since(
        &self,
        seq: i64,
        skip_origin: &str,
        limit: u32,
    ) -> StoreResult<(Vec<FeedRow>, i64)> {
        let bound = self.settled("changes_seq_seq", NEWEST_CHANGE)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, store_id, ino, parent, name, origin, at_ns FROM changes \
             WHERE seq > ?1 AND seq <= ?3 ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![seq, limit, bound.unwrap_or(i64::MAX)])?;
        let mut out = Vec::new();
        let mut last = seq;
        while let Some(r) = rows.next()? {
            last = r.get(0)?;
            let origin: Option<String> = r.get(5)?;
            if origin.as_deref() == Some(skip_origin) {
                continue;
            }
            out.push(FeedRow {
                at_ns: r.get(6)?,
                store: r.get::<_, Option<i64>>(1)?.map(StoreId),
                ino: r.get::<_, Option<i64>>(2)?.map(Ino),
                parent: r.get::<_, Option<i64>>(3)?.map(Ino),
                name: r.get(4)?,
            });
        }
        Ok((out, last))
    }

    /// Whether a change-feed row after `seq` was not made by `origin` (and, with
    /// `ino`, names that inode). Scans only the rows after `seq`.
    pub fn changed_elsewhere(&self, seq: i64, origin: &str, ino: Option<Ino>) -> StoreResult<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM changes WHERE seq > ?1 \
                 AND origin IS DISTINCT FROM ?2 AND (CAST(?3 AS BIGINT) IS NULL OR ino = ?3))",
            )?
            .query_row(params![seq, origin, ino.map(|i| i.0)], |r| r.get(0))
    }

    /// The inode the newest audit entry at `path` (as first or second path) names.
    pub fn last_ino_at_path(&self, store: StoreId, path: &str) -> StoreResult<Option<Ino>> {
        // Two index lookups (path, path2), the newer wins.
        Ok(self
            .conn
            .prepare_cached(
                "SELECT ino FROM ( \
                   SELECT * FROM (SELECT id, ino FROM audit WHERE store_id = ?1 AND path = ?2 \
                                  AND ino IS NOT NULL ORDER BY id DESC LIMIT 1) AS a1 \
                   UNION ALL \
                   SELECT * FROM (SELECT id, ino FROM audit WHERE store_id = ?1 AND path2 = ?2 \
                                  AND ino IS NOT NULL ORDER BY id DESC LIMIT 1) AS a2) AS a \
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![store.0, path], |r| r.get(0))
            .optional()?
            .map(Ino))
    }

    /// Drops change-feed rows older than `keep_ns` (by the database's clock).
    /// Daemons read the feed every few milliseconds; old rows only cost space
    /// (the audit log is the history). The newest row always stays: SQLite's
    /// sequence numbers come from `max(seq) + 1`, and an emptied table would
    /// hand out numbers that followers have already passed. Rows go in
    /// sequence order up to the first one young enough, so the work is the
    /// rows dropped, not the table (the rows' times follow their sequence, up
    /// to clock skew between daemons, whose stragglers go in a later round).
    pub fn prune_changes(&self, keep_ns: i64) -> StoreResult<usize> {
        self.conn
            .prepare_cached(
                "DELETE FROM changes WHERE seq < coalesce( \
                   (SELECT seq FROM changes WHERE at_ns >= memfs_now() - ?1 ORDER BY seq LIMIT 1), \
                   (SELECT max(seq) FROM changes))",
            )?
            .execute([keep_ns])
    }

    /// The change-feed position a new follower starts after: the newest
    /// sequence number (0 when empty), or less while an older one may still
    /// commit (so nothing committed after this call is missed).
    pub fn last_change_seq(&self) -> StoreResult<i64> {
        let bound = self.settled("changes_seq_seq", NEWEST_CHANGE)?;
        let newest: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM changes")?
            .query_row((), |r| r.get(0))?;
        Ok(bound.map_or(newest, |b| newest.min(b.max(0))))
    }

    /// Raw access for tests that tamper with the database on purpose.
    #[doc(hidden)]
    pub fn execute_raw(&self, sql: &str) -> StoreResult<usize> {
        self.with_cache(|c| c.clear());
        self.conn.execute(sql, ())
    }
}

#[cfg(test)]
mod tests;

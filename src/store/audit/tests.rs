//! Audit format 2: per-store chains, and the move of a format-1 database.

use super::*;
use crate::store::{Db, Scope};

fn who() -> Identity {
    Identity::new("agent-a", "s-1", Some("alice"))
}

/// A SQLite file at schema 9 (format 1: one global chain) with `n` salted
/// entries written as memfs wrote them then.
fn legacy_db(path: &std::path::Path, n: i64) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    let tx = c.transaction().unwrap();
    for sql in &crate::store::schema::MIGRATIONS[..9] {
        tx.execute_batch(sql).unwrap();
    }
    tx.pragma_update(None, "user_version", 9).unwrap();
    let mut prev = vec![0u8; 32];
    for id in 1..=n {
        let salt = [id as u8; 16];
        let detail = format!("{{\"n\":{id}}}");
        let digest = seal(&salt, Some("f.md"), None, Some(&detail));
        let h = entry_hash(
            &prev,
            id,
            id * 10,
            None,
            "write",
            &Body::Sealed(digest),
            None,
            None,
            ("old-agent", "old-session", None),
        );
        tx.execute(
            "INSERT INTO audit (id, at_ns, store_id, op, path, agent, session, detail, prev_hash, hash, salt) \
             VALUES (?1, ?2, NULL, 'write', 'f.md', 'old-agent', 'old-session', ?3, ?4, ?5, ?6)",
            rusqlite::params![id, id * 10, detail, prev, h.as_bytes().as_slice(), salt.as_slice()],
        )
        .unwrap();
        prev = h.as_bytes().to_vec();
    }
    tx.commit().unwrap();
}

#[test]
fn a_format_1_database_keeps_verifying_after_the_move_to_per_store_chains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    legacy_db(&path, 5);
    let db = Db::open(&path).unwrap();
    // The migration ended the global chain with its cut-over entry.
    let last = db
        .read(|tx| {
            tx.audit_entries(&AuditFilter {
                limit: Some(1),
                ..Default::default()
            })
        })
        .unwrap();
    assert_eq!((last[0].id.0, last[0].op.as_str()), (6, CUTOVER_OP));
    // New entries go to per-store chains anchored on it.
    db.write(|tx| {
        tx.create_store("kb", Scope::Org, None, "", &who(), 100)?;
        tx.create_store("other", Scope::Org, None, "", &who(), 101)?;
        tx.record(
            &who(),
            102,
            &Change {
                op: "apikey-create",
                ..Default::default()
            },
        )
    })
    .unwrap();
    assert_eq!(
        db.read(|tx| tx.verify_audit())
            .unwrap()
            .map_err(|b| b.reason),
        Ok(9)
    );
    // Tampering with a format-1 entry is still caught...
    db.write(|tx| tx.execute_raw("UPDATE audit SET agent = 'mallory' WHERE id = 3"))
        .unwrap();
    let brk = db.read(|tx| tx.verify_audit()).unwrap().unwrap_err();
    assert_eq!(brk.id.0, 3);
}

#[test]
fn dropping_the_cut_over_entry_breaks_every_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    legacy_db(&path, 3);
    let db = Db::open(&path).unwrap();
    db.write(|tx| tx.create_store("kb", Scope::Org, None, "", &who(), 100))
        .unwrap();
    db.write(|tx| tx.execute_raw("DELETE FROM audit WHERE op = 'audit-format'"))
        .unwrap();
    let brk = db.read(|tx| tx.verify_audit()).unwrap().unwrap_err();
    assert!(brk.reason.contains("cut-over"), "{}", brk.reason);
}

#[test]
fn each_store_has_its_own_chain_and_a_gap_in_one_is_found() {
    let db = Db::open_in_memory().unwrap();
    let (a, b) = db
        .write(|tx| {
            let a = tx.create_store("a", Scope::Org, None, "", &who(), 1)?;
            let b = tx.create_store("b", Scope::Org, None, "", &who(), 2)?;
            for i in 0..3 {
                for s in [&a, &b] {
                    tx.record(
                        &who(),
                        10 + i,
                        &Change {
                            store: Some(s.id),
                            op: "write",
                            path: Some("x"),
                            ..Default::default()
                        },
                    )?;
                }
            }
            Ok::<_, StoreError>((a, b))
        })
        .unwrap();
    let seqs: Vec<(i64, i64)> = db
        .read(|tx| {
            let mut st = tx
                .conn
                .prepare("SELECT chain, seq FROM audit ORDER BY id")?;
            let rows = st.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .unwrap();
    let of = |s: i64| {
        seqs.iter()
            .filter(|(c, _)| *c == s)
            .map(|(_, q)| *q)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(a.id.0), [1, 2, 3, 4]);
    assert_eq!(of(b.id.0), [1, 2, 3, 4]);
    assert_eq!(
        db.read(|tx| tx.verify_audit())
            .unwrap()
            .map_err(|e| e.reason),
        Ok(8)
    );
    db.write(|tx| {
        tx.execute_raw(&format!(
            "DELETE FROM audit WHERE chain = {} AND seq = 3",
            b.id.0
        ))
    })
    .unwrap();
    let brk = db.read(|tx| tx.verify_audit()).unwrap().unwrap_err();
    assert!(brk.reason.contains("entry 3 of chain"), "{}", brk.reason);
}

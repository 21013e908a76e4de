//! Online backups and restores with SQLite's backup API.
//!
//! A backup copies the database page by page while mounts keep writing. It
//! holds one read transaction on the source for the whole copy, so every page
//! comes from the same snapshot (the backup API would otherwise restart
//! whenever another connection commits, and might never finish under load);
//! in WAL mode that reader blocks no writer, only WAL checkpoints, so the WAL
//! grows while a backup runs. The copy is written to a temporary file beside
//! the target, switched to a rollback journal (one self-contained file),
//! synced, and renamed into place.
//!
//! A restore copies a backup into a new, empty database file the same way and
//! opens it as memfs does (WAL mode, migrations of an older schema).

use super::schema::SCHEMA_VERSION;
use super::Db;
use crate::error::{StoreError, StoreResult};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pages copied per step (4 MiB at 4 KiB pages): progress is reported between steps.
const STEP_PAGES: i32 = 1024;
/// Steps between syncs of the copy: written pages go to disk 64 MiB at a time
/// instead of all at the end, where flushing a whole large database at once
/// stalls the mounts' own syncs for seconds.
const SYNC_EVERY: u64 = 16;

/// What a backup or restore copied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Copied {
    pub path: PathBuf,
    pub pages: u64,
    pub bytes: u64,
    /// The schema version of the copy.
    pub schema: i64,
    /// Stores whose content is encrypted: the copy is useless for them without
    /// the master key file and the keyring, which are not in the database.
    pub encrypted_stores: Vec<String>,
}

impl Db {
    /// Copies the whole database to the new file `dest` as of one moment, while
    /// other connections write. Refuses an existing `dest` unless `overwrite`.
    /// `progress(done_pages, total_pages)` is called after every step.
    pub fn backup_to(
        &self,
        dest: &Path,
        overwrite: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> StoreResult<Copied> {
        if dest.exists() && !overwrite {
            return Err(StoreError::Exists(format!(
                "{} (give --force to replace it)",
                dest.display()
            )));
        }
        let tmp = temp_beside(dest)?;
        let lite = self.lite()?;
        let result = (|| {
            let _armed = lite.arm();
            let mut g = lite.lock();
            g.end_read();
            g.commit()?;
            // One snapshot for the whole copy (see the module comment).
            g.conn.execute_batch("BEGIN DEFERRED")?;
            let copied = (|| {
                g.conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
                let mut dst = open_copy(&tmp)?;
                let pages = copy_pages(&g.conn, &mut dst, &tmp, progress)?;
                finish_copy(&dst)?;
                Ok::<_, StoreError>(pages)
            })();
            let _ = g.conn.execute_batch("COMMIT");
            copied
        })();
        let pages = match result {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        install(&tmp, dest)?;
        describe(dest, pages)
    }
}

/// Copies `backup` into the new database file `target` (which must not exist,
/// or be empty) and brings it up as memfs opens a database. Refuses a file
/// that is not a sound memfs database, or one from a newer memfs.
pub fn restore(
    backup: &Path,
    target: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> StoreResult<Copied> {
    let occupied = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
    let mut wal = target.as_os_str().to_owned();
    wal.push("-wal");
    if occupied(target) || occupied(Path::new(&wal)) {
        return Err(StoreError::Exists(format!(
            "{} is not empty: restore only into a new database",
            target.display()
        )));
    }
    let src = Connection::open_with_flags(backup, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    check_backup(&src, backup)?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = temp_beside(target)?;
    let copied = (|| {
        let mut dst = open_copy(&tmp)?;
        let pages = copy_pages(&src, &mut dst, &tmp, progress)?;
        finish_copy(&dst)?;
        Ok::<_, StoreError>(pages)
    })();
    let pages = match copied {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    install(&tmp, target)?;
    // Opening brings it up to date: WAL mode, and migrations of an older schema.
    drop(Db::open(target)?);
    describe(target, pages)
}

/// Refuses anything but a sound memfs database this memfs can read.
fn check_backup(c: &Connection, path: &Path) -> StoreResult<()> {
    let bad = |why: String| StoreError::Invalid(format!("{}: {why}", path.display()));
    let ok: String = c
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| bad(format!("not a readable SQLite database ({e})")))?;
    if ok != "ok" {
        return Err(bad(format!("damaged: {ok}")));
    }
    let tables: i64 = c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('stores', 'versions', 'audit')",
        [],
        |r| r.get(0),
    )?;
    if tables != 3 {
        return Err(bad("not a memfs database".into()));
    }
    let schema: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if schema > SCHEMA_VERSION {
        return Err(bad(format!(
            "schema version {schema} is newer than this memfs ({SCHEMA_VERSION}); upgrade memfs"
        )));
    }
    Ok(())
}

/// Opens the temporary copy. It needs no journal and no syncs of its own: a
/// crash leaves only the temporary file, and [`install`] syncs it before the
/// rename.
fn open_copy(tmp: &Path) -> StoreResult<Connection> {
    let c = Connection::open(tmp)?;
    c.pragma_update(None, "journal_mode", "OFF")?;
    c.pragma_update(None, "synchronous", "OFF")?;
    Ok(c)
}

/// Runs the backup API from `src` into `dst` (the file `tmp`), retrying while
/// busy, and syncing the copy every [`SYNC_EVERY`] steps.
fn copy_pages(
    src: &Connection,
    dst: &mut Connection,
    tmp: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> StoreResult<u64> {
    let file = std::fs::File::open(tmp)?;
    let b = Backup::new(src, dst)?;
    let mut steps = 0u64;
    loop {
        let step = b.step(STEP_PAGES)?;
        let p = b.progress();
        let total = u64::try_from(p.pagecount).unwrap_or(0);
        let left = u64::try_from(p.remaining).unwrap_or(0);
        progress(total.saturating_sub(left), total);
        steps += 1;
        if steps.is_multiple_of(SYNC_EVERY) {
            file.sync_data()?;
        }
        match step {
            StepResult::Done => return Ok(total),
            StepResult::More => {}
            // Another connection holds a lock on the destination or source;
            // it is not fatal.
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Makes the copy one self-contained file with a rollback journal (the
/// source's header says WAL).
fn finish_copy(dst: &Connection) -> StoreResult<()> {
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}

/// A temporary file name beside `path` (same filesystem, so the rename is atomic).
fn temp_beside(path: &Path) -> StoreResult<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| StoreError::Invalid(format!("{} is not a file path", path.display())))?;
    let mut tmp = name.to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp);
    let _ = std::fs::remove_file(&tmp);
    Ok(tmp)
}

/// fsyncs `tmp`, renames it to `dest` and fsyncs the directory.
fn install(tmp: &Path, dest: &Path) -> StoreResult<()> {
    std::fs::File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, dest)?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn describe(path: &Path, pages: u64) -> StoreResult<Copied> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let schema: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let has_encrypted: i64 = c.query_row(
        "SELECT count(*) FROM pragma_table_info('stores') WHERE name = 'encrypted'",
        [],
        |r| r.get(0),
    )?;
    let encrypted_stores = if has_encrypted > 0 {
        let mut stmt = c.prepare("SELECT name FROM stores WHERE encrypted = 1 ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(Copied {
        path: path.to_path_buf(),
        pages,
        bytes: std::fs::metadata(path)?.len(),
        schema,
        encrypted_stores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Identity;
    use crate::store::Scope;

    fn who() -> Identity {
        Identity::new("t", "t", None)
    }

    #[test]
    fn a_backup_restores_into_a_new_database_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("memfs.db")).unwrap();
        db.write(|tx| tx.create_store("kb", Scope::Org, None, "", &who(), 1))
            .unwrap();
        let bak = dir.path().join("memfs.bak");
        let mut calls = 0;
        let copied = db.backup_to(&bak, false, &mut |_, _| calls += 1).unwrap();
        assert!(calls > 0 && copied.pages > 0 && copied.schema == SCHEMA_VERSION);
        let again = db.backup_to(&bak, false, &mut |_, _| {}).unwrap_err();
        assert!(again.to_string().contains("--force"), "{again}");
        db.backup_to(&bak, true, &mut |_, _| {}).unwrap();
        // A backup is one file: no WAL beside it.
        assert!(!dir.path().join("memfs.bak-wal").exists());

        let target = dir.path().join("restored").join("memfs.db");
        restore(&bak, &target, &mut |_, _| {}).unwrap();
        let back = Db::open_existing(&target).unwrap();
        let names: Vec<String> = back
            .read(|tx| tx.stores())
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["kb"]);
        assert!(back.read(|tx| tx.verify_audit()).unwrap().is_ok());
        let err = restore(&bak, &target, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }

    #[test]
    fn restore_refuses_what_is_not_a_memfs_database() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"not a database at all, just some text here").unwrap();
        let err = restore(&junk, &dir.path().join("new.db"), &mut |_, _| {}).unwrap_err();
        assert!(
            err.to_string().contains("not a readable SQLite database"),
            "{err}"
        );
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = restore(&other, &dir.path().join("new.db"), &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("not a memfs database"), "{err}");
        assert!(!dir.path().join("new.db").exists());
    }
}

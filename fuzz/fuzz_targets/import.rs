//! `memfsctl import`: `interchange::import::import_archive` reads a tar archive
//! (a JSON manifest, JSON Lines metadata, content members) that may come from
//! anywhere. It must refuse what is wrong without panicking, all or nothing,
//! and what it accepts must export and import again.
//!
//! Input: the archive. Each run imports into a new in-memory database.
//! With `MEMFS_FUZZ_SEEDS=DIR` (scripts/fuzz.sh sets it), the target first
//! writes two real exports (with and without history) into DIR as seeds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use memfs::attach::apply_template;
use memfs::config::Config;
use memfs::ids::Identity;
use memfs::interchange::export::write_archive;
use memfs::interchange::import::import_archive;
use memfs::interchange::progress::Progress;
use memfs::store::{Db, Scope};
use std::path::Path;

const SEED_STORE: &str = r#"
[[stores]]
name = "kb"
template = ["notes/old", "empty"]
[stores.seed]
"notes/a.md" = "alpha\n"
"notes/old/b.json" = "{\"b\": 1}\n"
"café.txt" = "é"
"#;

fn who() -> Identity {
    Identity::new("importer", "fuzz", Some("fuzzer"))
}

fn export(db: &Db, name: &str, history: bool) -> Vec<u8> {
    let (_, out) = write_archive(db, name, history, Vec::new(), &mut Progress::silent())
        .unwrap_or_else(|e| panic!("export of '{name}' (history {history}): {e}"));
    out
}

/// Writes real exports into `dir` when it holds nothing yet.
fn write_seeds() {
    let Some(dir) = std::env::var_os("MEMFS_FUZZ_SEEDS") else {
        return;
    };
    let dir = Path::new(&dir);
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return;
    }
    let config = Config::parse(SEED_STORE, Path::new("seed.toml")).expect("seed config");
    let db = std::sync::Arc::new(Db::open_in_memory().expect("db"));
    let row = db
        .write(|tx| tx.create_store("kb", Scope::Org, None, "seed", &who(), 1))
        .expect("store");
    apply_template(&db, &row, config.store("kb").unwrap(), &who()).expect("template");
    std::fs::create_dir_all(dir).expect("seed dir");
    for history in [false, true] {
        let name = if history { "seed-history.tar" } else { "seed-head.tar" };
        std::fs::write(dir.join(name), export(&db, "kb", history)).expect("seed file");
    }
}

fuzz_target!(init: write_seeds(), |data: &[u8]| {
    let config = Config::default();
    let db = Db::open_in_memory().expect("db");
    let Ok(got) = import_archive(&db, &config, data, Some("imp"), &who(), &mut Progress::silent())
    else {
        // All or nothing: a refused import leaves no store behind.
        let stores = db.read(|tx| tx.stores()).expect("stores");
        assert!(stores.is_empty(), "a refused import left {stores:?}");
        return;
    };
    assert_eq!(got.store, "imp");
    // What was imported exports, and the export imports again as the same.
    let again = export(&db, "imp", got.history);
    let db2 = Db::open_in_memory().expect("db");
    let back = import_archive(&db2, &config, &again[..], Some("imp"), &who(), &mut Progress::silent())
        .unwrap_or_else(|e| panic!("re-import of an export of an accepted archive: {e}"));
    assert_eq!(
        (back.paths, back.versions, back.content_bytes),
        (got.paths, got.versions, got.content_bytes),
        "export/import changed the store"
    );
});

//! Times the filesystem core without FUSE on a database file: the cost of each
//! step of creating, writing, closing and removing small files.
//!
//!     cargo run --release --example bench_core -- [FILES] [DB_DIR] [INTERVAL_MS]
use memfs::fs::{Attached, Caller, FsOptions, MemFs, OpenMode};
use memfs::ids::Identity;
use memfs::store::{BatchPolicy, Db, Scope};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(5000), |s| s.parse())?;
    let dir = std::path::PathBuf::from(args.get(2).map_or("/dev/shm", |s| s.as_str()));
    let interval: u64 = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let path = dir.join(format!("bench-core-{}.db", std::process::id()));
    let db = Db::open(&path)?;
    let op = Identity::new("op", "op", None);
    let kb = db.write(|tx| tx.create_store("kb", Scope::Org, None, "", &op, 1))?;
    let root = kb.root;
    db.enable_batching(BatchPolicy {
        interval: Duration::from_millis(interval),
        ..BatchPolicy::default()
    });
    let fs = Arc::new(MemFs::new(
        Arc::new(db),
        Identity::new("bench", "bench", None),
        vec![Attached::plain(kb, false)],
        FsOptions::default(),
    ));
    fs.register()?;
    let stop = Arc::new(AtomicBool::new(false));
    let committer = {
        let (fs, stop) = (fs.clone(), stop.clone());
        std::thread::spawn(move || fs.db().run_committer(&stop))
    };
    let me = Caller::default();
    let w = OpenMode {
        write: true,
        ..OpenMode::default()
    };
    let body = b"memory note: the quick brown fox jumps over the lazy dog\n".repeat(8);
    let (mut t_create, mut t_write, mut t_flush, mut t_release, mut t_lookup) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for i in 0..n {
        let name = format!("f{i}.txt");
        let s = Instant::now();
        let _ = fs.lookup(root, name.as_bytes(), me);
        t_lookup += s.elapsed();
        let s = Instant::now();
        let (_, h) = fs.create(root, name.as_bytes(), 0o644, 0o022, w, me)?;
        t_create += s.elapsed();
        let s = Instant::now();
        fs.write(h.fh, 0, &body)?;
        t_write += s.elapsed();
        let s = Instant::now();
        fs.flush(h.fh)?;
        t_flush += s.elapsed();
        let s = Instant::now();
        fs.release(h.fh)?;
        t_release += s.elapsed();
    }
    let s = Instant::now();
    for i in 0..n {
        fs.unlink(root, format!("f{i}.txt").as_bytes(), me)?;
    }
    let t_unlink = s.elapsed();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "per file (us): lookup(miss) {:.1}  create {:.1}  write {:.1}  flush {:.1}  release {:.1}  unlink {:.1}  total {:.1}",
        per(t_lookup),
        per(t_create),
        per(t_write),
        per(t_flush),
        per(t_release),
        per(t_unlink),
        per(t_lookup + t_create + t_write + t_flush + t_release + t_unlink)
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = committer.join();
    drop(fs);
    for suffix in ["", "-wal", "-shm", "-want"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

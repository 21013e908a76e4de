//! Times the filesystem core without FUSE on a database file: the cost of each
//! step of creating, writing, closing and removing small files.
//!
//!     cargo run --release --example bench_core -- [FILES] [DB_DIR|postgres://...] [INTERVAL_MS]
//!
//! A PostgreSQL URL names an initialized database to run on (a store of its
//! own is made there and left behind).
//!
//! With `MEMFS_SQL_PROFILE=1` it also prints the SQL statements of each phase.
use memfs::fs::{Attached, Caller, FsOptions, MemFs, OpenMode};
use memfs::ids::Identity;
use memfs::store::{BatchPolicy, Db, Scope};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(5000), |s| s.parse())?;
    let where_ = args.get(2).map_or("/dev/shm", |s| s.as_str());
    let interval: u64 = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let pg = memfs::store::is_url(where_);
    let path = if pg {
        std::path::PathBuf::from(where_)
    } else {
        std::path::Path::new(where_).join(format!("bench-core-{}.db", std::process::id()))
    };
    let db = Db::open(&path)?;
    let op = Identity::new("op", "op", None);
    let name = format!("bench-core-{}", std::process::id());
    let kb = db.write(|tx| tx.create_store(&name, Scope::Org, None, "", &op, 1))?;
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
    // MEMFS_SQL_PROFILE=1: the statements of each phase.
    eprintln!("lookup, create, write, flush and release of {n} files:");
    memfs::store::sql_profile::report();
    let s = Instant::now();
    for i in 0..n {
        fs.unlink(root, format!("f{i}.txt").as_bytes(), me)?;
    }
    let t_unlink = s.elapsed();
    eprintln!("unlink of {n} files:");
    memfs::store::sql_profile::report();

    // `echo LINE >> log`: open for appending, one write, close; a 1 MiB log.
    let (_, h) = fs.create(root, b"log", 0o644, 0o022, w, me)?;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..1 << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    fs.write(h.fh, 0, &big)?;
    fs.flush(h.fh)?;
    fs.release(h.fh)?;
    let log = fs.lookup(root, b"log", me)?.ino;
    let append = OpenMode {
        write: true,
        append: true,
        ..OpenMode::default()
    };
    let line = [b'.'; 100];
    let (mut t_open, mut t_close) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let s = Instant::now();
        let h = fs.open(log, append, me)?;
        t_open += s.elapsed();
        let size = fs.getattr(log)?.size;
        fs.write(h.fh, size, &line)?;
        let s = Instant::now();
        fs.flush(h.fh)?;
        fs.release(h.fh)?;
        t_close += s.elapsed();
    }
    eprintln!("{n} appends:");
    memfs::store::sql_profile::report();
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
    println!(
        "per append (us): open {:.1}  close (flush+release) {:.1}",
        per(t_open),
        per(t_close)
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = committer.join();
    drop(fs);
    for suffix in ["", "-wal", "-shm", "-want"].into_iter().filter(|_| !pg) {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

//! Fills a memfs store with a long history through the filesystem core, as fsx
//! would: random writes, appends and truncates of a few files, each one version,
//! with incompressible bytes (so the versions' chunks really take the space).
//! For measuring how mount start-up depends on history (scripts/bench_startup.sh).
//!
//! ```text
//! cargo run --release --example gen_history -- --db DB [--store kb] [--ops 20000]
//!     [--files 16] [--max-file 1048576] [--seed 1]
//! ```
//!
//! The database must exist with the store in it (`memfs init`). Deterministic for
//! a seed (apart from times). Changes are group-committed as a daemon does.

use anyhow::{bail, Context, Result};
use memfs::fs::{Attached, Caller, FsOptions, MemFs, OpenMode, SetAttr};
use memfs::ids::{Identity, Ino};
use memfs::store::{BatchPolicy, Db};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    db: PathBuf,
    store: String,
    ops: u64,
    files: u64,
    max_file: u64,
    seed: u64,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        db: PathBuf::new(),
        store: "kb".into(),
        ops: 20_000,
        files: 16,
        max_file: 1 << 20,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        let num = |v: String| -> Result<u64> {
            v.parse()
                .with_context(|| format!("{flag} takes a number, not '{v}'"))
        };
        match flag.as_str() {
            "--db" => a.db = PathBuf::from(val()?),
            "--store" => a.store = val()?,
            "--ops" => a.ops = num(val()?)?,
            "--files" => a.files = num(val()?)?,
            "--max-file" => a.max_file = num(val()?)?,
            "--seed" => a.seed = num(val()?)?,
            "-h" | "--help" => {
                println!(
                    "gen_history --db DB [--store kb] [--ops N] [--files N] [--max-file BYTES] \
                     [--seed N]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument '{flag}' (try --help)"),
        }
    }
    if a.db.as_os_str().is_empty() {
        bail!("--db DB is required");
    }
    if a.files == 0 || a.max_file < 1024 {
        bail!("--files must be positive and --max-file at least 1024");
    }
    Ok(a)
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn main() -> Result<()> {
    let a = parse()?;
    if !a.db.exists() {
        bail!("{} does not exist (run `memfs init` first)", a.db.display());
    }
    let db = Db::open(&a.db).with_context(|| format!("open {}", a.db.display()))?;
    let store = db
        .read(|tx| tx.store_by_name(&a.store))?
        .with_context(|| format!("no store named '{}' in {}", a.store, a.db.display()))?;
    db.enable_batching(BatchPolicy {
        interval: Duration::from_millis(5),
        min_free_bytes: 0,
        ..BatchPolicy::default()
    });
    let root = store.root;
    let fs = Arc::new(MemFs::new(
        Arc::new(db),
        Identity::new("gen-history", "gen", None),
        vec![Attached::plain(store, false)],
        FsOptions::default(),
    ));
    fs.register()?;
    let stop = Arc::new(AtomicBool::new(false));
    let committer = {
        let (fs, stop) = (fs.clone(), stop.clone());
        std::thread::spawn(move || fs.db().run_committer(&stop))
    };
    let me = Caller::default();
    let write = OpenMode {
        write: true,
        ..OpenMode::default()
    };
    let append = OpenMode {
        write: true,
        append: true,
        ..OpenMode::default()
    };
    let mut rng = Rng(a.seed);
    let mut inos: Vec<Option<Ino>> = vec![None; a.files as usize];
    let started = Instant::now();
    let mut written = 0u64;
    for i in 0..a.ops {
        let f = rng.below(a.files) as usize;
        let ino = match inos[f] {
            Some(ino) => ino,
            None => {
                let name = format!("fsx-{f:03}");
                let (attr, o) = fs.create(root, name.as_bytes(), 0o644, 0, write, me)?;
                fs.release(o.fh)?;
                inos[f] = Some(attr.ino);
                attr.ino
            }
        };
        match rng.below(10) {
            // Writes at random offsets, mostly small, some large.
            0..=5 => {
                let most = if rng.below(4) == 0 {
                    256 << 10
                } else {
                    16 << 10
                };
                let len = 1 + rng.below(most);
                let off = rng.below(a.max_file.saturating_sub(len));
                let o = fs.open(ino, write, me)?;
                fs.write(o.fh, off, &rng.bytes(len as usize))?;
                fs.release(o.fh)?;
                written += len;
            }
            6..=8 => {
                let len = 1 + rng.below(8 << 10);
                let o = fs.open(ino, append, me)?;
                fs.write(o.fh, 0, &rng.bytes(len as usize))?;
                fs.release(o.fh)?;
                written += len;
            }
            _ => {
                let size = rng.below(a.max_file);
                fs.setattr(
                    ino,
                    SetAttr {
                        size: Some(size),
                        ..SetAttr::default()
                    },
                    me,
                )?;
            }
        }
        if (i + 1) % 2000 == 0 || i + 1 == a.ops {
            eprintln!(
                "gen_history: {}/{} operations, {} MiB written ({:.1}s)",
                i + 1,
                a.ops,
                written >> 20,
                started.elapsed().as_secs_f64()
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = committer.join();
    fs.unregister()?;
    fs.db().sync()?;
    Ok(())
}

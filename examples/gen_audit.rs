//! Fills a memfs database with a large, realistic-looking audit log, for
//! benchmarking `memfsctl log` and `memfsctl history` (scripts/bench_history.sh).
//!
//! ```text
//! cargo run --release --example gen_audit -- --db DB [--store kb] [--entries 1000000]
//!     [--sessions 1000] [--agents 50] [--paths 10000] [--batch 10000] [--days 30]
//! ```
//!
//! The database must exist with the store already in it (`memfs init`). Entries go
//! through the same `Txn::record` as every real change, so the hash chain stays
//! valid; they describe files that are not in the namespace (only the log is being
//! measured). Their times are spread evenly over the last `--days` days, oldest
//! first. Each session is a run of consecutive entries by one agent (one user per
//! agent) touching paths from its own corner of the tree, with some noise, so that
//! every path collects about entries/paths entries spread over the whole log.
//! Deterministic: the same arguments give the same log (apart from the times).

use anyhow::{bail, Context, Result};
use memfs::error::StoreError;
use memfs::ids::{now_ns, Identity, Ino};
use memfs::store::{Change, Db};
use std::path::PathBuf;
use std::time::Instant;

struct Args {
    db: PathBuf,
    store: String,
    entries: u64,
    sessions: u64,
    agents: u64,
    paths: u64,
    batch: u64,
    days: u64,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        db: PathBuf::new(),
        store: "kb".into(),
        entries: 1_000_000,
        sessions: 1000,
        agents: 50,
        paths: 10_000,
        batch: 10_000,
        days: 30,
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
            "--entries" => a.entries = num(val()?)?,
            "--sessions" => a.sessions = num(val()?)?,
            "--agents" => a.agents = num(val()?)?,
            "--paths" => a.paths = num(val()?)?,
            "--batch" => a.batch = num(val()?)?,
            "--days" => a.days = num(val()?)?,
            "-h" | "--help" => {
                println!(
                    "gen_audit --db DB [--store kb] [--entries N] [--sessions N] [--agents N] \
                     [--paths N] [--batch N] [--days N]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument '{flag}' (try --help)"),
        }
    }
    if a.db.as_os_str().is_empty() {
        bail!("--db DB is required");
    }
    if a.entries == 0 || a.sessions == 0 || a.agents == 0 || a.paths == 0 || a.batch == 0 {
        bail!("counts must be positive");
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
        self.next() % n
    }
}

/// Path number `p`: 100 directories of files (`docs/d042/f004242.md`).
fn path_of(p: u64) -> String {
    format!("docs/d{:03}/f{p:06}.md", p % 100)
}

/// A made-up inode number per path, far above any real one.
fn ino_of(p: u64) -> Ino {
    Ino(1_000_000_000 + p as i64)
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

    let span_ns = a.days as i64 * 86_400 * 1_000_000_000;
    let start_ns = now_ns() - span_ns;
    let step_ns = (span_ns / a.entries as i64).max(1);
    let per_session = a.entries.div_ceil(a.sessions);
    let mut rng = Rng(0x6d65_6d66_7321);
    let started = Instant::now();
    let mut done = 0u64;
    while done < a.entries {
        let n = a.batch.min(a.entries - done);
        db.write(|tx| -> Result<(), StoreError> {
            for i in done..done + n {
                let session = i / per_session;
                let agent = session % a.agents;
                let who = Identity::new(
                    &format!("agent-{agent:02}"),
                    &format!("sess-{session:04}"),
                    Some(&format!("user-{}", agent % 10)),
                );
                // Mostly this session's own stretch of paths, sometimes anywhere.
                let p = if rng.below(10) < 8 {
                    (session * 37 + rng.below(64)) % a.paths
                } else {
                    rng.below(a.paths)
                };
                let path = path_of(p);
                let roll = rng.below(100);
                let op = match roll {
                    0..=59 => "write",
                    60..=71 => "create",
                    72..=79 => "rename",
                    80..=86 => "unlink",
                    87..=92 => "chmod",
                    93..=96 => "truncate",
                    _ => "mkdir",
                };
                let path2 = (op == "rename").then(|| path_of(rng.below(a.paths)));
                let detail = match op {
                    "chmod" => Some(serde_json::json!({"mode": "600", "old_mode": "644"})),
                    _ => None,
                };
                tx.record(
                    &who,
                    start_ns + i as i64 * step_ns,
                    &Change {
                        store: Some(store.id),
                        op,
                        path: Some(&path),
                        path2: path2.as_deref(),
                        ino: Some(ino_of(p)),
                        detail,
                        origin: Some("gen_audit"),
                        ..Default::default()
                    },
                )?;
            }
            Ok(())
        })?;
        done += n;
        if done.is_multiple_of(a.batch * 10) || done == a.entries {
            eprintln!(
                "gen_audit: {done}/{} entries ({:.1}s)",
                a.entries,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Daemons only need the newest change-feed row; the audit log is the history.
    let pruned = db.write(|tx| tx.prune_changes(i64::MAX))?;
    eprintln!(
        "gen_audit: {} entries in {:.1}s ({pruned} change-feed rows pruned)",
        a.entries,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

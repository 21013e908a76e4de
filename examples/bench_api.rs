//! Load generator for `scripts/bench_api.sh`: throughput and p50/p99 latency
//! of the memory-store API (retrieve full, create, update with a
//! precondition, list of 1,000 memories) at several client counts, and of the
//! same reads and writes through a mount, in one run. Plain HTTP/1.1 with
//! keep-alive over std sockets, one connection per client thread, so the
//! client costs little next to the server.
//!
//!     cargo run --release --example bench_api -- URL KEY STORE_ID MOUNT_STORE_DIR \
//!         [SECONDS] [CLIENTS,...]
use sha2::Digest;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

type Err = Box<dyn std::error::Error + Send + Sync>;

/// One keep-alive connection.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    host: String,
    key: String,
}

impl Conn {
    fn new(url: &str, key: &str) -> Result<Conn, Err> {
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let s = TcpStream::connect(&host)?;
        s.set_nodelay(true)?;
        Ok(Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
            host,
            key: key.to_string(),
        })
    }

    /// Sends a request; returns (status, body).
    fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), Err> {
        let b = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
            self.host,
            self.key,
            b.len()
        );
        self.w.write_all(req.as_bytes())?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status: u16 = line.split(' ').nth(1).ok_or("bad status line")?.parse()?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l
                .to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
            {
                len = v.parse()?;
            }
        }
        let mut buf = vec![0; len];
        self.r.read_exact(&mut buf)?;
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }
}

fn sha(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let i = json.find(&pat)? + pat.len();
    Some(&json[i..i + json[i..].find('"')?])
}

/// Runs `op` on `clients` threads for `secs`; returns (ops/s, p50 ms, p99 ms, errors).
fn run<S: Send + 'static>(
    clients: usize,
    secs: f64,
    setup: impl Fn(usize) -> Result<S, Err> + Sync,
    op: impl Fn(&mut S, usize, u64) -> Result<bool, Err> + Sync,
) -> Result<(f64, f64, f64, u64), Err> {
    let states: Vec<S> = (0..clients).map(&setup).collect::<Result<_, _>>()?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let results: Vec<(Vec<f64>, u64)> = std::thread::scope(|sc| {
        let hs: Vec<_> = states
            .into_iter()
            .enumerate()
            .map(|(c, mut st)| {
                let op = &op;
                sc.spawn(move || {
                    let (mut lat, mut errs, mut i) = (Vec::new(), 0u64, 0u64);
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        match op(&mut st, c, i) {
                            Ok(true) => lat.push(t.elapsed().as_secs_f64() * 1e3),
                            _ => errs += 1,
                        }
                        i += 1;
                    }
                    (lat, errs)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut all: Vec<f64> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let errs = results.iter().map(|r| r.1).sum();
    all.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        if all.is_empty() {
            f64::NAN
        } else {
            all[((all.len() as f64 * p) as usize).min(all.len() - 1)]
        }
    };
    Ok((all.len() as f64 / elapsed, pct(0.5), pct(0.99), errs))
}

fn main() -> Result<(), Err> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        return Err(
            "usage: bench_api URL KEY STORE_ID MOUNT_STORE_DIR [SECONDS] [CLIENTS,...]".into(),
        );
    }
    let (url, key, store, mdir) = (a[1].clone(), a[2].clone(), a[3].clone(), a[4].clone());
    let secs: f64 = a.get(5).map_or(Ok(3.0), |s| s.parse())?;
    let clients: Vec<usize> = a
        .get(6)
        .map_or("1,8,32", |s| s.as_str())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let body = "memory note: the quick brown fox jumps over the lazy dog\n".repeat(8);
    let base = format!("/v1/memory_stores/{store}/memories");
    // 1,000 memories to read and list.
    let mut c = Conn::new(&url, &key)?;
    let mut ids = Vec::new();
    for i in 0..1000 {
        let j = format!(
            "{{\"path\":\"/list/m{i:04}.md\",\"content\":{}}}",
            serde_json::to_string(&body)?
        );
        let (st, b) = c.call("POST", &base, Some(&j))?;
        if st != 200 {
            return Err(format!("seeding failed: {st} {b}").into());
        }
        ids.push(field(&b, "id").ok_or("no id")?.to_string());
    }
    let (st, b) = c.call("GET", &format!("{base}?limit=100&path_prefix=/list/"), None)?;
    if st != 200 || !b.contains("m0099") {
        return Err(format!("list failed: {st}").into());
    }
    println!("| workload | clients | ops/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, n: usize, r: (f64, f64, f64, u64)| {
        println!(
            "| {name} | {n} | {:.0} | {:.2} | {:.2} | {} |",
            r.0, r.1, r.2, r.3
        );
    };
    let conn = |_| Conn::new(&url, &key);
    let paths: Vec<String> = (0..1000)
        .map(|i| format!("{mdir}/list/m{i:04}.md"))
        .collect();
    for &n in &clients {
        let r = run(n, secs, conn, |c, cl, i| {
            let id = &ids[(cl * 7919 + i as usize * 31) % ids.len()];
            let (st, _) = c.call("GET", &format!("{base}/{id}?view=full"), None)?;
            Ok(st == 200)
        })?;
        row("API retrieve (full)", n, r);
        let r = run(
            n,
            secs,
            |_| Ok(()),
            |_, cl, i| {
                let p = &paths[(cl * 7919 + i as usize * 31) % paths.len()];
                Ok(std::fs::read(p)?.len() == body.len())
            },
        )?;
        row("mount cat", n, r);
    }
    let run_id = std::process::id();
    for &n in &clients {
        let r = run(n, secs, conn, |c, cl, i| {
            let j = format!(
                "{{\"path\":\"/new/{run_id}-{n}/c{cl}/{i}.md\",\"content\":{}}}",
                serde_json::to_string(&body)?
            );
            Ok(c.call("POST", &base, Some(&j))?.0 == 200)
        })?;
        row("API create", n, r);
        let r = run(
            n,
            secs,
            |cl| {
                let d = format!("{mdir}/newm/{run_id}-{n}/c{cl}");
                std::fs::create_dir_all(&d)?;
                Ok(d)
            },
            |d, _, i| {
                std::fs::write(format!("{d}/{i}.md"), &body)?;
                Ok(true)
            },
        )?;
        row("mount create", n, r);
    }
    for &n in &clients {
        // Each client updates its own memory, tracking its sha.
        let r = run(
            n,
            secs,
            |cl| {
                let mut c = Conn::new(&url, &key)?;
                let content = format!("{body}0");
                let j = format!(
                    "{{\"path\":\"/upd/{run_id}-{n}/c{cl}.md\",\"content\":{}}}",
                    serde_json::to_string(&content)?
                );
                let (st, b) = c.call("POST", &base, Some(&j))?;
                if st != 200 {
                    return Err(format!("{st} {b}").into());
                }
                let id = field(&b, "id").ok_or("no id")?.to_string();
                Ok((c, id, sha(&content)))
            },
            |(c, id, cur), _, i| {
                let content = format!("{body}{}", i + 1);
                let j = format!(
                "{{\"content\":{},\"precondition\":{{\"type\":\"content_sha256\",\"content_sha256\":\"{cur}\"}}}}",
                serde_json::to_string(&content)?
            );
                let (st, _) = c.call("POST", &format!("{base}/{id}"), Some(&j))?;
                if st == 200 {
                    *cur = sha(&content);
                }
                Ok(st == 200)
            },
        )?;
        row("API update (precondition)", n, r);
        let r = run(
            n,
            secs,
            |cl| {
                let p = format!("{mdir}/updm-{run_id}-{n}-c{cl}.md");
                std::fs::write(&p, &body)?;
                Ok(p)
            },
            |p, _, i| {
                std::fs::write(&*p, format!("{body}{i}"))?;
                Ok(true)
            },
        )?;
        row("mount overwrite", n, r);
    }
    for &n in &clients {
        let r = run(n, secs, conn, |c, _, _| {
            let (st, b) = c.call("GET", &format!("{base}?limit=100&path_prefix=/list/"), None)?;
            Ok(st == 200 && b.len() > 1000)
        })?;
        row("API list (basic, 100 of 1,000)", n, r);
        let r = run(
            n,
            secs,
            |_| Ok(()),
            |_, _, _| Ok(std::fs::read_dir(format!("{mdir}/list"))?.count() == 1000),
        )?;
        row("mount ls (1,000)", n, r);
    }
    Ok(())
}

//! `memfs mount --metrics ADDR`: `/metrics` parses as Prometheus text (every
//! sample under a HELP and TYPE of its name) and its counters move as a
//! workload says: creates, an EROFS error, lease waits and EBUSY, changes from
//! another mount, batch commits, cache lookups, database gauges. `/healthz`
//! and `/readyz` answer.

mod common;

use common::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[daemon]
lease_wait_secs = 0.2

[[stores]]
name = "kb"

[[stores]]
name = "alice"
scope = "user"
owner = "alice"
"#;

/// `GET path` over HTTP/1.1: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics port");
    s.set_read_timeout(Some(COMMAND_DEADLINE)).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    assert!(
        status != 200 || path != "/metrics" || head.contains("text/plain; version=0.0.4"),
        "{head}"
    );
    (status, body.to_string())
}

/// Samples by `name{labels}`, checking the exposition format on the way: every
/// sample's metric has HELP and TYPE lines before it, and values are numbers.
fn scrape(addr: &str) -> HashMap<String, f64> {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut helped: Vec<String> = Vec::new();
    let mut out = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().expect("name").to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("name and type");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "bad type: {line}"
            );
            typed.insert(name.to_string(), kind.to_string());
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line: {line}"));
        let name = series.split('{').next().expect("name");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "no TYPE before {line}");
        assert!(helped.iter().any(|h| h == family), "no HELP before {line}");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        out.insert(series.to_string(), v);
    }
    out
}

fn val(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

/// The address the daemon logged it serves metrics on.
fn metrics_addr(m: &Mount<'_>) -> String {
    let deadline = Instant::now() + DAEMON_DEADLINE;
    loop {
        let log = m.log_text();
        if let Some(addr) = log
            .lines()
            .find(|l| l.contains("serving /metrics"))
            .and_then(|l| l.split("addr=").nth(1))
        {
            return addr.split_whitespace().next().expect("addr").to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no metrics address in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn metrics_move_as_the_workload_says() {
    let env = Env::with_config(CONFIG);
    let a = env.mount_with(
        "agent-a",
        "s-a",
        Some("alice"),
        &["kb", "alice:ro"],
        &["--metrics", "127.0.0.1:0"],
    );
    let b = env.mount("agent-b", "s-b", None, &["kb"]);
    let addr = metrics_addr(&a);
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(get(&addr, "/readyz"), (200, "ready\n".to_string()));
    let before = scrape(&addr);
    assert_eq!(val(&before, "memfs_ready"), 1.0);

    // 20 new files (20 creates), then reads; one write to a read-only store.
    sh(
        a.path(),
        "for i in $(seq 20); do echo $i > kb/f$i; done; cat kb/f* >/dev/null; \
         ! echo no > alice/x 2>/dev/null",
    );
    // Mount B holds kb/busy open for writing: A's open waits for the lease, then EBUSY.
    sh(b.path(), "echo base > kb/busy");
    let holder = ChildGuard(
        Command::new("python3")
            .arg("-c")
            .arg("import sys; f = open(sys.argv[1], 'r+'); print('open', flush=True); sys.stdin.read()")
            .arg(b.store("kb").join("busy"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3"),
    );
    let mut holder = holder;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.0.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("python3 has the file open");
    let (_, _, err) = sh_fails(a.path(), "echo mine > kb/busy");
    assert!(err.contains("busy"), "{err}");
    drop(holder.0.stdin.take());
    let _ = holder.0.wait();
    // A change from mount B reaches A through the change feed.
    sh(b.path(), "echo from-b > kb/from-b");
    let deadline = Instant::now() + COMMAND_DEADLINE;
    let after = loop {
        let m = scrape(&addr);
        if val(&m, "memfs_feed_changes_total") > val(&before, "memfs_feed_changes_total") {
            break m;
        }
        assert!(Instant::now() < deadline, "no change-feed row was counted");
        std::thread::sleep(Duration::from_millis(50));
    };
    let delta = |k: &str| val(&after, k) - val(&before, k);
    assert_eq!(
        delta("memfs_fuse_requests_total{op=\"create\"}"),
        21.0,
        "20 files + 1 refused"
    );
    assert_eq!(
        delta("memfs_fuse_request_duration_seconds_count{op=\"create\"}"),
        21.0
    );
    assert_eq!(
        delta("memfs_fuse_request_duration_seconds_bucket{op=\"create\",le=\"+Inf\"}"),
        21.0
    );
    assert_eq!(
        delta("memfs_fuse_errors_total{op=\"create\",errno=\"EROFS\"}"),
        1.0
    );
    assert!(delta("memfs_fuse_requests_total{op=\"read\"}") >= 20.0);
    assert!(delta("memfs_fuse_requests_total{op=\"release\"}") >= 40.0);
    assert_eq!(delta("memfs_lease_waits_total"), 1.0);
    assert_eq!(delta("memfs_lease_busy_total"), 1.0);
    assert_eq!(
        delta("memfs_fuse_errors_total{op=\"open\",errno=\"EBUSY\"}"),
        1.0
    );
    for phase in [
        "prepare", "begin", "chunks", "version", "audit", "end", "finish",
    ] {
        let key = format!("memfs_commit_phase_duration_seconds_count{{phase=\"{phase}\"}}");
        assert_eq!(delta(&key), 20.0, "one commit of each new file: {key}");
        let sum = format!("memfs_commit_phase_duration_seconds_sum{{phase=\"{phase}\"}}");
        assert!(delta(&sum) > 0.0, "{sum}");
    }
    assert!(delta("memfs_batch_commits_total") >= 1.0);
    assert!(
        delta("memfs_batch_changes_total") >= 40.0,
        "creates + writes"
    );
    assert!(
        delta("memfs_version_cache_lookups_total{cache=\"extents\",result=\"hit\"}")
            + delta("memfs_version_cache_lookups_total{cache=\"extents\",result=\"miss\"}")
            >= 1.0
    );
    assert!(val(&after, "memfs_feed_lag_seconds_count") >= 1.0);
    // Database gauges are read at most every few seconds: wait for fresh ones.
    let deadline = Instant::now() + COMMAND_DEADLINE;
    let after = loop {
        let m = scrape(&addr);
        if val(&m, "memfs_versions{state=\"all\"}") >= 22.0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the versions gauge never counted the 22 files"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(val(&after, "memfs_versions{state=\"content\"}") >= 22.0);
    assert!(val(&after, "memfs_chunks") >= 1.0);
    assert!(val(&after, "memfs_database_bytes{file=\"db\"}") > 0.0);
    let build: Vec<(&String, &f64)> = after
        .iter()
        .filter(|(k, _)| k.starts_with("memfs_build_info{version=\"0.1.0\",schema=\""))
        .collect();
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(*build[0].1, 1.0);
    a.stop();
    b.stop();
}

#[test]
fn a_taken_metrics_port_fails_the_mount_before_mounting() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").to_string();
    let mp = env.scratch("m");
    let err = env
        .try_mount_with(&mp, "a", "s", None, &["kb"], &["--metrics", &port])
        .err()
        .expect("the mount must fail");
    assert!(err.log.contains("cannot serve metrics"), "{}", err.log);
    assert!(!is_mounted(&mp));
}

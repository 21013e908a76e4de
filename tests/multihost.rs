//! Many hosts, one memory: two daemons, each in its own network namespace
//! with its own host name (UTS namespace), reach one PostgreSQL server over
//! TCP through veth pairs, and share a store. Each test starts its own
//! throwaway cluster (as the `postgres` user) and namespaces, and removes
//! them on drop, also when it fails.
//!
//! The daemons reach the server over TLS (`sslmode=require` with the test
//! CA in `sslrootcert`: memfs's rustls connector verifies the certificate,
//! issued for the veth addresses).
//!
//! Needs root, `ip`, `nsenter`, `unshare`, `openssl`, PostgreSQL's binaries
//! and `faketime`; skipped (with a note) where they are missing.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[daemon]
lease_ttl_secs = 2.0
lease_wait_secs = 0.5

[[stores]]
name = "kb"
"#;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn pg_bin() -> Option<PathBuf> {
    let dir = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut bins: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    bins.sort();
    bins.pop()
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn sh_ok(cmd: &str) {
    let out = run_with_deadline(Command::new("sh").args(["-c", cmd]), COMMAND_DEADLINE);
    assert_success(cmd, &out);
}

/// A network namespace with a veth pair to the root namespace.
struct Netns {
    name: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A throwaway cluster listening on a Unix socket and on the root ends of
/// the veth pairs.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn ctl(&self, args: &str) -> std::process::Output {
        run_with_deadline(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args([
                    "-D",
                    &self.dir.path().join("data").display().to_string(),
                    "-l",
                    &self.dir.path().join("server.log").display().to_string(),
                ])
                .args(args.split(' ')),
            COMMAND_DEADLINE,
        )
    }

    fn socket_url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@/{db}?host={}&port={}",
            self.dir.path().display(),
            self.port
        )
    }

    fn psql(&self, sql: &str) -> String {
        let out = run_with_deadline(
            Command::new(self.bin.join("psql"))
                .arg(self.socket_url("memfs"))
                .args(["-Atc", sql]),
            COMMAND_DEADLINE,
        );
        assert_success(&format!("psql {sql}"), &out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.ctl("-m immediate stop");
    }
}

/// Two "hosts" and a server: the world of one test.
struct World {
    hosts: [(Netns, String); 2],
    cluster: Cluster,
    env: Env,
}

impl World {
    /// `None` (and a note) where the tools are missing.
    fn new() -> Option<World> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let bin = pg_bin();
        let tools = ["ip", "nsenter", "unshare", "runuser", "faketime", "openssl"]
            .iter()
            .all(|t| have(t));
        let (true, Some(bin), true) = (root, bin, tools) else {
            eprintln!(
                "skipped: multi-host tests need root, PostgreSQL, ip, nsenter, unshare, faketime"
            );
            return None;
        };
        let k = NEXT.fetch_add(1, Ordering::Relaxed) + (std::process::id() % 50) * 4;
        let port = 56000 + (k % 1000) as u16;
        let mut hosts = Vec::new();
        for (i, tag) in ["a", "b"].iter().enumerate() {
            let name = format!("memfs-{}-{k}{tag}", std::process::id());
            let net = format!("10.77.{}", (2 * k as usize + i) % 250);
            let (outer, inner) = (format!("mfo{k}{tag}"), format!("mfi{k}{tag}"));
            sh_ok(&format!(
                "ip netns add {name} && ip link add {outer} type veth peer name {inner} && \
                 ip link set {inner} netns {name} && ip addr add {net}.1/30 dev {outer} && \
                 ip link set {outer} up && \
                 ip netns exec {name} sh -c 'ip addr add {net}.2/30 dev {inner} && \
                 ip link set {inner} up && ip link set lo up'"
            ));
            hosts.push((Netns { name }, format!("{net}.1")));
        }
        let dir = tempfile::Builder::new()
            .prefix("memfs-mh-")
            .tempdir()
            .expect("temp dir");
        // A CA and a server certificate for the two addresses the server has.
        let san: Vec<String> = hosts.iter().map(|(_, ip)| format!("IP:{ip}")).collect();
        std::fs::write(
            dir.path().join("ext"),
            format!("subjectAltName={}\n", san.join(",")),
        )
        .expect("write ext");
        sh_ok(&format!(
            "cd {d} && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=memfs-test-ca \
               -keyout ca.key -out ca.crt 2>/dev/null && \
             openssl req -newkey rsa:2048 -nodes -subj /CN=memfs-pg -keyout server.key \
               -out server.csr 2>/dev/null && \
             openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
               -extfile ext -out server.crt 2>/dev/null && \
             chown postgres:postgres server.key server.crt && chmod 600 server.key",
            d = dir.path().display(),
        ));
        let ca = dir.path().join("ca.crt");
        let hosts: Vec<(Netns, String)> = hosts
            .into_iter()
            .map(|(ns, ip)| {
                let url = format!(
                    "postgres://postgres@{ip}:{port}/memfs?sslmode=require&sslrootcert={}",
                    ca.display()
                );
                (ns, url)
            })
            .collect();
        sh_ok(&format!("chown postgres:postgres {}", dir.path().display()));
        let out = run_with_deadline(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("initdb"))
                .args([
                    "-D",
                    &dir.path().join("data").display().to_string(),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-locale",
                    "--no-sync",
                ]),
            COMMAND_DEADLINE,
        );
        assert_success("initdb", &out);
        let listen: Vec<String> = hosts
            .iter()
            .map(|(_, u)| {
                u.split('@')
                    .nth(1)
                    .unwrap_or("")
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let conf = format!(
            "listen_addresses = '{}'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_connections = 100\nssl = on\nssl_cert_file = '{d}/server.crt'\n\
             ssl_key_file = '{d}/server.key'\n",
            listen.join(","),
            dir.path().display(),
            d = dir.path().display()
        );
        let data = dir.path().join("data");
        std::fs::write(
            data.join("postgresql.conf"),
            std::fs::read_to_string(data.join("postgresql.conf")).unwrap_or_default() + &conf,
        )
        .expect("write postgresql.conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 10.77.0.0/16 trust\n",
        )
        .expect("write pg_hba.conf");
        let cluster = Cluster { dir, bin, port };
        let out = cluster.ctl("-w -t 60 start");
        if !out.status.success() {
            let log = std::fs::read_to_string(cluster.dir.path().join("server.log"));
            panic!("pg_ctl start failed: {log:?}");
        }
        let out = run_with_deadline(
            Command::new(cluster.bin.join("psql"))
                .arg(cluster.socket_url("postgres"))
                .args(["-qc", "CREATE DATABASE memfs"]),
            COMMAND_DEADLINE,
        );
        assert_success("create database", &out);
        let env = Env::with_config_and_db(CONFIG, Some(PathBuf::from(cluster.socket_url("memfs"))));
        let mut it = hosts.into_iter();
        let (a, b) = (it.next()?, it.next()?);
        Some(World {
            hosts: [a, b],
            cluster,
            env,
        })
    }

    /// How host `i` starts a daemon: in its network namespace, with its own
    /// host name, and (`skew`) a clock off by that much.
    fn launcher(&self, i: usize, skew: Option<&str>) -> Vec<String> {
        let mut l: Vec<String> = vec![
            "nsenter".into(),
            format!("--net=/run/netns/{}", self.hosts[i].0.name),
            "unshare".into(),
            "--uts".into(),
        ];
        if let Some(s) = skew {
            l.extend([
                "env".into(),
                "FAKETIME_DONT_FAKE_MONOTONIC=1".into(),
                "faketime".into(),
                "-f".into(),
                s.into(),
            ]);
        }
        l.extend([
            "sh".into(),
            "-c".into(),
            format!("hostname host-{}; exec \"$0\" \"$@\"", ["a", "b"][i]),
        ]);
        l
    }

    fn mount(&self, i: usize, skew: Option<&str>) -> Mount<'_> {
        self.env.mount_on_host(
            &self.launcher(i, skew),
            &self.hosts[i].1,
            &format!("agent-{i}"),
            &format!("s{i}"),
            &["kb"],
        )
    }
}

fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn two_hosts_see_each_others_changes_and_hold_their_own_names() {
    let Some(w) = World::new() else { return };
    let (a, b) = (w.mount(0, None), w.mount(1, None));
    let (fa, fb) = (a.path().join("kb/fact.md"), b.path().join("kb/fact.md"));
    std::fs::write(&fa, "rate limit: 100/s\n").expect("write on a");
    until("b to see a's file", Duration::from_secs(10), || {
        read(&fb) == "rate limit: 100/s\n"
    });
    // b has it cached now; a changes it: b sees the change through the feed
    // (LISTEN/NOTIFY), long before its kernel caches expire (10 s).
    let mut worst = Duration::ZERO;
    for round in 0..5 {
        let text = format!("rate limit: {round}/s\n");
        let t = Instant::now();
        std::fs::write(&fa, &text).expect("write on a");
        until("b to see a's change", Duration::from_secs(8), || {
            read(&fb) == text
        });
        worst = worst.max(t.elapsed());
    }
    eprintln!("coherence across hosts: worst of 5 changes {worst:?}");
    let holders = w
        .cluster
        .psql("SELECT string_agg(DISTINCT host, ',' ORDER BY host) FROM holders");
    assert_eq!(
        holders, "host-a,host-b",
        "each daemon registered with its host"
    );
}

#[test]
fn four_thousand_appends_from_two_hosts_land_exactly_once() {
    let Some(w) = World::new() else { return };
    let (a, b) = (w.mount(0, None), w.mount(1, None));
    let log = "kb/log.txt";
    std::fs::write(a.path().join(log), "").expect("create log");
    let script = "import sys\nfor i in range(1000):\n    with open(sys.argv[1], 'a') as f:\n        f.write(f'{sys.argv[2]}-{i}\\n')\n";
    let mut kids: Vec<Child> = Vec::new();
    for (m, tags) in [(&a, ["a1", "a2"]), (&b, ["b1", "b2"])] {
        for tag in tags {
            kids.push(
                Command::new("python3")
                    .args(["-c", script])
                    .arg(m.path().join(log))
                    .arg(tag)
                    .spawn()
                    .expect("spawn appender"),
            );
        }
    }
    for mut k in kids {
        assert!(k.wait().expect("appender").success(), "an append failed");
    }
    let text = w.env.run(w.env.memfsctl().args(["cat", log]));
    assert_success("memfsctl cat", &text);
    let lines: Vec<String> = String::from_utf8_lossy(&text.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 4000, "every append once");
    let unique: std::collections::BTreeSet<&String> = lines.iter().collect();
    assert_eq!(unique.len(), 4000, "no append twice");
}

#[test]
fn an_flock_counter_across_hosts_is_exact() {
    let Some(w) = World::new() else { return };
    let (a, b) = (w.mount(0, None), w.mount(1, None));
    std::fs::write(a.path().join("kb/counter"), "0\n").expect("counter");
    std::fs::write(a.path().join("kb/counter.lock"), "").expect("lock file");
    let bump = "for i in $(seq 100); do flock kb/counter.lock sh -c 'n=$(cat kb/counter); echo $((n+1)) > kb/counter'; done";
    let kids: Vec<Child> = [&a, &b]
        .iter()
        .map(|m| {
            Command::new("sh")
                .args(["-c", bump])
                .current_dir(m.path())
                .spawn()
                .expect("spawn counter")
        })
        .collect();
    for mut k in kids {
        assert!(k.wait().expect("counter").success());
    }
    until(
        "the last increment to show",
        Duration::from_secs(10),
        || read(&b.path().join("kb/counter")) == "200\n",
    );
    assert_eq!(read(&a.path().join("kb/counter")), "200\n");
}

/// Opens `p` for writing in a helper that keeps it open until told to close,
/// and says what `open` and `close` returned.
struct Writer {
    child: Child,
}

impl Writer {
    fn open(p: &Path, text: &str) -> (Writer, String) {
        let script = "import os,sys\ntry:\n    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)\n    os.write(fd, sys.argv[2].encode())\n    print('open ok', flush=True)\nexcept OSError as e:\n    print(f'open errno {e.errno}', flush=True); sys.exit(0)\nsys.stdin.readline()\ntry:\n    os.close(fd); print('close ok', flush=True)\nexcept OSError as e:\n    print(f'close errno {e.errno}', flush=True)\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(p)
            .arg(text)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn writer");
        let line = Self::line(&mut child);
        (Writer { child }, line)
    }

    fn line(child: &mut Child) -> String {
        use std::io::BufRead;
        let out = child.stdout.as_mut().expect("stdout");
        let mut r = std::io::BufReader::new(out);
        let mut s = String::new();
        let _ = r.read_line(&mut s);
        s.trim().to_string()
    }

    fn close(mut self) -> String {
        use std::io::Write;
        if let Some(i) = self.child.stdin.as_mut() {
            let _ = i.write_all(b"\n");
        }
        let line = Self::line(&mut self.child);
        let _ = self.child.wait();
        line
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_held_lease_gives_ebusy_on_the_other_host_and_a_frozen_holder_is_fenced() {
    let Some(w) = World::new() else { return };
    let (a, b) = (w.mount(0, None), w.mount(1, None));
    std::fs::write(a.path().join("kb/plan.md"), "v0\n").expect("seed");
    let (held, opened) = Writer::open(&a.path().join("kb/plan.md"), "from a\n");
    assert_eq!(opened, "open ok");
    let (_, other) = Writer::open(&b.path().join("kb/plan.md"), "from b\n");
    assert_eq!(
        other,
        format!("open errno {}", libc::EBUSY),
        "the lease binds across hosts"
    );
    // Freeze a's daemon past its lease TTL (by the database's clock).
    let pid = a.pid().expect("daemon pid") as i32;
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    struct Cont(i32);
    impl Drop for Cont {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe { libc::kill(self.0, libc::SIGCONT) };
        }
    }
    let cont = Cont(pid);
    until("a's lease to lapse", Duration::from_secs(30), || {
        w.cluster
            .psql("SELECT count(*) FROM leases WHERE expires_ns > memfs_now()")
            == "0"
    });
    let (writer_b, opened) = Writer::open(&b.path().join("kb/plan.md"), "from b\n");
    assert_eq!(opened, "open ok", "the lapsed lease was taken over");
    assert_eq!(writer_b.close(), "close ok");
    drop(cont);
    assert_eq!(
        held.close(),
        format!("close errno {}", libc::EBUSY),
        "a was fenced off"
    );
    let hist = w.env.ctl(&["history", "kb/plan.md"]);
    let ops: Vec<&str> = hist
        .as_array()
        .map(|v| v.iter().filter_map(|e| e["op"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        ops.contains(&"conflict"),
        "a's bytes kept as a conflict version: {ops:?}"
    );
    let head = w.env.run(w.env.memfsctl().args(["cat", "kb/plan.md"]));
    assert_eq!(String::from_utf8_lossy(&head.stdout), "from b\n");
}

#[test]
fn a_clock_two_minutes_ahead_changes_nothing() {
    let Some(w) = World::new() else { return };
    let a = w.mount(0, None);
    let b = w.mount(1, Some("+120s"));
    std::fs::write(a.path().join("kb/x.md"), "x\n").expect("seed");
    let (held, opened) = Writer::open(&a.path().join("kb/x.md"), "a\n");
    assert_eq!(opened, "open ok");
    // Several TTLs pass: b's clock says a's lease expired long ago, the
    // database's says it is renewed and live.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(2));
        let (_, r) = Writer::open(&b.path().join("kb/x.md"), "b\n");
        assert_eq!(r, format!("open errno {}", libc::EBUSY));
    }
    assert_eq!(held.close(), "close ok");
    // The other way round: b holds a lock, a waits for it.
    let mut lock = Command::new("flock")
        .args(["kb/x.md", "sleep", "30"])
        .current_dir(b.path())
        .spawn()
        .expect("flock on b");
    until("b's lock", Duration::from_secs(10), || {
        w.cluster.psql("SELECT count(*) FROM locks") == "1"
    });
    std::thread::sleep(Duration::from_secs(5));
    let busy = w.env.run(
        Command::new("flock")
            .args(["-n", "kb/x.md", "true"])
            .current_dir(a.path()),
    );
    assert!(!busy.status.success(), "b's lock lapsed on a's side");
    let _ = lock.kill();
    let _ = lock.wait();
    let alive = w
        .cluster
        .psql("SELECT count(*) FROM holders WHERE alive_until_ns > memfs_now()");
    assert_eq!(alive, "2", "neither daemon reaped the other");
}

#[test]
fn a_terminated_backend_fails_the_write_with_eio_and_the_mount_recovers() {
    let Some(w) = World::new() else { return };
    let a = w.mount(0, None);
    let pid = a.pid().expect("daemon pid");
    let big = a.path().join("kb/big.bin");
    let script = "import os,sys\nfd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)\nfor _ in range(48):\n    os.write(fd, os.urandom(1 << 20))\nprint('written', flush=True)\ntry:\n    os.close(fd); print('close ok')\nexcept OSError as e:\n    print(f'close errno {e.errno}')\n";
    let mut writer = Command::new("python3")
        .args(["-c", script])
        .arg(&big)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn writer");
    let mut stdout = std::io::BufReader::new(writer.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("read");
    assert_eq!(line.trim(), "written");
    // The daemon's connection inside the close's commit: it holds the
    // store's writer lock (lease renewals take none).
    let q = format!(
        "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
         WHERE a.application_name = 'memfs {pid}' AND l.locktype = 'advisory' \
         AND l.classid = 1835363686 AND l.granted LIMIT 1"
    );
    let mut victim = String::new();
    until("the commit to start", Duration::from_secs(60), || {
        victim = w.cluster.psql(&q);
        !victim.is_empty()
    });
    w.cluster
        .psql(&format!("SELECT pg_terminate_backend({victim})"));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read");
    let _ = writer.wait();
    assert_eq!(rest.trim(), format!("close errno {}", libc::EIO));
    // Nothing of it was committed, and the mount works again.
    let versions = w
        .cluster
        .psql("SELECT count(*) FROM versions WHERE path = 'big.bin'");
    assert_eq!(versions, "0", "no partial version");
    std::fs::write(a.path().join("kb/after.md"), "recovered\n").expect("write after reconnect");
    assert_eq!(read(&a.path().join("kb/after.md")), "recovered\n");
    let fsck = w.env.run(w.env.memfsctl().arg("fsck"));
    assert_success("fsck", &fsck);
}

#[test]
fn a_server_restart_under_busy_mounts_loses_nothing_committed() {
    let Some(w) = World::new() else { return };
    let (a, b) = (w.mount(0, None), w.mount(1, None));
    let log = a.path().join("kb/journal.txt");
    std::fs::write(&log, "").expect("create");
    let script = "import sys,time\nok=[]\nend=time.time()+float(sys.argv[2])\ni=0\nwhile time.time()<end:\n    i+=1\n    try:\n        with open(sys.argv[1],'a') as f: f.write(f'line-{i}\\n')\n        ok.append(i)\n    except OSError:\n        time.sleep(0.05)\nprint(' '.join(map(str,ok)))\n";
    let writer = Command::new("python3")
        .args(["-c", script])
        .arg(&log)
        .arg("8")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn writer");
    std::thread::sleep(Duration::from_secs(2));
    let out = w.cluster.ctl("-w -t 60 -m fast restart");
    assert_success("pg_ctl restart", &out);
    let out = writer.wait_with_output().expect("writer");
    let ok: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|i| format!("line-{i}"))
        .collect();
    assert!(ok.len() > 10, "the writer made progress: {}", ok.len());
    let seen = w.env.run(w.env.memfsctl().args(["cat", "kb/journal.txt"]));
    assert_success("cat", &seen);
    let text = String::from_utf8_lossy(&seen.stdout).to_string();
    let lines: std::collections::BTreeSet<&str> = text.lines().collect();
    for l in &ok {
        assert!(
            lines.contains(l.as_str()),
            "{l} was acknowledged and is gone"
        );
    }
    // Both mounts work after the restart.
    std::fs::write(b.path().join("kb/after.md"), "b\n").expect("b writes after restart");
    until("a to see b's write", Duration::from_secs(10), || {
        read(&a.path().join("kb/after.md")) == "b\n"
    });
}

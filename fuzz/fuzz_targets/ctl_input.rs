//! What memfsctl (and `memfs mount --store`) parses from its command line:
//! store specs `NAME[:ro|:rw]` (`attach::StoreSpec`), store names and scopes,
//! `--as user:NAME` (`ctl::operator`), `STORE/PATH` (`ctl::resolve`, as `leases
//! break` uses it) and the `log` filters `--store/--path/--since/--until`
//! (`ctl::log::filter`), whose path filter is then run against an audit log.
//!
//! Input: command-line arguments separated by NUL bytes (an argument cannot
//! hold one); missing arguments are "not given".

#![no_main]

use libfuzzer_sys::fuzz_target;
use memfs::attach::{apply_template, StoreSpec};
use memfs::config::Config;
use memfs::ctl::{self, log::LogArgs, Ctx};
use memfs::ids::Identity;
use memfs::store::{validate_store_name, AuditEntry, AuditFilter, Db, Scope};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// One database for all runs (only read by the code under test): store `kb`
/// with a few files whose names sit next to each other in byte order, and
/// store `k-2` empty.
const SETUP: &str = r#"
[[stores]]
name = "kb"
template = ["a/b", "a0", "a.b/c", "x y/%_", "é/ü"]
[stores.seed]
"a/b/c.md" = "1"
"a/bc" = "2"
"a0/z" = "3"
"notes.md" = "4"
"#;

struct World {
    ctx: Ctx,
    log: Vec<AuditEntry>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let config = Config::parse(SETUP, Path::new("fuzz.toml")).expect("setup config");
        let db = Arc::new(Db::open_in_memory().expect("in-memory db"));
        let who = Identity::new("memfsctl", "fuzz", Some("fuzzer"));
        for (name, scope) in [("kb", Scope::Org), ("k-2", Scope::Org)] {
            let row = db
                .write(|tx| tx.create_store(name, scope, None, "", &who, 1))
                .expect("create store");
            if let Some(decl) = config.store(name) {
                apply_template(&db, &row, decl, &who).expect("template");
            }
        }
        let log = db
            .read(|tx| tx.audit_entries(&AuditFilter::default()))
            .expect("audit log");
        assert!(log.len() > 10, "setup wrote {} audit entries", log.len());
        World {
            ctx: Ctx {
                db,
                config,
                json: true,
                who,
            },
            log,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let args: Vec<String> = data
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let a0 = arg(0).unwrap_or_default();
    store_spec(a0);
    store_name(a0);
    assert_eq!(
        Scope::parse(a0).ok(),
        match a0 {
            "org" => Some(Scope::Org),
            "user" => Some(Scope::User),
            _ => None,
        }
    );
    if let Some(a) = arg(1) {
        operator(a);
    }
    if let Some(a) = arg(2) {
        resolve(w, a);
    }
    if args.len() > 3 {
        let opt = |i: usize| arg(i).map(str::to_string);
        log_filter(
            w,
            &LogArgs {
                store: opt(3).filter(|s| !s.is_empty()),
                path: opt(4),
                since: opt(5),
                until: opt(6),
                limit: arg(7).and_then(|s| s.parse().ok()),
                ..Default::default()
            },
        );
    }
});

/// `[a-z0-9][a-z0-9-]{0,62}`
fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn store_name(s: &str) {
    assert_eq!(validate_store_name(s).is_ok(), is_slug(s), "{s:?}");
}

/// `NAME`, `NAME:ro` or `NAME:rw`, NAME a slug; nothing else.
fn store_spec(s: &str) {
    let want = match s.rsplit_once(':') {
        Some((n, "ro")) => Some((n, true, false)),
        Some((n, "rw")) => Some((n, false, true)),
        Some(_) => None,
        None => Some((s, false, false)),
    }
    .filter(|(n, _, _)| is_slug(n));
    match (s.parse::<StoreSpec>(), want) {
        (Ok(spec), Some((n, ro, rw))) => {
            assert_eq!((spec.name.as_str(), spec.read_only, spec.require_write), (n, ro, rw));
            assert!(!(spec.read_only && spec.require_write));
            let again = match (spec.read_only, spec.require_write) {
                (true, _) => format!("{}:ro", spec.name),
                (_, true) => format!("{}:rw", spec.name),
                _ => spec.name.clone(),
            };
            assert_eq!(again, s);
        }
        (Err(e), None) => assert!(!e.is_empty()),
        (got, want) => panic!("{s:?}: parsed {got:?}, expected {want:?}"),
    }
}

/// `--as user:NAME`, NAME not empty.
fn operator(s: &str) {
    match (ctl::operator(Some(s)), s.strip_prefix("user:").filter(|n| !n.is_empty())) {
        (Ok(who), Some(name)) => {
            assert_eq!(who.user.as_deref(), Some(name));
            assert_eq!(who.agent, "memfsctl");
        }
        (Err(_), None) => {}
        (got, _) => panic!("--as {s:?}: {got:?}"),
    }
}

/// `STORE/PATH`: the store is what comes before the first `/`, the path the
/// rest with `/`s around it trimmed.
fn resolve(w: &World, spec: &str) {
    let (store, path) = spec.split_once('/').unwrap_or((spec, ""));
    match ctl::resolve(&w.ctx.db, spec) {
        Ok((row, p, _ino)) => {
            assert_eq!(row.name, store, "{spec:?}");
            assert_eq!(p, path.trim_matches('/'), "{spec:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("no store") || msg.starts_with("no file"), "{spec:?}: {msg}");
            if store == "kb" {
                assert!(msg.starts_with("no file"), "{spec:?}: {msg}");
            }
        }
    }
}

/// `memfsctl log` filters, then the path filter against the whole log.
fn log_filter(w: &World, a: &LogArgs) {
    let Ok(f) = ctl::log::filter(&w.ctx, a) else {
        return;
    };
    if a.path.is_some() {
        assert!(f.store.is_some(), "{a:?}: --path without a store accepted");
    }
    // Only the store and path conditions: the times depend on the clock.
    let f = AuditFilter {
        store: f.store,
        path: f.path,
        ..Default::default()
    };
    let store_name = f.store.and_then(|id| {
        w.ctx
            .db
            .read(|tx| tx.stores())
            .ok()?
            .into_iter()
            .find(|s| s.id == id)
            .map(|s| s.name)
    });
    let got = w.ctx.db.read(|tx| tx.audit_entries(&f)).expect("audit query");
    let mut got: Vec<i64> = got.iter().map(|e| e.id.0).collect();
    got.sort_unstable();
    let p = f.path.as_deref().map(|p| p.trim_matches('/'));
    let at_or_below = |q: &Option<String>| {
        let (Some(q), Some(p)) = (q, p) else {
            return false;
        };
        q == p || q.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
    };
    let mut want: Vec<i64> = w
        .log
        .iter()
        .filter(|e| f.store.is_none() || e.store == store_name)
        .filter(|e| p.is_none() || at_or_below(&e.path) || at_or_below(&e.path2))
        .map(|e| e.id.0)
        .collect();
    want.sort_unstable();
    assert_eq!(got, want, "{a:?}");
}

//! The configuration file: `config::Config::parse` must refuse bad TOML with an
//! error naming the file, never panic; what it accepts must be usable by what
//! reads it next (store lookup, `StoreDecl::policy`, the policy globs).

#![no_main]

use libfuzzer_sys::fuzz_target;
use memfs::config::Config;
use memfs::fs::Access;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // `Config::load` reads the file with `read_to_string`: only UTF-8 gets here.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/memfs/fuzz.toml");
    let c = match Config::parse(text, path) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.to_string().contains("/etc/memfs/fuzz.toml"), "{e}");
            return;
        }
    };
    for decl in &c.stores {
        let found = c.store(&decl.name).expect("a declared store is found");
        assert_eq!(found.name, decl.name);
        let p = decl.policy();
        assert_eq!(p.read_only, decl.policy.read_only);
        assert_eq!(p.append_only, decl.policy.append_only);
        assert_eq!(p.quota.max_bytes, decl.quota.max_bytes);
        let _ = p.max_file_bytes(c.daemon.max_file_bytes);
        // Globs from the file against a few paths, cheaply (see path_rules for
        // the cost of many stars).
        let few_stars = |g: &String| g.len() <= 64 && g.bytes().filter(|&b| b == b'*').count() <= 4;
        if p.read_only.iter().chain(&p.append_only).all(few_stars) {
            for path in ["", "a", "knowledge_base/x.md", "log/2026/01.md"] {
                let _ = p.check("agent", path, Access::Modify);
            }
        }
    }
});

//! Path and name rules: `check_new_name`, `check_path_len`, `glob_match`,
//! `matches_any` and `StorePolicy::check` (src/fs/policy.rs).
//!
//! Input: `[L][L bytes of glob][path]`, the glob at most 64 bytes; the path
//! part, and the whole input, are also tried as names.
//!
//! `glob_match` is checked against a reference matcher of its documented
//! semantics (a plain dynamic program, see `reference`) and against laws that
//! follow from them. It is documented as linear in the product of the lengths,
//! so paths go up to PATH_MAX and globs may have any number of stars: a slow
//! input shows up as a libFuzzer timeout.

#![no_main]

use libfuzzer_sys::fuzz_target;
use memfs::fs::{
    check_new_name, check_path_len, glob_match, matches_any, Access, StorePolicy, NAME_MAX,
    PATH_MAX,
};
use unicode_normalization::UnicodeNormalization;

/// Globs come from the configuration and are short.
const MAX_GLOB: usize = 64;

fuzz_target!(|data: &[u8]| {
    names(data);
    if data.is_empty() {
        return;
    }
    let glen = (data[0] as usize).min(data.len() - 1).min(MAX_GLOB);
    let (gb, pb) = data[1..].split_at(glen);
    let (Ok(glob), Ok(path)) = (std::str::from_utf8(gb), std::str::from_utf8(pb)) else {
        return;
    };
    names(pb);
    path_len(path);
    if path.len() > PATH_MAX {
        return;
    }
    globs(glob, path);
    policies(glob, path);
});

/// `check_new_name` accepts exactly the names of at most NAME_MAX bytes that are
/// UTF-8, have no control character and are in NFC; a longer name gets
/// ENAMETOOLONG before anything else is looked at. (It does not reject `/`,
/// empty, `.` or `..`: `fs::check_name` does that before it is called.)
fn names(b: &[u8]) {
    let got = check_new_name(b);
    let too_long = b.len() > NAME_MAX;
    let expect_ok = !too_long
        && match std::str::from_utf8(b) {
            Ok(s) => !s.chars().any(char::is_control) && s.nfc().eq(s.chars()),
            Err(_) => false,
        };
    match &got {
        Ok(()) => {
            assert!(expect_ok, "accepted a bad name {b:02x?}");
            let s = std::str::from_utf8(b).unwrap();
            assert!(b.len() <= NAME_MAX);
            assert!(!b.contains(&0) && !b.contains(&b'\n'));
            assert!(unicode_normalization::is_nfc(s));
        }
        Err(e) => {
            assert!(!expect_ok, "refused a good name {b:02x?}: {e}");
            if too_long {
                assert_eq!(e.to_errno(), libc::ENAMETOOLONG, "{e}");
            } else {
                assert_eq!(e.to_errno(), libc::EINVAL, "{e}");
            }
        }
    }
}

fn path_len(p: &str) {
    assert_eq!(check_path_len(p).is_ok(), p.len() <= PATH_MAX);
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// The non-empty components: `glob_match` ignores empty ones (`a//b/` is `a/b`).
fn comps(s: &str) -> Vec<&str> {
    s.split('/').filter(|c| !c.is_empty()).collect()
}

fn globs(glob: &str, path: &str) {
    let got = glob_match(glob, path);
    let want = reference(glob, path);
    assert_eq!(got, want, "glob {glob:?} vs path {path:?}: reference says {want}");
    let pc = comps(path);
    // `**` (slashes around it ignored) matches everything, the root included.
    assert!(glob_match("**", path));
    assert!(glob_match("/**/", path));
    // `*` matches exactly the paths of one component.
    assert_eq!(glob_match("*", path), pc.len() == 1, "'*' vs {path:?}");
    // Without metacharacters a glob matches the same components only.
    if !has_meta(glob) {
        assert_eq!(got, comps(glob) == pc, "{glob:?} vs {path:?}");
    }
    if !has_meta(path) {
        assert!(glob_match(path, path), "{path:?} vs itself");
    }
    // Without a `**` component, a match has the glob's number of components.
    let gc = comps(glob);
    if got && !gc.contains(&"**") {
        assert_eq!(gc.len(), pc.len(), "{glob:?} matched {path:?}");
    }
    // `X/**` matches X itself and everything below it.
    if !glob.is_empty() && got {
        let below = format!("{glob}/**");
        assert!(glob_match(&below, path), "{below:?} vs {path:?}");
        assert!(glob_match(&below, &format!("{path}/x/y")), "{below:?} below {path:?}");
        // `**/X` matches X at any depth.
        let deep = format!("**/{glob}");
        assert!(glob_match(&deep, &format!("d/e/{path}")), "{deep:?} deeper than {path:?}");
    }
    // `?` -> `*` only widens a glob.
    if got && glob.contains('?') {
        let wider = glob.replace('?', "*");
        assert!(glob_match(&wider, path), "{wider:?} narrower than {glob:?}");
    }
}

/// The documented semantics, as a dynamic program independent of the code's:
/// a `**` component matches any number (zero included) of whole components;
/// in any other component `*` matches a run of characters and `?` one
/// character, never a `/`; empty components are ignored on both sides.
fn reference(glob: &str, path: &str) -> bool {
    let g = comps(glob);
    let p = comps(path);
    // m[i][j]: the first i glob components match the first j path components.
    let mut m = vec![vec![false; p.len() + 1]; g.len() + 1];
    m[0][0] = true;
    for i in 1..=g.len() {
        for j in 0..=p.len() {
            m[i][j] = if g[i - 1] == "**" {
                m[i - 1][j] || (j > 0 && m[i][j - 1])
            } else {
                j > 0 && m[i - 1][j - 1] && component(g[i - 1], p[j - 1])
            };
        }
    }
    m[g.len()][p.len()]
}

fn component(glob: &str, name: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // c[i][j]: g[..i] matches n[..j].
    let mut c = vec![vec![false; n.len() + 1]; g.len() + 1];
    c[0][0] = true;
    for i in 1..=g.len() {
        for j in 0..=n.len() {
            c[i][j] = match g[i - 1] {
                '*' => c[i - 1][j] || (j > 0 && c[i][j - 1]),
                '?' => j > 0 && c[i - 1][j - 1],
                ch => j > 0 && c[i - 1][j - 1] && n[j - 1] == ch,
            };
        }
    }
    c[g.len()][n.len()]
}

/// `StorePolicy::check` follows the globs: read-only paths refuse everyone but
/// the listed writers (EROFS), append-only paths refuse modify/remove/replace.
fn policies(glob: &str, path: &str) {
    let globs = vec![glob.to_string()];
    assert_eq!(matches_any(&globs, path), glob_match(glob, path));
    assert!(!matches_any(&[], path));
    let m = glob_match(glob, path);
    let ro = StorePolicy {
        read_only: globs.clone(),
        read_only_writers: vec!["curator".into(), "bot-*".into()],
        ..Default::default()
    };
    let ap = StorePolicy {
        append_only: globs,
        ..Default::default()
    };
    for access in [
        Access::Create,
        Access::Append,
        Access::Modify,
        Access::Remove,
        Access::Replace,
        Access::Meta,
    ] {
        // Read-only does not depend on the access; append-only not on the agent.
        let agents: &[&str] = if access == Access::Create { &["w", "curator", "bot-7"] } else { &["w"] };
        for &agent in agents {
            let r = ro.check(agent, path, access);
            let writer = agent != "w";
            assert_eq!(r.is_err(), m && !writer, "{glob:?} {path:?} {agent}");
            if let Err(e) = r {
                assert_eq!(e.to_errno(), libc::EROFS);
            }
            let r = ap.check(agent, path, access);
            let refused = matches!(access, Access::Modify | Access::Remove | Access::Replace);
            assert_eq!(r.is_err(), m && refused, "{glob:?} {path:?} {access:?}");
            if let Err(e) = r {
                assert_eq!(e.to_errno(), libc::EPERM);
            }
        }
    }
}

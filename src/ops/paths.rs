//! Memory paths as the memory-store API writes them (`/notes/todo.md`) and
//! their rules, and the mapping to store-relative paths (`notes/todo.md`).
//! Rules: starts with `/`; 1 to 20 segments; no empty, `.` or `..` segment; no
//! control or format characters, no U+2028/U+2029; Unicode NFC; at most 1,024
//! bytes; case-sensitive.

use crate::error::{OpError, OpResult};
use unicode_normalization::{is_nfc_quick, IsNormalized};

pub const MAX_PATH_BYTES: usize = 1024;
pub const MAX_SEGMENTS: usize = 20;

/// A character the API refuses in a path: controls, Unicode format
/// characters (general category Cf) and the line and paragraph separators.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
            | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// Checks an API memory path; returns it store-relative (no leading `/`).
pub fn to_store_path(path: &str) -> OpResult<String> {
    let bad = |why: &str| OpError::Invalid(format!("invalid path {path:?}: {why}"));
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad("it must start with '/'"));
    };
    if path.len() > MAX_PATH_BYTES {
        return Err(bad(&format!("longer than {MAX_PATH_BYTES} bytes")));
    }
    if let Some(c) = path.chars().find(|c| forbidden(*c)) {
        return Err(bad(&format!(
            "it holds a control or format character (U+{:04X})",
            u32::from(c)
        )));
    }
    if is_nfc_quick(path.chars()) != IsNormalized::Yes && !unicode_normalization::is_nfc(path) {
        return Err(bad("it is not in Unicode NFC"));
    }
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(bad(&format!("more than {MAX_SEGMENTS} segments")));
    }
    for s in &segments {
        match *s {
            "" => return Err(bad("empty segment")),
            "." | ".." => return Err(bad("'.' and '..' segments are not allowed")),
            s if s.len() > crate::fs::NAME_MAX => {
                return Err(bad("a segment is longer than 255 bytes"))
            }
            _ => {}
        }
    }
    Ok(rest.to_string())
}

/// Checks a `path_prefix` (`/` or `/a/b/`, whole segments); returns it
/// store-relative with its trailing `/` (`""` for the root).
pub fn to_store_prefix(prefix: &str) -> OpResult<String> {
    if prefix == "/" {
        return Ok(String::new());
    }
    let Some(inner) = prefix.strip_suffix('/') else {
        return Err(OpError::Invalid(format!(
            "invalid path_prefix {prefix:?}: it must end with '/'"
        )));
    };
    let rel = to_store_path(inner)?;
    Ok(format!("{rel}/"))
}

/// The API path of a store-relative path.
pub fn to_api_path(rel: &str) -> String {
    format!("/{rel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_path_rules() {
        assert_eq!(to_store_path("/notes/todo.md").unwrap(), "notes/todo.md");
        assert_eq!(to_store_path("/Ünïcode/é.md").unwrap(), "Ünïcode/é.md");
        for bad in [
            "notes/todo.md",
            "/",
            "//a",
            "/a//b",
            "/a/",
            "/./a",
            "/a/../b",
            "/a\u{0}b",
            "/a\nb",
            "/a\u{200B}b",
            "/a\u{2028}b",
            "/e\u{301}",
        ] {
            assert!(to_store_path(bad).is_err(), "{bad:?}");
        }
        let deep = format!("/{}", vec!["a"; 21].join("/"));
        assert!(to_store_path(&deep).is_err());
        let ok = format!("/{}", vec!["a"; 20].join("/"));
        assert!(to_store_path(&ok).is_ok());
        let long = format!("/{}", "x".repeat(1024));
        assert!(to_store_path(&long).is_err());
        assert_eq!(to_store_prefix("/").unwrap(), "");
        assert_eq!(to_store_prefix("/notes/").unwrap(), "notes/");
        assert!(to_store_prefix("/notes").is_err());
        assert!(to_store_prefix("notes/").is_err());
    }
}

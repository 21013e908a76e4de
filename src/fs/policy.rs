//! Per-store rules enforced at the filesystem: name rules, path policies
//! (read-only and append-only globs) and quotas.

use crate::error::{FsError, FsResult};
use crate::scan::Format;
use unicode_normalization::{is_nfc_quick, IsNormalized};

/// Longest store-relative path, in bytes.
pub const PATH_MAX: usize = 1024;

/// Limits on a store's size. `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    pub max_file_bytes: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_files: Option<u64>,
}

/// A store's path policies and quota, as attached to one mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorePolicy {
    pub quota: Quota,
    /// Paths only `read_only_writers` may change.
    pub read_only: Vec<String>,
    pub read_only_writers: Vec<String>,
    /// Paths where files may only be created and appended to.
    pub append_only: Vec<String>,
    /// What a commit does with personal data and secrets it finds.
    pub pii: PiiMode,
    /// Files whose path matches a glob must parse as its format to be committed.
    pub validate: Vec<(String, Format)>,
}

/// The PII and secret scanning policy of a store (see [`crate::scan::pii`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiMode {
    /// No scanning.
    #[default]
    Off,
    /// The version is stored as written; its audit entry lists the kinds found.
    Tag,
    /// Each match is replaced by `[REDACTED:kind]` before the version is stored.
    Redact,
    /// The close fails with EACCES and nothing is stored; the audit records the
    /// attempt and the kinds found, never the content.
    Block,
}

/// What a change does to a path, for the policy check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A new name (create, mkdir, symlink, link, the target of a rename to a free name).
    Create,
    /// Appending to an existing file.
    Append,
    /// Overwriting or truncating an existing file.
    Modify,
    /// unlink, rmdir, or moving a name away.
    Remove,
    /// Replacing an existing name by rename.
    Replace,
    /// chmod, chown, utimens.
    Meta,
}

impl StorePolicy {
    /// Whether `agent` may make this access to `path` (store-relative).
    pub fn check(&self, agent: &str, path: &str, access: Access) -> FsResult<()> {
        if matches_any(&self.read_only, path) && !matches_any(&self.read_only_writers, agent) {
            return Err(FsError::ReadOnly("path is read-only by store policy"));
        }
        if matches_any(&self.append_only, path)
            && matches!(access, Access::Modify | Access::Remove | Access::Replace)
        {
            return Err(FsError::Perm);
        }
        Ok(())
    }

    /// Whether [`check`](Self::check) can depend on the path (some path is
    /// read-only or append-only); when not, callers need not work paths out.
    pub fn has_path_rules(&self) -> bool {
        !self.read_only.is_empty() || !self.append_only.is_empty()
    }

    /// The format a file at `path` must parse as, if any.
    pub fn validator(&self, path: &str) -> Option<Format> {
        self.validate
            .iter()
            .find(|(glob, _)| glob_match(glob, path))
            .map(|(_, f)| *f)
    }

    /// The largest file allowed: the store's quota or the daemon's limit.
    pub fn max_file_bytes(&self, daemon_limit: u64) -> u64 {
        self.quota
            .max_file_bytes
            .map_or(daemon_limit, |q| q.min(daemon_limit))
    }
}

/// Whether any glob in `globs` matches `s`.
pub fn matches_any(globs: &[String], s: &str) -> bool {
    globs.iter().any(|g| glob_match(g, s))
}

/// Glob matching on `/`-separated paths: `*` and `?` stay within a component
/// (`?` is one character), a `**` component spans any number of whole
/// components, including none (`dir/**` matches `dir` and everything below
/// it; `**/x` matches `x` at any depth). Time is linear in the product of the
/// lengths, however many stars the glob has.
pub fn glob_match(glob: &str, s: &str) -> bool {
    let g: Vec<&str> = glob.split('/').filter(|c| !c.is_empty()).collect();
    let p: Vec<&str> = s.split('/').filter(|c| !c.is_empty()).collect();
    // ok[j]: the glob components seen so far match the first j path components.
    let mut ok = vec![false; p.len() + 1];
    ok[0] = true;
    for gc in &g {
        let mut next = vec![false; p.len() + 1];
        if *gc == "**" {
            // Zero or more whole components: reachable from any earlier match.
            let mut any = false;
            for j in 0..=p.len() {
                any |= ok[j];
                next[j] = any;
            }
        } else {
            for j in 0..p.len() {
                if ok[j] && component_match(gc, p[j]) {
                    next[j + 1] = true;
                }
            }
        }
        ok = next;
    }
    ok[p.len()]
}

/// Wildcard match of one component: `*` any run of characters, `?` one
/// character. The classic greedy algorithm with one backtrack point: O(n*m).
fn component_match(glob: &str, name: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut gi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || (g[gi] != '*' && g[gi] == n[ni])) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ni));
            gi += 1;
        } else if let Some((sg, sn)) = star {
            gi = sg + 1;
            ni = sn + 1;
            star = Some((sg, sn + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

/// Rules for a new name: UTF-8 in NFC, no control characters, at most 255 bytes.
pub fn check_new_name(name: &[u8]) -> FsResult<()> {
    if name.len() > super::NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    let s = std::str::from_utf8(name).map_err(|_| FsError::Invalid("name is not UTF-8"))?;
    if s.chars().any(char::is_control) {
        return Err(FsError::Invalid("name contains a control character"));
    }
    let nfc = match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => unicode_normalization::is_nfc(s),
    };
    if !nfc {
        return Err(FsError::Invalid("name is not in Unicode NFC"));
    }
    Ok(())
}

/// Rule for a whole store-relative path.
pub fn check_path_len(path: &str) -> FsResult<()> {
    if path.len() > PATH_MAX {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_components_and_characters() {
        // Found by fuzzing: `**/` matched any prefix, `?` one byte.
        assert!(!glob_match("**/secret/*", "topsecret/x"));
        assert!(glob_match("**/secret/*", "a/secret/x"));
        assert!(glob_match("**/secret/*", "secret/x"));
        assert!(!glob_match("a/**/b.md", "a/xb.md"));
        assert!(glob_match("a/**/b.md", "a/b.md"));
        assert!(glob_match("a/**/b.md", "a/x/y/b.md"));
        assert!(glob_match("a?c", "aéc"));
        assert!(glob_match("team-*/**", "team-a"));
        assert!(glob_match("team-*/**", "team-a/x/y"));
        assert!(!glob_match("team-*/**", "other/team-a"));
        assert!(glob_match("**", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXbY"));
        // Many stars on a long near-miss: linear, not exponential.
        let name = "-".repeat(250);
        assert!(!glob_match("*-*-*-*-*-*-*.md", &name));
    }

    #[test]
    fn globs() {
        assert!(glob_match("knowledge_base/**", "knowledge_base"));
        assert!(glob_match("knowledge_base/**", "knowledge_base/a/b.md"));
        assert!(!glob_match("knowledge_base/**", "knowledge_base2/a"));
        assert!(glob_match("*.md", "a.md"));
        assert!(!glob_match("*.md", "d/a.md"));
        assert!(glob_match("**/*.md", "a.md"));
        assert!(glob_match("**/*.md", "d/e/a.md"));
        assert!(glob_match("bot-*", "bot-7"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "a/c"));
        assert!(glob_match("task_history/*", "task_history/log"));
        assert!(!glob_match("task_history/*", "task_history/x/log"));
    }

    #[test]
    fn name_rules() {
        assert!(check_new_name("café.md".as_bytes()).is_ok());
        let nfd = "cafe\u{301}.md";
        assert_eq!(
            check_new_name(nfd.as_bytes()).unwrap_err().to_errno(),
            libc::EINVAL
        );
        assert_eq!(
            check_new_name(b"a\x01b").unwrap_err().to_errno(),
            libc::EINVAL
        );
        assert_eq!(
            check_new_name(b"\xff").unwrap_err().to_errno(),
            libc::EINVAL
        );
        assert_eq!(
            check_new_name(&[b'a'; 256]).unwrap_err().to_errno(),
            libc::ENAMETOOLONG
        );
        assert_eq!(
            check_path_len(&"a".repeat(1025)).unwrap_err().to_errno(),
            libc::ENAMETOOLONG
        );
    }

    #[test]
    fn policies() {
        let p = StorePolicy {
            read_only: vec!["kb/**".into()],
            read_only_writers: vec!["curator".into()],
            append_only: vec!["log/**".into()],
            ..Default::default()
        };
        assert_eq!(
            p.check("w", "kb/x", Access::Create).unwrap_err().to_errno(),
            libc::EROFS
        );
        assert!(p.check("curator", "kb/x", Access::Modify).is_ok());
        assert!(p.check("w", "log/a", Access::Create).is_ok());
        assert!(p.check("w", "log/a", Access::Append).is_ok());
        assert_eq!(
            p.check("w", "log/a", Access::Modify)
                .unwrap_err()
                .to_errno(),
            libc::EPERM
        );
        assert_eq!(
            p.check("w", "log/a", Access::Remove)
                .unwrap_err()
                .to_errno(),
            libc::EPERM
        );
        assert!(p.check("w", "other", Access::Remove).is_ok());
    }
}

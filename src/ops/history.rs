//! A file's past: its versions (following it across renames), its content at
//! a version or a time, and the difference between two versions, both as
//! structured hunks (for programs) and as a unified diff (for people). Reading
//! the past needs only that the store be visible to the principal.

use super::files::FileRef;
use super::{Ops, Principal};
use crate::error::{OpError, OpResult};
use crate::history::{head_versions, version_at};
use crate::ids::{Ino, VersionId};
use crate::store::VersionRow;
use crate::timefmt::rfc3339;
use serde::Serialize;

/// One version of a file, with its time for people and its store's name.
#[derive(Clone, Debug, Serialize)]
pub struct VersionEntry {
    #[serde(flatten)]
    pub version: VersionRow,
    pub at: String,
    pub store: String,
}

/// Every version of a file, newest first.
#[derive(Clone, Debug, Serialize)]
pub struct FileHistory {
    pub store: String,
    pub path: String,
    pub ino: Ino,
    pub versions: Vec<VersionEntry>,
}

/// What one version changed (see [`Ops::version_change`]).
#[derive(Clone, Debug, Serialize)]
pub struct VersionChange {
    pub version: VersionRow,
    /// The file's path now (`None`: it has no name any more).
    pub path: Option<String>,
    /// From the content before it to its content.
    pub diff: Diff,
    /// Its content was removed for good.
    pub redacted: bool,
}

/// Which content of a file to read.
#[derive(Clone, Debug, Default)]
pub enum Pick {
    /// The current head (conflict versions are never heads).
    #[default]
    Head,
    Version(VersionId),
    /// As it was at a time (RFC 3339 or an age such as `2h`).
    At(String),
}

/// A file's content at one version (`None`: the file had no content yet).
#[derive(Clone, Debug)]
pub struct FileContent {
    pub file: FileRef,
    pub version: Option<VersionRow>,
    pub data: Vec<u8>,
}

/// The difference between two versions of a file.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    /// The older side's version (`None`: empty).
    pub from: Option<VersionId>,
    pub to: Option<VersionId>,
    pub same: bool,
    /// Either side is not UTF-8 text: no hunks, a one-line note as the diff.
    pub binary: bool,
    /// The unified diff (3 lines of context), empty when the same.
    pub diff: String,
    pub hunks: Vec<Hunk>,
}

/// One hunk: a run of changes with their context. Line numbers start at 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hunk {
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    pub lines: Vec<DiffLine>,
}

/// What a line of a hunk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    Context,
    Delete,
    Insert,
}

/// One line of a hunk, without its line break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    pub kind: LineKind,
    /// Its number in the older version (context and deleted lines).
    pub old_line: Option<usize>,
    /// Its number in the newer version (context and inserted lines).
    pub new_line: Option<usize>,
    pub text: String,
    /// The line is the last of its version and has no line break.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_newline: bool,
}

fn is_binary(b: &[u8]) -> bool {
    b.contains(&0) || std::str::from_utf8(b).is_err()
}

/// The unified diff and the hunks of two contents. Binary content gets
/// `Binary files A and B differ` and no hunks; equal content nothing.
pub fn diff_texts(a: &[u8], b: &[u8], a_name: &str, b_name: &str) -> (String, Vec<Hunk>) {
    if a == b {
        return (String::new(), Vec::new());
    }
    if is_binary(a) || is_binary(b) {
        return (
            format!("Binary files {a_name} and {b_name} differ\n"),
            vec![],
        );
    }
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let diff = similar::TextDiff::from_lines(a.as_ref(), b.as_ref());
    let mut unified = diff.unified_diff();
    unified.context_radius(3).header(a_name, b_name);
    let hunks = unified
        .iter_hunks()
        .filter_map(|h| {
            let (first, last) = (h.ops().first()?, h.ops().last()?);
            let (old, new) = (first.old_range().start, first.new_range().start);
            let (old_end, new_end) = (last.old_range().end, last.new_range().end);
            let lines = h
                .iter_changes()
                .map(|c| {
                    let raw = c.value();
                    let text = raw.strip_suffix('\n').unwrap_or(raw);
                    DiffLine {
                        kind: match c.tag() {
                            similar::ChangeTag::Equal => LineKind::Context,
                            similar::ChangeTag::Delete => LineKind::Delete,
                            similar::ChangeTag::Insert => LineKind::Insert,
                        },
                        old_line: c.old_index().map(|i| i + 1),
                        new_line: c.new_index().map(|i| i + 1),
                        text: text.to_string(),
                        no_newline: !raw.ends_with('\n'),
                    }
                })
                .collect();
            Some(Hunk {
                old_start: old + 1,
                old_lines: old_end - old,
                new_start: new + 1,
                new_lines: new_end - new,
                lines,
            })
        })
        .collect();
    (unified.to_string(), hunks)
}

impl Ops {
    /// Every version of the file at `path` in `store` (now, or last seen
    /// there), newest first.
    pub fn file_history(&self, p: &Principal, store: &str, path: &str) -> OpResult<FileHistory> {
        let f = self.find_file(p, store, path)?;
        let mut versions = self.read(|tx| tx.versions_of(f.ino))?;
        versions.reverse();
        Ok(FileHistory {
            versions: versions
                .into_iter()
                .map(|v| VersionEntry {
                    at: rfc3339(v.at_ns),
                    store: f.store.name.clone(),
                    version: v,
                })
                .collect(),
            store: f.store.name,
            path: f.path,
            ino: f.ino,
        })
    }

    /// The version of `f` that `pick` names (`None`: no content then).
    fn pick(&self, f: &FileRef, pick: &Pick) -> OpResult<Option<VersionRow>> {
        match pick {
            Pick::Head => Ok(self.read(|tx| head_versions(tx, f.ino))?.pop()),
            Pick::Version(v) => {
                let row = self
                    .read(|tx| tx.version(*v))
                    .map_err(|_| OpError::NotFound(format!("no version {v}")))?;
                if row.ino != f.ino {
                    return Err(OpError::Invalid(format!(
                        "version {v} belongs to another file ({})",
                        row.path
                    )));
                }
                Ok(Some(row))
            }
            Pick::At(t) => {
                let at = super::time::parse(t)?;
                let v = self.read(|tx| version_at(tx, f.ino, at))?;
                if v.is_none() {
                    return Err(OpError::NotFound(format!(
                        "{} had no content at {t}",
                        f.display()
                    )));
                }
                Ok(v)
            }
        }
    }

    /// A version's whole content (empty for none).
    fn content_of(&self, v: Option<&VersionRow>) -> OpResult<Vec<u8>> {
        let Some(v) = v else {
            return Ok(Vec::new());
        };
        self.read(|tx| {
            let ext = tx.extents(v.id)?;
            tx.read_extents(&ext, 0, ext.size())
        })
    }

    /// A file's content: its head, a version of it, or as it was at a time.
    pub fn file_content(
        &self,
        p: &Principal,
        store: &str,
        path: &str,
        pick: &Pick,
    ) -> OpResult<FileContent> {
        let file = self.find_file(p, store, path)?;
        let version = self.pick(&file, pick)?;
        let data = self.content_of(version.as_ref())?;
        Ok(FileContent {
            file,
            version,
            data,
        })
    }

    /// What version `id` changed: its row, its file's path now (if it has
    /// one), and the difference from the file's content before it (the head
    /// it followed; empty for a file's first version). A redacted version
    /// shows no difference.
    pub fn version_change(
        &self,
        p: &Principal,
        store: &str,
        id: VersionId,
    ) -> OpResult<VersionChange> {
        let row = self.visible_store(p, store)?;
        let none = || OpError::NotFound(format!("no version {id} in store '{}'", row.name));
        let v = self.read(|tx| tx.version(id)).map_err(|_| none())?;
        if v.store != row.id {
            return Err(none());
        }
        let (before, path, redacted) = self.read(|tx| {
            let before = head_versions(tx, v.ino)?
                .into_iter()
                .rfind(|h| h.id.0 < id.0);
            Ok::<_, crate::error::StoreError>((
                before,
                tx.path_of(v.ino)?,
                tx.version_redacted(id)?,
            ))
        })?;
        let shown = path.clone().unwrap_or_else(|| v.path.clone());
        let name = |x: Option<&VersionRow>| {
            x.map_or_else(
                || format!("{}/{shown} (empty)", row.name),
                |x| format!("{}/{shown}@v{}", row.name, x.id.0),
            )
        };
        let before_redacted = match &before {
            Some(b) => self.read(|tx| tx.version_redacted(b.id))?,
            None => false,
        };
        // A redacted side has no content left to compare.
        let ad = if before_redacted {
            Vec::new()
        } else {
            self.content_of(before.as_ref())?
        };
        let bd = if redacted {
            Vec::new()
        } else {
            self.content_of(Some(&v))?
        };
        let (diff, hunks) = diff_texts(&ad, &bd, &name(before.as_ref()), &name(Some(&v)));
        let d = Diff {
            from: before.as_ref().map(|b| b.id),
            to: Some(v.id),
            same: ad == bd,
            binary: is_binary(&ad) || is_binary(&bd),
            diff,
            hunks,
        };
        Ok(VersionChange {
            version: v,
            path,
            diff: d,
            redacted,
        })
    }

    /// The difference from version `from` of a file to version `to` (default:
    /// its head).
    pub fn diff(
        &self,
        p: &Principal,
        store: &str,
        path: &str,
        from: VersionId,
        to: Option<VersionId>,
    ) -> OpResult<Diff> {
        let f = self.find_file(p, store, path)?;
        let a = self.pick(&f, &Pick::Version(from))?;
        let b = self.pick(&f, &to.map_or(Pick::Head, Pick::Version))?;
        let name = |v: &Option<VersionRow>| {
            v.as_ref().map_or_else(
                || format!("{} (empty)", f.display()),
                |v| format!("{}@v{}", f.display(), v.id.0),
            )
        };
        let (ad, bd) = (self.content_of(a.as_ref())?, self.content_of(b.as_ref())?);
        let (diff, hunks) = diff_texts(&ad, &bd, &name(&a), &name(&b));
        Ok(Diff {
            from: a.as_ref().map(|v| v.id),
            to: b.as_ref().map(|v| v.id),
            same: ad == bd,
            binary: is_binary(&ad) || is_binary(&bd),
            diff,
            hunks,
        })
    }
}

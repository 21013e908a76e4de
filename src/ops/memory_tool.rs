//! The Anthropic memory tool (`memory_20250818`) on a store: the six commands
//! Claude sends in `tool_use.input` (`view`, `create`, `str_replace`,
//! `insert`, `delete`, `rename`), with `/memories` as the store's root,
//! answered with exactly the strings of the SDK's reference implementation
//! (`BetaLocalFilesystemMemoryTool` in anthropic 2.14.0), so a model trained
//! on that tool behaves the same against memfs. One implementation for every
//! front end: the MCP `memory` tool and `POST .../memory_tool` call this.
//!
//! An agent's mistake is a result with `is_error`, never a failure of the
//! call: where the reference lets a Python exception through (a file in the
//! way of a new path, a name too long) the result is that exception's
//! `repr`, as the SDK's tool runner would send it. What the reference cannot
//! say (a read-only store, a path policy, a quota, a content rule, a file
//! open for writing in a mount) is said in memfs's own words.
//!
//! Differences from a local directory, by design: directories are listed with
//! size 4096 (`4K`, as ext4 reports a small directory), symbolic links made
//! through a mount are neither followed nor listed, and a file that is not
//! UTF-8 text is refused with a message rather than a Python decode error.

use super::tree::{self, Node};
use super::{Ops, Principal};
use crate::digest;
use crate::error::{FsError, OpError, OpResult};
use crate::fs::Expect;
use crate::store::NodeKind;
use serde::Serialize;
use serde_json::Value;

/// What the tool answers: the text Claude reads and whether it is an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolResult {
    pub content: String,
    pub is_error: bool,
}

impl ToolResult {
    fn ok(s: String) -> ToolResult {
        ToolResult {
            content: s,
            is_error: false,
        }
    }
}

/// A failed command: its message is the result, with `is_error`.
struct Refusal(String);

type Step<T> = Result<T, Refusal>;

fn refuse<T>(s: impl Into<String>) -> Step<T> {
    Err(Refusal(s.into()))
}

/// The reference's line-number width (`len(str(999999))`).
const LINE_NUMBER_WIDTH: usize = 6;
const MAX_LINES: usize = 999_999;
/// What a directory's size is reported as (ext4's size of a small directory).
const DIR_SIZE: u64 = 4096;

/// Python's `repr` of a string (single quotes unless the text holds one and
/// no double quote), for messages that quote a Python exception.
fn py_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// `repr` of the `OSError` Python raises for `e`, when the reference would
/// let one through (`None`: the reference has no such case).
fn os_error_repr(e: &FsError) -> Option<&'static str> {
    Some(match e {
        FsError::NotDir => "NotADirectoryError(20, 'Not a directory')",
        FsError::NameTooLong => "OSError(36, 'File name too long')",
        _ => return None,
    })
}

/// The reference's file sizes: `0B`, `9B`, `4K`, `1.5M` (one decimal unless
/// whole; Python rounds half to even on the exact binary value, as Rust does).
pub fn format_size(n: u64) -> String {
    if n == 0 {
        return "0B".into();
    }
    let units = ["B", "K", "M", "G"];
    let i = (((63 - n.leading_zeros()) / 10) as usize).min(units.len() - 1);
    let size = n as f64 / 1024f64.powi(i as i32);
    if size == size.trunc() {
        format!("{}{}", size as u64, units[i])
    } else {
        format!("{size:.1}{}", units[i])
    }
}

/// A command's path: it must start with `/memories`; what follows names a
/// path in the store (`.` and empty names dropped, `..` resolved without
/// leaving the root), as the reference's `Path.resolve()` does.
fn resolve(path: &str) -> Step<String> {
    let Some(rest) = path.strip_prefix("/memories") else {
        return refuse(format!("Path must start with /memories, got: {path}"));
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in rest.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return refuse(format!("Path {path} would escape /memories directory"));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// One command as Claude sends it, with memfs's optional precondition.
struct Command<'a> {
    input: &'a serde_json::Map<String, Value>,
    name: String,
}

impl Command<'_> {
    /// A path argument, as the reference reads it (`command.path.startswith`
    /// on something that is not a string is an `AttributeError`).
    fn path(&self, key: &str) -> Step<&str> {
        match self.input.get(key) {
            Some(Value::String(s)) => Ok(s),
            other => refuse(format!(
                "AttributeError(\"'{}' object has no attribute 'startswith'\")",
                py_type(other)
            )),
        }
    }

    fn string(&self, key: &str) -> Step<&str> {
        match self.input.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => refuse(format!(
                "Invalid `{key}` parameter for command `{}`: it must be a string",
                self.name
            )),
            None => refuse(format!(
                "Missing required parameter `{key}` for command `{}`",
                self.name
            )),
        }
    }

    fn int(&self, key: &str) -> Step<i64> {
        match self.input.get(key).and_then(Value::as_i64) {
            Some(n) => Ok(n),
            None => refuse(format!(
                "Missing or invalid `{key}` parameter for command `{}`: it must be an integer",
                self.name
            )),
        }
    }

    /// `view_range` when it is a list of two integers (the reference ignores
    /// any other length).
    fn view_range(&self) -> Step<Option<(i64, i64)>> {
        match self.input.get("view_range") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_i64(), a[1].as_i64()) {
                (Some(s), Some(e)) => Ok(Some((s, e))),
                _ => refuse("Invalid `view_range` parameter: it must be two integers"),
            },
            Some(Value::Array(_)) => Ok(None),
            Some(_) => refuse("Invalid `view_range` parameter: it must be a list of two integers"),
        }
    }

    /// memfs's optional `expected_sha256`: the content the target file must
    /// have for the command to change it.
    fn expected(&self) -> Step<Option<[u8; 32]>> {
        match self.input.get("expected_sha256") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => match digest::parse_sha256(s) {
                Some(h) => Ok(Some(h)),
                None => refuse(
                    "Invalid `expected_sha256` parameter: it must be 64 lowercase hexadecimal characters",
                ),
            },
            Some(_) => refuse("Invalid `expected_sha256` parameter: it must be a string"),
        }
    }
}

/// Python's type name of a JSON value, as an `AttributeError` names it.
fn py_type(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "NoneType",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_f64() => "float",
        Some(Value::Number(_)) => "int",
        Some(Value::String(_)) => "str",
        Some(Value::Array(_)) => "list",
        Some(Value::Object(_)) => "dict",
    }
}

/// Lines numbered as the reference numbers them.
fn numbered<'a>(lines: impl Iterator<Item = &'a str>, first: usize) -> String {
    lines
        .enumerate()
        .map(|(i, l)| format!("{:>w$}\t{l}", i + first, w = LINE_NUMBER_WIDTH))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Python's `lines[start:end]` for `start >= 0`.
fn py_slice(len: usize, start: usize, end: i64) -> (usize, usize) {
    let s = start.min(len);
    let e = if end < 0 {
        (len as i64 + end).max(0) as usize
    } else {
        (end as usize).min(len)
    };
    (s, e.max(s))
}

/// Byte offsets of every occurrence of `needle` in `hay`, overlapping ones
/// included, as the reference's `find(old, pos + 1)` loop finds them (an
/// empty needle is found at every character boundary, the end included).
fn positions(hay: &str, needle: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut start = 0;
    while start <= hay.len() {
        let Some(i) = hay[start..].find(needle) else {
            break;
        };
        let pos = start + i;
        out.push(pos);
        // One character on: the next search starts inside this match.
        start = pos + hay[pos..].chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// Python's `str.count` (non-overlapping; `len + 1` for an empty needle).
fn py_count(hay: &str, needle: &str) -> usize {
    if needle.is_empty() {
        hay.chars().count() + 1
    } else {
        hay.matches(needle).count()
    }
}

impl Ops {
    /// Runs one memory-tool command (`input`, the object Claude put in
    /// `tool_use.input`) on `store` as `p`. A store `p` may not see is an
    /// `OpError` (the call itself fails); everything else is a result.
    pub fn memory_tool(&self, p: &Principal, store: &str, input: &Value) -> OpResult<ToolResult> {
        // Fails the call, not the command: the store itself is unknown.
        self.store_named(p, store)?;
        Ok(match self.memory_command(p, store, input) {
            Ok(s) => ToolResult::ok(s),
            Err(Refusal(s)) => ToolResult {
                content: s,
                is_error: true,
            },
        })
    }

    fn memory_command(&self, p: &Principal, store: &str, input: &Value) -> Step<String> {
        let empty = serde_json::Map::new();
        let obj = input.as_object().unwrap_or(&empty);
        let name = match obj.get("command") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "None".to_string(),
            Some(v) => v.to_string(),
        };
        let c = Command { input: obj, name };
        let m = MemoryTool {
            ops: self,
            p,
            store,
        };
        match c.name.as_str() {
            "view" => m.view(&c),
            "create" => m.create(&c),
            "str_replace" => m.str_replace(&c),
            "insert" => m.insert(&c),
            "delete" => m.delete(&c),
            "rename" => m.rename(&c),
            other => refuse(format!(
                "NotImplementedError({})",
                py_repr(&format!("Unknown command: {other}"))
            )),
        }
    }
}

/// One command's context.
struct MemoryTool<'a> {
    ops: &'a Ops,
    p: &'a Principal,
    store: &'a str,
}

impl MemoryTool<'_> {
    /// A failure of memfs's own (a refused change, a storage error) in words.
    fn failed(&self, path: &str, e: OpError) -> Refusal {
        match e {
            OpError::Fs { source, .. } => Refusal(self.fs_failed(path, &source)),
            OpError::Forbidden(m) => Refusal(format!("Cannot change {path}: {m}")),
            OpError::Invalid(m) => Refusal(format!("Cannot change {path}: {m}")),
            e if e.is_internal() => {
                tracing::error!(error = %e, path, "memory tool command failed");
                Refusal(format!(
                    "memfs could not complete the command on {path} (a storage error; see the server's log)"
                ))
            }
            e => Refusal(format!("Cannot change {path}: {e}")),
        }
    }

    fn fs_failed(&self, path: &str, e: &FsError) -> String {
        match e {
            FsError::ReadOnly(why) => format!("Cannot change {path}: read-only ({why})"),
            FsError::Perm => format!(
                "Cannot change {path}: it is append-only under the store's policy (new files and appends only)"
            ),
            FsError::Access => {
                format!("Cannot change {path}: the store's policy does not allow it")
            }
            FsError::Busy(m) => format!("Cannot change {path}: {m}"),
            FsError::TooBig => format!("Cannot change {path}: the file would exceed the store's file size limit"),
            FsError::Quota(q) => format!("Cannot change {path}: {q} exceeded"),
            FsError::ContentRule { rule, reason } => {
                format!("Cannot change {path}: refused by the store's {rule} rule: {reason}")
            }
            FsError::Precondition(_) => format!(
                "The file {path} was changed by someone else while this command ran; nothing was changed. View it and try again."
            ),
            FsError::Invalid(m) => format!("Cannot change {path}: invalid ({m})"),
            FsError::Store(s) => {
                tracing::error!(error = %s, path, "memory tool command failed");
                format!("memfs could not complete the command on {path} (a storage error; see the server's log)")
            }
            e => format!("Cannot change {path}: {e}"),
        }
    }

    fn node(&self, rel: &str, path: &str) -> Step<Option<Node>> {
        self.ops
            .node_at(self.p, self.store, rel)
            .map_err(|e| self.failed(path, e))
    }

    /// A file's text (the checks that it is a file come first).
    fn text(&self, rel: &str, path: &str) -> Step<(String, [u8; 32])> {
        match self.ops.read_file(self.p, self.store, rel) {
            Ok(f) => match String::from_utf8(f.data) {
                Ok(s) => Ok((s, f.sha256)),
                Err(_) => refuse(format!(
                    "The file {path} is not UTF-8 text; the memory tool shows only text files"
                )),
            },
            Err(OpError::NotFound(_)) => refuse(format!(
                "The file {path} no longer exists (may have been deleted or renamed concurrently)."
            )),
            Err(OpError::TooLarge(m)) => {
                refuse(format!("The file {path} is too large to show: {m}"))
            }
            Err(e) => Err(self.failed(path, e)),
        }
    }

    /// Writes new text over a file read with SHA-256 `read_sha`; the write
    /// happens only if the file still holds what was read (no lost update),
    /// and, when the caller gave `expected_sha256`, only if that is it too.
    fn rewrite(&self, rel: &str, path: &str, text: &str, read_sha: [u8; 32]) -> Step<()> {
        self.ops
            .write_file(
                self.p,
                self.store,
                rel,
                text.as_bytes(),
                Expect::Sha256(read_sha),
            )
            .map(|_| ())
            .map_err(|e| self.failed(path, e))
    }

    fn check_expected(&self, c: &Command<'_>, path: &str, sha: [u8; 32]) -> Step<()> {
        match c.expected()? {
            Some(want) if want != sha => refuse(format!(
                "The file {path} does not have the expected content (its SHA-256 is {}); nothing was changed",
                digest::hex(&sha)
            )),
            _ => Ok(()),
        }
    }

    fn view(&self, c: &Command<'_>) -> Step<String> {
        let path = c.path("path")?;
        let rel = resolve(path)?;
        let Some(node) = self.node(&rel, path)? else {
            return refuse(format!(
                "The path {path} does not exist. Please provide a valid path."
            ));
        };
        match node.kind {
            NodeKind::Dir => self.view_dir(&rel, path),
            NodeKind::File => {
                let (content, _) = self.text(&rel, path)?;
                let lines: Vec<&str> = content.split('\n').collect();
                if lines.len() > MAX_LINES {
                    return refuse(format!(
                        "File {path} exceeds maximum line limit of 999,999 lines."
                    ));
                }
                let (shown, first) = match c.view_range()? {
                    Some((s, e)) => {
                        let start = (s.max(1) - 1) as usize;
                        let end = if e == -1 { lines.len() as i64 } else { e };
                        let (a, b) = py_slice(lines.len(), start, end);
                        (&lines[a..b], start + 1)
                    }
                    None => (&lines[..], 1),
                };
                Ok(format!(
                    "Here's the content of {path} with line numbers:\n{}",
                    numbered(shown.iter().copied(), first)
                ))
            }
            _ => refuse(format!("Unsupported file type for {path}")),
        }
    }

    /// A directory up to two levels deep, hidden names left out.
    fn view_dir(&self, rel: &str, path: &str) -> Step<String> {
        let mut items: Vec<(String, String)> = Vec::new();
        self.collect(rel, "", 1, &mut items, path)?;
        let mut lines = vec![format!("{}\t{path}", format_size(DIR_SIZE))];
        lines.extend(items.iter().map(|(s, p)| format!("{s}\t{path}/{p}")));
        Ok(format!(
            "Here're the files and directories up to 2 levels deep in {path}, excluding hidden items:\n{}",
            lines.join("\n")
        ))
    }

    fn collect(
        &self,
        dir: &str,
        shown: &str,
        depth: usize,
        out: &mut Vec<(String, String)>,
        path: &str,
    ) -> Step<()> {
        if depth > 2 {
            return Ok(());
        }
        let mut entries = match self.ops.list_dir(self.p, self.store, dir) {
            Ok(e) => e,
            // Gone or changed since: the reference skips what it cannot list.
            Err(OpError::NotFound(_) | OpError::Invalid(_)) => return Ok(()),
            Err(e) => return Err(self.failed(path, e)),
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in entries {
            if e.name.starts_with('.') {
                continue;
            }
            let name = tree::join(shown, &e.name);
            match e.node.kind {
                NodeKind::Dir => {
                    out.push((format_size(DIR_SIZE), format!("{name}/")));
                    if depth < 2 {
                        self.collect(&e.node.path, &name, depth + 1, out, path)?;
                    }
                }
                NodeKind::File => out.push((format_size(e.node.size), name)),
                _ => {}
            }
        }
        Ok(())
    }

    fn create(&self, c: &Command<'_>) -> Step<String> {
        let path = c.path("path")?;
        let rel = resolve(path)?;
        let text = c.string("file_text")?;
        if rel.is_empty() {
            return refuse(format!("File {path} already exists"));
        }
        // As the reference: the parents are made first, and stay when the
        // file then cannot be made.
        self.make_parents(&rel, path)?;
        match self
            .ops
            .write_file(self.p, self.store, &rel, text.as_bytes(), Expect::Absent)
        {
            Ok(_) => Ok(format!("File created successfully at: {path}")),
            Err(OpError::Fs {
                source: FsError::Exists | FsError::IsDir,
                ..
            }) => refuse(format!("File {path} already exists")),
            Err(OpError::Fs { source, .. }) if os_error_repr(&source).is_some() => {
                refuse(os_error_repr(&source).unwrap_or_default())
            }
            Err(e) => Err(self.failed(path, e)),
        }
    }

    /// Makes the parent directories of `rel`, as the reference's
    /// `_secure_mkdir(path.parent)` does (a file in the way is Python's
    /// `NotADirectoryError`).
    fn make_parents(&self, rel: &str, path: &str) -> Step<()> {
        let parent = tree::parent_of(rel);
        if parent.is_empty() {
            return Ok(());
        }
        match self.ops.make_dirs(self.p, self.store, parent) {
            Ok(()) => Ok(()),
            Err(OpError::Fs {
                source: FsError::NotDir | FsError::Exists,
                ..
            }) => refuse("NotADirectoryError(20, 'Not a directory')"),
            Err(OpError::Fs { source, .. }) if os_error_repr(&source).is_some() => {
                refuse(os_error_repr(&source).unwrap_or_default())
            }
            Err(e) => Err(self.failed(path, e)),
        }
    }

    /// The checks `str_replace` and `insert` make before reading.
    fn existing_file(&self, rel: &str, path: &str) -> Step<()> {
        match self.node(rel, path)? {
            None => refuse(format!(
                "The path {path} does not exist. Please provide a valid path."
            )),
            Some(n) if !n.is_file() => refuse(format!("The path {path} is not a file.")),
            Some(_) => Ok(()),
        }
    }

    fn str_replace(&self, c: &Command<'_>) -> Step<String> {
        let path = c.path("path")?;
        let rel = resolve(path)?;
        self.existing_file(&rel, path)?;
        let old = c.string("old_str")?;
        let new = c.string("new_str")?;
        let (content, sha) = self.text(&rel, path)?;
        match py_count(&content, old) {
            0 => {
                return refuse(format!(
                "No replacement was performed, old_str `{old}` did not appear verbatim in {path}."
            ))
            }
            1 => {}
            _ => {
                let lines: Vec<String> = positions(&content, old)
                    .iter()
                    .map(|&pos| (content[..pos].matches('\n').count() + 1).to_string())
                    .collect();
                return refuse(format!(
                    "No replacement was performed. Multiple occurrences of old_str `{old}` in lines: {}. Please ensure it is unique",
                    lines.join(", ")
                ));
            }
        }
        self.check_expected(c, path, sha)?;
        let pos = content.find(old).unwrap_or(0);
        let changed = content[..pos].matches('\n').count();
        let new_content = content.replace(old, new);
        self.rewrite(&rel, path, &new_content, sha)?;
        let new_lines: Vec<&str> = new_content.split('\n').collect();
        let start = changed.saturating_sub(2);
        let end = (changed + 3).min(new_lines.len());
        Ok(format!(
            "The memory file has been edited. Here is the snippet showing the change (with line numbers):\n{}",
            numbered(new_lines[start..end.max(start)].iter().copied(), start + 1)
        ))
    }

    fn insert(&self, c: &Command<'_>) -> Step<String> {
        let path = c.path("path")?;
        let rel = resolve(path)?;
        self.existing_file(&rel, path)?;
        let at = c.int("insert_line")?;
        let text = c.string("insert_text")?;
        let (content, sha) = self.text(&rel, path)?;
        // Split on LF only (a CR stays in its line), without the empty tail a
        // final newline leaves.
        let mut lines: Vec<&str> = content.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        if at < 0 || at as usize > lines.len() {
            return refuse(format!(
                "Invalid `insert_line` parameter: {at}. It should be within the range [0, {}].",
                lines.len()
            ));
        }
        self.check_expected(c, path, sha)?;
        lines.insert(at as usize, text.trim_end_matches('\n'));
        let mut new_content = lines.join("\n");
        if !new_content.ends_with('\n') {
            new_content.push('\n');
        }
        self.rewrite(&rel, path, &new_content, sha)?;
        Ok(format!("The file {path} has been edited."))
    }

    fn delete(&self, c: &Command<'_>) -> Step<String> {
        let path = c.path("path")?;
        let rel = resolve(path)?;
        if rel.is_empty() {
            return refuse("Cannot delete the /memories directory itself");
        }
        let expect = c.expected()?;
        match self.node(&rel, path)? {
            Some(n) if n.is_file() || n.is_dir() => {}
            _ => return refuse(format!("The path {path} does not exist")),
        }
        match self.ops.remove_path(self.p, self.store, &rel, expect) {
            Ok(()) => Ok(format!("Successfully deleted {path}")),
            Err(OpError::Fs {
                source: FsError::NotFound,
                ..
            }) => refuse(format!("The path {path} does not exist")),
            Err(OpError::Fs {
                source: FsError::Precondition(_),
                ..
            }) if expect.is_some() => refuse(format!(
                "The file {path} does not have the expected content; nothing was deleted"
            )),
            Err(e) => Err(self.failed(path, e)),
        }
    }

    fn rename(&self, c: &Command<'_>) -> Step<String> {
        let old_path = c.path("old_path")?;
        let old = resolve(old_path)?;
        let new_path = c.path("new_path")?;
        let new = resolve(new_path)?;
        if old.is_empty() {
            return refuse("Cannot rename the /memories directory itself");
        }
        if new.is_empty() || self.node(&new, new_path)?.is_some() {
            return refuse(format!("The destination {new_path} already exists"));
        }
        let expect = c.expected()?;
        // As the reference: the destination's parents are made first, also
        // when the source turns out not to exist.
        self.make_parents(&new, new_path)?;
        match self.node(&old, old_path)? {
            Some(n) if n.is_file() || n.is_dir() => {}
            _ => return refuse(format!("The path {old_path} does not exist")),
        }
        match self.ops.move_path(self.p, self.store, &old, &new, expect) {
            Ok(()) => Ok(format!("Successfully renamed {old_path} to {new_path}")),
            Err(OpError::Fs {
                source: FsError::NotFound,
                ..
            }) => refuse(format!("The path {old_path} does not exist")),
            Err(OpError::Fs {
                source: FsError::Exists,
                ..
            }) => refuse(format!("The destination {new_path} already exists")),
            Err(OpError::Fs {
                source: FsError::Invalid("cannot move a directory into itself"),
                ..
            }) => refuse("OSError(22, 'Invalid argument')"),
            Err(OpError::Fs {
                source: FsError::Precondition(_),
                ..
            }) if expect.is_some() => refuse(format!(
                "The file {old_path} does not have the expected content; nothing was renamed"
            )),
            Err(OpError::Fs { source, .. }) if os_error_repr(&source).is_some() => {
                refuse(os_error_repr(&source).unwrap_or_default())
            }
            Err(e) => Err(self.failed(old_path, e)),
        }
    }
}

#[cfg(test)]
mod tests;

//! The MCP tools: the reference filesystem server's (`read_text_file`,
//! `write_file`, `edit_file`, `create_directory`, `list_directory`,
//! `directory_tree`, `move_file`, `search_files`, `get_file_info`) with its
//! names, argument spellings and annotations, on a namespace whose top-level
//! directories are the caller's stores (`STORE/PATH`, as in a mount); memfs's
//! own (`file_history`, `read_version`, `diff_versions`, `whoami`,
//! `recent_changes`); and `memory`, the Anthropic memory tool's command
//! object with `/memories` as the root of one store.
//!
//! Each call decodes its arguments, calls the operations core and renders the
//! result. Bad arguments and refusals are tool results with `isError` whose
//! text says what went wrong; write tools take an optional `expected_sha256`:
//! the change happens only if the file still has that content.

use super::Caller;
use crate::digest;
use crate::error::OpError;
use crate::fs::{glob_match, Expect};
use crate::ids::VersionId;
use crate::ops::events::ChangeQuery;
use crate::ops::history::{diff_texts, Pick};
use crate::ops::tree::{self, kind_str, Node};
use crate::ops::Ops;
use crate::store::NodeKind;
use crate::timefmt::rfc3339;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// What a tool answers.
enum Out {
    Text(String),
    /// Pretty-printed as the text, and given as structured content too.
    Json(Value),
    /// The memory tool's answer: its text, and whether it is an error.
    Memory(String, bool),
}

type Answer = Result<Out, String>;

/// Largest number of entries `directory_tree` and `search_files` walk.
const MAX_WALK: usize = 10_000;

// ---- arguments ------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
struct PathArg {
    /// `STORE/PATH`: the store, then the path in it (`list_directory "/"` lists the stores).
    path: String,
}

#[derive(Deserialize, JsonSchema)]
struct ReadTextFileArgs {
    /// `STORE/PATH` of the file.
    path: String,
    /// If provided, returns only the last N lines of the file
    tail: Option<u64>,
    /// If provided, returns only the first N lines of the file
    head: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
struct WriteFileArgs {
    /// `STORE/PATH` of the file (created with its directories if missing).
    path: String,
    content: String,
    /// Write only if the file's current content has this SHA-256 (64 lowercase hex).
    expected_sha256: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct EditOperation {
    /// Text to search for - must match exactly
    #[serde(rename = "oldText")]
    old_text: String,
    /// Text to replace with
    #[serde(rename = "newText")]
    new_text: String,
}

#[derive(Deserialize, JsonSchema)]
struct EditFileArgs {
    /// `STORE/PATH` of the file.
    path: String,
    edits: Vec<EditOperation>,
    /// Preview changes using git-style diff format
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
    /// Edit only if the file's current content has this SHA-256 (64 lowercase hex).
    expected_sha256: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct TreeArgs {
    /// `STORE/PATH` of a directory (`/`: every store).
    path: String,
    /// Glob patterns of paths to leave out
    #[serde(default, rename = "excludePatterns")]
    exclude_patterns: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
struct SearchArgs {
    /// `STORE/PATH` of the directory to search under (`/`: every store).
    path: String,
    /// A glob pattern for paths below `path` (`*.md`, `**/notes/*.md`); without
    /// `*`, `?` or `[`, a case-insensitive part of a name.
    pattern: String,
    #[serde(default, rename = "excludePatterns")]
    exclude_patterns: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
struct MoveArgs {
    /// `STORE/PATH` to move.
    source: String,
    /// `STORE/PATH` to move it to, in the same store; it must not exist.
    destination: String,
    /// Move a file only if its current content has this SHA-256 (64 lowercase hex).
    expected_sha256: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct ReadVersionArgs {
    /// `STORE/PATH` of the file (also a deleted one).
    path: String,
    /// A version id from `file_history`.
    version: Option<i64>,
    /// Or: the content as it was at this time (RFC 3339, or an age such as `2h`).
    at: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct DiffArgs {
    /// `STORE/PATH` of the file.
    path: String,
    /// The older version's id (from `file_history`).
    from: i64,
    /// The newer version's id (default: the current content).
    to: Option<i64>,
}

#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

#[derive(Deserialize, JsonSchema)]
struct ChangesArgs {
    /// Changes from this time on (RFC 3339, or an age such as `15m`); default:
    /// since this server started (stdio), or the last hour (HTTP).
    since: Option<String>,
    /// Changes after this position (the `after=N` a previous call gave).
    after: Option<i64>,
    /// Only this store's changes.
    store: Option<String>,
    /// At most this many changes (default 200, at most 1000).
    limit: Option<u64>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct MemoryArgs {
    /// The command: view, create, str_replace, insert, delete or rename.
    command: MemoryCommandName,
    /// The path (under /memories) for view, create, str_replace, insert, delete.
    path: Option<String>,
    /// view: [start, end] lines, 1-based and inclusive; end -1 means to the end.
    view_range: Option<Vec<i64>>,
    /// create: the new file's content.
    file_text: Option<String>,
    /// str_replace: the text to replace (must occur exactly once).
    old_str: Option<String>,
    /// str_replace: the replacement.
    new_str: Option<String>,
    /// insert: the line to insert after (0: at the top).
    insert_line: Option<i64>,
    /// insert: the text to insert.
    insert_text: Option<String>,
    /// rename: the path to rename.
    old_path: Option<String>,
    /// rename: the new path.
    new_path: Option<String>,
    /// The store /memories stands for (needed when several are attached).
    store: Option<String>,
    /// Change the file only if its current content has this SHA-256 (64 lowercase hex).
    expected_sha256: Option<String>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum MemoryCommandName {
    View,
    Create,
    StrReplace,
    Insert,
    Delete,
    Rename,
}

// ---- definitions ------------------------------------------------------------

const NAMES: &[&str] = &[
    "read_text_file",
    "write_file",
    "edit_file",
    "create_directory",
    "list_directory",
    "directory_tree",
    "move_file",
    "search_files",
    "get_file_info",
    "file_history",
    "read_version",
    "diff_versions",
    "whoami",
    "recent_changes",
    "memory",
];

pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn tool<T: JsonSchema + 'static>(
    name: &'static str,
    title: &str,
    description: &'static str,
    ann: ToolAnnotations,
) -> Tool {
    let schema = rmcp::handler::server::common::schema_for_type::<T>();
    Tool::new(name, description, schema)
        .with_title(title)
        .with_annotations(ann.open_world(false))
}

fn read_only(title: &str) -> ToolAnnotations {
    ToolAnnotations::with_title(title).read_only(true)
}

fn writes(title: &str, idempotent: bool, destructive: bool) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(false)
        .idempotent(idempotent)
        .destructive(destructive)
}

/// Every tool, with its schema and annotations.
pub fn definitions() -> Vec<Tool> {
    vec![
        tool::<ReadTextFileArgs>(
            "read_text_file",
            "Read Text File",
            "Read the complete contents of a file of a memfs store as text. Use the 'head' \
             parameter to read only the first N lines of a file, or the 'tail' parameter to \
             read only the last N lines. Paths are STORE/PATH.",
            read_only("Read Text File"),
        ),
        tool::<WriteFileArgs>(
            "write_file",
            "Write File",
            "Create a new file or completely overwrite an existing file with new content \
             (its directories are made as needed). Every write is kept as a version. Pass \
             expected_sha256 to write only if the file still has the content you read.",
            writes("Write File", true, true),
        ),
        tool::<EditFileArgs>(
            "edit_file",
            "Edit File",
            "Make line-based edits to a text file. Each edit replaces exact line sequences \
             with new content. Returns a git-style diff showing the changes made. The edit \
             is one new version; it is refused if the file changed meanwhile.",
            writes("Edit File", false, true),
        ),
        tool::<PathArg>(
            "create_directory",
            "Create Directory",
            "Create a new directory or ensure a directory exists, with its missing parents. \
             If the directory already exists, this operation will succeed silently.",
            writes("Create Directory", true, false),
        ),
        tool::<PathArg>(
            "list_directory",
            "List Directory",
            "Get a listing of all files and directories in a directory of a store, each \
             prefixed with [FILE] or [DIR]. The path \"/\" lists the stores.",
            read_only("List Directory"),
        ),
        tool::<TreeArgs>(
            "directory_tree",
            "Directory Tree",
            "Get a recursive tree view of files and directories as a JSON structure. Each \
             entry includes 'name', 'type' (file/directory), and 'children' for directories.",
            read_only("Directory Tree"),
        ),
        tool::<MoveArgs>(
            "move_file",
            "Move File",
            "Move or rename files and directories within a store (a file keeps its history). \
             If the destination exists, the operation will fail.",
            writes("Move File", false, false),
        ),
        tool::<SearchArgs>(
            "search_files",
            "Search Files",
            "Recursively search for files and directories matching a pattern below a path: \
             a glob such as '*.md' or '**/notes/*.md', or a part of a name. Returns the \
             STORE/PATH of every match.",
            read_only("Search Files"),
        ),
        tool::<PathArg>(
            "get_file_info",
            "Get File Info",
            "Retrieve metadata about a file or directory: size, times, permissions, type, \
             and for files the current version and its SHA-256 (for expected_sha256).",
            read_only("Get File Info"),
        ),
        tool::<PathArg>(
            "file_history",
            "File History",
            "Every version of a file, newest first: id, time, operation, size, SHA-256, and \
             the agent, session and user that wrote it. Also for deleted files.",
            read_only("File History"),
        ),
        tool::<ReadVersionArgs>(
            "read_version",
            "Read Version",
            "The content of a file as one of its versions (by id) or as it was at a time.",
            read_only("Read Version"),
        ),
        tool::<DiffArgs>(
            "diff_versions",
            "Diff Versions",
            "A unified diff between two versions of a file (or a version and the current \
             content).",
            read_only("Diff Versions"),
        ),
        tool::<NoArgs>(
            "whoami",
            "Who Am I",
            "Who this server acts as (agent, session, user, role) and the stores it may use, \
             each read-write or read-only.",
            read_only("Who Am I"),
        ),
        tool::<ChangesArgs>(
            "recent_changes",
            "Recent Changes",
            "What changed in your stores, one line per change: time, operation, path, agent, \
             session (never content). Shows what other agents wrote; call again with the \
             after=N it gives to see only newer changes.",
            read_only("Recent Changes"),
        ),
        tool::<MemoryArgs>(
            "memory",
            "Memory",
            "The memory tool: view, create, str_replace, insert, delete and rename files \
             under /memories, the root of one memfs store (name it with `store` when \
             several are attached). Answers exactly as Anthropic's memory tool does.",
            writes("Memory", false, true),
        ),
    ]
}

// ---- calls ------------------------------------------------------------------

/// Runs one tool call (on a blocking thread).
pub fn call(
    ops: &Ops,
    caller: &Caller,
    stdio: bool,
    req: &CallToolRequestParams,
) -> CallToolResult {
    let args = Value::Object(req.arguments.clone().unwrap_or_default());
    let name = req.name.as_ref();
    let t = Tools { ops, caller, stdio };
    let r = match name {
        "read_text_file" => parse(name, args).and_then(|a| t.read_text_file(a)),
        "write_file" => parse(name, args).and_then(|a| t.write_file(a)),
        "edit_file" => parse(name, args).and_then(|a| t.edit_file(a)),
        "create_directory" => parse(name, args).and_then(|a| t.create_directory(a)),
        "list_directory" => parse(name, args).and_then(|a| t.list_directory(a)),
        "directory_tree" => parse(name, args).and_then(|a| t.directory_tree(a)),
        "move_file" => parse(name, args).and_then(|a| t.move_file(a)),
        "search_files" => parse(name, args).and_then(|a| t.search_files(a)),
        "get_file_info" => parse(name, args).and_then(|a| t.get_file_info(a)),
        "file_history" => parse(name, args).and_then(|a| t.file_history(a)),
        "read_version" => parse(name, args).and_then(|a| t.read_version(a)),
        "diff_versions" => parse(name, args).and_then(|a| t.diff_versions(a)),
        "whoami" => parse::<NoArgs>(name, args).and_then(|_| t.whoami()),
        "recent_changes" => parse(name, args).and_then(|a| t.recent_changes(a)),
        "memory" => t.memory(args),
        other => Err(format!("no tool named '{other}'")),
    };
    match r {
        Ok(Out::Text(s)) => CallToolResult::success(vec![ContentBlock::text(s)]),
        Ok(Out::Json(v)) => {
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
            r.structured_content = Some(v);
            r
        }
        Ok(Out::Memory(s, false)) => CallToolResult::success(vec![ContentBlock::text(s)]),
        Ok(Out::Memory(s, true)) | Err(s) => CallToolResult::error(vec![ContentBlock::text(s)]),
    }
}

fn parse<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| format!("invalid arguments for {tool}: {e}"))
}

/// An operation's failure in words (storage failures are logged, not shown).
fn failed(e: OpError) -> String {
    if e.is_internal() {
        tracing::error!(error = %e, "MCP tool call failed");
        "memfs could not complete the request (a storage error; see the server's log)".into()
    } else {
        e.to_string()
    }
}

fn sha_arg(s: &Option<String>) -> Result<Option<[u8; 32]>, String> {
    match s {
        None => Ok(None),
        Some(s) => digest::parse_sha256(s)
            .map(Some)
            .ok_or_else(|| "expected_sha256 must be 64 lowercase hexadecimal characters".into()),
    }
}

/// A tool's path: the store and the path in it (`None`: the root of every
/// store). `memfs://` and a leading `/` are accepted; `.` and empty names are
/// dropped; `..` is refused.
fn split(p: &str) -> Result<Option<(String, String)>, String> {
    let rest = p.strip_prefix("memfs://").unwrap_or(p);
    let mut parts = Vec::new();
    for c in rest.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("'..' is not allowed in a path ({p})")),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some((parts[0].to_string(), parts[1..].join("/"))))
}

struct Tools<'a> {
    ops: &'a Ops,
    caller: &'a Caller,
    stdio: bool,
}

impl Tools<'_> {
    /// The store and path `p` names, which must be in a store.
    fn in_store(&self, p: &str) -> Result<(String, String), String> {
        split(p)?.ok_or_else(|| {
            format!("'{p}' is the root of all stores; name one (list_directory \"/\" lists them)")
        })
    }

    /// The store and path of a file (not a store's root).
    fn file(&self, p: &str) -> Result<(String, String), String> {
        let (s, rel) = self.in_store(p)?;
        if rel.is_empty() {
            return Err(format!("'{p}' is a store; name a file in it (STORE/PATH)"));
        }
        Ok((s, rel))
    }

    fn text_of(&self, store: &str, rel: &str) -> Result<(String, [u8; 32]), String> {
        let p = self.caller.principal_for(store);
        let f = self.ops.read_file(&p, store, rel).map_err(failed)?;
        let sha = f.sha256;
        String::from_utf8(f.data).map(|s| (s, sha)).map_err(|e| {
            format!(
                "{store}/{rel} is not UTF-8 text ({} bytes); read it as a resource or through a mount",
                e.as_bytes().len()
            )
        })
    }

    fn read_text_file(&self, a: ReadTextFileArgs) -> Answer {
        let (store, rel) = self.file(&a.path)?;
        if a.head.is_some() && a.tail.is_some() {
            return Err("Cannot specify both head and tail parameters simultaneously".into());
        }
        let (text, _) = self.text_of(&store, &rel)?;
        let lines = || {
            let mut v: Vec<&str> = text.split('\n').collect();
            if v.last() == Some(&"") {
                v.pop();
            }
            v
        };
        Ok(Out::Text(match (a.head, a.tail) {
            (Some(n), _) => lines()
                .into_iter()
                .take(n as usize)
                .collect::<Vec<_>>()
                .join("\n"),
            (_, Some(n)) => {
                let v = lines();
                v[v.len().saturating_sub(n as usize)..].join("\n")
            }
            _ => text,
        }))
    }

    fn write_file(&self, a: WriteFileArgs) -> Answer {
        let (store, rel) = self.file(&a.path)?;
        let expect = sha_arg(&a.expected_sha256)?.map_or(Expect::Any, Expect::Sha256);
        let p = self.caller.principal_for(&store);
        self.ops
            .write_file(&p, &store, &rel, a.content.as_bytes(), expect)
            .map_err(failed)?;
        Ok(Out::Text(format!(
            "Successfully wrote to {}\nsha256: {}",
            a.path,
            digest::hex(&digest::sha256(a.content.as_bytes()))
        )))
    }

    fn edit_file(&self, a: EditFileArgs) -> Answer {
        let (store, rel) = self.file(&a.path)?;
        let (text, sha) = self.text_of(&store, &rel)?;
        if let Some(want) = sha_arg(&a.expected_sha256)? {
            if want != sha {
                return Err(format!(
                    "{}: the file's content is not the expected one (its SHA-256 is {}); nothing was changed",
                    a.path,
                    digest::hex(&sha)
                ));
            }
        }
        let original = text.replace("\r\n", "\n");
        let mut modified = original.clone();
        for e in &a.edits {
            modified = apply_edit(&modified, &e.old_text.replace("\r\n", "\n"), &e.new_text)
                .ok_or_else(|| format!("Could not find exact match for edit:\n{}", e.old_text))?;
        }
        let (diff, _) = diff_texts(original.as_bytes(), modified.as_bytes(), &a.path, &a.path);
        let ticks = "`".repeat(3.max(longest_run(&diff, '`') + 1));
        let out = format!("{ticks}diff\n{diff}{ticks}\n\n");
        if !a.dry_run {
            let p = self.caller.principal_for(&store);
            self.ops
                .write_file(&p, &store, &rel, modified.as_bytes(), Expect::Sha256(sha))
                .map_err(failed)?;
        }
        Ok(Out::Text(out))
    }

    fn create_directory(&self, a: PathArg) -> Answer {
        let (store, rel) = self.in_store(&a.path)?;
        let p = self.caller.principal_for(&store);
        self.ops.make_dirs(&p, &store, &rel).map_err(failed)?;
        Ok(Out::Text(format!(
            "Successfully created directory {}",
            a.path
        )))
    }

    fn list_directory(&self, a: PathArg) -> Answer {
        let Some((store, rel)) = split(&a.path)? else {
            let stores = self.caller.stores(self.ops).map_err(failed)?;
            let lines: Vec<String> = stores.iter().map(|s| format!("[DIR] {}", s.name)).collect();
            return Ok(Out::Text(lines.join("\n")));
        };
        let p = self.caller.principal_for(&store);
        let entries = self.ops.list_dir(&p, &store, &rel).map_err(failed)?;
        let lines: Vec<String> = entries
            .iter()
            .map(|e| {
                let tag = if e.node.is_dir() { "[DIR]" } else { "[FILE]" };
                format!("{tag} {}", e.name)
            })
            .collect();
        Ok(Out::Text(lines.join("\n")))
    }

    /// The directories `path` covers: one store's directory, or every store.
    fn roots(&self, path: &str) -> Result<Vec<(String, String)>, String> {
        Ok(match split(path)? {
            Some(r) => vec![r],
            None => self
                .caller
                .stores(self.ops)
                .map_err(failed)?
                .into_iter()
                .map(|s| (s.name, String::new()))
                .collect(),
        })
    }

    fn directory_tree(&self, a: TreeArgs) -> Answer {
        let roots = self.roots(&a.path)?;
        let whole = split(&a.path)?.is_none();
        let mut budget = MAX_WALK;
        let mut out = Vec::new();
        for (store, rel) in roots {
            let children = self.tree(&store, &rel, "", &a.exclude_patterns, &mut budget, 0)?;
            if whole {
                out.push(json!({"name": store, "type": "directory", "children": children}));
            } else {
                out = children;
            }
        }
        Ok(Out::Text(
            serde_json::to_string_pretty(&out).unwrap_or_default(),
        ))
    }

    fn tree(
        &self,
        store: &str,
        dir: &str,
        shown: &str,
        exclude: &[String],
        budget: &mut usize,
        depth: usize,
    ) -> Result<Vec<Value>, String> {
        if depth > 64 {
            return Ok(Vec::new());
        }
        let p = self.caller.principal_for(store);
        let entries = self.ops.list_dir(&p, store, dir).map_err(failed)?;
        let mut out = Vec::new();
        for e in entries {
            let rel = tree::join(shown, &e.name);
            if excluded(exclude, &rel) {
                continue;
            }
            *budget = budget.checked_sub(1).ok_or_else(|| {
                format!("the tree has more than {MAX_WALK} entries; ask for a smaller part of it")
            })?;
            if e.node.is_dir() {
                let children = self.tree(store, &e.node.path, &rel, exclude, budget, depth + 1)?;
                out.push(json!({"name": e.name, "type": "directory", "children": children}));
            } else {
                out.push(json!({"name": e.name, "type": "file"}));
            }
        }
        Ok(out)
    }

    fn move_file(&self, a: MoveArgs) -> Answer {
        let (s1, from) = self.file(&a.source)?;
        let (s2, to) = self.file(&a.destination)?;
        if s1 != s2 {
            return Err(format!(
                "cannot move between stores ({s1} to {s2}): write the file in {s2} and delete it in {s1}"
            ));
        }
        let expect = sha_arg(&a.expected_sha256)?;
        let p = self.caller.principal_for(&s1);
        self.ops
            .move_path(&p, &s1, &from, &to, expect)
            .map_err(failed)?;
        Ok(Out::Text(format!(
            "Successfully moved {} to {}",
            a.source, a.destination
        )))
    }

    fn search_files(&self, a: SearchArgs) -> Answer {
        let roots = self.roots(&a.path)?;
        let mut found = Vec::new();
        let mut budget = MAX_WALK;
        for (store, rel) in roots {
            self.search(&store, &rel, "", &a, &mut found, &mut budget, 0)?;
        }
        Ok(Out::Text(if found.is_empty() {
            "No matches found".into()
        } else {
            found.join("\n")
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        store: &str,
        dir: &str,
        shown: &str,
        a: &SearchArgs,
        found: &mut Vec<String>,
        budget: &mut usize,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 64 {
            return Ok(());
        }
        let p = self.caller.principal_for(store);
        let entries = self.ops.list_dir(&p, store, dir).map_err(failed)?;
        for e in entries {
            let rel = tree::join(shown, &e.name);
            if excluded(&a.exclude_patterns, &rel) {
                continue;
            }
            *budget = budget.checked_sub(1).ok_or_else(|| {
                format!("more than {MAX_WALK} entries to search; search a smaller part")
            })?;
            if matches_pattern(&a.pattern, &rel, &e.name) {
                found.push(format!("{store}/{}", e.node.path));
            }
            if e.node.is_dir() {
                self.search(store, &e.node.path, &rel, a, found, budget, depth + 1)?;
            }
        }
        Ok(())
    }

    fn get_file_info(&self, a: PathArg) -> Answer {
        let (store, rel) = self.in_store(&a.path)?;
        let p = self.caller.principal_for(&store);
        let node: Node = self
            .ops
            .node_at(&p, &store, &rel)
            .map_err(failed)?
            .ok_or_else(|| format!("{}: no such file or directory", a.path))?;
        let mut lines = vec![
            format!("size: {}", node.size),
            format!("created: {}", rfc3339(node.created_ns)),
            format!("modified: {}", rfc3339(node.modified_ns)),
            format!("accessed: {}", rfc3339(node.accessed_ns)),
            format!("isDirectory: {}", node.is_dir()),
            format!("isFile: {}", node.is_file()),
            format!("permissions: {:o}", node.perm & 0o777),
            format!("type: {}", kind_str(node.kind)),
            format!("store: {store}"),
        ];
        if node.kind == NodeKind::File {
            if let Some(v) = node.version {
                lines.push(format!("version: {}", v.0));
            }
            if let Ok(f) = self.ops.read_file(&p, &store, &rel) {
                lines.push(format!("sha256: {}", digest::hex(&f.sha256)));
            }
        }
        Ok(Out::Text(lines.join("\n")))
    }

    fn file_history(&self, a: PathArg) -> Answer {
        let (store, rel) = self.file(&a.path)?;
        let p = self.caller.principal_for(&store);
        let h = self.ops.file_history(&p, &store, &rel).map_err(failed)?;
        Ok(Out::Json(
            serde_json::to_value(&h).map_err(|e| e.to_string())?,
        ))
    }

    fn read_version(&self, a: ReadVersionArgs) -> Answer {
        let (store, rel) = self.file(&a.path)?;
        let pick = match (a.version, a.at) {
            (Some(v), None) => Pick::Version(VersionId(v)),
            (None, Some(t)) => Pick::At(t),
            _ => return Err("give either version (an id from file_history) or at (a time)".into()),
        };
        let p = self.caller.principal_for(&store);
        let c = self
            .ops
            .file_content(&p, &store, &rel, &pick)
            .map_err(failed)?;
        String::from_utf8(c.data)
            .map(Out::Text)
            .map_err(|_| format!("that version of {} is not UTF-8 text", a.path))
    }

    fn diff_versions(&self, a: DiffArgs) -> Answer {
        let (store, rel) = self.file(&a.path)?;
        let p = self.caller.principal_for(&store);
        let d = self
            .ops
            .diff(&p, &store, &rel, VersionId(a.from), a.to.map(VersionId))
            .map_err(failed)?;
        Ok(Out::Text(if d.same {
            "(no difference)".into()
        } else {
            d.diff
        }))
    }

    fn whoami(&self) -> Answer {
        let pr = &self.caller.principal;
        let stores: Vec<Value> = self
            .caller
            .stores(self.ops)
            .map_err(failed)?
            .iter()
            .map(|s| {
                let p = self.caller.principal_for(&s.name);
                let writable = !s.archived
                    && self
                        .ops
                        .store(&p, &s.name)
                        .map(|(row, set)| p.may_write(&row, &set))
                        .unwrap_or(false);
                json!({
                    "name": s.name,
                    "memory_store_id": s.api_id,
                    "mode": if writable { "read-write" } else { "read-only" },
                    "description": s.description,
                    "uri": format!("memfs://{}/", s.name),
                })
            })
            .collect();
        Ok(Out::Json(json!({
            "agent": pr.who.agent,
            "session": pr.who.session,
            "user": pr.who.user,
            "role": pr.role.as_str(),
            "key_id": pr.key_id,
            "stores": stores,
        })))
    }

    fn recent_changes(&self, a: ChangesArgs) -> Answer {
        let now = crate::ids::now_ns();
        let since_ns = match (&a.since, a.after) {
            (Some(t), _) => Some(crate::timefmt::parse_time(t, now)?),
            (None, Some(_)) => None,
            (None, None) if self.stdio => Some(self.caller.since_ns),
            (None, None) => Some(now - 3_600_000_000_000),
        };
        let q = ChangeQuery {
            store: a.store.clone(),
            since_ns,
            after: a.after,
            limit: a.limit.unwrap_or(200).min(1000),
        };
        let pr = &self.caller.principal;
        let (entries, mut next) = self.ops.change_entries(pr, &q).map_err(failed)?;
        if next == 0 {
            next = self.ops.last_change_id().map_err(failed)?;
        }
        let mut text: String = entries.iter().map(crate::changes::line).collect();
        if entries.is_empty() {
            text.push_str("No changes.\n");
        }
        text.push_str(&format!("(next: call with after={next} for newer changes)"));
        Ok(Out::Text(text))
    }

    fn memory(&self, args: Value) -> Answer {
        let store = match args.get("store") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => {
                let stores = self.caller.stores(self.ops).map_err(failed)?;
                match stores.as_slice() {
                    [one] => one.name.clone(),
                    [] => return Err("no memory store is available to this identity".into()),
                    many => {
                        let names: Vec<&str> = many.iter().map(|s| s.name.as_str()).collect();
                        return Err(format!(
                            "several memory stores are available ({}): say which one /memories is with the `store` argument",
                            names.join(", ")
                        ));
                    }
                }
            }
            Some(_) => return Err("`store` must be a store's name".into()),
        };
        let p = self.caller.principal_for(&store);
        let r = self.ops.memory_tool(&p, &store, &args).map_err(failed)?;
        Ok(Out::Memory(r.content, r.is_error))
    }
}

/// Replaces the first exact occurrence of `old`; failing that, the first run
/// of lines equal to `old`'s lines but for surrounding whitespace, keeping the
/// first line's indentation (what the reference filesystem server does).
fn apply_edit(content: &str, old: &str, new: &str) -> Option<String> {
    if let Some(i) = content.find(old) {
        return Some(format!(
            "{}{new}{}",
            &content[..i],
            &content[i + old.len()..]
        ));
    }
    let old_lines: Vec<&str> = old.split('\n').collect();
    let lines: Vec<&str> = content.split('\n').collect();
    if old_lines.len() > lines.len() {
        return None;
    }
    for i in 0..=lines.len() - old_lines.len() {
        let window = &lines[i..i + old_lines.len()];
        if window
            .iter()
            .zip(&old_lines)
            .all(|(a, b)| a.trim() == b.trim())
        {
            let indent: String = lines[i].chars().take_while(|c| c.is_whitespace()).collect();
            let replaced: Vec<String> = new
                .split('\n')
                .enumerate()
                .map(|(j, l)| {
                    if j == 0 {
                        format!("{indent}{}", l.trim_start())
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            let mut out: Vec<String> = lines[..i].iter().map(|s| s.to_string()).collect();
            out.extend(replaced);
            out.extend(lines[i + old_lines.len()..].iter().map(|s| s.to_string()));
            return Some(out.join("\n"));
        }
    }
    None
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for ch in s.chars() {
        if ch == c {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// Whether a search pattern matches an entry: a glob against the path below
/// the search root (or, without `/`, against the name); else a part of the
/// name, case-insensitively.
fn matches_pattern(pattern: &str, rel: &str, name: &str) -> bool {
    if has_glob(pattern) {
        glob_match(pattern, rel) || (!pattern.contains('/') && glob_match(pattern, name))
    } else {
        name.to_lowercase().contains(&pattern.to_lowercase())
    }
}

/// Whether an exclude pattern leaves out `rel`: a glob against the path, or a
/// name that is the entry's or one of its directories'.
fn excluded(patterns: &[String], rel: &str) -> bool {
    patterns.iter().any(|p| {
        if has_glob(p) {
            glob_match(p, rel) || glob_match(&format!("**/{p}"), rel)
        } else {
            rel.split('/').any(|c| c == p) || rel == p
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_match_exactly_or_by_lines_ignoring_surrounding_whitespace() {
        assert_eq!(apply_edit("a b c", "b", "B").as_deref(), Some("a B c"));
        assert_eq!(
            apply_edit("x\n    foo(1)\ny", "foo(1)  \n", "bar(2)").as_deref(),
            None
        );
        assert_eq!(
            apply_edit("x\n    foo(1)\ny", "foo(1)  ", "bar(2)").as_deref(),
            Some("x\n    bar(2)\ny")
        );
        assert_eq!(apply_edit("abc", "zzz", "y"), None);
    }

    #[test]
    fn paths_name_a_store_and_a_path_in_it() {
        assert_eq!(split("/").unwrap(), None);
        assert_eq!(
            split("memfs://kb/a/./b").unwrap(),
            Some(("kb".into(), "a/b".into()))
        );
        assert_eq!(split("kb").unwrap(), Some(("kb".into(), String::new())));
        assert!(split("kb/../x").is_err());
    }

    #[test]
    fn patterns_are_globs_or_name_parts() {
        assert!(matches_pattern("*.md", "a/b/notes.md", "notes.md"));
        assert!(matches_pattern("**/b/*.md", "a/b/notes.md", "notes.md"));
        assert!(!matches_pattern("b/*.md", "a/b/notes.md", "notes.md"));
        assert!(matches_pattern("NOTE", "a/b/notes.md", "notes.md"));
        assert!(excluded(&["b".into()], "a/b/notes.md"));
        assert!(excluded(&["*.md".into()], "a/b/notes.md"));
        assert!(!excluded(&["c".into()], "a/b/notes.md"));
    }

    #[test]
    fn every_tool_has_an_object_schema_and_annotations() {
        let defs = definitions();
        assert_eq!(defs.len(), NAMES.len());
        for t in &defs {
            assert!(exists(&t.name), "{}", t.name);
            assert_eq!(
                t.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                t.name
            );
            let a = t.annotations.as_ref().unwrap();
            assert_eq!(a.open_world_hint, Some(false));
            assert!(a.read_only_hint.is_some(), "{}", t.name);
        }
        let edit = defs.iter().find(|t| t.name == "edit_file").unwrap();
        let s = serde_json::to_string(&edit.input_schema).unwrap();
        assert!(
            s.contains("oldText") && s.contains("newText") && s.contains("dryRun"),
            "{s}"
        );
        let memory = defs.iter().find(|t| t.name == "memory").unwrap();
        let s = serde_json::to_string(&memory.input_schema).unwrap();
        assert!(s.contains("str_replace") && s.contains("view_range"), "{s}");
    }
}

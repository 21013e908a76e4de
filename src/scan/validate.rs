//! Syntax validation of structured text formats.
//!
//! [`validate`] answers "does this file parse?" with a one-line message that
//! names the position: `invalid JSON at line 3 column 5: expected `,` or `}``.
//! Lines and columns are 1-based; columns count characters (not bytes).
//!
//! Rules shared by all formats:
//! - the input must be UTF-8 (a leading UTF-8 byte-order mark is ignored);
//! - an empty (or whitespace-only) input is valid for JSONL, TOML and YAML,
//!   and invalid for JSON, whose grammar requires exactly one value.

use std::collections::HashSet;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

/// A structured text format that [`validate`] can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON value (RFC 8259).
    Json,
    /// JSON Lines: one JSON value per non-blank line.
    Jsonl,
    /// TOML 1.0/1.1 document.
    Toml,
    /// YAML 1.2 stream (one or more documents).
    Yaml,
}

impl Format {
    /// Parses a format name or common file extension, ignoring ASCII case
    /// and a leading dot: `json`, `jsonl`/`ndjson`, `toml`, `yaml`/`yml`.
    pub fn parse(s: &str) -> Option<Format> {
        let s = s.trim();
        let s = s.strip_prefix('.').unwrap_or(s).to_ascii_lowercase();
        match s.as_str() {
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }

    /// The canonical lower-case name: `json`, `jsonl`, `toml` or `yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Toml => "toml",
            Format::Yaml => "yaml",
        }
    }

    /// The name used in error messages, e.g. `JSON`.
    fn label(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Jsonl => "JSONL",
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
        }
    }
}

/// Checks that `data` is well-formed `format`.
///
/// `Err` carries a single-line message `invalid FORMAT at line L column C:
/// detail` (position omitted only when the parser gives none). Empty input is
/// invalid JSON but valid JSONL, TOML and YAML. Duplicate mapping keys are
/// errors in TOML and YAML (as their specs say) but accepted in JSON.
/// Nesting deeper than the parsers' recursion limits (JSON 128, YAML 256,
/// TOML about 80 levels) is reported as an error rather than overflowing the
/// stack. JSON, JSONL and TOML build the parsed value in memory (a few times
/// the input size); YAML is checked from the event stream without building
/// a tree, so alias bombs are harmless.
pub fn validate(format: Format, data: &[u8]) -> Result<(), String> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let text = std::str::from_utf8(data).map_err(|e| {
        let (line, col) = line_col(data, e.valid_up_to());
        let byte = data[e.valid_up_to()];
        at(format, line, col, &format!("not UTF-8 (byte 0x{byte:02X})"))
    })?;
    match format {
        Format::Json => json(text),
        Format::Jsonl => jsonl(text),
        Format::Toml => toml_doc(text),
        Format::Yaml => yaml(text),
    }
}

fn at(format: Format, line: usize, col: usize, msg: &str) -> String {
    format!(
        "invalid {} at line {line} column {col}: {}",
        format.label(),
        one_line(msg)
    )
}

/// Collapses a possibly multi-line parser message onto one line.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1-based line and character column of byte offset `pos`.
fn line_col(data: &[u8], pos: usize) -> (usize, usize) {
    let pos = pos.min(data.len());
    let before = &data[..pos];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, 1 + char_count(&data[line_start..pos]))
}

/// Number of UTF-8 characters started in `bytes` (continuation bytes skipped).
fn char_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

// ------------------------------------------------------------------- JSON

/// Converts a serde_json error on `text` into (line, character column,
/// message without serde_json's own position suffix). serde_json counts
/// columns in bytes.
fn json_error(text: &str, e: &serde_json::Error) -> (usize, usize, String) {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    let line_text = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
    let bytes = line_text.as_bytes();
    let col = char_count(&bytes[..e.column().min(bytes.len())]).max(1);
    (e.line().max(1), col, msg)
}

fn json(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("invalid JSON: empty document".to_string());
    }
    serde_json::from_str::<serde_json::Value>(text)
        .map(drop)
        .map_err(|e| {
            let (line, col, msg) = json_error(text, &e);
            at(Format::Json, line, col, &msg)
        })
}

fn jsonl(text: &str) -> Result<(), String> {
    for (idx, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(line) {
            let (_, col, msg) = json_error(line, &e);
            return Err(at(Format::Jsonl, idx + 1, col, &msg));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------- TOML

fn toml_doc(text: &str) -> Result<(), String> {
    text.parse::<toml::Table>()
        .map(drop)
        .map_err(|e| match e.span() {
            Some(span) => {
                let (line, col) = line_col(text.as_bytes(), span.start);
                let mut msg = one_line(e.message());
                // toml says only "duplicate key"; name it when the span is a key.
                let spanned = text.get(span.clone()).unwrap_or("");
                if msg == "duplicate key"
                    && !spanned.is_empty()
                    && spanned.len() <= 64
                    && !spanned.contains('\n')
                {
                    msg = format!("duplicate key `{spanned}`");
                }
                at(Format::Toml, line, col, &msg)
            }
            None => format!("invalid TOML: {}", one_line(e.message())),
        })
}

// ------------------------------------------------------------------- YAML

/// Checks YAML syntax with the event parser and rejects duplicate scalar
/// keys. No document tree is built, so alias bombs ("billion laughs") cost
/// nothing.
fn yaml(text: &str) -> Result<(), String> {
    let mut checker = YamlChecker::default();
    let parsed = Parser::new_from_str(text).load(&mut checker, true);
    let (mark, msg) = match (checker.error, parsed) {
        (Some(err), _) => err,
        (None, Err(e)) => (*e.marker(), e.info().to_string()),
        (None, Ok(())) => return Ok(()),
    };
    Err(at(Format::Yaml, mark.line(), mark.col() + 1, &msg))
}

/// Open collection during YAML checking.
enum Frame {
    Seq,
    /// A mapping: scalar keys seen so far, and whether the next node is a key.
    Map {
        seen: HashSet<Yaml>,
        next_is_key: bool,
    },
}

#[derive(Default)]
struct YamlChecker {
    stack: Vec<Frame>,
    error: Option<(Marker, String)>,
}

impl YamlChecker {
    /// A complete node was read; `key` is its value when it is a scalar.
    fn node(&mut self, key: Option<Yaml>, mark: Marker) {
        if let Some(Frame::Map { seen, next_is_key }) = self.stack.last_mut() {
            if *next_is_key {
                if let Some(k) = key {
                    if !seen.insert(k.clone()) && self.error.is_none() {
                        let name = k
                            .as_str()
                            .map_or_else(|| format!("{k:?}"), |s| format!("{s:?}"));
                        self.error = Some((mark, format!("duplicate key {name} in mapping")));
                    }
                }
            }
            *next_is_key = !*next_is_key;
        }
    }
}

impl MarkedEventReceiver for YamlChecker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(v, style, _, _) => {
                let key = if style == TScalarStyle::Plain {
                    Yaml::from_str(&v)
                } else {
                    Yaml::String(v)
                };
                self.node(Some(key), mark);
            }
            Event::Alias(_) => self.node(None, mark),
            Event::SequenceStart(..) => self.stack.push(Frame::Seq),
            Event::MappingStart(..) => self.stack.push(Frame::Map {
                seen: HashSet::new(),
                next_is_key: true,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
                self.node(None, mark);
            }
            _ => {}
        }
    }
}

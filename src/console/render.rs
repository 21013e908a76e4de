//! Pieces many pages share: links (with every value URL-encoded), sizes,
//! times, who made a change, a file shown with line numbers, a diff as a
//! table, and text with highlighted matches. Everything goes through maud,
//! which escapes it: agent-written text is only ever a text node.

use crate::ops::history::{Diff, LineKind};
use crate::ops::Actor;
use maud::{html, Markup};

/// A query string of `pairs` (empty values left out), URL-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// A console URL under a store with a query.
pub fn store_url(store: &str, page: &str, pairs: &[(&str, &str)]) -> String {
    let q = query(pairs);
    let base = if page.is_empty() {
        format!("/console/s/{store}")
    } else {
        format!("/console/s/{store}/{page}")
    };
    if q.is_empty() {
        base
    } else {
        format!("{base}?{q}")
    }
}

pub fn file_url(store: &str, path: &str) -> String {
    store_url(store, "file", &[("path", path)])
}

pub fn version_url(store: &str, v: i64) -> String {
    store_url(store, "version", &[("v", &v.to_string())])
}

pub fn session_url(session: &str) -> String {
    format!("/console/session?{}", query(&[("id", session)]))
}

/// The directory part of a store path ("" for the root).
pub fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Bytes for people.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// A time, readable and machine-readable.
pub fn time(ns: i64) -> Markup {
    let t = crate::timefmt::rfc3339(ns);
    let shown = t.replacen('T', " ", 1);
    let shown = match shown.split_once('.') {
        Some((a, _)) => format!("{a}Z"),
        None => shown,
    };
    html! { time datetime=(t) { (shown) } }
}

/// Who made a change: the person, key or session, with the agent.
pub fn actor(agent: &str, session: &str, user: Option<&str>) -> Markup {
    match Actor::of(agent, session, user) {
        Actor::UserActor { user_id } => html! {
            span.actor { "user " strong { (user_id) } " via " (agent) }
        },
        Actor::ApiActor { api_key_id } => html! {
            span.actor { "key " code { (api_key_id) } " (" (agent) ")" }
        },
        Actor::SessionActor { session_id } => html! {
            span.actor {
                "agent " strong { (agent) } ", session "
                a href=(session_url(&session_id)) { code { (session_id) } }
                @if let Some(u) = user { " for " (u) }
            }
        },
    }
}

/// Text with the byte ranges `ranges` marked (ranges on char boundaries).
pub fn highlighted(text: &str, ranges: &[(usize, usize)]) -> Markup {
    let mut parts: Vec<(bool, &str)> = Vec::new();
    let mut at = 0;
    for &(a, b) in ranges {
        if a < at || b > text.len() || !text.is_char_boundary(a) || !text.is_char_boundary(b) {
            continue;
        }
        parts.push((false, &text[at..a]));
        parts.push((true, &text[a..b]));
        at = b;
    }
    parts.push((false, &text[at..]));
    html! {
        @for (hit, t) in parts {
            @if hit { mark { (t) } } @else { (t) }
        }
    }
}

/// A file's text with line numbers.
pub fn numbered(text: &str) -> Markup {
    html! {
        div.scroll {
            table.code aria-label="File content" {
                tbody {
                    @for (i, line) in text.lines().enumerate() {
                        tr {
                            td.ln { (i + 1) }
                            td.tx { (line) }
                        }
                    }
                }
            }
        }
    }
}

/// A diff as a table of hunks: old and new line numbers, the change, the text.
pub fn diff_table(d: &Diff, label: &str) -> Markup {
    html! {
        @if d.same {
            p.note { "No difference." }
        } @else if d.binary {
            p.note { "Binary content differs (not shown)." }
        } @else {
            div.scroll {
                table.diff aria-label=(label) {
                    @for h in &d.hunks {
                        tbody {
                            tr.hunk {
                                td colspan="4" {
                                    "@@ -" (h.old_start) "," (h.old_lines) " +" (h.new_start) "," (h.new_lines) " @@"
                                }
                            }
                            @for l in &h.lines {
                                @let (class, sign, say) = match l.kind {
                                    LineKind::Context => ("ctx", " ", ""),
                                    LineKind::Delete => ("del", "-", "removed: "),
                                    LineKind::Insert => ("ins", "+", "added: "),
                                };
                                tr class=(class) {
                                    td.ln { @if let Some(n) = l.old_line { (n) } }
                                    td.ln { @if let Some(n) = l.new_line { (n) } }
                                    td.sign { span.vh { (say) } span aria-hidden="true" { (sign) } }
                                    td.tx { (l.text) @if l.no_newline { span.nonl { " (no newline at end)" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A small label (archived, encrypted, redacted...).
pub fn badge(text: &str, kind: &str) -> Markup {
    html! { span class=(format!("badge {kind}")) { (text) } }
}

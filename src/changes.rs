//! One line per change, as agents read the change feed: a mount's
//! `.memfs/changes/` files and the MCP server's `recent_changes` tool give the
//! same lines, so what one agent wrote shows up for the others in the tools
//! they have (`cat`, `tail -f`, an MCP call). A line names the change, never
//! its content: time, operation, path, agent and session, separated by tabs.

use crate::store::AuditEntry;

/// `TIME\tOP\tSTORE/PATH\tagent=AGENT\tsession=SESSION\n`; a rename's path is
/// `STORE/OLD -> STORE/NEW`, a change of a store itself names just the store.
pub fn line(e: &AuditEntry) -> String {
    let store = e.store.as_deref().unwrap_or("-");
    let at = |p: &Option<String>| match p {
        Some(p) if !p.is_empty() => format!("{store}/{p}"),
        _ => store.to_string(),
    };
    let path = match &e.path2 {
        Some(_) => format!("{} -> {}", at(&e.path), at(&e.path2)),
        None => at(&e.path),
    };
    format!(
        "{}\t{}\t{}\tagent={}\tsession={}\n",
        e.at,
        e.op,
        clean(&path),
        clean(&e.agent),
        clean(&e.session)
    )
}

/// Keeps one change on one line: tabs and line breaks in a name become spaces.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AuditId;

    fn entry(op: &str, path: Option<&str>, path2: Option<&str>) -> AuditEntry {
        AuditEntry {
            id: AuditId(7),
            at_ns: 0,
            at: "2026-11-25T10:00:00.000Z".into(),
            store: Some("kb".into()),
            op: op.into(),
            path: path.map(str::to_string),
            path2: path2.map(str::to_string),
            ino: None,
            version: None,
            agent: "planner".into(),
            session: "s1".into(),
            user: None,
            detail: None,
            hash: String::new(),
        }
    }

    #[test]
    fn a_line_names_time_op_path_agent_and_session() {
        assert_eq!(
            line(&entry("write", Some("notes/a.md"), None)),
            "2026-11-25T10:00:00.000Z\twrite\tkb/notes/a.md\tagent=planner\tsession=s1\n"
        );
        assert_eq!(
            line(&entry("rename", Some("a"), Some("b/c"))),
            "2026-11-25T10:00:00.000Z\trename\tkb/a -> kb/b/c\tagent=planner\tsession=s1\n"
        );
        assert_eq!(
            line(&entry("store-settings", None, None)),
            "2026-11-25T10:00:00.000Z\tstore-settings\tkb\tagent=planner\tsession=s1\n"
        );
        assert!(!line(&entry("write", Some("a\nb\tc"), None))[..60].contains('\n'));
    }
}

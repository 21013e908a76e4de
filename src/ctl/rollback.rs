//! `memfsctl rollback`: a file to a version, a session, or a store to a time
//! (see `ops/rollback.rs`); prints the plan or what was done.

use super::Ctx;
use crate::ids::VersionId;
use crate::ops::rollback::{Rollback, RollbackReport};
use anyhow::{bail, Result};

/// What `memfsctl rollback` was asked.
#[derive(Debug, Default)]
pub struct RollbackArgs {
    pub target: Option<String>,
    pub to: Option<i64>,
    pub session: Option<String>,
    pub store: Option<String>,
    pub at: Option<String>,
    pub dry_run: bool,
    pub force: bool,
}

/// Which rollback the arguments name.
fn request(a: &RollbackArgs) -> Result<Rollback> {
    Ok(match (&a.target, a.to, &a.session, &a.at) {
        (Some(t), Some(v), None, None) if t.contains('/') => {
            let (store, path) = super::split_spec(t);
            Rollback::File {
                store: store.to_string(),
                path: path.to_string(),
                to: VersionId(v),
            }
        }
        (None, None, Some(s), None) => Rollback::Session {
            session: s.clone(),
            store: a.store.clone(),
            force: a.force,
        },
        (Some(store), None, None, Some(at)) if !store.trim_end_matches('/').contains('/') => {
            Rollback::Store {
                store: store.trim_end_matches('/').to_string(),
                at: at.clone(),
            }
        }
        _ => bail!(
            "use one of:\n  memfsctl rollback STORE/PATH --to VERSION\n  memfsctl rollback --session SESSION [--store STORE] [--dry-run] [--force]\n  memfsctl rollback STORE --at TIME [--dry-run]"
        ),
    })
}

pub fn run(ctx: &Ctx, a: &RollbackArgs) -> Result<()> {
    let report = ctx.ops.rollback(&ctx.p, &request(a)?, a.dry_run)?;
    ctx.emit(&report, || render(&report))?;
    let failed = report.failed();
    if failed > 0 {
        bail!("{failed} step(s) could not be done (see above)");
    }
    Ok(())
}

fn render(report: &RollbackReport) -> String {
    let mut out = String::new();
    for s in &report.steps {
        let to = s
            .path2
            .as_ref()
            .map_or(String::new(), |p| format!(" -> {}/{p}", s.store));
        let v = s.version.map_or(String::new(), |v| format!(" (v{v})"));
        out.push_str(&format!(
            "{:<16} {}/{}{}{}  [{}]\n",
            s.action, s.store, s.path, to, v, s.outcome
        ));
    }
    for c in &report.conflicts {
        let what = if report.forced {
            "undone anyway (--force)"
        } else {
            "left alone (--force to undo anyway)"
        };
        out.push_str(&format!(
            "conflict         {}/{}: changed later by session {} (agent {}, {} #{}); {what}\n",
            c.store, c.path, c.later_session, c.later_agent, c.later_op, c.later_entry
        ));
    }
    if report.steps.is_empty() && report.conflicts.is_empty() {
        out.push_str("nothing to undo\n");
    }
    if report.dry_run {
        out.push_str("(dry run: nothing was changed)\n");
    }
    out
}

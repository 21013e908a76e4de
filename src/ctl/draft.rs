//! `memfsctl draft create|list|show|diff|merge|discard`: drafts of a store
//! (see `ops/drafts/`), as the operator.

use super::Ctx;
use crate::ops::drafts::{
    DraftChange, DraftDiff, DraftView, MergeOptions, MergeReport, NewDraftRequest,
};
use anyhow::{bail, Result};

pub fn create(ctx: &Ctx, store: &str, name: Option<String>, at: Option<String>) -> Result<()> {
    let v = ctx
        .ops
        .create_draft(&ctx.p, store, &NewDraftRequest { name, at })?;
    ctx.emit(&v, || {
        format!(
            "created draft {} of {} (as of {}; {} files, nothing copied)\n\
             mount it with: memfs mount DIR --store {} ...",
            v.name, v.store, v.base_at, v.files, v.name
        )
    })
}

/// Why a draft exists, in words.
fn why(v: &DraftView) -> String {
    match &v.for_session {
        Some(s) => format!("{} (session {s})", v.reason.as_str()),
        None => v.reason.as_str().to_string(),
    }
}

fn line(v: &DraftView) -> String {
    format!(
        "{:<32} base {}  files {:<5} versions {:<5} by {} ({})",
        v.name,
        v.base_at,
        v.files,
        v.versions,
        v.created_by.agent,
        why(v)
    )
}

pub fn list(ctx: &Ctx, store: Option<&str>) -> Result<()> {
    let v = ctx.ops.list_drafts(&ctx.p, store)?;
    ctx.emit(&v, || {
        if v.is_empty() {
            return "no drafts".into();
        }
        v.iter().map(|d| line(d) + "\n").collect()
    })
}

pub fn show(ctx: &Ctx, draft: &str) -> Result<()> {
    let v = ctx.ops.show_draft(&ctx.p, draft)?;
    ctx.emit(&v, || {
        format!(
            "draft:      {}\nstore:      {} ({})\napi id:     {}\nbase:       {} (audit entry {})\n\
             created:    {} by agent {}, session {}{}\nreason:     {}\nfiles:      {} ({} bytes)\n\
             versions:   {}",
            v.name,
            v.store,
            v.store_api_id,
            v.api_id,
            v.base_at,
            v.base_audit,
            v.created_at,
            v.created_by.agent,
            v.created_by.session,
            v.created_by
                .user
                .as_deref()
                .map_or(String::new(), |u| format!(", user {u}")),
            why(&v),
            v.files,
            v.bytes,
            v.versions
        )
    })
}

fn letter(change: &str) -> &'static str {
    match change {
        "added" => "A",
        "deleted" => "D",
        "modified" => "M",
        "renamed" => "R",
        _ => "R+M",
    }
}

fn changes(out: &mut String, title: &str, list: &[DraftChange]) {
    out.push_str(&format!("{title} ({}):\n", list.len()));
    for c in list {
        let from = c
            .from
            .as_deref()
            .map_or(String::new(), |f| format!("{f} -> "));
        let kind = if c.kind == "file" {
            String::new()
        } else {
            format!("  ({})", c.kind)
        };
        out.push_str(&format!(
            "  {:<3} {from}{}{kind}\n",
            letter(c.change),
            c.path
        ));
        if let Some(d) = &c.diff {
            for l in d.diff.lines() {
                out.push_str(&format!("      {l}\n"));
            }
        }
    }
}

fn plan_text(out: &mut String, r: &[crate::ops::drafts::Action]) {
    for a in r {
        let from = a
            .from
            .as_deref()
            .map_or(String::new(), |f| format!("{f} -> "));
        out.push_str(&format!(
            "  {:<10} {from}{}  ({})\n",
            a.action, a.path, a.how
        ));
    }
}

fn conflicts_text(out: &mut String, list: &[crate::ops::drafts::MergeConflict]) {
    if list.is_empty() {
        return;
    }
    out.push_str(&format!("Conflicts, left for a person ({}):\n", list.len()));
    for c in list {
        out.push_str(&format!(
            "  {}: {} (draft: {}, store: {})\n",
            c.path, c.reason, c.draft, c.store
        ));
        for h in &c.hunks {
            out.push_str(&format!(
                "      base lines {}-{}:\n      draft: {:?}\n      store: {:?}\n",
                h.base_start,
                h.base_end.saturating_sub(1),
                h.ours,
                h.theirs
            ));
        }
    }
}

pub fn diff(ctx: &Ctx, draft: &str, patch: bool) -> Result<()> {
    let d: DraftDiff = ctx.ops.draft_diff(&ctx.p, draft, patch)?;
    ctx.emit(&d, || {
        let mut out = format!(
            "draft {} of {} (base: {}, audit entry {})\n",
            d.draft.name, d.draft.store, d.draft.base_at, d.draft.base_audit
        );
        changes(&mut out, "Changed in the draft", &d.draft_changes);
        changes(
            &mut out,
            "Changed in the store since the base",
            &d.store_changes,
        );
        out.push_str(&format!("Merging would ({}):\n", d.plan.len()));
        plan_text(&mut out, &d.plan);
        conflicts_text(&mut out, &d.conflicts);
        out
    })
}

pub fn merge(
    ctx: &Ctx,
    draft: &str,
    dry_run: bool,
    paths: Vec<String>,
    skip_conflicts: bool,
) -> Result<()> {
    let opts = MergeOptions {
        dry_run,
        paths: paths
            .iter()
            .map(|p| p.trim_matches('/').to_string())
            .collect(),
        skip_conflicts,
    };
    let r: MergeReport = ctx.ops.merge_draft(&ctx.p, draft, &opts)?;
    ctx.emit(&r, || merge_text(&r))?;
    if !r.refused.is_empty() {
        bail!(
            "the rules of store {} refuse the merge ({} reason(s)); nothing was merged",
            r.store,
            r.refused.len()
        );
    }
    if r.blocked {
        bail!(
            "{} conflict(s) left for a person; nothing was {}",
            r.conflicts.len(),
            if r.dry_run { "changed" } else { "merged" }
        );
    }
    Ok(())
}

fn merge_text(r: &MergeReport) -> String {
    let mut out = String::new();
    if !r.refused.is_empty() {
        out.push_str(&format!(
            "refused by the rules of store {}; nothing was merged:\n",
            r.store
        ));
        for x in &r.refused {
            out.push_str(&format!("  {}: {}\n", x.path, x.reason));
        }
        return out;
    }
    let c = &r.counts;
    let head = match (r.dry_run, r.blocked, r.merged) {
        (true, true, _) => "would merge nothing (conflicts) from",
        (true, false, _) => "would merge",
        (false, true, _) => "merged nothing (conflicts) from",
        (false, false, true) => "merged",
        (false, false, false) => "nothing to merge from",
    };
    out.push_str(&format!(
        "{head} {} into {}: {} change(s) from the draft as it is, {} merged line by line, \
         {} already on both sides; {} conflict(s)\n",
        r.draft, r.store, c.taken, c.merged, c.same, c.conflicts
    ));
    plan_text(&mut out, &r.actions);
    conflicts_text(&mut out, &r.conflicts);
    if r.blocked {
        out.push_str(
            "Resolve the conflicts in the draft (make its lines agree with the store's) \
             and merge again, or merge the rest with --skip-conflicts (or --path).\n",
        );
    }
    if !r.authors.is_empty() {
        let who: Vec<String> = r
            .authors
            .iter()
            .map(|a| {
                let user = a
                    .user
                    .as_deref()
                    .map_or(String::new(), |u| format!(", user {u}"));
                format!("agent {} (session {}{user})", a.agent, a.session)
            })
            .collect();
        out.push_str(&format!("written in the draft by: {}\n", who.join("; ")));
    }
    if let Some(s) = &r.session {
        out.push_str(&format!(
            "merge session: {s}\nundo it as one unit: memfsctl rollback --session '{s}'\n"
        ));
    }
    out
}

pub fn discard(ctx: &Ctx, draft: &str, yes: bool) -> Result<()> {
    if !yes {
        let v = ctx.ops.show_draft(&ctx.p, draft)?;
        let d = ctx.ops.draft_diff(&ctx.p, draft, false)?;
        println!(
            "discarding {} would drop its {} change(s) and {} version(s) of its own \
             (what it shares with {} stays)",
            v.name,
            d.draft_changes.len(),
            v.versions,
            v.store
        );
        bail!("add --yes to discard it");
    }
    let v = ctx.ops.discard_draft(&ctx.p, draft)?;
    ctx.emit(&v, || format!("discarded {}", v.name))
}

//! `memfsctl jobs list|show|cancel|archive`: consolidation jobs (the API's
//! dreams), on the same operations as `/v1/dreams`. memfsctl does not run
//! jobs (`memfs serve` does): a cancel here marks the job canceled, and the
//! server running it sees that within a second, kills its command and
//! unmounts its draft.

use super::Ctx;
use crate::ops::jobs::{JobQuery, JobStatus, JobView};
use anyhow::Result;

fn when(ns: Option<i64>) -> String {
    ns.map(crate::timefmt::rfc3339)
        .unwrap_or_else(|| "-".into())
}

fn line(j: &JobView) -> String {
    format!(
        "{:<28} {:<10} {:<16} {:<16} {}\n",
        j.id,
        j.status.as_str(),
        j.output_behavior.as_str(),
        j.store.as_deref().unwrap_or(&j.store_api_id),
        crate::timefmt::rfc3339(j.created_ns)
    )
}

/// Every job (newest first), or those with one of `statuses`.
pub fn list(ctx: &Ctx, statuses: &[String], all: bool) -> Result<()> {
    let mut q = JobQuery {
        include_archived: all,
        limit: Some(100),
        ..Default::default()
    };
    for s in statuses {
        q.statuses.push(JobStatus::parse(s)?);
    }
    let mut jobs = Vec::new();
    loop {
        let page = ctx.ops.list_jobs(&ctx.p, &q)?;
        jobs.extend(page.data);
        match page.next_page {
            Some(n) => q.page = Some(n),
            None => break,
        }
    }
    ctx.emit(&jobs, || {
        let mut out = format!(
            "{:<28} {:<10} {:<16} {:<16} CREATED\n",
            "ID", "STATUS", "OUTPUT", "STORE"
        );
        for j in &jobs {
            out.push_str(&line(j));
        }
        if jobs.is_empty() {
            out.push_str("(no jobs)\n");
        }
        out
    })
}

fn details(j: &JobView) -> String {
    let mut out = format!(
        "job        {}\nstatus     {}\nstore      {} ({})\nsessions   {}\nmodel      {}\n\
         output     {}\n",
        j.id,
        j.status.as_str(),
        j.store.as_deref().unwrap_or("(deleted)"),
        j.store_api_id,
        j.sessions.join(", "),
        j.model.id,
        j.output_behavior.as_str(),
    );
    if let Some(d) = &j.draft {
        out.push_str(&format!("draft      {d}\n"));
    }
    for o in &j.outputs {
        out.push_str(&format!("result     {} ({})\n", o.name, o.api_id));
    }
    if let Some(s) = &j.session {
        out.push_str(&format!("session    {s} (memfsctl log --session {s})\n"));
    }
    if let Some(e) = &j.error {
        out.push_str(&format!("error      {}: {}\n", e.kind, e.message));
    }
    out.push_str(&format!(
        "created    {} by {} (session {})\nstarted    {}\nended      {}\narchived   {}\n",
        crate::timefmt::rfc3339(j.created_ns),
        j.created_by.agent,
        j.created_by.session,
        when(j.started_ns),
        when(j.ended_ns),
        when(j.archived_ns)
    ));
    if let Some(i) = &j.instructions {
        out.push_str(&format!("instructions\n  {}\n", i.replace('\n', "\n  ")));
    }
    out
}

pub fn show(ctx: &Ctx, id: &str) -> Result<()> {
    let j = ctx.ops.job(&ctx.p, id)?;
    ctx.emit(&j, || details(&j))
}

pub fn cancel(ctx: &Ctx, id: &str) -> Result<()> {
    let j = ctx.ops.cancel_job(&ctx.p, id)?;
    ctx.emit(&j, || {
        format!(
            "{} is canceled; the server running it kills its command and unmounts its draft",
            j.id
        )
    })
}

pub fn archive(ctx: &Ctx, id: &str) -> Result<()> {
    let j = ctx.ops.archive_job(&ctx.p, id)?;
    ctx.emit(&j, || format!("{} is archived", j.id))
}

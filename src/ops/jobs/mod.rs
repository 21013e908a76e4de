//! Consolidation jobs (the memory-store API's "dreams"): a job takes one store
//! and some sessions, works in a draft of the store while an operator's
//! command rewrites it (`crate::jobs` runs the command on a mount of the
//! draft), and ends in a draft to review (`update_existing`) or in a new
//! store (`create_new`). This module is the one core of it: asking for a job,
//! listing, showing, canceling and archiving jobs (for every front end), and
//! the steps the runner takes (start: make the draft; the sessions' change
//! logs; finish: keep the draft, or copy it into a new store; stopped).
//!
//! The state machine: `pending` -> `running` -> `completed` | `failed`, and
//! `pending` | `running` -> `canceled`. The last three are final and never
//! change; a job is *stopped* once it is final and its runner has cleaned up
//! (command killed, mount gone; `runner` is cleared). A failed or canceled
//! job's draft is discarded: a job's draft outlives it only as its result.
//!
//! Rights: a job is seen by whoever may see its input store. Asking for an
//! `update_existing` job, and canceling or archiving one, needs the right to
//! write the store; a `create_new` job needs a writer or admin role (it makes
//! a store, which copies the input's scope, owner and settings, so the same
//! people see it).

use super::page::{self, Page};
use super::{Ops, Principal, Role};
use crate::config::Config;
use crate::error::{OpError, OpResult, StoreError};
use crate::ids::{now_ns, Identity};
use crate::settings::{self, StoreSettings};
use crate::store::{AuditEntry, AuditFilter, DraftReason, JobRow, StoreRow, Txn};
use serde::Serialize;
use std::path::Path;

#[cfg(test)]
mod tests;

/// The `kind` of consolidation jobs in the `jobs` table.
pub const KIND: &str = "dream";
/// How many sessions a job may read.
pub const MAX_SESSIONS: usize = 100;
/// The longest `instructions`, in characters.
pub const MAX_INSTRUCTIONS: usize = 4096;
/// The longest model id, in characters.
pub const MAX_MODEL_ID: usize = 256;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Canceled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> OpResult<JobStatus> {
        Ok(match s {
            "pending" => JobStatus::Pending,
            "running" => JobStatus::Running,
            "completed" => JobStatus::Completed,
            "failed" => JobStatus::Failed,
            "canceled" => JobStatus::Canceled,
            _ => {
                return Err(OpError::Invalid(format!(
                    "status must be pending, running, completed, failed or canceled, not '{s}'"
                )))
            }
        })
    }

    /// Completed, failed and canceled never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

/// Where a job's result goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputBehavior {
    /// A new store that starts as a copy of the input.
    CreateNew,
    /// A draft of the input store, to review and merge.
    UpdateExisting,
}

impl OutputBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputBehavior::CreateNew => "create_new",
            OutputBehavior::UpdateExisting => "update_existing",
        }
    }
}

/// The model a job names (memfs calls none; the command gets the id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ModelSpec {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub speed: Option<String>,
}

/// A job as asked for.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// The input store, by API id or slug.
    pub store: String,
    /// The sessions whose change logs the command reads (memfs session names).
    pub sessions: Vec<String>,
    pub model: ModelSpec,
    pub instructions: Option<String>,
    pub output: OutputBehavior,
    /// For `update_existing`: the store to update, which must be the input.
    pub output_store: Option<String>,
}

/// Why a job failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct JobError {
    /// `timeout` or `internal_error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

impl JobError {
    pub fn internal(message: impl Into<String>) -> JobError {
        JobError {
            kind: "internal_error".into(),
            message: message.into(),
        }
    }

    pub fn timeout(message: impl Into<String>) -> JobError {
        JobError {
            kind: "timeout".into(),
            message: message.into(),
        }
    }
}

/// Who asked for a job.
#[derive(Clone, Debug, Serialize)]
pub struct Creator {
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
}

/// A job as front ends show it.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    /// `drm_...`
    pub id: String,
    pub status: JobStatus,
    /// The input store's API id and slug (`None` once it was deleted).
    pub store_api_id: String,
    pub store: Option<String>,
    /// Sorted.
    pub sessions: Vec<String>,
    pub model: ModelSpec,
    pub instructions: Option<String>,
    pub output_behavior: OutputBehavior,
    /// The store holding the result (API id and name): the job's draft for
    /// `update_existing`, a new store for `create_new`. Empty until completed.
    pub outputs: Vec<OutputStore>,
    /// The session the job's writes are attributed to (its id), once it ran.
    pub session: Option<String>,
    /// The draft the job works in (`STORE@DRAFT`), while it runs and, for
    /// `update_existing`, as its result.
    pub draft: Option<String>,
    pub error: Option<JobError>,
    pub created_ns: i64,
    pub started_ns: Option<i64>,
    pub ended_ns: Option<i64>,
    pub archived_ns: Option<i64>,
    pub created_by: Creator,
    /// Final, and its command and mount are gone.
    pub stopped: bool,
}

/// A store a job produced.
#[derive(Clone, Debug, Serialize)]
pub struct OutputStore {
    pub api_id: String,
    pub name: String,
}

/// Which jobs to list (newest first).
#[derive(Clone, Debug, Default)]
pub struct JobQuery {
    /// Created strictly after / before these times.
    pub created_gt_ns: Option<i64>,
    pub created_lt_ns: Option<i64>,
    pub include_archived: bool,
    /// Any of these statuses (all when empty).
    pub statuses: Vec<JobStatus>,
    pub limit: Option<i64>,
    pub page: Option<String>,
}

/// What the runner needs to run a job it started.
#[derive(Clone, Debug)]
pub struct StartedJob {
    pub job: JobView,
    /// The draft the command works in.
    pub draft: StoreRow,
    /// The input store and its settings (the draft's policies are its).
    pub store: StoreRow,
    pub settings: StoreSettings,
    /// What the job's writes are attributed to: the asker's agent and user,
    /// the job's id as session.
    pub who: Identity,
}

/// What a job produced, between making its result and recording its status.
struct Ending {
    j: JobRow,
    draft: Option<StoreRow>,
    result: Result<crate::ids::StoreId, JobError>,
}

/// How a job's command ended, as the runner saw it.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The command exited 0: keep its result.
    Succeeded,
    /// It failed, timed out, or the server stopped.
    Failed(JobError),
    /// It was canceled (the status says so already).
    Canceled,
}

/// The largest content a session log line carries, in bytes.
pub const MAX_LOG_CONTENT: u64 = 64 << 10;

/// One line of a session's change log: the audit entry, and the content the
/// change left when it is small text.
#[derive(Clone, Debug, Serialize)]
pub struct SessionChange {
    #[serde(flatten)]
    pub entry: AuditEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Why `content` is missing from a change that wrote content: `binary`,
    /// `too_large`, `redacted` or `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_omitted: Option<&'static str>,
}

/// A version's content as text, or why not.
fn version_text(tx: &Txn<'_>, v: crate::ids::VersionId) -> (Option<String>, Option<&'static str>) {
    match tx.version_redacted(v) {
        Ok(false) => {}
        Ok(true) => return (None, Some("redacted")),
        Err(_) => return (None, Some("unavailable")),
    }
    let row = match tx.version(v) {
        Ok(r) => r,
        Err(_) => return (None, Some("unavailable")),
    };
    if row.size > MAX_LOG_CONTENT {
        return (None, Some("too_large"));
    }
    let bytes = tx
        .extents(v)
        .and_then(|ext| tx.read_extents(&ext, 0, ext.size()));
    match bytes.map(String::from_utf8) {
        Ok(Ok(text)) => (Some(text), None),
        Ok(Err(_)) => (None, Some("binary")),
        Err(_) => (None, Some("unavailable")),
    }
}

/// The request as stored in the `request` column.
#[derive(Serialize, serde::Deserialize)]
struct Stored {
    store_api_id: String,
    sessions: Vec<String>,
    model: ModelSpec,
    instructions: Option<String>,
    output_behavior: OutputBehavior,
}

fn stored(j: &JobRow) -> OpResult<Stored> {
    serde_json::from_value(j.request.clone())
        .map_err(|e| OpError::Store(StoreError::Corrupt(format!("job {}: {e}", j.id))))
}

fn status_of(j: &JobRow) -> OpResult<JobStatus> {
    JobStatus::parse(&j.status)
        .map_err(|_| OpError::Store(StoreError::Corrupt(format!("job {}: status", j.id))))
}

/// A session name as memfs takes it: 1 to 128 characters without control
/// characters (as `x-memfs-session` and `memfs mount --session`).
fn check_session(s: &str) -> OpResult<()> {
    let n = s.chars().count();
    if n == 0 || n > 128 || s.chars().any(char::is_control) {
        return Err(OpError::Invalid(format!(
            "session id '{}' is not a session name: 1 to 128 characters without control \
             characters",
            s.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}

/// Checks what a job asks for (the rules that need no database), and
/// returns its sessions sorted.
pub fn validate(req: &NewJob) -> OpResult<Vec<String>> {
    let n = req.sessions.len();
    if n == 0 || n > MAX_SESSIONS {
        return Err(OpError::Invalid(format!(
            "the sessions input takes 1 to {MAX_SESSIONS} session ids, not {n}"
        )));
    }
    let mut sessions = req.sessions.clone();
    for s in &sessions {
        check_session(s)?;
    }
    sessions.sort();
    if let Some(w) = sessions.windows(2).find(|w| w[0] == w[1]) {
        return Err(OpError::Invalid(format!(
            "session id '{}' is given twice; session ids must be unique",
            w[0]
        )));
    }
    let id = &req.model.id;
    let m = id.chars().count();
    if m == 0 || m > MAX_MODEL_ID || id.chars().any(char::is_control) {
        return Err(OpError::Invalid(format!(
            "model id must be 1 to {MAX_MODEL_ID} characters without control characters"
        )));
    }
    if let Some(speed) = &req.model.speed {
        if speed != "standard" {
            return Err(OpError::Invalid(format!(
                "model speed must be 'standard', not '{speed}'"
            )));
        }
    }
    if let Some(i) = &req.instructions {
        let c = i.chars().count();
        if c == 0 || c > MAX_INSTRUCTIONS {
            return Err(OpError::Invalid(format!(
                "instructions must be 1 to {MAX_INSTRUCTIONS} characters, not {c}"
            )));
        }
    }
    match (req.output, &req.output_store) {
        (OutputBehavior::UpdateExisting, None) => Err(OpError::Invalid(
            "output_behavior update_existing needs memory_store_id (the input store)".into(),
        )),
        (OutputBehavior::CreateNew, Some(_)) => Err(OpError::Invalid(
            "output_behavior create_new takes no memory_store_id".into(),
        )),
        _ => Ok(sessions),
    }
}

/// The draft name of job `id`: `dream-` and the start of its hex part.
pub fn draft_name(id: &str) -> String {
    let hex: String = id
        .trim_start_matches("drm_")
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .flat_map(char::to_lowercase)
        .take(12)
        .collect();
    format!("dream-{hex}")
}

/// The holder row a job runner keeps alive (no leases, no locks: only its
/// liveness, which servers on other hosts read).
fn runner_holder(token: &str) -> crate::store::HolderInfo {
    crate::store::HolderInfo {
        id: token.to_string(),
        who: Identity::new("memfs-serve", "dream-runner", None),
        pid: std::process::id(),
    }
}

/// The identity job `j`'s writes are attributed to.
pub fn job_identity(j: &JobRow) -> Identity {
    Identity::new(&j.agent, &j.id, j.user.as_deref())
}

/// The view of a job.
fn view(tx: &Txn<'_>, j: &JobRow) -> OpResult<JobView> {
    let s = stored(j)?;
    let status = status_of(j)?;
    let store = tx.store_by_id(j.store)?;
    let draft = match j.draft {
        Some(d) => tx.store_by_id(d)?,
        None => None,
    };
    let outputs = match (status, j.output) {
        (JobStatus::Completed, Some(o)) => tx
            .store_by_id(o)?
            .map(|r| OutputStore {
                api_id: r.api_id,
                name: r.name,
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    Ok(JobView {
        id: j.id.clone(),
        status,
        store_api_id: s.store_api_id,
        store: store.map(|r| r.name),
        sessions: s.sessions,
        model: s.model,
        instructions: s.instructions,
        output_behavior: s.output_behavior,
        outputs,
        session: j.started_ns.map(|_| j.id.clone()),
        draft: draft.map(|d| d.name),
        error: j
            .error
            .as_ref()
            .and_then(|e| serde_json::from_value(e.clone()).ok()),
        created_ns: j.created_ns,
        started_ns: j.started_ns,
        ended_ns: j.ended_ns,
        archived_ns: j.archived_ns,
        created_by: Creator {
            agent: j.agent.clone(),
            session: j.session.clone(),
            user: j.user.clone(),
        },
        stopped: status.is_final() && j.runner.is_none(),
    })
}

impl Ops {
    /// One write transaction whose closure speaks storage errors.
    fn write_tx<T>(&self, f: impl FnOnce(&Txn<'_>) -> Result<T, StoreError>) -> OpResult<T> {
        self.db().write(f).map_err(OpError::from)
    }

    /// The job `id`, with its input store, if `p` may see that store (an
    /// admin over every store also sees jobs whose store is gone).
    fn locate_job(&self, p: &Principal, id: &str) -> OpResult<(JobRow, Option<StoreRow>)> {
        let missing = || OpError::NotFound(format!("no dream '{id}'"));
        let found = self.read(|tx| {
            let Some(j) = tx.job(id)? else {
                return Ok(None);
            };
            if j.kind != KIND {
                return Ok(None);
            }
            let s = match tx.store_by_id(j.store)? {
                Some(s) => {
                    let set = settings::load(tx, s.id)?;
                    Some((s, set))
                }
                None => None,
            };
            Ok(Some((j, s)))
        })?;
        match found {
            Some((j, Some((s, set)))) if p.may_see(&s, &set) => Ok((j, Some(s))),
            Some((j, None)) if p.role == Role::Admin && p.stores.is_none() => Ok((j, None)),
            _ => Err(missing()),
        }
    }

    /// Refuses changing job `j` (cancel, archive) unless `p` could ask for it.
    fn require_job_rights(
        &self,
        p: &Principal,
        j: &JobRow,
        store: Option<&StoreRow>,
    ) -> OpResult<()> {
        let s = stored(j)?;
        match (s.output_behavior, store) {
            (OutputBehavior::UpdateExisting, Some(store)) => {
                let (_, set) = self.store(p, &store.api_id)?;
                p.require_write(store, &set)
            }
            _ if p.role >= Role::Writer => Ok(()),
            _ => Err(OpError::Forbidden(format!(
                "a reader key may not change dreams (this key's role is {})",
                p.role.as_str()
            ))),
        }
    }

    /// Asks for a consolidation job; it starts `pending`, run by `runner`
    /// (the server process that will run it). Refused with 409 while another
    /// `update_existing` job on the same store has not fully stopped.
    pub fn create_job(&self, p: &Principal, req: &NewJob, runner: &str) -> OpResult<JobView> {
        let sessions = validate(req)?;
        let (store, set) = self.store(p, &req.store)?;
        if store.is_draft() {
            return Err(OpError::Invalid(format!(
                "'{}' is a draft; a dream reads a store (name the store '{}')",
                store.name,
                store.dir_name()
            )));
        }
        if store.archived {
            return Err(OpError::Invalid(format!(
                "memory store '{}' is archived",
                req.store
            )));
        }
        match req.output {
            OutputBehavior::UpdateExisting => {
                let target = req.output_store.as_deref().unwrap_or_default();
                let (t, _) = self.store(p, target)?;
                if t.id != store.id {
                    return Err(OpError::Invalid(format!(
                        "output_behavior.memory_store_id must be the input memory store ({}), \
                         not '{target}'",
                        store.api_id
                    )));
                }
                p.require_write(&store, &set)?;
            }
            OutputBehavior::CreateNew => {
                if p.role < Role::Writer {
                    return Err(OpError::Forbidden(
                        "a reader key may not start a dream (it makes a new memory store)".into(),
                    ));
                }
            }
        }
        let request = serde_json::to_value(Stored {
            store_api_id: store.api_id.clone(),
            sessions,
            model: req.model.clone(),
            instructions: req.instructions.clone(),
            output_behavior: req.output,
        })
        .map_err(|e| OpError::Store(StoreError::Corrupt(e.to_string())))?;
        let row = JobRow {
            id: crate::store::new_api_id("drm_")?,
            kind: KIND.into(),
            store: store.id,
            draft: None,
            output: None,
            request,
            status: JobStatus::Pending.as_str().into(),
            error: None,
            agent: p.who.agent.clone(),
            session: p.who.session.clone(),
            user: p.who.user.clone(),
            key_id: p.key_id.clone(),
            created_ns: now_ns(),
            started_ns: None,
            ended_ns: None,
            archived_ns: None,
            runner: Some(runner.into()),
        };
        let output = req.output;
        let busy = self.write_tx(|tx| {
            if output == OutputBehavior::UpdateExisting {
                for j in tx.unstopped_jobs()? {
                    let updates = j.request.get("output_behavior").and_then(|v| v.as_str())
                        == Some(OutputBehavior::UpdateExisting.as_str());
                    if j.kind == KIND && j.store == store.id && updates {
                        return Ok(Some(j.id));
                    }
                }
            }
            tx.insert_job(&row)?;
            Ok(None)
        })?;
        if let Some(other) = busy {
            return Err(OpError::Conflict(format!(
                "dream {other} updates memory store '{}' and has not fully stopped; cancel it \
                 or wait for it to end",
                store.api_id
            )));
        }
        self.read(|tx| Ok(view(tx, &row)))?
    }

    /// One job.
    pub fn job(&self, p: &Principal, id: &str) -> OpResult<JobView> {
        let (j, _) = self.locate_job(p, id)?;
        self.read(|tx| Ok(view(tx, &j)))?
    }

    /// The jobs `p` may see, newest first, a page at a time.
    pub fn list_jobs(&self, p: &Principal, q: &JobQuery) -> OpResult<Page<JobView>> {
        let limit = page::limit(q.limit, 20, 100)?;
        let after = match &q.page {
            Some(t) => {
                let f = page::decode("drm", t)?;
                let ns: i64 = f
                    .first()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| OpError::Invalid("invalid page cursor".into()))?;
                Some((ns, f.get(1).cloned().unwrap_or_default()))
            }
            None => None,
        };
        let admin_all = p.role == Role::Admin && p.stores.is_none();
        let rows = self.read(|tx| {
            let mut out = Vec::new();
            for j in tx.jobs(KIND)? {
                let visible = match tx.store_by_id(j.store)? {
                    Some(s) => {
                        let set = settings::load(tx, s.id)?;
                        p.may_see(&s, &set)
                    }
                    None => admin_all,
                };
                if visible {
                    out.push(j);
                }
            }
            Ok(out)
        })?;
        let mut rows: Vec<JobRow> = rows
            .into_iter()
            .filter(|j| q.include_archived || j.archived_ns.is_none())
            .filter(|j| q.created_gt_ns.is_none_or(|t| j.created_ns > t))
            .filter(|j| q.created_lt_ns.is_none_or(|t| j.created_ns < t))
            .filter(|j| {
                q.statuses.is_empty()
                    || JobStatus::parse(&j.status).is_ok_and(|s| q.statuses.contains(&s))
            })
            .collect();
        // Newest first; the id breaks ties so a cursor is exact.
        rows.sort_by(|a, b| (b.created_ns, &b.id).cmp(&(a.created_ns, &a.id)));
        if let Some((ns, id)) = after {
            rows.retain(|j| (j.created_ns, j.id.as_str()) < (ns, id.as_str()));
        }
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_page = match (more, rows.last()) {
            (true, Some(last)) => Some(page::encode(
                "drm",
                &[&last.created_ns.to_string(), &last.id],
            )),
            _ => None,
        };
        let data = self.read(|tx| Ok(rows.iter().map(|j| view(tx, j)).collect::<Vec<_>>()))?;
        Ok(Page {
            data: data.into_iter().collect::<OpResult<_>>()?,
            next_page,
        })
    }

    /// Cancels a pending or running job (its runner then kills the command
    /// and unmounts). Canceling a canceled job changes nothing; a completed
    /// or failed one cannot be canceled.
    pub fn cancel_job(&self, p: &Principal, id: &str) -> OpResult<JobView> {
        let (j, store) = self.locate_job(p, id)?;
        self.require_job_rights(p, &j, store.as_ref())?;
        let id = j.id.clone();
        let refused = self.write_tx(|tx| {
            let Some(mut j) = tx.job(&id)? else {
                return Ok(Some("vanished".to_string()));
            };
            match j.status.as_str() {
                "pending" | "running" => {
                    j.status = JobStatus::Canceled.as_str().into();
                    j.ended_ns = Some(now_ns());
                    tx.update_job(&j)?;
                    Ok(None)
                }
                "canceled" => Ok(None),
                other => Ok(Some(other.to_string())),
            }
        })?;
        if let Some(status) = refused {
            return Err(OpError::Invalid(format!(
                "dream {id} is {status}; only a pending or running dream can be canceled"
            )));
        }
        self.job(p, &id)
    }

    /// Archives a completed, failed or canceled job (hidden from lists unless
    /// asked for). Archiving an archived job changes nothing.
    pub fn archive_job(&self, p: &Principal, id: &str) -> OpResult<JobView> {
        let (j, store) = self.locate_job(p, id)?;
        self.require_job_rights(p, &j, store.as_ref())?;
        let status = status_of(&j)?;
        if !status.is_final() {
            return Err(OpError::Invalid(format!(
                "dream {} is {}; only a completed, failed or canceled dream can be archived",
                j.id,
                status.as_str()
            )));
        }
        let id = j.id.clone();
        self.write_tx(|tx| {
            if let Some(mut j) = tx.job(&id)? {
                if j.archived_ns.is_none() {
                    j.archived_ns = Some(now_ns());
                    tx.update_job(&j)?;
                }
            }
            Ok(())
        })?;
        self.job(p, &id)
    }

    // The runner's steps. They act for the job itself (its rights were
    // checked when it was asked for), so they take no principal.

    /// A job as stored (the runner polls it for a cancel).
    pub fn job_row(&self, id: &str) -> OpResult<Option<JobRow>> {
        self.read(|tx| tx.job(id))
    }

    /// Starts pending job `id` run by `runner`: makes its draft of the input
    /// store as it is now, and marks it running. `None` when it is no longer
    /// pending (canceled meanwhile) or belongs to another runner.
    pub fn start_job(&self, id: &str, runner: &str) -> OpResult<Option<StartedJob>> {
        let started = self.write_tx(|tx| {
            let Some(mut j) = tx.job(id)? else {
                return Ok(None);
            };
            if j.status != JobStatus::Pending.as_str() || j.runner.as_deref() != Some(runner) {
                return Ok(None);
            }
            let Some(store) = tx.store_by_id(j.store)? else {
                j.status = JobStatus::Failed.as_str().into();
                j.error = serde_json::to_value(JobError::internal(
                    "the input memory store was deleted before the dream started",
                ))
                .ok();
                j.ended_ns = Some(now_ns());
                tx.update_job(&j)?;
                return Ok(None);
            };
            let who = job_identity(&j);
            let draft = super::drafts::make_draft(
                tx,
                &store,
                &draft_name(&j.id),
                None,
                DraftReason::Job,
                Some(&j.id),
                &who,
            )?;
            j.status = JobStatus::Running.as_str().into();
            j.started_ns = Some(now_ns());
            j.draft = Some(draft.id);
            tx.update_job(&j)?;
            let settings = settings::load(tx, store.id)?;
            Ok(Some((j, draft, store, settings, who)))
        })?;
        let Some((j, draft, store, settings, who)) = started else {
            return Ok(None);
        };
        let job = self.read(|tx| Ok(view(tx, &j)))??;
        Ok(Some(StartedJob {
            job,
            draft,
            store,
            settings,
            who,
        }))
    }

    /// Every change `session` made to the job's input store or to its drafts
    /// (a session under a drafts rule writes to one), oldest first, each
    /// with the content it wrote when that is text of at most
    /// [`MAX_LOG_CONTENT`] bytes; the job's own draft is left out.
    pub fn session_log(&self, started: &StartedJob, session: &str) -> OpResult<Vec<SessionChange>> {
        self.read(|tx| {
            let mut stores = vec![started.store.id];
            for d in tx.drafts(Some(started.store.id))? {
                if d.store.id != started.draft.id {
                    stores.push(d.store.id);
                }
            }
            let entries = tx.audit_entries(&AuditFilter {
                stores: Some(stores),
                session: Some(session.to_string()),
                ascending: true,
                ..Default::default()
            })?;
            let mut out = Vec::with_capacity(entries.len());
            for entry in entries {
                let (content, content_omitted) = match entry.version {
                    Some(v) => version_text(tx, crate::ids::VersionId(v)),
                    None => (None, None),
                };
                out.push(SessionChange {
                    entry,
                    content,
                    content_omitted,
                });
            }
            Ok(out)
        })
    }

    /// Ends job `id` as `outcome` says. Succeeded: an `update_existing` job
    /// keeps its draft as its result; a `create_new` job's draft is copied
    /// into a new store (named after the input, with its scope, owner and
    /// settings; `tmp` holds the copy on its way) and discarded. Otherwise
    /// (and when the job was canceled meanwhile) the draft is discarded.
    pub fn finish_job(
        &self,
        id: &str,
        outcome: &Outcome,
        config: &Config,
        tmp: &Path,
    ) -> OpResult<()> {
        match self.job_result(id, outcome, config, tmp)? {
            Some(ending) => self.end_job(id, ending),
            None => Ok(()),
        }
    }

    /// The first half of [`finish_job`](Self::finish_job): what job `id`
    /// produced (a `create_new` job's new store is made here), before its
    /// status changes. `None` if the job is gone.
    fn job_result(
        &self,
        id: &str,
        outcome: &Outcome,
        config: &Config,
        tmp: &Path,
    ) -> OpResult<Option<Ending>> {
        let Some(j) = self.job_row(id)? else {
            return Ok(None);
        };
        let s = stored(&j)?;
        let canceled = status_of(&j)? == JobStatus::Canceled;
        let draft = match j.draft {
            Some(d) => self.read(|tx| tx.store_by_id(d))?,
            None => None,
        };
        let result = match (outcome, canceled, &draft) {
            (Outcome::Succeeded, false, Some(draft)) => match s.output_behavior {
                OutputBehavior::UpdateExisting => Ok(draft.id),
                OutputBehavior::CreateNew => self.copy_out(&j, draft, config, tmp),
            },
            (Outcome::Succeeded, false, None) => Err(JobError::internal(
                "the dream's draft vanished while it ran",
            )),
            (Outcome::Failed(e), _, _) => Err(e.clone()),
            _ => Err(JobError::internal("canceled")),
        };
        Ok(Some(Ending { j, draft, result }))
    }

    /// The second half of [`finish_job`](Self::finish_job): job `id`'s
    /// status, and its draft discarded unless it is the result.
    fn end_job(&self, id: &str, ending: Ending) -> OpResult<()> {
        let Ending { j, draft, result } = ending;
        let who = job_identity(&j);
        // A store made for the job that is not its draft: a create_new result.
        let made = match &result {
            Ok(out) if Some(*out) != j.draft => Some(*out),
            _ => None,
        };
        // The status changes in one transaction with the check for a cancel
        // that came meanwhile (canceled stays: a final state never changes).
        let ended_as = self.write_tx(|tx| {
            let Some(mut j) = tx.job(id)? else {
                return Ok(None);
            };
            let ended_elsewhere = if j.status == JobStatus::Canceled.as_str() {
                j.draft = None;
                tx.update_job(&j)?;
                Some(JobStatus::Canceled)
            } else if j.status == JobStatus::Failed.as_str() {
                // Failed by another server that took this one for dead (it
                // was not heard from for longer than its grace).
                Some(JobStatus::Failed)
            } else {
                None
            };
            if let Some(status) = ended_elsewhere {
                // Ended meanwhile while its new store was made: nobody was
                // given that store, and it goes with the job.
                if let Some(row) = made.map(|out| tx.store_by_id(out)).transpose()?.flatten() {
                    tx.delete_store(&row, &who, now_ns())?;
                }
                return Ok(Some(status));
            }
            let status = match &result {
                Ok(out) => {
                    j.status = JobStatus::Completed.as_str().into();
                    j.output = Some(*out);
                    if Some(*out) != j.draft {
                        j.draft = None;
                    }
                    JobStatus::Completed
                }
                Err(e) => {
                    j.status = JobStatus::Failed.as_str().into();
                    j.error = serde_json::to_value(e).ok();
                    j.draft = None;
                    JobStatus::Failed
                }
            };
            j.ended_ns = Some(now_ns());
            tx.update_job(&j)?;
            Ok(Some(status))
        })?;
        // The draft stays only as a completed update_existing job's result.
        let keep_draft = ended_as == Some(JobStatus::Completed)
            && matches!(&result, Ok(o) if Some(*o) == j.draft);
        if let (Some(d), false) = (&draft, keep_draft) {
            let why = if ended_as == Some(JobStatus::Canceled) {
                "dream canceled"
            } else {
                "dream ended"
            };
            if let Err(e) = self.write_tx(|tx| tx.discard_draft(d, &who, now_ns(), why)) {
                tracing::error!(job = id, error = %e, "cannot discard a dream's draft");
            }
        }
        if let (Some(JobStatus::Canceled | JobStatus::Failed), Some(out)) = (ended_as, made) {
            tracing::info!(
                job = id,
                store = out.0,
                "a dream ended elsewhere as its new store was made; that store was deleted"
            );
        }
        Ok(())
    }

    /// Copies job `j`'s draft into a new store (current content, no history),
    /// with the input store's settings. Returns its id.
    fn copy_out(
        &self,
        j: &JobRow,
        draft: &StoreRow,
        config: &Config,
        tmp: &Path,
    ) -> Result<crate::ids::StoreId, JobError> {
        let who = job_identity(j);
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(job = %j.id, error = %e, "{what}");
            JobError::internal(format!("{what}: {e}"))
        };
        // The input store's name (a draft is named `STORE@DRAFT`).
        let base = draft
            .name
            .split('@')
            .next()
            .unwrap_or(&draft.name)
            .to_string();
        let hex = draft_name(&j.id);
        let stem: String = base.chars().take(63 - hex.len() - 1).collect();
        let name = format!("{}-{hex}", stem.trim_end_matches('-'));
        let path = tmp.join("copy.tar");
        let file =
            std::fs::File::create(&path).map_err(|e| fail("cannot write the dream's copy", &e))?;
        let mut progress = crate::interchange::progress::Progress::silent();
        crate::interchange::export::write_archive(
            self.db(),
            &draft.name,
            false,
            file,
            &mut progress,
        )
        .map_err(|e| fail("cannot copy the dream's draft", &e))?;
        let file =
            std::fs::File::open(&path).map_err(|e| fail("cannot read the dream's copy", &e))?;
        let imported = crate::interchange::import::import_archive(
            self.db(),
            config,
            std::io::BufReader::new(file),
            Some(name.as_str()),
            &who,
            &mut progress,
        )
        .map_err(|e| fail("cannot make the dream's new memory store", &e))?;
        let _ = std::fs::remove_file(&path);
        let id = self
            .write_tx(|tx| {
                let row = tx
                    .store_by_name(&imported.store)?
                    .ok_or_else(|| StoreError::Corrupt("the dream's new store vanished".into()))?;
                let input = tx.store_by_id(j.store)?;
                let set = settings::load(tx, j.store)?;
                settings::save(tx, row.id, &set, &who)?;
                let title = input
                    .as_ref()
                    .map(|i| i.title.clone().unwrap_or_else(|| i.name.clone()))
                    .unwrap_or_else(|| base.clone());
                let info = crate::store::StoreInfo {
                    title: Some(Some(format!("{title} (dream {})", j.id))),
                    description: None,
                    metadata: None,
                };
                tx.update_store_info(row.id, &info, &who, now_ns())?;
                Ok(row.id)
            })
            .map_err(|e| fail("cannot set up the dream's new memory store", &e))?;
        Ok(id)
    }

    /// Job `id`'s runner has cleaned up (command gone, mount gone).
    pub fn job_stopped(&self, id: &str) -> OpResult<()> {
        self.write_tx(|tx| {
            if let Some(mut j) = tx.job(id)? {
                j.runner = None;
                tx.update_job(&j)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// At a server's start: every job whose runner `alive` says is gone is
    /// failed (if it had not ended), its draft discarded unless it is the
    /// result, and marked stopped. Returns the jobs so treated.
    /// Registers this server's job runner `token` as alive for `ttl_ns` (a
    /// holder row, as a mount's), so servers on other hosts can tell it from
    /// a dead one; again every third of the TTL, to stay alive.
    pub fn runner_heartbeat(&self, token: &str, ttl_ns: i64) -> OpResult<()> {
        let me = runner_holder(token);
        self.write_tx(|tx| {
            tx.renew_holder(&me, ttl_ns)?;
            Ok(())
        })
    }

    /// Whether runner `token` (on any host) was alive at most `grace_ns` ago.
    pub fn runner_heard_from(&self, token: &str, grace_ns: i64) -> OpResult<bool> {
        self.read(|tx| tx.holder_alive(token, grace_ns))
    }

    /// This server's job runner stops: its holder row goes.
    pub fn runner_gone(&self, token: &str) -> OpResult<()> {
        self.write_tx(|tx| tx.remove_holder(token))
    }

    pub fn recover_jobs(&self, alive: impl Fn(&str) -> bool) -> OpResult<Vec<String>> {
        let stale: Vec<JobRow> = self
            .read(|tx| tx.unstopped_jobs())?
            .into_iter()
            .filter(|j| j.kind == KIND && !j.runner.as_deref().is_some_and(&alive))
            .collect();
        let mut out = Vec::new();
        for j in stale {
            let status = status_of(&j)?;
            if !status.is_final() || status == JobStatus::Canceled {
                let e = JobError::internal(
                    "the server running this dream stopped (restarted or crashed) before the \
                     dream ended",
                );
                let outcome = if status == JobStatus::Canceled {
                    Outcome::Canceled
                } else {
                    Outcome::Failed(e)
                };
                // A pending job never made a draft; finishing it only ends it.
                self.finish_job(&j.id, &outcome, &Config::default(), Path::new("/"))?;
            }
            self.job_stopped(&j.id)?;
            out.push(j.id);
        }
        Ok(out)
    }
}

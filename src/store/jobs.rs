//! Consolidation jobs as stored (the `jobs` table: SQLite migration 13,
//! PostgreSQL migration 3): one row per
//! job, kept after it ends. What the columns mean, and the rules the
//! operations core keeps (`ops/jobs/`):
//!
//! - `status` is `pending`, `running`, `completed`, `failed` or `canceled`;
//!   the last three are final and never change again.
//! - `request` is the job as asked, as JSON (sessions sorted, model,
//!   instructions, output behavior, the input store's API id).
//! - `draft_id` is the draft the job works in while it runs; `output_id` the
//!   store that holds its result once completed (the draft itself for
//!   `update_existing`, a new store for `create_new`).
//! - `runner` names the server process that runs the job while it has not
//!   fully stopped (its command killed, its mount gone); `NULL` once it has.
//!   A job whose runner is gone is failed when a server starts.
//! - `agent`, `session`, `user`, `key_id` say who asked for it.

use super::sql::{params, OptionalExtension, Row};
use super::Txn;
use crate::error::StoreResult;
use crate::ids::StoreId;

/// One job as stored.
#[derive(Clone, Debug)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub store: StoreId,
    pub draft: Option<StoreId>,
    pub output: Option<StoreId>,
    pub request: serde_json::Value,
    pub status: String,
    pub error: Option<serde_json::Value>,
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
    pub key_id: Option<String>,
    pub created_ns: i64,
    pub started_ns: Option<i64>,
    pub ended_ns: Option<i64>,
    pub archived_ns: Option<i64>,
    pub runner: Option<String>,
}

const COLS: &str = "id, kind, store_id, draft_id, output_id, request, status, error, agent, \
     session, \"user\", key_id, created_ns, started_ns, ended_ns, archived_ns, runner";

fn row(r: &Row<'_>) -> StoreResult<JobRow> {
    let request: String = r.get(5)?;
    let error: Option<String> = r.get(7)?;
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        store: StoreId(r.get(2)?),
        draft: r.get::<_, Option<i64>>(3)?.map(StoreId),
        output: r.get::<_, Option<i64>>(4)?.map(StoreId),
        request: serde_json::from_str(&request).unwrap_or(serde_json::Value::Null),
        status: r.get(6)?,
        error: error.and_then(|e| serde_json::from_str(&e).ok()),
        agent: r.get(8)?,
        session: r.get(9)?,
        user: r.get(10)?,
        key_id: r.get(11)?,
        created_ns: r.get(12)?,
        started_ns: r.get(13)?,
        ended_ns: r.get(14)?,
        archived_ns: r.get(15)?,
        runner: r.get(16)?,
    })
}

impl Txn<'_> {
    /// Records a new job.
    pub fn insert_job(&self, j: &JobRow) -> StoreResult<()> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO jobs ({COLS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))?
            .execute(params![
                j.id,
                j.kind,
                j.store.0,
                j.draft.map(|s| s.0),
                j.output.map(|s| s.0),
                j.request.to_string(),
                j.status,
                j.error.as_ref().map(|e| e.to_string()),
                j.agent,
                j.session,
                j.user,
                j.key_id,
                j.created_ns,
                j.started_ns,
                j.ended_ns,
                j.archived_ns,
                j.runner
            ])?;
        Ok(())
    }

    /// A job by id.
    pub fn job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        self.conn
            .prepare_cached(&format!("SELECT {COLS} FROM jobs WHERE id = ?1"))?
            .query_row(params![id], row)
            .optional()
    }

    /// Every job of `kind`, newest first.
    pub fn jobs(&self, kind: &str) -> StoreResult<Vec<JobRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM jobs WHERE kind = ?1 ORDER BY created_ns DESC, id DESC"
        ))?;
        let rows = st.query_map(params![kind], row)?;
        rows.collect::<Result<_, _>>()
    }

    /// The jobs that have not fully stopped: not final, or final with a
    /// runner still cleaning up.
    pub fn unstopped_jobs(&self) -> StoreResult<Vec<JobRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM jobs WHERE status IN ('pending', 'running') \
             OR runner IS NOT NULL ORDER BY created_ns"
        ))?;
        let rows = st.query_map(params![], row)?;
        rows.collect::<Result<_, _>>()
    }

    /// Writes back a job's changing fields (status, draft, output, error,
    /// times, runner).
    pub fn update_job(&self, j: &JobRow) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "UPDATE jobs SET status = ?2, draft_id = ?3, output_id = ?4, error = ?5, \
                 started_ns = ?6, ended_ns = ?7, archived_ns = ?8, runner = ?9 WHERE id = ?1",
            )?
            .execute(params![
                j.id,
                j.status,
                j.draft.map(|s| s.0),
                j.output.map(|s| s.0),
                j.error.as_ref().map(|e| e.to_string()),
                j.started_ns,
                j.ended_ns,
                j.archived_ns,
                j.runner
            ])?;
        Ok(())
    }
}

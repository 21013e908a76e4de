//! `/v1/dreams`: consolidation jobs in the shape of Claude Managed Agents'
//! dreams (create, retrieve, list, cancel, archive) on the operations core
//! (`ops/jobs`); `memfs serve`'s job runner (`crate::jobs`) runs them. memfs
//! calls no model: the job runs the operator's `[jobs] consolidate` command
//! on a mounted draft of the store, so `usage` is always zero.
//!
//! Where memfs differs: an `update_existing` dream ends in a draft of the
//! input store to review and merge (`outputs` names the draft, a memory
//! store of its own), not in the store itself; `session_id` is the memfs
//! session its writes are attributed to (the dream's id).

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Body, Path};
use super::{blocking, time, time_param, AppState, ServeOptions};
use crate::jobs::Runner;
use crate::ops::jobs::{JobQuery, JobStatus, JobView, ModelSpec, NewJob, OutputBehavior};
use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// An input of a dream.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DreamInput {
    MemoryStore { memory_store_id: String },
    Sessions { session_ids: Vec<String> },
}

/// The model, as an object (requests may give just its id as a string).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DreamModel {
    id: String,
    /// Only `standard`.
    #[serde(skip_serializing_if = "Option::is_none")]
    speed: Option<String>,
}

/// Where a dream's result goes.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DreamOutputBehavior {
    CreateNew,
    UpdateExisting { memory_store_id: String },
}

#[derive(Serialize, ToSchema)]
pub struct DreamOutput {
    #[serde(rename = "type")]
    #[schema(example = "memory_store")]
    kind: &'static str,
    memory_store_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct DreamError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

/// Token counts: memfs calls no model, so they are zero.
#[derive(Serialize, ToSchema, Default)]
pub struct DreamUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

/// What memfs adds to a dream.
#[derive(Serialize, ToSchema)]
pub struct DreamExtra {
    /// The input store's slug (`null` once deleted).
    store: Option<String>,
    /// The draft the dream works in (`STORE@DRAFT`): while it runs, and as
    /// the result of an `update_existing` dream.
    draft: Option<String>,
    /// The result store's name, once completed.
    output_store: Option<String>,
    started_at: Option<String>,
    /// Final, and its command and mount are gone.
    stopped: bool,
}

/// A dream.
#[derive(Serialize, ToSchema)]
pub struct Dream {
    /// `drm_...`
    id: String,
    #[serde(rename = "type")]
    #[schema(example = "dream")]
    kind: &'static str,
    /// `pending`, `running`, `completed`, `failed` or `canceled`.
    status: &'static str,
    inputs: Vec<DreamInput>,
    model: DreamModel,
    instructions: Option<String>,
    output_behavior: DreamOutputBehavior,
    outputs: Vec<DreamOutput>,
    session_id: Option<String>,
    error: Option<DreamError>,
    usage: DreamUsage,
    created_at: String,
    ended_at: Option<String>,
    archived_at: Option<String>,
    memfs: DreamExtra,
}

impl From<JobView> for Dream {
    fn from(j: JobView) -> Self {
        let output_behavior = match j.output_behavior {
            OutputBehavior::CreateNew => DreamOutputBehavior::CreateNew,
            OutputBehavior::UpdateExisting => DreamOutputBehavior::UpdateExisting {
                memory_store_id: j.store_api_id.clone(),
            },
        };
        Dream {
            id: j.id,
            kind: "dream",
            status: j.status.as_str(),
            inputs: vec![
                DreamInput::MemoryStore {
                    memory_store_id: j.store_api_id,
                },
                DreamInput::Sessions {
                    session_ids: j.sessions,
                },
            ],
            model: DreamModel {
                id: j.model.id,
                speed: Some(j.model.speed.unwrap_or_else(|| "standard".into())),
            },
            instructions: j.instructions,
            output_behavior,
            outputs: j
                .outputs
                .iter()
                .map(|o| DreamOutput {
                    kind: "memory_store",
                    memory_store_id: o.api_id.clone(),
                })
                .collect(),
            session_id: j.session,
            error: j.error.map(|e| DreamError {
                kind: e.kind,
                message: e.message,
            }),
            usage: DreamUsage::default(),
            created_at: time(j.created_ns),
            ended_at: j.ended_ns.map(time),
            archived_at: j.archived_ns.map(time),
            memfs: DreamExtra {
                store: j.store,
                draft: j.draft,
                output_store: j.outputs.first().map(|o| o.name.clone()),
                started_at: j.started_ns.map(time),
                stopped: j.stopped,
            },
        }
    }
}

/// The body of `POST /v1/dreams` (documentation; the body is decoded by
/// [`decode`] for precise 400s).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateDream {
    /// Exactly one `memory_store` input and one `sessions` input (1 to 100
    /// unique memfs session ids).
    inputs: Vec<DreamInput>,
    /// A model id, or `{"id", "speed": "standard"}`; passed to the command.
    #[schema(value_type = Object)]
    model: Value,
    /// 1 to 4,096 characters; passed to the command.
    instructions: Option<String>,
    /// `create_new` (the default) or `update_existing` (the input store).
    output_behavior: Option<DreamOutputBehavior>,
}

/// A page of dreams.
#[derive(Serialize, ToSchema)]
pub struct DreamPage {
    data: Vec<Dream>,
    next_page: Option<String>,
}

/// The query of `GET /v1/dreams` (documentation; the query is read by hand,
/// because `statuses[]` repeats).
#[derive(Deserialize, utoipa::IntoParams)]
#[allow(dead_code)]
pub struct ListDreams {
    #[param(rename = "created_at[gt]")]
    created_gt: Option<String>,
    #[param(rename = "created_at[lt]")]
    created_lt: Option<String>,
    include_archived: Option<bool>,
    limit: Option<i64>,
    page: Option<String>,
    #[param(rename = "statuses[]")]
    statuses: Option<Vec<String>>,
}

fn field<'a>(body: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

/// Decodes a create request, saying exactly what is wrong with a bad one.
fn decode(body: Value) -> Result<NewJob, ApiError> {
    let bad = |m: String| ApiError::invalid(m);
    let Value::Object(body) = body else {
        return Err(bad("the request body must be a JSON object".into()));
    };
    for k in body.keys() {
        if !["inputs", "model", "instructions", "output_behavior"].contains(&k.as_str()) {
            return Err(bad(format!("unknown field '{k}'")));
        }
    }
    let Some(Value::Array(inputs)) = field(&body, "inputs") else {
        return Err(bad(
            "inputs is required: an array of one memory_store input and one sessions input".into(),
        ));
    };
    let (mut store, mut sessions) = (None, None);
    for (i, v) in inputs.iter().enumerate() {
        let input: DreamInput =
            serde_json::from_value(v.clone()).map_err(|e| bad(format!("inputs[{i}]: {e}")))?;
        match input {
            DreamInput::MemoryStore { memory_store_id } => {
                if store.replace(memory_store_id).is_some() {
                    return Err(bad("inputs must hold exactly one memory_store input".into()));
                }
            }
            DreamInput::Sessions { session_ids } => {
                if sessions.replace(session_ids).is_some() {
                    return Err(bad("inputs must hold exactly one sessions input".into()));
                }
            }
        }
    }
    let Some(store) = store else {
        return Err(bad("inputs must hold one memory_store input".into()));
    };
    let Some(sessions) = sessions else {
        return Err(bad("inputs must hold one sessions input".into()));
    };
    let model = match field(&body, "model") {
        None => {
            return Err(bad(
                "model is required: a model id or {\"id\", \"speed\"}".into()
            ))
        }
        Some(Value::String(id)) => ModelSpec {
            id: id.clone(),
            speed: None,
        },
        Some(v @ Value::Object(_)) => {
            let m: DreamModel =
                serde_json::from_value(v.clone()).map_err(|e| bad(format!("model: {e}")))?;
            ModelSpec {
                id: m.id,
                speed: m.speed,
            }
        }
        Some(_) => return Err(bad("model must be a model id or {\"id\", \"speed\"}".into())),
    };
    let instructions = match field(&body, "instructions") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("instructions must be a string".into())),
    };
    let (output, output_store) = match field(&body, "output_behavior") {
        None => (OutputBehavior::CreateNew, None),
        Some(v) => match serde_json::from_value::<DreamOutputBehavior>(v.clone())
            .map_err(|e| bad(format!("output_behavior: {e}")))?
        {
            DreamOutputBehavior::CreateNew => (OutputBehavior::CreateNew, None),
            DreamOutputBehavior::UpdateExisting { memory_store_id } => {
                (OutputBehavior::UpdateExisting, Some(memory_store_id))
            }
        },
    };
    Ok(NewJob {
        store,
        sessions,
        model,
        instructions,
        output,
        output_store,
    })
}

/// Reads the list query (`statuses[]` repeats, so not with serde's structs).
fn list_query(raw: Option<&str>) -> Result<JobQuery, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?;
    let mut q = JobQuery::default();
    for (k, v) in pairs {
        match k.as_str() {
            "created_at[gt]" => q.created_gt_ns = time_param("created_at[gt]", Some(&v))?,
            "created_at[lt]" => q.created_lt_ns = time_param("created_at[lt]", Some(&v))?,
            "include_archived" => {
                q.include_archived = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "include_archived must be true or false, not '{v}'"
                        )))
                    }
                }
            }
            "limit" => {
                q.limit = Some(v.parse().map_err(|_| {
                    ApiError::invalid(format!("limit must be a number from 1 to 100, not '{v}'"))
                })?)
            }
            "page" => q.page = Some(v),
            "statuses[]" | "statuses" => q.statuses.push(JobStatus::parse(&v)?),
            _ => return Err(ApiError::invalid(format!("unknown query parameter '{k}'"))),
        }
    }
    Ok(q)
}

fn runner_of(opts: &ServeOptions) -> Result<Arc<Runner>, ApiError> {
    match &opts.jobs {
        Some(r) if r.configured() => Ok(r.clone()),
        _ => Err(ApiError::invalid(
            "dreams are not set up on this server: its operator sets [jobs] consolidate in \
             memfs.toml (the command a dream runs)",
        )),
    }
}

#[utoipa::path(post, path = "/v1/dreams", tag = "dreams", request_body = CreateDream,
    responses((status = 200, body = Dream)))]
pub async fn create(
    State(st): State<AppState>,
    Extension(opts): Extension<Arc<ServeOptions>>,
    Auth(p): Auth,
    Body(b): Body<Value>,
) -> Result<Json<Dream>, ApiError> {
    let req = decode(b)?;
    crate::ops::jobs::validate(&req)?;
    let runner = runner_of(&opts)?;
    let ops = st.ops.clone();
    let token = runner.token().to_string();
    let job = blocking(move || ops.create_job(&p, &req, &token)).await?;
    runner.submit(&job.id);
    Ok(Json(job.into()))
}

#[utoipa::path(get, path = "/v1/dreams/{dream_id}", tag = "dreams",
    params(("dream_id" = String, Path)), responses((status = 200, body = Dream)))]
pub async fn retrieve(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Dream>, ApiError> {
    let ops = st.ops.clone();
    let job = blocking(move || ops.job(&p, &id)).await?;
    Ok(Json(job.into()))
}

#[utoipa::path(get, path = "/v1/dreams", tag = "dreams", params(ListDreams),
    responses((status = 200, body = DreamPage)))]
pub async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<DreamPage>, ApiError> {
    let q = list_query(raw.as_deref())?;
    let ops = st.ops.clone();
    let page = blocking(move || ops.list_jobs(&p, &q)).await?;
    Ok(Json(DreamPage {
        data: page.data.into_iter().map(Into::into).collect(),
        next_page: page.next_page,
    }))
}

#[utoipa::path(post, path = "/v1/dreams/{dream_id}/cancel", tag = "dreams",
    params(("dream_id" = String, Path)), responses((status = 200, body = Dream)))]
pub async fn cancel(
    State(st): State<AppState>,
    Extension(opts): Extension<Arc<ServeOptions>>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Dream>, ApiError> {
    let ops = st.ops.clone();
    let job = blocking(move || ops.cancel_job(&p, &id)).await?;
    if let Some(r) = &opts.jobs {
        r.cancel(&job.id);
    }
    Ok(Json(job.into()))
}

#[utoipa::path(post, path = "/v1/dreams/{dream_id}/archive", tag = "dreams",
    params(("dream_id" = String, Path)), responses((status = 200, body = Dream)))]
pub async fn archive(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Dream>, ApiError> {
    let ops = st.ops.clone();
    let job = blocking(move || ops.archive_job(&p, &id)).await?;
    Ok(Json(job.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let cases = [
            (serde_json::json!([]), "JSON object"),
            (serde_json::json!({"model": "m"}), "inputs is required"),
            (
                serde_json::json!({"inputs": [{"type": "memory_store", "memory_store_id": "a"}], "model": "m"}),
                "one sessions input",
            ),
            (
                serde_json::json!({"inputs": [{"type": "sessions", "session_ids": ["s"]}], "model": "m"}),
                "one memory_store input",
            ),
            (
                serde_json::json!({"inputs": [{"type": "files"}], "model": "m"}),
                "inputs[0]",
            ),
            (
                serde_json::json!({"inputs": [{"type": "memory_store", "memory_store_id": "a"},
                    {"type": "sessions", "session_ids": ["s"]}]}),
                "model is required",
            ),
            (
                serde_json::json!({"inputs": [{"type": "memory_store", "memory_store_id": "a"},
                    {"type": "sessions", "session_ids": ["s"]}], "model": 3}),
                "model must be",
            ),
            (
                serde_json::json!({"inputs": [{"type": "memory_store", "memory_store_id": "a"},
                    {"type": "sessions", "session_ids": ["s"]}], "model": "m",
                    "output_behavior": {"type": "overwrite"}}),
                "output_behavior",
            ),
            (
                serde_json::json!({"inputs": [], "model": "m", "colour": 1}),
                "unknown field 'colour'",
            ),
        ];
        for (body, want) in cases {
            let e = decode(body.clone()).err().unwrap();
            assert_eq!(e.class.status, 400, "{body}");
            assert!(e.message.contains(want), "{body}: {}", e.message);
        }
    }

    #[test]
    fn list_queries_take_repeated_statuses() {
        let q = list_query(Some(
            "statuses%5B%5D=running&statuses%5B%5D=failed&limit=5&include_archived=true",
        ))
        .unwrap();
        assert_eq!(q.statuses, vec![JobStatus::Running, JobStatus::Failed]);
        assert_eq!(q.limit, Some(5));
        assert!(q.include_archived);
        assert!(list_query(Some("statuses[]=sleeping")).is_err());
        assert!(list_query(Some("colour=red")).is_err());
    }
}

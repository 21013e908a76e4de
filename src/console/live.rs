//! `GET /console/events`: the change stream for the signed-in person (what
//! their rights let them see), as server-sent events. `console.js` refreshes
//! the parts of a page that show what changed, and warns an open edit form
//! when its file changes underneath.

use super::auth::{run, Who};
use super::page::Fail;
use crate::api::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

pub async fn events(State(st): State<AppState>, Who(s): Who, headers: HeaderMap) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = match resume {
        Some(a) => a,
        None => {
            let ops = st.ops.clone();
            match run(move || ops.last_change_id()).await {
                Ok(a) => a,
                Err(e) => return Fail::from(e).into_response(),
            }
        }
    };
    crate::api::events::change_stream(st, s.principal, after).into_response()
}

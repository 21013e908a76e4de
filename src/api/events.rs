//! `GET /v1/memfs/events`: the change stream as server-sent events. Each event
//! is one audit entry the key may see (`id:` is its position, so a client
//! that reconnects with `Last-Event-ID` misses nothing); a comment every 15 s
//! keeps idle connections open. Streams end when the server drains.

use super::auth::Auth;
use super::error::ApiError;
use super::extract::Query;
use super::{blocking, AppState};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

/// How often the stream looks for new entries.
const POLL: Duration = Duration::from_millis(100);

#[derive(Deserialize, utoipa::IntoParams)]
pub struct EventParams {
    /// Start after this entry (default: `Last-Event-ID`, else now).
    since: Option<i64>,
}

struct Follow {
    st: AppState,
    p: crate::ops::Principal,
    after: i64,
    queue: VecDeque<Event>,
}

#[utoipa::path(get, path = "/v1/memfs/events", tag = "memfs", params(EventParams),
    responses((status = 200, description = "text/event-stream of change events")))]
pub async fn events(
    State(st): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Query(q): Query<EventParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = match q.since.or(resume) {
        Some(a) => a,
        None => {
            let ops = st.ops.clone();
            blocking(move || ops.last_change_id()).await?
        }
    };
    Ok(change_stream(st, p, after))
}

/// The changes `p` may see after entry `after`, as server-sent events until
/// the server drains (the API's stream and the console's).
pub fn change_stream(
    st: AppState,
    p: crate::ops::Principal,
    after: i64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let follow = Follow {
        st,
        p,
        after,
        queue: VecDeque::new(),
    };
    let s = stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(ev) = f.queue.pop_front() {
                return Some((Ok(ev), f));
            }
            if *f.st.shutdown.borrow() {
                return None;
            }
            let (ops, p, after) = (f.st.ops.clone(), f.p.clone(), f.after);
            match blocking(move || ops.changes_after(&p, after, 500)).await {
                Ok((changes, next)) => {
                    f.after = next;
                    for c in changes {
                        let ev = Event::default()
                            .id(c.id.to_string())
                            .event("change")
                            .json_data(&c);
                        match ev {
                            Ok(ev) => f.queue.push_back(ev),
                            Err(e) => tracing::warn!(error = %e, "cannot encode a change event"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "cannot read the change stream"),
            }
            if f.queue.is_empty() {
                let mut down = f.st.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = down.changed() => {}
                }
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

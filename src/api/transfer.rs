//! Streamed export and import of whole stores: `GET
//! /v1/memfs/stores/{id}/export` answers with the archive (memfsctl export's
//! tar format, docs/FORMAT.md) as it is written, and `POST
//! /v1/memfs/import` reads one as it arrives; neither holds a store in
//! memory. The archive is made and read on a blocking thread; channels carry
//! the bytes between it and the connection.

use super::auth::Auth;
use super::error::ApiError;
use super::extract::{Path, Query};
use super::{blocking, AppState};
use crate::interchange::progress::Progress;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use std::io::{Read, Write};
use tokio::sync::mpsc;

/// Bytes a blocking writer hands to the response body, 64 KiB at a time.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 << 10 {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExportParams {
    /// Every version and the audit log, not only the current files.
    history: Option<bool>,
}

#[utoipa::path(get, path = "/v1/memfs/stores/{memory_store_id}/export", tag = "memfs",
    params(("memory_store_id" = String, Path), ExportParams),
    responses((status = 200, description = "the store as a memfs export archive (application/x-tar)")))]
pub async fn export(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(store): Path<String>,
    Query(q): Query<ExportParams>,
) -> Result<Response, ApiError> {
    // Refusals (rights, unknown store) are answered before the stream starts.
    let (ops, p2, s2) = (st.ops.clone(), p.clone(), store.clone());
    let row = blocking(move || {
        p2.require_admin("export stores")?;
        ops.visible_store(&p2, &s2)
    })
    .await?;
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let ops = st.ops.clone();
    let history = q.history.unwrap_or(false);
    tokio::task::spawn_blocking(move || {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let mut silent = Progress::silent();
        match ops.export_archive(&p, &store, history, w, &mut silent) {
            Ok((_, mut w)) => {
                if let Err(e) = w.flush() {
                    tracing::debug!(error = %e, "export stream ended early");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "export failed mid-stream");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let name = format!("{}.tar", row.name);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Bytes of the request body, read by a blocking reader.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ImportParams {
    /// The new store's name (default: the archive's).
    #[serde(rename = "as")]
    #[param(rename = "as")]
    as_name: Option<String>,
}

#[utoipa::path(post, path = "/v1/memfs/import", tag = "memfs", params(ImportParams),
    request_body(content = Vec<u8>, content_type = "application/x-tar",
        description = "a memfs export archive"),
    responses((status = 200, description = "the store imported (all or nothing)", body = Object)))]
pub async fn import(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<ImportParams>,
    body: Body,
) -> Result<Response, ApiError> {
    p.require_admin("import stores").map_err(ApiError::from)?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(16);
    let limit = st.limits.max_import_bytes;
    tokio::spawn(async move {
        let mut s = body.into_data_stream();
        let mut total: u64 = 0;
        while let Some(chunk) = s.next().await {
            let msg = match chunk {
                Ok(b) => {
                    total += b.len() as u64;
                    if total > limit {
                        Err(format!(
                            "the archive is larger than the server's max_import_bytes ({limit})"
                        ))
                    } else {
                        Ok(b)
                    }
                }
                Err(e) => Err(format!("the upload failed: {e}")),
            };
            let stop = msg.is_err();
            if tx.send(msg).await.is_err() || stop {
                break;
            }
        }
    });
    let (ops, config) = (st.ops.clone(), st.config.clone());
    let imported = blocking(move || {
        let reader = ChannelReader {
            rx,
            cur: Bytes::new(),
        };
        let mut silent = Progress::silent();
        ops.import_archive(&p, &config, reader, q.as_name.as_deref(), &mut silent)
    })
    .await?;
    Ok(Json(imported).into_response())
}

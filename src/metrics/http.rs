//! `/metrics`, `/healthz` and `/readyz` over HTTP: an axum router (which `memfs
//! serve` can merge into its own) and a small server on its own thread with a
//! single-threaded tokio runtime, for `memfs mount --metrics ADDR`.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;

/// The Prometheus content type for the text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` (Prometheus text), `GET /healthz` (200 while the process
/// answers) and `GET /readyz` (200 once it serves and its database answers,
/// else 503).
pub fn router() -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
}

async fn metrics() -> impl IntoResponse {
    // Reading the database numbers may touch the disk: off the async thread.
    let body = tokio::task::spawn_blocking(super::render)
        .await
        .unwrap_or_else(|e| format!("# render failed: {e}\n"));
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

async fn readyz() -> impl IntoResponse {
    let reachable = tokio::task::spawn_blocking(super::database_reachable)
        .await
        .unwrap_or(false);
    match (super::is_ready(), reachable) {
        (true, true) => (StatusCode::OK, "ready\n"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "not mounted yet\n"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n"),
    }
}

/// The metrics endpoint of a mount daemon: bound at once (so a taken port
/// fails the mount before anything is mounted), served on its own thread until
/// [`MetricsServer::stop`].
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and starts serving [`router`].
    pub fn start(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("memfs-metrics".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot serve metrics");
                            return;
                        }
                    };
                    let served = axum::serve(listener, router())
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "metrics server failed");
                    }
                });
            })?;
        Ok(MetricsServer {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Where it listens (the port chosen, if 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the metrics thread panicked");
            }
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

//! `memfs serve`: binds the listener (TCP, TLS over TCP, or a unix socket),
//! runs the HTTP front end on a multi-threaded runtime, and drains on
//! SIGTERM/SIGINT: no new connections, streams end, requests in flight finish
//! (for up to 10 s), then exit 0.

use super::{AppState, Limits};
use crate::config::Config;
use crate::ops::Ops;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How `memfs serve` was asked to run.
#[derive(Clone, Debug, Default)]
pub struct ServeArgs {
    /// Overrides `[server] listen`.
    pub listen: Option<String>,
    /// Allow plain HTTP on a non-loopback address.
    pub insecure_plain_http: bool,
}

/// Where to listen.
enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

fn parse_listen(s: &str) -> Result<Addr> {
    if let Some(p) = s.strip_prefix("unix:") {
        if p.is_empty() {
            bail!("listen address 'unix:' needs a socket path (unix:/run/memfs/api.sock)");
        }
        return Ok(Addr::Unix(PathBuf::from(p)));
    }
    s.parse::<SocketAddr>().map(Addr::Tcp).with_context(|| {
        format!("invalid listen address '{s}': use HOST:PORT (127.0.0.1:8420) or unix:PATH")
    })
}

/// Loads the TLS certificate chain and key.
fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid TLS certificate {}", cert.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read TLS key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS key does not match the certificate")?;
    Ok(Arc::new(cfg))
}

/// Accepts TCP connections and hands over those whose TLS handshake
/// completed: handshakes run on their own tasks, so a slow client does not
/// hold up the others.
struct TlsListener {
    rx: mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(tcp: tokio::net::TcpListener, cfg: Arc<rustls::ServerConfig>) -> Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (sock, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock));
                    match hs.await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(c) = self.rx.recv().await {
                return c;
            }
            // The accept task ended (it never does): avoid a busy loop.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves until SIGTERM/SIGINT. `ready` is called with the URL once listening.
pub fn serve(config: &Config, args: &ServeArgs, ready: impl FnOnce(&str)) -> Result<()> {
    let listen = args.listen.clone().unwrap_or(config.server.listen.clone());
    let addr = parse_listen(&listen)?;
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k)?),
        (None, None) => None,
        _ => bail!("[server] needs both tls_cert and tls_key for HTTPS"),
    };
    if let Addr::Tcp(a) = &addr {
        if !a.ip().is_loopback() && tls.is_none() && !args.insecure_plain_http {
            bail!(
                "refusing to serve plain HTTP on {a}: API keys would cross the network in the \
                 clear. Set [server] tls_cert and tls_key, listen on loopback or a unix socket, \
                 or pass --insecure-plain-http"
            );
        }
    }
    let db = crate::daemon::open_db(config, false)?;
    let who = crate::ids::Identity::new(
        "memfs-serve",
        &format!("serve-{}", std::process::id()),
        None,
    );
    crate::settings::seed_from_config(&db, config, &who)?;
    db.set_durable()?;
    crate::metrics::watch_database(config.database.clone());
    // Reads get connections of their own: they neither wait for a write's
    // commit nor see a batch that is not committed yet.
    let readers = (0..config.server.threads.max(2))
        .map(|_| crate::daemon::open_db(config, false).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let mut ops = Ops::new(Arc::new(db)).with_readers(readers);
    ops.max_content_bytes = config.server.max_content_bytes;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut draining = stop_rx.clone();
    // The console's operator is the Unix user running the server (as for
    // memfsctl); its sign-in URL is printed once the server listens.
    let operator = crate::ctl::operator(None)?
        .user
        .unwrap_or_else(|| "operator".into());
    let console = Arc::new(crate::console::Console::new(&operator, tls.is_some()));
    // Consolidation jobs run on threads of this process; jobs of a server
    // that died are failed here.
    let jobs = crate::jobs::Runner::start(ops.clone(), Arc::new(config.clone()))
        .context("cannot start the consolidation job runner")?;
    let state = AppState {
        ops,
        shutdown: stop_rx,
        limits: Arc::new(Limits {
            max_body_bytes: config.server.max_body_bytes,
            max_import_bytes: config.server.max_import_bytes,
        }),
        config: Arc::new(config.clone()),
        console: console.clone(),
    };
    let opts = super::ServeOptions {
        session_mount_root: config.server.session_mount_root.clone(),
        mcp: crate::mcp::http::McpHttpOptions {
            allowed_hosts: config.server.mcp_allowed_hosts.clone(),
            max_body_bytes: config.server.max_body_bytes,
        },
        jobs: Some(jobs.clone()),
    };
    let (app, _) = super::router_with(state, opts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.threads.max(1))
        .max_blocking_threads(64)
        .enable_all()
        .thread_name("memfs-serve")
        .build()
        .context("cannot start the server runtime")?;
    let served = rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let drain = async move {
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = sigint.recv() => {}
            }
            tracing::info!("signal received: draining");
            crate::metrics::set_ready(false);
            crate::notify::stopping();
            let _ = stop_tx.send(true);
        };
        let (url, served): (
            String,
            std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>,
        ) = match addr {
            Addr::Tcp(a) => {
                let tcp = tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen on {a}"))?;
                let local = tcp.local_addr()?;
                match tls {
                    Some(cfg) => {
                        let l = TlsListener::new(tcp, cfg)?;
                        (
                            format!("https://{local}"),
                            Box::pin(async move {
                                axum::serve(l, app).with_graceful_shutdown(drain).await
                            }),
                        )
                    }
                    None => (
                        format!("http://{local}"),
                        Box::pin(async move {
                            axum::serve(tcp, app).with_graceful_shutdown(drain).await
                        }),
                    ),
                }
            }
            Addr::Unix(path) => {
                remove_stale_socket(&path)?;
                let l = tokio::net::UnixListener::bind(&path)
                    .with_context(|| format!("cannot listen on {}", path.display()))?;
                (
                    format!("unix:{}", path.display()),
                    Box::pin(async move {
                        let r = axum::serve(l, app).with_graceful_shutdown(drain).await;
                        let _ = std::fs::remove_file(&path);
                        r
                    }),
                )
            }
        };
        tracing::info!(%url, "serving");
        crate::metrics::set_ready(true);
        crate::notify::ready(&format!("serving {url}"));
        ready(&url);
        console.set_base(&url);
        console.announce();
        // Requests in flight get 10 s after the drain starts.
        let mut served = served;
        tokio::select! {
            r = &mut served => r.context("server failed")?,
            _ = async {
                let _ = draining.changed().await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            } => tracing::warn!("requests still running 10 s after the drain began; exiting"),
        }
        Ok::<_, anyhow::Error>(())
    });
    // Running jobs end failed, their commands killed and mounts gone.
    jobs.shutdown();
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// A socket file left by a server that died is removed; one a live server
/// listens on is not.
fn remove_stale_socket(path: &Path) -> Result<()> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        return Ok(());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!("another server is listening on {}", path.display());
    }
    std::fs::remove_file(path)
        .with_context(|| format!("cannot remove stale socket {}", path.display()))
}

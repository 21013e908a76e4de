//! Connecting to PostgreSQL, over TLS (rustls with ring, the TLS stack memfs
//! already uses for `memfs serve`) unless the URL says `sslmode=disable` or
//! the server is on a Unix socket. The server's certificate is verified
//! against `sslrootcert=FILE` in the URL, else `$PGSSLROOTCERT`, else the
//! system's roots (`/etc/ssl/certs/ca-certificates.crt`), and its name.

use crate::error::{StoreError, StoreResult};
use postgres::config::SslMode;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use postgres::{Client, Config, NoTls, Socket};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `sslrootcert` values taken out of URLs (the driver does not know the key),
/// by application name (see [`take_root_cert`]).
static ROOTS: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Removes `sslrootcert=...` from a URL's query, remembering the file.
pub fn take_root_cert(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let mut kept = Vec::new();
    for kv in query.split('&') {
        match kv.strip_prefix("sslrootcert=") {
            Some(path) => {
                *ROOTS.lock().unwrap_or_else(|p| p.into_inner()) = Some(PathBuf::from(path));
            }
            None => kept.push(kv),
        }
    }
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

fn roots_file() -> PathBuf {
    if let Some(p) = ROOTS.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return p;
    }
    match std::env::var_os("PGSSLROOTCERT") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
    }
}

fn tls_config(roots: &Path) -> StoreResult<Arc<rustls::ClientConfig>> {
    let mut store = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(roots).map_err(|e| {
        StoreError::Invalid(format!(
            "cannot read CA certificates {}: {e}",
            roots.display()
        ))
    })?;
    for c in certs.flatten() {
        let _ = store.add(c);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Invalid(format!("TLS: {e}")))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Opens a connection as the config says.
pub fn connect(config: &Config) -> StoreResult<Client> {
    let unix = config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, postgres::config::Host::Unix(_)));
    let r = if unix || config.get_ssl_mode() == SslMode::Disable {
        config.connect(NoTls)
    } else {
        config.connect(RustlsConnect(tls_config(&roots_file())?))
    };
    r.map_err(|e| super::postgres::classify_connect(&e))
}

#[derive(Clone)]
struct RustlsConnect(Arc<rustls::ClientConfig>);

struct RustlsConnector {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl MakeTlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnector;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnector> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnector {
            config: self.0.clone(),
            name,
        })
    }
}

impl TlsConnect<Socket> for RustlsConnector {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let s = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(Box::new(s)))
        })
    }
}

struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

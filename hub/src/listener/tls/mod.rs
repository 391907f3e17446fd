//! MQTT over TLS (`[listeners.ssl]`, EMQX's port 8883) and over WebSocket over TLS
//! (`[listeners.wss]`, 8084): rustls with the ring provider, TLS 1.2 and 1.3 only, and mutual
//! TLS when `verify = "verify_peer"`.
//!
//! - `config`: the listeners' keys, as EMQX names them;
//! - `peer`: a client certificate's subject as the client's username or id;
//! - `acceptor`: the server configuration made from the PEM files (a file that cannot be read or
//!   parsed stops the start with its key and path), reloaded when they change ([`Certificates`]).

mod acceptor;
mod config;
mod peer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tracing::{debug, info};

pub use acceptor::{Certificates, TlsError};
pub use config::{CertField, PeerCertAs, SslListenerConfig, SslOptions, Verify, WssListenerConfig};

use super::{accept_loop, Admission};
use crate::broker::Broker;
use crate::connection;

/// A client's stream once its TLS handshake is done.
type Tls = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts connections, within `max_connections`, and serves each once its TLS handshake is
/// done (within `handshake_timeout`), until `shutdown` turns true; reloads the certificates
/// when their files change.
pub async fn run(
    listener: TcpListener,
    certs: Arc<Certificates>,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    let config = &broker.config.listeners.ssl;
    let rates = config.rates();
    let admission = Admission::new("ssl", config.max_connections);
    let limit = Duration::from_secs(config.handshake_timeout.max(1));
    let (to, fields) = (broker.clone(), config.peer_cert_as());
    let serve = move |tls: Tls, peer, local, slot| {
        let cert = peer::identity(&tls, fields);
        connection::serve(to.clone(), tls, peer, local, Some(slot), rates, cert)
    };
    accept_tls(listener, admission, limit, certs, shutdown, serve).await;
}

/// As [`run`], with a WebSocket upgrade (on `[listeners.wss] path`) after the TLS handshake.
pub async fn run_wss(
    listener: TcpListener,
    certs: Arc<Certificates>,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    let config = &broker.config.listeners.wss;
    let limit = Duration::from_secs(config.handshake_timeout.max(1));
    let settings = Arc::new(super::ws::WsSettings {
        path: config.path.as_str().into(),
        max_frame_size: config.max_frame_size,
        handshake_timeout: limit,
        rates: config.rates(),
    });
    let admission = Admission::new("wss", config.max_connections);
    let (to, fields) = (broker.clone(), config.peer_cert_as());
    let serve = move |tls: Tls, peer, local, slot| {
        let cert = peer::identity(&tls, fields);
        super::ws::serve(tls, peer, local, settings.clone(), to.clone(), slot, cert)
    };
    accept_tls(listener, admission, limit, certs, shutdown, serve).await;
}

/// The accept loop of a TLS listener: each socket `admission` lets in gets `limit` for its
/// TLS handshake with the certificates in force, then `serve`; the certificates are reloaded
/// while it runs.
async fn accept_tls<S, F>(
    listener: TcpListener,
    admission: Admission,
    limit: Duration,
    certs: Arc<Certificates>,
    shutdown: watch::Receiver<bool>,
    serve: S,
) where
    S: Fn(Tls, SocketAddr, SocketAddr, OwnedSemaphorePermit) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let Ok(local) = listener.local_addr() else { return };
    let fresh = tokio::spawn(certs.clone().keep_fresh(shutdown.clone()));
    accept_loop(listener, admission, shutdown, |stream, peer, slot| {
        let (acceptor, serve) = (certs.acceptor(), serve.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve(tls, peer, local, slot).await,
                Ok(Err(e)) => info!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    })
    .await;
    fresh.abort();
}

//! MQTT over TLS (`[listeners.ssl]`, EMQX's port 8883) and over WebSocket over TLS
//! (`[listeners.wss]`, 8084): rustls with the ring provider, TLS 1.2 and 1.3 only, and mutual
//! TLS when `verify = "verify_peer"`.
//!
//! - `config`: the listeners' keys, as EMQX names them;
//! - `acceptor`: the server configuration made from the PEM files (a file that cannot be read or
//!   parsed stops the start with its key and path), reloaded when they change ([`Certificates`]).

mod acceptor;
mod config;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info};

pub use acceptor::{Certificates, TlsError};
pub use config::{SslListenerConfig, TlsFiles, Verify, WssListenerConfig};

use super::{accept_loop, Admission};
use crate::broker::Broker;
use crate::connection;

/// Accepts connections, within `max_connections`, and serves each once its TLS handshake is
/// done (within `handshake_timeout`), until `shutdown` turns true; reloads the certificates
/// when their files change.
pub async fn run(
    listener: TcpListener,
    certs: Arc<Certificates>,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    let Ok(local) = listener.local_addr() else { return };
    let config = &broker.config.listeners.ssl;
    let admission = Admission::new("ssl", config.max_connections);
    let (rates, limit) = (config.rates(), Duration::from_secs(config.handshake_timeout.max(1)));
    let fresh = tokio::spawn(certs.clone().keep_fresh(shutdown.clone()));
    accept_loop(listener, admission, shutdown, |stream, peer, slot| {
        let (acceptor, broker) = (certs.acceptor(), broker.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => connection::serve(broker, tls, peer, local, Some(slot), rates).await,
                Ok(Err(e)) => info!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    })
    .await;
    fresh.abort();
}

/// As [`run`], with a WebSocket upgrade (on `[listeners.wss] path`) after the TLS handshake.
pub async fn run_wss(
    listener: TcpListener,
    certs: Arc<Certificates>,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    let Ok(local) = listener.local_addr() else { return };
    let config = &broker.config.listeners.wss;
    let limit = Duration::from_secs(config.handshake_timeout.max(1));
    let settings = Arc::new(super::ws::WsSettings {
        path: config.path.as_str().into(),
        max_frame_size: config.max_frame_size,
        handshake_timeout: limit,
        rates: config.rates(),
    });
    let admission = Admission::new("wss", config.max_connections);
    let fresh = tokio::spawn(certs.clone().keep_fresh(shutdown.clone()));
    accept_loop(listener, admission, shutdown, |stream, peer, slot| {
        let (acceptor, broker, settings) = (certs.acceptor(), broker.clone(), settings.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => super::ws::serve(tls, peer, local, settings, broker, slot).await,
                Ok(Err(e)) => info!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    })
    .await;
    fresh.abort();
}

//! MQTT over TLS (`[listeners.ssl]`, EMQX's port 8883): rustls with the ring provider, TLS 1.2
//! and 1.3 only, and mutual TLS when `verify = "verify_peer"`. Certificates and keys are PEM
//! files named as EMQX names them; a file that cannot be read or parsed stops the start with
//! its path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

use super::{accept_loop, Admission};
use crate::broker::Broker;
use crate::connection;
use crate::rate::Rates;

/// Whether clients must show a certificate the CA file vouches for: EMQX's `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// No client certificate is asked for.
    #[default]
    VerifyNone,
    /// A client certificate is asked for and checked against `cacertfile`.
    VerifyPeer,
}

/// `[listeners.ssl]`. It listens once `certfile` and `keyfile` are set (unless `enable = false`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SslListenerConfig {
    /// Whether it listens, given a certificate and a key.
    pub enable: bool,
    /// The address and port it listens on (port 0: any free one).
    pub bind: SocketAddr,
    /// The server's certificate chain, PEM, leaf first.
    pub certfile: Option<PathBuf>,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub keyfile: Option<PathBuf>,
    /// The CA certificates, PEM, that client certificates must chain to (with `verify_peer`).
    pub cacertfile: Option<PathBuf>,
    /// `"verify_peer"` asks clients for a certificate; `"verify_none"` does not.
    pub verify: Verify,
    /// With `verify_peer`: whether a client without a certificate is refused (otherwise it
    /// may connect, and one with a bad certificate is still refused).
    pub fail_if_no_peer_cert: bool,
    /// Connections open at once on this listener, as for TCP.
    pub max_connections: usize,
    /// Seconds the TLS handshake may take before the socket is closed.
    pub handshake_timeout: u64,
    /// As for TCP.
    #[serde(deserialize_with = "crate::rate::deserialize")]
    pub messages_rate: Option<crate::rate::Rate>,
    /// As for TCP.
    #[serde(deserialize_with = "crate::rate::deserialize")]
    pub bytes_rate: Option<crate::rate::Rate>,
}

impl Default for SslListenerConfig {
    fn default() -> Self {
        SslListenerConfig {
            enable: true,
            bind: ([0, 0, 0, 0], 8883).into(),
            certfile: None,
            keyfile: None,
            cacertfile: None,
            verify: Verify::VerifyNone,
            fail_if_no_peer_cert: false,
            max_connections: crate::config::MAX_CONNECTIONS,
            handshake_timeout: 15,
            messages_rate: None,
            bytes_rate: None,
        }
    }
}

impl SslListenerConfig {
    /// Whether the listener runs: enabled, with a certificate.
    pub fn is_on(&self) -> bool {
        self.enable && self.certfile.is_some()
    }

    /// The per-client limits of this listener.
    pub fn rates(&self) -> Rates {
        Rates { messages: self.messages_rate, bytes: self.bytes_rate }
    }
}

/// Why the TLS listener could not be set up; each names the file or the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or held nothing usable.
    #[error("[listeners.ssl] {key} = {path}: {why}")]
    File {
        /// The config key that names the file.
        key: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// A key the others need is missing.
    #[error("[listeners.ssl] {0}")]
    Missing(&'static str),
    /// rustls refused the combination (a key that does not match the certificate, say).
    #[error("[listeners.ssl] certfile and keyfile do not make a TLS server: {0}")]
    Config(String),
}

fn file_error(key: &'static str, path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File { key, path: path.display().to_string(), why: why.to_string() }
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, e))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// The acceptor for `config`: the certificate chain and key, TLS 1.2 and 1.3, and the client
/// verifier `verify` asks for.
pub fn acceptor(config: &SslListenerConfig) -> Result<TlsAcceptor, TlsError> {
    let certfile = config.certfile.as_deref().ok_or(TlsError::Missing("certfile is not set"))?;
    let keyfile = config.keyfile.as_deref().ok_or(TlsError::Missing("keyfile is not set (certfile is)"))?;
    let chain = certificates("certfile", certfile)?;
    let key = PrivateKeyDer::from_pem_file(keyfile).map_err(|e| file_error("keyfile", keyfile, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match config.verify {
        Verify::VerifyNone => builder.with_no_client_auth(),
        Verify::VerifyPeer => {
            let cafile =
                config.cacertfile.as_deref().ok_or(TlsError::Missing("verify = \"verify_peer\" needs cacertfile"))?;
            let mut roots = RootCertStore::empty();
            for ca in certificates("cacertfile", cafile)? {
                roots.add(ca).map_err(|e| file_error("cacertfile", cafile, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if config.fail_if_no_peer_cert { verifier } else { verifier.allow_unauthenticated() };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Config(e.to_string()))?)
        }
    };
    let server = builder.with_single_cert(chain, key).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// Accepts connections, within `max_connections`, and serves each once its TLS handshake is
/// done (within `handshake_timeout`), until `shutdown` turns true.
pub async fn run(listener: TcpListener, acceptor: TlsAcceptor, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let Ok(local) = listener.local_addr() else { return };
    let config = &broker.config.listeners.ssl;
    let admission = Admission::new("ssl", config.max_connections);
    let (rates, limit) = (config.rates(), Duration::from_secs(config.handshake_timeout.max(1)));
    accept_loop(listener, admission, shutdown, |stream, peer, slot| {
        let (acceptor, broker) = (acceptor.clone(), broker.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => connection::serve(broker, tls, peer, local, Some(slot), rates).await,
                Ok(Err(e)) => info!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    })
    .await;
}

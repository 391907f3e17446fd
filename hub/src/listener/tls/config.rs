//! `[listeners.ssl]` and `[listeners.wss]`, with the keys EMQX gives them: the certificates
//! in each one's `ssl_options` table ([`SslOptions`]), as EMQX nests them.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

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

/// Which part of a client certificate's subject stands for the client's username or client
/// id: EMQX's `peer_cert_as_username` and `peer_cert_as_clientid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertField {
    /// The subject's Common Name.
    Cn,
    /// The whole subject, as `CN=..., O=...`.
    Dn,
}

/// `[listeners.<name>.ssl_options]`: what a TLS listener's certificates are made of.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SslOptions {
    /// `ssl` or `wss`, for messages; set by the listener, not read from the file.
    #[serde(skip)]
    pub listener: &'static str,
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
}

/// `[listeners.ssl]`. It listens once `ssl_options.certfile` is set (unless `enable = false`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SslListenerConfig {
    /// Whether it listens, given a certificate.
    pub enable: bool,
    /// The address and port it listens on (port 0: any free one).
    pub bind: SocketAddr,
    /// Its certificates.
    pub ssl_options: SslOptions,
    /// The client's username, taken from its certificate (`"cn"` or `"dn"`) instead of CONNECT.
    pub peer_cert_as_username: Option<CertField>,
    /// The client's id, taken from its certificate (`"cn"` or `"dn"`) instead of CONNECT.
    pub peer_cert_as_clientid: Option<CertField>,
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
            ssl_options: SslOptions::default(),
            peer_cert_as_username: None,
            peer_cert_as_clientid: None,
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
        self.enable && self.ssl_options.certfile.is_some()
    }

    /// Its certificates, named as this listener's.
    pub fn certificates(&self) -> SslOptions {
        SslOptions { listener: "ssl", ..self.ssl_options.clone() }
    }

    /// What stands for a client's identity in its certificate.
    pub fn peer_cert_as(&self) -> PeerCertAs {
        PeerCertAs { username: self.peer_cert_as_username, client_id: self.peer_cert_as_clientid }
    }

    /// The per-client limits of this listener.
    pub fn rates(&self) -> Rates {
        Rates { messages: self.messages_rate, bytes: self.bytes_rate }
    }
}

/// `[listeners.wss]`: MQTT over WebSocket over TLS, as browsers on an `https://` page need it:
/// the keys of `[listeners.ws]` and of `[listeners.ssl]`. It listens once
/// `ssl_options.certfile` is set (unless `enable = false`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WssListenerConfig {
    /// Whether it listens, given a certificate.
    pub enable: bool,
    /// The address and port it listens on (port 0: any free one).
    pub bind: SocketAddr,
    /// The HTTP path that upgrades to MQTT, as for `[listeners.ws]`.
    pub path: String,
    /// Its certificates, as for `[listeners.ssl]`.
    pub ssl_options: SslOptions,
    /// As for `[listeners.ssl]`.
    pub peer_cert_as_username: Option<CertField>,
    /// As for `[listeners.ssl]`.
    pub peer_cert_as_clientid: Option<CertField>,
    /// Connections open at once on this listener, as for TCP.
    pub max_connections: usize,
    /// Seconds the TLS handshake, and then the HTTP upgrade, may take each.
    pub handshake_timeout: u64,
    /// As for `[listeners.ws]`.
    pub max_frame_size: usize,
    /// As for TCP.
    #[serde(deserialize_with = "crate::rate::deserialize")]
    pub messages_rate: Option<crate::rate::Rate>,
    /// As for TCP.
    #[serde(deserialize_with = "crate::rate::deserialize")]
    pub bytes_rate: Option<crate::rate::Rate>,
}

impl Default for WssListenerConfig {
    fn default() -> Self {
        let ws = crate::config::WsListenerConfig::default();
        WssListenerConfig {
            enable: true,
            bind: ([0, 0, 0, 0], 8084).into(),
            path: ws.path,
            ssl_options: SslOptions::default(),
            peer_cert_as_username: None,
            peer_cert_as_clientid: None,
            max_connections: ws.max_connections,
            handshake_timeout: ws.handshake_timeout,
            max_frame_size: ws.max_frame_size,
            messages_rate: None,
            bytes_rate: None,
        }
    }
}

impl WssListenerConfig {
    /// Whether the listener runs: enabled, with a certificate.
    pub fn is_on(&self) -> bool {
        self.enable && self.ssl_options.certfile.is_some()
    }

    /// Its certificates, named as this listener's.
    pub fn certificates(&self) -> SslOptions {
        SslOptions { listener: "wss", ..self.ssl_options.clone() }
    }

    /// What stands for a client's identity in its certificate.
    pub fn peer_cert_as(&self) -> PeerCertAs {
        PeerCertAs { username: self.peer_cert_as_username, client_id: self.peer_cert_as_clientid }
    }

    /// The per-client limits of this listener.
    pub fn rates(&self) -> Rates {
        Rates { messages: self.messages_rate, bytes: self.bytes_rate }
    }
}

/// `peer_cert_as_username` and `peer_cert_as_clientid` of a listener.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerCertAs {
    /// What becomes the username.
    pub username: Option<CertField>,
    /// What becomes the client id.
    pub client_id: Option<CertField>,
}

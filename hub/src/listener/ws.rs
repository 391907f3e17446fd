//! MQTT over WebSocket, as browsers (MQTT.js, Paho JS) speak it: binary frames on one HTTP path,
//! subprotocol `mqtt`. The frames are bridged onto an in-memory byte stream, so that the
//! connection code is the same as for TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use super::{accept_loop, Admission};
use crate::broker::Broker;
use crate::connection::{self, CertIdentity};
use crate::rate::Rates;

/// Subprotocols accepted, in order of preference (`mqttv3.1` is what old Paho JS offers).
const SUBPROTOCOLS: &[&str] = &["mqtt", "mqttv3.1"];

/// What a WebSocket listener (`ws`, or `wss` once TLS is done) serves its clients with.
pub(super) struct WsSettings {
    /// The HTTP path that upgrades to MQTT.
    pub(super) path: Arc<str>,
    /// The largest frame, and message, taken.
    pub(super) max_frame_size: usize,
    /// How long the HTTP upgrade may take.
    pub(super) handshake_timeout: Duration,
    /// The per-client limits.
    pub(super) rates: Rates,
}

/// Accepts connections until `shutdown` turns true.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let Ok(local) = listener.local_addr() else { return };
    let cfg = &broker.config.listeners.ws;
    let settings = Arc::new(WsSettings {
        path: cfg.path.as_str().into(),
        max_frame_size: cfg.max_frame_size,
        handshake_timeout: Duration::from_secs(cfg.handshake_timeout.max(1)),
        rates: cfg.rates(),
    });
    let admission = Admission::new("ws", cfg.max_connections);
    accept_loop(listener, admission, shutdown, |stream, peer, slot| {
        tokio::spawn(serve(stream, peer, local, settings.clone(), broker.clone(), slot, CertIdentity::default()));
    })
    .await;
}

/// Serves one client: the WebSocket handshake, then MQTT over the frames.
pub(super) async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    settings: Arc<WsSettings>,
    broker: Arc<Broker>,
    slot: OwnedSemaphorePermit,
    cert: CertIdentity,
) {
    let limit = Some(settings.max_frame_size);
    let config = WebSocketConfig::default().max_frame_size(limit).max_message_size(limit);
    let handshake = upgrade(stream, peer, &settings.path, config);
    let Ok(Some(ws)) = tokio::time::timeout(settings.handshake_timeout, handshake).await else {
        debug!(%peer, "no WebSocket upgrade within handshake_timeout, or a failed one: closing");
        return;
    };
    let (bridge, mqtt_side) = tokio::io::duplex(64 * 1024);
    let mqtt = connection::serve(broker, mqtt_side, peer, local, Some(slot), settings.rates, cert);
    tokio::join!(relay(ws, bridge), mqtt);
}

/// The WebSocket handshake on `path`, with the subprotocol the client offers (404 elsewhere).
// tungstenite's handshake callback signature fixes the error type.
#[allow(clippy::result_large_err)]
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    path: &str,
    config: WebSocketConfig,
) -> Option<WebSocketStream<S>> {
    let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != path {
            let mut err = ErrorResponse::new(Some(format!("MQTT is served at {path}")));
            *err.status_mut() = StatusCode::NOT_FOUND;
            return Err(err);
        }
        let offered = req.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
        let chosen = SUBPROTOCOLS.iter().find(|p| offered.split(',').any(|o| o.trim().eq_ignore_ascii_case(p)));
        if let Some(p) = chosen {
            resp.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(p));
        }
        Ok(resp)
    };
    match tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)).await {
        Ok(ws) => Some(ws),
        Err(e) => {
            debug!(%peer, error = %e, "WebSocket handshake failed");
            None
        }
    }
}

/// Copies binary frames into `bridge` and what the connection writes there back out as frames,
/// until either side ends; the other then ends too (the connection sees end of stream).
async fn relay<S: AsyncRead + AsyncWrite + Unpin>(ws: WebSocketStream<S>, bridge: DuplexStream) {
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut from_mqtt, mut to_mqtt) = tokio::io::split(bridge);
    let inbound = async move {
        while let Some(Ok(frame)) = ws_rx.next().await {
            match frame {
                Message::Binary(data) if to_mqtt.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_mqtt.shutdown().await;
    };
    let outbound = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_mqtt.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_tx.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = ws_tx.close().await;
    };
    tokio::select! {
        _ = inbound => {}
        _ = outbound => {}
    }
}

//! How a connection ends: why ([`Exit`]), the DISCONNECT that says so to an MQTT 5 client, the
//! log line and the event, and the session and the will handed back to the broker.

use std::time::Duration;

use ntex_bytes::ByteString;
use ntex_mqtt::error::DecodeError;
use ntex_mqtt::v5::codec as v5;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};
use weir_rules::event_kind::EventKind;

use super::Connection;
use crate::protocol::{InboundError, Packet};
use crate::session::Kick;
use crate::transport::Transport;
use v5::DisconnectReasonCode as Rc;

/// How long the goodbye may take to write before the socket is closed anyway.
const GOODBYE_WRITE: Duration = Duration::from_secs(1);
/// How long, and how much, a connection the server closes reads and discards after its goodbye.
/// Closing a socket with unread input sends a reset, which can destroy the DISCONNECT before
/// the client has read it; reading until the client closes its side avoids that.
const GOODBYE_DRAIN: Duration = Duration::from_millis(500);
const GOODBYE_DRAIN_BYTES: usize = 1024 * 1024;

/// Why a connection ended; decides the will and the v5 DISCONNECT we send.
#[derive(Debug)]
pub(super) enum Exit {
    /// The client sent DISCONNECT; `with_will` for v5 reason 0x04.
    ClientDisconnect {
        /// Whether the client asked for its will anyway (v5 reason 0x04).
        with_will: bool,
    },
    /// The socket closed or failed without DISCONNECT.
    PeerGone(String),
    /// The broker asked the connection to leave.
    Kicked(Kick),
    /// The client was silent for longer than its keep alive allows.
    KeepAliveTimeout,
    /// The client read nothing for this long while we had packets for it (`send_timeout`).
    SendTimeout(Duration),
    /// The client broke the protocol: we send DISCONNECT with this reason (v5) and close.
    Violation(Rc, String),
    /// Authorization closed the connection: a denied action with `deny_action = "disconnect"`,
    /// or an expired token (v5 DISCONNECT 0x87).
    NotAuthorized(String),
    /// The store could not keep what an acknowledgement would promise: the acknowledgements
    /// are dropped unsent, and the client, told 0x80, sends its messages again on reconnect.
    NotKept(String),
}

impl Exit {
    /// The reason of the DISCONNECT we send, if we send one.
    fn reason_code(&self) -> Option<Rc> {
        match self {
            Exit::Kicked(Kick::TakenOver) => Some(Rc::SessionTakenOver),
            Exit::Kicked(Kick::Shutdown) => Some(Rc::ServerShuttingDown),
            Exit::KeepAliveTimeout => Some(Rc::KeepAliveTimeout),
            Exit::Violation(rc, _) => Some(*rc),
            Exit::NotKept(_) => Some(Rc::UnspecifiedError),
            Exit::NotAuthorized(_) => Some(Rc::NotAuthorized),
            Exit::ClientDisconnect { .. } | Exit::PeerGone(_) | Exit::SendTimeout(_) => None,
        }
    }

    /// The `reason` of `$events/client_disconnected`, as EMQX names it.
    fn event_reason(&self) -> &'static str {
        match self {
            Exit::ClientDisconnect { .. } => "normal",
            Exit::PeerGone(_) => "tcp_closed",
            Exit::Kicked(Kick::TakenOver) => "takenover",
            Exit::Kicked(Kick::Shutdown) => "shutdown",
            Exit::KeepAliveTimeout => "keepalive_timeout",
            Exit::SendTimeout(_) => "send_timeout",
            Exit::Violation(..) => "protocol_error",
            Exit::NotKept(_) => "internal_error",
            Exit::NotAuthorized(_) => "not_authorized",
        }
    }

    /// Whether the will is published: not after a normal DISCONNECT, nor at shutdown.
    fn publishes_will(&self) -> bool {
        !matches!(self, Exit::ClientDisconnect { with_will: false } | Exit::Kicked(Kick::Shutdown))
    }
}

/// A refused packet as the violation it is: too large, a protocol error, a Topic Alias of 0, or
/// malformed.
pub(super) fn decode_exit(e: InboundError) -> Exit {
    let rc = match e {
        InboundError::Decode(DecodeError::MaxSizeExceeded { .. }) => Rc::PacketTooLarge,
        InboundError::Protocol(_) => Rc::ProtocolError,
        InboundError::TopicAliasZero => Rc::TopicAliasInvalid,
        InboundError::Decode(_) => Rc::MalformedPacket,
    };
    Exit::Violation(rc, e.to_string())
}

impl<S: Transport> Connection<S> {
    /// Hands the session and the will back to the broker, then says goodbye as the exit
    /// requires. The session goes first: whoever takes it over never waits on this socket.
    pub(super) async fn finish(mut self, exit: Exit) {
        self.log_exit(&exit);
        self.event(EventKind::ClientDisconnected, |i| i.disconnected(exit.event_reason()));
        // Acknowledgements of this burst that the store has not kept yet never go out unkept.
        if self.broker.must_keep(&self.burst) {
            let kept = tokio::time::timeout(GOODBYE_WRITE, self.broker.kept(&mut self.burst)).await;
            if !matches!(kept, Ok(Ok(()))) {
                self.out = None;
            }
        }
        let will = self.will.take().filter(|_| exit.publishes_will());
        self.broker.disconnect(&self.session, self.generation, will.map(|w| *w));
        if let (Some(rc), true) = (exit.reason_code(), self.version.is_v5()) {
            let reason_string = match &exit {
                Exit::Violation(_, why) | Exit::NotKept(why) | Exit::NotAuthorized(why) => {
                    Some(ByteString::from(why.clone()))
                }
                _ => None,
            };
            self.send(Packet::Disconnect(v5::Disconnect { reason_code: rc, reason_string, ..Default::default() }));
        }
        let _ = tokio::time::timeout(GOODBYE_WRITE, self.flush()).await;
        let _ = tokio::time::timeout(GOODBYE_WRITE, self.stream.shutdown()).await;
        if exit.reason_code().is_some() {
            drain_input(&mut self.stream).await;
        }
    }

    fn log_exit(&self, exit: &Exit) {
        let (client_id, peer) = (&self.client_id, self.peer);
        match exit {
            Exit::Violation(rc, why) => {
                warn!(%client_id, %peer, reason_code = u8::from(*rc), reason = %why, "closing connection: protocol violation")
            }
            Exit::NotAuthorized(why) => warn!(%client_id, %peer, reason = %why, "closing connection: not authorized"),
            Exit::PeerGone(why) => info!(%client_id, %peer, reason = %why, "client disconnected without DISCONNECT"),
            Exit::NotKept(why) => {
                warn!(%client_id, %peer, reason = %why, "closing connection: the store could not keep its messages")
            }
            Exit::SendTimeout(after) => warn!(
                %client_id,
                %peer,
                send_timeout_ms = after.as_millis() as u64,
                "closing connection: the client read nothing for send_timeout"
            ),
            other => info!(%client_id, %peer, reason = ?other, "client disconnected"),
        }
    }
}

/// Reads and discards input until the client closes, for at most [`GOODBYE_DRAIN`] and
/// [`GOODBYE_DRAIN_BYTES`]: the graceful end of a close the server started, once its side is
/// shut down.
pub(super) async fn drain_input<S: Transport>(stream: &mut S) {
    let deadline = tokio::time::Instant::now() + GOODBYE_DRAIN;
    let mut scratch = vec![0u8; 16 * 1024];
    let mut drained = 0;
    while drained < GOODBYE_DRAIN_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => return,
        }
    }
}

/// Closes a connection the server refuses before it has a session: its side shut down (within
/// [`GOODBYE_WRITE`]), then [`drain_input`].
pub(super) async fn close_refused<S: Transport>(stream: &mut S) {
    let _ = tokio::time::timeout(GOODBYE_WRITE, stream.shutdown()).await;
    drain_input(stream).await;
}

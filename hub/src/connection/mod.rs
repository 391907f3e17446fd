//! One client connection, from the first byte to the last, by phase:
//!
//! - `handshake`: the protocol sniffed, CONNECT read and checked, the session opened through
//!   the broker (or taken over), CONNACK;
//! - the packet loop (`Connection::run`), with `io` (reads sized to the traffic, vectored
//!   writes), `inbound` (what each packet from the client means), `outbound` (deliveries
//!   from the session's mailbox onto the wire, within the inflight window, with topic aliases)
//!   and `flow` (waiting for room when the broker says so: back-pressure);
//! - `authorize`: each PUBLISH and SUBSCRIBE checked against `[authorization]`;
//! - `goodbye`: why it ended, the DISCONNECT that says so, and the session and will handed
//!   back to the broker.
//!
//! A connection is one tokio task. It waits on four things at once: bytes from the socket,
//! deliveries in its session's mailbox, a request to leave (takeover, shutdown) and the keep
//! alive deadline. Output is encoded into one buffer and written once per wake-up. Everything
//! it asks of the node goes through the [`Broker`]'s operations.

mod authorize;
mod flow;
mod goodbye;
mod handshake;
mod inbound;
mod io;
mod outbound;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ntex_bytes::{BytePages, ByteString, BytesMut};
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use weir_rules::event_kind::EventKind;
use weir_rules::value::Columns;

use crate::broker::{Broker, Burst};
use crate::events::ClientInfo;
use crate::message::{ClientId, Will};
use crate::protocol::{Codec, Version};
use crate::rate::{Limiter, Rates};
use crate::session::{Kick, Session};
use crate::transport::Transport;
use goodbye::Exit;
use outbound::OutAliases;

/// Serves one client on `stream` until it disconnects.
/// Shutdown reaches the connection through its session (the broker kicks every session).
/// `local` is the listener's address the client reached, for events; `slot`, the listener's
/// place for it (see [`Admission`](crate::listener::Admission)), given back when it ends, and
/// `rates` its per-client limits; `cert`, what its TLS client certificate says it is, if the
/// listener takes the client's identity from there. (`slot` is held
/// here, not by a wrapping future: a future that awaits one it captured stores it twice.)
pub async fn serve<S: Transport>(
    broker: Arc<Broker>,
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
    rates: Rates,
    cert: CertIdentity,
) {
    let _slot = slot;
    // The one-off phases are boxed: a task is as large as its largest state, and an idle
    // connection should pay only for the packet loop.
    let Some(mut conn) = Box::pin(handshake::accept(broker, stream, peer, local, rates, cert)).await else {
        return;
    };
    let exit = conn.run().await;
    Box::pin(conn.finish(exit)).await;
}

/// A client's identity taken from its TLS client certificate (`peer_cert_as_username`,
/// `peer_cert_as_clientid`): it replaces what its CONNECT says.
#[derive(Debug, Clone, Default)]
pub struct CertIdentity {
    /// The username to use.
    pub username: Option<String>,
    /// The client id to use.
    pub client_id: Option<String>,
}

/// A connected, accepted client.
struct Connection<S> {
    broker: Arc<Broker>,
    stream: S,
    peer: SocketAddr,
    codec: Codec,
    version: Version,
    /// Bytes read and not yet decoded.
    rbuf: BytesMut,
    /// How much room the next read gets: grows while reads fill it, shrinks when idle, so that
    /// an idle connection holds little memory and a busy one reads in large batches.
    read_hint: usize,
    /// Encoded packets not yet written; `None` while there are none, as even an empty
    /// `BytePages` holds a page list of its own (about 300 bytes an idle connection would keep).
    /// Encoders take it through [`pages`].
    out: Option<BytePages>,
    /// This read burst's publishes, counted and handed to the broker at its end; it also says
    /// whom this client must wait for (back-pressure).
    burst: Burst,
    /// Wall-clock time of the last read, stamped on the messages it carried (one clock read per
    /// batch, not per message).
    now_wall: SystemTime,
    session: Arc<Session>,
    client_id: ClientId,
    /// Fires when the broker asks the connection to leave.
    kick: oneshot::Receiver<Kick>,
    /// This connection's ownership of the session: once another connection has taken it, this
    /// one touches it no more.
    generation: u64,
    /// Silence allowed before the client is dropped; `None` for keep alive 0.
    keepalive_timeout: Option<Duration>,
    last_recv: Instant,
    /// Boxed: most clients have none, and every byte here is paid by every connection.
    will: Option<Box<Will>>,
    /// Outgoing QoS 1/2 messages allowed in flight: min(client Receive Maximum, max_inflight).
    window: usize,
    /// Topic aliases the client set (v5, client to broker).
    alias_in: HashMap<u16, ByteString>,
    /// Topic aliases we assigned (broker to client).
    alias_out: OutAliases,
    /// What `$events/...` say about this client.
    info: Box<ClientInfo>,
    /// The listener's `messages_rate` and `bytes_rate` for this client; `None` (the default,
    /// infinity) costs nothing.
    limiter: Option<Box<Limiter>>,
    /// What authentication granted, and the client's cache of authorization results; `None`
    /// when there is nothing to check (no source and no token rules, or no authorization at all),
    /// which costs nothing.
    access: Option<Box<Granted>>,
}

/// What authentication granted a client that authorization has to look at.
struct Granted {
    grant: crate::auth::Grant,
    cache: Option<Box<crate::auth::acl::AclCache>>,
    /// When its token expires, if the connection is closed then.
    expires: Option<Instant>,
}

impl<S: Transport> Connection<S> {
    /// The packet loop.
    async fn run(&mut self) -> Exit {
        loop {
            self.pump_mailbox();
            if self.broker.must_keep(&self.burst) {
                if let Err(exit) = Box::pin(self.wait_until_kept()).await {
                    return exit;
                }
            }
            if let Err(exit) = self.flush_or_leave().await {
                return exit;
            }
            if let Some(pause) = self.limiter.as_ref().and_then(|l| l.pause()) {
                if let Err(exit) = Box::pin(self.pause_reads(pause)).await {
                    return exit;
                }
            }
            if self.broker.must_wait(&self.burst) {
                let congested = self.burst.is_congested();
                if let Err(exit) = Box::pin(self.wait_for_room()).await {
                    return exit;
                }
                // Go on with the packets that were read but not handled before the pause.
                if congested {
                    if let Err(exit) = self.handle_input() {
                        return exit;
                    }
                    continue;
                }
            }
            let keepalive = self.keepalive_timeout.map(|t| self.last_recv + t);
            let expires = self.access.as_ref().and_then(|a| a.expires);
            let deadline = match (keepalive, expires) {
                (Some(k), Some(e)) => Some(k.min(e)),
                (k, e) => k.or(e),
            };
            let session = self.session.clone();
            tokio::select! {
                read = self.stream.read_into(&mut self.rbuf, self.read_hint) => match read {
                    Ok(0) => return Exit::PeerGone("closed by peer".into()),
                    Ok(n) => {
                        if let Err(exit) = self.after_read(n) {
                            return exit;
                        }
                    }
                    Err(e) => return Exit::PeerGone(e.to_string()),
                },
                _ = session.notify.notified() => {}
                // Shutdown arrives this way too: the broker kicks every session.
                kicked = &mut self.kick => return Exit::Kicked(kicked.unwrap_or(Kick::TakenOver)),
                _ = sleep_until_opt(deadline) => {
                    if expires.is_some_and(|e| e <= Instant::now()) {
                        return Exit::NotAuthorized("its token expired".into());
                    }
                    return Exit::KeepAliveTimeout;
                }
            }
        }
    }

    /// Hands an event to the rules, its columns built from this client's [`ClientInfo`] only
    /// if a rule selects it.
    fn event(&self, kind: EventKind, build: impl FnOnce(&ClientInfo) -> Columns) {
        self.broker.event(kind, || build(&self.info));
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The pages that packets are encoded into, made on first use.
fn pages(out: &mut Option<BytePages>) -> &mut BytePages {
    out.get_or_insert_with(BytePages::default)
}

#[cfg(test)]
mod tests {
    /// Every connection's task stores this future; idle memory per connection depends on it.
    #[test]
    fn connection_task_stays_small() {
        let broker = crate::broker::Broker::new(crate::Config::default(), None);
        let (a, _b) = tokio::io::duplex(16);
        let addr = "127.0.0.1:1".parse().expect("addr");
        let fut =
            super::serve(broker, a, addr, addr, None, crate::rate::Rates::default(), super::CertIdentity::default());
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 1536, "the connection future grew to {size} bytes; box rarely used states");
    }
}

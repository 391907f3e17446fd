//! Network listeners: each accepts sockets, within its `max_connections` ([`Admission`]), and
//! hands every one to [`crate::connection::serve`]: `tcp` as they come, `tls` after the TLS
//! handshake, `ws` after the HTTP upgrade.

pub mod tcp;
pub mod tls;
pub mod ws;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::warn;

/// At most one "listener full" warning per this many seconds.
const WARN_EVERY_SECS: u64 = 10;

/// A listener's bound on the connections open at once.
#[derive(Debug)]
pub struct Admission {
    /// One permit per connection allowed; a connection holds its own until it ends.
    slots: Arc<Semaphore>,
    /// `max_connections`, for the log.
    max: usize,
    /// The listener's name, for the log.
    name: &'static str,
    /// When the last warning went out (seconds since `started`; `u64::MAX`: never).
    last_warning: AtomicU64,
    started: Instant,
}

impl Admission {
    /// At most `max` connections at once on the listener `name`.
    pub fn new(name: &'static str, max: usize) -> Admission {
        let max = max.min(Semaphore::MAX_PERMITS);
        Admission {
            slots: Arc::new(Semaphore::new(max)),
            max,
            name,
            last_warning: AtomicU64::new(u64::MAX),
            started: Instant::now(),
        }
    }

    /// A slot for a new connection from `peer`, or `None` (logged) when the listener is full:
    /// the caller then closes the socket.
    pub fn admit(&self, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        let permit = self.slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            let now = self.started.elapsed().as_secs();
            let last = self.last_warning.load(Ordering::Relaxed);
            if last == u64::MAX || now >= last + WARN_EVERY_SECS {
                self.last_warning.store(now, Ordering::Relaxed);
                warn!(listener = self.name, max_connections = self.max, %peer, "listener full: closing new connections");
            }
        }
        permit
    }
}

/// Accepts sockets on `listener` until `shutdown` turns true, and hands each one that
/// `admission` lets in to `serve` (with Nagle's algorithm off: small MQTT packets must not wait
/// for it). A failed accept (out of file descriptors, say) backs off instead of spinning.
pub async fn accept_loop(
    listener: TcpListener,
    admission: Admission,
    mut shutdown: watch::Receiver<bool>,
    mut serve: impl FnMut(TcpStream, SocketAddr, OwnedSemaphorePermit),
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = admission.admit(peer) else { continue };
                    let _ = stream.set_nodelay(true);
                    serve(stream, peer, slot);
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

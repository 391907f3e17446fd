//! MQTT over plain TCP.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::warn;

use super::Admission;
use crate::broker::Broker;
use crate::connection;

/// Accepts connections, within `max_connections`, until `shutdown` turns true.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let Ok(local) = listener.local_addr() else { return };
    let admission = Admission::new("tcp", broker.config.listeners.tcp.max_connections);
    let rates = broker.config.listeners.tcp.rates();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = admission.admit(peer) else { continue };
                    // Small MQTT packets must not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection::serve(broker.clone(), stream, peer, local, Some(slot), rates));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

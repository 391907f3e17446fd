//! MQTT over plain TCP.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{accept_loop, Admission};
use crate::broker::Broker;
use crate::connection;

/// Accepts connections, within `max_connections`, until `shutdown` turns true.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let Ok(local) = listener.local_addr() else { return };
    let admission = Admission::new("tcp", broker.config.listeners.tcp.max_connections);
    let rates = broker.config.listeners.tcp.rates();
    accept_loop(listener, admission, shutdown, |stream, peer, slot| {
        tokio::spawn(connection::serve(broker.clone(), stream, peer, local, Some(slot), rates, Default::default()));
    })
    .await;
}

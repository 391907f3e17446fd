//! The bridge: one MQTT 3.1.1 connection to another broker (rumqttc), reconnecting by itself,
//! and the count of the acknowledgements it receives.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet};
use tokio::sync::{Mutex, Notify};
use weir_types::QoS;

use super::config::MqttConfig;
use crate::sink::WriteError;

/// How long a bridged batch may wait for its acknowledgements.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);
/// Wait before reconnecting to a remote broker that is down.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// A connection to another broker.
pub(super) struct Remote {
    client: AsyncClient,
    qos: QoS,
    retain: bool,
    /// Acknowledgements (or sends, for QoS 0) counted by the event loop.
    confirmed: Arc<AtomicU64>,
    confirmed_changed: Arc<Notify>,
    pub(super) connected: Arc<AtomicBool>,
    /// One batch at a time, so that counting confirmations tells whose they are.
    writing: Mutex<()>,
}

impl Remote {
    /// Connects to `server` (`host:port`) in the background.
    pub(super) fn start(name: &str, server: &str, config: &MqttConfig) -> Result<Remote, String> {
        let (host, port) = server.rsplit_once(':').ok_or_else(|| format!("server: `{server}` is not host:port"))?;
        let port: u16 = port.parse().map_err(|_| format!("server: `{port}` is not a port"))?;
        let id = config.clientid.clone().unwrap_or_else(|| format!("weir-bridge-{name}"));
        let mut options = MqttOptions::new(id, host, port);
        options.set_keep_alive(Duration::from_secs(60));
        options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        if let Some(user) = &config.username {
            options.set_credentials(user, config.password.clone().unwrap_or_default());
        }
        if let Some(tls) = config.ssl.as_ref().filter(|t| t.enable) {
            let rustls = tls.rustls(&[])?;
            options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::new(
                rustls,
            ))));
        }
        let (client, events) = AsyncClient::new(options, 1024);
        let remote = Remote {
            client,
            qos: config.qos,
            retain: config.retain,
            confirmed: Arc::default(),
            confirmed_changed: Arc::default(),
            connected: Arc::default(),
            writing: Mutex::new(()),
        };
        tokio::spawn(run_events(
            name.to_string(),
            events,
            config.qos,
            remote.confirmed.clone(),
            remote.confirmed_changed.clone(),
            remote.connected.clone(),
        ));
        Ok(remote)
    }

    /// Publishes a batch's messages and waits until the remote broker has acknowledged each.
    pub(super) async fn publish(&self, messages: Vec<(String, Vec<u8>)>) -> Result<(), WriteError> {
        let _one_batch = self.writing.lock().await;
        if !self.connected.load(Ordering::Relaxed) {
            return Err(WriteError::transient("not connected to the remote broker"));
        }
        let want = self.confirmed.load(Ordering::Relaxed) + messages.len() as u64;
        for (topic, payload) in messages {
            self.client
                .publish(topic, bridge_qos(self.qos), self.retain, payload)
                .await
                .map_err(|e| WriteError::transient(format!("bridge: {e}")))?;
        }
        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
        loop {
            let changed = self.confirmed_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.confirmed.load(Ordering::Relaxed) >= want {
                return Ok(());
            }
            if !self.connected.load(Ordering::Relaxed) {
                return Err(WriteError::transient("the remote broker went away before acknowledging"));
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(WriteError::transient("the remote broker did not acknowledge in time"));
            }
        }
    }
}

/// Drives the bridge's connection: counts confirmations, reconnects after errors.
async fn run_events(
    name: String,
    mut events: EventLoop,
    qos: QoS,
    confirmed: Arc<AtomicU64>,
    changed: Arc<Notify>,
    connected: Arc<AtomicBool>,
) {
    let mut logged = false;
    loop {
        match events.poll().await {
            Ok(event) => {
                let counts = match &event {
                    Event::Incoming(Packet::ConnAck(_)) => {
                        connected.store(true, Ordering::Relaxed);
                        if logged {
                            tracing::info!(sink = %name, "bridge connected again");
                        }
                        logged = false;
                        false
                    }
                    Event::Incoming(Packet::PubAck(_)) => qos == QoS::AtLeastOnce,
                    Event::Incoming(Packet::PubComp(_)) => qos == QoS::ExactlyOnce,
                    Event::Outgoing(Outgoing::Publish(_)) => qos == QoS::AtMostOnce,
                    _ => false,
                };
                if counts {
                    confirmed.fetch_add(1, Ordering::Relaxed);
                    changed.notify_waiters();
                }
            }
            Err(e) => {
                connected.store(false, Ordering::Relaxed);
                changed.notify_waiters();
                if !logged {
                    tracing::warn!(sink = %name, error = %e, "bridge disconnected; reconnecting");
                    logged = true;
                }
                tokio::time::sleep(RECONNECT_AFTER).await;
            }
        }
    }
}

/// A QoS as rumqttc names it.
fn bridge_qos(qos: QoS) -> rumqttc::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

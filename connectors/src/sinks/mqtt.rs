//! `type = "mqtt"`: rows published as MQTT messages, into this broker (EMQX's republish) or, with
//! `server`, into another one (a bridge).
//!
//! Topic and payload are templates; `qos` and `retain` are fixed per sink. Into this broker, a row
//! is confirmed once the broker has routed it; the rules that write into this sink never see the
//! message again, so a rule cannot loop on its own output. To another broker, the sink keeps one
//! connection (rumqttc, MQTT 3.1.1, reconnecting by itself) and a batch is confirmed when the
//! remote broker has acknowledged each message (PUBACK for QoS 1, PUBCOMP for QoS 2, sent for
//! QoS 0); a batch not acknowledged within `request_timeout` is sent again (at least once).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet};
use tokio::sync::{Mutex, Notify};
use weir_types::QoS;

use crate::config::MqttConfig;
use crate::sink::{Sink, WriteError};
use crate::sinks::SinkError;
use crate::template::{Row, Template};

/// How long a bridged batch may wait for its acknowledgements.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);
/// Wait before reconnecting to a remote broker that is down.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// The broker Weir runs, as the MQTT sink sees it (`hub` implements it).
pub trait LocalBroker: Send + Sync {
    /// Publishes a message on behalf of the sink `origin`. An error is transient (the broker
    /// cannot take it now) and the row is retried.
    fn publish(&self, origin: &str, topic: &str, payload: Vec<u8>, qos: QoS, retain: bool) -> Result<(), String>;
}

/// Where the local broker will be: sinks start before the broker exists.
pub type LocalSlot = Arc<OnceLock<Arc<dyn LocalBroker>>>;

/// An MQTT destination.
pub struct MqttSink {
    name: String,
    topic: Template,
    payload: Template,
    qos: QoS,
    retain: bool,
    target: Target,
}

enum Target {
    Local(LocalSlot),
    Remote(Remote),
}

/// A connection to another broker.
struct Remote {
    client: AsyncClient,
    /// Acknowledgements (or sends, for QoS 0) counted by the event loop.
    confirmed: Arc<AtomicU64>,
    confirmed_changed: Arc<Notify>,
    connected: Arc<AtomicBool>,
    /// One batch at a time, so that counting confirmations tells whose they are.
    writing: Mutex<()>,
}

impl MqttSink {
    pub fn new(name: &str, config: &MqttConfig, local: &LocalSlot) -> Result<MqttSink, SinkError> {
        let invalid = |message: String| SinkError::Invalid { sink: name.to_string(), message };
        let topic = Template::parse(&config.topic).map_err(|e| invalid(format!("topic: {e}")))?;
        let payload = match &config.payload {
            Some(p) => Template::parse(p).map_err(|e| invalid(format!("payload: {e}")))?,
            None => Template::whole_row(),
        };
        let target = match &config.server {
            None => Target::Local(local.clone()),
            Some(server) => Target::Remote(Remote::start(name, server, config).map_err(invalid)?),
        };
        Ok(MqttSink { name: name.to_string(), topic, payload, qos: config.qos, retain: config.retain, target })
    }

    /// A row's topic, refused if it is not one a message can be published to.
    fn topic_of(&self, row: &Row) -> Result<String, WriteError> {
        let topic = self.topic.render(row);
        if topic.is_empty() || topic.contains(['+', '#', '\0']) {
            return Err(WriteError::rejected(format!("`{topic}` is not a topic to publish to")));
        }
        Ok(topic)
    }
}

impl Remote {
    fn start(name: &str, server: &str, config: &MqttConfig) -> Result<Remote, String> {
        let (host, port) = server.rsplit_once(':').ok_or_else(|| format!("server: `{server}` is not host:port"))?;
        let port: u16 = port.parse().map_err(|_| format!("server: `{port}` is not a port"))?;
        let id = config.clientid.clone().unwrap_or_else(|| format!("weir-bridge-{name}"));
        let mut options = MqttOptions::new(id, host, port);
        options.set_keep_alive(Duration::from_secs(60));
        options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        if let Some(user) = &config.username {
            options.set_credentials(user, config.password.clone().unwrap_or_default());
        }
        let (client, events) = AsyncClient::new(options, 1024);
        let remote = Remote {
            client,
            confirmed: Arc::default(),
            confirmed_changed: Arc::default(),
            connected: Arc::default(),
            writing: Mutex::new(()),
        };
        let qos = config.qos;
        tokio::spawn(run_events(
            name.to_string(),
            events,
            qos,
            remote.confirmed.clone(),
            remote.confirmed_changed.clone(),
            remote.connected.clone(),
        ));
        Ok(remote)
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

impl Sink for MqttSink {
    async fn write(&self, rows: &[Row]) -> Result<(), WriteError> {
        match &self.target {
            Target::Local(slot) => {
                let broker = slot.get().ok_or_else(|| WriteError::transient("the broker is starting"))?;
                for row in rows {
                    let topic = self.topic_of(row)?;
                    let payload = self.payload.render(row).into_bytes();
                    broker
                        .publish(&self.name, &topic, payload, self.qos, self.retain)
                        .map_err(WriteError::transient)?;
                }
                Ok(())
            }
            Target::Remote(remote) => {
                let _one_batch = remote.writing.lock().await;
                if !remote.connected.load(Ordering::Relaxed) {
                    return Err(WriteError::transient("not connected to the remote broker"));
                }
                let mut messages = Vec::with_capacity(rows.len());
                for row in rows {
                    messages.push((self.topic_of(row)?, self.payload.render(row).into_bytes()));
                }
                let want = remote.confirmed.load(Ordering::Relaxed) + messages.len() as u64;
                for (topic, payload) in messages {
                    remote
                        .client
                        .publish(topic, bridge_qos(self.qos), self.retain, payload)
                        .await
                        .map_err(|e| WriteError::transient(format!("bridge: {e}")))?;
                }
                let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
                loop {
                    let changed = remote.confirmed_changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    if remote.confirmed.load(Ordering::Relaxed) >= want {
                        return Ok(());
                    }
                    if !remote.connected.load(Ordering::Relaxed) {
                        return Err(WriteError::transient("the remote broker went away before acknowledging"));
                    }
                    if tokio::time::timeout_at(deadline, changed).await.is_err() {
                        return Err(WriteError::transient("the remote broker did not acknowledge in time"));
                    }
                }
            }
        }
    }

    async fn check(&self) -> Result<(), String> {
        match &self.target {
            Target::Local(slot) => slot.get().map(|_| ()).ok_or_else(|| "the broker is starting".to_string()),
            Target::Remote(remote) if remote.connected.load(Ordering::Relaxed) => Ok(()),
            Target::Remote(_) => Err("not connected to the remote broker".into()),
        }
    }
}

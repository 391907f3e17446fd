//! `$SYS/brokers/<node>/...`: the broker's own state, published periodically like EMQX does.

use std::sync::Arc;
use std::time::Duration;

use ntex_bytes::{ByteString, Bytes};
use tokio::sync::watch;
use weir_types::QoS;

use crate::broker::Broker;
use crate::message::Message;
use crate::metrics::Metrics;

/// The version string published at `$SYS/brokers/<node>/version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The topics and payloads of one publication round.
pub fn snapshot(broker: &Broker) -> Vec<(String, String)> {
    let node = &broker.config.node.name;
    let m = &broker.metrics;
    let base = format!("$SYS/brokers/{node}");
    vec![
        ("$SYS/brokers".to_string(), node.clone()),
        (format!("{base}/version"), VERSION.to_string()),
        (format!("{base}/sysdescr"), "Weir MQTT broker".to_string()),
        (format!("{base}/uptime"), format!("{} seconds", broker.started.elapsed().as_secs())),
        (format!("{base}/datetime"), httpdate_now()),
        (format!("{base}/stats/connections/count"), Metrics::get(&m.connections).to_string()),
        (format!("{base}/stats/sessions/count"), broker.session_count().to_string()),
        (format!("{base}/stats/topics/count"), broker.topic_count().to_string()),
        (format!("{base}/stats/retained/count"), broker.retained_count().to_string()),
        (format!("{base}/metrics/messages/received"), Metrics::get(&m.messages_received).to_string()),
        (format!("{base}/metrics/messages/sent"), Metrics::get(&m.messages_sent).to_string()),
        (
            format!("{base}/metrics/messages/dropped"),
            (Metrics::get(&m.dropped_queue_full) + Metrics::get(&m.dropped_expired)).to_string(),
        ),
        (format!("{base}/metrics/bytes/received"), Metrics::get(&m.bytes_received).to_string()),
        (format!("{base}/metrics/bytes/sent"), Metrics::get(&m.bytes_sent).to_string()),
    ]
}

/// Seconds since the Unix epoch, as text; `$SYS` consumers parse it easily.
fn httpdate_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    secs.to_string()
}

/// Publishes [`snapshot`] every `interval` until `shutdown` turns true.
pub async fn run(broker: Arc<Broker>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for (topic, payload) in snapshot(&broker) {
                    let msg = Message::new(ByteString::from(topic), Bytes::from(payload), QoS::AtMostOnce, false);
                    broker.dispatch(Arc::new(msg));
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

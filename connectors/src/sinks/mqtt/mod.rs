//! `type = "mqtt"`: rows published as MQTT messages, into this broker (EMQX's republish) or, with
//! `server`, into another one (a bridge).
//!
//! Topic and payload are templates; `qos` and `retain` are fixed per sink. Into this broker, a row
//! is confirmed once the broker has routed it; the rules that write into this sink never see the
//! message again, so a rule cannot loop on its own output. To another broker, the sink keeps one
//! connection (rumqttc, MQTT 3.1.1, reconnecting by itself) and a batch is confirmed when the
//! remote broker has acknowledged each message (PUBACK for QoS 1, PUBCOMP for QoS 2, sent for
//! QoS 0); a batch not acknowledged within `request_timeout` is sent again (at least once).

mod bridge;
mod config;
mod sink;

use std::sync::{Arc, OnceLock};

use weir_types::topic::TopicError;
use weir_types::QoS;

pub use config::MqttConfig;
pub use sink::MqttSink;

/// The broker Weir runs, as the MQTT sink sees it (`weir-hub` implements it in `broker/mod.rs`).
pub trait LocalBroker: Send + Sync {
    /// Publishes a message on behalf of the sink `origin`, as the broker's own: routed to the
    /// subscribers and handed to every rule except those that write into `origin`.
    fn publish(
        &self,
        origin: &str,
        topic: &str,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), RepublishError>;
}

/// Why the broker did not take a republished message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepublishError {
    /// The row's topic is not one a message can be published to: the row is refused.
    #[error("`{topic}` is not a topic to publish to: {reason}")]
    Topic {
        /// The topic the template rendered.
        topic: String,
        /// What is wrong with it.
        reason: TopicError,
    },
}

/// Where the local broker will be: sinks start before the broker exists.
pub type LocalSlot = Arc<OnceLock<Arc<dyn LocalBroker>>>;

//! The MQTT destination: rows rendered into messages, published into this broker or bridged.

use std::sync::atomic::Ordering;

use weir_types::topic::validate_name;
use weir_types::QoS;

use super::bridge::Remote;
use super::config::MqttConfig;
use super::{LocalSlot, RepublishError};
use crate::row::Row;
use crate::sink::{CheckError, Sink, WriteError};
use crate::sinks::SinkError;
use crate::template::Template;

/// An MQTT destination.
pub struct MqttSink {
    name: String,
    topic: Template,
    payload: Template,
    qos: QoS,
    retain: bool,
    target: Target,
}

/// Where the messages go.
enum Target {
    /// This broker, once it is up.
    Local(LocalSlot),
    /// Another broker.
    Remote(Remote),
}

impl MqttSink {
    /// A sink for `config`: into this broker through `local`, or a bridge to `server`.
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
        match validate_name(&topic) {
            Ok(_) => Ok(topic),
            Err(reason) => Err(WriteError::rejected(RepublishError::Topic { topic, reason })),
        }
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
                    broker.publish(&self.name, &topic, payload, self.qos, self.retain).map_err(WriteError::rejected)?;
                }
                Ok(())
            }
            Target::Remote(remote) => {
                let mut messages = Vec::with_capacity(rows.len());
                for row in rows {
                    messages.push((self.topic_of(row)?, self.payload.render(row).into_bytes()));
                }
                remote.publish(messages).await
            }
        }
    }

    async fn check(&self) -> Result<(), CheckError> {
        match &self.target {
            Target::Local(slot) => slot.get().map(|_| ()).ok_or_else(|| CheckError::new("the broker is starting")),
            Target::Remote(remote) if remote.connected.load(Ordering::Relaxed) => Ok(()),
            Target::Remote(_) => Err(CheckError::new("not connected to the remote broker")),
        }
    }
}

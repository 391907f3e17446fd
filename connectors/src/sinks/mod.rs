//! One module per destination, each a [`crate::sink::Sink`], and [`start`] to run a configured
//! sink behind the delivery driver.

pub mod http;
pub mod kafka;
pub mod mqtt;
mod pg_copy;
pub mod sql;

use std::path::Path;
use std::sync::Arc;

use crate::config::{SinkConfig, SinkKind};
use crate::driver::{self, SinkHandle};

/// Why a sink could not start. Each variant names the sink and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("[sinks.{sink}]: {message}")]
    Invalid { sink: String, message: String },
    #[error("[sinks.{sink}]: {source}")]
    Buffer { sink: String, source: crate::buffer::BufferError },
}

/// Starts the sink `name`, its buffer in `data_dir/sinks/<name>`, on the current tokio runtime.
/// `local` is where an MQTT sink without a `server` publishes.
pub fn start(
    name: &str,
    config: &SinkConfig,
    data_dir: &Path,
    local: &mqtt::LocalSlot,
) -> Result<Arc<SinkHandle>, SinkError> {
    let dir = data_dir.join("sinks").join(name);
    let d = &config.delivery;
    let kind = config.kind.type_name();
    let started = match &config.kind {
        SinkKind::Postgres(c) => driver::start(name, kind, sql::SqlSink::new(name, c, true, d.max_inflight)?, d, &dir),
        SinkKind::Sqlite(c) => driver::start(name, kind, sql::SqlSink::new(name, c, false, d.max_inflight)?, d, &dir),
        SinkKind::Http(c) => driver::start(name, kind, http::HttpSink::new(name, c, d.batch_size)?, d, &dir),
        SinkKind::Mqtt(c) => driver::start(name, kind, mqtt::MqttSink::new(name, c, local)?, d, &dir),
        SinkKind::Kafka(c) => driver::start(name, kind, kafka::KafkaSink::new(name, c)?, d, &dir),
    };
    started.map_err(|source| SinkError::Buffer { sink: name.to_string(), source })
}

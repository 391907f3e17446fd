//! The destinations, what configures them ([`SinkConfig`]) and [`start`]. One folder per
//! destination, each with the same inside: `mod.rs` (what it does, in its
//! module doc), `config.rs` (its keys in `[sinks.<name>]`), `sink.rs` (the [`crate::sink::Sink`]
//! it implements) and `tests.rs`. [`start`] runs a configured sink behind the delivery driver.
//!
//! - [`http`]: rows to an HTTP endpoint;
//! - [`kafka`]: rows as Kafka records (librdkafka);
//! - [`mqtt`]: rows as MQTT messages, into this broker (republish) or another (a bridge);
//! - [`postgres`] and [`sqlite`]: rows into a table or through a statement, sharing
//!   [`sql_common`].

mod config;
pub mod http;
pub mod kafka;
pub mod mqtt;
pub mod postgres;
pub mod sql_common;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

pub use config::{SinkConfig, SinkKind};

use crate::driver::{self, SinkHandle};

/// Why a sink could not start. Each variant names the sink and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A key of its config has a value the sink cannot use.
    #[error("[sinks.{sink}]: {message}")]
    Invalid {
        /// The sink's name.
        sink: String,
        /// Which key, and what is wrong with it.
        message: String,
    },
    /// Its durable buffer could not be opened.
    #[error("[sinks.{sink}]: {source}")]
    Buffer {
        /// The sink's name.
        sink: String,
        /// What the buffer said.
        source: crate::buffer::BufferError,
    },
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
        SinkKind::Postgres(c) => {
            driver::start(name, kind, postgres::PostgresSink::open(name, c, d.max_inflight)?, d, &dir)
        }
        SinkKind::Sqlite(c) => driver::start(name, kind, sqlite::SqliteSink::open(name, c)?, d, &dir),
        SinkKind::Http(c) => driver::start(name, kind, http::HttpSink::new(name, c, d.batch_size)?, d, &dir),
        SinkKind::Mqtt(c) => driver::start(name, kind, mqtt::MqttSink::new(name, c, local)?, d, &dir),
        SinkKind::Kafka(c) => driver::start(name, kind, kafka::KafkaSink::new(name, c)?, d, &dir),
    };
    started.map_err(|source| SinkError::Buffer { sink: name.to_string(), source })
}

//! `[sinks.<name>]`: a destination (`type = ...` and its keys) and how rows reach it (buffer,
//! batching, retries), all in the one table.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use weir_types::QoS;

use crate::buffer::FullPolicy;

/// One sink as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    pub delivery: DeliveryConfig,
    pub kind: SinkKind,
}

/// How rows reach any destination. Keys sit beside the destination's own in `[sinks.<name>]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Rows per batch written to the destination (500; when not set, 2,000 for Kafka and
    /// 10,000 for PostgreSQL).
    pub batch_size: usize,
    /// A batch is closed once its rows reach this many bytes (as buffered JSON).
    pub batch_bytes: usize,
    /// How long a batch waits for more rows once its first row is in (milliseconds).
    pub batch_time_ms: u64,
    /// Batches written at the same time. More than 1 may reorder rows, as in EMQX.
    pub max_inflight: usize,
    /// Bound of the durable buffer on disk, in bytes.
    pub max_buffer_bytes: u64,
    /// When the buffer is full: `block` (pause the rules, then the publishers) or `drop_oldest`.
    pub buffer_full: FullPolicy,
    /// Another sink that receives the rows this one's destination refuses, with the reason.
    pub dead_letter: Option<String>,
    /// Seconds between two checks of the destination while nothing is written.
    pub health_check_interval: u64,
    /// Longest wait between two retries of a batch (milliseconds); waits double from 100 ms.
    pub max_retry_backoff_ms: u64,
}

/// The keys of [`DeliveryConfig`], told apart from the destination's own.
const DELIVERY_KEYS: [&str; 9] = [
    "batch_size",
    "batch_bytes",
    "batch_time_ms",
    "max_inflight",
    "max_buffer_bytes",
    "buffer_full",
    "dead_letter",
    "health_check_interval",
    "max_retry_backoff_ms",
];

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            batch_size: 500,
            batch_bytes: 1024 * 1024,
            batch_time_ms: 10,
            max_inflight: 4,
            max_buffer_bytes: 256 * 1024 * 1024,
            buffer_full: FullPolicy::Block,
            dead_letter: None,
            health_check_interval: 15,
            max_retry_backoff_ms: 30_000,
        }
    }
}

/// The destination, by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkKind {
    Kafka(KafkaConfig),
    Postgres(SqlConfig),
    Sqlite(SqlConfig),
    Http(HttpConfig),
    Mqtt(MqttConfig),
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Kafka(_) => "kafka",
            SinkKind::Postgres(_) => "postgres",
            SinkKind::Sqlite(_) => "sqlite",
            SinkKind::Http(_) => "http",
            SinkKind::Mqtt(_) => "mqtt",
        }
    }
}

/// `type = "kafka"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topic template.
    pub topic: String,
    /// Key template; without one, rows spread over partitions.
    pub key: Option<String>,
    /// Value template (default `${.}`: the row as JSON).
    pub value: Option<String>,
    /// Header name → value template.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `none` (default), `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default = "no_compression")]
    pub compression: String,
    /// `key` (default: rows with one key go to one partition) or `random`.
    #[serde(default = "key_partitioning")]
    pub partitioning: String,
}

fn no_compression() -> String {
    "none".into()
}

fn key_partitioning() -> String {
    "key".into()
}

/// `type = "postgres"` and `type = "sqlite"`: either `table` or `sql`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// `postgres://user:password@host:port/database`, or `sqlite:path.db`.
    pub url: String,
    /// Rows go into this table, each field into the column of its name.
    pub table: Option<String>,
    /// Or: a statement whose `${field}` placeholders are bound as parameters.
    pub sql: Option<String>,
    /// Statements run once on connecting (for example `CREATE TABLE IF NOT EXISTS ...`).
    #[serde(default)]
    pub init_sql: Vec<String>,
}

/// `type = "http"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// URL template (`http://` or `https://`).
    pub url: String,
    /// `POST` (default), `PUT` or `PATCH`.
    #[serde(default = "post")]
    pub method: String,
    /// Header name → value template.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template for one row (default `${.}`: the row as JSON).
    pub body: Option<String>,
    /// How a batch's bodies go in one request: `json` (an array) or `ndjson` (one per line).
    #[serde(default = "json_format")]
    pub format: String,
    /// Seconds before a request counts as failed (and is retried).
    #[serde(default = "request_timeout")]
    pub request_timeout: u64,
}

fn post() -> String {
    "POST".into()
}

fn json_format() -> String {
    "json".into()
}

fn request_timeout() -> u64 {
    15
}

/// `type = "mqtt"`: into this broker (no `server`) or another (`server = "host:port"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Topic template.
    pub topic: String,
    /// 0, 1 or 2.
    #[serde(default)]
    pub qos: QoS,
    #[serde(default)]
    pub retain: bool,
    /// Payload template (default `${.}`: the row as JSON).
    pub payload: Option<String>,
    /// A remote broker, `host:port`: the sink is then a bridge.
    pub server: Option<String>,
    /// The bridge's client id (default `weir-bridge-<sink name>`).
    pub clientid: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Rows per batch for Kafka when `batch_size` is not set: librdkafka batches and pipelines by
/// itself, so what bounds small batches is the wait for each one's acknowledgements (500-row
/// batches reached about half the throughput of 2,000-row ones; docs/BENCHMARKS.md).
const KAFKA_BATCH_SIZE: usize = 2000;
/// Rows per batch for PostgreSQL when `batch_size` is not set: each batch is a `COPY` and a
/// commit, whose fixed cost on the server made 500-row batches take twice the server's time of
/// 10,000-row ones (docs/BENCHMARKS.md).
const POSTGRES_BATCH_SIZE: usize = 10_000;

impl<'de> Deserialize<'de> for SinkConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut keys = serde_json::Map::deserialize(d)?;
        let delivery: serde_json::Map<_, _> = DELIVERY_KEYS.iter().filter_map(|k| keys.remove_entry(*k)).collect();
        let batch_size_set = delivery.contains_key("batch_size");
        let mut delivery =
            DeliveryConfig::deserialize(serde_json::Value::Object(delivery)).map_err(D::Error::custom)?;
        let kind = SinkKind::deserialize(serde_json::Value::Object(keys)).map_err(D::Error::custom)?;
        if !batch_size_set {
            match kind {
                SinkKind::Kafka(_) => delivery.batch_size = KAFKA_BATCH_SIZE,
                SinkKind::Postgres(_) => delivery.batch_size = POSTGRES_BATCH_SIZE,
                _ => {}
            }
        }
        Ok(SinkConfig { delivery, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<SinkConfig, String> {
        SinkConfig::deserialize(v).map_err(|e| e.to_string())
    }

    #[test]
    fn delivery_and_destination_keys_share_the_table() {
        let c = parse(json!({"type": "sqlite", "url": "sqlite:x.db", "table": "t", "batch_size": 10, "buffer_full": "drop_oldest"}))
            .unwrap();
        assert_eq!(c.delivery.batch_size, 10);
        assert_eq!(c.delivery.buffer_full, FullPolicy::DropOldest);
        assert!(matches!(c.kind, SinkKind::Sqlite(SqlConfig { table: Some(_), .. })));
        // Every delivery key is told apart from the destination's keys.
        let all: serde_json::Map<_, _> = DELIVERY_KEYS.iter().map(|k| (k.to_string(), json!(null))).collect();
        let mut full = serde_json::to_value(all).unwrap();
        let defaults = DeliveryConfig::default();
        full["batch_size"] = json!(defaults.batch_size);
        full["batch_bytes"] = json!(defaults.batch_bytes);
        full["batch_time_ms"] = json!(defaults.batch_time_ms);
        full["max_inflight"] = json!(defaults.max_inflight);
        full["max_buffer_bytes"] = json!(defaults.max_buffer_bytes);
        full["buffer_full"] = json!("block");
        full["health_check_interval"] = json!(1);
        full["max_retry_backoff_ms"] = json!(1);
        assert!(DeliveryConfig::deserialize(full).is_ok());
    }

    #[test]
    fn kafka_and_postgres_batches_are_larger_unless_set() {
        let batch_size = |mut v: serde_json::Value, extra: serde_json::Value| {
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(v).unwrap().delivery.batch_size
        };
        let kafka = json!({"type": "kafka", "brokers": "b:9092", "topic": "t"});
        assert_eq!(batch_size(kafka.clone(), json!({})), KAFKA_BATCH_SIZE);
        assert_eq!(batch_size(kafka, json!({"batch_size": 7})), 7);
        let postgres = json!({"type": "postgres", "url": "postgres://h/d", "table": "t"});
        assert_eq!(batch_size(postgres.clone(), json!({})), POSTGRES_BATCH_SIZE);
        assert_eq!(batch_size(postgres, json!({"batch_size": 7})), 7);
        let sqlite = parse(json!({"type": "sqlite", "url": "sqlite:x.db", "table": "t"})).unwrap();
        assert_eq!(sqlite.delivery.batch_size, DeliveryConfig::default().batch_size);
    }

    #[test]
    fn unknown_and_missing_keys_are_named() {
        let err = parse(json!({"type": "http", "url": "http://x", "bdy": "${.}"})).unwrap_err();
        assert!(err.contains("bdy"), "{err}");
        let err = parse(json!({"type": "kafka", "topic": "t"})).unwrap_err();
        assert!(err.contains("brokers"), "{err}");
        let err = parse(json!({"type": "ftp"})).unwrap_err();
        assert!(err.contains("ftp"), "{err}");
        let err = parse(json!({"type": "sqlite", "url": "sqlite:x", "batch_size": "many"})).unwrap_err();
        assert!(err.contains("batch_size") || err.contains("invalid type"), "{err}");
    }
}

//! `[sinks.<name>]`: a destination (`type = ...` and its own keys, each sink's `config.rs`) and
//! how rows reach it (buffer, batching, retries: the driver's [`DeliveryConfig`]), all in the
//! one table.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::sqlite::SqliteConfig;
use super::{http::HttpConfig, kafka, kafka::KafkaConfig, mqtt::MqttConfig, postgres, postgres::PostgresConfig};
use crate::driver::DeliveryConfig;

/// One sink as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// How rows reach it: the keys every sink has.
    pub delivery: DeliveryConfig,
    /// What it is: `type` and its own keys.
    pub kind: SinkKind,
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

/// The destination, by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkKind {
    /// `type = "kafka"`.
    Kafka(KafkaConfig),
    /// `type = "postgres"`.
    Postgres(PostgresConfig),
    /// `type = "sqlite"`.
    Sqlite(SqliteConfig),
    /// `type = "http"`.
    Http(HttpConfig),
    /// `type = "mqtt"`.
    Mqtt(MqttConfig),
}

impl SinkKind {
    /// The `type` value, as EMQX names the action's type in its API.
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
                SinkKind::Kafka(_) => delivery.batch_size = kafka::DEFAULT_BATCH_SIZE,
                SinkKind::Postgres(_) => delivery.batch_size = postgres::DEFAULT_BATCH_SIZE,
                _ => {}
            }
        }
        Ok(SinkConfig { delivery, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::FullPolicy;
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
        assert!(matches!(c.kind, SinkKind::Sqlite(SqliteConfig { table: Some(_), .. })));
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
        assert_eq!(batch_size(kafka.clone(), json!({})), kafka::DEFAULT_BATCH_SIZE);
        assert_eq!(batch_size(kafka, json!({"batch_size": 7})), 7);
        let postgres = json!({"type": "postgres", "url": "postgres://h/d", "table": "t"});
        assert_eq!(batch_size(postgres.clone(), json!({})), postgres::DEFAULT_BATCH_SIZE);
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

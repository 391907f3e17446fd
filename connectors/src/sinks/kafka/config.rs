//! `[sinks.<name>]` with `type = "kafka"`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A Kafka destination.
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

/// Rows per batch for Kafka when `batch_size` is not set: librdkafka batches and pipelines by
/// itself, so what bounds small batches is the wait for each one's acknowledgements
/// (docs/BENCHMARKS.md, "Kafka's batch size").
pub const DEFAULT_BATCH_SIZE: usize = 2000;

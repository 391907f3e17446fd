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
    /// TLS to the brokers (see `crate::tls`).
    pub ssl: Option<crate::tls::ClientTls>,
    /// SASL, as EMQX's `authentication = { mechanism, username, password }`.
    pub authentication: Option<KafkaAuth>,
}

/// A SASL mechanism librdkafka speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaslMechanism {
    /// PLAIN: the password itself, so only over TLS.
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

/// `authentication = { ... }` of a Kafka sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaAuth {
    /// How.
    pub mechanism: SaslMechanism,
    /// Who.
    pub username: String,
    /// The password.
    pub password: String,
}

impl KafkaConfig {
    /// librdkafka's properties for the security this config asks for.
    pub fn security_properties(&self) -> Vec<(&'static str, String)> {
        let tls = self.ssl.as_ref().filter(|t| t.enable);
        let protocol = match (tls.is_some(), self.authentication.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        let mut out = vec![("security.protocol", protocol.to_string())];
        if let Some(t) = tls {
            out.extend(t.kafka_properties());
        }
        if let Some(auth) = &self.authentication {
            let mechanism = match auth.mechanism {
                SaslMechanism::Plain => "PLAIN",
                SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
                SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            };
            out.push(("sasl.mechanisms", mechanism.to_string()));
            out.push(("sasl.username", auth.username.clone()));
            out.push(("sasl.password", auth.password.clone()));
        }
        out
    }
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

//! The Kafka destination: a librdkafka producer, records built from rows by templates.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::config::KafkaConfig;
use crate::row::Row;
use crate::sink::{CheckError, Sink, WriteError};
use crate::sinks::SinkError;
use crate::template::Template;

/// How long librdkafka keeps trying a record before the batch fails (and is written again).
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the health check waits for metadata.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A Kafka destination.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: Template,
    key: Option<Template>,
    value: Template,
    headers: Vec<(String, Template)>,
}

impl KafkaSink {
    /// A sink for `config`; the producer connects in the background.
    pub fn new(name: &str, config: &KafkaConfig) -> Result<KafkaSink, SinkError> {
        let invalid = |message: String| SinkError::Invalid { sink: name.to_string(), message };
        let template = |key: &str, text: &str| Template::parse(text).map_err(|e| invalid(format!("{key}: {e}")));
        let compression = match config.compression.as_str() {
            c @ ("none" | "gzip" | "snappy" | "lz4" | "zstd") => c,
            other => return Err(invalid(format!("compression: `{other}` is not none, gzip, snappy, lz4 or zstd"))),
        };
        let partitioner = match config.partitioning.as_str() {
            // Java's partitioner for keyed records, so that other producers agree; random without a key.
            "key" => "murmur2_random",
            "random" => "random",
            other => return Err(invalid(format!("partitioning: `{other}` is not `key` or `random`"))),
        };
        let mut client = ClientConfig::new();
        for (key, value) in config.security_properties() {
            client.set(key, value);
        }
        let producer: FutureProducer = client
            .set("bootstrap.servers", &config.brokers)
            .set("client.id", format!("weir-{name}"))
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", compression)
            .set("partitioner", partitioner)
            .set("linger.ms", "5")
            .set("message.timeout.ms", MESSAGE_TIMEOUT.as_millis().to_string())
            .create()
            .map_err(|e| invalid(format!("brokers `{}`: {e}", config.brokers)))?;
        let mut headers = Vec::new();
        for (k, v) in &config.headers {
            headers.push((k.clone(), template(&format!("headers.{k}"), v)?));
        }
        Ok(KafkaSink {
            producer,
            topic: template("topic", &config.topic)?,
            key: config.key.as_deref().map(|k| template("key", k)).transpose()?,
            value: match &config.value {
                Some(v) => template("value", v)?,
                None => Template::whole_row(),
            },
            headers,
        })
    }
}

impl Sink for KafkaSink {
    async fn write(&self, rows: &[Row]) -> Result<(), WriteError> {
        let mut pending = Vec::with_capacity(rows.len());
        for row in rows {
            let topic = self.topic.render(row);
            let key = self.key.as_ref().map(|k| k.render(row));
            let value = self.value.render(row);
            let mut record = FutureRecord::to(&topic).payload(&value);
            if !self.headers.is_empty() {
                let mut headers = OwnedHeaders::new_with_capacity(self.headers.len());
                for (name, t) in &self.headers {
                    headers = headers.insert(Header { key: name, value: Some(&t.render(row)) });
                }
                record = record.headers(headers);
            }
            if let Some(key) = &key {
                record = record.key(key);
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    // librdkafka's own queue is full: let it drain, then enqueue again.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((e, _)) => return Err(classify(e)),
                }
            }
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(classify(e)),
                Err(_) => return Err(WriteError::transient("the Kafka producer stopped")),
            }
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), CheckError> {
        // fetch_metadata blocks: off the runtime's threads.
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, CHECK_TIMEOUT).map(|_| ()))
            .await
            .map_err(CheckError::new)?
            .map_err(CheckError::new)
    }
}

/// Errors in the record itself refuse it; a topic that does not exist (the topic template may
/// take it from the row) is suspect: retried a few times, then refused; everything else
/// (brokers down, leaders moving, timeouts) is retried.
fn classify(e: KafkaError) -> WriteError {
    if matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
        )
    ) {
        return WriteError::suspect(e);
    }
    let refused = matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidTopic
        )
    );
    if refused {
        WriteError::rejected(e)
    } else {
        WriteError::transient(e)
    }
}

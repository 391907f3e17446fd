//! `type = "kafka"`: rows as Kafka records, through librdkafka (rdkafka).
//!
//! Topic, key, value and headers are templates. The producer runs with `acks=all` and
//! idempotence, so a record is confirmed only when every in-sync replica has it, and librdkafka's
//! own retries do not duplicate it. A batch is confirmed when every record of it is; a record
//! librdkafka gives up on (after `message.timeout.ms`, 30 s) fails the batch, which the driver
//! writes again: at least once. The health check only asks for metadata: it never tears the
//! producer down, so an outage costs no buffered record.

mod config;
mod sink;

pub use config::{KafkaConfig, DEFAULT_BATCH_SIZE};
pub use sink::KafkaSink;

//! `weir-bench kafka`: rows produced straight to Kafka with librdkafka, with the settings of
//! Weir's Kafka sink (`acks=all`, idempotence, 5 ms linger): the ceiling the sink is measured
//! against in `scripts/bench-sinks.sh`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The options of `weir-bench kafka`.
#[derive(Args)]
pub struct KafkaArgs {
    /// Bootstrap servers, `host:port[,host:port...]`.
    #[arg(long)]
    brokers: String,
    /// Topic to produce to.
    #[arg(short, long)]
    topic: String,
    /// Rows to produce.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    rows: u64,
    /// Clients the rows' ids cycle through (`bench-<i>`), as the MQTT publishers' would.
    #[arg(short, long, default_value_t = 4)]
    clients: u64,
}

/// Produces the rows, each `{"clientid", "topic", "ts"}` as the benchmark's rule makes them, and
/// waits for every delivery; prints the rate.
pub async fn run(a: KafkaArgs) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .context("cannot create the Kafka producer")?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(a.rows as usize);
    for i in 0..a.rows {
        let client = i % a.clients.max(1);
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let value = format!(r#"{{"clientid":"bench-{client}","topic":"bench/{client}","ts":{ts}}}"#);
        let key = format!("bench-{client}");
        let mut record = FutureRecord::to(&a.topic).payload(&value).key(&key);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => break pending.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(e).context("cannot produce"),
            }
        }
    }
    for delivery in pending {
        delivery.await.context("producer stopped")?.map_err(|(e, _)| e).context("delivery failed")?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("summary: rows={} seconds={secs:.3} rate={:.0}", a.rows, a.rows as f64 / secs);
    Ok(())
}

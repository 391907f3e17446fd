//! `weir-bench pub`: publishers at a fixed total rate, or as fast as the broker takes them,
//! each keeping up to `--inflight` QoS 1/2 messages unacknowledged. Each payload starts with
//! its send time (nanoseconds since the Unix epoch, read once for the batch of up to 64
//! messages that leaves in one write), for the subscribers' latency. At QoS 1/2 the summary
//! also has the latency from that time to the PUBACK (or PUBCOMP): what a publisher waits for
//! the broker's promise, which `[durability] mode = "sync"` makes wait for the disk.

use std::collections::VecDeque;
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use hdrhistogram::Histogram;
use ntex_bytes::ByteString;
use ntex_mqtt::QoS;

use crate::client::Client;
use crate::load::{connect_all, expand, incoming, next, now_nanos, qos, Common, Incoming};
use crate::report::report_loop;

/// Messages written in one go, and the most a paced publisher catches up at once.
const BATCH: u64 = 64;

/// The options of `weir-bench pub`.
#[derive(Args)]
pub struct PubArgs {
    #[command(flatten)]
    common: Common,
    /// Topic; `%i` is the client index, `%c` the client id.
    #[arg(short, long)]
    topic: String,
    /// Publish QoS.
    #[arg(short, long, default_value_t = 0)]
    qos: u8,
    /// Payload size in bytes (at least 8, for the timestamp).
    #[arg(short, long, default_value_t = 64)]
    size: usize,
    /// Total messages/s over all publishers; 0 publishes as fast as the broker takes them.
    #[arg(short, long, default_value_t = 0)]
    rate: u64,
    /// Unacknowledged QoS 1/2 messages per publisher.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
    /// Stop after this many messages per publisher (0: run for --duration).
    #[arg(long, default_value_t = 0)]
    limit: u64,
    /// Set RETAIN on every message (each publisher replaces its topic's retained message).
    #[arg(long)]
    retain: bool,
}

/// Publishes from every client until the duration or the limit, then prints the rate.
pub async fn run(a: PubArgs) -> anyhow::Result<()> {
    let q = qos(a.qos)?;
    if a.size < 8 {
        bail!("--size must be at least 8 (the payload carries a timestamp)");
    }
    let sent = Arc::new(AtomicU64::new(0));
    let clients = connect_all(&a.common).await?;
    let per_client_rate = if a.rate == 0 { 0.0 } else { a.rate as f64 / a.common.count as f64 };
    let deadline = Instant::now() + Duration::from_secs(a.common.duration);
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let id = format!("{}{}", a.common.prefix, i);
        let publisher = Publisher {
            client,
            topic: ByteString::from(expand(&a.topic, i, &id)),
            qos: q,
            retain: a.retain,
            payload: vec![b'x'; a.size],
            inflight: a.inflight.max(1),
            limit: a.limit,
            rate: per_client_rate,
            sent: sent.clone(),
            next_id: 0,
            outstanding: 0,
            n: 0,
            sent_at: VecDeque::new(),
            ack_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        };
        tasks.push(tokio::spawn(publisher.run(deadline)));
    }
    let limit_total = if a.limit > 0 { a.limit * a.common.count as u64 } else { 0 };
    let outcome = report_loop(&sent, "sent", a.common.duration, limit_total).await;
    let mut acks = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        if let Ok(h) = t.await {
            let _ = acks.add(&h);
        }
    }
    let ms = |q: f64| acks.value_at_quantile(q) as f64 / 1000.0;
    let ack = if acks.is_empty() {
        String::new()
    } else {
        format!(" ack_p50_ms={:.3} ack_p99_ms={:.3} ack_max_ms={:.3}", ms(0.5), ms(0.99), acks.max() as f64 / 1000.0)
    };
    println!(
        "summary: sent={} seconds={:.2} rate={:.0}{ack}",
        sent.load(Ordering::Relaxed),
        outcome.secs,
        outcome.rate
    );
    Ok(())
}

/// One publishing client.
struct Publisher {
    client: Client,
    topic: ByteString,
    qos: QoS,
    retain: bool,
    /// The payload, its first 8 bytes restamped for each batch.
    payload: Vec<u8>,
    /// Unacknowledged messages allowed.
    inflight: usize,
    /// Messages to send (0: until the deadline).
    limit: u64,
    /// Messages per second (0.0: as fast as acknowledged).
    rate: f64,
    /// Messages sent by every publisher.
    sent: Arc<AtomicU64>,
    next_id: u16,
    /// Messages sent and not yet acknowledged.
    outstanding: usize,
    /// Messages this publisher sent.
    n: u64,
    /// The send time of each message not yet acknowledged, oldest first: a broker acknowledges
    /// QoS 1/2 publishes in the order they came (MQTT 5, 4.6).
    sent_at: VecDeque<u64>,
    /// Microseconds from send to PUBACK (or PUBCOMP).
    ack_us: Histogram<u64>,
}

impl Publisher {
    /// Publishes until `deadline` or the limit, then waits for the last acknowledgements, so
    /// that "sent" means accepted. Ends early if the connection fails. Returns the
    /// acknowledgements' latencies.
    async fn run(mut self, deadline: Instant) -> Histogram<u64> {
        let start = Instant::now();
        while Instant::now() < deadline && !self.done() {
            // Paced: send what the schedule says is due; unpaced: a batch at a time.
            let due = if self.rate > 0.0 {
                let want = (start.elapsed().as_secs_f64() * self.rate) as u64;
                if want <= self.n {
                    if self.wait_for_ack(Duration::from_micros(200)).await.is_err() {
                        return self.ack_us;
                    }
                    continue;
                }
                (want - self.n).min(BATCH)
            } else {
                BATCH
            };
            if self.send_batch(due).await.is_err() || self.read_acks().await.is_err() {
                return self.ack_us;
            }
            if self.client.flush().await.is_err() {
                return self.ack_us;
            }
        }
        while self.qos != QoS::AtMostOnce && self.outstanding > 0 {
            if self.client.flush().await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(5), next(&mut self.client)).await {
                Ok(Ok(Incoming::Ack)) => self.acknowledged(),
                Ok(Ok(_)) => {}
                _ => break,
            }
        }
        self.ack_us
    }

    /// Waits up to `limit` with nothing to send: for an acknowledgement, if one is due, so that
    /// it is timed when it comes and not at the next send.
    async fn wait_for_ack(&mut self, limit: Duration) -> anyhow::Result<()> {
        if self.outstanding == 0 {
            tokio::time::sleep(limit).await;
            return Ok(());
        }
        // A PUBREL answering a PUBREC (QoS 2) goes out before the wait.
        self.client.flush().await?;
        // Cancel-safe: a read cancelled by the timeout has taken nothing off the socket.
        if let Ok(got) = tokio::time::timeout(limit, next(&mut self.client)).await {
            if let Incoming::Ack = got? {
                self.acknowledged();
            }
        }
        Ok(())
    }

    /// The oldest message not acknowledged is.
    fn acknowledged(&mut self) {
        self.outstanding -= 1;
        if let Some(sent) = self.sent_at.pop_front() {
            let _ = self.ack_us.record((now_nanos().saturating_sub(sent) / 1000).max(1));
        }
    }

    fn done(&self) -> bool {
        self.limit > 0 && self.n >= self.limit
    }

    /// Writes up to `due` messages, as many as the inflight window allows, in one write.
    async fn send_batch(&mut self, due: u64) -> anyhow::Result<()> {
        let mut batch = 0;
        // One clock read per batch: its messages leave in one write.
        let stamp = now_nanos();
        self.payload[..8].copy_from_slice(&stamp.to_be_bytes());
        while batch < due && (self.qos == QoS::AtMostOnce || self.outstanding < self.inflight) && !self.done() {
            let packet_id = if self.qos == QoS::AtMostOnce {
                None
            } else {
                self.next_id = self.next_id.wrapping_add(1).max(1);
                self.outstanding += 1;
                self.sent_at.push_back(stamp);
                NonZeroU16::new(self.next_id)
            };
            self.client.queue_plain_publish(&self.topic, self.qos, self.retain, packet_id, &self.payload)?;
            batch += 1;
            self.n += 1;
        }
        self.client.flush().await?;
        self.sent.fetch_add(batch, Ordering::Relaxed);
        Ok(())
    }

    /// Reads acknowledgements: waits when the window is full, else takes what is there.
    async fn read_acks(&mut self) -> anyhow::Result<()> {
        while self.qos != QoS::AtMostOnce && self.outstanding > 0 {
            let must_wait = self.outstanding >= self.inflight;
            let got = if must_wait {
                // QoS 2: the PUBRELs answering PUBRECs must go out before waiting for the
                // PUBCOMPs that answer them.
                self.client.flush().await?;
                Some(next(&mut self.client).await?)
            } else {
                match self.client.try_frame()? {
                    Some(frame) => Some(incoming(&mut self.client, frame)?),
                    None => match self.client.try_read()? {
                        Some(0) => bail!("connection closed by the broker"),
                        Some(_) => continue,
                        None => None,
                    },
                }
            };
            match got {
                Some(Incoming::Ack) => self.acknowledged(),
                Some(_) => {}
                None => break,
            }
        }
        Ok(())
    }
}

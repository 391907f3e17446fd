//! `weir-bench sub`: subscribers counting what they receive and the end-to-end latency of each
//! message, from the send time its publisher stamped in the first 8 bytes of the payload (so
//! both must run on one machine).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::Args;
use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::client::Client;
use crate::load::{acknowledge, connect_all, expand, next, now_nanos, qos, subscribe, Common, Incoming};
use crate::report::report_loop;

/// The options of `weir-bench sub`.
#[derive(Args)]
pub struct SubArgs {
    #[command(flatten)]
    common: Common,
    /// Topic filter; `%i` is the client index, `%c` the client id.
    #[arg(short, long)]
    topic: String,
    /// Subscription QoS.
    #[arg(short, long, default_value_t = 0)]
    qos: u8,
    /// Stop after this many messages in total (0: run for --duration).
    #[arg(long, default_value_t = 0)]
    limit: u64,
}

/// Counters shared by the subscriber tasks.
struct SubStats {
    received: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

/// Subscribes the clients, counts what they receive until the duration or the limit, and
/// prints the rate and the latency percentiles.
pub async fn run(a: SubArgs) -> anyhow::Result<()> {
    let q = qos(a.qos)?;
    let stats = Arc::new(SubStats {
        received: AtomicU64::new(0),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let mut clients = connect_all(&a.common).await?;
    for (i, c) in clients.iter_mut().enumerate() {
        let id = format!("{}{}", a.common.prefix, i);
        subscribe(c, &expand(&a.topic, i, &id), q)?;
        c.flush().await?;
    }
    eprintln!("subscribed; waiting for messages");
    let tasks: Vec<_> = clients.into_iter().map(|c| tokio::spawn(receive(c, stats.clone()))).collect();
    let outcome = report_loop(&stats.received, "received", a.common.duration, a.limit).await;
    for t in &tasks {
        t.abort();
    }
    let h = stats.latency_us.lock();
    let total = stats.received.load(Ordering::Relaxed);
    println!(
        "summary: received={} seconds={:.2} rate={:.0} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        total,
        outcome.secs,
        outcome.rate,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    Ok(())
}

/// One subscriber: counts, samples latency, acknowledges, until the connection ends.
async fn receive(mut c: Client, stats: Arc<SubStats>) {
    let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok();
    let mut n = 0u64;
    loop {
        let Ok(p) = next(&mut c).await else { break };
        if let Incoming::Publish { qos, packet_id, payload } = p {
            if let Some(sent) = payload.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes) {
                let us = now_nanos().saturating_sub(sent) / 1000;
                if let Some(h) = local.as_mut() {
                    let _ = h.record(us.max(1));
                }
            }
            if let Some(id) = packet_id {
                let _ = acknowledge(&mut c, qos, id);
            }
            n += 1;
        }
        // Acks and latency samples are batched to keep the reader fast. Any packet may have
        // queued an answer (a PUBCOMP for a PUBREL, with QoS 2): the broker waits for it, so a
        // drained read buffer always flushes.
        if !c.has_buffered() || n >= 256 {
            stats.received.fetch_add(n, Ordering::Relaxed);
            n = 0;
            if let Some(h) = local.as_mut() {
                let _ = stats.latency_us.lock().add(&*h);
                h.reset();
            }
            if c.flush().await.is_err() {
                break;
            }
        }
    }
}

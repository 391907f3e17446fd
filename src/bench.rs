//! `weir bench conn|sub|pub`: a load generator for any MQTT broker, in the spirit of emqtt-bench.
//!
//! Publishers put a send timestamp (nanoseconds since the Unix epoch, read once for the batch of
//! up to 64 messages that leaves in one write) in the first 8 bytes of each payload; subscribers
//! compute end-to-end latency from it, so both sides must run on the same machine. Progress is
//! printed every second on stderr; a final `summary:` line on stdout holds the figures in
//! `key=value` form for scripts.

use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use ntex_bytes::{Buf, BufMut, BytePages, ByteString, Bytes, BytesMut};
use ntex_codec::{Decoder, Encoder};
use ntex_mqtt::v3::codec as v3;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Open many connections and hold them (measure connection rate and broker memory).
    Conn(ConnArgs),
    /// Subscribe many clients and measure received messages/s and end-to-end latency.
    Sub(SubArgs),
    /// Publish from many clients at a fixed rate or as fast as the broker takes it.
    Pub(PubArgs),
    /// Produce rows straight to Kafka (the ceiling a Kafka sink is measured against).
    Kafka(crate::bench_kafka::KafkaArgs),
}

#[derive(Args, Clone)]
pub struct Common {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Broker port.
    #[arg(short, long, default_value_t = 1883)]
    port: u16,
    /// MQTT protocol version: 4 (3.1.1) or 5.
    #[arg(short = 'V', long = "proto-ver", default_value_t = 4)]
    version: u8,
    /// Number of clients.
    #[arg(short, long, default_value_t = 1)]
    count: usize,
    /// Milliseconds between two connects.
    #[arg(short, long, default_value_t = 0)]
    interval: u64,
    /// Client id prefix; client ids are `<prefix><index>`.
    #[arg(long, default_value = "bench-")]
    prefix: String,
    /// Seconds to run after all clients are connected.
    #[arg(short, long, default_value_t = 10)]
    duration: u64,
    /// Keep alive, seconds.
    #[arg(short, long, default_value_t = 300)]
    keepalive: u16,
}

#[derive(Args)]
pub struct ConnArgs {
    #[command(flatten)]
    common: Common,
}

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
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Conn(a) => conn(a).await,
        BenchCommand::Sub(a) => sub(a).await,
        BenchCommand::Pub(a) => publish(a).await,
        BenchCommand::Kafka(a) => crate::bench_kafka::run(a).await,
    }
}

fn qos(level: u8) -> anyhow::Result<QoS> {
    Ok(match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => bail!("QoS must be 0, 1 or 2"),
    })
}

fn expand(pattern: &str, index: usize, client_id: &str) -> String {
    pattern.replace("%i", &index.to_string()).replace("%c", client_id)
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// A received packet, whatever the protocol version.
enum Incoming {
    ConnAck { ok: bool },
    Publish { qos: QoS, packet_id: Option<NonZeroU16>, payload: Bytes },
    Ack,
    Other,
}

/// The largest remaining length MQTT's four-byte variable integer holds.
const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// A minimal MQTT client connection for load generation.
struct Client {
    v5: bool,
    c3: v3::Codec,
    c5: v5::Codec,
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    rbuf: BytesMut,
    out: BytePages,
    partial: Option<(QoS, Option<NonZeroU16>, BytesMut, u32)>,
    /// The PUBLISH being written, reused from one message to the next.
    packet: Vec<u8>,
}

impl Client {
    async fn connect(c: &Common, client_id: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect((c.host.as_str(), c.port))
            .await
            .with_context(|| format!("cannot connect to {}:{}", c.host, c.port))?;
        stream.set_nodelay(true)?;
        let (rd, wr) = stream.into_split();
        let mut client = Client {
            v5: match c.version {
                4 => false,
                5 => true,
                v => bail!("unsupported --proto-ver {v}: use 4 or 5"),
            },
            c3: v3::Codec::new(),
            c5: v5::Codec::new(),
            rd,
            wr,
            rbuf: BytesMut::with_capacity(64 * 1024),
            out: BytePages::default(),
            partial: None,
            packet: Vec::new(),
        };
        if client.v5 {
            let pkt = v5::Connect {
                clean_start: true,
                keep_alive: c.keepalive,
                client_id: ByteString::from(client_id.to_string()),
                receive_max: NonZeroU16::new(u16::MAX),
                ..Default::default()
            };
            client.c5.encodev(v5::Encoded::Packet(pkt.into()), &mut client.out)?;
        } else {
            let pkt = v3::Connect {
                clean_session: true,
                keep_alive: c.keepalive,
                last_will: None,
                client_id: ByteString::from(client_id.to_string()),
                username: None,
                password: None,
            };
            client.c3.encodev(v3::Encoded::Packet(pkt.into()), &mut client.out)?;
        }
        client.flush().await?;
        match client.next().await? {
            Incoming::ConnAck { ok: true } => Ok(client),
            Incoming::ConnAck { ok: false } => bail!("connection refused by the broker"),
            _ => bail!("expected CONNACK"),
        }
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.out.is_empty() {
            let bytes = self.out.freeze();
            self.wr.write_all(&bytes).await?;
        }
        Ok(())
    }

    fn subscribe(&mut self, filter: &str, q: QoS) -> anyhow::Result<()> {
        let id = NonZeroU16::MIN;
        if self.v5 {
            let pkt = v5::Subscribe {
                packet_id: id,
                id: None,
                user_properties: Vec::new(),
                topic_filters: vec![(
                    ByteString::from(filter.to_string()),
                    v5::SubscriptionOptions {
                        qos: q,
                        no_local: false,
                        retain_as_published: false,
                        retain_handling: v5::RetainHandling::AtSubscribe,
                    },
                )],
            };
            self.c5.encodev(v5::Encoded::Packet(pkt.into()), &mut self.out)?;
        } else {
            let pkt =
                v3::Packet::Subscribe { packet_id: id, topic_filters: vec![(ByteString::from(filter.to_string()), q)] };
            self.c3.encodev(v3::Encoded::Packet(pkt), &mut self.out)?;
        }
        Ok(())
    }

    /// Queues a PUBLISH. It is written by hand, not through the codec, whose general path (a
    /// `Bytes` per payload, a page-buffer write per field) took a third of the publishers'
    /// user time, CPU that the broker under test shares on a small machine.
    fn publish(
        &mut self,
        topic: &ByteString,
        q: QoS,
        packet_id: Option<NonZeroU16>,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        let id_len = if packet_id.is_some() { 2 } else { 0 };
        // MQTT 5: an empty property list, one byte.
        let properties_len = usize::from(self.v5);
        let remaining = 2 + topic.len() + id_len + properties_len + payload.len();
        let topic_len = u16::try_from(topic.len()).context("the topic is longer than 65,535 bytes")?;
        if remaining > MAX_REMAINING_LENGTH {
            bail!("the message is larger than MQTT allows");
        }
        let p = &mut self.packet;
        p.clear();
        p.push(0x30 | (q as u8) << 1);
        let mut len = remaining;
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            p.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        p.extend_from_slice(&topic_len.to_be_bytes());
        p.extend_from_slice(topic.as_bytes());
        if let Some(id) = packet_id {
            p.extend_from_slice(&id.get().to_be_bytes());
        }
        if self.v5 {
            p.push(0);
        }
        p.extend_from_slice(payload);
        self.out.put_slice(p);
        Ok(())
    }

    fn ack(&mut self, q: QoS, packet_id: NonZeroU16) -> anyhow::Result<()> {
        match (self.v5, q) {
            (true, QoS::AtLeastOnce) => self.c5.encodev(
                v5::Encoded::Packet(v5::Packet::PublishAck(v5::PublishAck {
                    packet_id,
                    reason_code: v5::PublishAckReason::Success,
                    properties: Vec::new(),
                    reason_string: None,
                })),
                &mut self.out,
            )?,
            (false, QoS::AtLeastOnce) => {
                self.c3.encodev(v3::Encoded::Packet(v3::Packet::PublishAck { packet_id }), &mut self.out)?
            }
            (false, QoS::ExactlyOnce) => {
                self.c3.encodev(v3::Encoded::Packet(v3::Packet::PublishReceived { packet_id }), &mut self.out)?
            }
            (true, QoS::ExactlyOnce) => self.c5.encodev(
                v5::Encoded::Packet(v5::Packet::PublishReceived(v5::PublishAck {
                    packet_id,
                    reason_code: v5::PublishAckReason::Success,
                    properties: Vec::new(),
                    reason_string: None,
                })),
                &mut self.out,
            )?,
            _ => {}
        }
        Ok(())
    }

    /// Decodes one packet from the buffer, if a whole one is there.
    fn try_decode(&mut self) -> anyhow::Result<Option<Incoming>> {
        // A PUBACK without reason code or properties, most of what a publisher reads, taken
        // without the codec, whose general path was a sixth of the publishers' time.
        if self.partial.is_none() && self.rbuf.len() >= 4 && self.rbuf[..2] == [0x40, 2] {
            self.rbuf.advance(4);
            return Ok(Some(Incoming::Ack));
        }
        loop {
            let (head, chunk, eof) = if self.v5 {
                match self.c5.decode(&mut self.rbuf)? {
                    None => return Ok(None),
                    Some(v5::Decoded::Packet(p, _)) => {
                        return Ok(Some(match p {
                            v5::Packet::ConnectAck(a) => {
                                Incoming::ConnAck { ok: a.reason_code == v5::ConnectAckReason::Success }
                            }
                            v5::Packet::PublishAck(_) => Incoming::Ack,
                            v5::Packet::PublishComplete(_) => Incoming::Ack,
                            v5::Packet::PublishReceived(a) => {
                                self.c5.encodev(
                                    v5::Encoded::Packet(v5::Packet::PublishRelease(v5::PublishAck2 {
                                        packet_id: a.packet_id,
                                        reason_code: v5::PublishAck2Reason::Success,
                                        properties: Vec::new(),
                                        reason_string: None,
                                    })),
                                    &mut self.out,
                                )?;
                                Incoming::Other
                            }
                            v5::Packet::PublishRelease(a) => {
                                self.c5.encodev(
                                    v5::Encoded::Packet(v5::Packet::PublishComplete(v5::PublishAck2 {
                                        packet_id: a.packet_id,
                                        reason_code: v5::PublishAck2Reason::Success,
                                        properties: Vec::new(),
                                        reason_string: None,
                                    })),
                                    &mut self.out,
                                )?;
                                Incoming::Other
                            }
                            _ => Incoming::Other,
                        }))
                    }
                    Some(v5::Decoded::Publish(p, payload, _)) => {
                        (Some((p.qos, p.packet_id, p.payload_size)), payload, false)
                    }
                    Some(v5::Decoded::PayloadChunk(c, eof)) => (None, c, eof),
                }
            } else {
                match self.c3.decode(&mut self.rbuf)? {
                    None => return Ok(None),
                    Some(v3::Decoded::Packet(p, _)) => {
                        return Ok(Some(match p {
                            v3::Packet::ConnectAck(a) => {
                                Incoming::ConnAck { ok: a.return_code == v3::ConnectAckReason::ConnectionAccepted }
                            }
                            v3::Packet::PublishAck { .. } | v3::Packet::PublishComplete { .. } => Incoming::Ack,
                            v3::Packet::PublishReceived { packet_id } => {
                                self.c3.encodev(
                                    v3::Encoded::Packet(v3::Packet::PublishRelease { packet_id }),
                                    &mut self.out,
                                )?;
                                Incoming::Other
                            }
                            v3::Packet::PublishRelease { packet_id } => {
                                self.c3.encodev(
                                    v3::Encoded::Packet(v3::Packet::PublishComplete { packet_id }),
                                    &mut self.out,
                                )?;
                                Incoming::Other
                            }
                            _ => Incoming::Other,
                        }))
                    }
                    Some(v3::Decoded::Publish(p, payload, _)) => {
                        (Some((p.qos, p.packet_id, p.payload_size)), payload, false)
                    }
                    Some(v3::Decoded::PayloadChunk(c, eof)) => (None, c, eof),
                }
            };
            match head {
                Some((q, id, size)) if chunk.len() as u32 >= size => {
                    return Ok(Some(Incoming::Publish { qos: q, packet_id: id, payload: chunk }))
                }
                Some((q, id, size)) => {
                    let mut acc = BytesMut::with_capacity(size as usize);
                    acc.extend_from_slice(&chunk);
                    self.partial = Some((q, id, acc, size));
                }
                None => {
                    let Some((q, id, mut acc, size)) = self.partial.take() else { bail!("unexpected payload chunk") };
                    acc.extend_from_slice(&chunk);
                    if eof {
                        return Ok(Some(Incoming::Publish { qos: q, packet_id: id, payload: acc.freeze() }));
                    }
                    self.partial = Some((q, id, acc, size));
                }
            }
        }
    }

    /// Reads until one packet is decoded.
    async fn next(&mut self) -> anyhow::Result<Incoming> {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            if let Some(p) = self.try_decode()? {
                return Ok(p);
            }
            let n = self.rd.read(&mut tmp).await?;
            if n == 0 {
                bail!("connection closed by the broker");
            }
            self.rbuf.extend_from_slice(&tmp[..n]);
        }
    }
}

/// Connects `count` clients, spaced by `interval`, with a progress line per second.
async fn connect_all(c: &Common) -> anyhow::Result<Vec<Client>> {
    let start = Instant::now();
    let mut clients = Vec::with_capacity(c.count);
    let mut last = Instant::now();
    for i in 0..c.count {
        let id = format!("{}{}", c.prefix, i);
        clients.push(Client::connect(c, &id).await?);
        if c.interval > 0 {
            tokio::time::sleep(Duration::from_millis(c.interval)).await;
        }
        if last.elapsed() >= Duration::from_secs(1) {
            eprintln!("connected {}/{}", i + 1, c.count);
            last = Instant::now();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("connected {} clients in {:.2}s ({:.0} conn/s)", c.count, secs, c.count as f64 / secs.max(1e-9));
    Ok(clients)
}

async fn conn(a: ConnArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let clients = connect_all(&a.common).await?;
    let rate = clients.len() as f64 / start.elapsed().as_secs_f64().max(1e-9);
    tokio::time::sleep(Duration::from_secs(a.common.duration)).await;
    println!("summary: connections={} conn_rate={:.0}", clients.len(), rate);
    Ok(())
}

/// Counters shared by the subscriber tasks.
struct SubStats {
    received: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

async fn sub(a: SubArgs) -> anyhow::Result<()> {
    let q = qos(a.qos)?;
    let stats = Arc::new(SubStats {
        received: AtomicU64::new(0),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let mut clients = connect_all(&a.common).await?;
    for (i, c) in clients.iter_mut().enumerate() {
        let id = format!("{}{}", a.common.prefix, i);
        c.subscribe(&expand(&a.topic, i, &id), q)?;
        c.flush().await?;
    }
    eprintln!("subscribed; waiting for messages");
    let mut tasks = Vec::new();
    for mut c in clients {
        let stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok();
            let mut n = 0u64;
            loop {
                let Ok(p) = c.next().await else { break };
                if let Incoming::Publish { qos, packet_id, payload } = p {
                    if payload.len() >= 8 {
                        let sent = u64::from_be_bytes(payload[..8].try_into().unwrap_or([0; 8]));
                        let us = now_nanos().saturating_sub(sent) / 1000;
                        if let Some(h) = local.as_mut() {
                            let _ = h.record(us.max(1));
                        }
                    }
                    if let Some(id) = packet_id {
                        let _ = c.ack(qos, id);
                    }
                    n += 1;
                }
                // Acks and latency samples are batched to keep the reader fast. Any packet may
                // have queued an answer (a PUBCOMP for a PUBREL, with QoS 2): the broker waits
                // for it, so a drained read buffer always flushes.
                if c.rbuf.is_empty() || n >= 256 {
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
        }));
    }
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

struct Outcome {
    secs: f64,
    rate: f64,
}

/// Prints the counter's progress every second until `duration` passes, `limit` is reached, or
/// (with a limit) nothing moved for 5 s. The rate is measured from the first counted message to
/// the last one.
async fn report_loop(counter: &AtomicU64, what: &str, duration: u64, limit: u64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(duration);
    let mut first: Option<(Instant, u64)> = None;
    let mut last_change = (Instant::now(), 0u64);
    let (mut prev, mut last_print) = (0u64, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (now, count) = (Instant::now(), counter.load(Ordering::Relaxed));
        if first.is_none() && count > 0 {
            first = Some((now, count));
        }
        if count != last_change.1 {
            last_change = (now, count);
        }
        if now.duration_since(last_print) >= Duration::from_secs(1) {
            eprintln!("{what} {count} ({}/s)", count - prev);
            (prev, last_print) = (count, now);
        }
        let stalled = first.is_some() && now.duration_since(last_change.0) > Duration::from_secs(5);
        if now >= deadline || (limit > 0 && (count >= limit || stalled)) {
            break;
        }
    }
    match first {
        Some((t0, c0)) if last_change.1 > c0 => {
            let secs = last_change.0.duration_since(t0).as_secs_f64();
            Outcome { secs, rate: (last_change.1 - c0) as f64 / secs.max(1e-9) }
        }
        _ => Outcome { secs: 0.0, rate: 0.0 },
    }
}

async fn publish(a: PubArgs) -> anyhow::Result<()> {
    let q = qos(a.qos)?;
    if a.size < 8 {
        bail!("--size must be at least 8 (the payload carries a timestamp)");
    }
    let sent = Arc::new(AtomicU64::new(0));
    let clients = connect_all(&a.common).await?;
    let per_client_rate = if a.rate == 0 { 0.0 } else { a.rate as f64 / a.common.count as f64 };
    let deadline = Instant::now() + Duration::from_secs(a.common.duration);
    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let id = format!("{}{}", a.common.prefix, i);
        let topic = ByteString::from(expand(&a.topic, i, &id));
        let sent = sent.clone();
        let (size, inflight, limit) = (a.size, a.inflight.max(1), a.limit);
        tasks.push(tokio::spawn(async move {
            let mut payload = vec![b'x'; size];
            let mut next_id: u16 = 0;
            let mut outstanding = 0usize;
            let mut n = 0u64;
            let start = Instant::now();
            while Instant::now() < deadline && (limit == 0 || n < limit) {
                // Paced: send what the schedule says is due; unpaced: a batch at a time.
                let due = if per_client_rate > 0.0 {
                    let want = (start.elapsed().as_secs_f64() * per_client_rate) as u64;
                    if want <= n {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                        continue;
                    }
                    (want - n).min(64)
                } else {
                    64
                };
                let mut batch = 0;
                // One clock read per batch: its messages leave in one write.
                payload[..8].copy_from_slice(&now_nanos().to_be_bytes());
                while batch < due && (q == QoS::AtMostOnce || outstanding < inflight) && (limit == 0 || n < limit) {
                    let pid = if q == QoS::AtMostOnce {
                        None
                    } else {
                        next_id = next_id.wrapping_add(1).max(1);
                        outstanding += 1;
                        NonZeroU16::new(next_id)
                    };
                    if c.publish(&topic, q, pid, &payload).is_err() {
                        return;
                    }
                    batch += 1;
                    n += 1;
                }
                if c.flush().await.is_err() {
                    return;
                }
                sent.fetch_add(batch, Ordering::Relaxed);
                // Read acknowledgements: block when the window is full, else take what is there.
                while q != QoS::AtMostOnce && outstanding > 0 {
                    let must_wait = outstanding >= inflight;
                    let got = if must_wait {
                        // QoS 2: the PUBRELs answering PUBRECs must go out before waiting for
                        // the PUBCOMPs that answer them.
                        if c.flush().await.is_err() {
                            return;
                        }
                        c.next().await.ok()
                    } else {
                        match c.try_decode() {
                            Ok(Some(p)) => Some(p),
                            Ok(None) => {
                                let mut tmp = [0u8; 4096];
                                match c.rd.try_read(&mut tmp) {
                                    Ok(0) => return,
                                    Ok(k) => {
                                        c.rbuf.extend_from_slice(&tmp[..k]);
                                        continue;
                                    }
                                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                                    Err(_) => return,
                                }
                            }
                            Err(_) => return,
                        }
                    };
                    match got {
                        Some(Incoming::Ack) => outstanding -= 1,
                        Some(_) => {}
                        None if must_wait => return,
                        None => break,
                    }
                }
                if c.flush().await.is_err() {
                    return;
                }
            }
            // Wait for the last acknowledgements so that "sent" means accepted.
            while q != QoS::AtMostOnce && outstanding > 0 {
                if c.flush().await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(5), c.next()).await {
                    Ok(Ok(Incoming::Ack)) => outstanding -= 1,
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
        }));
    }
    let limit_total = if a.limit > 0 { a.limit * a.common.count as u64 } else { 0 };
    let outcome = report_loop(&sent, "sent", a.common.duration, limit_total).await;
    for t in tasks {
        let _ = t.await;
    }
    println!("summary: sent={} seconds={:.2} rate={:.0}", sent.load(Ordering::Relaxed), outcome.secs, outcome.rate);
    Ok(())
}

//! What every load shares: the options common to `conn`, `sub` and `pub`, connecting many
//! clients, and the [`Client`] as a load drives it (connect, subscribe, acknowledge,
//! and each frame read as what the load cares about).

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;
use tokio::net::lookup_host;

use crate::client::{ack, ack2, Client, Frame, Packet};
use crate::stream::Tls;

/// The options every load has.
#[derive(Args, Clone)]
pub struct Common {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(short, long, default_value_t = 1883)]
    pub port: u16,
    /// MQTT protocol version: 4 (3.1.1) or 5.
    #[arg(short = 'V', long = "proto-ver", default_value_t = 4)]
    pub version: u8,
    /// Number of clients.
    #[arg(short, long, default_value_t = 1)]
    pub count: usize,
    /// Milliseconds between two connects.
    #[arg(short, long, default_value_t = 0)]
    pub interval: u64,
    /// Client id prefix; client ids are `<prefix><index>`.
    #[arg(long, default_value = "bench-")]
    pub prefix: String,
    /// Seconds to run after all clients are connected.
    #[arg(short, long, default_value_t = 10)]
    pub duration: u64,
    /// Keep alive, seconds.
    #[arg(short, long, default_value_t = 300)]
    pub keepalive: u16,
    /// Session expiry, seconds: 0 connects with a clean session; more asks for a persistent one
    /// (MQTT 5 Session Expiry; clean_session = false in 3.1.1).
    #[arg(long, default_value_t = 0)]
    pub session_expiry: u32,
    /// Connect over TLS, trusting the CA certificates of this PEM file (the broker's
    /// certificate is checked against --host).
    #[arg(long)]
    pub cafile: Option<std::path::PathBuf>,
    /// User name sent in CONNECT.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password sent in CONNECT.
    #[arg(short = 'P', long)]
    pub password: Option<String>,
}

/// A frame as a load sees it.
pub enum Incoming {
    /// A PUBLISH.
    Publish {
        /// Its QoS.
        qos: QoS,
        /// Its packet id (QoS 1 and 2).
        packet_id: Option<NonZeroU16>,
        /// Its payload.
        payload: Bytes,
    },
    /// The end of one of our publishes' exchange: PUBACK (QoS 1) or PUBCOMP (QoS 2).
    Ack,
    /// Anything else (answers it needs are queued already).
    Other,
}

/// The QoS of a `-q` option.
pub fn qos(level: u8) -> anyhow::Result<QoS> {
    QoS::try_from(level).map_err(|_| anyhow::anyhow!("unsupported --qos {level}: use 0, 1 or 2"))
}

/// A topic pattern with `%i` (the client's index) and `%c` (its client id) filled in.
pub fn expand(pattern: &str, index: usize, client_id: &str) -> String {
    pattern.replace("%i", &index.to_string()).replace("%c", client_id)
}

/// Nanoseconds since the Unix epoch: what publishers stamp on their payloads.
pub fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Connects one client (a clean session unless `--session-expiry`), waiting for a successful
/// CONNACK.
pub async fn connect(c: &Common, addr: SocketAddr, tls: Option<&Tls>, client_id: &str) -> anyhow::Result<Client> {
    let v5 = match c.version {
        4 => false,
        5 => true,
        v => bail!("unsupported --proto-ver {v}: use 4 or 5"),
    };
    let mut client =
        Client::open_with(addr, v5, tls).await.with_context(|| format!("cannot connect to {}:{}", c.host, c.port))?;
    let connect = v5::Connect {
        clean_start: c.session_expiry == 0,
        session_expiry_interval_secs: c.session_expiry,
        keep_alive: c.keepalive,
        client_id: ByteString::from(client_id.to_string()),
        receive_max: NonZeroU16::new(u16::MAX),
        username: c.username.as_deref().map(|u| ByteString::from(u.to_string())),
        password: c.password.as_deref().map(|p| Bytes::copy_from_slice(p.as_bytes())),
        ..Default::default()
    };
    client.send(Packet::Connect(Box::new(connect))).await?;
    match client.recv().await? {
        Some(Frame::Packet(Packet::ConnectAck(a))) if a.reason_code == v5::ConnectAckReason::Success => Ok(client),
        Some(Frame::Packet(Packet::ConnectAck(a))) => bail!("connection refused by the broker: {:?}", a.reason_code),
        _ => bail!("expected CONNACK"),
    }
}

/// Connects `count` clients, spaced by `interval`, with a progress line per second.
pub async fn connect_all(c: &Common) -> anyhow::Result<Vec<Client>> {
    let addr = lookup_host((c.host.as_str(), c.port))
        .await
        .with_context(|| format!("cannot resolve {}", c.host))?
        .next()
        .with_context(|| format!("{} has no address", c.host))?;
    let tls = c.cafile.as_deref().map(|ca| Tls::new(ca, &c.host)).transpose()?;
    let start = Instant::now();
    let mut clients = Vec::with_capacity(c.count);
    let mut last = Instant::now();
    for i in 0..c.count {
        clients.push(connect(c, addr, tls.as_ref(), &format!("{}{}", c.prefix, i)).await?);
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

/// Queues a SUBSCRIBE to one filter.
pub fn subscribe(client: &mut Client, filter: &str, qos: QoS) -> anyhow::Result<()> {
    let options = v5::SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: v5::RetainHandling::AtSubscribe,
    };
    client.queue(Packet::Subscribe(v5::Subscribe {
        packet_id: NonZeroU16::MIN,
        id: None,
        user_properties: Vec::new(),
        topic_filters: vec![(ByteString::from(filter.to_string()), options)],
    }))?;
    Ok(())
}

/// Queues the acknowledgement of a received PUBLISH: PUBACK (QoS 1) or PUBREC (QoS 2).
pub fn acknowledge(client: &mut Client, qos: QoS, packet_id: NonZeroU16) -> anyhow::Result<()> {
    match qos {
        QoS::AtLeastOnce => client.queue(Packet::PublishAck(ack(packet_id)))?,
        QoS::ExactlyOnce => client.queue(Packet::PublishReceived(ack(packet_id)))?,
        QoS::AtMostOnce => {}
    }
    Ok(())
}

/// What a frame means to a load; the answers QoS 2 needs (PUBREL for PUBREC, PUBCOMP for
/// PUBREL) are queued on the way.
pub fn incoming(client: &mut Client, frame: Frame) -> anyhow::Result<Incoming> {
    Ok(match frame {
        Frame::Publish(p, payload) => Incoming::Publish { qos: p.qos, packet_id: p.packet_id, payload },
        Frame::Packet(Packet::PublishAck(_) | Packet::PublishComplete(_)) => Incoming::Ack,
        Frame::Packet(Packet::PublishReceived(a)) => {
            client.queue(Packet::PublishRelease(ack2(a.packet_id)))?;
            Incoming::Other
        }
        Frame::Packet(Packet::PublishRelease(a)) => {
            client.queue(Packet::PublishComplete(ack2(a.packet_id)))?;
            Incoming::Other
        }
        Frame::Packet(_) => Incoming::Other,
    })
}

/// The next frame, as a load sees it; an error when the broker closed the connection.
pub async fn next(client: &mut Client) -> anyhow::Result<Incoming> {
    match client.recv().await? {
        Some(frame) => incoming(client, frame),
        None => bail!("connection closed by the broker"),
    }
}

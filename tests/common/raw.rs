//! The tests' MQTT 5.0 client at the packet level: the load tool's raw client
//! (`weir_bench::client`), which acknowledges nothing by itself, with helpers that fail the
//! test when the broker does not answer as expected.

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::time::Duration;

use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;
use weir_bench::client::{ack, Client};

#[allow(unused_imports)] // re-exported for the test binaries that match on packets
pub use weir_bench::client::{Frame, Packet};

/// A connection to the broker under test.
pub struct Raw {
    client: Client,
}

pub fn pid(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("non-zero packet id")
}

pub fn connect_packet(client_id: &str) -> v5::Connect {
    v5::Connect {
        clean_start: true,
        keep_alive: 60,
        client_id: ByteString::from(client_id.to_string()),
        ..Default::default()
    }
}

pub fn subscribe(packet_id: u16, filter: &str, qos: QoS) -> Packet {
    subscribe_with(packet_id, filter, qos, |_| {})
}

pub fn subscribe_with(packet_id: u16, filter: &str, qos: QoS, f: impl FnOnce(&mut v5::SubscriptionOptions)) -> Packet {
    let mut opts = v5::SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: v5::RetainHandling::AtSubscribe,
    };
    f(&mut opts);
    Packet::Subscribe(v5::Subscribe {
        packet_id: pid(packet_id),
        id: None,
        user_properties: Vec::new(),
        topic_filters: vec![(ByteString::from(filter.to_string()), opts)],
    })
}

pub fn publish(topic: &str, qos: QoS, packet_id: Option<u16>) -> v5::Publish {
    v5::Publish {
        dup: false,
        retain: false,
        qos,
        packet_id: packet_id.map(pid),
        topic: ByteString::from(topic.to_string()),
        payload_size: 0,
        properties: Default::default(),
    }
}

/// A QoS `qos` will on `topic` with payload "gone", sent `delay` seconds after the client leaves.
pub fn last_will(topic: &str, qos: QoS, delay: Option<u32>) -> v5::LastWill {
    v5::LastWill {
        qos,
        retain: false,
        topic: ByteString::from(topic.to_string()),
        message: "gone".into(),
        will_delay_interval_sec: delay,
        correlation_data: None,
        message_expiry_interval: None,
        content_type: None,
        user_properties: vec![],
        is_utf8_payload: None,
        response_topic: None,
    }
}

pub fn puback(packet_id: NonZeroU16) -> Packet {
    Packet::PublishAck(ack(packet_id))
}

impl Raw {
    pub async fn open(addr: SocketAddr) -> Raw {
        Raw { client: Client::open(addr, true).await.expect("tcp connect") }
    }

    /// Opens a connection, sends CONNECT and returns the CONNACK.
    pub async fn connect(addr: SocketAddr, connect: v5::Connect) -> (Raw, Box<v5::ConnectAck>) {
        Raw::connect_as(addr, true, connect).await
    }

    /// As [`Raw::connect`], in MQTT 5 (`v5`) or 3.1.1; packets are seen as 5.0 ones either way.
    pub async fn connect_as(addr: SocketAddr, v5: bool, connect: v5::Connect) -> (Raw, Box<v5::ConnectAck>) {
        let mut raw = Raw { client: Client::open(addr, v5).await.expect("tcp connect") };
        raw.send(Packet::Connect(Box::new(connect))).await;
        match raw.recv().await {
            Some(Frame::Packet(Packet::ConnectAck(ack))) => (raw, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with a plain clean-start CONNECT and asserts success.
    pub async fn client(addr: SocketAddr, client_id: &str) -> Raw {
        let (raw, ack) = Raw::connect(addr, connect_packet(client_id)).await;
        assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
        raw
    }

    pub async fn send(&mut self, p: Packet) {
        self.client.queue(p).expect("encode");
        self.flush().await;
    }

    pub async fn publish(&mut self, p: v5::Publish, payload: &[u8]) {
        self.client.queue_publish(p, Bytes::copy_from_slice(payload)).expect("encode");
        self.flush().await;
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) {
        // A write may fail when the broker already closed the socket; tests look at what comes back.
        let _ = self.client.write_raw(bytes).await;
    }

    async fn flush(&mut self) {
        // As for write_raw: what comes back tells.
        let _ = self.client.flush().await;
    }

    /// The next frame, `None` when the broker closed the connection; panics after 5 s of silence.
    pub async fn recv(&mut self) -> Option<Frame> {
        self.recv_within(Duration::from_secs(5)).await.expect("no packet from the broker within 5 s")
    }

    /// `Err(())` on timeout, `Ok(None)` on close.
    pub async fn recv_within(&mut self, limit: Duration) -> Result<Option<Frame>, ()> {
        match tokio::time::timeout(limit, self.client.recv()).await {
            Err(_) => Err(()),
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(e)) => panic!("{e}"),
        }
    }

    /// The next frame, or `None` on close, on a broken connection or after `limit`: for a
    /// broker that may be killed meanwhile.
    #[allow(dead_code)] // not every test binary kills its broker under load
    pub async fn recv_or_none(&mut self, limit: Duration) -> Option<Frame> {
        tokio::time::timeout(limit, self.client.recv()).await.ok().and_then(Result::ok).flatten()
    }

    /// Expects a PUBLISH and returns it.
    pub async fn recv_publish(&mut self) -> (v5::Publish, Bytes) {
        match self.recv().await {
            Some(Frame::Publish(p, b)) => (p, b),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Expects a DISCONNECT and returns its reason code; then the socket must close.
    pub async fn recv_disconnect(&mut self) -> v5::DisconnectReasonCode {
        match self.recv().await {
            Some(Frame::Packet(Packet::Disconnect(d))) => d.reason_code,
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
    }
}

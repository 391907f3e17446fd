//! A raw MQTT 5.0 client on ntex-mqtt's codec: it acknowledges nothing by itself, so tests can
//! see and control every packet.

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::time::Duration;

use ntex_bytes::{BytePages, ByteString, Bytes, BytesMut};
use ntex_codec::{Decoder, Encoder};
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[allow(unused_imports)] // re-exported for the test binaries that match on packets
pub use v5::Packet;

/// What the broker sent.
#[derive(Debug)]
pub enum Frame {
    Packet(v5::Packet),
    Publish(v5::Publish, Bytes),
}

pub struct Raw {
    pub stream: TcpStream,
    codec: v5::Codec,
    rbuf: BytesMut,
    partial: Option<(v5::Publish, BytesMut)>,
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

pub fn subscribe(packet_id: u16, filter: &str, qos: QoS) -> v5::Packet {
    subscribe_with(packet_id, filter, qos, |_| {})
}

pub fn subscribe_with(
    packet_id: u16,
    filter: &str,
    qos: QoS,
    f: impl FnOnce(&mut v5::SubscriptionOptions),
) -> v5::Packet {
    let mut opts = v5::SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: v5::RetainHandling::AtSubscribe,
    };
    f(&mut opts);
    v5::Packet::Subscribe(v5::Subscribe {
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

pub fn puback(packet_id: NonZeroU16) -> v5::Packet {
    v5::Packet::PublishAck(v5::PublishAck {
        packet_id,
        reason_code: v5::PublishAckReason::Success,
        properties: Vec::new(),
        reason_string: None,
    })
}

impl Raw {
    pub async fn open(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        Raw { stream, codec: v5::Codec::new(), rbuf: BytesMut::new(), partial: None }
    }

    /// Opens a connection, sends CONNECT and returns the CONNACK.
    pub async fn connect(addr: SocketAddr, connect: v5::Connect) -> (Raw, Box<v5::ConnectAck>) {
        let mut raw = Raw::open(addr).await;
        raw.send(v5::Packet::Connect(Box::new(connect))).await;
        match raw.recv().await {
            Some(Frame::Packet(v5::Packet::ConnectAck(ack))) => (raw, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with a plain clean-start CONNECT and asserts success.
    pub async fn client(addr: SocketAddr, client_id: &str) -> Raw {
        let (raw, ack) = Raw::connect(addr, connect_packet(client_id)).await;
        assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
        raw
    }

    pub async fn send(&mut self, p: v5::Packet) {
        let mut out = BytePages::default();
        self.codec.encodev(v5::Encoded::Packet(p), &mut out).expect("encode");
        self.write_raw(&out.freeze()).await;
    }

    pub async fn publish(&mut self, mut p: v5::Publish, payload: &[u8]) {
        p.payload_size = payload.len() as u32;
        let mut out = BytePages::default();
        self.codec.encodev(v5::Encoded::Publish(p, Some(Bytes::copy_from_slice(payload))), &mut out).expect("encode");
        self.write_raw(&out.freeze()).await;
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) {
        // A write may fail when the broker already closed the socket; tests look at what comes back.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next frame, `None` when the broker closed the connection; panics after 5 s of silence.
    pub async fn recv(&mut self) -> Option<Frame> {
        self.recv_within(Duration::from_secs(5)).await.expect("no packet from the broker within 5 s")
    }

    /// `Err(())` on timeout, `Ok(None)` on close.
    pub async fn recv_within(&mut self, limit: Duration) -> Result<Option<Frame>, ()> {
        tokio::time::timeout(limit, self.next()).await.map_err(|_| ())
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
            Some(Frame::Packet(v5::Packet::Disconnect(d))) => d.reason_code,
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
    }

    async fn next(&mut self) -> Option<Frame> {
        let mut tmp = [0u8; 8192];
        loop {
            loop {
                match self.codec.decode(&mut self.rbuf) {
                    Ok(None) => break,
                    Ok(Some(v5::Decoded::Packet(p, _))) => return Some(Frame::Packet(p)),
                    Ok(Some(v5::Decoded::Publish(p, payload, _))) => {
                        if payload.len() as u32 >= p.payload_size {
                            return Some(Frame::Publish(p, payload));
                        }
                        let mut acc = BytesMut::new();
                        acc.extend_from_slice(&payload);
                        self.partial = Some((p, acc));
                    }
                    Ok(Some(v5::Decoded::PayloadChunk(c, eof))) => {
                        let (p, mut acc) = self.partial.take().expect("chunk after publish");
                        acc.extend_from_slice(&c);
                        if eof {
                            return Some(Frame::Publish(p, acc.freeze()));
                        }
                        self.partial = Some((p, acc));
                    }
                    Err(e) => panic!("broker sent an undecodable packet: {e}"),
                }
            }
            match self.stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
            }
        }
    }
}

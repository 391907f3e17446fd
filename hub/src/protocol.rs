//! The wire: MQTT 3.1, 3.1.1 and 5.0 framing through ntex-mqtt's codecs.
//!
//! The session logic is written once, against MQTT 5.0 packet types. A 3.1.1 connection decodes
//! with ntex-mqtt's v3 codec and its packets are lifted to their v5 equivalents; outgoing v5
//! packets are lowered again (reason codes mapped, properties dropped). MQTT 3.1 (`MQIsdp`,
//! level 3) differs from 3.1.1 only in the CONNECT header, which [`shim_mqisdp`] rewrites.
//!
//! Framing is ours: [`frame_len`] finds where the next packet ends and checks the lengths a
//! PUBLISH header claims against its frame, and the codecs only ever see whole, checked frames.
//! (Left to themselves they read past a short PUBLISH into the next packet; found by fuzzing.)
//! The commonest packet, a PUBLISH without properties, is read from its frame here, without the
//! codecs (see `Codec::decode_plain_publish`). Benchmark: `cargo bench -p weir-hub --bench codec`.

use std::num::NonZeroU16;

use ntex_bytes::{Buf, BytePages, ByteString, Bytes, BytesMut};
use ntex_codec::{Decoder, Encoder};
use ntex_mqtt::error::{DecodeError, EncodeError};
use ntex_mqtt::v3::codec as v3;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;
use weir_types::QoS as Level;

pub use v5::{Packet, Publish};

/// The protocol level a client connected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1, protocol name `MQIsdp`.
    V31,
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.0.
    V5,
}

impl Version {
    pub fn is_v5(self) -> bool {
        self == Version::V5
    }

    /// The protocol level byte, as EMQX reports it (`proto_ver`).
    pub fn level(self) -> u8 {
        match self {
            Version::V31 => 3,
            Version::V311 => 4,
            Version::V5 => 5,
        }
    }
}

/// What the first bytes of a connection say.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniff {
    /// Not enough bytes yet.
    NeedMore,
    /// A CONNECT of a version we speak.
    Connect(Version),
    /// A CONNECT with a protocol name or level we do not speak.
    UnsupportedVersion { v5_requested: bool },
    /// Anything else: the first packet of a connection must be CONNECT.
    NotConnect,
}

/// Reads the protocol name and level of the CONNECT at the start of `buf` without consuming it.
pub fn sniff(buf: &[u8]) -> Sniff {
    let Some(&first) = buf.first() else {
        return Sniff::NeedMore;
    };
    if first != 0x10 {
        return Sniff::NotConnect;
    }
    let Some(header_len) = varint_len(&buf[1..]) else {
        return if buf.len() > 5 { Sniff::NotConnect } else { Sniff::NeedMore };
    };
    let var = &buf[1 + header_len..];
    if var.len() < 2 {
        return Sniff::NeedMore;
    }
    let name_len = u16::from_be_bytes([var[0], var[1]]) as usize;
    if name_len > 6 {
        return Sniff::NotConnect;
    }
    if var.len() < 2 + name_len + 1 {
        return Sniff::NeedMore;
    }
    let name = &var[2..2 + name_len];
    let level = var[2 + name_len];
    match (name, level) {
        (b"MQTT", 4) => Sniff::Connect(Version::V311),
        (b"MQTT", 5) => Sniff::Connect(Version::V5),
        (b"MQIsdp", 3) => Sniff::Connect(Version::V31),
        (b"MQTT", l) | (b"MQIsdp", l) => Sniff::UnsupportedVersion { v5_requested: l == 5 },
        _ => Sniff::NotConnect,
    }
}

/// Length in bytes of the MQTT variable-length integer at the start of `buf`, once complete.
fn varint_len(buf: &[u8]) -> Option<usize> {
    buf.iter().take(4).position(|b| b & 0x80 == 0).map(|i| i + 1)
}

/// The MQTT variable-length integer at the start of `buf` (complete, see [`varint_len`]).
fn decode_varint(buf: &[u8]) -> u32 {
    let len = varint_len(buf).unwrap_or(0);
    buf[..len].iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(b & 0x7f) << (7 * i)))
}

fn encode_varint(mut v: u32, out: &mut Vec<u8>) {
    loop {
        let mut b = (v & 0x7f) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        out.push(b);
        if v == 0 {
            break;
        }
    }
}

/// Rewrites an MQTT 3.1 CONNECT header (`MQIsdp`, level 3) into the 3.1.1 one (`MQTT`, level 4),
/// which has the same body, so that the 3.1.1 codec can read it. Call only after [`sniff`]
/// returned [`Version::V31`].
pub fn shim_mqisdp(buf: &mut BytesMut) {
    let Some(header_len) = varint_len(&buf[1..]) else {
        return;
    };
    let remaining = decode_varint(&buf[1..]);
    let body_start = 1 + header_len + 2 + 6 + 1;
    if buf.len() < body_start || remaining < 9 {
        return;
    }
    let mut head = vec![0x10];
    encode_varint(remaining - 2, &mut head);
    head.extend_from_slice(b"\x00\x04MQTT\x04");
    let _old_header = buf.split_to(body_start);
    let rest = std::mem::take(buf);
    buf.extend_from_slice(&head);
    buf.extend_from_slice(&rest);
}

/// Where the next whole packet in `buf` ends, once it has fully arrived; `max_inbound` (0: no
/// limit) bounds its size before any of it is buffered.
pub fn frame_len(buf: &[u8], version: Version, max_inbound: u32) -> Result<Option<usize>, DecodeError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let Some(vlen) = varint_len(&buf[1..]) else {
        return if buf.len() >= 5 { Err(DecodeError::MalformedPacket) } else { Ok(None) };
    };
    let remaining = decode_varint(&buf[1..]);
    if max_inbound != 0 && remaining > max_inbound {
        return Err(DecodeError::MaxSizeExceeded { size: remaining, max_size: max_inbound });
    }
    let total = 1 + vlen + remaining as usize;
    if buf.len() < total {
        return Ok(None);
    }
    if first >> 4 == 3 {
        check_publish_header(first, &buf[1 + vlen..total], version)?;
    }
    Ok(Some(total))
}

/// The topic, packet id and (v5) properties that a PUBLISH header announces must fit its frame.
fn check_publish_header(first: u8, body: &[u8], version: Version) -> Result<(), DecodeError> {
    let qos = (first >> 1) & 0b11;
    if qos == 3 || body.len() < 2 {
        return Err(DecodeError::MalformedPacket);
    }
    let mut header = 2 + usize::from(u16::from_be_bytes([body[0], body[1]])) + if qos > 0 { 2 } else { 0 };
    if version.is_v5() {
        let props = body.get(header..).ok_or(DecodeError::MalformedPacket)?;
        let vlen = varint_len(props).ok_or(DecodeError::MalformedPacket)?;
        header += vlen + decode_varint(props) as usize;
    }
    if header > body.len() {
        return Err(DecodeError::MalformedPacket);
    }
    Ok(())
}

/// A decoded client packet, in v5 terms.
#[derive(Debug)]
pub enum Inbound {
    Packet(Packet),
    Publish(Publish, Bytes),
}

/// The codec of one connection.
pub struct Codec {
    version: Version,
    v3: v3::Codec,
    v5: v5::Codec,
    max_inbound: u32,
    /// The topic of the last PUBLISH: a client mostly publishes to the same topic again, which
    /// is then cloned rather than cut from the buffer and checked as UTF-8 again.
    last_topic: ByteString,
}

impl Codec {
    pub fn new(version: Version, max_inbound: u32) -> Codec {
        let codec = Codec {
            version,
            v3: v3::Codec::new(),
            v5: v5::Codec::new(),
            max_inbound,
            last_topic: ByteString::default(),
        };
        codec.v3.set_max_size(max_inbound);
        codec.v5.set_max_inbound_size(max_inbound);
        codec
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The client's Maximum Packet Size: larger outgoing packets are refused by [`Codec::encode`].
    pub fn set_max_outbound(&self, size: u32) {
        self.v5.set_max_outbound_size(size);
    }

    /// Decodes the next whole packet from `buf`, or `None` if more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Inbound>, DecodeError> {
        let Some(total) = frame_len(buf, self.version, self.max_inbound)? else {
            return Ok(None);
        };
        if let Some(publish) = self.decode_plain_publish(buf, total)? {
            return Ok(Some(publish));
        }
        // A whole, checked frame is in the buffer: the codec decodes it in one step, payload
        // included; anything else means codec and framing disagree.
        match self.version {
            Version::V5 => match self.v5.decode(buf)? {
                Some(v5::Decoded::Packet(p, _)) => Ok(Some(Inbound::Packet(p))),
                Some(v5::Decoded::Publish(p, payload, _)) if payload.len() as u32 == p.payload_size => {
                    Ok(Some(Inbound::Publish(p, payload)))
                }
                _ => Err(DecodeError::MalformedPacket),
            },
            Version::V311 | Version::V31 => match self.v3.decode(buf)? {
                Some(v3::Decoded::Packet(p, _)) => lift(p).map(|p| Some(Inbound::Packet(p))),
                Some(v3::Decoded::Publish(p, payload, _)) if payload.len() as u32 == p.payload_size => {
                    Ok(Some(Inbound::Publish(lift_publish(p), payload)))
                }
                _ => Err(DecodeError::MalformedPacket),
            },
        }
    }

    /// A PUBLISH without properties (every 3.1.1 one, and a 5.0 one whose property list is
    /// empty), read straight from its whole, checked frame of `total` bytes; `None` (nothing
    /// consumed) for anything else. ntex-mqtt's decoder, a state machine that reads the header
    /// again, took 160 ns a packet, the largest part of a connection's time (benches/codec.rs).
    fn decode_plain_publish(&mut self, buf: &mut BytesMut, total: usize) -> Result<Option<Inbound>, DecodeError> {
        let Some(&first) = buf.first() else { return Ok(None) };
        if first >> 4 != 3 {
            return Ok(None);
        }
        let at = |i: usize| buf.get(i).copied().ok_or(DecodeError::MalformedPacket);
        let body = 1 + varint_len(&buf[1..]).ok_or(DecodeError::MalformedPacket)?;
        let topic = body + 2..body + 2 + usize::from(u16::from_be_bytes([at(body)?, at(body + 1)?]));
        let qos = QoS::try_from((first >> 1) & 0b11)?;
        let mut header = topic.end;
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            _ => {
                header += 2;
                let id = u16::from_be_bytes([at(topic.end)?, at(topic.end + 1)?]);
                Some(NonZeroU16::new(id).ok_or(DecodeError::MalformedPacket)?)
            }
        };
        if self.version.is_v5() {
            if at(header)? != 0 {
                return Ok(None);
            }
            header += 1;
        }
        if header > total {
            return Err(DecodeError::MalformedPacket);
        }
        let name = buf.get(topic).ok_or(DecodeError::MalformedPacket)?;
        if name != self.last_topic.as_bytes() {
            let name = std::str::from_utf8(name).map_err(|_| DecodeError::Utf8Error)?;
            self.last_topic = ByteString::from(name);
        }
        buf.advance(header);
        // A payload that fits in a `Bytes` (23 bytes) is copied into it, which is cheaper than
        // sharing the buffer with a reference count; a longer one shares it.
        let payload = buf.split_to(total - header);
        let topic = self.last_topic.clone();
        let publish = Publish {
            dup: first & 0b1000 != 0,
            retain: first & 0b0001 != 0,
            qos,
            packet_id,
            topic,
            payload_size: payload.len() as u32,
            properties: v5::PublishProperties::default(),
        };
        Ok(Some(Inbound::Publish(publish, payload)))
    }

    /// Encodes a packet for this client. Packets a v3 client has no equivalent for (DISCONNECT,
    /// AUTH) are skipped.
    pub fn encode(&self, pkt: Packet, out: &mut BytePages) -> Result<(), EncodeError> {
        match self.version {
            Version::V5 => self.v5.encodev(v5::Encoded::Packet(pkt), out),
            Version::V311 | Version::V31 => match lower(pkt) {
                Some(p) => self.v3.encodev(v3::Encoded::Packet(p), out),
                None => Ok(()),
            },
        }
    }

    /// Encodes the PUBACK for a QoS 1 PUBLISH, one per message on the busiest path: written as
    /// its four (v5, with a reason other than success: five) bytes rather than built as a packet.
    pub fn encode_puback(&self, packet_id: NonZeroU16, reason: v5::PublishAckReason, out: &mut BytePages) {
        let [hi, lo] = packet_id.get().to_be_bytes();
        match (self.version, reason) {
            (Version::V5, v5::PublishAckReason::Success) | (Version::V311 | Version::V31, _) => {
                out.extend_from_slice(&[0x40, 2, hi, lo])
            }
            // No properties, so the property length may be left out (MQTT 5.0, 3.4.2.2).
            (Version::V5, reason) => out.extend_from_slice(&[0x40, 3, hi, lo, u8::from(reason)]),
        }
    }

    /// Encodes a PUBLISH with its payload (appended without copying).
    pub fn encode_publish(&self, pkt: Publish, payload: Bytes, out: &mut BytePages) -> Result<(), EncodeError> {
        match self.version {
            Version::V5 => self.v5.encodev(v5::Encoded::Publish(pkt, Some(payload)), out),
            Version::V311 | Version::V31 => {
                let p = v3::Publish {
                    dup: pkt.dup,
                    retain: pkt.retain,
                    qos: pkt.qos,
                    topic: pkt.topic,
                    packet_id: pkt.packet_id,
                    payload_size: pkt.payload_size,
                };
                self.v3.encodev(v3::Encoded::Publish(p, Some(payload)), out)
            }
        }
    }
}

/// A QoS off the wire, as Weir's type.
pub fn qos_in(q: QoS) -> Level {
    match q {
        QoS::AtMostOnce => Level::AtMostOnce,
        QoS::AtLeastOnce => Level::AtLeastOnce,
        QoS::ExactlyOnce => Level::ExactlyOnce,
    }
}

/// Weir's QoS, as the codec writes it.
pub fn qos_out(q: Level) -> QoS {
    match q {
        Level::AtMostOnce => QoS::AtMostOnce,
        Level::AtLeastOnce => QoS::AtLeastOnce,
        Level::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn ack(packet_id: NonZeroU16) -> v5::PublishAck {
    v5::PublishAck {
        packet_id,
        reason_code: v5::PublishAckReason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

fn ack2(packet_id: NonZeroU16) -> v5::PublishAck2 {
    v5::PublishAck2 {
        packet_id,
        reason_code: v5::PublishAck2Reason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

fn lift_publish(p: v3::Publish) -> Publish {
    Publish {
        dup: p.dup,
        retain: p.retain,
        qos: p.qos,
        packet_id: p.packet_id,
        topic: p.topic,
        payload_size: p.payload_size,
        properties: v5::PublishProperties::default(),
    }
}

/// A 3.1.1 client packet as its 5.0 equivalent. Server-to-client packets from a client are a
/// protocol violation.
fn lift(p: v3::Packet) -> Result<Packet, DecodeError> {
    Ok(match p {
        v3::Packet::Connect(c) => {
            let c = *c;
            Packet::Connect(Box::new(v5::Connect {
                clean_start: c.clean_session,
                keep_alive: c.keep_alive,
                last_will: c.last_will.map(|w| v5::LastWill {
                    qos: w.qos,
                    retain: w.retain,
                    topic: w.topic,
                    message: w.message,
                    will_delay_interval_sec: None,
                    correlation_data: None,
                    message_expiry_interval: None,
                    content_type: None,
                    user_properties: Vec::new(),
                    is_utf8_payload: None,
                    response_topic: None,
                }),
                client_id: c.client_id,
                username: c.username,
                password: c.password,
                ..v5::Connect::default()
            }))
        }
        v3::Packet::PublishAck { packet_id } => Packet::PublishAck(ack(packet_id)),
        v3::Packet::PublishReceived { packet_id } => Packet::PublishReceived(ack(packet_id)),
        v3::Packet::PublishRelease { packet_id } => Packet::PublishRelease(ack2(packet_id)),
        v3::Packet::PublishComplete { packet_id } => Packet::PublishComplete(ack2(packet_id)),
        v3::Packet::Subscribe { packet_id, topic_filters } => Packet::Subscribe(v5::Subscribe {
            packet_id,
            id: None,
            user_properties: Vec::new(),
            topic_filters: topic_filters
                .into_iter()
                .map(|(f, qos)| {
                    (
                        f,
                        v5::SubscriptionOptions {
                            qos,
                            no_local: false,
                            retain_as_published: false,
                            retain_handling: v5::RetainHandling::AtSubscribe,
                        },
                    )
                })
                .collect(),
        }),
        v3::Packet::Unsubscribe { packet_id, topic_filters } => {
            Packet::Unsubscribe(v5::Unsubscribe { packet_id, user_properties: Vec::new(), topic_filters })
        }
        v3::Packet::PingRequest => Packet::PingRequest,
        v3::Packet::Disconnect => Packet::Disconnect(v5::Disconnect::default()),
        v3::Packet::ConnectAck(_)
        | v3::Packet::SubscribeAck { .. }
        | v3::Packet::UnsubscribeAck { .. }
        | v3::Packet::PingResponse => return Err(DecodeError::UnsupportedPacketType),
    })
}

/// A 5.0 server packet as its 3.1.1 equivalent, or `None` where 3.1.1 has none.
fn lower(p: Packet) -> Option<v3::Packet> {
    Some(match p {
        Packet::ConnectAck(a) => v3::Packet::ConnectAck(v3::ConnectAck {
            session_present: a.session_present,
            return_code: match a.reason_code {
                v5::ConnectAckReason::Success => v3::ConnectAckReason::ConnectionAccepted,
                v5::ConnectAckReason::UnsupportedProtocolVersion => v3::ConnectAckReason::UnacceptableProtocolVersion,
                v5::ConnectAckReason::ClientIdentifierNotValid => v3::ConnectAckReason::IdentifierRejected,
                v5::ConnectAckReason::BadUserNameOrPassword => v3::ConnectAckReason::BadUserNameOrPassword,
                v5::ConnectAckReason::NotAuthorized | v5::ConnectAckReason::Banned => {
                    v3::ConnectAckReason::NotAuthorized
                }
                _ => v3::ConnectAckReason::ServiceUnavailable,
            },
        }),
        Packet::PublishAck(a) => v3::Packet::PublishAck { packet_id: a.packet_id },
        Packet::PublishReceived(a) => v3::Packet::PublishReceived { packet_id: a.packet_id },
        Packet::PublishRelease(a) => v3::Packet::PublishRelease { packet_id: a.packet_id },
        Packet::PublishComplete(a) => v3::Packet::PublishComplete { packet_id: a.packet_id },
        Packet::SubscribeAck(a) => v3::Packet::SubscribeAck {
            packet_id: a.packet_id,
            status: a
                .status
                .into_iter()
                .map(|s| match s {
                    v5::SubscribeAckReason::GrantedQos0 => v3::SubscribeReturnCode::Success(v5::QoS::AtMostOnce),
                    v5::SubscribeAckReason::GrantedQos1 => v3::SubscribeReturnCode::Success(v5::QoS::AtLeastOnce),
                    v5::SubscribeAckReason::GrantedQos2 => v3::SubscribeReturnCode::Success(v5::QoS::ExactlyOnce),
                    _ => v3::SubscribeReturnCode::Failure,
                })
                .collect(),
        },
        Packet::UnsubscribeAck(a) => v3::Packet::UnsubscribeAck { packet_id: a.packet_id },
        Packet::PingResponse => v3::Packet::PingResponse,
        Packet::Connect(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::PingRequest
        | Packet::Disconnect(_)
        | Packet::Auth(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V31_CONNECT: &[u8] = b"\x10\x16\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x08client31";

    #[test]
    fn sniffs_versions() {
        assert_eq!(sniff(V31_CONNECT), Sniff::Connect(Version::V31));
        assert_eq!(sniff(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"), Sniff::Connect(Version::V311));
        assert_eq!(sniff(b"\x10\x0d\x00\x04MQTT\x05"), Sniff::Connect(Version::V5));
        assert_eq!(sniff(b"\x10\x0d\x00\x04MQTT\x07"), Sniff::UnsupportedVersion { v5_requested: false });
        assert_eq!(sniff(b"\x10\x0d\x00"), Sniff::NeedMore);
        assert_eq!(sniff(b"GET / HTTP/1.1"), Sniff::NotConnect);
        assert_eq!(sniff(b"\x30\x00"), Sniff::NotConnect);
    }

    #[test]
    fn mqisdp_shim_decodes_as_311() {
        let mut buf = BytesMut::from(V31_CONNECT);
        shim_mqisdp(&mut buf);
        let mut codec = Codec::new(Version::V31, 0);
        match codec.decode(&mut buf).unwrap() {
            Some(Inbound::Packet(Packet::Connect(c))) => {
                assert_eq!(&*c.client_id, "client31");
                assert!(c.clean_start);
                assert_eq!(c.keep_alive, 60);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn short_publish_header_is_malformed_not_a_huge_payload() {
        // Found by cargo fuzz: remaining length 0, and the next bytes look like a topic length.
        for version in [Version::V311, Version::V5] {
            let mut codec = Codec::new(version, 0);
            let mut buf = BytesMut::from(&b"\x30\x00\x00\x00\x00"[..]);
            assert!(matches!(codec.decode(&mut buf), Err(DecodeError::MalformedPacket)), "{version:?}");
        }
        // v5: a property length that runs past the frame.
        let mut codec = Codec::new(Version::V5, 0);
        let mut buf = BytesMut::from(&b"\x30\x04\x00\x01a\x09"[..]);
        assert!(matches!(codec.decode(&mut buf), Err(DecodeError::MalformedPacket)));
    }

    #[test]
    fn oversize_is_refused_before_it_is_buffered() {
        let mut codec = Codec::new(Version::V311, 100);
        let mut buf = BytesMut::from(&b"\x30\xff\x7f"[..]);
        assert!(matches!(codec.decode(&mut buf), Err(DecodeError::MaxSizeExceeded { .. })));
    }

    #[test]
    fn split_publish_is_reassembled() {
        let mut codec = Codec::new(Version::V311, 0);
        let frame = b"\x30\x0c\x00\x03a/bhello!!";
        let mut buf = BytesMut::from(&frame[..7]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&frame[7..]);
        match codec.decode(&mut buf).unwrap() {
            Some(Inbound::Publish(p, payload)) => {
                assert_eq!(&*p.topic, "a/b");
                assert_eq!(&payload[..], b"hello!!");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// What ntex-mqtt's own decoder makes of one whole PUBLISH frame.
    fn ntex_publish(version: Version, frame: &[u8]) -> (Publish, Bytes) {
        let mut buf = BytesMut::from(frame);
        match version {
            Version::V5 => match v5::Codec::new().decode(&mut buf) {
                Ok(Some(v5::Decoded::Publish(p, payload, _))) => (p, payload),
                other => panic!("unexpected {other:?}"),
            },
            _ => match v3::Codec::new().decode(&mut buf) {
                Ok(Some(v3::Decoded::Publish(p, payload, _))) => (lift_publish(p), payload),
                other => panic!("unexpected {other:?}"),
            },
        }
    }

    #[test]
    fn plain_publishes_decode_as_ntex_decodes_them() {
        let long = "t/".repeat(20);
        let frame = |version: Version, flags: u8, topic: &str, id: Option<u16>, props: &[u8], payload: &[u8]| {
            let mut body = (topic.len() as u16).to_be_bytes().to_vec();
            body.extend_from_slice(topic.as_bytes());
            body.extend(id.map(u16::to_be_bytes).into_iter().flatten());
            if version.is_v5() {
                body.extend_from_slice(props);
            }
            body.extend_from_slice(payload);
            let mut f = vec![0x30 | flags];
            encode_varint(body.len() as u32, &mut f);
            f.extend_from_slice(&body);
            f
        };
        for version in [Version::V311, Version::V5] {
            let frames = [
                frame(version, 0, "a/b", None, &[0], b""),
                frame(version, 0b0010, "a/b", Some(7), &[0], b"same topic"),
                frame(version, 0b1101, "c", Some(65535), &[0], &[b'x'; 200]),
                frame(version, 0b0011, &long, Some(1), &[0], b"long topic, retained"),
                // v5: with a property (message expiry), which takes ntex-mqtt's path.
                frame(version, 0b0010, "a/b", Some(2), &[5, 2, 0, 0, 0, 9], b"props"),
            ];
            let mut codec = Codec::new(version, 0);
            let mut buf = BytesMut::from(&frames.concat()[..]);
            for f in &frames {
                match codec.decode(&mut buf) {
                    Ok(Some(Inbound::Publish(p, payload))) => assert_eq!((p, payload), ntex_publish(version, f)),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(buf.is_empty());
            let mut zero_id = BytesMut::from(&frame(version, 0b0010, "a", Some(0), &[0], b"")[..]);
            assert!(matches!(codec.decode(&mut zero_id), Err(DecodeError::MalformedPacket)));
            let mut bad_topic = BytesMut::from(&frame(version, 0, "\u{0}", None, &[0], b"")[..]);
            bad_topic[4] = 0xff;
            assert!(matches!(codec.decode(&mut bad_topic), Err(DecodeError::Utf8Error)));
        }
    }
}

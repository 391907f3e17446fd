//! The codec of one connection: decoding through our framing (plain PUBLISHes read straight
//! from their frame), encoding with v3 lowering, and the busiest packets written by hand.

use std::num::NonZeroU16;

use ntex_bytes::{Buf, BytePages, ByteString, Bytes, BytesMut};
use ntex_codec::{Decoder, Encoder};
use ntex_mqtt::error::{DecodeError, EncodeError};
use ntex_mqtt::v3::codec as v3;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

use super::error::InboundError;
use super::frame::{frame_len, varint_len};
use super::lift::{lift, lift_publish, lower};
use super::{Packet, Publish, Version};

/// A decoded client packet, in v5 terms.
#[derive(Debug)]
pub enum Inbound {
    /// Any packet but PUBLISH.
    Packet(Packet),
    /// A PUBLISH, with its whole payload.
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
    /// The codec of a client speaking `version`, refusing inbound packets larger than
    /// `max_inbound` bytes (0: no limit).
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

    /// The protocol the client speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The client's Maximum Packet Size: larger outgoing packets are refused by [`Codec::encode`].
    pub fn set_max_outbound(&self, size: u32) {
        self.v5.set_max_outbound_size(size);
    }

    /// Decodes the next whole packet from `buf`, or `None` if more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Inbound>, InboundError> {
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
                _ => Err(InboundError::malformed()),
            },
            Version::V311 | Version::V31 => match self.v3.decode(buf)? {
                Some(v3::Decoded::Packet(p, _)) => Ok(Some(Inbound::Packet(lift(p)?))),
                Some(v3::Decoded::Publish(p, payload, _)) if payload.len() as u32 == p.payload_size => {
                    Ok(Some(Inbound::Publish(lift_publish(p), payload)))
                }
                _ => Err(InboundError::malformed()),
            },
        }
    }

    /// A PUBLISH without properties (every 3.1.1 one, and a 5.0 one whose property list is
    /// empty), read straight from its whole, checked frame of `total` bytes; `None` (nothing
    /// consumed) for anything else. ntex-mqtt's decoder, a state machine that reads the header
    /// again, cost a connection more than anything else on this, its busiest path
    /// (`benches/codec.rs`; docs/BENCHMARKS.md, "The PUBLISH decoder").
    fn decode_plain_publish(&mut self, buf: &mut BytesMut, total: usize) -> Result<Option<Inbound>, InboundError> {
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
            return Err(InboundError::malformed());
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

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
//!
//! `frame` holds the framing, `codec` the codec of one connection, `lift` the
//! translation between 3.1.1 and 5.0 packets.

mod codec;
mod error;
mod frame;
mod lift;
mod properties;
#[cfg(test)]
mod tests;

pub use codec::{Codec, Inbound};
pub use error::InboundError;
pub use frame::frame_len;
use frame::{decode_varint, encode_varint, varint_len};
pub use v5::{Packet, Publish};

use ntex_bytes::BytesMut;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;
use weir_types::QoS as Level;

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
    /// Whether the client speaks MQTT 5.0.
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
    UnsupportedVersion {
        /// Whether it asked for level 5, so that the refusal is an MQTT 5 CONNACK.
        v5_requested: bool,
    },
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

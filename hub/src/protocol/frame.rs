//! Framing: where the next packet ends, its lengths checked before a codec sees it, and MQTT's
//! variable-length integers.

use ntex_mqtt::error::DecodeError;

use super::error::InboundError;

use super::properties::{self, Context};
use super::Version;

/// Length in bytes of the MQTT variable-length integer at the start of `buf`, once complete.
pub(super) fn varint_len(buf: &[u8]) -> Option<usize> {
    buf.iter().take(4).position(|b| b & 0x80 == 0).map(|i| i + 1)
}

/// The MQTT variable-length integer at the start of `buf` (complete, see [`varint_len`]).
pub(super) fn decode_varint(buf: &[u8]) -> u32 {
    let len = varint_len(buf).unwrap_or(0);
    buf[..len].iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(b & 0x7f) << (7 * i)))
}

pub(super) fn encode_varint(mut v: u32, out: &mut Vec<u8>) {
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

/// Where the next whole packet in `buf` ends, once it has fully arrived; `max_inbound` (0: no
/// limit) bounds its size before any of it is buffered.
pub fn frame_len(buf: &[u8], version: Version, max_inbound: u32) -> Result<Option<usize>, InboundError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let Some(vlen) = varint_len(&buf[1..]) else {
        return if buf.len() >= 5 { Err(InboundError::malformed()) } else { Ok(None) };
    };
    let remaining = decode_varint(&buf[1..]);
    if max_inbound != 0 && remaining > max_inbound {
        return Err(DecodeError::MaxSizeExceeded { size: remaining, max_size: max_inbound }.into());
    }
    let total = 1 + vlen + remaining as usize;
    if buf.len() < total {
        return Ok(None);
    }
    match first >> 4 {
        3 => check_publish_header(first, &buf[1 + vlen..total], version)?,
        1 => check_connect_flags(&buf[1 + vlen..total], version)?,
        8 => check_subscription_options(&buf[1 + vlen..total], version)?,
        _ => {}
    }
    Ok(Some(total))
}

/// The CONNECT flags that the codec reads past without complaint, checked as both
/// specifications require: without the Will Flag, Will QoS and Will Retain must be 0
/// (MQTT-3.1.2-13 and -15 in 3.1.1; MQTT-3.1.2-11 and -13 in 5.0); in 3.1.1 the Password Flag
/// needs the User Name Flag (MQTT-3.1.2-22). Either is a malformed packet.
fn check_connect_flags(body: &[u8], version: Version) -> Result<(), InboundError> {
    let name_len = match body {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => return Err(InboundError::malformed()),
    };
    // Protocol name, then the level, then the flags.
    let flags = *body.get(2 + name_len + 1).ok_or(DecodeError::MalformedPacket)?;
    let (will, will_qos, will_retain) = (flags & 0b0000_0100 != 0, (flags >> 3) & 0b11, flags & 0b0010_0000 != 0);
    let (username, password) = (flags & 0b1000_0000 != 0, flags & 0b0100_0000 != 0);
    if !will && (will_qos != 0 || will_retain) {
        return Err(InboundError::malformed());
    }
    if !version.is_v5() && password && !username {
        return Err(InboundError::malformed());
    }
    if version.is_v5() {
        // After the flags, the keep alive; then the properties.
        let props = body.get(2 + name_len + 4..).ok_or(DecodeError::MalformedPacket)?;
        properties::check(props, Context::Connect)?;
    }
    Ok(())
}

/// The Reserved bits of each subscription's options byte, which the codec reads past, must be 0:
/// the upper six in 3.1.1 (MQTT-3.8.3-4), the upper two in 5.0 (MQTT-3.8.3-5). Either is a
/// malformed packet. A Retain Handling of 3 is a protocol error (3.8.3.1).
fn check_subscription_options(body: &[u8], version: Version) -> Result<(), InboundError> {
    // The packet id, then (5.0) the properties.
    let mut at = 2;
    if version.is_v5() {
        let rest = body.get(at..).ok_or(DecodeError::MalformedPacket)?;
        at += properties::check(rest, Context::Subscribe)?;
    }
    let reserved = if version.is_v5() { 0b1100_0000 } else { 0b1111_1100 };
    while at < body.len() {
        let len = match body.get(at..at + 2) {
            Some([a, b]) => usize::from(u16::from_be_bytes([*a, *b])),
            _ => return Err(InboundError::malformed()),
        };
        at += 2 + len;
        let options = *body.get(at).ok_or(DecodeError::MalformedPacket)?;
        if options & reserved != 0 {
            return Err(InboundError::malformed());
        }
        if version.is_v5() && (options >> 4) & 0b11 == 3 {
            return Err(InboundError::Protocol("a Retain Handling of 3"));
        }
        at += 1;
    }
    Ok(())
}

/// The topic, packet id and (v5) properties that a PUBLISH header announces must fit its frame;
/// QoS 3, and the DUP flag on QoS 0 (MQTT-3.3.1-2), make it malformed.
fn check_publish_header(first: u8, body: &[u8], version: Version) -> Result<(), InboundError> {
    let qos = (first >> 1) & 0b11;
    let dup = first & 0b1000 != 0;
    if qos == 3 || (qos == 0 && dup) || body.len() < 2 {
        return Err(InboundError::malformed());
    }
    let mut header = 2 + usize::from(u16::from_be_bytes([body[0], body[1]])) + if qos > 0 { 2 } else { 0 };
    if version.is_v5() {
        let props = body.get(header..).ok_or(DecodeError::MalformedPacket)?;
        header += properties::check(props, Context::Publish)?;
    }
    if header > body.len() {
        return Err(InboundError::malformed());
    }
    Ok(())
}

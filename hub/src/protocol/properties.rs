//! MQTT 5.0 property lists, checked before the codec decodes them, for what the specification
//! calls a protocol error (reason code 0x82) and ntex-mqtt's decoder either reads past or calls
//! malformed (0x81): a property given twice (User Property excepted), a Subscription Identifier
//! of 0 or from a client, and values a property may not take (2.2.2.2, 3.1.2.11, 3.3.2.3,
//! 3.8.2.1), a Response Topic with a wildcard; and a Topic Alias of 0, which is its own reason
//! code (0x94).

use super::error::InboundError;
use super::frame::{decode_varint, varint_len};

/// Where a property list comes from: each packet forbids values of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Context {
    Connect,
    Publish,
    Subscribe,
}

/// Checks the property list at the start of `buf` (its length first, as a variable byte
/// integer); returns the bytes it takes, length included.
pub(super) fn check(buf: &[u8], context: Context) -> Result<usize, InboundError> {
    let vlen = varint_len(buf).ok_or_else(InboundError::malformed)?;
    let end = vlen + decode_varint(buf) as usize;
    let list = buf.get(vlen..end).ok_or_else(InboundError::malformed)?;
    // Each known property id is below 0x30 (`value_at` refuses the others): one bit each.
    let (mut seen, mut at) = (0u64, 0);
    while at < list.len() {
        let id = list[at];
        at += 1;
        let (value, len) = value_at(id, &list[at..])?;
        // A Response Topic is a topic name: no wildcards (MQTT-3.3.2-14).
        if id == 0x08 && list[at + 2..at + len].iter().any(|b| matches!(b, b'+' | b'#')) {
            return Err(InboundError::Protocol("a Response Topic with a wildcard"));
        }
        at += len;
        let bit = 1u64 << (id % 64);
        if id != 0x26 && seen & bit != 0 {
            return Err(InboundError::Protocol("a property given twice"));
        }
        seen |= bit;
        if id == 0x23 && value == Some(0) {
            return Err(InboundError::TopicAliasZero);
        }
        if forbidden(id, value, context) {
            return Err(InboundError::Protocol("a property with a value it may not take"));
        }
    }
    Ok(end)
}

/// Whether `value` (an integer property's) is one the specification rejects in `context`.
fn forbidden(id: u8, value: Option<u32>, context: Context) -> bool {
    let Some(v) = value else { return false };
    match id {
        // Payload Format Indicator, Request Problem/Response Information: 0 or 1.
        0x01 | 0x17 | 0x19 => v > 1,
        // Subscription Identifier: 1 to 268,435,455; in a SUBSCRIBE only.
        0x0B => v == 0 || context != Context::Subscribe,
        // Receive Maximum and Maximum Packet Size: not 0.
        0x21 | 0x27 => v == 0 && context == Context::Connect,
        _ => false,
    }
}

/// The value of property `id` at the start of `rest` (integers only; `None` for the others)
/// and the bytes it takes.
fn value_at(id: u8, rest: &[u8]) -> Result<(Option<u32>, usize), InboundError> {
    let bytes = |n: usize| rest.get(..n).ok_or_else(InboundError::malformed);
    let prefixed = |at: usize| -> Result<usize, InboundError> {
        let len = bytes(at + 2)?;
        Ok(at + 2 + usize::from(u16::from_be_bytes([len[at], len[at + 1]])))
    };
    let (value, len) = match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => (Some(u32::from(bytes(1)?[0])), 1),
        0x13 | 0x21 | 0x22 | 0x23 => {
            let b = bytes(2)?;
            (Some(u32::from(u16::from_be_bytes([b[0], b[1]]))), 2)
        }
        0x02 | 0x11 | 0x18 | 0x27 => {
            let b = bytes(4)?;
            (Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]])), 4)
        }
        0x0B => (Some(decode_varint(rest)), varint_len(rest).ok_or_else(InboundError::malformed)?),
        0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => (None, prefixed(0)?),
        0x26 => (None, prefixed(prefixed(0)?)?),
        _ => return Err(InboundError::malformed()),
    };
    bytes(len)?;
    Ok((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(props: &[u8]) -> Vec<u8> {
        [&[props.len() as u8][..], props].concat()
    }

    #[test]
    fn repeated_and_forbidden_properties_are_protocol_errors() {
        let ok = |p: &[u8], c| {
            check(&list(p), c).map(|n| n == p.len() + 1).map_err(|e| match e {
                InboundError::Protocol(_) => "protocol",
                InboundError::TopicAliasZero => "alias",
                InboundError::Decode(_) => "malformed",
            })
        };
        assert_eq!(ok(b"", Context::Publish), Ok(true));
        assert_eq!(ok(b"\x02\x00\x00\x00\x0a\x26\x00\x01k\x00\x01v\x26\x00\x01k\x00\x01w", Context::Publish), Ok(true));
        assert_eq!(ok(b"\x02\x00\x00\x00\x0a\x02\x00\x00\x00\x0a", Context::Publish), Err("protocol"));
        assert_eq!(ok(b"\x0b\x00", Context::Subscribe), Err("protocol"));
        assert_eq!(ok(b"\x0b\x05", Context::Subscribe), Ok(true));
        assert_eq!(ok(b"\x0b\x05", Context::Publish), Err("protocol"), "a client never sends one");
        assert_eq!(ok(b"\x21\x00\x00", Context::Connect), Err("protocol"));
        assert_eq!(ok(b"\x27\x00\x00\x00\x00", Context::Connect), Err("protocol"));
        assert_eq!(ok(b"\x17\x02", Context::Connect), Err("protocol"));
        assert_eq!(ok(b"\x01\x01", Context::Publish), Ok(true));
        assert_eq!(ok(b"\x23\x00\x00", Context::Publish), Err("alias"));
        assert_eq!(ok(b"\x23\x00\x01", Context::Publish), Ok(true));
        assert_eq!(ok(b"\x03\x00\x05ab", Context::Publish), Err("malformed"), "cut short");
        assert_eq!(ok(b"\x08\x00\x03a/b", Context::Publish), Ok(true));
        assert_eq!(ok(b"\x08\x00\x03a/#", Context::Publish), Err("protocol"));
        assert_eq!(ok(b"\x7f", Context::Publish), Err("malformed"), "unknown id");
    }
}

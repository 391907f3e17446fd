//! A message as the store keeps it: every field that must come back after a restart, with its
//! expiry as a wall-clock deadline (an `Instant` means nothing to the next process), encoded
//! with postcard.

use std::num::NonZeroU32;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec::PublishProperties;
use serde::{Deserialize, Serialize};
use weir_types::QoS;

use crate::message::Message;

/// A message as stored (read back; written as [`RecordRef`]).
#[derive(Deserialize)]
struct Record {
    topic: String,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    qos: u8,
    retain: bool,
    /// v5 properties that travel end to end.
    payload_format_utf8: bool,
    content_type: Option<String>,
    response_topic: Option<String>,
    #[serde(with = "serde_bytes")]
    correlation_data: Option<Vec<u8>>,
    user_properties: Vec<(String, String)>,
    /// Milliseconds since the Unix epoch at which it expires, if it does.
    expires_at_ms: Option<u64>,
    publisher: Option<String>,
    /// When the broker received it, in milliseconds since the Unix epoch.
    timestamp_ms: u64,
}

fn ms_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// [`Record`] borrowed from a message, which encodes to the same bytes (postcard writes a
/// `&str` as a `String`, and `serde_bytes` a slice as a `Vec`): the publish path writes a
/// message without copying its topic, payload and properties first.
#[derive(Serialize)]
struct RecordRef<'a> {
    topic: &'a str,
    #[serde(with = "serde_bytes")]
    payload: &'a [u8],
    qos: u8,
    retain: bool,
    payload_format_utf8: bool,
    content_type: Option<&'a str>,
    response_topic: Option<&'a str>,
    #[serde(with = "serde_bytes")]
    correlation_data: Option<&'a [u8]>,
    user_properties: Vec<(&'a str, &'a str)>,
    expires_at_ms: Option<u64>,
    publisher: Option<&'a str>,
    timestamp_ms: u64,
}

/// `msg` as bytes for the store.
pub fn encode(msg: &Message) -> Vec<u8> {
    postcard::to_allocvec(&borrow(msg)).unwrap_or_default()
}

/// Appends `msg` to `out` as a framed record, `[length: u32 LE][record]`: a run of them keeps
/// a read burst's messages in one value ([`decode_framed`] reads them back).
pub fn append_framed(msg: &Message, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    match postcard::to_extend(&borrow(msg), std::mem::take(out)) {
        Ok(mut grown) => {
            let len = (grown.len() - at - 4) as u32;
            grown[at..at + 4].copy_from_slice(&len.to_le_bytes());
            *out = grown;
        }
        // Serializing into a Vec cannot fail; were it to, the message would simply be missing.
        Err(_) => out.truncate(at),
    }
}

/// The messages of a run of framed records, and whether all of it decoded: a record that does
/// not ends the run (its length may be what is damaged).
pub fn decode_framed(mut bytes: &[u8]) -> (Vec<Message>, bool) {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else { return (out, false) };
        let len = u32::from_le_bytes(*len) as usize;
        let Some(msg) = rest.get(..len).and_then(decode) else { return (out, false) };
        out.push(msg);
        bytes = &rest[len..];
    }
    (out, true)
}

fn borrow(msg: &Message) -> RecordRef<'_> {
    let p = &msg.properties;
    let expires_at_ms = msg.expires_at.map(|at| {
        let (now, wall) = (Instant::now(), SystemTime::now());
        ms_since_epoch(wall + at.saturating_duration_since(now))
    });
    RecordRef {
        topic: &msg.topic,
        payload: &msg.payload,
        qos: msg.qos as u8,
        retain: msg.retain,
        payload_format_utf8: p.is_utf8_payload,
        content_type: p.content_type.as_deref(),
        response_topic: p.response_topic.as_deref(),
        correlation_data: p.correlation_data.as_deref(),
        user_properties: p.user_properties.iter().map(|(k, v)| (&**k, &**v)).collect(),
        expires_at_ms,
        publisher: msg.publisher.as_deref(),
        timestamp_ms: ms_since_epoch(msg.timestamp),
    }
}

/// A message from the store's bytes; `None` if they do not decode (the caller reports it).
pub fn decode(bytes: &[u8]) -> Option<Message> {
    let r: Record = postcard::from_bytes(bytes).ok()?;
    let (now, wall) = (Instant::now(), ms_since_epoch(SystemTime::now()));
    let left = r.expires_at_ms.map(|at| Duration::from_millis(at.saturating_sub(wall)));
    let properties = PublishProperties {
        message_expiry_interval: left.and_then(|d| NonZeroU32::new((d.as_secs() as u32).max(1))),
        is_utf8_payload: r.payload_format_utf8,
        content_type: r.content_type.map(ByteString::from),
        response_topic: r.response_topic.map(ByteString::from),
        correlation_data: r.correlation_data.map(Bytes::from),
        user_properties: r
            .user_properties
            .into_iter()
            .map(|(k, v)| (ByteString::from(k), ByteString::from(v)))
            .collect(),
        ..PublishProperties::default()
    };
    let qos = match r.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    Some(Message {
        topic: ByteString::from(r.topic),
        payload: Bytes::from(r.payload),
        qos,
        retain: r.retain,
        properties,
        // A deadline already past comes back as now: the message is expired at once.
        expires_at: left.map(|d| now + d),
        publisher: r.publisher.map(Into::into),
        timestamp: UNIX_EPOCH + Duration::from_millis(r.timestamp_ms),
        origin: None,
        store: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_comes_back_with_its_properties_and_expiry() {
        let mut msg = Message::new("a/b".into(), Bytes::from_static(b"\x00\xffhi"), QoS::AtLeastOnce, true);
        msg.properties.content_type = Some("text/plain".into());
        msg.properties.correlation_data = Some(Bytes::from_static(b"id"));
        msg.properties.user_properties.push(("k".into(), "v".into()));
        msg.properties.is_utf8_payload = true;
        msg.publisher = Some("c1".into());
        msg.expires_at = Some(Instant::now() + Duration::from_secs(60));
        let back = decode(&encode(&msg)).expect("decodes");
        assert_eq!(
            (&*back.topic, &back.payload[..], back.qos, back.retain),
            ("a/b", &b"\x00\xffhi"[..], QoS::AtLeastOnce, true)
        );
        assert_eq!(back.properties.content_type.as_deref(), Some("text/plain"));
        assert_eq!(back.properties.correlation_data.as_deref(), Some(&b"id"[..]));
        assert_eq!(back.properties.user_properties.len(), 1);
        assert!(back.properties.is_utf8_payload);
        assert_eq!(back.publisher.as_deref(), Some("c1"));
        let left = back.expires_at.expect("an expiry").saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(60), "{left:?}");
        assert!(decode(b"\xff\xff\xff").is_none(), "garbage is refused, not a panic");
    }

    #[test]
    fn framed_records_come_back_in_order_up_to_the_first_damaged_one() {
        let mut run = Vec::new();
        for topic in ["a", "b", "c"] {
            append_framed(&Message::new(topic.into(), Bytes::from_static(b"x"), QoS::AtLeastOnce, false), &mut run);
        }
        let topics =
            |(msgs, whole): (Vec<Message>, bool)| (msgs.iter().map(|m| m.topic.to_string()).collect::<Vec<_>>(), whole);
        assert_eq!(topics(decode_framed(&run)), (vec!["a".into(), "b".into(), "c".into()], true));
        assert_eq!(topics(decode_framed(&run[..run.len() - 1])), (vec!["a".into(), "b".into()], false));
        let mut bad = run.clone();
        let second = 4 + u32::from_le_bytes(bad[..4].try_into().unwrap()) as usize;
        bad[second..second + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(topics(decode_framed(&bad)), (vec!["a".into()], false));
    }
}

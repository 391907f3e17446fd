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

#[derive(Serialize, Deserialize)]
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

/// `msg` as bytes for the store.
pub fn encode(msg: &Message) -> Vec<u8> {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let p = &msg.properties;
    let record = Record {
        topic: msg.topic.to_string(),
        payload: msg.payload.to_vec(),
        qos: msg.qos as u8,
        retain: msg.retain,
        payload_format_utf8: p.is_utf8_payload,
        content_type: p.content_type.as_ref().map(|s| s.to_string()),
        response_topic: p.response_topic.as_ref().map(|s| s.to_string()),
        correlation_data: p.correlation_data.as_ref().map(|b| b.to_vec()),
        user_properties: p.user_properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        expires_at_ms: msg.expires_at.map(|at| ms_since_epoch(wall + at.saturating_duration_since(now))),
        publisher: msg.publisher.as_deref().map(str::to_string),
        timestamp_ms: ms_since_epoch(msg.timestamp),
    };
    postcard::to_allocvec(&record).unwrap_or_default()
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
}

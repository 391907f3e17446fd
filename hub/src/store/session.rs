//! A persistent session as the store keeps it: its expiry, when its client left, its delayed
//! will, and its subscriptions (one key each, `client_id \0 filter`, so that a subscription is
//! one small write and a session's are one range). Clean sessions are never written.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ntex_mqtt::v5::codec::RetainHandling;
use serde::{Deserialize, Serialize};
use weir_types::QoS;

use super::record;
use crate::message::Message;
use crate::session::SubOptions;

/// A session's own fields.
#[derive(Serialize, Deserialize)]
struct Meta {
    expiry_interval: u32,
    /// When its connection ended, in milliseconds since the Unix epoch; `None` while connected.
    disconnected_at_ms: Option<u64>,
    /// A will that waits for its delay: the message's [`record`] bytes and when it is due.
    #[serde(with = "serde_bytes")]
    will: Option<Vec<u8>>,
    will_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Sub {
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: u8,
    subscription_id: Option<u32>,
}

/// A session read back from the store.
pub struct StoredSession {
    /// Its client id.
    pub client_id: String,
    /// Seconds it outlives its connection.
    pub expiry_interval: u32,
    /// When its connection ended; `None` if it was connected when the broker stopped.
    pub disconnected_at: Option<SystemTime>,
    /// A will waiting for its delay, and when it is due.
    pub will: Option<(Message, SystemTime)>,
    /// Its subscriptions, as the client wrote them.
    pub subscriptions: Vec<(String, SubOptions)>,
    /// Its queue: each delivery's place, in order, and what it is.
    pub queued: Vec<(u64, Queued)>,
    /// Incoming QoS 2 packet ids it acknowledged with PUBREC and awaits PUBREL for.
    pub awaiting_rel: Vec<u16>,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The key of `client_id`'s subscription to `filter`. MQTT strings cannot hold U+0000
/// (MQTT-1.5.4-2), so it separates them unambiguously.
pub fn sub_key(client_id: &str, filter: &str) -> String {
    format!("{client_id}\0{filter}")
}

/// The key of the delivery at `place` in `client_id`'s queue: in hex of fixed width, so that
/// the keys of one queue sort in its order.
pub fn queue_key(client_id: &str, place: u64) -> String {
    format!("{client_id}\0{place:016x}")
}

/// The key of `client_id`'s incoming QoS 2 packet id `packet_id` awaiting PUBREL.
pub fn rel_key(client_id: &str, packet_id: u16) -> String {
    format!("{client_id}\0{packet_id:04x}")
}

/// A delivery as the store keeps it: its message's id and the options it goes out with.
#[derive(Serialize, Deserialize)]
pub struct Queued {
    /// The message's id in the messages table.
    pub message: u64,
    /// The QoS it goes out at.
    pub qos: u8,
    /// The RETAIN flag it goes out with.
    pub retain: bool,
    /// The Subscription Identifier it goes out with.
    pub subscription_id: Option<u32>,
    /// Set once the subscriber sent PUBREC for it (QoS 2): the packet id of the PUBREL that is
    /// all that is left to send; `message` is then no longer held.
    pub released: Option<u16>,
    /// The shared-subscription group it came through (group, filter): it goes to another member
    /// if this session ends before acknowledging it.
    pub share: Option<(String, String)>,
}

/// A delivery as bytes.
pub fn encode_queued(q: &Queued) -> Vec<u8> {
    postcard::to_allocvec(q).unwrap_or_default()
}

/// A delivery from its bytes.
pub fn decode_queued(bytes: &[u8]) -> Option<Queued> {
    postcard::from_bytes(bytes).ok()
}

/// The range of `client_id`'s subscription keys (and of its queue's keys: they share the
/// prefix).
pub fn sub_range(client_id: &str) -> (String, String) {
    (format!("{client_id}\0"), format!("{client_id}\u{1}"))
}

/// A session's fields as bytes; `disconnected_at` and `will` (with when it is due) if it has
/// left.
pub fn encode_meta(
    expiry_interval: u32,
    disconnected_at: Option<SystemTime>,
    will: Option<(&Message, SystemTime)>,
) -> Vec<u8> {
    let meta = Meta {
        expiry_interval,
        disconnected_at_ms: disconnected_at.map(ms),
        will: will.map(|(m, _)| record::encode(m)),
        will_at_ms: will.map_or(0, |(_, at)| ms(at)),
    };
    postcard::to_allocvec(&meta).unwrap_or_default()
}

/// A subscription's options as bytes.
pub fn encode_sub(o: &SubOptions) -> Vec<u8> {
    let sub = Sub {
        qos: o.qos as u8,
        no_local: o.no_local,
        retain_as_published: o.retain_as_published,
        retain_handling: match o.retain_handling {
            RetainHandling::AtSubscribe => 0,
            RetainHandling::AtSubscribeNew => 1,
            RetainHandling::NoAtSubscribe => 2,
        },
        subscription_id: o.subscription_id.map(NonZeroU32::get),
    };
    postcard::to_allocvec(&sub).unwrap_or_default()
}

fn decode_sub(bytes: &[u8]) -> Option<SubOptions> {
    let s: Sub = postcard::from_bytes(bytes).ok()?;
    Some(SubOptions {
        qos: QoS::try_from(s.qos).ok()?,
        no_local: s.no_local,
        retain_as_published: s.retain_as_published,
        retain_handling: match s.retain_handling {
            0 => RetainHandling::AtSubscribe,
            1 => RetainHandling::AtSubscribeNew,
            _ => RetainHandling::NoAtSubscribe,
        },
        subscription_id: s.subscription_id.and_then(NonZeroU32::new),
    })
}

/// A session from its fields' bytes and its subscriptions' (key, bytes); `None` if its fields
/// do not decode. A subscription that does not decode is left out.
pub fn decode(client_id: &str, meta: &[u8], subs: &[(String, Vec<u8>)]) -> Option<StoredSession> {
    let m: Meta = postcard::from_bytes(meta).ok()?;
    let prefix = format!("{client_id}\0");
    let subscriptions = subs
        .iter()
        .filter_map(|(key, bytes)| Some((key.strip_prefix(&prefix)?.to_string(), decode_sub(bytes)?)))
        .collect();
    Some(StoredSession {
        client_id: client_id.to_string(),
        expiry_interval: m.expiry_interval,
        disconnected_at: m.disconnected_at_ms.map(time),
        will: m.will.and_then(|bytes| record::decode(&bytes)).map(|w| (w, time(m.will_at_ms))),
        subscriptions,
        queued: Vec::new(),
        awaiting_rel: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_comes_back_with_its_subscriptions_and_will() {
        let opts = SubOptions {
            qos: QoS::AtLeastOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::AtSubscribeNew,
            subscription_id: NonZeroU32::new(7),
        };
        let will = Message::new("bye".into(), ntex_bytes::Bytes::from_static(b"gone"), QoS::AtLeastOnce, false);
        let (left, due) = (time(1_000), time(61_000));
        let meta = encode_meta(3600, Some(left), Some((&will, due)));
        let subs = vec![(sub_key("c1", "a/#"), encode_sub(&opts)), (sub_key("c1", "$share/g/b"), encode_sub(&opts))];
        let s = decode("c1", &meta, &subs).expect("decodes");
        assert_eq!((s.expiry_interval, s.disconnected_at), (3600, Some(left)));
        let (w, at) = s.will.expect("the will");
        assert_eq!((&*w.topic, &w.payload[..], at), ("bye", &b"gone"[..], due));
        assert_eq!(s.subscriptions, vec![("a/#".to_string(), opts), ("$share/g/b".to_string(), opts)]);
        let (from, to) = sub_range("c1");
        assert!(from.as_str() <= subs[0].0.as_str() && subs[0].0.as_str() < to.as_str());
        assert!(!(from.as_str()..to.as_str()).contains(&sub_key("c10", "a").as_str()), "c10 is another client");
        assert!(decode("c1", b"\xff", &[]).is_none());
    }
}

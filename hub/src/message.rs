//! What travels through the broker: an immutable [`Message`] shared by every delivery of it, and
//! the per-subscriber [`Delivery`] that carries the options of the subscription that matched.

use std::collections::BTreeMap;
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec::PublishProperties;
use weir_rules::pipeline::Published;
use weir_rules::value::Value;
use weir_types::QoS;

/// A client identifier; shared, because every session, delivery and log line refers to it.
pub type ClientId = Arc<str>;

/// A published message, as it entered the broker.
#[derive(Debug)]
pub struct Message {
    /// The topic it was published to.
    pub topic: ByteString,
    /// Its payload, shared by every delivery.
    pub payload: Bytes,
    /// The QoS it was published with.
    pub qos: QoS,
    /// The RETAIN flag the publisher set.
    pub retain: bool,
    /// v5 properties that travel end to end (content type, response topic, correlation data,
    /// user properties, payload format). Per-hop ones (topic alias, subscription ids) are cleared.
    pub properties: PublishProperties,
    /// From the Message Expiry Interval; expired messages are not delivered.
    pub expires_at: Option<Instant>,
    /// The client that published it, for No Local; `None` for messages the broker makes itself.
    pub publisher: Option<ClientId>,
    /// When the broker received it.
    pub timestamp: SystemTime,
    /// The MQTT sink that published it (a rule's republish): the rules writing into that sink
    /// do not see it, so a rule never loops on its own output.
    pub origin: Option<Arc<str>>,
    /// Its keys in the store, once something keeps it there.
    pub store: StoreIds,
}

/// Where the store keeps a message: each set once, when first kept.
#[derive(Debug, Clone, Default)]
pub struct StoreIds {
    /// In `messages`, once a persistent session's queue holds it (written once, however many
    /// sessions queue it).
    pub queued: OnceLock<u64>,
    /// In `rule_input`, once a rule wanted it at QoS 1 or 2 (the write-ahead), until the rules
    /// have run it.
    pub rule_input: OnceLock<u64>,
}

impl Message {
    /// A copy that shares no memory with the buffer it was read from: a payload read from a
    /// socket is a slice of a read buffer of up to 64 KiB, which it would keep alive for as long
    /// as it is stored. What stores a message (the retained messages, the queue of a session
    /// that is offline) keeps this copy instead.
    pub fn detached(&self) -> Message {
        let own = |b: &ByteString| ByteString::from(&**b);
        let mut properties = self.properties.clone();
        properties.content_type = properties.content_type.as_ref().map(own);
        properties.response_topic = properties.response_topic.as_ref().map(own);
        properties.correlation_data = properties.correlation_data.as_ref().map(|b| Bytes::copy_from_slice(b));
        properties.user_properties = properties.user_properties.iter().map(|(k, v)| (own(k), own(v))).collect();
        Message {
            topic: own(&self.topic),
            payload: Bytes::copy_from_slice(&self.payload),
            properties,
            publisher: self.publisher.clone(),
            origin: self.origin.clone(),
            store: self.store.clone(),
            ..*self
        }
    }

    /// A message the broker itself publishes (`$SYS`, wills carry their own publisher).
    pub fn new(topic: ByteString, payload: Bytes, qos: QoS, retain: bool) -> Message {
        Message {
            topic,
            payload,
            qos,
            retain,
            properties: PublishProperties::default(),
            expires_at: None,
            publisher: None,
            timestamp: SystemTime::now(),
            origin: None,
            store: StoreIds::default(),
        }
    }

    /// Whether its Message Expiry Interval has passed at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// The Message Expiry Interval to send onward: what is left of the original, at least 1 s.
    pub fn remaining_expiry(&self, now: Instant) -> Option<NonZeroU32> {
        self.expires_at.map(|t| {
            let secs = t.saturating_duration_since(now).as_secs().clamp(1, u64::from(u32::MAX));
            NonZeroU32::new(secs as u32).unwrap_or(NonZeroU32::MIN)
        })
    }
}

/// What the rules read of a message.
impl Published for Message {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn qos(&self) -> QoS {
        self.qos
    }

    fn publisher(&self) -> Option<&str> {
        self.publisher.as_deref()
    }

    fn retain(&self) -> bool {
        self.retain
    }

    fn received_at(&self) -> SystemTime {
        self.timestamp
    }

    fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    fn write_ahead(&self) -> Option<u64> {
        self.store.rule_input.get().copied()
    }

    fn properties(&self) -> Option<Value> {
        let text = |s: &str| Value::Str(s.to_string());
        let mut props = BTreeMap::new();
        if !self.properties.user_properties.is_empty() {
            let pairs = self.properties.user_properties.iter().map(|(k, v)| (k.to_string(), text(v))).collect();
            props.insert("User-Property".to_string(), Value::Map(pairs));
        }
        if let Some(ct) = &self.properties.content_type {
            props.insert("Content-Type".to_string(), text(ct));
        }
        if let Some(rt) = &self.properties.response_topic {
            props.insert("Response-Topic".to_string(), text(rt));
        }
        (!props.is_empty()).then_some(Value::Map(props))
    }
}

/// The shared-subscription group a delivery came through, so that it can be given to another
/// member if this one leaves before acknowledging it.
#[derive(Debug, Clone)]
pub struct ShareRef {
    /// The group's name.
    pub group: Arc<str>,
    /// The filter its members subscribed to.
    pub filter: Arc<str>,
}

/// One message on its way to one subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message.
    pub msg: Arc<Message>,
    /// The message's QoS downgraded to the subscription's.
    pub qos: QoS,
    /// The RETAIN flag to send: set for retained messages sent on subscribe, and kept on live
    /// messages only with Retain As Published.
    pub retain: bool,
    /// The Subscription Identifier of the subscription that matched (MQTT 5).
    pub subscription_id: Option<NonZeroU32>,
    /// The shared subscription it came through, if any.
    pub share: Option<ShareRef>,
    /// Its place in a persistent session's queue in the store, if it is kept there.
    pub stored: Option<std::num::NonZeroU64>,
}

/// A client's will: the message published when its connection ends without a normal
/// DISCONNECT, `delay` seconds later (MQTT 5's Will Delay Interval).
#[derive(Debug)]
pub struct Will {
    /// The will message, as the client gave it in CONNECT.
    pub message: Message,
    /// Seconds to wait first; the broker shortens it to the session's expiry interval.
    pub delay: u32,
}

/// A packet identifier in the form the codec wants.
pub type PacketId = NonZeroU16;

//! The broker's events as rules see them: `FROM "$events/client_connected"` and the others of
//! the rule SQL spec, section 8. Each event has its topic, the value of its `event` column, the
//! `event_type` that selects it in the rule tester, and the tester's default columns. The broker
//! builds an event's columns; this is the catalogue they are named from.

use std::collections::BTreeMap;

use crate::value::Columns;
use crate::value::Value;

/// An event a rule can select from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A client connected.
    ClientConnected,
    /// A client's connection ended.
    ClientDisconnected,
    /// A CONNACK was sent, accepting or refusing.
    ClientConnack,
    /// A publish or subscribe was checked against the authorization rules.
    ClientCheckAuthzComplete,
    /// A CONNECT was authenticated (until Weir has authentication, every client is, anonymously).
    ClientCheckAuthnComplete,
    /// A session subscribed.
    SessionSubscribed,
    /// A session unsubscribed.
    SessionUnsubscribed,
    /// A message was sent to a subscriber.
    MessageDelivered,
    /// A subscriber acknowledged a message (PUBACK, or PUBREC for QoS 2).
    MessageAcked,
    /// A message matched no subscription.
    MessageDropped,
    /// A message for one subscriber was dropped (queue full, expired, ...).
    DeliveryDropped,
    /// An alarm was raised (`$events/sys/alarm_activated`).
    AlarmActivated,
    /// An alarm was cleared (`$events/sys/alarm_deactivated`).
    AlarmDeactivated,
}

impl EventKind {
    /// Every event, in the order of [`EventKind::bit`].
    pub const ALL: [EventKind; 13] = [
        EventKind::ClientConnected,
        EventKind::ClientDisconnected,
        EventKind::ClientConnack,
        EventKind::ClientCheckAuthzComplete,
        EventKind::ClientCheckAuthnComplete,
        EventKind::SessionSubscribed,
        EventKind::SessionUnsubscribed,
        EventKind::MessageDelivered,
        EventKind::MessageAcked,
        EventKind::MessageDropped,
        EventKind::DeliveryDropped,
        EventKind::AlarmActivated,
        EventKind::AlarmDeactivated,
    ];

    /// Its tester `event_type`, and its topic after `$events/`: `client_connected`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ClientConnected => "client_connected",
            EventKind::ClientDisconnected => "client_disconnected",
            EventKind::ClientConnack => "client_connack",
            EventKind::ClientCheckAuthzComplete => "client_check_authz_complete",
            EventKind::ClientCheckAuthnComplete => "client_check_authn_complete",
            EventKind::SessionSubscribed => "session_subscribed",
            EventKind::SessionUnsubscribed => "session_unsubscribed",
            EventKind::MessageDelivered => "message_delivered",
            EventKind::MessageAcked => "message_acked",
            EventKind::MessageDropped => "message_dropped",
            EventKind::DeliveryDropped => "delivery_dropped",
            EventKind::AlarmActivated => "alarm_activated",
            EventKind::AlarmDeactivated => "alarm_deactivated",
        }
    }

    /// The topic rules select it with: `$events/client_connected`; the system's events are
    /// one level down, `$events/sys/alarm_activated`, as in EMQX.
    pub fn topic(self) -> String {
        match self {
            EventKind::AlarmActivated | EventKind::AlarmDeactivated => format!("$events/sys/{}", self.name()),
            _ => format!("$events/{}", self.name()),
        }
    }

    /// The value of the `event` column: `client.connected`.
    pub fn event_column(self) -> &'static str {
        match self {
            EventKind::ClientConnected => "client.connected",
            EventKind::ClientDisconnected => "client.disconnected",
            EventKind::ClientConnack => "client.connack",
            EventKind::ClientCheckAuthzComplete => "client.check_authz_complete",
            EventKind::ClientCheckAuthnComplete => "client.check_authn_complete",
            EventKind::SessionSubscribed => "session.subscribed",
            EventKind::SessionUnsubscribed => "session.unsubscribed",
            EventKind::MessageDelivered => "message.delivered",
            EventKind::MessageAcked => "message.acked",
            EventKind::MessageDropped => "message.dropped",
            EventKind::DeliveryDropped => "delivery.dropped",
            EventKind::AlarmActivated => "alarm.activated",
            EventKind::AlarmDeactivated => "alarm.deactivated",
        }
    }

    /// The event a tester `event_type` names.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A bit of its own, for sets of events kept in one integer.
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The columns the rule tester gives this event when the context does not say otherwise,
    /// with EMQX's example values (`c_emqx`, `u_emqx`, `t/a`, ...).
    pub fn tester_columns(self, now_ms: i64) -> Columns {
        let mut c = Columns::from([
            ("clientid".into(), text("c_emqx")),
            ("username".into(), text("u_emqx")),
            ("timestamp".into(), Value::Int(now_ms)),
            ("node".into(), text("weir@127.0.0.1")),
            ("event".into(), text(self.event_column())),
        ]);
        let mut add = |pairs: Vec<(&str, Value)>| c.extend(pairs.into_iter().map(|(k, v)| (k.to_string(), v)));
        match self {
            EventKind::ClientConnected | EventKind::ClientConnack => {
                add(connection());
                add(connect(self, now_ms));
            }
            EventKind::ClientDisconnected => {
                add(connection());
                add(vec![
                    ("reason", text("normal")),
                    ("connected_at", Value::Int(now_ms)),
                    ("disconnected_at", Value::Int(now_ms)),
                    ("disconn_props", empty()),
                ]);
            }
            EventKind::ClientCheckAuthzComplete => add(vec![
                ("peerhost", text("127.0.0.1")),
                ("topic", text("t/a")),
                ("action", text("publish")),
                ("result", text("allow")),
                ("authz_source", text("default")),
            ]),
            EventKind::ClientCheckAuthnComplete => add(authn()),
            EventKind::SessionSubscribed | EventKind::SessionUnsubscribed => {
                let props = if self == EventKind::SessionSubscribed { "sub_props" } else { "unsub_props" };
                add(vec![
                    ("peerhost", text("127.0.0.1")),
                    ("topic", text("t/a")),
                    ("qos", Value::Int(1)),
                    (props, empty()),
                ]);
            }
            EventKind::MessageDelivered | EventKind::MessageAcked | EventKind::DeliveryDropped => {
                add(message(true, now_ms));
                match self {
                    EventKind::MessageAcked => add(vec![("puback_props", empty())]),
                    EventKind::DeliveryDropped => add(vec![("reason", text("queue_full"))]),
                    _ => {}
                }
            }
            EventKind::MessageDropped => {
                add(message(false, now_ms));
                add(vec![("reason", text("no_subscribers"))]);
            }
            EventKind::AlarmActivated | EventKind::AlarmDeactivated => {
                c.retain(|k, _| matches!(k.as_str(), "timestamp" | "node" | "event"));
                c.extend(alarm(self, now_ms).into_iter().map(|(k, v)| (k.to_string(), v)));
            }
        }
        c
    }
}

fn text(s: &str) -> Value {
    Value::Str(s.to_string())
}

fn empty() -> Value {
    Value::Map(BTreeMap::new())
}

/// The tester's columns of an alarm event: an example alarm, as EMQX's tester has.
fn alarm(kind: EventKind, now_ms: i64) -> Vec<(&'static str, Value)> {
    let mut c = vec![
        ("name", text("sink_disconnected/example")),
        ("message", text("sink example cannot reach its destination")),
        ("details", Value::Map(BTreeMap::from([("sink".to_string(), text("example"))]))),
        ("activated_at", Value::Int(now_ms)),
    ];
    if kind == EventKind::AlarmDeactivated {
        c.push(("deactivated_at", Value::Int(now_ms)));
    }
    c
}

/// The tester's columns of `client_check_authn_complete`, beyond who the client is.
fn authn() -> Vec<(&'static str, Value)> {
    vec![
        ("peername", text("127.0.0.1:52918")),
        ("reason_code", text("success")),
        ("is_superuser", Value::Bool(false)),
        ("is_anonymous", Value::Bool(true)),
    ]
}

/// The tester's columns of a client's connection.
fn connection() -> Vec<(&'static str, Value)> {
    vec![
        ("peername", text("127.0.0.1:52918")),
        ("sockname", text("127.0.0.1:1883")),
        ("proto_name", text("MQTT")),
        ("proto_ver", Value::Int(5)),
    ]
}

/// The tester's columns of `client_connected` and `client_connack`, beyond the connection's.
fn connect(kind: EventKind, now_ms: i64) -> Vec<(&'static str, Value)> {
    let mut c = vec![
        ("mountpoint", Value::Undefined),
        ("keepalive", Value::Int(60)),
        ("clean_start", Value::Bool(true)),
        ("expiry_interval", Value::Int(3600)),
        ("is_bridge", Value::Bool(false)),
        ("conn_props", empty()),
    ];
    c.push(match kind {
        EventKind::ClientConnected => ("connected_at", Value::Int(now_ms)),
        _ => ("reason_code", text("success")),
    });
    c
}

/// The tester's columns of a message; `from` names its publisher `from_clientid` and
/// `from_username`, as delivery events do.
fn message(from: bool, now_ms: i64) -> Vec<(&'static str, Value)> {
    let (clientid, username) = if from { ("from_clientid", "from_username") } else { ("clientid", "username") };
    let flags = BTreeMap::from([("dup".into(), Value::Bool(false)), ("retain".into(), Value::Bool(false))]);
    vec![
        ("id", text("0005F298A0F0AEE2F443000012DC0002")),
        (clientid, text("c_emqx_1")),
        (username, text("u_emqx_1")),
        ("payload", text(r#"{"msg": "hello"}"#)),
        ("peerhost", text("127.0.0.1")),
        ("topic", text("t/a")),
        ("qos", Value::Int(1)),
        ("flags", Value::Map(flags)),
        ("pub_props", empty()),
        ("publish_received_at", Value::Int(now_ms)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_topics_and_bits_are_distinct() {
        for (i, k) in EventKind::ALL.iter().enumerate() {
            assert_eq!(EventKind::from_name(k.name()), Some(*k));
            assert!(k.topic().starts_with("$events/"));
            assert_eq!(k.bit().count_ones(), 1);
            for other in &EventKind::ALL[i + 1..] {
                assert_ne!(k.bit(), other.bit());
            }
        }
        assert_eq!(EventKind::from_name("message_publish"), None);
    }

    #[test]
    fn every_event_has_the_common_columns() {
        for k in EventKind::ALL {
            let c = k.tester_columns(1);
            // The system's events are about no client.
            let system = matches!(k, EventKind::AlarmActivated | EventKind::AlarmDeactivated);
            let columns: &[&str] =
                if system { &["timestamp", "node", "event"] } else { &["clientid", "timestamp", "node", "event"] };
            for column in columns.iter().copied() {
                assert!(c.contains_key(column), "{k:?} lacks {column}");
            }
            assert_eq!(c["event"], Value::Str(k.event_column().into()));
        }
    }
}

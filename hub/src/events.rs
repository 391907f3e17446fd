//! The columns of the broker's events (`$events/client_connected`, ...), with EMQX's names.
//! A connection builds them only when a rule selects the event
//! (`crate::broker::Broker::listening`), so an event nobody selects costs one atomic load.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ntex_bytes::ByteString;
use ntex_mqtt::v5::codec as v5;
use weir_rules::now_ms;
use weir_rules::pipeline::Published;
use weir_rules::value::Columns;
use weir_rules::value::Value;
use weir_types::QoS;

use crate::message::{ClientId, Message};
use crate::protocol::Version;

/// What events say about a client, fixed at CONNECT. Boxed by the connection: most
/// connections never build an event, and every byte in a connection is paid by all of them.
#[derive(Debug)]
pub struct ClientInfo {
    /// The client id (the one the broker assigned, if it did).
    pub client_id: ClientId,
    /// The user name of CONNECT.
    pub username: Option<ByteString>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's address the client connected to (`sockname`).
    pub local: SocketAddr,
    /// `MQTT`, or `MQIsdp` for 3.1.
    pub proto_name: &'static str,
    /// The protocol level: 3, 4 or 5.
    pub proto_ver: u8,
    /// The keep alive in force, in seconds.
    pub keepalive: u16,
    /// Clean start (clean session in 3.1.1).
    pub clean_start: bool,
    /// The session expiry interval in force, in seconds.
    pub expiry_interval: u32,
    /// When it connected, in milliseconds since the Unix epoch.
    pub connected_at: i64,
}

impl ClientInfo {
    /// What a CONNECT says about its client: its client id as sent (the broker may assign
    /// another), its keep alive and expiry as asked (the broker may change them).
    pub fn of(connect: &v5::Connect, version: Version, peer: SocketAddr, local: SocketAddr) -> ClientInfo {
        ClientInfo {
            client_id: Arc::from(&*connect.client_id),
            username: connect.username.clone(),
            peer,
            local,
            proto_name: if version == Version::V31 { "MQIsdp" } else { "MQTT" },
            proto_ver: version.level(),
            keepalive: connect.keep_alive,
            clean_start: connect.clean_start,
            expiry_interval: connect.session_expiry_interval_secs,
            connected_at: now_ms(),
        }
    }
}

fn text(s: &str) -> Value {
    Value::Str(s.to_string())
}

fn no_props() -> Value {
    Value::Map(BTreeMap::new())
}

impl ClientInfo {
    /// `clientid` and `username`, which every client event has.
    fn who(&self) -> Columns {
        Columns::from([
            ("clientid".into(), text(&self.client_id)),
            ("username".into(), self.username.as_deref().map_or(Value::Undefined, text)),
        ])
    }

    /// A client event's columns: who, from where, over what.
    fn connection(&self) -> Columns {
        let mut c = self.who();
        c.extend([
            ("peername".into(), text(&self.peer.to_string())),
            ("sockname".into(), text(&self.local.to_string())),
            ("proto_name".into(), text(self.proto_name)),
            ("proto_ver".into(), Value::Int(i64::from(self.proto_ver))),
            ("keepalive".into(), Value::Int(i64::from(self.keepalive))),
            ("clean_start".into(), Value::Bool(self.clean_start)),
            ("expiry_interval".into(), Value::Int(i64::from(self.expiry_interval))),
            ("is_bridge".into(), Value::Bool(false)),
            ("mountpoint".into(), Value::Undefined),
            ("conn_props".into(), no_props()),
        ]);
        c
    }

    /// A session or authorization event's columns: who, from which host, about which topic.
    fn about(&self, topic: &str) -> Columns {
        let mut c = self.who();
        c.extend([
            ("peerhost".into(), text(&self.peer.ip().to_string())),
            ("peername".into(), text(&self.peer.to_string())),
            ("topic".into(), text(topic)),
        ]);
        c
    }

    /// `client_connected`.
    pub fn connected(&self) -> Columns {
        let mut c = self.connection();
        c.insert("connected_at".into(), Value::Int(self.connected_at));
        c
    }

    /// `reason_code` as EMQX spells it: `success`, `client_identifier_not_valid`, ...
    pub fn connack(&self, reason_code: &str) -> Columns {
        let mut c = self.connection();
        c.insert("reason_code".into(), text(reason_code));
        c
    }

    /// `reason`: `normal`, `tcp_closed`, `keepalive_timeout`, `takenover`, `kicked`, ...
    pub fn disconnected(&self, reason: &str) -> Columns {
        let mut c = self.connection();
        c.extend([
            ("reason".into(), text(reason)),
            ("connected_at".into(), Value::Int(self.connected_at)),
            ("disconnected_at".into(), Value::Int(now_ms())),
            ("disconn_props".into(), no_props()),
        ]);
        c
    }

    /// `client_check_authn_complete`: `reason_code` is `success`, or why the client was
    /// refused (`bad_username_or_password`, `banned`); anonymous when no authenticator is set.
    pub fn authenticated(&self, reason_code: &str, superuser: bool, anonymous: bool) -> Columns {
        let mut c = self.who();
        c.extend([
            ("peername".into(), text(&self.peer.to_string())),
            ("reason_code".into(), text(reason_code)),
            ("is_superuser".into(), Value::Bool(superuser)),
            ("is_anonymous".into(), Value::Bool(anonymous)),
        ]);
        c
    }

    /// `client_check_authz_complete`: `action` is `publish` or `subscribe`, `result` `allow` or
    /// `deny`, and `source` what decided (`file`, `client_info`, `superuser`, `cache`, or
    /// `default` for `no_match`).
    pub fn authorized(&self, topic: &str, action: &str, result: &str, source: &str) -> Columns {
        let mut c = self.about(topic);
        c.extend([
            ("action".into(), text(action)),
            ("result".into(), text(result)),
            ("authz_source".into(), text(source)),
        ]);
        c
    }

    /// `session_subscribed` (`props` = `sub_props`) or `session_unsubscribed` (`unsub_props`).
    pub fn subscription(&self, topic: &str, qos: QoS, props: &str) -> Columns {
        let mut c = self.about(topic);
        c.extend([("qos".into(), Value::Int(i64::from(qos.level()))), (props.into(), no_props())]);
        c
    }

    /// `message_delivered` and `message_acked`: the message, with its publisher as `from_*`
    /// and this client as the receiver.
    pub fn delivery(&self, msg: &Message, node: &str) -> Columns {
        let mut c = delivery_of(msg, &self.client_id, node);
        c.insert("username".into(), self.username.as_deref().map_or(Value::Undefined, text));
        c.insert("peerhost".into(), text(&self.peer.ip().to_string()));
        c
    }
}

/// The columns EMQX gives a `message.publish` rule, for the message events that carry them.
pub fn columns_of(msg: &Message, node: &str) -> Columns {
    let ms = msg.timestamp.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    Columns::from([
        ("topic".into(), text(&msg.topic)),
        ("payload".into(), Value::from_bytes(&msg.payload)),
        ("qos".into(), Value::Int(i64::from(msg.qos.level()))),
        ("clientid".into(), msg.publisher.as_deref().map_or(Value::Undefined, text)),
        (
            "flags".into(),
            Value::Map(BTreeMap::from([
                ("dup".into(), Value::Bool(false)),
                ("retain".into(), Value::Bool(msg.retain)),
            ])),
        ),
        ("pub_props".into(), msg.properties().unwrap_or_else(no_props)),
        ("timestamp".into(), Value::Int(ms)),
        ("publish_received_at".into(), Value::Int(ms)),
        ("event".into(), text("message.publish")),
        ("node".into(), text(node)),
    ])
}

/// A delivery's columns when only the receiving client id is known (a message dropped from an
/// offline session's queue).
pub fn delivery_of(msg: &Message, receiver: &str, node: &str) -> Columns {
    let mut c = columns_of(msg, node);
    for (from, to) in [("clientid", "from_clientid"), ("username", "from_username")] {
        let publisher = c.remove(from).unwrap_or(Value::Undefined);
        c.insert(to.into(), publisher);
    }
    c.insert("clientid".into(), text(receiver));
    c.insert("username".into(), Value::Undefined);
    c
}

/// Whether message events skip `msg`: `$SYS` messages, as EMQX's default
/// `rule_engine.ignore_sys_message = true`.
pub fn ignored(msg: &Message) -> bool {
    msg.topic.starts_with("$SYS/")
}

/// `message_dropped` and `delivery_dropped` add why.
pub fn with_reason(mut columns: Columns, reason: &str) -> Columns {
    columns.insert("reason".into(), text(reason));
    columns
}

#[cfg(test)]
mod tests {
    use ntex_bytes::Bytes;

    use super::*;

    fn info() -> ClientInfo {
        let connect = v5::Connect {
            client_id: ByteString::from_static("dev-1"),
            username: Some(ByteString::from_static("alice")),
            keep_alive: 30,
            ..Default::default()
        };
        let (peer, local) = ("10.0.0.7:5000".parse().unwrap(), "10.0.0.1:1883".parse().unwrap());
        ClientInfo::of(&connect, Version::V5, peer, local)
    }

    fn get<'a>(c: &'a Columns, key: &str) -> &'a Value {
        c.get(key).unwrap_or(&Value::Undefined)
    }

    #[test]
    fn client_events_have_emqx_columns() {
        let i = info();
        let c = i.connected();
        assert_eq!(get(&c, "clientid"), &text("dev-1"));
        assert_eq!(get(&c, "username"), &text("alice"));
        assert_eq!(get(&c, "peername"), &text("10.0.0.7:5000"));
        assert_eq!(get(&c, "sockname"), &text("10.0.0.1:1883"));
        assert_eq!((get(&c, "proto_name"), get(&c, "proto_ver")), (&text("MQTT"), &Value::Int(5)));
        assert_eq!(get(&c, "keepalive"), &Value::Int(30));
        assert_eq!(get(&i.disconnected("takenover"), "reason"), &text("takenover"));
        assert_eq!(get(&i.connack("success"), "reason_code"), &text("success"));
        let sub = i.subscription("t/#", QoS::AtLeastOnce, "sub_props");
        assert_eq!((get(&sub, "topic"), get(&sub, "qos")), (&text("t/#"), &Value::Int(1)));
        assert_eq!(get(&sub, "peerhost"), &text("10.0.0.7"));
        assert_eq!(get(&i.authorized("t/1", "publish", "allow", "default"), "result"), &text("allow"));
    }

    #[test]
    fn deliveries_name_the_publisher_as_from_and_the_receiver_as_clientid() {
        let mut msg = Message::new(ByteString::from_static("t/1"), Bytes::from_static(b"{}"), QoS::ExactlyOnce, true);
        msg.publisher = Some("pub-1".into());
        msg.properties.content_type = Some(ByteString::from_static("json"));
        let c = info().delivery(&msg, "n");
        assert_eq!((get(&c, "from_clientid"), get(&c, "clientid")), (&text("pub-1"), &text("dev-1")));
        assert_eq!((get(&c, "qos"), get(&c, "node")), (&Value::Int(2), &text("n")));
        let props = Value::Map(BTreeMap::from([("Content-Type".to_string(), text("json"))]));
        assert_eq!(get(&c, "pub_props"), &props);
        let dropped = with_reason(delivery_of(&msg, "offline", "n"), "queue_full");
        assert_eq!((get(&dropped, "clientid"), get(&dropped, "reason")), (&text("offline"), &text("queue_full")));
        assert_eq!(get(&dropped, "username"), &Value::Undefined);
        assert!(ignored(&Message::new(ByteString::from_static("$SYS/x"), Bytes::new(), QoS::AtMostOnce, false)));
    }
}

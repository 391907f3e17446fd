//! One client connection, from the first byte to the last: CONNECT, the packet loop, and what
//! happens to the session and the will when it ends.
//!
//! A connection is one tokio task. It waits on four things at once: bytes from the socket,
//! deliveries in its session's mailbox, a request to leave (takeover, shutdown) and the keep
//! alive deadline. Output is encoded into one buffer and written once per wake-up.

use std::collections::HashMap;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ntex_bytes::{BytePages, ByteString, Bytes, BytesMut};
use ntex_mqtt::error::{DecodeError, EncodeError};
use ntex_mqtt::v5::codec as v5;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};
use weir_rules::eval::Columns;
use weir_rules::event_kind::EventKind;

use crate::broker::{Broker, Burst, NEVER_EXPIRE};
use crate::events::ClientInfo;
use crate::message::{ClientId, Delivery, Message};
use crate::metrics::Metrics;
use crate::protocol::{self, qos_in, qos_out, Codec, Inbound, Packet, Sniff, Version};
use crate::session::{Inflight, Kick, Session, SubOptions};
use crate::transport::Transport;
use v5::DisconnectReasonCode as Rc;
use weir_types::topic;
use weir_types::QoS;

/// Smallest and largest room given to one socket read.
const MIN_READ: usize = 1024;
const MAX_READ: usize = 64 * 1024;

/// Why a connection ended; decides the will and the v5 DISCONNECT we send.
#[derive(Debug)]
enum Exit {
    /// The client sent DISCONNECT; `with_will` for v5 reason 0x04.
    ClientDisconnect {
        with_will: bool,
    },
    /// The socket closed or failed without DISCONNECT.
    PeerGone(String),
    Kicked(Kick),
    KeepAliveTimeout,
    /// The client broke the protocol: we send DISCONNECT with this reason (v5) and close.
    Violation(Rc, String),
}

/// A will, with the delay before it is published.
struct Will {
    message: Message,
    delay: u32,
}

/// Serves one client on `stream` until it disconnects.
/// Shutdown reaches the connection through its session (the broker kicks every session).
/// `local` is the listener's address the client reached, for events.
pub async fn serve<S: Transport>(broker: Arc<Broker>, stream: S, peer: SocketAddr, local: SocketAddr) {
    let mut stream = stream;
    let mut rbuf = BytesMut::with_capacity(4096);
    let idle = Duration::from_secs(broker.config.mqtt.idle_timeout.max(1));
    // The one-off states (CONNECT, handshake, goodbye) are boxed: a task is as large as its
    // largest state, and an idle connection should pay only for the packet loop.
    let version = match Box::pin(tokio::time::timeout(idle, read_connect_header(&mut stream, &mut rbuf))).await {
        Err(_) => {
            debug!(%peer, "no CONNECT within idle_timeout, closing");
            return;
        }
        Ok(Err(reason)) => {
            info!(%peer, reason, "connection refused before CONNECT");
            return;
        }
        Ok(Ok(Sniff::Connect(v))) => v,
        Ok(Ok(Sniff::UnsupportedVersion { v5_requested })) => {
            info!(%peer, "unsupported MQTT protocol version, refusing");
            let reply: &[u8] = if v5_requested { b"\x20\x03\x00\x84\x00" } else { b"\x20\x02\x00\x01" };
            let _ = stream.write_all(reply).await;
            return;
        }
        Ok(Ok(other)) => {
            info!(%peer, ?other, "connection refused before CONNECT");
            return;
        }
    };
    if version == Version::V31 {
        protocol::shim_mqisdp(&mut rbuf);
    }
    let mut codec = Codec::new(version, broker.config.mqtt.max_packet_size);
    let connect = match Box::pin(tokio::time::timeout(idle, read_connect(&mut stream, &mut rbuf, &mut codec))).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            info!(%peer, error = %e, "bad CONNECT, closing");
            if version.is_v5() {
                let reason = match e {
                    ConnectReadError::Decode(DecodeError::MaxSizeExceeded { .. }) => {
                        v5::ConnectAckReason::PacketTooLarge
                    }
                    _ => v5::ConnectAckReason::MalformedPacket,
                };
                let _ = stream.write_all(&refusal(&codec, reason)).await;
            }
            return;
        }
        Err(_) => {
            debug!(%peer, "CONNECT incomplete within idle_timeout, closing");
            return;
        }
    };
    let Some(mut conn) = Box::pin(Connection::accept(broker, stream, rbuf, codec, peer, local, *connect)).await else {
        return;
    };
    let exit = conn.run().await;
    Box::pin(conn.finish(exit)).await;
}

/// Reads until the start of the stream says which protocol it speaks.
async fn read_connect_header<S: Transport>(stream: &mut S, rbuf: &mut BytesMut) -> Result<Sniff, &'static str> {
    loop {
        match protocol::sniff(rbuf) {
            Sniff::NeedMore => {}
            other => return Ok(other),
        }
        let n = stream.read_into(rbuf, MIN_READ).await.map_err(|_| "read error")?;
        if n == 0 {
            return Err("closed before CONNECT");
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnectReadError {
    #[error("{0}")]
    Decode(DecodeError),
    #[error("socket closed during CONNECT")]
    Closed,
    #[error("the first packet is not CONNECT")]
    NotConnect,
}

async fn read_connect<S: Transport>(
    stream: &mut S,
    rbuf: &mut BytesMut,
    codec: &mut Codec,
) -> Result<Box<v5::Connect>, ConnectReadError> {
    loop {
        match codec.decode(rbuf).map_err(ConnectReadError::Decode)? {
            Some(Inbound::Packet(Packet::Connect(c))) => return Ok(c),
            Some(_) => return Err(ConnectReadError::NotConnect),
            None => {}
        }
        let n = stream.read_into(rbuf, MIN_READ).await.map_err(|_| ConnectReadError::Closed)?;
        if n == 0 {
            return Err(ConnectReadError::Closed);
        }
    }
}

/// A connected, accepted client.
struct Connection<S> {
    broker: Arc<Broker>,
    stream: S,
    peer: SocketAddr,
    codec: Codec,
    version: Version,
    rbuf: BytesMut,
    /// How much room the next read gets: grows while reads fill it, shrinks when idle, so that
    /// an idle connection holds little memory and a busy one reads in large batches.
    read_hint: usize,
    /// Encoded packets not yet written.
    out: BytePages,
    /// Sessions this connection's last publishes overfilled: reading pauses until they drain.
    congested: Vec<Arc<Session>>,
    /// This read burst's messages for the rules and its counts, handed over at its end.
    burst: Burst,
    /// Whether the last read burst fed the rules: only such a publisher pauses when the rule
    /// engine is behind, never a subscriber.
    fed_rules: bool,
    /// Wall-clock time of the last read, stamped on the messages it carried (one clock read per
    /// batch, not per message).
    now_wall: SystemTime,
    session: Arc<Session>,
    client_id: ClientId,
    kick: oneshot::Receiver<Kick>,
    /// Silence allowed before the client is dropped; `None` for keep alive 0.
    keepalive_timeout: Option<Duration>,
    last_recv: Instant,
    /// Boxed: most clients have none, and every byte here is paid by every connection.
    will: Option<Box<Will>>,
    /// Outgoing QoS 1/2 messages allowed in flight: min(client Receive Maximum, max_inflight).
    window: usize,
    /// Topic aliases the client set (v5, client to broker).
    alias_in: HashMap<u16, ByteString>,
    /// Topic aliases we assigned (broker to client), at most `alias_out_max`.
    alias_out: HashMap<ByteString, NonZeroU16>,
    alias_out_max: u16,
    /// What `$events/...` say about this client.
    info: Box<ClientInfo>,
}

impl<S: Transport> Connection<S> {
    /// Validates the CONNECT, opens (or takes over) the session and answers CONNACK.
    async fn accept(
        broker: Arc<Broker>,
        mut stream: S,
        rbuf: BytesMut,
        codec: Codec,
        peer: SocketAddr,
        local: SocketAddr,
        connect: v5::Connect,
    ) -> Option<Connection<S>> {
        let cfg = &broker.config.mqtt;
        let version = codec.version();
        let mut info = Box::new(ClientInfo {
            client_id: Arc::from(&*connect.client_id),
            username: connect.username.clone(),
            peer,
            local,
            proto_name: if version == Version::V31 { "MQIsdp" } else { "MQTT" },
            proto_ver: version.level(),
            keepalive: connect.keep_alive,
            clean_start: connect.clean_start,
            expiry_interval: connect.session_expiry_interval_secs,
            connected_at: weir_rules::now_ms(),
        });

        let mut assigned = None;
        let client_id: ClientId = if connect.client_id.is_empty() {
            if !version.is_v5() && !connect.clean_start {
                info!(%peer, "empty client id with clean_session = false, refusing");
                let _ = stream
                    .write_all(&refuse(&broker, &codec, v5::ConnectAckReason::ClientIdentifierNotValid, &info))
                    .await;
                return None;
            }
            let id = format!("weir-{:016x}", rand::random::<u64>());
            assigned = Some(ByteString::from(id.clone()));
            id.into()
        } else {
            Arc::from(&*connect.client_id)
        };

        let will = match &connect.last_will {
            None => None,
            Some(w) => {
                if let Err(e) = topic::validate_name(&w.topic) {
                    info!(%peer, client_id = %client_id, error = %e, "invalid will topic, refusing");
                    let _ =
                        stream.write_all(&refuse(&broker, &codec, v5::ConnectAckReason::TopicNameInvalid, &info)).await;
                    return None;
                }
                let mut properties = v5::PublishProperties {
                    correlation_data: w.correlation_data.clone(),
                    content_type: w.content_type.clone(),
                    user_properties: w.user_properties.clone(),
                    is_utf8_payload: w.is_utf8_payload.unwrap_or(false),
                    response_topic: w.response_topic.clone(),
                    ..Default::default()
                };
                properties.message_expiry_interval = w.message_expiry_interval;
                Some(Box::new(Will {
                    message: Message {
                        topic: w.topic.clone(),
                        payload: w.message.clone(),
                        qos: qos_in(w.qos),
                        retain: w.retain,
                        expires_at: w
                            .message_expiry_interval
                            .map(|s| Instant::now() + Duration::from_secs(u64::from(s.get()))),
                        properties,
                        publisher: Some(client_id.clone()),
                        timestamp: SystemTime::now(),
                        origin: None,
                    },
                    delay: w.will_delay_interval_sec.unwrap_or(0),
                }))
            }
        };

        let expiry = if version.is_v5() {
            connect.session_expiry_interval_secs
        } else if connect.clean_start {
            0
        } else {
            cfg.session_expiry_interval
        };

        info.client_id = client_id.clone();
        info.expiry_interval = expiry;
        let (session, present) = broker.open_session(&client_id, connect.clean_start).await;
        let kick = session.attach();
        session.state.lock().expiry_interval = expiry;

        // Server Keep Alive exists only in MQTT 5's CONNACK: older clients keep their own.
        let server_keepalive = cfg.server_keepalive.filter(|_| version.is_v5());
        let keepalive = server_keepalive.unwrap_or(connect.keep_alive);
        info.keepalive = keepalive;
        let keepalive_timeout =
            (keepalive > 0).then(|| Duration::from_secs_f64(f64::from(keepalive) * cfg.keepalive_multiplier));
        if let Some(max) = connect.max_packet_size {
            codec.set_max_outbound(max.get());
        }
        let window = connect.receive_max.map_or(u16::MAX, NonZeroU16::get).min(cfg.max_inflight.max(1)) as usize;

        // Most clients send nothing right after CONNECT: keep no read buffer until they do.
        let rbuf = if rbuf.is_empty() { BytesMut::new() } else { rbuf };
        let mut conn = Connection {
            broker: broker.clone(),
            stream,
            peer,
            codec,
            version,
            rbuf,
            read_hint: MIN_READ,
            out: BytePages::default(),
            congested: Vec::new(),
            burst: Burst::default(),
            fed_rules: false,
            now_wall: SystemTime::now(),
            session,
            client_id,
            kick,
            keepalive_timeout,
            last_recv: Instant::now(),
            will,
            window,
            alias_in: HashMap::new(),
            alias_out: HashMap::new(),
            alias_out_max: connect.topic_alias_max,
            info,
        };

        let ack = v5::ConnectAck {
            session_present: present,
            reason_code: v5::ConnectAckReason::Success,
            receive_max: NonZeroU16::new(cfg.max_awaiting_rel.clamp(1, 65535) as u16).unwrap_or(NonZeroU16::MAX),
            max_qos: qos_out(cfg.max_qos_allowed),
            max_packet_size: Some(cfg.max_packet_size),
            assigned_client_id: assigned,
            topic_alias_max: cfg.max_topic_alias,
            server_keepalive_sec: server_keepalive,
            ..Default::default()
        };
        conn.send(Packet::ConnectAck(Box::new(ack)));
        Metrics::incr(&broker.metrics.connections);
        Metrics::incr(&broker.metrics.connections_total);
        info!(
            client_id = %conn.client_id,
            peer = %peer,
            proto_ver = version.level(),
            clean_start = connect.clean_start,
            session_present = present,
            "client connected"
        );
        conn.event(EventKind::ClientConnack, |i| i.connack("success"));
        conn.event(EventKind::ClientConnected, ClientInfo::connected);
        if present {
            conn.resend_inflight();
        }
        Some(conn)
    }

    /// The packet loop.
    async fn run(&mut self) -> Exit {
        loop {
            if let Err(exit) = self.pump_mailbox() {
                return exit;
            }
            if let Err(e) = self.flush().await {
                return Exit::PeerGone(e.to_string());
            }
            if self.fed_rules && self.broker.rules.as_ref().is_some_and(|r| r.is_full()) {
                if let Err(exit) = Box::pin(self.wait_for_rules()).await {
                    return exit;
                }
            }
            if !self.congested.is_empty() {
                if let Err(exit) = Box::pin(self.wait_for_subscribers()).await {
                    return exit;
                }
                // Go on with the packets that were read but not handled before the pause.
                if let Err(exit) = self.handle_input() {
                    return exit;
                }
                continue;
            }
            let deadline = self.keepalive_timeout.map(|t| self.last_recv + t);
            let session = self.session.clone();
            tokio::select! {
                read = self.stream.read_into(&mut self.rbuf, self.read_hint) => match read {
                    Ok(0) => return Exit::PeerGone("closed by peer".into()),
                    Ok(n) => {
                        if let Err(exit) = self.after_read(n) {
                            return exit;
                        }
                    }
                    Err(e) => return Exit::PeerGone(e.to_string()),
                },
                _ = session.notify.notified() => {}
                // Shutdown arrives this way too: the broker kicks every session.
                kicked = &mut self.kick => return Exit::Kicked(kicked.unwrap_or(Kick::TakenOver)),
                _ = sleep_until_opt(deadline) => return Exit::KeepAliveTimeout,
            }
        }
    }

    /// Handles the `n` bytes just read, adapts the next read's size, and gives the buffer back
    /// when a quiet connection has nothing left in it.
    fn after_read(&mut self, n: usize) -> Result<(), Exit> {
        Metrics::add(&self.broker.metrics.bytes_received, n as u64);
        self.last_recv = Instant::now();
        self.now_wall = SystemTime::now();
        self.read_hint = if n >= self.read_hint {
            (self.read_hint * 2).min(MAX_READ)
        } else if n < self.read_hint / 4 {
            (self.read_hint / 2).max(MIN_READ)
        } else {
            self.read_hint
        };
        self.handle_input()?;
        if self.rbuf.is_empty() && self.read_hint == MIN_READ {
            self.rbuf = BytesMut::new();
        }
        Ok(())
    }

    /// Back-pressure: while a connected subscriber's queue is over its bound, stop reading this
    /// publisher (TCP then slows the client) until the queue drains, for at most
    /// `backpressure_timeout`; a subscriber that drains nothing in that time is marked stalled and
    /// drops its oldest messages instead. Our own deliveries keep flowing meanwhile.
    async fn wait_for_subscribers(&mut self) -> Result<(), Exit> {
        let timeout = Duration::from_millis(self.broker.config.mqtt.backpressure_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        while let Some(target) = self.congested.last().cloned() {
            let drained = target.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if target.uid == self.session.uid || target.accepts_more() {
                self.congested.pop();
                continue;
            }
            let own = self.session.clone();
            tokio::select! {
                _ = &mut drained => {}
                _ = own.notify.notified() => {
                    self.pump_mailbox()?;
                    self.flush().await.map_err(|e| Exit::PeerGone(e.to_string()))?;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    warn!(
                        subscriber = %target.client_id,
                        publisher = %self.client_id,
                        queued = target.queue_len(),
                        "subscriber drains nothing; its queue drops the oldest messages instead of pausing publishers"
                    );
                    target.mark_stalled();
                    self.congested.pop();
                }
                kicked = &mut self.kick => return Err(Exit::Kicked(kicked.unwrap_or(Kick::TakenOver))),
            }
        }
        Ok(())
    }

    /// Back-pressure from the rules: while the rule engine's queue is full (a sink's buffer is
    /// full and blocks, or the rules are slower than the publishers), stop reading this
    /// publisher. Our own deliveries keep flowing meanwhile.
    async fn wait_for_rules(&mut self) -> Result<(), Exit> {
        let Some(rules) = self.broker.rules.clone() else { return Ok(()) };
        loop {
            let room = rules.room();
            tokio::pin!(room);
            room.as_mut().enable();
            if !rules.is_full() {
                return Ok(());
            }
            let own = self.session.clone();
            tokio::select! {
                _ = &mut room => {}
                _ = own.notify.notified() => {
                    self.pump_mailbox()?;
                    self.flush().await.map_err(|e| Exit::PeerGone(e.to_string()))?;
                }
                kicked = &mut self.kick => return Err(Exit::Kicked(kicked.unwrap_or(Kick::TakenOver))),
            }
        }
    }

    /// Decodes and handles the complete packets in the read buffer, stopping early when a
    /// publish congested a subscriber (the rest waits in the buffer).
    fn handle_input(&mut self) -> Result<(), Exit> {
        let handled = self.decode_all();
        // What the rules want of this burst goes over in one hand-over, whatever happened.
        self.fed_rules = self.broker.end_burst(&mut self.burst);
        handled
    }

    fn decode_all(&mut self) -> Result<(), Exit> {
        while self.congested.is_empty() {
            let inbound = match self.codec.decode(&mut self.rbuf) {
                Ok(Some(i)) => i,
                Ok(None) => return Ok(()),
                Err(e) => return Err(decode_exit(e)),
            };
            match inbound {
                Inbound::Publish(p, payload) => self.on_publish(p, payload)?,
                Inbound::Packet(p) => self.on_packet(p)?,
            }
        }
        Ok(())
    }

    fn on_packet(&mut self, p: Packet) -> Result<(), Exit> {
        match p {
            Packet::PingRequest => self.send(Packet::PingResponse),
            Packet::PublishAck(a) => self.on_puback(a.packet_id),
            Packet::PublishReceived(a) => self.on_pubrec(a),
            Packet::PublishRelease(a) => {
                let known = self.session.state.lock().awaiting_rel.remove(&a.packet_id.get());
                self.send(Packet::PublishComplete(v5::PublishAck2 {
                    packet_id: a.packet_id,
                    reason_code: if known {
                        v5::PublishAck2Reason::Success
                    } else {
                        v5::PublishAck2Reason::PacketIdNotFound
                    },
                    properties: Vec::new(),
                    reason_string: None,
                }));
            }
            Packet::PublishComplete(a) => self.on_puback(a.packet_id),
            Packet::Subscribe(s) => self.on_subscribe(s)?,
            Packet::Unsubscribe(u) => self.on_unsubscribe(u),
            Packet::Disconnect(d) => {
                if let Some(expiry) = d.session_expiry_interval_secs {
                    let mut st = self.session.state.lock();
                    if st.expiry_interval == 0 && expiry != 0 {
                        return Err(Exit::Violation(
                            Rc::ProtocolError,
                            "session expiry set at DISCONNECT after 0 at CONNECT".into(),
                        ));
                    }
                    st.expiry_interval = expiry;
                }
                return Err(Exit::ClientDisconnect { with_will: d.reason_code == Rc::DisconnectWithWillMessage });
            }
            Packet::Connect(_) => return Err(Exit::Violation(Rc::ProtocolError, "second CONNECT".into())),
            Packet::Auth(_) => {
                return Err(Exit::Violation(
                    Rc::BadAuthenticationMethod,
                    "enhanced authentication is not supported".into(),
                ))
            }
            other => {
                return Err(Exit::Violation(
                    Rc::ProtocolError,
                    format!("unexpected packet type {} from a client", other.packet_type() >> 4),
                ))
            }
        }
        Ok(())
    }

    fn on_publish(&mut self, mut p: v5::Publish, payload: Bytes) -> Result<(), Exit> {
        let cfg = &self.broker.config.mqtt;
        if let Some(alias) = p.properties.topic_alias {
            if alias.get() > cfg.max_topic_alias {
                return Err(Exit::Violation(Rc::TopicAliasInvalid, format!("topic alias {alias} above the maximum")));
            }
            if p.topic.is_empty() {
                p.topic = self
                    .alias_in
                    .get(&alias.get())
                    .cloned()
                    .ok_or_else(|| Exit::Violation(Rc::ProtocolError, format!("unknown topic alias {alias}")))?;
            } else {
                self.alias_in.insert(alias.get(), p.topic.clone());
            }
        }
        if let Err(e) = topic::validate_name(&p.topic) {
            return Err(Exit::Violation(Rc::TopicNameInvalid, format!("PUBLISH to {:?}: {e}", &*p.topic)));
        }
        let qos = qos_in(p.qos);
        if qos > cfg.max_qos_allowed {
            return Err(Exit::Violation(Rc::QosNotSupported, "QoS above max_qos_allowed".into()));
        }
        self.event(EventKind::ClientCheckAuthzComplete, |i| i.authorized(&p.topic, "publish"));
        let packet_id = p.packet_id;
        if qos == QoS::ExactlyOnce {
            let Some(id) = packet_id else {
                return Err(Exit::Violation(Rc::ProtocolError, "QoS 2 PUBLISH without packet id".into()));
            };
            let mut st = self.session.state.lock();
            if st.awaiting_rel.contains(&id.get()) {
                drop(st);
                self.send(pubrec(id, v5::PublishAckReason::Success));
                return Ok(());
            }
            if st.awaiting_rel.len() >= cfg.max_awaiting_rel {
                return Err(Exit::Violation(
                    Rc::ReceiveMaximumExceeded,
                    "too many QoS 2 messages awaiting PUBREL".into(),
                ));
            }
            st.awaiting_rel.insert(id.get());
        }

        let mut properties = std::mem::take(&mut p.properties);
        properties.topic_alias = None;
        properties.subscription_ids.clear();
        let msg = Message {
            topic: p.topic,
            payload,
            qos,
            retain: p.retain,
            expires_at: properties
                .message_expiry_interval
                .map(|s| Instant::now() + Duration::from_secs(u64::from(s.get()))),
            properties,
            publisher: Some(self.client_id.clone()),
            timestamp: self.now_wall,
            origin: None,
        };
        let matched = self.broker.publish(Arc::new(msg), &mut self.congested, &mut self.burst);
        let reason =
            if matched == 0 { v5::PublishAckReason::NoMatchingSubscribers } else { v5::PublishAckReason::Success };
        match (qos, packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.codec.encode_puback(id, reason, &mut self.out),
            (QoS::ExactlyOnce, Some(id)) => self.send(pubrec(id, reason)),
            _ => {}
        }
        Ok(())
    }

    /// PUBACK or PUBCOMP: the packet id is free again.
    fn on_puback(&mut self, id: NonZeroU16) {
        let acked = {
            let mut st = self.session.state.lock();
            st.inflight_position(id).and_then(|pos| st.inflight.remove(pos))
        };
        if let Some((_, Inflight::Publish(d))) = acked {
            self.acked(&d);
        }
    }

    /// `$events/message_acked`: at PUBACK for QoS 1, at PUBREC for QoS 2, as EMQX.
    fn acked(&self, d: &Delivery) {
        if crate::events::ignored(&d.msg) {
            return;
        }
        let node = &self.broker.config.node.name;
        self.event(EventKind::MessageAcked, |i| {
            let mut c = i.delivery(&d.msg, node);
            c.insert("puback_props".into(), weir_rules::value::Value::Map(Default::default()));
            c
        });
    }

    /// Hands an event to the rules, building its columns only if a rule selects it.
    fn event(&self, kind: EventKind, build: impl FnOnce(&ClientInfo) -> Columns) {
        if let Some(rules) = self.broker.listening(kind) {
            rules.emit(kind, build(&self.info));
        }
    }

    fn on_pubrec(&mut self, a: v5::PublishAck) {
        let id = a.packet_id;
        let failed = u8::from(a.reason_code) >= 0x80;
        {
            let mut st = self.session.state.lock();
            let Some(pos) = st.inflight_position(id) else {
                drop(st);
                self.send(pubrel(id, v5::PublishAck2Reason::PacketIdNotFound));
                return;
            };
            if failed {
                st.inflight.remove(pos);
                return;
            }
            let released = std::mem::replace(&mut st.inflight[pos].1, Inflight::Released);
            drop(st);
            if let Inflight::Publish(d) = released {
                self.acked(&d);
            }
        }
        self.send(pubrel(id, v5::PublishAck2Reason::Success));
    }

    fn on_subscribe(&mut self, s: v5::Subscribe) -> Result<(), Exit> {
        let max_qos = self.broker.config.mqtt.max_qos_allowed;
        let mut status = Vec::with_capacity(s.topic_filters.len());
        let mut retained = Vec::new();
        for (raw, opts) in &s.topic_filters {
            let parsed = match topic::parse_subscription(raw) {
                Ok(p) => p,
                Err(e) => {
                    info!(client_id = %self.client_id, filter = %&**raw, error = %e, "invalid topic filter");
                    status.push(v5::SubscribeAckReason::TopicFilterInvalid);
                    continue;
                }
            };
            if parsed.group.is_some() && opts.no_local {
                return Err(Exit::Violation(Rc::ProtocolError, "No Local on a shared subscription".into()));
            }
            self.event(EventKind::ClientCheckAuthzComplete, |i| i.authorized(raw, "subscribe"));
            let sub_opts = SubOptions {
                qos: qos_in(opts.qos).min(max_qos),
                no_local: opts.no_local,
                retain_as_published: opts.retain_as_published,
                retain_handling: opts.retain_handling,
                subscription_id: s.id,
            };
            let existed = self.broker.router.subscribe(
                parsed.filter,
                parsed.group,
                crate::router::Subscriber { session: self.session.clone(), opts: sub_opts },
            );
            self.session.state.lock().subscriptions.insert(raw.to_string(), sub_opts);
            status.push(match sub_opts.qos {
                QoS::AtMostOnce => v5::SubscribeAckReason::GrantedQos0,
                QoS::AtLeastOnce => v5::SubscribeAckReason::GrantedQos1,
                QoS::ExactlyOnce => v5::SubscribeAckReason::GrantedQos2,
            });
            let wants_retained = match opts.retain_handling {
                v5::RetainHandling::AtSubscribe => true,
                v5::RetainHandling::AtSubscribeNew => !existed,
                v5::RetainHandling::NoAtSubscribe => false,
            };
            // Shared subscriptions never receive retained messages (MQTT 5.0, 4.8.2).
            if wants_retained && parsed.group.is_none() {
                retained.push((parsed.filter.to_string(), sub_opts));
            }
            debug!(client_id = %self.client_id, filter = %&**raw, qos = ?sub_opts.qos, "subscribed");
            self.event(EventKind::SessionSubscribed, |i| i.subscription(raw, sub_opts.qos, "sub_props"));
        }
        self.send(Packet::SubscribeAck(v5::SubscribeAck {
            packet_id: s.packet_id,
            properties: Vec::new(),
            reason_string: None,
            status,
        }));
        for (filter, opts) in retained {
            for msg in self.broker.retained.matching(&filter) {
                let d = Delivery {
                    qos: msg.qos.min(opts.qos),
                    msg,
                    retain: true,
                    subscription_id: opts.subscription_id,
                    share: None,
                };
                self.broker.enqueue_detached(&self.session, d);
            }
        }
        Ok(())
    }

    fn on_unsubscribe(&mut self, u: v5::Unsubscribe) {
        let status = u
            .topic_filters
            .iter()
            .map(|raw| {
                let Ok(parsed) = topic::parse_subscription(raw) else {
                    return v5::UnsubscribeAckReason::TopicFilterInvalid;
                };
                self.session.state.lock().subscriptions.remove(&**raw);
                if self.broker.router.unsubscribe(parsed.filter, parsed.group, self.session.uid) {
                    self.event(EventKind::SessionUnsubscribed, |i| i.subscription(raw, QoS::AtMostOnce, "unsub_props"));
                    v5::UnsubscribeAckReason::Success
                } else {
                    v5::UnsubscribeAckReason::NoSubscriptionExisted
                }
            })
            .collect();
        self.send(Packet::UnsubscribeAck(v5::UnsubscribeAck {
            packet_id: u.packet_id,
            properties: Vec::new(),
            reason_string: None,
            status,
        }));
    }

    /// Moves deliveries from the mailbox onto the wire while the inflight window has room.
    fn pump_mailbox(&mut self) -> Result<(), Exit> {
        let now = Instant::now();
        let mut taken = false;
        loop {
            let window = self.window;
            let session = self.session.clone();
            let Some(d) =
                session.dequeue_if(|d| d.qos == QoS::AtMostOnce || session.state.lock().inflight.len() < window)
            else {
                if taken {
                    session.after_drain();
                }
                return Ok(());
            };
            taken = true;
            if d.msg.is_expired(now) {
                Metrics::incr(&self.broker.metrics.dropped_expired);
                self.broker.delivery_dropped(&d.msg, &self.client_id, "expired");
                continue;
            }
            let packet_id = (d.qos != QoS::AtMostOnce).then(|| self.session.state.lock().next_packet_id());
            if self.write_publish(&d, packet_id, false, now) {
                if !crate::events::ignored(&d.msg) {
                    let node = &self.broker.config.node.name;
                    self.event(EventKind::MessageDelivered, |i| i.delivery(&d.msg, node));
                }
                if let Some(id) = packet_id {
                    self.session.state.lock().inflight.push_back((id, Inflight::Publish(d)));
                }
            }
        }
    }

    /// Encodes one PUBLISH; returns `false` if the client's Maximum Packet Size refused it.
    fn write_publish(&mut self, d: &Delivery, packet_id: Option<NonZeroU16>, dup: bool, now: Instant) -> bool {
        let msg = &d.msg;
        let mut properties = if self.version.is_v5() {
            let mut p = msg.properties.clone();
            p.message_expiry_interval = msg.remaining_expiry(now);
            p.subscription_ids.extend(d.subscription_id);
            p
        } else {
            v5::PublishProperties::default()
        };
        let mut topic = msg.topic.clone();
        // Outgoing topic aliases (v5), as EMQX does; resends carry the full topic.
        if self.alias_out_max > 0 && !dup {
            if let Some(alias) = self.alias_out.get(&msg.topic) {
                properties.topic_alias = Some(*alias);
                topic = ByteString::new();
            } else if self.alias_out.len() < usize::from(self.alias_out_max) {
                let alias = NonZeroU16::new(self.alias_out.len() as u16 + 1).unwrap_or(NonZeroU16::MIN);
                self.alias_out.insert(msg.topic.clone(), alias);
                properties.topic_alias = Some(alias);
            }
        }
        let publish = v5::Publish {
            dup,
            retain: d.retain,
            qos: qos_out(d.qos),
            packet_id,
            topic,
            payload_size: msg.payload.len() as u32,
            properties,
        };
        match self.codec.encode_publish(publish, msg.payload.clone(), &mut self.out) {
            Ok(()) => {
                Metrics::incr(&self.broker.metrics.messages_sent);
                true
            }
            Err(EncodeError::OverMaxPacketSize) => {
                Metrics::incr(&self.broker.metrics.dropped_too_large);
                debug!(client_id = %self.client_id, topic = %&*msg.topic, "message above the client's Maximum Packet Size, dropped");
                false
            }
            Err(e) => {
                warn!(client_id = %self.client_id, error = %e, "cannot encode PUBLISH");
                false
            }
        }
    }

    /// On resuming a session: unacknowledged PUBLISHes again with DUP, and PUBRELs.
    fn resend_inflight(&mut self) {
        let now = Instant::now();
        let inflight: Vec<(NonZeroU16, Inflight)> = self.session.state.lock().inflight.iter().cloned().collect();
        for (id, state) in inflight {
            match state {
                Inflight::Publish(d) => {
                    self.write_publish(&d, Some(id), true, now);
                }
                Inflight::Released => self.send(pubrel(id, v5::PublishAck2Reason::Success)),
            }
        }
    }

    fn send(&mut self, p: Packet) {
        if let Err(e) = self.codec.encode(p, &mut self.out) {
            warn!(client_id = %self.client_id, error = %e, "cannot encode packet");
        }
    }

    /// Writes the encoded packets with vectored writes (payload pages are not copied), then
    /// releases the pages so that an idle connection holds none.
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        Metrics::add(&self.broker.metrics.bytes_sent, self.out.len() as u64);
        while !self.out.is_empty() {
            // The slice array is built on each poll's stack: kept across the await, it would
            // make every connection's task a kilobyte larger.
            let (stream, out) = (&mut self.stream, &self.out);
            let n = std::future::poll_fn(|cx| {
                let mut iov = [IoSlice::new(&[]); 64];
                let mut count = 0;
                for (slot, chunk) in iov.iter_mut().zip(out.iter()) {
                    *slot = IoSlice::new(chunk);
                    count += 1;
                }
                std::pin::Pin::new(&mut *stream).poll_write_vectored(cx, &iov[..count])
            })
            .await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.out.advance_to(n);
        }
        self.out = BytePages::default();
        self.stream.flush().await
    }

    /// Says goodbye as the exit requires, then settles the will and the session.
    async fn finish(mut self, exit: Exit) {
        let reason = match &exit {
            Exit::Kicked(Kick::TakenOver) => Some(Rc::SessionTakenOver),
            Exit::Kicked(Kick::Shutdown) => Some(Rc::ServerShuttingDown),
            Exit::KeepAliveTimeout => Some(Rc::KeepAliveTimeout),
            Exit::Violation(rc, _) => Some(*rc),
            Exit::ClientDisconnect { .. } | Exit::PeerGone(_) => None,
        };
        if let (Some(rc), true) = (reason, self.version.is_v5()) {
            let reason_string = match &exit {
                Exit::Violation(_, why) => Some(ByteString::from(why.clone())),
                _ => None,
            };
            self.send(Packet::Disconnect(v5::Disconnect { reason_code: rc, reason_string, ..Default::default() }));
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
        let _ = self.stream.shutdown().await;

        match &exit {
            Exit::Violation(rc, why) => {
                warn!(client_id = %self.client_id, peer = %self.peer, reason_code = u8::from(*rc), reason = %why, "closing connection: protocol violation")
            }
            Exit::PeerGone(why) => {
                info!(client_id = %self.client_id, peer = %self.peer, reason = %why, "client disconnected without DISCONNECT")
            }
            other => info!(client_id = %self.client_id, peer = %self.peer, reason = ?other, "client disconnected"),
        }

        let why = match &exit {
            Exit::ClientDisconnect { .. } => "normal",
            Exit::PeerGone(_) => "tcp_closed",
            Exit::Kicked(Kick::TakenOver) => "takenover",
            Exit::Kicked(Kick::Shutdown) => "shutdown",
            Exit::KeepAliveTimeout => "keepalive_timeout",
            Exit::Violation(..) => "protocol_error",
        };
        self.event(EventKind::ClientDisconnected, |i| i.disconnected(why));
        let publish_will = !matches!(exit, Exit::ClientDisconnect { with_will: false } | Exit::Kicked(Kick::Shutdown));
        let expiry = self.session.state.lock().expiry_interval;
        if let (Some(will), true) = (self.will.take(), publish_will) {
            let delay = if expiry == NEVER_EXPIRE { will.delay } else { will.delay.min(expiry) };
            self.broker.schedule_will(&self.session, will.message, delay);
        }
        self.broker.metrics.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        // End or park the session before letting a waiting taker in (see Broker::open_session).
        self.broker.session_closed(&self.session, expiry);
        self.session.detach();
    }
}

/// A CONNACK reason as EMQX names it in `client_connack` events.
fn connack_reason(reason: v5::ConnectAckReason) -> &'static str {
    match reason {
        v5::ConnectAckReason::Success => "success",
        v5::ConnectAckReason::ClientIdentifierNotValid => "client_identifier_not_valid",
        v5::ConnectAckReason::TopicNameInvalid => "topic_name_invalid",
        v5::ConnectAckReason::MalformedPacket => "malformed_packet",
        v5::ConnectAckReason::PacketTooLarge => "packet_too_large",
        _ => "unspecified_error",
    }
}

/// A refusal CONNACK, after telling the rules (`$events/client_connack`).
fn refuse(broker: &Broker, codec: &Codec, reason: v5::ConnectAckReason, info: &ClientInfo) -> Bytes {
    if let Some(rules) = broker.listening(EventKind::ClientConnack) {
        rules.emit(EventKind::ClientConnack, info.connack(connack_reason(reason)));
    }
    refusal(codec, reason)
}

/// A CONNACK that refuses the connection with `reason`.
fn refusal(codec: &Codec, reason: v5::ConnectAckReason) -> Bytes {
    let mut out = BytePages::default();
    let ack = v5::ConnectAck { reason_code: reason, ..Default::default() };
    let _ = codec.encode(Packet::ConnectAck(Box::new(ack)), &mut out);
    out.freeze()
}

fn decode_exit(e: DecodeError) -> Exit {
    let rc = match e {
        DecodeError::MaxSizeExceeded { .. } => Rc::PacketTooLarge,
        _ => Rc::MalformedPacket,
    };
    Exit::Violation(rc, e.to_string())
}

fn pubrec(packet_id: NonZeroU16, reason_code: v5::PublishAckReason) -> Packet {
    Packet::PublishReceived(v5::PublishAck { packet_id, reason_code, properties: Vec::new(), reason_string: None })
}

fn pubrel(packet_id: NonZeroU16, reason_code: v5::PublishAck2Reason) -> Packet {
    Packet::PublishRelease(v5::PublishAck2 { packet_id, reason_code, properties: Vec::new(), reason_string: None })
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
#[cfg(test)]
mod tests {
    /// Every connection's task stores this future; idle memory per connection depends on it.
    #[test]
    fn connection_task_stays_small() {
        let broker = crate::broker::Broker::new(crate::Config::default(), None);
        let (a, _b) = tokio::io::duplex(16);
        let addr = "127.0.0.1:1".parse().expect("addr");
        let fut = super::serve(broker, a, addr, addr);
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 1536, "the connection future grew to {size} bytes; box rarely used states");
    }
}

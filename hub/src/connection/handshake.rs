//! The handshake: which protocol the client speaks, its CONNECT read and checked within
//! `idle_timeout`, the session opened through the broker, and CONNACK.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ntex_bytes::{BytePages, ByteString, Bytes, BytesMut};
use ntex_mqtt::error::DecodeError;
use ntex_mqtt::v5::codec as v5;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info};
use weir_rules::event_kind::EventKind;
use weir_types::topic;

use super::goodbye::close_refused;
use super::outbound::OutAliases;
use super::Connection;
use crate::auth::acl::Check;
use crate::auth::{Credentials, Refused};
use crate::broker::{Broker, Burst, Connected};
use crate::config::MqttConfig;
use crate::events::ClientInfo;
use crate::message::{ClientId, Message, Will};
use crate::protocol::{self, qos_in, qos_out, Codec, Inbound, InboundError, Packet, Sniff, Version};
use crate::rate::{Limiter, Rates};
use crate::transport::Transport;

/// The smallest room given to one socket read.
pub(super) const MIN_READ: usize = 1024;

/// Reads and checks the client's CONNECT, opens its session and answers CONNACK: the
/// connection, or `None` when the client was refused or went away first.
pub(super) async fn accept<S: Transport>(
    broker: Arc<Broker>,
    mut stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    rates: Rates,
    cert: super::CertIdentity,
) -> Option<Connection<S>> {
    let mut rbuf = BytesMut::with_capacity(4096);
    let idle = Duration::from_secs(broker.config.mqtt.idle_timeout.max(1));
    let Some(version) = sniff_version(&mut stream, &mut rbuf, idle, peer).await else {
        close_refused(&mut stream).await;
        return None;
    };
    let mut codec = Codec::new(version, broker.config.mqtt.max_packet_size);
    let Some(connect) = connect_within(&mut stream, &mut rbuf, &mut codec, idle, peer).await else {
        close_refused(&mut stream).await;
        return None;
    };
    let mut connect = *connect;
    if let Some(id) = cert.client_id {
        connect.client_id = id.into();
    }
    if let Some(name) = cert.username {
        connect.username = Some(name.into());
    }
    let mut conn = Connection::open(broker, stream, rbuf, codec, peer, local, connect).await?;
    conn.limiter = Limiter::new(rates);
    Some(conn)
}

/// Reads until the start of the stream says which protocol it speaks; refuses what Weir does
/// not speak.
async fn sniff_version<S: Transport>(
    stream: &mut S,
    rbuf: &mut BytesMut,
    idle: Duration,
    peer: SocketAddr,
) -> Option<Version> {
    match tokio::time::timeout(idle, read_connect_header(stream, rbuf)).await {
        Err(_) => debug!(%peer, "no CONNECT within idle_timeout, closing"),
        Ok(Err(reason)) => info!(%peer, reason, "connection refused before CONNECT"),
        Ok(Ok(Sniff::Connect(version))) => {
            if version == Version::V31 {
                protocol::shim_mqisdp(rbuf);
            }
            return Some(version);
        }
        Ok(Ok(Sniff::UnsupportedVersion { v5_requested })) => {
            info!(%peer, "unsupported MQTT protocol version, refusing");
            let reply: &[u8] = if v5_requested { b"\x20\x03\x00\x84\x00" } else { b"\x20\x02\x00\x01" };
            let _ = stream.write_all(reply).await;
        }
        Ok(Ok(other)) => info!(%peer, ?other, "connection refused before CONNECT"),
    }
    None
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

/// Why no CONNECT could be read.
#[derive(Debug, thiserror::Error)]
enum ConnectReadError {
    #[error("{0}")]
    Decode(InboundError),
    #[error("socket closed during CONNECT")]
    Closed,
    #[error("the first packet is not CONNECT")]
    NotConnect,
}

/// Reads the CONNECT within `idle`; a bad one gets a refusing CONNACK (v5) and `None`.
async fn connect_within<S: Transport>(
    stream: &mut S,
    rbuf: &mut BytesMut,
    codec: &mut Codec,
    idle: Duration,
    peer: SocketAddr,
) -> Option<Box<v5::Connect>> {
    match tokio::time::timeout(idle, read_connect(stream, rbuf, codec)).await {
        Ok(Ok(c)) => return Some(c),
        Ok(Err(e)) => {
            info!(%peer, error = %e, "bad CONNECT, closing");
            let reason = match e {
                ConnectReadError::Decode(InboundError::Decode(DecodeError::MaxSizeExceeded { .. })) => {
                    v5::ConnectAckReason::PacketTooLarge
                }
                // A property given twice, or with a value it may not take (`protocol::properties`).
                ConnectReadError::Decode(InboundError::Protocol(_)) => v5::ConnectAckReason::ProtocolError,
                // An empty client id from a 3.1.1 client that wants its session kept: CONNACK
                // 0x02 (MQTT-3.1.3-8).
                ConnectReadError::Decode(InboundError::Decode(DecodeError::InvalidClientId)) => {
                    v5::ConnectAckReason::ClientIdentifierNotValid
                }
                _ => v5::ConnectAckReason::MalformedPacket,
            };
            if codec.version().is_v5() || reason == v5::ConnectAckReason::ClientIdentifierNotValid {
                let _ = stream.write_all(&refusal(codec, reason)).await;
            }
        }
        Err(_) => debug!(%peer, "CONNECT incomplete within idle_timeout, closing"),
    }
    None
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

impl<S: Transport> Connection<S> {
    /// Validates the CONNECT, opens (or takes over) the session and answers CONNACK.
    async fn open(
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
        let mut info = Box::new(ClientInfo::of(&connect, version, peer, local));
        let Identity { client_id, assigned, will } = match identify(&connect, version, cfg) {
            Ok(identified) => identified,
            Err((reason, why)) => {
                info!(%peer, client_id = %&*connect.client_id, reason = %why, "CONNECT refused");
                return refuse(&broker, &mut stream, refusal_for(&codec, reason), reason, &info).await;
            }
        };
        info.client_id = client_id.clone();
        let credentials = Credentials {
            client_id: client_id.to_string(),
            username: connect.username.as_ref().map(|u| u.to_string()),
            password: connect.password.clone(),
            peer: peer.ip(),
        };
        let anonymous = broker.access.authn.allows_anonymous();
        let grant = match broker.access.authn.authenticate(&credentials, &broker.access.counters).await {
            Ok(grant) => grant,
            Err(refused) => {
                let username = credentials.username.as_deref().unwrap_or_default();
                info!(%peer, client_id = %client_id, username, reason = %refused, "CONNECT refused: not authenticated");
                let (reason, code) = match refused {
                    Refused::Banned => (v5::ConnectAckReason::Banned, "banned"),
                    Refused::BadCredentials(_) => {
                        (v5::ConnectAckReason::BadUserNameOrPassword, "bad_username_or_password")
                    }
                };
                broker.event(EventKind::ClientCheckAuthnComplete, || info.authenticated(code, false, false));
                return refuse(&broker, &mut stream, refusal_for(&codec, reason), reason, &info).await;
            }
        };
        let expiry = session_expiry(&connect, version, cfg);
        info.expiry_interval = expiry;
        let Connected { session, present, kick, generation, kept } =
            broker.connect(&client_id, connect.clean_start, expiry).await;
        let (server_keepalive, keepalive) = keepalive_of(cfg, version, &connect);
        info.keepalive = keepalive;
        if let Some(max) = connect.max_packet_size {
            codec.set_max_outbound(max.get());
        }
        let mut conn = Connection {
            broker: broker.clone(),
            stream,
            peer,
            codec,
            version,
            // Most clients send nothing right after CONNECT: keep no read buffer until they do.
            rbuf: if rbuf.is_empty() { BytesMut::new() } else { rbuf },
            read_hint: MIN_READ,
            out: None,
            burst: Burst::default(),
            now_wall: SystemTime::now(),
            session,
            client_id,
            kick,
            generation,
            keepalive_timeout: (keepalive > 0)
                .then(|| Duration::from_secs_f64(f64::from(keepalive) * cfg.keepalive_multiplier)),
            last_recv: Instant::now(),
            will,
            window: connect.receive_max.map_or(u16::MAX, NonZeroU16::get).min(cfg.max_inflight.max(1)) as usize,
            alias_in: HashMap::new(),
            alias_out: OutAliases::new(connect.topic_alias_max),
            info,
            limiter: None,
            access: None,
        };
        let superuser = grant.superuser;
        conn.grant(grant);
        if let Some(w) = &conn.will {
            let topic = w.message.topic.clone();
            // A will the client may not publish is dropped now, rather than refused at its end.
            if !conn.authorized(Check::Publish, &topic).unwrap_or(false) {
                info!(client_id = %conn.client_id, topic = %&*topic, "the will's topic is not authorized: the will is dropped");
                conn.will = None;
            }
        }
        // CONNACK waits for the store to keep a persistent session, as any acknowledgement does.
        conn.burst.keep(kept);
        // A Session Expiry Interval cut to the maximum is the one in force: CONNACK says so.
        let cut = (version.is_v5() && expiry != connect.session_expiry_interval_secs).then_some(expiry);
        conn.send(Packet::ConnectAck(Box::new(connack(cfg, present, assigned, server_keepalive, cut))));
        conn.welcome(connect.clean_start, present, superuser, anonymous);
        Some(conn)
    }

    /// Logs the new client, tells the rules, and sends again what a resumed session had in
    /// flight.
    fn welcome(&mut self, clean_start: bool, present: bool, superuser: bool, anonymous: bool) {
        info!(
            client_id = %self.client_id,
            username = %self.info.username.as_deref().unwrap_or_default(),
            peer = %self.peer,
            proto_ver = self.version.level(),
            clean_start,
            session_present = present,
            "client connected"
        );
        self.event(EventKind::ClientCheckAuthnComplete, |i| i.authenticated("success", superuser, anonymous));
        self.event(EventKind::ClientConnack, |i| i.connack("success"));
        self.event(EventKind::ClientConnected, ClientInfo::connected);
        if present {
            self.resend_inflight();
        }
    }
}

/// Who a CONNECT says the client is.
struct Identity {
    client_id: ClientId,
    /// The client id, when the broker assigned it (sent back in CONNACK).
    assigned: Option<ByteString>,
    will: Option<Box<Will>>,
}

/// A CONNECT's client id and will; or the refusal's reason code, with why.
fn identify(
    connect: &v5::Connect,
    version: Version,
    cfg: &MqttConfig,
) -> Result<Identity, (v5::ConnectAckReason, String)> {
    // U+0000 in any string makes the CONNECT malformed (MQTT-1.5.3-2, MQTT-1.5.4-2).
    if connect_has_nul(connect) {
        return Err((v5::ConnectAckReason::MalformedPacket, "U+0000 in a CONNECT string".into()));
    }
    // No enhanced authentication: the method is refused, and the connection closed (MQTT-4.12.0-1).
    if let Some(method) = &connect.auth_method {
        let why = format!("enhanced authentication ({method}) is not supported");
        return Err((v5::ConnectAckReason::BadAuthenticationMethod, why));
    }
    if connect.client_id.len() > cfg.max_clientid_len {
        let why =
            format!("client id of {} bytes, over max_clientid_len ({})", connect.client_id.len(), cfg.max_clientid_len);
        return Err((v5::ConnectAckReason::ClientIdentifierNotValid, why));
    }
    let Some((client_id, assigned)) = client_id_of(connect, version) else {
        let why = "empty client id with clean_session = false".to_string();
        return Err((v5::ConnectAckReason::ClientIdentifierNotValid, why));
    };
    match will_of(connect, &client_id) {
        Ok(will) => Ok(Identity { client_id, assigned, will }),
        Err(e) => Err((v5::ConnectAckReason::TopicNameInvalid, format!("invalid will topic: {e}"))),
    }
}

/// Whether a CONNECT's strings hold U+0000: the client id, the user name, the will's topic and
/// string properties.
fn connect_has_nul(c: &v5::Connect) -> bool {
    let nul = |s: &ByteString| s.contains('\0');
    nul(&c.client_id)
        || c.username.as_ref().is_some_and(nul)
        || c.last_will.as_ref().is_some_and(|w| {
            nul(&w.topic)
                || w.content_type.as_ref().is_some_and(nul)
                || w.response_topic.as_ref().is_some_and(nul)
                || w.user_properties.iter().any(|(k, v)| nul(k) || nul(v))
        })
        || c.user_properties.iter().any(|(k, v)| nul(k) || nul(v))
}

/// The client id, and whether the broker assigned it: an empty one gets `weir-<random>`, except
/// from an MQTT 3 client that wants its session kept (`None`: refused).
fn client_id_of(connect: &v5::Connect, version: Version) -> Option<(ClientId, Option<ByteString>)> {
    if !connect.client_id.is_empty() {
        return Some((Arc::from(&*connect.client_id), None));
    }
    if !version.is_v5() && !connect.clean_start {
        return None;
    }
    let id = format!("weir-{:016x}", rand::random::<u64>());
    Some((id.as_str().into(), Some(ByteString::from(id))))
}

/// The CONNECT's will, if it has one, refused if its topic is not one to publish to.
fn will_of(connect: &v5::Connect, client_id: &ClientId) -> Result<Option<Box<Will>>, topic::TopicError> {
    let Some(w) = &connect.last_will else { return Ok(None) };
    topic::validate_name(&w.topic)?;
    let properties = v5::PublishProperties {
        correlation_data: w.correlation_data.clone(),
        content_type: w.content_type.clone(),
        user_properties: w.user_properties.clone(),
        is_utf8_payload: w.is_utf8_payload.unwrap_or(false),
        response_topic: w.response_topic.clone(),
        message_expiry_interval: w.message_expiry_interval,
        ..Default::default()
    };
    let message = Message {
        topic: w.topic.clone(),
        payload: w.message.clone(),
        qos: qos_in(w.qos),
        retain: w.retain,
        expires_at: w.message_expiry_interval.map(|s| Instant::now() + Duration::from_secs(u64::from(s.get()))),
        properties,
        publisher: Some(client_id.clone()),
        timestamp: SystemTime::now(),
        origin: None,
        store: Default::default(),
    };
    Ok(Some(Box::new(Will { message, delay: w.will_delay_interval_sec.unwrap_or(0) })))
}

/// The Server Keep Alive to send, if any, and the keep alive in force. Server Keep Alive
/// exists only in MQTT 5's CONNACK: older clients keep their own.
fn keepalive_of(cfg: &MqttConfig, version: Version, connect: &v5::Connect) -> (Option<u16>, u16) {
    let server_keepalive = cfg.server_keepalive.filter(|_| version.is_v5());
    (server_keepalive, server_keepalive.unwrap_or(connect.keep_alive))
}

/// Seconds the session outlives the connection: MQTT 5's Session Expiry Interval, at most
/// `max_session_expiry_interval`; for MQTT 3, none with clean session, else
/// `session_expiry_interval`.
fn session_expiry(connect: &v5::Connect, version: Version, cfg: &MqttConfig) -> u32 {
    if version.is_v5() {
        connect.session_expiry_interval_secs.min(cfg.max_session_expiry_interval)
    } else if connect.clean_start {
        0
    } else {
        cfg.session_expiry_interval
    }
}

/// The CONNACK of an accepted client: the broker's limits, as MQTT 5 states them, and the
/// session expiry in force if it is not the one asked for.
fn connack(
    cfg: &MqttConfig,
    present: bool,
    assigned: Option<ByteString>,
    server_keepalive: Option<u16>,
    session_expiry: Option<u32>,
) -> v5::ConnectAck {
    v5::ConnectAck {
        session_expiry_interval_secs: session_expiry,
        session_present: present,
        reason_code: v5::ConnectAckReason::Success,
        receive_max: NonZeroU16::new(cfg.max_awaiting_rel.clamp(1, 65535) as u16).unwrap_or(NonZeroU16::MAX),
        max_qos: qos_out(cfg.max_qos_allowed),
        max_packet_size: Some(cfg.max_packet_size),
        assigned_client_id: assigned,
        topic_alias_max: cfg.max_topic_alias,
        server_keepalive_sec: server_keepalive,
        ..Default::default()
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
        v5::ConnectAckReason::BadAuthenticationMethod => "bad_authentication_method",
        v5::ConnectAckReason::BadUserNameOrPassword => "bad_username_or_password",
        v5::ConnectAckReason::Banned => "banned",
        _ => "unspecified_error",
    }
}

/// Refuses a CONNECT with `reply`, the CONNACK of `reason` if there is one, after telling the rules
/// (`$events/client_connack`).
async fn refuse<S: Transport, T>(
    broker: &Broker,
    stream: &mut S,
    reply: Option<Bytes>,
    reason: v5::ConnectAckReason,
    info: &ClientInfo,
) -> Option<T> {
    broker.event(EventKind::ClientConnack, || info.connack(connack_reason(reason)));
    if let Some(reply) = reply {
        let _ = stream.write_all(&reply).await;
    }
    close_refused(stream).await;
    None
}

/// The CONNACK that refuses a CONNECT with `reason`, if one is sent: MQTT 3.1.1 has no code for
/// a malformed packet or an invalid will topic, and requires the connection closed without one
/// (MQTT-1.5.3-2, MQTT-3.1.4-1).
fn refusal_for(codec: &Codec, reason: v5::ConnectAckReason) -> Option<Bytes> {
    let v3_has_code = !matches!(reason, v5::ConnectAckReason::MalformedPacket | v5::ConnectAckReason::TopicNameInvalid);
    (codec.version().is_v5() || v3_has_code).then(|| refusal(codec, reason))
}

/// A CONNACK that refuses the connection with `reason`.
fn refusal(codec: &Codec, reason: v5::ConnectAckReason) -> Bytes {
    let mut out = BytePages::default();
    let ack = v5::ConnectAck { reason_code: reason, ..Default::default() };
    let _ = codec.encode(Packet::ConnectAck(Box::new(ack)), &mut out);
    out.freeze()
}

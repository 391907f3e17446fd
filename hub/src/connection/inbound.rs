//! What each packet from the client means: publishes (topic aliases, QoS 2 deduplication,
//! acknowledgements), acknowledgements of our deliveries, subscriptions, DISCONNECT.

use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec as v5;
use tracing::{debug, info};
use weir_rules::event_kind::EventKind;
use weir_rules::value::Value;
use weir_types::{topic, QoS};

use super::goodbye::{decode_exit, Exit};
use super::pages;
use super::Connection;
use crate::auth::acl::Check;
use crate::broker::SubscribeError;
use crate::message::{Delivery, Message};
use crate::protocol::{qos_in, Inbound, Packet};
use crate::session::{Inflight, SubOptions};
use crate::transport::Transport;
use v5::DisconnectReasonCode as Rc;

impl<S: Transport> Connection<S> {
    /// Decodes and handles the complete packets in the read buffer, stopping early when a
    /// publish congested a subscriber (the rest waits in the buffer).
    pub(super) fn handle_input(&mut self) -> Result<(), Exit> {
        let handled = self.decode_all();
        // What the rules want of this burst goes over in one hand-over, whatever happened.
        self.broker.end_burst(&mut self.burst);
        handled
    }

    fn decode_all(&mut self) -> Result<(), Exit> {
        while !self.burst.is_congested() {
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
            Packet::PublishRelease(a) => self.on_pubrel(a.packet_id),
            Packet::PublishComplete(a) => self.on_puback(a.packet_id),
            Packet::Subscribe(s) => self.on_subscribe(s)?,
            Packet::Unsubscribe(u) => self.on_unsubscribe(u)?,
            Packet::Disconnect(d) => return Err(self.on_disconnect(d)),
            Packet::Connect(_) => return Err(Exit::Violation(Rc::ProtocolError, "second CONNECT".into())),
            // Only a client that gave an Authentication Method may send AUTH, and Weir takes
            // none (4.12).
            Packet::Auth(_) => {
                return Err(Exit::Violation(Rc::ProtocolError, "AUTH without an Authentication Method".into()))
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
        self.resolve_alias(&mut p)?;
        let levels = match topic::validate_name(&p.topic) {
            Ok(levels) => levels,
            Err(e) => {
                // U+0000 in any string makes the packet malformed (MQTT-1.5.4-2), not just the
                // topic invalid; an empty topic left after aliases is a protocol error (5.0,
                // 3.3.2.1).
                let rc = match e {
                    topic::TopicError::Nul => Rc::MalformedPacket,
                    topic::TopicError::Empty => Rc::ProtocolError,
                    _ => Rc::TopicNameInvalid,
                };
                return Err(Exit::Violation(rc, format!("PUBLISH to {:?}: {e}", &*p.topic)));
            }
        };
        if properties_have_nul(&p.properties) {
            return Err(Exit::Violation(Rc::MalformedPacket, "U+0000 in a PUBLISH property".into()));
        }
        let max_levels = self.broker.config.mqtt.max_topic_levels;
        if levels > max_levels {
            return Err(Exit::Violation(
                Rc::TopicNameInvalid,
                format!("PUBLISH to a topic of {levels} levels, over max_topic_levels ({max_levels})"),
            ));
        }
        let qos = qos_in(p.qos);
        if is_sys(&p.topic) {
            info!(client_id = %self.client_id, topic = %&*p.topic, "PUBLISH to $SYS refused: only the broker publishes there");
            self.refuse_publish(qos, p.packet_id);
            return Ok(());
        }
        if qos > self.broker.config.mqtt.max_qos_allowed {
            return Err(Exit::Violation(Rc::QosNotSupported, "QoS above max_qos_allowed".into()));
        }
        if !self.authorized(Check::Publish, &p.topic)? {
            self.refuse_publish(qos, p.packet_id);
            return Ok(());
        }
        let packet_id = p.packet_id;
        if qos == QoS::ExactlyOnce && !self.first_qos2(packet_id)? {
            return Ok(());
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
            store: Default::default(),
        };
        if let Some(limiter) = &mut self.limiter {
            limiter.message();
        }
        let matched = self.broker.publish(Arc::new(msg), &mut self.burst);
        let reason =
            if matched == 0 { v5::PublishAckReason::NoMatchingSubscribers } else { v5::PublishAckReason::Success };
        match (qos, packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.codec.encode_puback(id, reason, pages(&mut self.out)),
            (QoS::ExactlyOnce, Some(id)) => self.send(pubrec(id, reason)),
            _ => {}
        }
        Ok(())
    }

    /// A client's PUBLISH to `$SYS/...`, which only the broker writes: not routed nor retained;
    /// PUBACK or PUBREC says Not authorized (0x87), as EMQX's default ACL does.
    /// Drops a PUBLISH the client may not make: PUBACK or PUBREC 0x87 (v5; plain in v3, which
    /// has no reason codes).
    fn refuse_publish(&mut self, qos: QoS, packet_id: Option<NonZeroU16>) {
        let reason = v5::PublishAckReason::NotAuthorized;
        match (qos, packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.codec.encode_puback(id, reason, pages(&mut self.out)),
            (QoS::ExactlyOnce, Some(id)) => self.send(pubrec(id, reason)),
            _ => {}
        }
    }

    /// Replaces a v5 topic alias by its topic, or learns a new one.
    fn resolve_alias(&mut self, p: &mut v5::Publish) -> Result<(), Exit> {
        let Some(alias) = p.properties.topic_alias else { return Ok(()) };
        if alias.get() > self.broker.config.mqtt.max_topic_alias {
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
        Ok(())
    }

    /// Records a QoS 2 publish's packet id until PUBREL; returns `false` for a resend of one
    /// already routed, which is acknowledged again and not routed twice.
    fn first_qos2(&mut self, packet_id: Option<NonZeroU16>) -> Result<bool, Exit> {
        let Some(id) = packet_id else {
            return Err(Exit::Violation(Rc::ProtocolError, "QoS 2 PUBLISH without packet id".into()));
        };
        let mut st = self.session.state.lock();
        if st.awaiting_rel.contains(&id.get()) {
            drop(st);
            self.send(pubrec(id, v5::PublishAckReason::Success));
            return Ok(false);
        }
        if st.awaiting_rel.len() >= self.broker.config.mqtt.max_awaiting_rel {
            return Err(Exit::Violation(Rc::ReceiveMaximumExceeded, "too many QoS 2 messages awaiting PUBREL".into()));
        }
        st.awaiting_rel.insert(id.get());
        drop(st);
        self.burst.keep(self.broker.keep_awaiting_rel(&self.session, id.get(), true));
        Ok(true)
    }

    /// PUBREL of a QoS 2 publish: the packet id is free again.
    fn on_pubrel(&mut self, packet_id: NonZeroU16) {
        let known = self.session.state.lock().awaiting_rel.remove(&packet_id.get());
        if known {
            // PUBCOMP waits too: a packet id still listed after a restart would swallow the
            // client's next message with it.
            self.burst.keep(self.broker.keep_awaiting_rel(&self.session, packet_id.get(), false));
        }
        let reason_code = if known { v5::PublishAck2Reason::Success } else { v5::PublishAck2Reason::PacketIdNotFound };
        self.send(Packet::PublishComplete(v5::PublishAck2 {
            packet_id,
            reason_code,
            properties: Vec::new(),
            reason_string: None,
        }));
    }

    /// PUBACK or PUBCOMP: the packet id is free again.
    fn on_puback(&mut self, id: NonZeroU16) {
        let acked = {
            let mut st = self.session.state.lock();
            st.inflight_position(id).and_then(|pos| st.inflight.remove(pos))
        };
        match acked {
            Some((_, Inflight::Publish(d))) => {
                self.broker.forget_delivery(&self.session, &d);
                self.acked(&d);
            }
            Some((_, Inflight::Released(Some(place)))) => self.broker.forget_release(&self.session, place),
            _ => {}
        }
    }

    /// PUBREC of one of our QoS 2 deliveries: PUBREL follows, unless the client refused it.
    fn on_pubrec(&mut self, a: v5::PublishAck) {
        let id = a.packet_id;
        let failed = u8::from(a.reason_code) >= 0x80;
        let mut st = self.session.state.lock();
        let Some(pos) = st.inflight_position(id) else {
            drop(st);
            self.send(pubrel(id, v5::PublishAck2Reason::PacketIdNotFound));
            return;
        };
        if failed {
            if let Some((_, Inflight::Publish(d))) = st.inflight.remove(pos) {
                drop(st);
                self.broker.forget_delivery(&self.session, &d);
            }
            return;
        }
        let place = match &st.inflight[pos].1 {
            Inflight::Publish(d) => d.stored,
            Inflight::Released(place) => *place,
        };
        let released = std::mem::replace(&mut st.inflight[pos].1, Inflight::Released(place));
        drop(st);
        if let Inflight::Publish(d) = released {
            // The store keeps the PUBREL in the delivery's place: after a restart it is sent
            // again, never the PUBLISH.
            self.burst.keep(self.broker.release_delivery(&self.session, &d, id));
            self.acked(&d);
        }
        self.send(pubrel(id, v5::PublishAck2Reason::Success));
    }

    /// `$events/message_acked`: at PUBACK for QoS 1, at PUBREC for QoS 2, as EMQX.
    fn acked(&self, d: &Delivery) {
        if crate::events::ignored(&d.msg) {
            return;
        }
        let node = &self.broker.config.node.name;
        self.event(EventKind::MessageAcked, |i| {
            let mut c = i.delivery(&d.msg, node);
            c.insert("puback_props".into(), Value::Map(Default::default()));
            c
        });
    }

    fn on_subscribe(&mut self, s: v5::Subscribe) -> Result<(), Exit> {
        check_filters(s.topic_filters.iter().map(|(f, _)| f), "SUBSCRIBE")?;
        let max_qos = self.broker.config.mqtt.max_qos_allowed;
        let mut status = Vec::with_capacity(s.topic_filters.len());
        for (raw, opts) in &s.topic_filters {
            let sub_opts = SubOptions {
                qos: qos_in(opts.qos).min(max_qos),
                no_local: opts.no_local,
                retain_as_published: opts.retain_as_published,
                retain_handling: opts.retain_handling,
                subscription_id: s.id,
            };
            // The filter without `$share/<group>/`: what the ACL speaks of, as in EMQX.
            let filter = topic::parse_subscription(raw).map_or(&**raw, |f| f.filter);
            if !self.authorized(Check::Subscribe, filter)? {
                status.push(v5::SubscribeAckReason::NotAuthorized);
                continue;
            }
            match self.broker.subscribe(&self.session, raw, sub_opts) {
                Ok(granted) => {
                    self.burst.keep(self.broker.keep_subscription(&self.session, raw, Some(&sub_opts)));
                    debug!(client_id = %self.client_id, filter = %&**raw, qos = ?granted, "subscribed");
                    self.event(EventKind::SessionSubscribed, |i| i.subscription(raw, granted, "sub_props"));
                    status.push(match granted {
                        QoS::AtMostOnce => v5::SubscribeAckReason::GrantedQos0,
                        QoS::AtLeastOnce => v5::SubscribeAckReason::GrantedQos1,
                        QoS::ExactlyOnce => v5::SubscribeAckReason::GrantedQos2,
                    });
                }
                Err(e @ (SubscribeError::Filter(_) | SubscribeError::TooManyLevels { .. })) => {
                    info!(client_id = %self.client_id, filter = %&**raw, error = %e, "invalid topic filter");
                    status.push(v5::SubscribeAckReason::TopicFilterInvalid);
                }
                Err(e @ SubscribeError::Quota { .. }) => {
                    info!(client_id = %self.client_id, filter = %&**raw, error = %e, "subscription refused");
                    status.push(v5::SubscribeAckReason::QuotaExceeded);
                }
                Err(e @ SubscribeError::NoLocalOnShared) => {
                    return Err(Exit::Violation(Rc::ProtocolError, e.to_string()))
                }
            }
        }
        self.send(Packet::SubscribeAck(v5::SubscribeAck {
            packet_id: s.packet_id,
            properties: Vec::new(),
            reason_string: None,
            status,
        }));
        Ok(())
    }

    fn on_unsubscribe(&mut self, u: v5::Unsubscribe) -> Result<(), Exit> {
        check_filters(u.topic_filters.iter(), "UNSUBSCRIBE")?;
        // An MQTT 3 UNSUBACK has no reason codes: a filter that is not one can only close.
        if let Some(bad) =
            u.topic_filters.iter().find(|f| !self.version.is_v5() && topic::parse_subscription(f).is_err())
        {
            return Err(Exit::Violation(Rc::ProtocolError, format!("UNSUBSCRIBE of an invalid filter {:?}", &**bad)));
        }
        let status = u
            .topic_filters
            .iter()
            .map(|raw| match self.broker.unsubscribe(&self.session, raw) {
                Err(_) => v5::UnsubscribeAckReason::TopicFilterInvalid,
                Ok(true) => {
                    self.burst.keep(self.broker.keep_subscription(&self.session, raw, None));
                    self.event(EventKind::SessionUnsubscribed, |i| i.subscription(raw, QoS::AtMostOnce, "unsub_props"));
                    v5::UnsubscribeAckReason::Success
                }
                Ok(false) => v5::UnsubscribeAckReason::NoSubscriptionExisted,
            })
            .collect();
        self.send(Packet::UnsubscribeAck(v5::UnsubscribeAck {
            packet_id: u.packet_id,
            properties: Vec::new(),
            reason_string: None,
            status,
        }));
        Ok(())
    }

    /// DISCONNECT: the connection ends; MQTT 5 may change the session's expiry on the way out,
    /// but not from 0.
    fn on_disconnect(&mut self, d: v5::Disconnect) -> Exit {
        if let Some(expiry) = d.session_expiry_interval_secs {
            let mut st = self.session.state.lock();
            if st.expiry_interval == 0 && expiry != 0 {
                return Exit::Violation(
                    Rc::ProtocolError,
                    "session expiry set at DISCONNECT after 0 at CONNECT".into(),
                );
            }
            st.expiry_interval = expiry.min(self.broker.config.mqtt.max_session_expiry_interval);
        }
        Exit::ClientDisconnect { with_will: d.reason_code == Rc::DisconnectWithWillMessage }
    }
}

/// A SUBSCRIBE or UNSUBSCRIBE must carry at least one filter (MQTT-3.8.3-2/-3, MQTT-3.10.3-2),
/// and no string may hold U+0000 (MQTT-1.5.3-2, MQTT-1.5.4-2).
fn check_filters<'a>(mut filters: impl Iterator<Item = &'a ByteString>, packet: &str) -> Result<(), Exit> {
    let mut any = false;
    if filters.any(|f| {
        any = true;
        f.contains('\0')
    }) {
        return Err(Exit::Violation(Rc::MalformedPacket, format!("U+0000 in a {packet} filter")));
    }
    if !any {
        return Err(Exit::Violation(Rc::ProtocolError, format!("{packet} without a topic filter")));
    }
    Ok(())
}

/// Whether a PUBLISH's string properties hold U+0000 (a malformed packet).
fn properties_have_nul(p: &v5::PublishProperties) -> bool {
    let nul = |s: &ByteString| s.contains('\0');
    p.content_type.as_ref().is_some_and(nul)
        || p.response_topic.as_ref().is_some_and(nul)
        || p.user_properties.iter().any(|(k, v)| nul(k) || nul(v))
}

/// Whether a topic is under `$SYS`, the broker's own.
fn is_sys(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

fn pubrec(packet_id: NonZeroU16, reason_code: v5::PublishAckReason) -> Packet {
    Packet::PublishReceived(v5::PublishAck { packet_id, reason_code, properties: Vec::new(), reason_string: None })
}

pub(super) fn pubrel(packet_id: NonZeroU16, reason_code: v5::PublishAck2Reason) -> Packet {
    Packet::PublishRelease(v5::PublishAck2 { packet_id, reason_code, properties: Vec::new(), reason_string: None })
}

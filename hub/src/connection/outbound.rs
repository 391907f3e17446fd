//! Deliveries onto the wire: the session's mailbox drained within the inflight window, each
//! PUBLISH encoded with its properties and topic alias, unacknowledged ones sent again when a
//! session is resumed.

use std::collections::HashMap;
use std::num::NonZeroU16;
use std::time::Instant;

use ntex_bytes::ByteString;
use ntex_mqtt::error::EncodeError;
use ntex_mqtt::v5::codec as v5;
use tracing::{debug, warn};
use weir_rules::event_kind::EventKind;
use weir_types::QoS;

use super::inbound::pubrel;
use super::pages;
use super::Connection;
use crate::message::Delivery;
use crate::metrics::Metrics;
use crate::protocol::{qos_out, Packet};
use crate::session::Inflight;
use crate::transport::Transport;

/// The topic aliases Weir gives a v5 client (broker to client), as EMQX does: the first
/// `max` topics sent get one each, for the connection's life.
#[derive(Debug)]
pub(super) struct OutAliases {
    by_topic: HashMap<ByteString, NonZeroU16>,
    /// The client's Topic Alias Maximum; 0 takes none.
    max: u16,
}

impl OutAliases {
    pub(super) fn new(max: u16) -> OutAliases {
        OutAliases { by_topic: HashMap::new(), max }
    }

    /// The alias to send `topic` with, if it has or can get one, and whether the client knows
    /// it already (the topic is then left out). A new alias is the client's only once
    /// [`OutAliases::taught`] says the PUBLISH that carries it went out.
    fn alias_for(&self, topic: &ByteString) -> Option<(NonZeroU16, bool)> {
        if let Some(alias) = self.by_topic.get(topic) {
            return Some((*alias, true));
        }
        if self.by_topic.len() >= usize::from(self.max) {
            return None;
        }
        let alias = NonZeroU16::new(self.by_topic.len() as u16 + 1).unwrap_or(NonZeroU16::MIN);
        Some((alias, false))
    }

    /// A PUBLISH that sets `alias` for `topic` was encoded for the client.
    fn taught(&mut self, topic: &ByteString, alias: NonZeroU16) {
        self.by_topic.insert(topic.clone(), alias);
    }
}

impl<S: Transport> Connection<S> {
    /// Moves deliveries from the mailbox onto the wire while the inflight window has room.
    pub(super) fn pump_mailbox(&mut self) {
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
                return;
            };
            taken = true;
            if d.msg.is_expired(now) {
                self.broker.expired(&self.session, &d);
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
        // Resends carry the full topic.
        let mut teaches = None;
        if let Some((alias, known)) = (!dup).then(|| self.alias_out.alias_for(&msg.topic)).flatten() {
            properties.topic_alias = Some(alias);
            if known {
                topic = ByteString::new();
            } else {
                teaches = Some(alias);
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
        match self.codec.encode_publish(publish, msg.payload.clone(), pages(&mut self.out)) {
            Ok(()) => {
                // Recorded only now: a PUBLISH refused below never taught the client its alias.
                if let Some(alias) = teaches {
                    self.alias_out.taught(&msg.topic, alias);
                }
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
    pub(super) fn resend_inflight(&mut self) {
        let now = Instant::now();
        let inflight: Vec<(NonZeroU16, Inflight)> = self.session.state.lock().inflight.iter().cloned().collect();
        for (id, state) in inflight {
            match state {
                Inflight::Publish(d) => {
                    self.write_publish(&d, Some(id), true, now);
                }
                Inflight::Released(_) => self.send(pubrel(id, v5::PublishAck2Reason::Success)),
            }
        }
    }

    /// Encodes a packet into the output buffer, written at the next flush.
    pub(super) fn send(&mut self, p: Packet) {
        if let Err(e) = self.codec.encode(p, pages(&mut self.out)) {
            warn!(client_id = %self.client_id, error = %e, "cannot encode packet");
        }
    }
}

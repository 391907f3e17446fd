//! MQTT 3.1.1 packets lifted to their MQTT 5.0 equivalents, and lowered back (reason codes
//! mapped, properties dropped), so that the session logic is written once.

use std::num::NonZeroU16;

use ntex_mqtt::error::DecodeError;
use ntex_mqtt::v3::codec as v3;
use ntex_mqtt::v5::codec as v5;

use super::{Packet, Publish};

fn ack(packet_id: NonZeroU16) -> v5::PublishAck {
    v5::PublishAck {
        packet_id,
        reason_code: v5::PublishAckReason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

fn ack2(packet_id: NonZeroU16) -> v5::PublishAck2 {
    v5::PublishAck2 {
        packet_id,
        reason_code: v5::PublishAck2Reason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

pub(super) fn lift_publish(p: v3::Publish) -> Publish {
    Publish {
        dup: p.dup,
        retain: p.retain,
        qos: p.qos,
        packet_id: p.packet_id,
        topic: p.topic,
        payload_size: p.payload_size,
        properties: v5::PublishProperties::default(),
    }
}

/// A 3.1.1 client packet as its 5.0 equivalent. Server-to-client packets from a client are a
/// protocol violation.
pub(super) fn lift(p: v3::Packet) -> Result<Packet, DecodeError> {
    Ok(match p {
        v3::Packet::Connect(c) => {
            let c = *c;
            Packet::Connect(Box::new(v5::Connect {
                clean_start: c.clean_session,
                keep_alive: c.keep_alive,
                last_will: c.last_will.map(|w| v5::LastWill {
                    qos: w.qos,
                    retain: w.retain,
                    topic: w.topic,
                    message: w.message,
                    will_delay_interval_sec: None,
                    correlation_data: None,
                    message_expiry_interval: None,
                    content_type: None,
                    user_properties: Vec::new(),
                    is_utf8_payload: None,
                    response_topic: None,
                }),
                client_id: c.client_id,
                username: c.username,
                password: c.password,
                ..v5::Connect::default()
            }))
        }
        v3::Packet::PublishAck { packet_id } => Packet::PublishAck(ack(packet_id)),
        v3::Packet::PublishReceived { packet_id } => Packet::PublishReceived(ack(packet_id)),
        v3::Packet::PublishRelease { packet_id } => Packet::PublishRelease(ack2(packet_id)),
        v3::Packet::PublishComplete { packet_id } => Packet::PublishComplete(ack2(packet_id)),
        v3::Packet::Subscribe { packet_id, topic_filters } => Packet::Subscribe(v5::Subscribe {
            packet_id,
            id: None,
            user_properties: Vec::new(),
            topic_filters: topic_filters
                .into_iter()
                .map(|(f, qos)| {
                    (
                        f,
                        v5::SubscriptionOptions {
                            qos,
                            no_local: false,
                            retain_as_published: false,
                            retain_handling: v5::RetainHandling::AtSubscribe,
                        },
                    )
                })
                .collect(),
        }),
        v3::Packet::Unsubscribe { packet_id, topic_filters } => {
            Packet::Unsubscribe(v5::Unsubscribe { packet_id, user_properties: Vec::new(), topic_filters })
        }
        v3::Packet::PingRequest => Packet::PingRequest,
        v3::Packet::Disconnect => Packet::Disconnect(v5::Disconnect::default()),
        v3::Packet::ConnectAck(_)
        | v3::Packet::SubscribeAck { .. }
        | v3::Packet::UnsubscribeAck { .. }
        | v3::Packet::PingResponse => return Err(DecodeError::UnsupportedPacketType),
    })
}

/// A 5.0 server packet as its 3.1.1 equivalent, or `None` where 3.1.1 has none.
pub(super) fn lower(p: Packet) -> Option<v3::Packet> {
    Some(match p {
        Packet::ConnectAck(a) => v3::Packet::ConnectAck(v3::ConnectAck {
            session_present: a.session_present,
            return_code: match a.reason_code {
                v5::ConnectAckReason::Success => v3::ConnectAckReason::ConnectionAccepted,
                v5::ConnectAckReason::UnsupportedProtocolVersion => v3::ConnectAckReason::UnacceptableProtocolVersion,
                v5::ConnectAckReason::ClientIdentifierNotValid => v3::ConnectAckReason::IdentifierRejected,
                v5::ConnectAckReason::BadUserNameOrPassword => v3::ConnectAckReason::BadUserNameOrPassword,
                v5::ConnectAckReason::NotAuthorized | v5::ConnectAckReason::Banned => {
                    v3::ConnectAckReason::NotAuthorized
                }
                _ => v3::ConnectAckReason::ServiceUnavailable,
            },
        }),
        Packet::PublishAck(a) => v3::Packet::PublishAck { packet_id: a.packet_id },
        Packet::PublishReceived(a) => v3::Packet::PublishReceived { packet_id: a.packet_id },
        Packet::PublishRelease(a) => v3::Packet::PublishRelease { packet_id: a.packet_id },
        Packet::PublishComplete(a) => v3::Packet::PublishComplete { packet_id: a.packet_id },
        Packet::SubscribeAck(a) => v3::Packet::SubscribeAck {
            packet_id: a.packet_id,
            status: a
                .status
                .into_iter()
                .map(|s| match s {
                    v5::SubscribeAckReason::GrantedQos0 => v3::SubscribeReturnCode::Success(v5::QoS::AtMostOnce),
                    v5::SubscribeAckReason::GrantedQos1 => v3::SubscribeReturnCode::Success(v5::QoS::AtLeastOnce),
                    v5::SubscribeAckReason::GrantedQos2 => v3::SubscribeReturnCode::Success(v5::QoS::ExactlyOnce),
                    _ => v3::SubscribeReturnCode::Failure,
                })
                .collect(),
        },
        Packet::UnsubscribeAck(a) => v3::Packet::UnsubscribeAck { packet_id: a.packet_id },
        Packet::PingResponse => v3::Packet::PingResponse,
        Packet::Connect(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::PingRequest
        | Packet::Disconnect(_)
        | Packet::Auth(_) => return None,
    })
}

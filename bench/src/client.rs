//! A raw MQTT client on ntex-mqtt's codecs. It acknowledges nothing by itself, so the load tool
//! decides when to answer and the tests see and control every packet. It speaks MQTT 3.1.1 and
//! 5.0; packets are handled in their 5.0 form, those of a 3.1.1 connection lowered on the way
//! out and lifted on the way in.
//!
//! Output is queued ([`Client::queue`]) and written by [`Client::flush`], so that many packets
//! leave in one write. Reads go into a buffer that [`Client::try_frame`] decodes from; the
//! commonest packet a publisher reads, a plain PUBACK, is taken without the codec.

use std::net::SocketAddr;
use std::num::NonZeroU16;

use ntex_bytes::{Buf, BufMut, BytePages, ByteString, Bytes, BytesMut};
use ntex_codec::{Decoder, Encoder};
use ntex_mqtt::error::{DecodeError, EncodeError};
use ntex_mqtt::v3::codec as v3;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

use crate::stream::{Stream, Tls};

pub use v5::Packet;

/// The largest remaining length MQTT's four-byte variable integer holds.
const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// What the broker sent.
#[derive(Debug)]
pub enum Frame {
    /// Any packet but PUBLISH.
    Packet(Packet),
    /// A PUBLISH, with its whole payload.
    Publish(v5::Publish, Bytes),
}

/// Why the client could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The broker sent bytes that are not MQTT.
    #[error("the broker sent an undecodable packet: {0}")]
    Decode(#[from] DecodeError),
    /// A packet could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// A packet MQTT 3.1.1 has no form for, or a message larger than MQTT allows.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// One connection to a broker.
pub struct Client {
    stream: Stream,
    /// Whether it speaks MQTT 5.0 rather than 3.1.1.
    v5: bool,
    c3: v3::Codec,
    c5: v5::Codec,
    /// Bytes read and not yet decoded.
    rbuf: BytesMut,
    /// Packets queued and not yet written.
    out: BytePages,
    /// A PUBLISH whose payload is still arriving, in chunks.
    partial: Option<(v5::Publish, BytesMut)>,
    /// The PUBLISH [`Client::queue_plain_publish`] writes, reused from one message to the next.
    packet: Vec<u8>,
}

impl Client {
    /// Opens a TCP connection; nothing is sent yet (queue a CONNECT).
    pub async fn open(addr: SocketAddr, v5: bool) -> std::io::Result<Client> {
        Client::open_with(addr, v5, None).await
    }

    /// Opens a connection, over TLS if `tls` says how; nothing is sent yet.
    pub async fn open_with(addr: SocketAddr, v5: bool, tls: Option<&Tls>) -> std::io::Result<Client> {
        let stream = Stream::connect(addr, tls).await?;
        Ok(Client {
            stream,
            v5,
            c3: v3::Codec::new(),
            c5: v5::Codec::new(),
            rbuf: BytesMut::with_capacity(64 * 1024),
            out: BytePages::default(),
            partial: None,
            packet: Vec::new(),
        })
    }

    /// Queues a packet; 3.1.1 connections send its 3.1.1 form.
    pub fn queue(&mut self, p: Packet) -> Result<(), ClientError> {
        if self.v5 {
            self.c5.encodev(v5::Encoded::Packet(p), &mut self.out)?;
        } else {
            let p = lower(p).ok_or(ClientError::Unsupported("MQTT 3.1.1 has no such packet"))?;
            self.c3.encodev(v3::Encoded::Packet(p), &mut self.out)?;
        }
        Ok(())
    }

    /// Queues a PUBLISH with its payload (and, in 5.0, its properties).
    pub fn queue_publish(&mut self, mut p: v5::Publish, payload: Bytes) -> Result<(), ClientError> {
        p.payload_size = payload.len() as u32;
        if self.v5 {
            self.c5.encodev(v5::Encoded::Publish(p, Some(payload)), &mut self.out)?;
        } else {
            let p = v3::Publish {
                dup: p.dup,
                retain: p.retain,
                qos: p.qos,
                topic: p.topic,
                packet_id: p.packet_id,
                payload_size: p.payload_size,
            };
            self.c3.encodev(v3::Encoded::Publish(p, Some(payload)), &mut self.out)?;
        }
        Ok(())
    }

    /// Queues a PUBLISH without properties, written by hand rather than through the codec,
    /// whose general path (a `Bytes` per payload, a write per field) is costly for a publisher
    /// that shares the machine with the broker under test.
    pub fn queue_plain_publish(
        &mut self,
        topic: &ByteString,
        qos: QoS,
        retain: bool,
        packet_id: Option<NonZeroU16>,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        let id_len = if packet_id.is_some() { 2 } else { 0 };
        // MQTT 5: an empty property list, one byte.
        let properties_len = usize::from(self.v5);
        let remaining = 2 + topic.len() + id_len + properties_len + payload.len();
        let too_large = ClientError::Unsupported("the message is larger than MQTT allows");
        let topic_len = u16::try_from(topic.len()).map_err(|_| too_large)?;
        if remaining > MAX_REMAINING_LENGTH {
            return Err(ClientError::Unsupported("the message is larger than MQTT allows"));
        }
        let p = &mut self.packet;
        p.clear();
        p.push(0x30 | (qos as u8) << 1 | u8::from(retain));
        let mut len = remaining;
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            p.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        p.extend_from_slice(&topic_len.to_be_bytes());
        p.extend_from_slice(topic.as_bytes());
        if let Some(id) = packet_id {
            p.extend_from_slice(&id.get().to_be_bytes());
        }
        if self.v5 {
            p.push(0);
        }
        p.extend_from_slice(payload);
        self.out.put_slice(p);
        Ok(())
    }

    /// Writes what was queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let bytes = self.out.freeze();
            self.stream.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// Queues a packet and writes it, with whatever was queued before.
    pub async fn send(&mut self, p: Packet) -> Result<(), ClientError> {
        self.queue(p)?;
        Ok(self.flush().await?)
    }

    /// Writes bytes as they are: for packets the codec would refuse to make.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Whether bytes read are waiting to be decoded.
    pub fn has_buffered(&self) -> bool {
        !self.rbuf.is_empty()
    }

    /// Reads what the socket has without waiting: the number of bytes, `None` if it has none
    /// now; `Some(0)` means the broker closed the connection.
    pub fn try_read(&mut self) -> std::io::Result<Option<usize>> {
        let mut tmp = [0u8; 4096];
        match self.stream.try_read(&mut tmp) {
            Ok(n) => {
                self.rbuf.extend_from_slice(&tmp[..n]);
                Ok(Some(n))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next frame, waiting for it; `None` when the broker closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Frame>, ClientError> {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = self.try_frame()? {
                return Ok(Some(frame));
            }
            match self.stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Decodes one frame from the bytes already read, if a whole one is there.
    pub fn try_frame(&mut self) -> Result<Option<Frame>, ClientError> {
        // A PUBACK without reason code or properties, most of what a publisher reads.
        if self.partial.is_none() && self.rbuf.len() >= 4 && self.rbuf[..2] == [0x40, 2] {
            let id = u16::from_be_bytes([self.rbuf[2], self.rbuf[3]]);
            self.rbuf.advance(4);
            let packet_id = NonZeroU16::new(id).ok_or(DecodeError::MalformedPacket)?;
            return Ok(Some(Frame::Packet(Packet::PublishAck(ack(packet_id)))));
        }
        loop {
            let (head, chunk, eof) = match self.decode_one()? {
                None => return Ok(None),
                Some(Decoded::Packet(p)) => return Ok(Some(Frame::Packet(p))),
                Some(Decoded::Publish(p, payload)) => (Some(p), payload, false),
                Some(Decoded::Chunk(c, eof)) => (None, c, eof),
            };
            match head {
                Some(p) if chunk.len() as u32 >= p.payload_size => return Ok(Some(Frame::Publish(p, chunk))),
                Some(p) => {
                    let mut acc = BytesMut::with_capacity(p.payload_size as usize);
                    acc.extend_from_slice(&chunk);
                    self.partial = Some((p, acc));
                }
                None => {
                    let (p, mut acc) = self.partial.take().ok_or(DecodeError::MalformedPacket)?;
                    acc.extend_from_slice(&chunk);
                    if eof {
                        return Ok(Some(Frame::Publish(p, acc.freeze())));
                    }
                    self.partial = Some((p, acc));
                }
            }
        }
    }

    /// One step of the codec, in 5.0 terms.
    fn decode_one(&mut self) -> Result<Option<Decoded>, ClientError> {
        if self.v5 {
            return Ok(match self.c5.decode(&mut self.rbuf)? {
                None => None,
                Some(v5::Decoded::Packet(p, _)) => Some(Decoded::Packet(p)),
                Some(v5::Decoded::Publish(p, payload, _)) => Some(Decoded::Publish(p, payload)),
                Some(v5::Decoded::PayloadChunk(c, eof)) => Some(Decoded::Chunk(c, eof)),
            });
        }
        Ok(match self.c3.decode(&mut self.rbuf)? {
            None => None,
            Some(v3::Decoded::Packet(p, _)) => Some(Decoded::Packet(lift(p)?)),
            Some(v3::Decoded::Publish(p, payload, _)) => Some(Decoded::Publish(
                v5::Publish {
                    dup: p.dup,
                    retain: p.retain,
                    qos: p.qos,
                    packet_id: p.packet_id,
                    topic: p.topic,
                    payload_size: p.payload_size,
                    properties: v5::PublishProperties::default(),
                },
                payload,
            )),
            Some(v3::Decoded::PayloadChunk(c, eof)) => Some(Decoded::Chunk(c, eof)),
        })
    }
}

/// One step of either codec.
enum Decoded {
    Packet(Packet),
    Publish(v5::Publish, Bytes),
    Chunk(Bytes, bool),
}

/// A successful PUBACK or PUBREC.
pub fn ack(packet_id: NonZeroU16) -> v5::PublishAck {
    v5::PublishAck {
        packet_id,
        reason_code: v5::PublishAckReason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

/// A successful PUBREL or PUBCOMP.
pub fn ack2(packet_id: NonZeroU16) -> v5::PublishAck2 {
    v5::PublishAck2 {
        packet_id,
        reason_code: v5::PublishAck2Reason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

/// A client packet in its 3.1.1 form, if it has one.
fn lower(p: Packet) -> Option<v3::Packet> {
    Some(match p {
        Packet::Connect(c) => v3::Packet::Connect(Box::new(v3::Connect {
            clean_session: c.clean_start,
            keep_alive: c.keep_alive,
            last_will: c.last_will.map(|w| v3::LastWill {
                qos: w.qos,
                retain: w.retain,
                topic: w.topic,
                message: w.message,
            }),
            client_id: c.client_id,
            username: c.username,
            password: c.password,
        })),
        Packet::Subscribe(s) => v3::Packet::Subscribe {
            packet_id: s.packet_id,
            topic_filters: s.topic_filters.into_iter().map(|(f, o)| (f, o.qos)).collect(),
        },
        Packet::Unsubscribe(u) => v3::Packet::Unsubscribe { packet_id: u.packet_id, topic_filters: u.topic_filters },
        Packet::PublishAck(a) => v3::Packet::PublishAck { packet_id: a.packet_id },
        Packet::PublishReceived(a) => v3::Packet::PublishReceived { packet_id: a.packet_id },
        Packet::PublishRelease(a) => v3::Packet::PublishRelease { packet_id: a.packet_id },
        Packet::PublishComplete(a) => v3::Packet::PublishComplete { packet_id: a.packet_id },
        Packet::PingRequest => v3::Packet::PingRequest,
        Packet::Disconnect(_) => v3::Packet::Disconnect,
        _ => return None,
    })
}

/// A broker packet of a 3.1.1 connection in its 5.0 form.
fn lift(p: v3::Packet) -> Result<Packet, DecodeError> {
    Ok(match p {
        v3::Packet::ConnectAck(a) => Packet::ConnectAck(Box::new(v5::ConnectAck {
            session_present: a.session_present,
            reason_code: match a.return_code {
                v3::ConnectAckReason::ConnectionAccepted => v5::ConnectAckReason::Success,
                v3::ConnectAckReason::UnacceptableProtocolVersion => v5::ConnectAckReason::UnsupportedProtocolVersion,
                v3::ConnectAckReason::IdentifierRejected => v5::ConnectAckReason::ClientIdentifierNotValid,
                v3::ConnectAckReason::BadUserNameOrPassword => v5::ConnectAckReason::BadUserNameOrPassword,
                v3::ConnectAckReason::NotAuthorized => v5::ConnectAckReason::NotAuthorized,
                _ => v5::ConnectAckReason::ServerUnavailable,
            },
            ..Default::default()
        })),
        v3::Packet::PublishAck { packet_id } => Packet::PublishAck(ack(packet_id)),
        v3::Packet::PublishReceived { packet_id } => Packet::PublishReceived(ack(packet_id)),
        v3::Packet::PublishRelease { packet_id } => Packet::PublishRelease(ack2(packet_id)),
        v3::Packet::PublishComplete { packet_id } => Packet::PublishComplete(ack2(packet_id)),
        v3::Packet::SubscribeAck { packet_id, status } => Packet::SubscribeAck(v5::SubscribeAck {
            packet_id,
            properties: Vec::new(),
            reason_string: None,
            status: status
                .into_iter()
                .map(|s| match s {
                    v3::SubscribeReturnCode::Success(QoS::AtMostOnce) => v5::SubscribeAckReason::GrantedQos0,
                    v3::SubscribeReturnCode::Success(QoS::AtLeastOnce) => v5::SubscribeAckReason::GrantedQos1,
                    v3::SubscribeReturnCode::Success(QoS::ExactlyOnce) => v5::SubscribeAckReason::GrantedQos2,
                    v3::SubscribeReturnCode::Failure => v5::SubscribeAckReason::UnspecifiedError,
                })
                .collect(),
        }),
        v3::Packet::UnsubscribeAck { packet_id } => Packet::UnsubscribeAck(v5::UnsubscribeAck {
            packet_id,
            properties: Vec::new(),
            reason_string: None,
            status: Vec::new(),
        }),
        v3::Packet::PingResponse => Packet::PingResponse,
        _ => return Err(DecodeError::UnsupportedPacketType),
    })
}

//! What a server MUST reject, by statement id of the MQTT 3.1.1 and 5.0 specifications: each
//! case sends the offending bytes and checks the reaction the specification requires (a reason
//! code, or the connection closed). Every case also sends 32 KiB more after the offending packet:
//! the broker's DISCONNECT must still be readable, not lost to a reset.

mod common;

use std::time::Duration;

use common::Weir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the broker must do.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Close the connection without accepting the packet.
    Close,
    /// Refuse the CONNECT with this CONNACK reason code (5.0), then close.
    Connack(u8),
    /// Send DISCONNECT with this reason code (5.0), then close.
    Disconnect(u8),
    /// Answer SUBACK with this return code for the filter.
    Suback(u8),
    /// Accept the connection, then close it once the client has been silent too long.
    Silence,
}

/// One statement of a specification, and the bytes that break it.
struct Case {
    id: &'static str,
    /// 4 for 3.1.1, 5 for 5.0.
    level: u8,
    /// A whole CONNECT to send instead of a valid one, or `None` for a valid one first.
    connect: Option<Vec<u8>>,
    /// The offending packet, sent after a valid CONNECT.
    packet: Vec<u8>,
    expect: Expect,
}

/// A CONNECT at protocol `level` with `flags`, client id `id` and the rest of the payload `tail`.
fn connect(level: u8, flags: u8, id: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 60];
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id);
    body.extend_from_slice(tail);
    frame(0x10, &body)
}

/// A valid CONNECT at protocol `level` with a keep alive of 1 s.
fn keep_alive_1(level: u8) -> Vec<u8> {
    let mut packet = connect(level, 0b10, b"silent", b"");
    packet[2 + 9] = 1;
    packet
}

/// A packet of type-and-flags byte `first` around `body`.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A SUBSCRIBE (`0x82`) or UNSUBSCRIBE (`0xA2`) with packet id 1 and `payload`.
fn sub(first: u8, level: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 1];
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    frame(first, &body)
}

fn cases() -> Vec<Case> {
    let case = |id, level, connect, packet, expect| Case { id, level, connect, packet, expect };
    vec![
        case("MQTT-3.1.2-13 (3.1.1)", 4, Some(connect(4, 0b0000_1010, b"c", b"")), vec![], Expect::Close),
        case("MQTT-3.1.2-15 (3.1.1)", 4, Some(connect(4, 0b0010_0010, b"c", b"")), vec![], Expect::Close),
        case("MQTT-3.1.2-22 (3.1.1)", 4, Some(connect(4, 0b0100_0010, b"c", b"\x00\x01p")), vec![], Expect::Close),
        case("MQTT-3.1.2-11 (5.0)", 5, Some(connect(5, 0b0000_1010, b"c", b"")), vec![], Expect::Connack(0x81)),
        case("MQTT-3.1.2-13 (5.0)", 5, Some(connect(5, 0b0010_0010, b"c", b"")), vec![], Expect::Connack(0x81)),
        case("MQTT-1.5.3-2 (3.1.1), client id", 4, Some(connect(4, 0b10, b"a\0b", b"")), vec![], Expect::Close),
        case("MQTT-1.5.4-2 (5.0), client id", 5, Some(connect(5, 0b10, b"a\0b", b"")), vec![], Expect::Connack(0x81)),
        case("MQTT-3.8.3-3 (3.1.1)", 4, None, sub(0x82, 4, b""), Expect::Close),
        case("MQTT-3.8.3-2 (5.0)", 5, None, sub(0x82, 5, b""), Expect::Disconnect(0x82)),
        case("MQTT-3.10.3-2 (3.1.1)", 4, None, sub(0xA2, 4, b""), Expect::Close),
        case("MQTT-3.10.3-2 (5.0)", 5, None, sub(0xA2, 5, b""), Expect::Disconnect(0x82)),
        case("MQTT-1.5.3-2 (3.1.1), filter", 4, None, sub(0x82, 4, b"\x00\x03a\x00b\x00"), Expect::Close),
        case("MQTT-1.5.4-2 (5.0), filter", 5, None, sub(0x82, 5, b"\x00\x03a\x00b\x00"), Expect::Disconnect(0x81)),
        case("MQTT-4.7.3-1 (3.1.1), SUBSCRIBE", 4, None, sub(0x82, 4, b"\x00\x00\x00"), Expect::Suback(0x80)),
        case("MQTT-4.7.3-1 (3.1.1), UNSUBSCRIBE", 4, None, sub(0xA2, 4, b"\x00\x00"), Expect::Close),
        case("MQTT-4.7.3-1 (5.0), SUBSCRIBE", 5, None, sub(0x82, 5, b"\x00\x00\x00"), Expect::Suback(0x8F)),
        case("MQTT-4.7.1-2 (3.1.1)", 4, None, sub(0x82, 4, b"\x00\x04a/#b\x00"), Expect::Suback(0x80)),
        case("MQTT-4.7.1-2 (5.0)", 5, None, sub(0x82, 5, b"\x00\x04a/#b\x00"), Expect::Suback(0x8F)),
        case("MQTT-4.7.1-3 (3.1.1)", 4, None, sub(0x82, 4, b"\x00\x04a/+b\x00"), Expect::Suback(0x80)),
        case("MQTT-4.7.1-3 (5.0)", 5, None, sub(0x82, 5, b"\x00\x04a/+b\x00"), Expect::Suback(0x8F)),
        case(
            "MQTT-4.8.2-1 (5.0), wildcard in a share name",
            5,
            None,
            sub(0x82, 5, b"\x00\x0b$share/g+/a\x00"),
            Expect::Suback(0x8F),
        ),
        case(
            "MQTT-4.8.2-1 (5.0), no filter after the share name",
            5,
            None,
            sub(0x82, 5, b"\x00\x08$share/g\x00"),
            Expect::Suback(0x8F),
        ),
        case(
            "MQTT-4.8.2-1 (5.0), empty share name",
            5,
            None,
            sub(0x82, 5, b"\x00\x09$share//a\x00"),
            Expect::Suback(0x8F),
        ),
        case("MQTT-3.3.2-2 (3.1.1)", 4, None, frame(0x30, b"\x00\x03a/+x"), Expect::Close),
        case("MQTT-3.3.2-2 (5.0)", 5, None, frame(0x30, b"\x00\x03a/+\x00x"), Expect::Disconnect(0x90)),
        case("MQTT-1.5.4-2 (5.0), topic name", 5, None, frame(0x30, b"\x00\x03a\x00b\x00x"), Expect::Disconnect(0x81)),
        case("MQTT-1.5.3-1 (3.1.1)", 4, None, frame(0x30, b"\x00\x02\xc3\x28x"), Expect::Close),
        case("MQTT-1.5.4-1 (5.0)", 5, None, frame(0x30, b"\x00\x02\xc3\x28\x00x"), Expect::Disconnect(0x81)),
        case("MQTT-2.2.2-2 (3.1.1), SUBSCRIBE flags", 4, None, sub(0x80, 4, b"\x00\x01a\x00"), Expect::Close),
        case("MQTT-2.1.3-1 (5.0), SUBSCRIBE flags", 5, None, sub(0x80, 5, b"\x00\x01a\x00"), Expect::Disconnect(0x81)),
        case("MQTT-3.10.1-1 (3.1.1)", 4, None, sub(0xA0, 4, b"\x00\x01a"), Expect::Close),
        case("MQTT-3.10.1-1 (5.0)", 5, None, sub(0xA0, 5, b"\x00\x01a"), Expect::Disconnect(0x81)),
        case("MQTT-3.6.1-1 (3.1.1)", 4, None, frame(0x60, b"\x00\x01"), Expect::Close),
        case("MQTT-3.6.1-1 (5.0)", 5, None, frame(0x60, b"\x00\x01"), Expect::Disconnect(0x81)),
        case("MQTT-2.2.2-2 (3.1.1), PINGREQ flags", 4, None, frame(0xC1, b""), Expect::Close),
        case("MQTT-2.3.1-1 (3.1.1), SUBSCRIBE", 4, None, frame(0x82, b"\x00\x00\x00\x01a\x00"), Expect::Close),
        case("MQTT-2.3.1-1 (3.1.1), PUBLISH", 4, None, frame(0x32, b"\x00\x01a\x00\x00x"), Expect::Close),
        case(
            "MQTT-2.2.1-3 (5.0), SUBSCRIBE",
            5,
            None,
            frame(0x82, b"\x00\x00\x00\x00\x01a\x00"),
            Expect::Disconnect(0x81),
        ),
        case("MQTT-3.1.0-1 (3.1.1)", 4, Some(frame(0xC0, b"")), vec![], Expect::Close),
        case("MQTT-3.1.0-2 (3.1.1)", 4, None, connect(4, 0b10, b"again", b""), Expect::Close),
        case("MQTT-3.1.0-2 (5.0)", 5, None, connect(5, 0b10, b"again", b""), Expect::Disconnect(0x82)),
        case("MQTT-3.1.2-2 (3.1.1)", 4, Some(connect(6, 0b10, b"c", b"")), vec![], Expect::Connack(0x01)),
        case("MQTT-3.1.2-3 (3.1.1)", 4, Some(connect(4, 0b11, b"c", b"")), vec![], Expect::Close),
        case("MQTT-3.1.2-3 (5.0)", 5, Some(connect(5, 0b11, b"c", b"")), vec![], Expect::Connack(0x81)),
        case("MQTT-3.1.2-14 (3.1.1)", 4, Some(connect(4, 0x1E, b"c", b"\x00\x01w\x00\x01m")), vec![], Expect::Close),
        case(
            "MQTT-3.1.2-12 (5.0)",
            5,
            Some(connect(5, 0x1E, b"c", b"\x00\x00\x01w\x00\x01m")),
            vec![],
            Expect::Connack(0x81),
        ),
        case("MQTT-3.1.3-8 (3.1.1)", 4, Some(connect(4, 0b00, b"", b"")), vec![], Expect::Connack(0x02)),
        case("MQTT-3.3.1-4 (3.1.1)", 4, None, frame(0x36, b"\x00\x01a\x00\x01x"), Expect::Close),
        case("MQTT-3.3.1-4 (5.0)", 5, None, frame(0x36, b"\x00\x01a\x00\x01\x00x"), Expect::Disconnect(0x81)),
        case("MQTT-3.8.3-4 (3.1.1), QoS 3", 4, None, sub(0x82, 4, b"\x00\x01a\x03"), Expect::Close),
        case("MQTT-3.8.3-4 (3.1.1), reserved bits", 4, None, sub(0x82, 4, b"\x00\x01a\x04"), Expect::Close),
        case("MQTT-3.8.3-5 (5.0)", 5, None, sub(0x82, 5, b"\x00\x01a\xc0"), Expect::Disconnect(0x81)),
        case("MQTT-3.8.3-4 (5.0)", 5, None, sub(0x82, 5, b"\x00\x0c$share/g/a/b\x04"), Expect::Disconnect(0x82)),
        case("3.3.2.1 (5.0), no topic and no alias", 5, None, frame(0x30, b"\x00\x00\x00x"), Expect::Disconnect(0x82)),
        case(
            "3.3.2.3 (5.0), a property twice",
            5,
            None,
            frame(0x30, b"\x00\x01a\x0a\x02\x00\x00\x00\x0a\x02\x00\x00\x00\x0ax"),
            Expect::Disconnect(0x82),
        ),
        case(
            "MQTT-3.3.4-6 (5.0), Subscription Identifier from a client",
            5,
            None,
            frame(0x30, b"\x00\x01a\x02\x0b\x01x"),
            Expect::Disconnect(0x82),
        ),
        case(
            "3.8.2.1.2 (5.0), Subscription Identifier 0",
            5,
            None,
            frame(0x82, b"\x00\x01\x02\x0b\x00\x00\x01a\x00"),
            Expect::Disconnect(0x82),
        ),
        case(
            "3.1.2.11.3 (5.0), Receive Maximum 0",
            5,
            Some(frame(0x10, b"\x00\x04MQTT\x05\x02\x00\x3c\x03\x21\x00\x00\x00\x01c")),
            vec![],
            Expect::Connack(0x82),
        ),
        case(
            "3.1.2.11.4 (5.0), Maximum Packet Size 0",
            5,
            Some(frame(0x10, b"\x00\x04MQTT\x05\x02\x00\x3c\x05\x27\x00\x00\x00\x00\x00\x01c")),
            vec![],
            Expect::Connack(0x82),
        ),
        case(
            "3.1.2.11.7 (5.0), Request Problem Information 2",
            5,
            Some(frame(0x10, b"\x00\x04MQTT\x05\x02\x00\x3c\x02\x17\x02\x00\x01c")),
            vec![],
            Expect::Connack(0x82),
        ),
        case(
            "3.3.2.3.4 (5.0), Topic Alias 0",
            5,
            None,
            frame(0x30, b"\x00\x01a\x03\x23\x00\x00x"),
            Expect::Disconnect(0x94),
        ),
        case(
            "MQTT-3.1.2-1 (3.1.1)",
            4,
            Some(frame(0x10, b"\x00\x04MQTX\x04\x02\x00\x3c\x00\x01c")),
            vec![],
            Expect::Close,
        ),
        case(
            "MQTT-3.1.2-1 (5.0)",
            5,
            Some(frame(0x10, b"\x00\x04MQTX\x05\x02\x00\x3c\x00\x00\x01c")),
            vec![],
            Expect::Close,
        ),
        case("MQTT-3.1.2-24 (3.1.1)", 4, Some(keep_alive_1(4)), vec![], Expect::Silence),
        case("MQTT-3.1.2-22 (5.0)", 5, Some(keep_alive_1(5)), vec![], Expect::Disconnect(0x8D)),
        case("MQTT-3.14.1-1 (3.1.1)", 4, None, frame(0xE1, b""), Expect::Close),
        case("MQTT-2.1.3-1 (5.0), DISCONNECT flags", 5, None, frame(0xE1, b""), Expect::Disconnect(0x81)),
        case("MQTT-2.2.2-2 (3.1.1), PUBACK flags", 4, None, frame(0x41, b"\x00\x01"), Expect::Close),
        case("MQTT-2.1.3-1 (5.0), PUBACK flags", 5, None, frame(0x41, b"\x00\x01"), Expect::Disconnect(0x81)),
        case("MQTT-2.3.1-1 (3.1.1), UNSUBSCRIBE", 4, None, frame(0xA2, b"\x00\x00\x00\x01a"), Expect::Close),
        case(
            "MQTT-2.2.1-3 (5.0), UNSUBSCRIBE",
            5,
            None,
            frame(0xA2, b"\x00\x00\x00\x00\x01a"),
            Expect::Disconnect(0x81),
        ),
        case("MQTT-2.2.1-3 (5.0), PUBLISH", 5, None, frame(0x32, b"\x00\x01a\x00\x00\x00x"), Expect::Disconnect(0x81)),
        case("MQTT-4.7.3-1 (3.1.1), PUBLISH", 4, None, frame(0x30, b"\x00\x00x"), Expect::Close),
        case("MQTT-3.3.1-2 (3.1.1)", 4, None, frame(0x38, b"\x00\x01ax"), Expect::Close),
        case("MQTT-3.3.1-2 (5.0)", 5, None, frame(0x38, b"\x00\x01a\x00x"), Expect::Disconnect(0x81)),
        case(
            "MQTT-1.5.5-1 (5.0), five-byte length",
            5,
            None,
            b"\x30\xff\xff\xff\xff\x01".to_vec(),
            Expect::Disconnect(0x81),
        ),
        case("2.2 (3.1.1), five-byte length", 4, None, b"\x30\xff\xff\xff\xff\x01".to_vec(), Expect::Close),
        case("2.2.1 (3.1.1), packet type 0", 4, None, frame(0x00, b""), Expect::Close),
        case("2.2.1 (3.1.1), packet type 15", 4, None, frame(0xF0, b""), Expect::Close),
        case("2.1.2 (5.0), packet type 0", 5, None, frame(0x00, b""), Expect::Disconnect(0x81)),
        case("3.2 (3.1.1), CONNACK from a client", 4, None, frame(0x20, b"\x00\x00"), Expect::Close),
        case("3.2 (5.0), CONNACK from a client", 5, None, frame(0x20, b"\x00\x00\x00"), Expect::Disconnect(0x82)),
        case("1.5.3 (3.1.1), string past the end", 4, None, frame(0x30, b"\x00\xffab"), Expect::Close),
        case("1.5.4 (5.0), string past the end", 5, None, frame(0x30, b"\x00\xffab"), Expect::Disconnect(0x81)),
        case(
            "2.2.2.1 (5.0), properties past the end",
            5,
            None,
            frame(0x30, b"\x00\x01a\x10x"),
            Expect::Disconnect(0x81),
        ),
        case("MQTT-1.5.3-1 (3.1.1), surrogate", 4, None, frame(0x30, b"\x00\x03\xed\xa0\x80x"), Expect::Close),
        case(
            "MQTT-1.5.4-1 (5.0), surrogate",
            5,
            None,
            frame(0x30, b"\x00\x03\xed\xa0\x80\x00x"),
            Expect::Disconnect(0x81),
        ),
        case(
            "MQTT-1.5.3-2 (3.1.1), user name",
            4,
            Some(connect(4, 0x82, b"c", b"\x00\x03a\x00b")),
            vec![],
            Expect::Close,
        ),
        case(
            "MQTT-3.8.3-4 (5.0), Retain Handling 3",
            5,
            None,
            sub(0x82, 5, b"\x00\x01a\x30"),
            Expect::Disconnect(0x82),
        ),
        case("MQTT-3.8.3-4 (5.0), QoS 3", 5, None, sub(0x82, 5, b"\x00\x01a\x03"), Expect::Disconnect(0x81)),
        case(
            "3.3.2.3.4 (5.0), Topic Alias above the maximum",
            5,
            None,
            frame(0x30, b"\x00\x01a\x03\x23\x00\x0bx"),
            Expect::Disconnect(0x94),
        ),
        case(
            "3.3.2.3.4 (5.0), unknown Topic Alias",
            5,
            None,
            frame(0x30, b"\x00\x00\x03\x23\x00\x05x"),
            Expect::Disconnect(0x82),
        ),
        case(
            "3.3.4 (5.0), Receive Maximum exceeded",
            5,
            None,
            [1u8, 2, 3].iter().flat_map(|id| frame(0x34, &[0, 1, b'a', 0, *id, 0, b'x'])).collect(),
            Expect::Disconnect(0x93),
        ),
        case(
            "3.2.2.3.6 (5.0), packet above Maximum Packet Size",
            5,
            None,
            b"\x30\x80\x80\x80\x01".to_vec(),
            Expect::Disconnect(0x95),
        ),
        case(
            "2.2.3 (3.1.1), packet above the server's limit",
            4,
            None,
            b"\x30\x80\x80\x80\x01".to_vec(),
            Expect::Close,
        ),
        case(
            "4.12 (5.0), AUTH without an Authentication Method",
            5,
            None,
            frame(0xF0, b"\x18\x00"),
            Expect::Disconnect(0x82),
        ),
        case(
            "MQTT-4.12.0-1 (5.0), unsupported Authentication Method",
            5,
            Some(frame(0x10, b"\x00\x04MQTT\x05\x02\x00\x3c\x04\x15\x00\x01X\x00\x01c")),
            vec![],
            Expect::Connack(0x8C),
        ),
        case(
            "3.1.3.3 (3.1.1), Will Topic with a wildcard",
            4,
            Some(connect(4, 0x06, b"c", b"\x00\x03a/#\x00\x01m")),
            vec![],
            Expect::Close,
        ),
        case(
            "3.1.3.3 (5.0), Will Topic with a wildcard",
            5,
            Some(connect(5, 0x06, b"c", b"\x00\x00\x03a/#\x00\x01m")),
            vec![],
            Expect::Connack(0x90),
        ),
        case(
            "MQTT-3.3.2-14 (5.0), Response Topic with a wildcard",
            5,
            None,
            frame(0x30, b"\x00\x01a\x06\x08\x00\x03a/#x"),
            Expect::Disconnect(0x82),
        ),
        case(
            "3.3.2.3.2 (5.0), Payload Format Indicator 2",
            5,
            None,
            frame(0x30, b"\x00\x01a\x02\x01\x02x"),
            Expect::Disconnect(0x82),
        ),
        case(
            "3.14.2.2.2 (5.0), Session Expiry set on DISCONNECT",
            5,
            None,
            frame(0xE0, b"\x00\x05\x11\x00\x00\x00\x0a"),
            Expect::Disconnect(0x82),
        ),
    ]
}

/// Every packet in `bytes`: its type-and-flags byte and its body.
fn packets(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let (mut len, mut shift, mut at) = (0usize, 0, 1);
        while let Some(b) = bytes.get(at) {
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            at += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        let Some(body) = bytes.get(at..at + len) else { break };
        out.push((bytes[0], body.to_vec()));
        bytes = &bytes[at + len..];
    }
    out
}

/// Sends `case`, then reads everything until the broker closes (or 5 s pass, or the SUBACK a case
/// expects came): the packets read, and whether it closed.
async fn run(weir: &Weir, case: &Case) -> Result<(Vec<(u8, Vec<u8>)>, bool), String> {
    let mut s = TcpStream::connect(weir.tcp).await.expect("connect");
    let mut out = case.connect.clone().unwrap_or_else(|| connect(case.level, 0b10, b"conformance", b""));
    out.extend_from_slice(&case.packet);
    // More input behind the offending packet, which the broker will not read.
    out.extend(std::iter::repeat_n([0xC0u8, 0x00], 16 * 1024).flatten());
    let _ = s.write_all(&out).await;
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let closed = loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) => break true,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                // A SUBACK is the whole answer: the connection stays open.
                if matches!(case.expect, Expect::Suback(_)) && packets(&got).iter().any(|(k, _)| *k == 0x90) {
                    break false;
                }
            }
            Ok(Err(e)) => return Err(format!("the broker reset the connection ({e}) instead of closing it")),
        }
    };
    Ok((packets(&got), closed))
}

/// Whether the broker reacted to `case` as its statement says.
async fn check(weir: &Weir, case: &Case) -> Result<(), String> {
    let (got, closed) = run(weir, case).await?;
    let kinds: Vec<u8> = got.iter().map(|(k, _)| k >> 4).collect();
    let shown: Vec<_> = got.iter().take(3).collect();
    let fail = |what: String| Err(format!("{what}; got {} packets, first {shown:?}, closed: {closed}", got.len()));
    match case.expect {
        Expect::Close if !closed => fail("not closed".into()),
        Expect::Close if kinds.contains(&9) || kinds.contains(&11) => fail("the packet was acknowledged".into()),
        Expect::Close if case.connect.is_some() && !kinds.is_empty() => {
            fail("a reply instead of just the close".into())
        }
        Expect::Connack(code) if got.first().map(|(k, b)| (*k, b.get(1).copied())) != Some((0x20, Some(code))) => {
            fail(format!("no CONNACK {code:#04x}"))
        }
        Expect::Disconnect(code)
            if got.iter().find(|(k, _)| *k == 0xE0).map(|(_, b)| b.first().copied()) != Some(Some(code)) =>
        {
            fail(format!("no DISCONNECT {code:#04x}"))
        }
        Expect::Connack(_) | Expect::Disconnect(_) if !closed => fail("not closed after the refusal".into()),
        Expect::Suback(code)
            if got.iter().find(|(k, _)| *k == 0x90).map(|(_, b)| b.last().copied()) != Some(Some(code)) =>
        {
            fail(format!("no SUBACK {code:#04x}"))
        }
        Expect::Silence if !closed || got.first().map(|(k, b)| (*k, b.get(1).copied())) != Some((0x20, Some(0))) => {
            fail("not accepted, then closed".into())
        }
        _ => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_server_must_reject_is_rejected() {
    // Limits low enough for a case to pass them.
    let weir = Weir::start_with("[mqtt]\nmax_topic_alias = 10\nmax_awaiting_rel = 2");
    let mut failed = Vec::new();
    for case in cases() {
        if let Err(why) = check(&weir, &case).await {
            failed.push(format!("{}: {why}", case.id));
        }
    }
    assert!(failed.is_empty(), "{} of {} cases failed:\n{}", failed.len(), cases().len(), failed.join("\n"));
}

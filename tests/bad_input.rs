//! Bad input closes only the offending connection, with the right reason code; the broker never
//! dies and other clients never notice.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw::{connect_packet, publish, subscribe, Frame, Packet, Raw};
use common::Weir;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A v5 CONNECT for client id "x", as bytes.
const CONNECT_V5: &[u8] = b"\x10\x0e\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x01x";
/// A 3.1.1 CONNECT for client id "y".
const CONNECT_V4: &[u8] = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01y";

/// Whether the broker closes the socket (EOF or reset) within `limit`, draining what it sends.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Connects, sends a v5 CONNECT, then `bad`, and returns the DISCONNECT reason code.
async fn v5_violation(addr: SocketAddr, bad: &[u8]) -> v5::DisconnectReasonCode {
    let (mut c, ack) = Raw::connect(addr, connect_packet("violator")).await;
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
    c.write_raw(bad).await;
    let rc = c.recv_disconnect().await;
    assert!(c.recv().await.is_none(), "connection left open after DISCONNECT");
    rc
}

#[tokio::test]
async fn each_violation_gets_its_reason_code() {
    let weir = Weir::start();
    // Another client that must not notice anything.
    let mut bystander = Raw::client(weir.tcp, "bystander").await;
    bystander.send(subscribe(1, "by/#", QoS::AtMostOnce)).await;
    assert!(matches!(bystander.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));

    use v5::DisconnectReasonCode as Rc;
    // A wildcard in a PUBLISH topic.
    assert_eq!(v5_violation(weir.tcp, b"\x30\x06\x00\x03a/#\x00").await, Rc::TopicNameInvalid);
    // Invalid UTF-8 in a topic.
    assert_eq!(v5_violation(weir.tcp, b"\x30\x06\x00\x03a\xff\xfe\x00").await, Rc::MalformedPacket);
    // A second CONNECT.
    assert_eq!(v5_violation(weir.tcp, CONNECT_V5).await, Rc::ProtocolError);
    // A packet type a client never sends (CONNACK).
    assert_eq!(v5_violation(weir.tcp, b"\x20\x03\x00\x00\x00").await, Rc::ProtocolError);
    // Reserved packet type 0 / broken remaining length.
    assert_eq!(v5_violation(weir.tcp, b"\x00\x00").await, Rc::MalformedPacket);
    assert_eq!(v5_violation(weir.tcp, b"\xc0\xff\xff\xff\xff\x01").await, Rc::MalformedPacket);
    // SUBSCRIBE with wrong fixed-header flags.
    assert_eq!(v5_violation(weir.tcp, b"\x80\x08\x00\x01\x00\x00\x02a/\x00").await, Rc::MalformedPacket);
    // QoS 3.
    assert_eq!(v5_violation(weir.tcp, b"\x36\x06\x00\x01a\x00\x01\x00").await, Rc::MalformedPacket);

    let mut p = Raw::client(weir.tcp, "p").await;
    p.publish(publish("by/still-here", QoS::AtMostOnce, None), b"ok").await;
    assert_eq!(&*bystander.recv_publish().await.0.topic, "by/still-here");
    assert!(weir.log_has(&["protocol violation"]), "violations are logged");
}

#[tokio::test]
async fn garbage_before_connect_and_half_open_sockets_are_closed() {
    let weir = Weir::start_with("[mqtt]\nidle_timeout = 1\n");
    // HTTP on the MQTT port.
    let mut s = TcpStream::connect(weir.tcp).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
    // A PUBLISH before CONNECT.
    let mut s = TcpStream::connect(weir.tcp).await.unwrap();
    s.write_all(b"\x30\x05\x00\x01ahi").await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
    // A socket that never says anything: closed after idle_timeout.
    let mut s = TcpStream::connect(weir.tcp).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(4)).await);
    // Half a CONNECT, then silence.
    let mut s = TcpStream::connect(weir.tcp).await.unwrap();
    s.write_all(&CONNECT_V4[..8]).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(4)).await);
    // Unknown protocol level: CONNACK 0x01 (3.1.1 form), then close.
    let mut s = TcpStream::connect(weir.tcp).await.unwrap();
    s.write_all(b"\x10\x0d\x00\x04MQTT\x07\x02\x00\x3c\x00\x01z").await.unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).await.unwrap();
    assert_eq!(ack, *b"\x20\x02\x00\x01");
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
}

/// xorshift64*: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Well-formed packets to cut and mutate, so that the noise reaches past the first byte.
const SEEDS: &[&[u8]] = &[
    b"\x30\x07\x00\x03a/bhi",                         // PUBLISH QoS 0
    b"\x32\x09\x00\x03a/b\x00\x01hi",                 // PUBLISH QoS 1
    b"\x34\x09\x00\x03a/b\x00\x02hi",                 // PUBLISH QoS 2
    b"\x82\x08\x00\x01\x00\x03a/#\x01",               // SUBSCRIBE (3.1.1)
    b"\xa2\x07\x00\x02\x00\x03a/#",                   // UNSUBSCRIBE
    b"\x40\x02\x00\x01",                              // PUBACK
    b"\x50\x02\x00\x01",                              // PUBREC
    b"\x62\x02\x00\x01",                              // PUBREL
    b"\x70\x02\x00\x01",                              // PUBCOMP
    b"\xc0\x00",                                      // PINGREQ
    b"\xe0\x00",                                      // DISCONNECT
    b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01y", // CONNECT
];

fn mutate(noise: &mut Noise, seed: &[u8]) -> Vec<u8> {
    let mut p = seed.to_vec();
    match noise.below(4) {
        0 => p.truncate(noise.below(p.len().max(1))),
        1 => {
            let i = noise.below(p.len());
            p[i] = noise.next() as u8;
        }
        2 => {
            let n = noise.below(16);
            p.extend(noise.bytes(n));
        }
        _ => {
            let n = 1 + noise.below(64);
            p = noise.bytes(n);
        }
    }
    p
}

#[tokio::test]
async fn thousands_of_random_and_truncated_packets() {
    let weir = Weir::start_with("[mqtt]\nidle_timeout = 1\n");
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut sent = 0;
    for round in 0..1500 {
        let mut s = match TcpStream::connect(weir.tcp).await {
            Ok(s) => s,
            Err(e) => panic!("broker stopped accepting at round {round}: {e}"),
        };
        // Half the rounds start with a valid CONNECT, so that the noise reaches the session.
        if round % 2 == 0 {
            let connect = if round % 4 == 0 { CONNECT_V4 } else { CONNECT_V5 };
            let _ = s.write_all(connect).await;
        }
        let mut bytes = Vec::new();
        for _ in 0..1 + noise.below(6) {
            let seed = SEEDS[noise.below(SEEDS.len())];
            bytes.extend(mutate(&mut noise, seed));
            sent += 1;
        }
        let _ = s.write_all(&bytes).await;
        // Close without reading half of the time: a half-open socket the broker must clean up.
        if round % 2 == 1 {
            let _ = s.shutdown().await;
        }
        drop(s);
    }
    assert!(sent > 3000, "sent {sent} packets");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut weir = weir;
    assert!(weir.is_alive(), "the broker died; log:\n{}", weir.log());
    assert!(!weir.log().contains("panicked"), "a task panicked:\n{}", weir.log());
    // And it still serves a normal client.
    let mut sub = Raw::client(weir.tcp, "after-sub").await;
    sub.send(subscribe(1, "after/#", QoS::AtLeastOnce)).await;
    assert!(matches!(sub.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let mut p = Raw::client(weir.tcp, "after-pub").await;
    p.publish(publish("after/x", QoS::AtLeastOnce, Some(1)), b"alive").await;
    let (m, body) = sub.recv_publish().await;
    assert_eq!((&*m.topic, &body[..]), ("after/x", &b"alive"[..]));
}

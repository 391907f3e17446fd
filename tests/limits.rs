//! The limits a client meets, each with its reason code: client id length, topic levels,
//! subscriptions per session, session expiry, the retained store, and `$SYS`.

mod common;

use std::time::Duration;

use common::raw::{connect_packet, publish, subscribe, Frame, Packet, Raw};
use common::{publish_qos1, Subscriber, Weir};
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

/// The reason codes of the SUBACK that answers a SUBSCRIBE of `filter`.
async fn suback(c: &mut Raw, packet_id: u16, filter: &str) -> Vec<v5::SubscribeAckReason> {
    c.send(subscribe(packet_id, filter, QoS::AtMostOnce)).await;
    match c.recv().await {
        Some(Frame::Packet(Packet::SubscribeAck(ack))) => ack.status,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_id_over_max_clientid_len_is_refused() {
    let weir = Weir::start_with("[mqtt]\nmax_clientid_len = 8\n");
    let (_, ack) = Raw::connect(weir.tcp, connect_packet("nine-char")).await;
    assert_eq!(ack.reason_code, v5::ConnectAckReason::ClientIdentifierNotValid);
    assert!(weir.log_has(&["CONNECT refused", "max_clientid_len"]));
    let (_, ack) = Raw::connect(weir.tcp, connect_packet("eight-ch")).await;
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
}

#[tokio::test]
async fn topic_levels_and_subscriptions_have_limits() {
    let weir = Weir::start_with("[mqtt]\nmax_topic_levels = 3\nmax_subscriptions = 2\n");
    let mut c = Raw::client(weir.tcp, "limited").await;
    assert_eq!(suback(&mut c, 1, "a/b/c/d").await, [v5::SubscribeAckReason::TopicFilterInvalid]);
    assert_eq!(suback(&mut c, 2, "a/b/c").await, [v5::SubscribeAckReason::GrantedQos0]);
    assert_eq!(suback(&mut c, 3, "x").await, [v5::SubscribeAckReason::GrantedQos0]);
    assert_eq!(suback(&mut c, 4, "y").await, [v5::SubscribeAckReason::QuotaExceeded], "a third one");
    assert_eq!(suback(&mut c, 5, "x").await, [v5::SubscribeAckReason::GrantedQos0], "replacing one is fine");
    assert!(weir.log_has(&["subscription refused", "max_subscriptions"]));
    c.publish(publish("a/b/c/d", QoS::AtMostOnce, None), b"deep").await;
    assert_eq!(c.recv_disconnect().await, v5::DisconnectReasonCode::TopicNameInvalid);
}

#[tokio::test]
async fn a_long_session_expiry_is_cut_and_connack_says_so() {
    let weir = Weir::start_with("[mqtt]\nmax_session_expiry_interval = 60\n");
    let mut c = connect_packet("keeper");
    c.session_expiry_interval_secs = 3600;
    let (_, ack) = Raw::connect(weir.tcp, c).await;
    assert_eq!(ack.session_expiry_interval_secs, Some(60));
    let mut c = connect_packet("modest");
    c.session_expiry_interval_secs = 30;
    let (_, ack) = Raw::connect(weir.tcp, c).await;
    assert_eq!(ack.session_expiry_interval_secs, None, "within the bound, nothing to say");
}

#[tokio::test]
async fn clients_cannot_publish_to_sys() {
    let weir = Weir::start();
    let mut watcher = Raw::client(weir.tcp, "watcher").await;
    assert_eq!(suback(&mut watcher, 1, "$SYS/fake/#").await, [v5::SubscribeAckReason::GrantedQos0]);
    let mut c = Raw::client(weir.tcp, "forger").await;
    c.publish(publish("$SYS/fake/uptime", QoS::AtLeastOnce, Some(1)), b"0").await;
    match c.recv().await {
        Some(Frame::Packet(Packet::PublishAck(ack))) => {
            assert_eq!(ack.reason_code, v5::PublishAckReason::NotAuthorized)
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
    assert!(watcher.recv_within(Duration::from_millis(300)).await.is_err(), "nothing was routed");
}

#[tokio::test]
async fn the_retained_store_has_bounds() {
    let weir = Weir::start_with("[retainer]\nmax_retained_messages = 2\nmax_payload_size = 10\n");
    let mut p = Raw::client(weir.tcp, "retainer").await;
    for (topic, payload) in
        [("r/1", "one"), ("r/2", "two"), ("r/3", "three"), ("r/1", "one again"), ("r/big", "0123456789ab")]
    {
        let mut m = publish(topic, QoS::AtMostOnce, None);
        m.retain = true;
        p.publish(m, payload.as_bytes()).await;
    }
    assert!(weir.log_has(&["not retained", "max_retained_messages"]));
    assert!(weir.log_has(&["not retained", "max_payload_size"]));
    let mut s = Raw::client(weir.tcp, "late").await;
    assert_eq!(suback(&mut s, 1, "r/#").await, [v5::SubscribeAckReason::GrantedQos0]);
    let mut got = Vec::new();
    while let Ok(Some(Frame::Publish(m, body))) = s.recv_within(Duration::from_millis(500)).await {
        got.push((m.topic.to_string(), String::from_utf8_lossy(&body).into_owned()));
    }
    got.sort();
    assert_eq!(got, [("r/1".to_string(), "one again".to_string()), ("r/2".to_string(), "two".to_string())]);
}

/// Whether the broker closes `s` within `limit` (reads nothing but the end, or an error).
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_listener_takes_max_connections_at_once() {
    let weir = Weir::start_with_env(&[("WEIR_LISTENERS__TCP__MAX_CONNECTIONS", "2".into())]);
    let first = Raw::client(weir.tcp, "one").await;
    let _second = Raw::client(weir.tcp, "two").await;
    let mut third = tokio::net::TcpStream::connect(weir.tcp).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(5)).await, "the third socket is closed at once");
    assert!(weir.log_has(&["listener full", "max_connections=2"]));
    drop(first);
    // The first one's slot comes back once its connection has ended: a new socket is then left
    // open (waiting for its CONNECT) instead of closed at once.
    for attempt in 0.. {
        let mut probe = tokio::net::TcpStream::connect(weir.tcp).await.unwrap();
        if !closed_within(&mut probe, Duration::from_millis(300)).await {
            break;
        }
        assert!(attempt < 50, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn websocket_upgrades_and_frames_have_bounds() {
    use tokio::io::AsyncWriteExt;
    let weir = Weir::start_with_env(&[
        ("WEIR_LISTENERS__WS__HANDSHAKE_TIMEOUT", "1".into()),
        ("WEIR_LISTENERS__WS__MAX_FRAME_SIZE", "65536".into()),
    ]);
    let mut silent = tokio::net::TcpStream::connect(weir.ws).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await, "no upgrade within handshake_timeout");
    let mut s = tokio::net::TcpStream::connect(weir.ws).await.unwrap();
    let upgrade = "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Protocol: mqtt\r\n\r\n";
    s.write_all(upgrade.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut s, &mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    // A binary frame that says it holds 1 MiB, over the 64 KiB bound: refused on its header,
    // not buffered while the rest is awaited.
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[0u8; 1024]);
    s.write_all(&frame).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await, "the oversized frame closes the connection");
}

/// `messages_rate` and `bytes_rate` pace a client by pausing its reads: everything it sends
/// arrives, no sooner than the rate allows (the first period's worth goes through at once).
#[tokio::test]
async fn a_listener_rate_paces_its_clients_without_dropping() {
    let limits =
        [("WEIR_LISTENERS__TCP__MESSAGES_RATE", "100/s", 10), ("WEIR_LISTENERS__TCP__BYTES_RATE", "10KB/s", 100)];
    for (key, rate, payload) in limits {
        let limit = (key, rate.to_string());
        let weir = Weir::start_with_env(&[limit]);
        let mut sub = Subscriber::start(weir.tcp, "paced-sub", "paced/#").await;
        let started = std::time::Instant::now();
        // 600 messages, or 600 packets of about 110 bytes: six periods' worth. The first period
        // is in hand, and the last read's debt is paid after the client is done: at least four
        // seconds' worth is paced (the client keeps up to 100 in flight).
        publish_qos1(weir.tcp, "paced", 600, move |_| ("paced/1".into(), "x".repeat(payload))).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(3500), "{rate}: 600 messages in {took:?}");
        assert_eq!(sub.collect(600, Duration::from_secs(10)).await.len(), 600, "{rate}: nothing is dropped");
        assert!(weir.log_has(&["paced", "reads pause"]), "{}", weir.log());
    }
}

//! Flow control of the real broker, packet by packet with a raw client: a subscriber's bounded
//! queue, the inflight window its Receive Maximum sets, and the back-pressure a slow subscriber
//! puts on its publishers until it is stalled.

mod common;

use std::num::NonZeroU16;
use std::time::Duration;

use common::raw::{connect_packet, puback, publish, subscribe, Frame, Packet, Raw};
use common::Weir;
use ntex_mqtt::QoS;

#[tokio::test]
async fn bounded_queue_drops_oldest() {
    let weir = Weir::start_with("[mqtt]\nmax_mqueue_len = 5\n");
    let mut c = connect_packet("slow");
    c.session_expiry_interval_secs = 60;
    let (mut s, _) = Raw::connect(weir.tcp, c.clone()).await;
    s.send(subscribe(1, "mq/#", QoS::AtLeastOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut p = Raw::client(weir.tcp, "p").await;
    for i in 0..12u8 {
        p.publish(publish("mq/x", QoS::AtLeastOnce, Some(u16::from(i) + 1)), &[i]).await;
        assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishAck(_)))));
    }
    c.clean_start = false;
    let (mut s, _) = Raw::connect(weir.tcp, c).await;
    let mut got = Vec::new();
    while let Ok(Some(Frame::Publish(m, body))) = s.recv_within(Duration::from_millis(500)).await {
        s.send(puback(m.packet_id.unwrap())).await;
        got.push(body[0]);
    }
    assert_eq!(got, vec![7, 8, 9, 10, 11], "the newest max_mqueue_len messages survive");
}

#[tokio::test]
async fn inflight_window_follows_receive_maximum() {
    let weir = Weir::start();
    let mut c = connect_packet("narrow");
    c.receive_max = NonZeroU16::new(2);
    let (mut s, _) = Raw::connect(weir.tcp, c).await;
    s.send(subscribe(1, "win/#", QoS::AtLeastOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let mut p = Raw::client(weir.tcp, "p").await;
    for i in 0..4u16 {
        p.publish(publish("win/x", QoS::AtLeastOnce, Some(i + 1)), b"m").await;
    }
    let (a, _) = s.recv_publish().await;
    let (_b, _) = s.recv_publish().await;
    assert!(s.recv_within(Duration::from_millis(400)).await.is_err(), "more than Receive Maximum in flight");
    s.send(puback(a.packet_id.unwrap())).await;
    s.recv_publish().await;
    assert!(s.recv_within(Duration::from_millis(300)).await.is_err());
}

#[tokio::test]
async fn slow_connected_subscriber_pauses_publishers_and_loses_nothing() {
    let weir = Weir::start_with("[mqtt]\nmax_mqueue_len = 5\nbackpressure_timeout = 3000\n");
    let mut c = connect_packet("slow-reader");
    c.receive_max = NonZeroU16::new(1);
    let (mut s, _) = Raw::connect(weir.tcp, c).await;
    s.send(subscribe(1, "bp/#", QoS::AtLeastOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));

    let mut p = Raw::client(weir.tcp, "fast-writer").await;
    let total = 60u16;
    let writer = tokio::spawn(async move {
        for i in 0..total {
            p.publish(publish("bp/x", QoS::AtLeastOnce, Some(i + 1)), &i.to_be_bytes()).await;
        }
        let mut acked = 0;
        while acked < total {
            match p.recv().await {
                Some(Frame::Packet(Packet::PublishAck(_))) => acked += 1,
                other => panic!("{other:?}"),
            }
        }
    });
    // Read slowly: one message at a time, acknowledged after a pause.
    for i in 0..total {
        let (m, body) = s.recv_publish().await;
        assert_eq!(u16::from_be_bytes([body[0], body[1]]), i, "lost or reordered; log:\n{}", weir.log());
        tokio::time::sleep(Duration::from_millis(5)).await;
        s.send(puback(m.packet_id.unwrap())).await;
    }
    writer.await.unwrap();
}

#[tokio::test]
async fn stalled_subscriber_does_not_block_publishers() {
    let weir = Weir::start_with("[mqtt]\nmax_mqueue_len = 5\nbackpressure_timeout = 300\n");
    let mut c = connect_packet("stuck");
    c.receive_max = NonZeroU16::new(1);
    let (mut stuck, _) = Raw::connect(weir.tcp, c).await;
    stuck.send(subscribe(1, "st/#", QoS::AtLeastOnce)).await;
    assert!(matches!(stuck.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let mut healthy = Raw::client(weir.tcp, "healthy").await;
    healthy.send(subscribe(1, "st/#", QoS::AtMostOnce)).await;
    assert!(matches!(healthy.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));

    // `stuck` never acknowledges; the publisher is paused once, then goes on.
    let mut p = Raw::client(weir.tcp, "p").await;
    for i in 0..40u16 {
        p.publish(publish("st/x", QoS::AtLeastOnce, Some(i + 1)), b"m").await;
    }
    for _ in 0..40 {
        let got = tokio::time::timeout(Duration::from_secs(3), p.recv()).await;
        assert!(matches!(got, Ok(Some(Frame::Packet(Packet::PublishAck(_))))), "publisher blocked: {got:?}");
    }
    for _ in 0..40 {
        healthy.recv_publish().await;
    }
    assert!(weir.log_has(&["subscriber stays behind"]), "the stall is logged");
}

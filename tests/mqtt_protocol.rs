//! MQTT 5.0 behaviour of the real broker, checked packet by packet with a raw client.

mod common;

use std::num::{NonZeroU16, NonZeroU32};
use std::time::{Duration, Instant};

use common::raw::{self, connect_packet, pid, puback, publish, subscribe, subscribe_with, Frame, Packet, Raw};
use common::Weir;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

#[tokio::test]
async fn qos_levels_and_downgrade() {
    let weir = Weir::start();
    let mut sub = Raw::client(weir.tcp, "sub").await;
    sub.send(subscribe(1, "q/#", QoS::AtLeastOnce)).await;
    assert!(
        matches!(sub.recv().await, Some(Frame::Packet(Packet::SubscribeAck(a))) if a.status == vec![v5::SubscribeAckReason::GrantedQos1])
    );

    let mut publ = Raw::client(weir.tcp, "pub").await;
    // QoS 2 in: PUBREC, then PUBREL/PUBCOMP; delivered at the subscription's QoS 1.
    publ.publish(publish("q/2", QoS::ExactlyOnce, Some(7)), b"two").await;
    assert!(matches!(publ.recv().await, Some(Frame::Packet(Packet::PublishReceived(a))) if a.packet_id == pid(7)));
    publ.send(Packet::PublishRelease(v5::PublishAck2 {
        packet_id: pid(7),
        reason_code: v5::PublishAck2Reason::Success,
        properties: vec![],
        reason_string: None,
    }))
    .await;
    assert!(matches!(publ.recv().await, Some(Frame::Packet(Packet::PublishComplete(a))) if a.packet_id == pid(7)));
    let (p, body) = sub.recv_publish().await;
    assert_eq!((&*p.topic, &body[..], p.qos), ("q/2", &b"two"[..], QoS::AtLeastOnce));
    sub.send(puback(p.packet_id.unwrap())).await;

    // QoS 0 in stays QoS 0 out.
    publ.publish(publish("q/0", QoS::AtMostOnce, None), b"zero").await;
    let (p, _) = sub.recv_publish().await;
    assert_eq!((p.qos, p.packet_id), (QoS::AtMostOnce, None));

    // A resent QoS 2 PUBLISH (same id, before PUBREL) is not routed twice.
    publ.publish(publish("q/x", QoS::ExactlyOnce, Some(9)), b"once").await;
    assert!(matches!(publ.recv().await, Some(Frame::Packet(Packet::PublishReceived(_)))));
    let mut again = publish("q/x", QoS::ExactlyOnce, Some(9));
    again.dup = true;
    publ.publish(again, b"once").await;
    assert!(matches!(publ.recv().await, Some(Frame::Packet(Packet::PublishReceived(_)))));
    let (p, _) = sub.recv_publish().await;
    assert_eq!(&*p.topic, "q/x");
    sub.send(puback(p.packet_id.unwrap())).await;
    assert!(sub.recv_within(Duration::from_millis(300)).await.is_err(), "duplicate delivery");
}

#[tokio::test]
async fn puback_reason_when_nobody_listens() {
    let weir = Weir::start();
    let mut c = Raw::client(weir.tcp, "lonely").await;
    c.publish(publish("nobody/here", QoS::AtLeastOnce, Some(1)), b"x").await;
    match c.recv().await {
        Some(Frame::Packet(Packet::PublishAck(a))) => {
            assert_eq!(a.reason_code, v5::PublishAckReason::NoMatchingSubscribers)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn retained_messages_and_retain_handling() {
    let weir = Weir::start();
    let mut p = Raw::client(weir.tcp, "p").await;
    let mut r = publish("ret/a", QoS::AtMostOnce, None);
    r.retain = true;
    p.publish(r.clone(), b"first").await;
    p.publish(r.clone(), b"second").await;
    let mut r2 = publish("ret/b", QoS::AtMostOnce, None);
    r2.retain = true;
    p.publish(r2.clone(), b"gone").await;
    p.publish(r2, b"").await; // empty payload deletes
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Retain Handling 0: sent on subscribe, with RETAIN set; only the latest; deleted one absent.
    let mut s = Raw::client(weir.tcp, "s").await;
    s.send(subscribe(1, "ret/#", QoS::AtMostOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let (m, body) = s.recv_publish().await;
    assert!(m.retain);
    assert_eq!((&*m.topic, &body[..]), ("ret/a", &b"second"[..]));
    assert!(s.recv_within(Duration::from_millis(300)).await.is_err());

    // Retain Handling 1: only when the subscription is new.
    s.send(subscribe_with(2, "ret/#", QoS::AtMostOnce, |o| o.retain_handling = v5::RetainHandling::AtSubscribeNew))
        .await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    assert!(s.recv_within(Duration::from_millis(300)).await.is_err());

    // Retain Handling 2: never.
    let mut s2 = Raw::client(weir.tcp, "s2").await;
    s2.send(subscribe_with(1, "ret/#", QoS::AtMostOnce, |o| o.retain_handling = v5::RetainHandling::NoAtSubscribe))
        .await;
    assert!(matches!(s2.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    assert!(s2.recv_within(Duration::from_millis(300)).await.is_err());

    // Live retained messages: RETAIN cleared unless Retain As Published.
    let mut rap = Raw::client(weir.tcp, "rap").await;
    rap.send(subscribe_with(1, "live/#", QoS::AtMostOnce, |o| o.retain_as_published = true)).await;
    assert!(matches!(rap.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    s.send(subscribe(3, "live/#", QoS::AtMostOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let mut live = publish("live/x", QoS::AtMostOnce, None);
    live.retain = true;
    p.publish(live, b"now").await;
    assert!(rap.recv_publish().await.0.retain);
    assert!(!s.recv_publish().await.0.retain);
}

#[tokio::test]
async fn expired_retained_message_is_not_delivered() {
    let weir = Weir::start();
    let mut p = Raw::client(weir.tcp, "p").await;
    let mut r = publish("exp/a", QoS::AtMostOnce, None);
    r.retain = true;
    r.properties.message_expiry_interval = NonZeroU32::new(1);
    p.publish(r, b"short-lived").await;
    let mut keep = publish("exp/b", QoS::AtMostOnce, None);
    keep.retain = true;
    keep.properties.message_expiry_interval = NonZeroU32::new(100);
    p.publish(keep, b"long-lived").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut s = Raw::client(weir.tcp, "s").await;
    s.send(subscribe(1, "exp/#", QoS::AtMostOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let (m, _) = s.recv_publish().await;
    assert_eq!(&*m.topic, "exp/b");
    let left = m.properties.message_expiry_interval.expect("expiry forwarded").get();
    assert!((90..=98).contains(&left), "remaining expiry {left}");
    assert!(s.recv_within(Duration::from_millis(300)).await.is_err());
}

#[tokio::test]
async fn session_resumes_with_queued_and_unacked_messages() {
    let weir = Weir::start();
    let mut c = connect_packet("persist");
    c.clean_start = true;
    c.session_expiry_interval_secs = 300;
    let (mut s, ack) = Raw::connect(weir.tcp, c.clone()).await;
    assert!(!ack.session_present);
    s.send(subscribe(1, "ps/#", QoS::AtLeastOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));

    let mut p = Raw::client(weir.tcp, "p").await;
    p.publish(publish("ps/1", QoS::AtLeastOnce, Some(1)), b"one").await;
    // Received but not acknowledged, then the connection drops.
    let (first, _) = s.recv_publish().await;
    assert!(!first.dup);
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.publish(publish("ps/2", QoS::AtLeastOnce, Some(2)), b"two").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    c.clean_start = false;
    let (mut s, ack) = Raw::connect(weir.tcp, c).await;
    assert!(ack.session_present);
    let (again, body) = s.recv_publish().await;
    assert!(again.dup, "unacknowledged message resent with DUP");
    assert_eq!(again.packet_id, first.packet_id);
    assert_eq!(&body[..], b"one");
    let (queued, body) = s.recv_publish().await;
    assert!(!queued.dup);
    assert_eq!(&body[..], b"two");
    assert_ne!(queued.packet_id, again.packet_id, "packet ids in flight are not reused");
}

#[tokio::test]
async fn clean_start_discards_the_old_session() {
    let weir = Weir::start();
    let mut c = connect_packet("fresh");
    c.session_expiry_interval_secs = 300;
    let (mut s, _) = Raw::connect(weir.tcp, c.clone()).await;
    s.send(subscribe(1, "cs/#", QoS::AtLeastOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.clean_start = true;
    let (mut s, ack) = Raw::connect(weir.tcp, c).await;
    assert!(!ack.session_present);
    let mut p = Raw::client(weir.tcp, "p").await;
    p.publish(publish("cs/1", QoS::AtMostOnce, None), b"x").await;
    assert!(s.recv_within(Duration::from_millis(300)).await.is_err(), "old subscription survived clean start");
}

#[tokio::test]
async fn takeover_disconnects_the_first_connection() {
    let weir = Weir::start();
    let mut c = connect_packet("twin");
    c.session_expiry_interval_secs = 60;
    let (mut first, _) = Raw::connect(weir.tcp, c.clone()).await;
    first.send(subscribe(1, "tw/#", QoS::AtLeastOnce)).await;
    assert!(matches!(first.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    c.clean_start = false;
    let (mut second, ack) = Raw::connect(weir.tcp, c).await;
    assert!(ack.session_present);
    assert_eq!(first.recv_disconnect().await, v5::DisconnectReasonCode::SessionTakenOver);
    assert!(first.recv().await.is_none());
    // The subscription moved with the session.
    let mut p = Raw::client(weir.tcp, "p").await;
    p.publish(publish("tw/x", QoS::AtMostOnce, None), b"hi").await;
    assert_eq!(&*second.recv_publish().await.0.topic, "tw/x");
}

#[tokio::test]
async fn server_assigns_a_client_id() {
    let weir = Weir::start();
    let (_c, ack) = Raw::connect(weir.tcp, connect_packet("")).await;
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
    assert!(ack.assigned_client_id.as_ref().is_some_and(|id| !id.is_empty()));
    assert!(ack.max_packet_size.is_some());
    assert!(ack.topic_alias_max > 0);
}

#[tokio::test]
async fn will_messages() {
    let weir = Weir::start();
    let mut watcher = Raw::client(weir.tcp, "watcher").await;
    watcher.send(subscribe(1, "will/#", QoS::AtMostOnce)).await;
    assert!(matches!(watcher.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));

    let with_will = |id: &str, delay: Option<u32>| {
        let mut c = connect_packet(id);
        c.last_will = Some(raw::last_will(&format!("will/{id}"), QoS::AtMostOnce, delay));
        c
    };

    // Normal DISCONNECT: no will.
    let (mut a, _) = Raw::connect(weir.tcp, with_will("normal", None)).await;
    a.send(Packet::Disconnect(v5::Disconnect::default())).await;
    assert!(watcher.recv_within(Duration::from_millis(400)).await.is_err());

    // DISCONNECT with reason 0x04: will sent.
    let (mut b, _) = Raw::connect(weir.tcp, with_will("asked", None)).await;
    b.send(Packet::Disconnect(v5::Disconnect {
        reason_code: v5::DisconnectReasonCode::DisconnectWithWillMessage,
        ..Default::default()
    }))
    .await;
    assert_eq!(&*watcher.recv_publish().await.0.topic, "will/asked");

    // Socket dropped: will sent.
    let (c, _) = Raw::connect(weir.tcp, with_will("dropped", None)).await;
    drop(c);
    assert_eq!(&*watcher.recv_publish().await.0.topic, "will/dropped");

    // Will Delay Interval: sent after the delay (bounded by session expiry), not before.
    let mut delayed = with_will("delayed", Some(2));
    delayed.session_expiry_interval_secs = 10;
    let (d, _) = Raw::connect(weir.tcp, delayed.clone()).await;
    drop(d);
    assert!(watcher.recv_within(Duration::from_millis(1200)).await.is_err(), "will sent before its delay");
    assert_eq!(&*watcher.recv_publish().await.0.topic, "will/delayed");

    // Reconnecting within the delay cancels the will.
    let (d, _) = Raw::connect(weir.tcp, delayed.clone()).await;
    drop(d);
    tokio::time::sleep(Duration::from_millis(300)).await;
    delayed.clean_start = false;
    delayed.last_will = None;
    let (_back, ack) = Raw::connect(weir.tcp, delayed).await;
    assert!(ack.session_present);
    assert!(watcher.recv_within(Duration::from_millis(2500)).await.is_err(), "will sent although the client came back");
}

#[tokio::test]
async fn shared_subscriptions_round_robin_and_redispatch() {
    let weir = Weir::start();
    let mut m1 = Raw::client(weir.tcp, "m1").await;
    let mut m2 = Raw::client(weir.tcp, "m2").await;
    m1.send(subscribe(1, "$share/g/work/#", QoS::AtLeastOnce)).await;
    m2.send(subscribe(1, "$share/g/work/#", QoS::AtLeastOnce)).await;
    for m in [&mut m1, &mut m2] {
        assert!(matches!(m.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    }
    let mut queue = Raw::client(weir.tcp, "q1").await;
    queue.send(subscribe(1, "$queue/work/#", QoS::AtMostOnce)).await;
    assert!(matches!(queue.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));

    let mut p = Raw::client(weir.tcp, "p").await;
    for i in 0..4u16 {
        p.publish(publish("work/item", QoS::AtLeastOnce, Some(i + 1)), &[i as u8]).await;
    }
    let mut got1 = Vec::new();
    for _ in 0..2 {
        let (msg, body) = m1.recv_publish().await;
        m1.send(puback(msg.packet_id.unwrap())).await;
        got1.push(body[0]);
    }
    let mut got2 = Vec::new();
    for _ in 0..2 {
        let (_, body) = m2.recv_publish().await;
        got2.push(body[0]); // deliberately not acknowledged
    }
    got1.extend(&got2);
    got1.sort_unstable();
    assert_eq!(got1, vec![0, 1, 2, 3], "each message to exactly one member");
    // The `$queue` group got all four, as the only member of its own group.
    for _ in 0..4 {
        queue.recv_publish().await;
    }

    // m2 leaves with two unacknowledged messages: they go to m1.
    drop(m2);
    let mut redelivered = Vec::new();
    for _ in 0..2 {
        let (msg, body) = m1.recv_publish().await;
        m1.send(puback(msg.packet_id.unwrap())).await;
        redelivered.push(body[0]);
    }
    redelivered.sort_unstable();
    got2.sort_unstable();
    assert_eq!(redelivered, got2);
}

#[tokio::test]
async fn v5_properties_pass_through() {
    let weir = Weir::start();
    let mut s = Raw::client(weir.tcp, "s").await;
    let mut sub = subscribe(1, "props/#", QoS::AtMostOnce);
    if let Packet::Subscribe(ref mut s) = sub {
        s.id = NonZeroU32::new(42);
    }
    s.send(sub).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let mut p = Raw::client(weir.tcp, "p").await;
    let mut m = publish("props/a", QoS::AtMostOnce, None);
    m.properties.content_type = Some("application/json".into());
    m.properties.response_topic = Some("reply/here".into());
    m.properties.correlation_data = Some("corr-1".into());
    m.properties.user_properties = vec![("k".into(), "v".into()), ("k".into(), "w".into())];
    m.properties.is_utf8_payload = true;
    p.publish(m, b"{}").await;
    let (got, _) = s.recv_publish().await;
    assert_eq!(got.properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(got.properties.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(got.properties.correlation_data.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(got.properties.user_properties.len(), 2);
    assert!(got.properties.is_utf8_payload);
    assert_eq!(got.properties.subscription_ids, vec![NonZeroU32::new(42).unwrap()]);
}

#[tokio::test]
async fn no_local_and_topic_aliases() {
    let weir = Weir::start();
    let mut c = connect_packet("self");
    c.topic_alias_max = 10;
    let (mut me, _) = Raw::connect(weir.tcp, c).await;
    me.send(subscribe_with(1, "nl/#", QoS::AtMostOnce, |o| o.no_local = true)).await;
    assert!(matches!(me.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    me.send(subscribe(2, "al/#", QoS::AtMostOnce)).await;
    assert!(matches!(me.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    me.publish(publish("nl/mine", QoS::AtMostOnce, None), b"x").await;
    assert!(me.recv_within(Duration::from_millis(300)).await.is_err(), "No Local ignored");

    // Inbound alias: set with a topic, then used with an empty topic.
    let mut first = publish("al/t", QoS::AtMostOnce, None);
    first.properties.topic_alias = NonZeroU16::new(3);
    me.publish(first, b"1").await;
    let mut second = publish("", QoS::AtMostOnce, None);
    second.properties.topic_alias = NonZeroU16::new(3);
    me.publish(second, b"2").await;
    // Outbound alias: the first delivery carries topic + alias, the second only the alias.
    let (d1, _) = me.recv_publish().await;
    let (d2, b2) = me.recv_publish().await;
    assert_eq!(&*d1.topic, "al/t");
    assert!(d1.properties.topic_alias.is_some());
    assert!(d2.topic.is_empty());
    assert_eq!(d2.properties.topic_alias, d1.properties.topic_alias);
    assert_eq!(&b2[..], b"2");

    // An alias never set is a protocol error.
    let mut bad = publish("", QoS::AtMostOnce, None);
    bad.properties.topic_alias = NonZeroU16::new(9);
    me.publish(bad, b"?").await;
    assert_eq!(me.recv_disconnect().await, v5::DisconnectReasonCode::ProtocolError);
}

#[tokio::test]
async fn maximum_packet_size_both_ways() {
    let weir = Weir::start_with("[mqtt]\nmax_packet_size = 1024\n");
    // Outbound: a client with Maximum Packet Size 100 does not get a larger message.
    let mut c = connect_packet("small");
    c.max_packet_size = NonZeroU32::new(100);
    let (mut small, ack) = Raw::connect(weir.tcp, c).await;
    assert_eq!(ack.max_packet_size, Some(1024));
    small.send(subscribe(1, "size/#", QoS::AtMostOnce)).await;
    assert!(matches!(small.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let mut p = Raw::client(weir.tcp, "p").await;
    p.publish(publish("size/big", QoS::AtMostOnce, None), &[b'x'; 500]).await;
    p.publish(publish("size/small", QoS::AtMostOnce, None), b"ok").await;
    assert_eq!(&*small.recv_publish().await.0.topic, "size/small");

    // Inbound: a packet above the broker's maximum closes that connection with 0x95.
    p.publish(publish("size/huge", QoS::AtMostOnce, None), &[b'x'; 2000]).await;
    assert_eq!(p.recv_disconnect().await, v5::DisconnectReasonCode::PacketTooLarge);
    assert!(p.recv().await.is_none());
}

#[tokio::test]
async fn keep_alive_timeout_closes_the_connection() {
    let weir = Weir::start();
    let mut c = connect_packet("sleepy");
    c.keep_alive = 1;
    let (mut s, _) = Raw::connect(weir.tcp, c).await;
    // Nothing sent: closed after 1.5 × keep alive.
    assert_eq!(s.recv_disconnect().await, v5::DisconnectReasonCode::KeepAliveTimeout);
}

#[tokio::test]
async fn sys_topics_are_published() {
    let weir = Weir::start_with("[sys_topics]\nsys_msg_interval = 1\n");
    let mut s = Raw::client(weir.tcp, "sys").await;
    s.send(subscribe(1, "$SYS/brokers/+/version", QoS::AtMostOnce)).await;
    s.send(subscribe(2, "$SYS/brokers/+/stats/connections/count", QoS::AtMostOnce)).await;
    s.send(subscribe(3, "#", QoS::AtMostOnce)).await;
    // A snapshot taken just before this client connected counts no connection: the next one,
    // a second later, counts it.
    let (mut version, mut counted) = (None, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while version.is_none() || !counted {
        assert!(Instant::now() < deadline, "no snapshot counted this connection");
        match s.recv().await {
            Some(Frame::Publish(p, body)) => {
                assert!(p.topic.starts_with("$SYS/brokers/"), "`#` matched {}", &*p.topic);
                let body = String::from_utf8_lossy(&body).into_owned();
                if p.topic.ends_with("/version") {
                    version = Some(body);
                } else if p.topic.ends_with("/count") {
                    counted |= body.parse::<u64>().expect("a count") >= 1;
                }
            }
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    assert_eq!(version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn unsubscribe_reports_what_existed() {
    let weir = Weir::start();
    let mut s = Raw::client(weir.tcp, "u").await;
    s.send(subscribe(1, "un/#", QoS::AtMostOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    s.send(Packet::Unsubscribe(v5::Unsubscribe {
        packet_id: pid(2),
        user_properties: vec![],
        topic_filters: vec!["un/#".into(), "never/#".into()],
    }))
    .await;
    match s.recv().await {
        Some(Frame::Packet(Packet::UnsubscribeAck(a))) => assert_eq!(
            a.status,
            vec![v5::UnsubscribeAckReason::Success, v5::UnsubscribeAckReason::NoSubscriptionExisted]
        ),
        other => panic!("{other:?}"),
    }
    let mut p = Raw::client(weir.tcp, "p").await;
    p.publish(publish("un/x", QoS::AtMostOnce, None), b"x").await;
    assert!(s.recv_within(Duration::from_millis(300)).await.is_err());
}

#[tokio::test]
async fn invalid_filters_are_refused_in_suback() {
    let weir = Weir::start();
    let mut s = Raw::client(weir.tcp, "f").await;
    s.send(subscribe(1, "a/#/b", QoS::AtMostOnce)).await;
    match s.recv().await {
        Some(Frame::Packet(Packet::SubscribeAck(a))) => {
            assert_eq!(a.status, vec![v5::SubscribeAckReason::TopicFilterInvalid])
        }
        other => panic!("{other:?}"),
    }
    // The connection goes on.
    s.send(raw::subscribe(2, "ok/+", QoS::AtMostOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
}

#[tokio::test]
async fn sigterm_disconnects_clients_and_exits() {
    let mut weir = Weir::start();
    let mut v5c = Raw::client(weir.tcp, "stay").await;
    weir.terminate();
    assert_eq!(v5c.recv_disconnect().await, v5::DisconnectReasonCode::ServerShuttingDown);
    assert!(weir.exited_cleanly_within(Duration::from_secs(10)), "log:\n{}", weir.log());
}

#[tokio::test]
async fn server_keep_alive_overrides_the_client() {
    let weir = Weir::start_with("[mqtt]\nserver_keepalive = 1\n");
    let mut c = connect_packet("told");
    c.keep_alive = 600;
    let (mut s, ack) = Raw::connect(weir.tcp, c).await;
    assert_eq!(ack.server_keepalive_sec, Some(1));
    // Silent for 1.5 × the server's keep alive, not the client's 600 s.
    assert_eq!(s.recv_disconnect().await, v5::DisconnectReasonCode::KeepAliveTimeout);
}

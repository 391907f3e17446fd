//! The front door without sockets: sessions opened as a connection opens them, messages
//! published as a connection publishes them, and what reaches each session's mailbox.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec::RetainHandling;
use weir_connectors::driver::DeliveryConfig;
use weir_connectors::sinks::SinkConfig;
use weir_rules::pipeline::testing::MemoryPipeline;

use super::*;
use crate::message::{Delivery, Will};
use crate::session::{Kick, SubOptions};

fn broker() -> Arc<Broker> {
    Broker::new(Config::default(), None)
}

fn msg(topic: &str, payload: &str, qos: QoS, retain: bool) -> Arc<Message> {
    let mut m = Message::new(ByteString::from(topic), Bytes::from(payload.to_string()), qos, retain);
    m.publisher = Some("publisher".into());
    Arc::new(m)
}

fn opts(qos: QoS) -> SubOptions {
    SubOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: RetainHandling::AtSubscribe,
        subscription_id: None,
    }
}

/// Everything in a session's mailbox.
fn mailbox(s: &Session) -> Vec<Delivery> {
    s.drain_queue()
}

/// A message from a client, as its connection hands it over: one burst of one.
fn publish(b: &Broker, m: Arc<Message>) -> usize {
    let mut burst = Burst::default();
    let matched = b.publish(m, &mut burst);
    b.end_burst(&mut burst);
    matched
}

#[tokio::test]
async fn subscriptions_route_and_unsubscribing_stops_them() {
    let b = broker();
    let a = b.connect(&"a".into(), true, 0).await;
    assert_eq!(b.subscribe(&a.session, "t/+", opts(QoS::AtLeastOnce)), Ok(QoS::AtLeastOnce));
    assert_eq!(b.topic_count(), 1);
    assert_eq!(publish(&b, msg("t/1", "x", QoS::ExactlyOnce, false)), 1);
    assert_eq!(publish(&b, msg("u/1", "y", QoS::AtMostOnce, false)), 0);
    let got = mailbox(&a.session);
    assert_eq!(got.len(), 1);
    assert_eq!((&*got[0].msg.topic, got[0].qos), ("t/1", QoS::AtLeastOnce), "downgraded to the subscription's QoS");
    assert_eq!(Metrics::get(&b.metrics.messages_received), 2);
    assert_eq!(Metrics::get(&b.metrics.dropped_no_subscribers), 1);
    assert_eq!(b.unsubscribe(&a.session, "t/+"), Ok(true));
    assert_eq!(b.unsubscribe(&a.session, "t/+"), Ok(false));
    assert!(b.unsubscribe(&a.session, "t/#/x").is_err());
    assert!(matches!(b.subscribe(&a.session, "t/#/x", opts(QoS::AtMostOnce)), Err(SubscribeError::Filter(_))));
    assert_eq!(publish(&b, msg("t/1", "x", QoS::AtMostOnce, false)), 0);
    assert_eq!(b.topic_count(), 0);
}

#[tokio::test]
async fn shared_groups_take_turns_and_no_local_skips_the_publisher() {
    let b = broker();
    let (x, y) = (b.connect(&"x".into(), true, 0).await, b.connect(&"y".into(), true, 0).await);
    for s in [&x.session, &y.session] {
        b.subscribe(s, "$share/g/s/#", opts(QoS::AtMostOnce)).unwrap();
    }
    let no_local = SubOptions { no_local: true, ..opts(QoS::AtMostOnce) };
    assert_eq!(b.subscribe(&x.session, "$share/g/n", no_local), Err(SubscribeError::NoLocalOnShared));
    for i in 0..4 {
        assert_eq!(publish(&b, msg("s/1", &i.to_string(), QoS::AtMostOnce, false)), 1, "one member per group");
    }
    let (to_x, to_y) = (mailbox(&x.session), mailbox(&y.session));
    let payloads =
        |d: &[Delivery]| d.iter().map(|d| String::from_utf8_lossy(&d.msg.payload).into_owned()).collect::<Vec<_>>();
    assert_eq!((to_x.len(), to_y.len()), (2, 2), "{:?} {:?}", payloads(&to_x), payloads(&to_y));
    let me = b.connect(&"publisher".into(), true, 0).await;
    b.subscribe(&me.session, "mine", no_local).unwrap();
    assert_eq!(publish(&b, msg("mine", "x", QoS::AtMostOnce, false)), 0, "No Local: its own messages skip it");
    assert!(mailbox(&me.session).is_empty());
}

#[tokio::test]
async fn a_second_connect_takes_the_session_over() {
    let b = broker();
    let first = b.connect(&"c".into(), false, 60).await;
    assert!(!first.present);
    b.subscribe(&first.session, "t", opts(QoS::AtLeastOnce)).unwrap();
    // The first connection leaves when asked, as a connection does.
    let (old_broker, old_session, kick, generation) = (b.clone(), first.session.clone(), first.kick, first.generation);
    let old = tokio::spawn(async move {
        let why = kick.await;
        old_broker.disconnect(&old_session, generation, None);
        why
    });
    let second = b.connect(&"c".into(), false, 60).await;
    assert_eq!(old.await.unwrap(), Ok(Kick::TakenOver));
    assert!(second.present, "the session is resumed");
    assert_eq!(second.session.uid, first.session.uid);
    assert!(second.session.is_connected());
    assert_eq!(publish(&b, msg("t", "x", QoS::AtLeastOnce, false)), 1, "its subscription lives on");
    assert_eq!(b.session_count(), 1);
    // A clean start ends it: a new session, without the subscription.
    b.disconnect(&second.session, second.generation, None);
    let third = b.connect(&"c".into(), true, 0).await;
    assert!(!third.present);
    assert_ne!(third.session.uid, first.session.uid);
    assert_eq!(b.topic_count(), 0);
    assert_eq!(Metrics::get(&b.metrics.connections), 1);
}

#[tokio::test]
async fn retained_messages_come_with_a_subscription_as_retain_handling_says() {
    let b = broker();
    b.dispatch(msg("r/1", "kept", QoS::AtLeastOnce, true));
    b.dispatch(msg("r/2", "too", QoS::AtMostOnce, true));
    assert_eq!(b.retained_count(), 2);
    let s = b.connect(&"s".into(), true, 0).await;
    b.subscribe(&s.session, "r/1", opts(QoS::ExactlyOnce)).unwrap();
    let got = mailbox(&s.session);
    assert_eq!(got.len(), 1);
    assert!(got[0].retain, "sent with RETAIN");
    assert_eq!(got[0].qos, QoS::AtLeastOnce, "at the lower of the two QoS");
    let new_only = SubOptions { retain_handling: RetainHandling::AtSubscribeNew, ..opts(QoS::AtMostOnce) };
    b.subscribe(&s.session, "r/1", new_only).unwrap();
    assert!(mailbox(&s.session).is_empty(), "not again for a subscription that existed");
    let never = SubOptions { retain_handling: RetainHandling::NoAtSubscribe, ..opts(QoS::AtMostOnce) };
    b.subscribe(&s.session, "r/#", never).unwrap();
    assert!(mailbox(&s.session).is_empty());
    b.subscribe(&s.session, "$share/g/r/#", opts(QoS::AtMostOnce)).unwrap();
    assert!(mailbox(&s.session).is_empty(), "never to a shared subscription");
    b.dispatch(msg("r/1", "", QoS::AtMostOnce, true));
    assert_eq!(b.retained_count(), 1, "an empty retained message deletes");
}

#[tokio::test]
async fn a_full_subscriber_makes_its_publisher_wait_until_it_drains() {
    let mut config = Config::default();
    config.mqtt.max_mqueue_len = 2;
    config.mqtt.backpressure_timeout = 60_000;
    let b = Broker::new(config, None);
    let sub = b.connect(&"sub".into(), true, 0).await;
    let publisher = b.connect(&"pub".into(), true, 0).await;
    b.subscribe(&sub.session, "t", opts(QoS::AtLeastOnce)).unwrap();
    let mut burst = Burst::default();
    for i in 0..3 {
        b.publish(msg("t", &i.to_string(), QoS::AtLeastOnce, false), &mut burst);
    }
    b.end_burst(&mut burst);
    assert!(burst.is_congested() && b.must_wait(&burst), "a queue over its bound pauses the publisher");
    let waiting = tokio::time::timeout(Duration::from_millis(100), b.relieved(&mut burst, &publisher.session));
    assert!(waiting.await.is_err(), "no room yet");
    // The subscriber's connection takes two messages out.
    for _ in 0..2 {
        assert!(sub.session.dequeue_if(|_| true).is_some());
    }
    sub.session.after_drain();
    tokio::time::timeout(Duration::from_secs(5), b.relieved(&mut burst, &publisher.session)).await.unwrap();
    assert!(!b.must_wait(&burst));
    assert_eq!(mailbox(&sub.session).len(), 1, "nothing was dropped");
}

#[tokio::test]
async fn a_subscriber_that_drains_nothing_is_stalled_after_the_timeout() {
    let mut config = Config::default();
    config.mqtt.max_mqueue_len = 1;
    config.mqtt.backpressure_timeout = 100;
    let b = Broker::new(config, None);
    let sub = b.connect(&"sub".into(), true, 0).await;
    let publisher = b.connect(&"pub".into(), true, 0).await;
    b.subscribe(&sub.session, "t", opts(QoS::AtMostOnce)).unwrap();
    let mut burst = Burst::default();
    b.publish(msg("t", "1", QoS::AtMostOnce, false), &mut burst);
    b.publish(msg("t", "2", QoS::AtMostOnce, false), &mut burst);
    assert!(b.must_wait(&burst));
    tokio::time::timeout(Duration::from_secs(5), b.relieved(&mut burst, &publisher.session)).await.unwrap();
    assert!(!b.must_wait(&burst));
    assert!(sub.session.accepts_more(), "stalled: its queue drops the oldest instead of pausing anyone");
    b.publish(msg("t", "3", QoS::AtMostOnce, false), &mut burst);
    assert!(!burst.is_congested());
    assert_eq!(Metrics::get(&b.metrics.dropped_queue_full), 1);
}

/// A subscriber that takes a message now and then stays behind: each message lets its publisher
/// go, but the episode lasts until it has taken an eighth of its bound, and past
/// `backpressure_timeout`, counted from when it fell behind, it drops instead.
#[tokio::test]
async fn a_subscriber_that_drains_a_little_is_stalled_after_the_timeout_too() {
    let mut config = Config::default();
    config.mqtt.max_mqueue_len = 160;
    config.mqtt.backpressure_timeout = 300;
    let b = Broker::new(config, None);
    let sub = b.connect(&"sub".into(), true, 0).await;
    let publisher = b.connect(&"pub".into(), true, 0).await;
    b.subscribe(&sub.session, "t", opts(QoS::AtMostOnce)).unwrap();
    let started = std::time::Instant::now();
    let (mut waits, mut relieved_by_drip) = (0, 0);
    loop {
        let mut burst = Burst::default();
        while !burst.is_congested() {
            b.publish(msg("t", "x", QoS::AtMostOnce, false), &mut burst);
        }
        waits += 1;
        // Two messages every 50 ms: each pair lets the publisher go, but 20 (an eighth of
        // 160) would take 500 ms, past the timeout.
        let drip = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sub.session.dequeue_if(|_| true);
            sub.session.dequeue_if(|_| true);
            sub.session.after_drain();
        };
        let wait = b.relieved(&mut burst, &publisher.session);
        tokio::pin!(wait);
        let by_stall = tokio::select! {
            () = &mut wait => true,
            () = drip => {
                wait.await;
                false
            }
        };
        if by_stall {
            break;
        }
        relieved_by_drip += 1;
        assert!(started.elapsed() < Duration::from_secs(5), "never stalled");
    }
    assert!(relieved_by_drip >= 2, "the drips let the publisher go first ({relieved_by_drip} of {waits})");
    assert!(sub.session.is_stalled());
    assert!(started.elapsed() >= Duration::from_millis(250), "stalled by the timeout, not at once");
    let mut burst = Burst::default();
    for _ in 0..10 {
        b.publish(msg("t", "x", QoS::AtMostOnce, false), &mut burst);
    }
    assert!(!b.must_wait(&burst), "stalled: the publisher no longer waits");
    while sub.session.dequeue_if(|_| true).is_some() {}
    sub.session.after_drain();
    assert!(sub.session.behind_since().is_none() && !sub.session.is_stalled(), "caught up: the episode is over");
}

/// A connection that does not let go in time loses its session to the taker, and can no
/// longer touch it; CONNECTs of other client ids are not held up meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_connection_cannot_touch_the_session_it_lost() {
    let b = broker();
    let stuck = b.connect(&"c".into(), false, 60).await;
    b.subscribe(&stuck.session, "t", opts(QoS::AtLeastOnce)).unwrap();
    // `stuck` never looks at its kick, as a task that does not run.
    let taker = tokio::spawn({
        let b = b.clone();
        async move { b.connect(&"c".into(), false, 60).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = tokio::time::timeout(Duration::from_secs(1), b.connect(&"other".into(), true, 0)).await;
    assert!(other.is_ok(), "another client id connects while the takeover waits");
    assert!(!taker.is_finished(), "the takeover waits for the old connection, within its bound");
    let taken = tokio::time::timeout(Duration::from_secs(10), taker).await.expect("within the takeover bound").unwrap();
    assert!(taken.present, "the session was taken over, not discarded");
    // The stale connection ends now: it must not end, park or detach the session it lost.
    b.disconnect(&stuck.session, stuck.generation, None);
    assert!(taken.session.is_connected(), "the taker still owns it");
    assert_eq!(publish(&b, msg("t", "x", QoS::AtLeastOnce, false)), 1, "its subscription lives on");
    b.disconnect(&taken.session, taken.generation, None);
    assert!(!taken.session.is_connected());
    assert_eq!(b.connect_locks.len(), 0, "no lock is left behind");
}

/// A client that connects and leaves in a loop leaves no timer behind: each return cancels the
/// expiry (and delayed will) its last exit armed.
#[tokio::test]
async fn reconnecting_cancels_the_timers_of_the_last_exit() {
    let b = broker();
    let mut last = None;
    for _ in 0..100 {
        let c = b.connect(&"looper".into(), false, 3600).await;
        assert_eq!(c.session.armed(), 0, "the last exit's timers are cancelled");
        let will = Will { message: (*msg("w", "gone", QoS::AtMostOnce, false)).detached(), delay: 600 };
        b.disconnect(&c.session, c.generation, Some(will));
        assert_eq!(c.session.armed(), 2, "expiry and the delayed will");
        last = Some(c.session);
    }
    assert_eq!(last.map(|s| s.armed()), Some(2));
}

/// rule → MQTT sink → broker → rule, under `buffer_full = "block"`: the rule thread waits for
/// the MQTT sink's buffer while the sink republishes into the broker, whose messages the rules
/// want. The sink's republish must be taken even when the rules' queue is full, or the two
/// wait on each other for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_republish_loop_does_not_deadlock_under_block() {
    let hop: SinkConfig = toml::from_str(
        "type = \"mqtt\"\ntopic = \"out/${n}\"\nqos = 1\nmax_buffer_bytes = 65536\nbuffer_full = \"block\"\nbatch_size = 10\nbatch_time_ms = 1\n",
    )
    .unwrap();
    let rules = [
        ("hop.sql", r#"INSERT INTO hop SELECT payload.n AS n FROM "in/#""#),
        ("land.sql", r#"INSERT INTO mem SELECT payload.n AS n FROM "out/#""#),
    ];
    let delivery = DeliveryConfig { batch_time_ms: 1, ..DeliveryConfig::default() };
    let running = MemoryPipeline::start(&rules, &BTreeMap::from([("hop".to_string(), hop)]), &delivery, 64);
    let (pipeline, mem) = (running.pipeline.clone(), running.mem.clone());
    let b = Broker::new(Config::default(), Some(pipeline.intake()));
    pipeline.connect(b.clone());
    let publisher = b.connect(&"p".into(), true, 0).await;
    const N: usize = 6000;
    let sent = async {
        for chunk in 0..N / 100 {
            let mut burst = Burst::default();
            for i in chunk * 100..(chunk + 1) * 100 {
                b.publish(msg("in/x", &format!(r#"{{"n": {i}}}"#), QoS::AtLeastOnce, false), &mut burst);
            }
            b.end_burst(&mut burst);
            while b.must_wait(&burst) {
                b.relieved(&mut burst, &publisher.session).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), sent).await.expect("the publisher is never let go: deadlock");
    let landed = async {
        while mem.len() < N {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), landed).await.expect("rows stop short of the end: deadlock");
    assert_eq!(
        pipeline.rules().rules.iter().map(|r| r.metrics.matched.load(Ordering::Relaxed)).sum::<u64>(),
        2 * N as u64
    );
    pipeline.stop().await;
}

/// A message queued for a session that is offline shares no memory with the buffer its payload
/// was read into; one for a session that keeps up shares it, without a copy.
#[tokio::test]
async fn queues_that_may_hold_a_message_keep_their_own_copy() {
    let b = broker();
    let online = b.connect(&"on".into(), true, 0).await;
    let offline = b.connect(&"off".into(), false, 3600).await;
    for s in [&online.session, &offline.session] {
        b.subscribe(s, "t", opts(QoS::AtLeastOnce)).unwrap();
    }
    b.disconnect(&offline.session, offline.generation, None);
    // A payload that is a slice of a larger read buffer (too large to be kept inline).
    let read = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut m = Message::new(ByteString::from("t"), read.slice(100..1100), QoS::AtLeastOnce, false);
    m.publisher = Some("publisher".into());
    assert_eq!(publish(&b, Arc::new(m)), 2);
    let within = |p: &Bytes| read.as_ptr_range().contains(&p.as_ptr());
    let (kept, shared) = (mailbox(&offline.session), mailbox(&online.session));
    assert!(!within(&kept[0].msg.payload), "the offline session's copy is its own");
    assert_eq!(kept[0].msg.payload, read.slice(100..1100));
    assert!(within(&shared[0].msg.payload), "the connected session shares the read buffer");
}

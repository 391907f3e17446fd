//! Real MQTT clients against the real broker: the rumqttc crate (3.1.1 and 5.0) and the
//! Mosquitto command-line tools (3.1, 3.1.1 and 5.0).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{run, Weir};

/// Polls a rumqttc 3.1.1 event loop until `n` publishes arrived; returns (topic, payload, qos).
async fn collect_v4(ev: &mut rumqttc::EventLoop, n: usize) -> Vec<(String, Vec<u8>, rumqttc::QoS)> {
    let mut got = Vec::new();
    while got.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(5), ev.poll())
            .await
            .expect("no event within 5 s")
            .expect("connection error");
        if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = event {
            got.push((p.topic.clone(), p.payload.to_vec(), p.qos));
        }
    }
    got
}

/// Drives an event loop until its SUBACK (or the given number of them) arrives.
async fn until_suback_v4(ev: &mut rumqttc::EventLoop) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), ev.poll()).await.unwrap().unwrap();
        if let rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) = event {
            return;
        }
    }
}

#[tokio::test]
async fn rumqttc_v311_pubsub_all_qos_and_persistent_session() {
    let weir = Weir::start();
    let port = weir.tcp.port();
    let mut opts = rumqttc::MqttOptions::new("rumq-sub", "127.0.0.1", port);
    opts.set_clean_session(false);
    let (sub, mut sub_ev) = rumqttc::AsyncClient::new(opts.clone(), 100);
    sub.subscribe("rq/#", rumqttc::QoS::ExactlyOnce).await.unwrap();
    until_suback_v4(&mut sub_ev).await;

    let (publ, mut pub_ev) = rumqttc::AsyncClient::new(rumqttc::MqttOptions::new("rumq-pub", "127.0.0.1", port), 100);
    let pump = tokio::spawn(async move { while pub_ev.poll().await.is_ok() {} });
    for (i, qos) in
        [rumqttc::QoS::AtMostOnce, rumqttc::QoS::AtLeastOnce, rumqttc::QoS::ExactlyOnce].into_iter().enumerate()
    {
        publ.publish(format!("rq/{i}"), qos, false, format!("m{i}")).await.unwrap();
    }
    let got = collect_v4(&mut sub_ev, 3).await;
    let topics: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(topics, ["rq/0", "rq/1", "rq/2"]);
    assert_eq!(got[2].2, rumqttc::QoS::ExactlyOnce);
    // Let the QoS 2 exchange finish (PUBREL in, PUBCOMP out) before leaving: a resumed session
    // would otherwise get the PUBREL again, which a new rumqttc instance rejects as unsolicited.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), sub_ev.poll()).await.unwrap().unwrap();
        if let rumqttc::Event::Outgoing(rumqttc::Outgoing::PubComp(_)) = event {
            break;
        }
    }

    // Offline: messages queue in the persistent session and arrive on reconnect.
    sub.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while sub_ev.poll().await.is_ok() {} }).await;
    drop(sub_ev);
    publ.publish("rq/offline", rumqttc::QoS::AtLeastOnce, false, "queued").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_sub2, mut sub_ev2) = rumqttc::AsyncClient::new(opts, 100);
    let got = collect_v4(&mut sub_ev2, 1).await;
    assert_eq!(got[0].0, "rq/offline");
    assert_eq!(got[0].1, b"queued");
    pump.abort();
}

#[tokio::test]
async fn rumqttc_v5_pubsub_with_properties() {
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};

    let weir = Weir::start();
    let port = weir.tcp.port();
    let (sub, mut sub_ev) = AsyncClient::new(MqttOptions::new("r5-sub", "127.0.0.1", port), 100);
    sub.subscribe("r5/#", QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = sub_ev.poll().await.unwrap() {
            break;
        }
    }
    let (publ, mut pub_ev) = AsyncClient::new(MqttOptions::new("r5-pub", "127.0.0.1", port), 100);
    let pump = tokio::spawn(async move { while pub_ev.poll().await.is_ok() {} });
    let props = PublishProperties {
        content_type: Some("text/plain".into()),
        user_properties: vec![("site".into(), "north".into())],
        ..Default::default()
    };
    publ.publish_with_properties("r5/a", QoS::AtLeastOnce, false, "hello v5", props).await.unwrap();
    let p = loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), sub_ev.poll()).await.unwrap().unwrap();
        if let Event::Incoming(Packet::Publish(p)) = ev {
            break p;
        }
    };
    assert_eq!(&p.topic[..], b"r5/a");
    assert_eq!(&p.payload[..], b"hello v5");
    let props = p.properties.expect("properties");
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.user_properties, vec![("site".to_string(), "north".to_string())]);
    pump.abort();
}

/// A delivery too large for the client is dropped without taking an outgoing topic alias: the next
/// message on that topic must teach the alias with its full topic (the client never saw the
/// first).
#[tokio::test]
async fn rumqttc_v5_topic_aliases_survive_a_dropped_delivery() {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};

    let weir = Weir::start();
    let port = weir.tcp.port();
    let mut opts = MqttOptions::new("alias-sub", "127.0.0.1", port);
    opts.set_topic_alias_max(Some(10));
    opts.set_max_packet_size(Some(1024));
    let (sub, mut sub_ev) = AsyncClient::new(opts, 100);
    sub.subscribe("al/#", QoS::AtMostOnce).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = sub_ev.poll().await.unwrap() {
            break;
        }
    }
    let (publ, mut pub_ev) = AsyncClient::new(MqttOptions::new("alias-pub", "127.0.0.1", port), 100);
    let pump = tokio::spawn(async move { while pub_ev.poll().await.is_ok() {} });
    publ.publish("al/t", QoS::AtMostOnce, false, vec![b'x'; 4096]).await.unwrap();
    publ.publish("al/t", QoS::AtMostOnce, false, "small 1").await.unwrap();
    publ.publish("al/t", QoS::AtMostOnce, false, "small 2").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), sub_ev.poll()).await.expect("deliveries").unwrap();
        if let Event::Incoming(Packet::Publish(p)) = ev {
            got.push(p);
        }
    }
    assert_eq!(&got[0].payload[..], b"small 1", "the large one was dropped, not delivered");
    assert_eq!(&got[0].topic[..], b"al/t", "the first message the client sees carries the full topic");
    let alias = got[0].properties.as_ref().and_then(|p| p.topic_alias).expect("an alias is set");
    assert_eq!(got[1].properties.as_ref().and_then(|p| p.topic_alias), Some(alias), "and then used");
    pump.abort();
}

fn mosquitto_sub(weir: &Weir, version: &str, topic: &str, count: u32) -> std::process::Child {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &weir.port(), "-V", version, "-t", topic, "-v", "-q", "1"])
        .args(["-C", &count.to_string(), "-W", "10", "-i", &format!("msub-{version}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub must be installed (scripts/test.sh installs it)")
}

fn mosquitto_pub(weir: &Weir, version: &str, args: &[&str]) {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &weir.port(), "-V", version])
        .args(args)
        .status()
        .expect("mosquitto_pub");
    assert!(status.success(), "mosquitto_pub {args:?} failed");
}

#[test]
fn mosquitto_clients_in_every_protocol_version() {
    let weir = Weir::start();
    for version in ["mqttv31", "mqttv311", "mqttv5"] {
        let topic = format!("mq/{version}");
        let sub = mosquitto_sub(&weir, version, "mq/#", 3);
        std::thread::sleep(Duration::from_millis(500));
        for qos in ["0", "1", "2"] {
            mosquitto_pub(&weir, version, &["-t", &topic, "-m", &format!("qos{qos}"), "-q", qos]);
        }
        let out = sub.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            vec![format!("{topic} qos0"), format!("{topic} qos1"), format!("{topic} qos2")],
            "{version}: stderr {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for level in ["proto_ver=3", "proto_ver=4", "proto_ver=5"] {
        assert!(weir.log_has(&[level]), "no client connected with {level}");
    }
}

#[test]
fn mosquitto_retained_and_will() {
    let weir = Weir::start();
    mosquitto_pub(&weir, "mqttv311", &["-t", "cli/retained", "-m", "kept", "-r", "-q", "1"]);
    let out = run(
        Command::new("mosquitto_sub").args(["-p", &weir.port(), "-t", "cli/#", "-v", "-C", "1", "-W", "5"]),
        Duration::from_secs(10),
    );
    assert_eq!(out.trim(), "cli/retained kept");

    // A client that vanishes without DISCONNECT: its will is published. mosquitto_sub with a will
    // is killed with SIGKILL so that it cannot say goodbye.
    let watcher = mosquitto_sub(&weir, "mqttv5", "lastwill/#", 1);
    std::thread::sleep(Duration::from_millis(300));
    let mut doomed = Command::new("mosquitto_sub")
        .args(["-p", &weir.port(), "-t", "nothing", "--will-topic", "lastwill/doomed", "--will-payload", "bye"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    doomed.kill().unwrap();
    let _ = doomed.wait();
    let out = watcher.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "lastwill/doomed bye");
}

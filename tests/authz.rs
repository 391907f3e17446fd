//! Authorization with an ACL file, end to end, in MQTT 5 and 3.1.1: denied publishes get
//! PUBACK 0x87 (v5) and are dropped, denied subscriptions 0x87 in SUBACK (0x80 in v3), superusers
//! pass, `deny_action = "disconnect"` closes with 0x87, the file is reloaded when it changes,
//! and every decision fires `$events/client_check_authz_complete`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::raw::{connect_packet, pid, publish, subscribe, Frame, Packet, Raw};
use common::Weir;
use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

const ACL: &str = r##"
[[rules]]
permission = "allow"
who = { username = "alice" }
action = "publish"
topics = ["dev/${clientid}/#"]

[[rules]]
permission = "deny"
action = "publish"
topics = ["dev/#", "forbidden/#"]

[[rules]]
permission = "deny"
who = "all"
action = "subscribe"
topics = [{ eq = "#" }, "secret/#"]

[[rules]]
permission = "allow"
"##;

/// A node with `acl` in an ACL file of `dir`, built-in users alice and root (a superuser), and
/// `extra` in `[authorization]`.
fn node(dir: &Path, acl: &str, extra: &str) -> Weir {
    let (file, users) = (dir.join("acl.toml"), dir.join("users.csv"));
    std::fs::write(&file, acl).unwrap();
    std::fs::write(&users, "user_id,password,is_superuser\nalice,a,false\nroot,r,true\n").unwrap();
    Weir::start_with_rules(
        &format!(
            "[[authentication]]\nmechanism = \"password_based\"\nbackend = \"built_in_database\"\nbootstrap_file = {users:?}\n\
             [authorization]\nno_match = \"deny\"\n{extra}\n[[authorization.sources]]\ntype = \"file\"\npath = {file:?}\n"
        ),
        &[(
            "denied.sql",
            r#"SELECT topic FROM "$events/client_check_authz_complete"
               WHERE result = 'deny' and authz_source = 'file' and action = 'publish' and topic = 'forbidden/x'"#,
        )],
    )
}

fn login(client_id: &str, user: &str, password: &str) -> v5::Connect {
    v5::Connect {
        username: Some(ByteString::from(user.to_string())),
        password: Some(Bytes::copy_from_slice(password.as_bytes())),
        ..connect_packet(client_id)
    }
}

async fn client(weir: &Weir, v5: bool, client_id: &str, user: &str, password: &str) -> Raw {
    let (raw, ack) = Raw::connect_as(weir.tcp, v5, login(client_id, user, password)).await;
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
    raw
}

async fn suback(raw: &mut Raw, packet_id: u16, filter: &str) -> v5::SubscribeAckReason {
    raw.send(subscribe(packet_id, filter, QoS::AtLeastOnce)).await;
    match raw.recv().await {
        Some(Frame::Packet(Packet::SubscribeAck(a))) => a.status[0],
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

async fn puback(raw: &mut Raw, topic: &str, packet_id: u16) -> v5::PublishAckReason {
    raw.publish(publish(topic, QoS::AtLeastOnce, Some(packet_id)), b"x").await;
    match raw.recv().await {
        Some(Frame::Packet(Packet::PublishAck(a))) => a.reason_code,
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

#[tokio::test]
async fn denied_publishes_and_subscriptions_get_0x87_and_are_dropped_in_v5() {
    let dir = tempfile::tempdir().unwrap();
    let weir = node(dir.path(), ACL, "");
    let mut sub = client(&weir, true, "watcher", "alice", "a").await;
    assert_eq!(suback(&mut sub, 1, "#").await, v5::SubscribeAckReason::NotAuthorized);
    assert_eq!(suback(&mut sub, 2, "secret/a").await, v5::SubscribeAckReason::NotAuthorized);
    // `$share/g/secret/#` is the filter `secret/#` to the ACL.
    assert_eq!(suback(&mut sub, 3, "$share/g/secret/#").await, v5::SubscribeAckReason::NotAuthorized);
    assert_eq!(suback(&mut sub, 4, "forbidden/#").await, v5::SubscribeAckReason::GrantedQos1);
    assert_eq!(suback(&mut sub, 5, "dev/#").await, v5::SubscribeAckReason::GrantedQos1);

    let mut alice = client(&weir, true, "a1", "alice", "a").await;
    assert_eq!(puback(&mut alice, "forbidden/x", 1).await, v5::PublishAckReason::NotAuthorized);
    assert_eq!(puback(&mut alice, "dev/a2/t", 2).await, v5::PublishAckReason::NotAuthorized);
    assert_eq!(puback(&mut alice, "dev/a1/t", 3).await, v5::PublishAckReason::Success);
    // The first delivery is the allowed one: the denied ones were dropped.
    let (p, _) = sub.recv_publish().await;
    assert_eq!(&*p.topic, "dev/a1/t");
    // A superuser passes the ACL.
    let mut root = client(&weir, true, "r1", "root", "r").await;
    assert_eq!(puback(&mut root, "forbidden/x", 1).await, v5::PublishAckReason::Success);
    assert_eq!(&*sub.recv_publish().await.0.topic, "forbidden/x");
    let deadline = Instant::now() + Duration::from_secs(5);
    while weir.rule_passed("denied").await < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(weir.rule_passed("denied").await, 1, "$events/client_check_authz_complete with the denial");
}

#[tokio::test]
async fn denials_in_mqtt_3_1_1_fail_the_subscription_and_drop_the_publish() {
    let dir = tempfile::tempdir().unwrap();
    let weir = node(dir.path(), ACL, "");
    let mut sub = client(&weir, false, "watcher", "alice", "a").await;
    // v3 has one failure code, 0x80, which the client reads as the v5 "unspecified error".
    assert_ne!(suback(&mut sub, 1, "#").await, v5::SubscribeAckReason::GrantedQos1);
    assert_eq!(suback(&mut sub, 2, "forbidden/#").await, v5::SubscribeAckReason::GrantedQos1);
    let mut alice = client(&weir, false, "a1", "alice", "a").await;
    // v3's PUBACK has no reason code: the message is acknowledged and dropped.
    puback(&mut alice, "forbidden/x", 1).await;
    alice.publish(publish("forbidden/ok", QoS::AtLeastOnce, Some(2)), b"x").await;
    assert!(sub.recv_within(Duration::from_millis(500)).await.is_err(), "nothing delivered");
    drop(alice);
    let mut root = client(&weir, false, "r1", "root", "r").await;
    puback(&mut root, "forbidden/x", 1).await;
    assert_eq!(&*sub.recv_publish().await.0.topic, "forbidden/x");
}

#[tokio::test]
async fn deny_action_disconnect_closes_with_0x87_and_a_changed_file_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let weir = node(dir.path(), ACL, "deny_action = \"disconnect\"\ncache = { ttl = 1 }");
    let mut alice = client(&weir, true, "a1", "alice", "a").await;
    // Allowed, with no subscriber: 0x10, a success.
    assert_eq!(puback(&mut alice, "ok/1", 1).await, v5::PublishAckReason::NoMatchingSubscribers);
    alice.publish(publish("forbidden/x", QoS::AtLeastOnce, Some(2)), b"x").await;
    assert_eq!(alice.recv_disconnect().await, v5::DisconnectReasonCode::NotAuthorized);

    // Deny ok/# too: within the reload check and the cache's TTL, ok/1 is refused.
    std::fs::write(
        dir.path().join("acl.toml"),
        format!("[[rules]]\npermission = \"deny\"\ntopics = [\"ok/#\"]\n{ACL}"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = client(&weir, true, "a2", "alice", "a").await;
        c.publish(publish("ok/1", QoS::AtLeastOnce, Some(1)), b"x").await;
        match c.recv().await {
            Some(Frame::Packet(Packet::Disconnect(d))) => {
                assert_eq!(d.reason_code, v5::DisconnectReasonCode::NotAuthorized);
                break;
            }
            Some(Frame::Packet(Packet::PublishAck(_))) => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "the changed ACL file was not applied");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(weir.log_has(&["ACL file changed: reloaded"]));
    // A broken edit keeps the rules in force, and says where it is broken.
    std::fs::write(dir.path().join("acl.toml"), "[[rules]]\npermission = \"perhaps\"\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !weir.log_has(&["ACL file changed but cannot be used", "line 2"]) {
        assert!(Instant::now() < deadline, "{}", weir.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut c = client(&weir, true, "a3", "alice", "a").await;
    c.publish(publish("ok/1", QoS::AtLeastOnce, Some(pid(1).get())), b"x").await;
    assert_eq!(c.recv_disconnect().await, v5::DisconnectReasonCode::NotAuthorized);
}

#[tokio::test]
async fn a_will_to_a_denied_topic_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let weir = node(dir.path(), ACL, "");
    let mut sub = client(&weir, true, "watcher", "alice", "a").await;
    assert_eq!(suback(&mut sub, 1, "forbidden/#").await, v5::SubscribeAckReason::GrantedQos1);
    let mut connect = login("w1", "alice", "a");
    connect.last_will = Some(common::raw::last_will("forbidden/will", QoS::AtLeastOnce, None));
    let (will, ack) = Raw::connect(weir.tcp, connect).await;
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
    drop(will);
    assert!(sub.recv_within(Duration::from_millis(700)).await.is_err(), "the will was not published");
    assert!(weir.log_has(&["the will's topic is not authorized"]));
}

//! What the broker keeps across a restart and a crash (`[durability]`, `hub/src/store/`):
//! retained messages, acknowledged at QoS 1 only once they are on disk, with their v5
//! properties and expiry; persistent sessions with their subscriptions, expiry and delayed
//! wills; the rules' input, written ahead of the acknowledgement; and one process per data
//! directory.

mod common;

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::raw::{connect_packet, last_will, publish, subscribe, Frame, Packet, Raw};
use common::Weir;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

/// Publishes retained messages at QoS 1 and waits for each PUBACK.
async fn retain(weir: &Weir, messages: &[(&str, &[u8], Option<u32>)]) {
    let mut p = Raw::client(weir.tcp, "retainer").await;
    for (i, (topic, body, expiry)) in messages.iter().enumerate() {
        let mut m = publish(topic, QoS::AtLeastOnce, Some(i as u16 + 1));
        m.retain = true;
        m.properties.content_type = Some("text/plain".into());
        m.properties.user_properties.push(("k".into(), "v".into()));
        m.properties.message_expiry_interval = expiry.and_then(NonZeroU32::new);
        p.publish(m, body).await;
        assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishAck(_)))), "PUBACK for {topic}");
    }
}

/// The retained messages a new subscriber to `filter` gets, sorted by topic.
async fn retained(weir: &Weir, filter: &str) -> Vec<(String, Vec<u8>, v5::PublishProperties)> {
    let mut s = Raw::client(weir.tcp, "reader").await;
    s.send(subscribe(1, filter, QoS::AtLeastOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let mut got = Vec::new();
    while let Ok(Some(Frame::Publish(p, body))) = s.recv_within(Duration::from_millis(500)).await {
        got.push((p.topic.to_string(), body.to_vec(), p.properties));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_survive_a_kill_9_once_acknowledged() {
    let weir = Weir::start();
    retain(&weir, &[("keep/a", b"one", None), ("keep/b", b"two", Some(3600)), ("keep/gone", b"x", None)]).await;
    retain(&weir, &[("keep/gone", b"", None), ("keep/short", b"brief", Some(1))]).await;
    // SIGKILL right after the last PUBACK: nothing flushed on the way out.
    let dir = weir.kill9();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let weir = Weir::restart(dir);
    let got = retained(&weir, "keep/#").await;
    let topics: Vec<&str> = got.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(topics, ["keep/a", "keep/b"], "deleted and expired ones stay gone; log:\n{}", weir.log());
    assert_eq!(got[0].1, b"one");
    assert_eq!(got[0].2.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got[0].2.user_properties.len(), 1);
    let left = got[1].2.message_expiry_interval.map(NonZeroU32::get);
    assert!(left.is_some_and(|s| s > 3500 && s <= 3600), "the expiry counts down through the restart: {left:?}");
    assert!(weir.log_has(&["retained messages restored from the store", "count=2"]), "{}", weir.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mode_keeps_what_its_interval_has_passed_over() {
    let weir = Weir::start_with("[durability]\nmode = \"async\"\ninterval = 50");
    retain(&weir, &[("lazy/a", b"one", None)]).await;
    // Acknowledged at once; on disk within the interval.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let weir = Weir::restart(weir.kill9());
    let got = retained(&weir, "lazy/#").await;
    assert_eq!(got.len(), 1, "{}", weir.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_survive_a_clean_restart() {
    let mut weir = Weir::start();
    retain(&weir, &[("clean/a", b"kept", None)]).await;
    weir.terminate();
    assert!(weir.exited_cleanly_within(Duration::from_secs(10)), "{}", weir.log());
    let weir = Weir::restart(weir.kill9());
    let got = retained(&weir, "clean/#").await;
    assert_eq!(got.len(), 1, "{}", weir.log());
    assert_eq!(got[0].1, b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_off_keeps_nothing() {
    let weir = Weir::start_with("[durability]\nmode = \"off\"\n");
    retain(&weir, &[("off/a", b"lost", None)]).await;
    let weir = Weir::restart(weir.kill9());
    assert!(retained(&weir, "off/#").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_data_dir_is_refused() {
    let weir = Weir::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--config"])
        .arg(weir.dir.path().join("weir.toml"))
        .output()
        .expect("weir runs");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("in use by another Weir process") && text.contains("data_dir"), "{text}");
}

/// A persistent session of an hour subscribed to `filter`.
async fn persistent_subscriber(weir: &Weir, client_id: &str, filter: &str, qos: QoS) -> Raw {
    let (mut sub, _) = Raw::connect(weir.tcp, persistent(client_id, 3600)).await;
    sub.send(subscribe(1, filter, qos)).await;
    assert!(matches!(sub.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    sub
}

/// A CONNECT of a persistent session: `expiry` seconds, resumed if there is one.
fn persistent(client_id: &str, expiry: u32) -> v5::Connect {
    let mut c = connect_packet(client_id);
    c.clean_start = false;
    c.session_expiry_interval_secs = expiry;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_and_its_subscriptions_survive_a_kill_9() {
    let weir = Weir::start();
    let (mut dev, ack) = Raw::connect(weir.tcp, persistent("dev", 3600)).await;
    assert!(!ack.session_present);
    dev.send(subscribe(1, "cmd/dev/#", QoS::AtLeastOnce)).await;
    assert!(matches!(dev.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    // A clean session beside it is not kept.
    let mut clean = Raw::client(weir.tcp, "clean").await;
    clean.send(subscribe(1, "cmd/clean/#", QoS::AtLeastOnce)).await;
    assert!(matches!(clean.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let weir = Weir::restart(weir.kill9());
    assert!(weir.log_has(&["persistent sessions restored from the store", "count=1"]), "{}", weir.log());

    // Published while its client is away: queued for the restored session.
    let mut p = Raw::client(weir.tcp, "commander").await;
    p.publish(publish("cmd/dev/reboot", QoS::AtLeastOnce, Some(1)), b"now").await;
    match p.recv().await {
        Some(Frame::Packet(Packet::PublishAck(a))) => assert_eq!(a.reason_code, v5::PublishAckReason::Success),
        other => panic!("{other:?}"),
    }
    let (mut dev, ack) = Raw::connect(weir.tcp, persistent("dev", 3600)).await;
    assert!(ack.session_present, "the session survived; log:\n{}", weir.log());
    let (m, body) = dev.recv_publish().await;
    assert_eq!((&*m.topic, &body[..]), ("cmd/dev/reboot", &b"now"[..]));
    let (_clean, ack) = Raw::connect(weir.tcp, persistent("clean", 3600)).await;
    assert!(!ack.session_present, "a clean session is never kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_delayed_wills_count_down_through_the_downtime() {
    let weir = Weir::start();
    // Expires 1 s after it leaves; the broker is down for longer.
    let (brief, _) = Raw::connect(weir.tcp, persistent("brief", 1)).await;
    drop(brief);
    // Its will is due 3 s after it leaves, its session lasts an hour.
    let mut willing = persistent("willing", 3600);
    willing.last_will = Some(last_will("will/willing", QoS::AtLeastOnce, Some(3)));
    let (w, _) = Raw::connect(weir.tcp, willing).await;
    drop(w);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = weir.kill9();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let weir = Weir::restart(dir);
    let mut watcher = Raw::client(weir.tcp, "watcher").await;
    watcher.send(subscribe(1, "will/#", QoS::AtLeastOnce)).await;
    assert!(matches!(watcher.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    // About 1.5 s of the will's 3 s went by before the restart.
    let (m, _) = tokio::time::timeout(Duration::from_secs(5), watcher.recv_publish()).await.expect("the will, in time");
    assert_eq!(&*m.topic, "will/willing");
    let (_b, ack) = Raw::connect(weir.tcp, persistent("brief", 1)).await;
    assert!(!ack.session_present, "expired while the broker was down");
}

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Option<SmallDisk> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_acknowledges_nothing_it_did_not_keep() {
    let mut disk = None;
    let weir = Weir::start_on("", |data| {
        disk = SmallDisk::mount(data, "4m");
        // Room the test gives back later, as an operator would.
        let _ = std::fs::write(data.join("ballast"), vec![0u8; 1536 * 1024]);
    });
    let ballast = weir.dir.path().join("data/ballast");
    // Mounting needs root, as CI has; elsewhere there is nothing to test this on.
    let Some(_disk) = disk else {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let big = vec![b'f'; 256 * 1024];
    let fill = async |client: &str, from: u16| -> (Vec<String>, v5::DisconnectReasonCode) {
        let mut p = Raw::client(weir.tcp, client).await;
        let mut acknowledged = Vec::new();
        for i in from..from + 40 {
            let mut m = publish(&format!("full/{i}"), QoS::AtLeastOnce, Some(i));
            m.retain = true;
            p.publish(m, &big).await;
            match p.recv().await {
                Some(Frame::Packet(Packet::PublishAck(_))) => acknowledged.push(format!("full/{i}")),
                Some(Frame::Packet(Packet::Disconnect(d))) => return (acknowledged, d.reason_code),
                other => panic!("{other:?}; log:\n{}", weir.log()),
            }
        }
        panic!("a 4 MiB disk took 40 messages of 256 KiB; log:\n{}", weir.log());
    };
    let (acknowledged, refused) = fill("filler", 1).await;
    assert_eq!(refused, v5::DisconnectReasonCode::UnspecifiedError, "{}", weir.log());
    assert!(!acknowledged.is_empty(), "{}", weir.log());
    assert!(weir.log_has(&["the store could not commit"]), "{}", weir.log());
    // The operator frees room (a copy-on-write store needs new pages even to delete): the store
    // takes new messages again, without a restart.
    std::fs::remove_file(ballast).expect("the ballast file");
    let (again, _) = fill("filler-2", 100).await;
    assert!(!again.is_empty(), "the store works again once there is room; log:\n{}", weir.log());
    // Every message acknowledged is there after a crash.
    let weir = Weir::restart(weir.kill9());
    let got: Vec<String> = retained(&weir, "full/#").await.into_iter().map(|(t, _, _)| t).collect();
    for topic in acknowledged.iter().chain(&again) {
        assert!(got.contains(topic), "{topic} was acknowledged but not kept: {got:?}; log:\n{}", weir.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_qos1_message_acknowledged_to_its_publisher_reaches_a_persistent_subscriber_after_a_kill_9() {
    let weir = Weir::start();
    let mut sub = persistent_subscriber(&weir, "keeper", "data/#", QoS::AtLeastOnce).await;
    // Five while it is connected and does not acknowledge them, five while it is away.
    let mut p = Raw::client(weir.tcp, "source").await;
    let send = async |p: &mut Raw, from: u16| {
        for i in from..from + 5 {
            p.publish(publish("data/x", QoS::AtLeastOnce, Some(i)), format!("m{i}").as_bytes()).await;
            assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishAck(_)))), "PUBACK {i}");
        }
    };
    send(&mut p, 1).await;
    for _ in 0..5 {
        let _unacknowledged = sub.recv_publish().await;
    }
    drop(sub);
    send(&mut p, 6).await;
    let weir = Weir::restart(weir.kill9());
    let got = resume(&weir, "keeper").await;
    let want: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want, "every acknowledged message, in order; log:\n{}", weir.log());
    // Acknowledged now: gone from the store, so a second crash brings none back.
    let weir = Weir::restart(weir.kill9());
    let (mut sub, ack) = Raw::connect(weir.tcp, persistent("keeper", 3600)).await;
    assert!(ack.session_present);
    assert!(sub.recv_within(Duration::from_millis(800)).await.is_err(), "nothing left; log:\n{}", weir.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_file_that_is_not_a_store_stops_the_broker_with_its_name() {
    let mut weir = Weir::start();
    retain(&weir, &[("c/a", b"x", None)]).await;
    weir.terminate();
    assert!(weir.exited_cleanly_within(Duration::from_secs(10)));
    let dir = weir.kill9();
    let file = dir.path().join("data/weir.redb");
    let len = std::fs::metadata(&file).expect("the store file").len();
    // Cut in half, then garbage over its header.
    let f = std::fs::OpenOptions::new().write(true).open(&file).expect("open");
    f.set_len(len / 2).expect("truncate");
    std::fs::write(&file, vec![0x5a; 4096]).expect("overwrite");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--config"])
        .arg(dir.path().join("weir.toml"))
        .output()
        .expect("weir runs");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("cannot open the store") && text.contains("weir.redb"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_publish_sent_again_after_a_kill_9_is_not_routed_twice() {
    let weir = Weir::start();
    let mut watch = persistent_subscriber(&weir, "watch", "once/#", QoS::ExactlyOnce).await;
    // PUBREC received, PUBREL not sent yet: the broker holds packet id 7 for this client.
    let (mut p, _) = Raw::connect(weir.tcp, persistent("exactly", 3600)).await;
    p.publish(publish("once/x", QoS::ExactlyOnce, Some(7)), b"one").await;
    assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishReceived(_)))), "{}", weir.log());
    let (m, _) = watch.recv_publish().await;
    assert_eq!(&*m.topic, "once/x");
    drop(watch);
    let weir = Weir::restart(weir.kill9());
    // The client sends it again, as MQTT has it do after a reconnect, then PUBREL.
    let (mut p, ack) = Raw::connect(weir.tcp, persistent("exactly", 3600)).await;
    assert!(ack.session_present);
    let mut again = publish("once/x", QoS::ExactlyOnce, Some(7));
    again.dup = true;
    p.publish(again, b"one").await;
    assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishReceived(_)))));
    p.send(Packet::PublishRelease(v5::PublishAck2 {
        packet_id: common::raw::pid(7),
        reason_code: v5::PublishAck2Reason::Success,
        properties: Vec::new(),
        reason_string: None,
    }))
    .await;
    match p.recv().await {
        Some(Frame::Packet(Packet::PublishComplete(c))) => assert_eq!(c.reason_code, v5::PublishAck2Reason::Success),
        other => panic!("{other:?}"),
    }
    // The subscriber had it (delivered, not yet completed: sent again, once); never a second copy.
    let (mut watch, _) = Raw::connect(weir.tcp, persistent("watch", 3600)).await;
    let mut copies = 0;
    while let Ok(Some(Frame::Publish(m, _))) = watch.recv_within(Duration::from_millis(800)).await {
        assert_eq!(&*m.topic, "once/x");
        copies += 1;
    }
    assert!(copies <= 1, "{copies} copies; log:\n{}", weir.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_delivery_answered_with_pubrec_gets_its_pubrel_after_a_kill_9() {
    let weir = Weir::start();
    let mut sub = persistent_subscriber(&weir, "receiver", "two/#", QoS::ExactlyOnce).await;
    let mut p = Raw::client(weir.tcp, "sender").await;
    p.publish(publish("two/x", QoS::ExactlyOnce, Some(1)), b"once").await;
    assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishReceived(_)))));
    let (m, _) = sub.recv_publish().await;
    let id = m.packet_id.expect("a QoS 2 delivery has a packet id");
    sub.send(Packet::PublishReceived(v5::PublishAck {
        packet_id: id,
        reason_code: v5::PublishAckReason::Success,
        properties: Vec::new(),
        reason_string: None,
    }))
    .await;
    match sub.recv().await {
        Some(Frame::Packet(Packet::PublishRelease(r))) => assert_eq!(r.packet_id, id),
        other => panic!("{other:?}"),
    }
    // No PUBCOMP: the broker must send that PUBREL again after a crash, never the PUBLISH.
    drop(sub);
    let weir = Weir::restart(weir.kill9());
    let (mut sub, ack) = Raw::connect(weir.tcp, persistent("receiver", 3600)).await;
    assert!(ack.session_present);
    match sub.recv().await {
        Some(Frame::Packet(Packet::PublishRelease(r))) => assert_eq!(r.packet_id, id),
        other => panic!("expected PUBREL {id}, got {other:?}; log:\n{}", weir.log()),
    }
    assert!(sub.recv_within(Duration::from_millis(500)).await.is_err(), "and nothing else");
}

/// Publishes `{"n": N}` to `load/x` at QoS 1, 50 in flight at a time, until the broker goes;
/// records each N whose PUBACK came.
async fn load_until_killed(addr: std::net::SocketAddr, acked: Arc<Mutex<BTreeSet<u32>>>) {
    let mut p = Raw::client(addr, "loader").await;
    let mut base = 0u32;
    loop {
        for k in 1..=50u16 {
            let n = base + u32::from(k);
            p.publish(publish("load/x", QoS::AtLeastOnce, Some(k)), format!(r#"{{"n":{n}}}"#).as_bytes()).await;
        }
        for _ in 0..50 {
            match p.recv_or_none(Duration::from_secs(5)).await {
                Some(Frame::Packet(Packet::PublishAck(a))) => {
                    assert_eq!(a.reason_code, v5::PublishAckReason::Success);
                    acked.lock().unwrap().insert(base + u32::from(a.packet_id.get()));
                }
                Some(other) => panic!("{other:?}"),
                None => return,
            }
        }
        base += 50;
    }
}

/// A config with a SQLite sink into `db`'s `readings`, and a rule into it from `load/#` that
/// is slower than a publisher, so that its queue holds messages when the broker is killed.
fn readings(db: &std::path::Path) -> (String, &'static str) {
    let config = format!(
        r#"
[mqtt]
max_mqueue_len = 1000000

[sinks.db]
type = "sqlite"
url = "sqlite:{db}"
table = "readings"
init_sql = ["CREATE TABLE IF NOT EXISTS readings (n INTEGER, w INTEGER)"]
"#,
        db = db.display()
    );
    let rule = r#"INSERT INTO db SELECT payload.n AS n, jq('reduce range(300) as $i (0; . + $i)', payload) AS w FROM "load/#""#;
    (config, rule)
}

/// The `n` of each row of `readings`.
fn table_rows(db: &std::path::Path) -> Vec<u32> {
    let out = common::run(Command::new("sqlite3").arg(db).arg("SELECT n FROM readings"), Duration::from_secs(10));
    out.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Resumes `client_id`'s persistent session and returns the payloads it gets, in order,
/// acknowledging each, until 1.5 s of silence.
async fn resume(weir: &Weir, client_id: &str) -> Vec<String> {
    let (mut sub, ack) = Raw::connect(weir.tcp, persistent(client_id, 3600)).await;
    assert!(ack.session_present, "{}", weir.log());
    let mut got = Vec::new();
    while let Some(Frame::Publish(m, body)) = sub.recv_or_none(Duration::from_millis(1500)).await {
        if let Some(id) = m.packet_id {
            sub.send(common::raw::puback(id)).await;
        }
        got.push(String::from_utf8_lossy(&body).into_owned());
    }
    got
}

/// The `n` of every message `client_id`'s persistent session gets on resuming.
async fn drain_persistent(weir: &Weir, client_id: &str) -> BTreeSet<u32> {
    let got = resume(weir, client_id).await;
    let n = |body: &String| serde_json::from_str::<serde_json::Value>(body).expect("the JSON published")["n"].as_u64();
    got.iter().map(|b| n(b).expect("n") as u32).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_qos1_message_acknowledged_under_load_reaches_the_persistent_subscribers_and_a_rule_s_table_after_a_kill_9(
) {
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("readings.db");
    let (config, rule) = readings(&db);
    let weir = Weir::start_with_rules(&config, &[("load.sql", rule)]);
    for id in ["away-1", "away-2"] {
        drop(persistent_subscriber(&weir, id, "load/#", QoS::AtLeastOnce).await);
    }
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let load = tokio::spawn(load_until_killed(weir.tcp, acked.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 3000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let weir = Weir::restart(weir.kill9());
    load.await.expect("the publisher ends with the broker");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 3000, "{} acknowledged before the kill", acked.len());
    assert!(
        weir.log_has(&["messages the rules had not run came back from the store"]),
        "the kill came under load, so the rules had input left; log:\n{}",
        weir.log()
    );
    for id in ["away-1", "away-2"] {
        let got = drain_persistent(&weir, id).await;
        let missing: Vec<_> = acked.difference(&got).take(10).collect();
        assert!(
            missing.is_empty(),
            "{id} lacks {} acknowledged messages, first {missing:?}",
            acked.difference(&got).count()
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows: BTreeSet<u32> = table_rows(&db).into_iter().collect();
        let missing = acked.difference(&rows).count();
        if missing == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the table lacks {missing} acknowledged messages ({} rows, {} acknowledged); log:\n{}",
            rows.len(),
            acked.len(),
            weir.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_runs_the_rules_input_first_so_a_restart_writes_no_row_twice() {
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("readings.db");
    let (config, rule) = readings(&db);
    let mut weir = Weir::start_with_rules(&config, &[("load.sql", rule)]);
    let mut p = Raw::client(weir.tcp, "loader").await;
    for n in 1..=200u16 {
        p.publish(publish("load/x", QoS::AtLeastOnce, Some(n)), format!(r#"{{"n":{n}}}"#).as_bytes()).await;
        assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishAck(_)))), "PUBACK {n}");
    }
    weir.terminate();
    assert!(weir.exited_cleanly_within(Duration::from_secs(15)), "{}", weir.log());
    let weir = Weir::restart(weir.kill9());
    // Past the rules' settling time: anything run again would be in the table by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut rows = table_rows(&db);
    rows.sort_unstable();
    assert_eq!(rows, (1..=200).collect::<Vec<u32>>(), "each row once; log:\n{}", weir.log());
    assert!(!weir.log().contains("messages the rules had not run came back"), "{}", weir.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_deliveries_survive_a_kill_9_and_move_to_another_member_when_theirs_ends() {
    let weir = Weir::start();
    for member in ["worker-a", "worker-b"] {
        drop(persistent_subscriber(&weir, member, "$share/g/jobs/#", QoS::AtLeastOnce).await);
    }
    let mut p = Raw::client(weir.tcp, "dispatcher").await;
    for i in 1..=10u16 {
        p.publish(publish("jobs/x", QoS::AtLeastOnce, Some(i)), format!("j{i}").as_bytes()).await;
        assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishAck(_)))), "PUBACK {i}");
    }
    let weir = Weir::restart(weir.kill9());
    // worker-a starts clean: its session ends, and the jobs it held go to worker-b.
    let (_a, ack) = Raw::connect(weir.tcp, connect_packet("worker-a")).await;
    assert!(!ack.session_present);
    // One more job: its PUBACK waits for a commit, and the store commits in order, so the
    // moves before it are on disk too.
    p = Raw::client(weir.tcp, "dispatcher").await;
    p.publish(publish("jobs/x", QoS::AtLeastOnce, Some(11)), b"j11").await;
    assert!(matches!(p.recv().await, Some(Frame::Packet(Packet::PublishAck(_)))), "PUBACK 11");
    let weir = Weir::restart(weir.kill9());
    let got: BTreeSet<String> = resume(&weir, "worker-b").await.into_iter().collect();
    let want: BTreeSet<String> = (1..=11).map(|i| format!("j{i}")).collect();
    assert_eq!(got, want, "every job, once each; log:\n{}", weir.log());
}

//! Rules of `rules_dir` run on the broker's traffic; their metrics, the rule tester and the
//! Prometheus text are served by the management API.

mod common;

use std::time::Duration;

use common::http::{get, post};
use common::raw::{publish, Raw};
use common::Weir;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

const HOT: &str = r#"-- readings above 30 degrees
SELECT payload.temp AS t, clientid FROM "sensors/#" WHERE payload.temp > 30"#;

/// Polls the rule's metrics until `matched` reaches `want` (rules run asynchronously).
async fn metrics_after(weir: &Weir, id: &str, want: u64) -> serde_json::Value {
    let api = weir.api.expect("API enabled");
    for _ in 0..100 {
        let (status, body) = get(api, &format!("/api/v5/rules/{id}/metrics")).await;
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v["metrics"]["matched"].as_u64() == Some(want) {
                return v;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("rule {id} never matched {want} messages; log:\n{}", weir.log());
}

#[tokio::test]
async fn published_messages_run_through_rules_and_count() {
    let weir = Weir::start_with_rules("", &[("hot.sql", HOT)]);
    let api = weir.api.unwrap();
    let (status, body) = get(api, "/api/v5/rules").await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["data"][0]["id"], "hot");
    assert_eq!(list["data"][0]["from"], serde_json::json!(["sensors/#"]));

    let mut p = Raw::client(weir.tcp, "thermo-1").await;
    for (topic, payload) in [
        ("sensors/a", r#"{"temp": 31}"#),
        ("sensors/b", r#"{"temp": 20}"#),
        ("sensors/c", "not json"),
        ("other/x", r#"{"temp": 99}"#),
    ] {
        p.publish(publish(topic, QoS::AtMostOnce, None), payload.as_bytes()).await;
    }
    let m = metrics_after(&weir, "hot", 3).await;
    assert_eq!(m["metrics"]["passed"], 1);
    assert_eq!(m["metrics"]["failed"], 2);
    assert_eq!(m["metrics"]["failed.no_result"], 1);
    assert_eq!(m["metrics"]["failed.exception"], 1);

    let (status, text) = get(api, "/api/v5/prometheus/stats").await;
    assert_eq!(status, 200);
    assert!(text.contains("emqx_rule_matched{id=\"hot\"} 3"), "{text}");
    assert!(text.contains("emqx_rule_passed{id=\"hot\"} 1"), "{text}");
    assert!(text.contains("# TYPE emqx_messages_received counter"), "{text}");

    let (status, body) = get(api, "/api/v5/rules/nope/metrics").await;
    assert_eq!(status, 404);
    assert!(body.contains("NOT_FOUND"), "{body}");
}

#[tokio::test]
async fn rule_test_api_answers_like_emqx() {
    let weir = Weir::start();
    let api = weir.api.unwrap();
    let (status, body) = post(
        api,
        "/api/v5/rule_test",
        r#"{"sql": "SELECT payload.msg as msg, clientid, username, payload, topic, qos FROM \"t/#\"",
            "context": {"clientid":"c_emqx","event_type":"message_publish","payload":"{\"msg\": \"hello\"}","qos":1,"topic":"t/a","username":"u_emqx"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"username":"u_emqx","topic":"t/a","qos":1,"payload":"{\"msg\": \"hello\"}","msg":"hello","clientid":"c_emqx"})
    );
    let (status, body) = post(api, "/api/v5/rule_test", r#"{"sql": "SELECT * FROM \"x/#\"", "context": {}}"#).await;
    assert_eq!((status, body.as_str()), (412, r#"{"code":"NOT_MATCH","message":"SQL Not Match"}"#));
    let (status, body) = post(api, "/api/v5/rule_test", r#"{"sql": "SELECT FROM", "context": {}}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("BAD_REQUEST") && body.contains("syntax error at line 1"), "{body}");
    // EMQX's API suite (t_crud_rule_api): the message is JSON of its own.
    let (status, body) = post(
        api,
        "/api/v5/rule_test",
        r#"{"sql": "SELECT\n  payload.msg\nFROM\n  \"t/#\"", "context": {"payload": "{\"msg\": \"hel", "topic": "t/a"}}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let got: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["code"], "BAD_REQUEST", "{body}");
    let message: serde_json::Value = serde_json::from_str(got["message"].as_str().unwrap_or_default()).unwrap();
    assert_eq!(message, serde_json::json!({"select_and_transform_error": "decode_json_failed"}));
    assert_eq!(got["detail"], "the payload is not valid JSON (in SELECT)", "{body}");
    let (status, body) = post(
        api,
        "/api/v5/rule_test",
        r#"{"sql": "FOREACH payload.l as x FROM \"t/#\"", "context": {"payload": "{\"l\": [1]}"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with('['), "FOREACH answers an array: {body}");
}

#[tokio::test]
async fn rule_files_reload_and_broken_files_keep_their_rules() {
    let weir = Weir::start_with_rules("", &[("hot.sql", HOT)]);
    let api = weir.api.unwrap();
    let dir = weir.dir.path().join("sql");

    // A client publishes to a topic no rule wants yet; the broker remembers that answer (the
    // PUBACK says the broker has handled it, before the new file below exists).
    let mut early = Raw::client(weir.tcp, "early").await;
    early.publish(publish("other/1", QoS::AtLeastOnce, Some(1)), b"{}").await;
    early.recv().await.expect("PUBACK");

    // A new file is picked up without a restart.
    std::fs::write(dir.join("all.sql"), r#"SELECT * FROM "sensors/#", "other/#""#).unwrap();
    let mut found = false;
    for _ in 0..60 {
        let (_, body) = get(api, "/api/v5/rules").await;
        if body.contains("\"all\"") {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "new rule file not loaded; log:\n{}", weir.log());
    // The same connection's next message on that topic reaches the new rule.
    early.publish(publish("other/1", QoS::AtMostOnce, None), b"{}").await;
    metrics_after(&weir, "all", 1).await;

    // Breaking hot.sql: the error names file, line and column; its rule keeps running.
    std::fs::write(dir.join("hot.sql"), "SELECT payload.temp AS t,\nFROM \"sensors/#\"").unwrap();
    assert!(weir.log_has(&["hot.sql", "line 2, column 1"]), "broken file not reported; log:\n{}", weir.log());
    let mut p = Raw::client(weir.tcp, "thermo-2").await;
    p.publish(publish("sensors/z", QoS::AtMostOnce, None), br#"{"temp": 40}"#).await;
    let m = metrics_after(&weir, "hot", 1).await;
    assert_eq!(m["metrics"]["passed"], 1);
}

#[tokio::test]
async fn rules_with_an_undefined_sink_are_refused_with_a_position() {
    let weir = Weir::start_with_rules("", &[("out.sql", "\n  INSERT INTO nowhere SELECT * FROM \"t/#\"")]);
    let (_, body) = get(weir.api.unwrap(), "/api/v5/rules").await;
    assert!(!body.contains("\"out\""), "{body}");
    assert!(weir.log_has(&["unknown sink `nowhere`", "line 2, column 3"]), "{}", weir.log());
}

/// Each event rule passes only if the event's columns hold what the client did, so `passed`
/// counts events that arrived with the right columns.
#[tokio::test]
async fn broker_events_reach_rules_with_their_columns() {
    let rules = [
        (
            "connected.sql",
            r#"SELECT clientid FROM "$events/client_connected"
               WHERE clientid = 'ev-sub' and username = 'alice' and proto_ver = 5 and proto_name = 'MQTT'
                 and event = 'client.connected' and keepalive = 30 and is_int(connected_at)"#,
        ),
        ("connack.sql", r#"SELECT * FROM "$events/client_connack" WHERE reason_code = 'success'"#),
        (
            "authn.sql",
            r#"SELECT * FROM "$events/client_check_authn_complete"
               WHERE reason_code = 'success' and is_anonymous = true and is_superuser = false and is_str(peername)"#,
        ),
        (
            "subscribed.sql",
            r#"SELECT * FROM "$events/session_subscribed" WHERE topic = 'ev/#' and qos = 1 and peerhost = '127.0.0.1'"#,
        ),
        (
            "authz.sql",
            r#"SELECT * FROM "$events/client_check_authz_complete" WHERE result = 'allow' and action in ('publish', 'subscribe')"#,
        ),
        (
            "delivered.sql",
            r#"SELECT * FROM "$events/message_delivered"
               WHERE from_clientid = 'ev-pub' and clientid = 'ev-sub' and topic = 'ev/1' and payload.n = 1"#,
        ),
        ("acked.sql", r#"SELECT * FROM "$events/message_acked" WHERE clientid = 'ev-sub' and topic = 'ev/1'"#),
        (
            "dropped.sql",
            r#"SELECT * FROM "$events/message_dropped" WHERE reason = 'no_subscribers' and topic = 'nobody/here'"#,
        ),
        ("unsubscribed.sql", r#"SELECT * FROM "$events/session_unsubscribed" WHERE topic = 'ev/#'"#),
        (
            "disconnected.sql",
            r#"SELECT * FROM "$events/client_disconnected" WHERE reason = 'normal' and clientid = 'ev-pub'"#,
        ),
    ];
    let weir = Weir::start_with_rules("", &rules);

    let mut connect = common::raw::connect_packet("ev-sub");
    connect.username = Some("alice".into());
    connect.keep_alive = 30;
    let (mut sub, _) = Raw::connect(weir.tcp, connect).await;
    sub.send(common::raw::subscribe(1, "ev/#", QoS::AtLeastOnce)).await;
    sub.recv().await.expect("SUBACK");

    let mut publisher = Raw::client(weir.tcp, "ev-pub").await;
    publisher.publish(publish("ev/1", QoS::AtLeastOnce, Some(1)), br#"{"n": 1}"#).await;
    publisher.publish(publish("nobody/here", QoS::AtMostOnce, None), b"x").await;
    let (p, _) = sub.recv_publish().await;
    sub.send(common::raw::puback(p.packet_id.expect("QoS 1 delivery"))).await;
    sub.send(v5::Packet::Unsubscribe(v5::Unsubscribe {
        packet_id: common::raw::pid(2),
        user_properties: Vec::new(),
        topic_filters: vec!["ev/#".into()],
    }))
    .await;
    sub.recv().await.expect("UNSUBACK");
    publisher.send(v5::Packet::Disconnect(v5::Disconnect::default())).await;

    for (id, matched, passed) in [
        ("connected", 2, 1),
        ("connack", 2, 2),
        ("authn", 2, 2),
        ("subscribed", 1, 1),
        ("authz", 3, 3),
        ("delivered", 1, 1),
        ("acked", 1, 1),
        ("dropped", 1, 1),
        ("unsubscribed", 1, 1),
        ("disconnected", 1, 1),
    ] {
        let m = metrics_after(&weir, id, matched).await;
        assert_eq!(m["metrics"]["passed"], passed, "rule {id}: {m}");
    }
}

/// A JOIN with a CSV reference table, and a tumbling window whose rows are counted when it
/// closes, on messages published through the broker.
#[tokio::test]
async fn joins_and_windows_run_on_published_messages() {
    let csv_dir = tempfile::tempdir().unwrap();
    let csv = csv_dir.path().join("devices.csv");
    std::fs::write(&csv, "id,site,max_temp\nj-1,north,30\nj-2,south,40\n").unwrap();
    let config = format!("[tables.devices]\ntype = \"csv\"\npath = {csv:?}\nrefresh = 0\n");
    let rules = [
        (
            "over_limit.sql",
            r#"SELECT clientid, d.site AS site FROM "j/#" JOIN devices AS d ON d.id = clientid
               WHERE payload.temp > d.max_temp and d.site = 'north'"#,
        ),
        (
            "per_second.sql",
            r#"SELECT clientid, count(*) AS n, avg(payload.temp) AS avg_temp FROM "j/#"
               GROUP BY clientid, TUMBLINGWINDOW(ms, 500) HAVING n >= 2"#,
        ),
    ];
    let weir = Weir::start_with_rules(&config, &rules);
    assert!(weir.log_has(&["reference table loaded", "devices", "rows=2"]), "{}", weir.log());

    let mut one = Raw::client(weir.tcp, "j-1").await;
    let mut two = Raw::client(weir.tcp, "j-2").await;
    let mut stranger = Raw::client(weir.tcp, "j-9").await;
    for t in [31, 35, 20] {
        one.publish(publish("j/t", QoS::AtMostOnce, None), format!(r#"{{"temp": {t}}}"#).as_bytes()).await;
    }
    two.publish(publish("j/t", QoS::AtMostOnce, None), br#"{"temp": 50}"#).await;
    stranger.publish(publish("j/t", QoS::AtMostOnce, None), br#"{"temp": 99}"#).await;

    let m = metrics_after(&weir, "over_limit", 5).await;
    assert_eq!(m["metrics"]["passed"], 2, "j-1 above 30 twice; j-2 is south; j-9 has no row: {m}");
    assert_eq!(m["metrics"]["failed.no_result"], 3, "{m}");

    // The three messages of j-1 land in one or two 500 ms windows; the window that holds at
    // least two of them passes HAVING, j-2 and j-9 never do.
    let api = weir.api.unwrap();
    let mut passed = 0;
    for _ in 0..60 {
        let (_, body) = get(api, "/api/v5/rules/per_second/metrics").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        passed = v["metrics"]["passed"].as_u64().unwrap_or(0);
        if passed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(passed, 1, "one closed window with n >= 2; log:\n{}", weir.log());
}

#[tokio::test]
async fn rules_joining_an_unconfigured_table_are_refused_with_a_position() {
    let rules = [("join.sql", "SELECT 1 FROM \"t\"\n  JOIN nowhere n ON n.id = clientid")];
    let weir = Weir::start_with_rules("", &rules);
    assert!(weir.log_has(&["join.sql", "unknown table `nowhere`: define [tables.nowhere]"]), "{}", weir.log());
}

/// Reference tables from a PostgreSQL query and from an SQLite query, joined by one rule.
#[tokio::test]
async fn postgres_and_sqlite_tables_join_like_csv_ones() {
    let pg = common::postgres_url();
    common::psql(
        &pg,
        "DROP TABLE IF EXISTS join_sites; CREATE TABLE join_sites (device text, site text, max_temp float8);
         INSERT INTO join_sites VALUES ('pq-1', 'north', 30), ('pq-2', 'south', 40);",
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("limits.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE owners (device TEXT, owner TEXT); INSERT INTO owners VALUES ('pq-1', 'ana');")
        .output()
        .expect("sqlite3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = format!(
        "[tables.sites]\ntype = \"postgres\"\nurl = {pg:?}\nquery = \"SELECT device, site, max_temp FROM join_sites\"\n\n\
         [tables.owners]\ntype = \"sqlite\"\nurl = \"sqlite://{}\"\nquery = \"SELECT device, owner FROM owners\"\n",
        db.display()
    );
    let rule = r#"SELECT clientid, s.site AS site, o.owner AS owner FROM "pq/#"
                  JOIN sites s ON s.device = clientid LEFT JOIN owners o ON o.device = clientid
                  WHERE payload.temp > s.max_temp and (o.owner = 'ana' or is_null(o.owner))"#;
    let weir = Weir::start_with_rules(&config, &[("owned.sql", rule)]);
    assert!(weir.log_has(&["reference table loaded", "table=sites", "rows=2"]), "{}", weir.log());
    assert!(weir.log_has(&["reference table loaded", "table=owners", "rows=1"]), "{}", weir.log());
    let mut one = Raw::client(weir.tcp, "pq-1").await;
    let mut two = Raw::client(weir.tcp, "pq-2").await;
    one.publish(publish("pq/t", QoS::AtMostOnce, None), br#"{"temp": 31}"#).await;
    two.publish(publish("pq/t", QoS::AtMostOnce, None), br#"{"temp": 41}"#).await;
    two.publish(publish("pq/t", QoS::AtMostOnce, None), br#"{"temp": 39}"#).await;
    let m = metrics_after(&weir, "owned", 3).await;
    assert_eq!(m["metrics"]["passed"], 2, "pq-1 (owner ana) and pq-2 (no owner) above their limits: {m}");
}

//! Every runnable example works as written.

mod common;

use std::path::Path;

use common::raw::{publish, subscribe, Frame, Packet, Raw};
use common::Weir;
use ntex_mqtt::QoS;

#[tokio::test]
async fn example_config_starts_a_working_broker() {
    let dir = tempfile::tempdir().unwrap();
    // The example as written, with ports and directories moved out of the way of other tests.
    let env = [
        ("WEIR_LISTENERS__TCP__BIND", "127.0.0.1:0".to_string()),
        ("WEIR_LISTENERS__WS__BIND", "127.0.0.1:0".to_string()),
        ("WEIR_API__ENABLE", "false".to_string()),
        ("WEIR_DATA_DIR", dir.path().join("data").display().to_string()),
    ];
    let weir = Weir::spawn(dir, Path::new("examples/weir.toml"), &env, false);
    let mut s = Raw::client(weir.tcp, "ex-sub").await;
    s.send(subscribe(1, "ex/#", QoS::AtMostOnce)).await;
    assert!(matches!(s.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));
    let mut p = Raw::client(weir.tcp, "ex-pub").await;
    p.publish(publish("ex/1", QoS::AtMostOnce, None), b"works").await;
    assert_eq!(&s.recv_publish().await.1[..], b"works");
}

#[test]
fn bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[listeners.tcp]\nbindd = \"127.0.0.1:0\"\n").unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_weir")).args(["serve", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bindd") && err.contains("bad.toml"), "{err}");
}

#[test]
fn help_teaches() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "rule", "weir-bench"] {
        assert!(text.contains(word), "--help does not mention {word}:\n{text}");
    }
}

#[test]
fn rule_check_reports_rules_and_errors_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("telemetry.sql"),
        "-- hot sensors\nINSERT INTO warehouse SELECT payload.temp AS t, clientid FROM \"sensors/#\" WHERE payload.temp > 30",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.sql"), "SELECT a FROM \"t\";\nSELECT upper(a FROM \"t\"").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["rule", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("telemetry.sql: rule telemetry -> warehouse"), "{text}");
    assert!(text.contains("broken.sql:2:16: expected `)`"), "{text}");
    assert!(text.contains("checked 2 files: 1 rule, 1 error"), "{text}");

    std::fs::remove_file(dir.path().join("broken.sql")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["rule", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn rule_test_answers_like_emqx_rule_tester() {
    let run = |sql: &str, context: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["rule", "test", "--sql", sql, "--context", context])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let (code, out) = run(
        r#"SELECT payload.msg as msg, clientid FROM "t/#""#,
        r#"{"payload": "{\"msg\": \"hi\"}", "clientid": "dev1"}"#,
    );
    assert_eq!((code, out.as_str()), (Some(0), r#"{"clientid":"dev1","msg":"hi"}"#));
    let (code, out) = run(r#"FOREACH payload.l as x DO x * 2 AS d FROM "t/#""#, r#"{"payload": "{\"l\": [1, 2]}"}"#);
    assert_eq!((code, out.as_str()), (Some(0), r#"[{"d":2},{"d":4}]"#));
    let (code, out) = run(r#"SELECT * FROM "other/#""#, "{}");
    assert_eq!((code, out.as_str()), (Some(1), r#"{"code":"NOT_MATCH","message":"SQL Not Match"}"#));
    let (code, out) = run("SELECT FROM", "{}");
    assert_eq!(code, Some(2));
    assert!(out.contains(r#""code":"BAD_REQUEST""#) && out.contains("syntax error at line 1"), "{out}");
    let (code, out) = run(r#"SELECT div(payload.n, 0) AS q FROM "t/#""#, r#"{"payload": "{\"n\": 1}"}"#);
    assert_eq!(
        (code, out.as_str()),
        (
            Some(2),
            r#"{"code":"BAD_REQUEST","detail":"division by zero (in SELECT)","message":"{\"select_and_transform_error\":\"badarith\"}"}"#
        )
    );
}

#[test]
fn shipped_rules_check_clean() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir")).args(["rule", "check", "sql"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rule hot_readings"), "{text}");
}

#[tokio::test]
async fn example_users_and_acl_work_as_written() {
    let extra = "[[authentication]]\nmechanism = \"password_based\"\nbackend = \"built_in_database\"\n\
                 bootstrap_file = \"examples/users.csv\"\n\
                 [[authorization.sources]]\ntype = \"file\"\npath = \"examples/acl.toml\"\n";
    let weir = Weir::start_with(extra);
    let mut connect = common::raw::connect_packet("device-1");
    connect.username = Some("device-1".into());
    connect.password = Some(ntex_bytes::Bytes::from_static(b"change-me-too"));
    let (mut device, ack) = Raw::connect(weir.tcp, connect).await;
    assert_eq!(ack.reason_code, ntex_mqtt::v5::codec::ConnectAckReason::Success);
    // From 127.0.0.1, the second rule allows everything: the example's loopback exception.
    device.publish(publish("devices/device-2/t", QoS::AtLeastOnce, Some(1)), b"x").await;
    match device.recv().await {
        Some(Frame::Packet(Packet::PublishAck(a))) => assert!(u8::from(a.reason_code) < 0x80, "{a:?}"),
        other => panic!("{other:?}"),
    }
}

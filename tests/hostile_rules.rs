//! Rules against hostile input, through the real broker: every catalogue function called through
//! `POST /api/v5/rule_test` with values chosen to break it, a payload that used to stop every
//! rule, and jq programs that never end or ask for a petabyte, while MQTT clients go on being
//! served.

mod common;

use std::time::Duration;

use common::http::{get, post};
use common::raw::{publish, Raw};
use common::{publish_qos1, Subscriber, Weir};
use ntex_mqtt::QoS;
use serde_json::json;

/// Arguments chosen to break functions: non-ASCII text, integers at their edges, floats that are
/// not numbers, deep nesting, a long list, a catastrophic regular expression and its victim.
const HOSTILE: &[&str] = &[
    "'éa'",
    "'你好'",
    "''",
    "payload.s",
    "9223372036854775807",
    "(-9223372036854775807 - 1)",
    "-1",
    "1e308",
    "float('nan')",
    "float('-inf')",
    "payload.deep",
    "payload.list",
    "'(a+)+$'",
    "payload.victim",
    "payload",
];

/// The context's payload: the values `payload.*` reads above.
fn payload() -> String {
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let list: Vec<i64> = (0..10_000).collect();
    let victim = format!("{}b", "a".repeat(5_000));
    format!(r#"{{"s": "é{}", "deep": {deep}, "list": {}, "victim": "{victim}"}}"#, "x".repeat(1000), json!(list))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_takes_hostile_values_through_rule_test() {
    let weir = Weir::start();
    let api = weir.api.unwrap();
    let context = json!({ "payload": payload(), "topic": "t/1" });
    let mut calls = 0;
    for f in weir_rules::functions::all() {
        let most = f.max_args.min(f.min_args + 1).min(4);
        for n in f.min_args..=most {
            for offset in 0..HOSTILE.len() {
                let args: Vec<&str> = (0..n).map(|i| HOSTILE[(offset + i) % HOSTILE.len()]).collect();
                let sql = format!("SELECT {}({}) AS r FROM \"t/#\"", f.name, args.join(", "));
                let body = json!({ "sql": sql, "context": context }).to_string();
                let answered =
                    tokio::time::timeout(Duration::from_secs(20), post(api, "/api/v5/rule_test", &body)).await;
                let (status, text) = answered.unwrap_or_else(|_| panic!("{sql}: no answer within 20 s"));
                assert!(matches!(status, 200 | 400 | 412), "{sql}: {status} {text}\nlog:\n{}", weir.log());
                calls += 1;
                if n == 0 {
                    break;
                }
            }
        }
    }
    assert!(calls > 1000, "{calls} calls");
    let (status, _) = get(api, "/api/v5/rules").await;
    assert_eq!(status, 200, "the API still answers");
    publish_qos1(weir.tcp, "after", 10, |i| ("t/after".into(), i.to_string())).await;
    assert!(!weir.log().contains("panicked"), "no panic, caught or not:\n{}", weir.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_used_to_panic_fails_its_message_alone() {
    let rule = r#"SELECT hexstr2bin(payload) AS b, pad(payload, 5) AS p FROM "hex/#""#;
    let weir = Weir::start_with_rules("", &[("hex.sql", rule)]);
    let api = weir.api.unwrap();
    let mut p = Raw::client(weir.tcp, "hex-1").await;
    p.publish(publish("hex/1", QoS::AtMostOnce, None), "éa".as_bytes()).await;
    p.publish(publish("hex/1", QoS::AtMostOnce, None), "99999999999999999999".as_bytes()).await;
    p.publish(publish("hex/1", QoS::AtMostOnce, None), b"41").await;
    let mut metrics = json!(null);
    for _ in 0..100 {
        let (_, body) = get(api, "/api/v5/rules/hex/metrics").await;
        metrics = serde_json::from_str(&body).unwrap();
        if metrics["metrics"]["matched"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metrics["metrics"]["matched"], 3, "{metrics}\n{}", weir.log());
    assert_eq!(metrics["metrics"]["failed.exception"], 1, "only `éa` fails: {metrics}");
    assert_eq!(metrics["metrics"]["passed"], 2, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_ending_jq_program_gets_an_error_while_clients_are_served() {
    let weir = Weir::start();
    let api = weir.api.unwrap();
    let body = json!({
        "sql": "SELECT jq('def f: f; f', payload) AS r FROM \"t/#\"",
        "context": { "payload": "{}" }
    })
    .to_string();
    // As many as there are workers: before, each held one for ever, and the broker stopped.
    let tests: Vec<_> = (0..2)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move { post(api, "/api/v5/rule_test", &body).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sub = Subscriber::start(weir.tcp, "served-sub", "served/#").await;
    publish_qos1(weir.tcp, "served-pub", 100, |i| ("served/x".into(), i.to_string())).await;
    assert_eq!(sub.collect(100, Duration::from_secs(10)).await.len(), 100);
    assert_eq!(get(api, "/api/v5/rules").await.0, 200, "the API answers meanwhile");
    assert!(tests.iter().all(|t| !t.is_finished()), "the clients were served while jq ran");
    for t in tests {
        let (status, text) = tokio::time::timeout(Duration::from_secs(30), t).await.expect("an answer").unwrap();
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("budget"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jq_program_that_asks_for_too_much_memory_ends_its_worker_not_the_broker() {
    let weir = Weir::start();
    let api = weir.api.unwrap();
    let rule_test = |program: &str| {
        let sql = format!("SELECT jq('{program}', payload) AS r FROM \"t/#\"");
        let body = json!({ "sql": sql, "context": { "payload": r#"{"a": 1}"# } }).to_string();
        async move { post(api, "/api/v5/rule_test", &body).await }
    };
    // A petabyte at once, and a string that doubles until no allocator can hold it.
    for program in [r#""x" * 1000000000000000"#, r#"reduce range(64) as $i ("x"; . + .)"#] {
        let (status, text) = rule_test(program).await;
        assert_eq!(status, 400, "{program}: {text}\nlog:\n{}", weir.log());
        assert!(text.contains("memory"), "{program}: {text}");
        let (status, text) = rule_test(".a").await;
        assert_eq!((status, text.as_str()), (200, r#"{"r":[1]}"#), "a new worker runs the next program");
    }
    assert!(weir.log().contains("ended its worker process"), "the log names it:\n{}", weir.log());
    let mut sub = Subscriber::start(weir.tcp, "after-sub", "after/#").await;
    publish_qos1(weir.tcp, "after-pub", 10, |i| ("after/x".into(), i.to_string())).await;
    assert_eq!(sub.collect(10, Duration::from_secs(10)).await.len(), 10);
}

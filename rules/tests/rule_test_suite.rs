//! EMQX's rule tester suite, `apps/emqx_rule_engine/test/emqx_rule_engine_api_rule_test_SUITE.erl`
//! (EMQX 5.x), case by case: each event's context through the tester, and the output checked as
//! that suite checks it: the keys it names hold the context's values, the keys it expects to
//! exist are there and not `undefined`, and nothing else is in the output.

use weir_rules::tester::{test_rule, TestOutcome};
use weir_rules::value::Value;

/// Runs `sql` on `context`; checks `equal` keys against the context, `exist` keys for presence.
fn check(test: &str, sql: &str, context: &str, equal: &[&str], exist: &[&str]) {
    let ctx = Value::from_json(context.as_bytes()).expect("context JSON");
    let Value::Map(given) = &ctx else { panic!("{test}: context is an object") };
    let TestOutcome::Output(Value::Map(out)) = test_rule(sql, &ctx) else {
        panic!("{test}: no output for {sql}: {:?}", test_rule(sql, &ctx))
    };
    for key in equal {
        if let Some(want) = given.get(*key) {
            assert_eq!(out.get(*key), Some(want), "{test}: {key} in {out:?}");
        }
    }
    for key in exist {
        let v = out.get(*key);
        assert!(
            v.is_some_and(|v| *v != Value::Undefined && *v != Value::Str("undefined".into())),
            "{test}: {key} is missing or undefined in {out:?}"
        );
    }
    assert_eq!(out.len(), equal.len() + exist.len(), "{test}: exactly the selected keys: {out:?}");
}

#[test]
fn t_ctx_pub() {
    let sql = r#"SELECT payload.msg as msg, clientid, username, payload, topic, qos FROM "t/#""#;
    let context = r#"{"clientid": "c_emqx", "event_type": "message_publish", "payload": "{\"msg\": \"hello\"}", "qos": 1, "topic": "t/a", "username": "u_emqx"}"#;
    check("t_ctx_pub", sql, context, &["clientid", "username", "payload", "topic", "qos"], &["msg"]);
    let TestOutcome::Output(out) = test_rule(sql, &Value::from_json(context.as_bytes()).unwrap()) else { panic!() };
    assert!(out.to_json().unwrap().contains(r#""msg":"hello""#), "{out:?}");
}

#[test]
fn t_ctx_sub_and_unsub() {
    for (test, event) in [("t_ctx_sub", "session_subscribed"), ("t_ctx_unsub", "session_unsubscribed")] {
        let sql = format!(r#"SELECT clientid, username, topic, qos FROM "$events/{event}""#);
        let context = format!(
            r#"{{"clientid": "c_emqx", "event_type": "{event}", "qos": 1, "topic": "t/a", "username": "u_emqx"}}"#
        );
        check(test, &sql, &context, &["clientid", "username", "topic", "qos"], &[]);
    }
}

#[test]
fn t_ctx_delivered_and_acked() {
    for (test, event) in [("t_ctx_delivered", "message_delivered"), ("t_ctx_acked", "message_acked")] {
        let sql = format!(r#"SELECT from_clientid, from_username, topic, qos, node, timestamp FROM "$events/{event}""#);
        let context = format!(
            r#"{{"clientid": "c_emqx_2", "event_type": "{event}", "from_clientid": "c_emqx_1", "from_username": "u_emqx_1", "payload": "{{\"msg\": \"hello\"}}", "qos": 1, "topic": "t/a", "username": "u_emqx_2"}}"#
        );
        check(test, &sql, &context, &["from_clientid", "from_username", "topic", "qos"], &["node", "timestamp"]);
    }
}

#[test]
fn t_ctx_droped() {
    let sql = r#"SELECT reason, topic, qos, node, timestamp FROM "$events/message_dropped""#;
    let context = r#"{"clientid": "c_emqx", "event_type": "message_dropped", "payload": "{\"msg\": \"hello\"}", "qos": 1, "reason": "no_subscribers", "topic": "t/a", "username": "u_emqx"}"#;
    check("t_ctx_droped", sql, context, &["reason", "topic", "qos"], &["node", "timestamp"]);
}

#[test]
fn t_ctx_connected_disconnected_connack() {
    let sql = r#"SELECT clientid, username, keepalive, is_bridge FROM "$events/client_connected""#;
    let context = r#"{"clean_start": true, "clientid": "c_emqx", "event_type": "client_connected", "is_bridge": false, "peername": "127.0.0.1:52918", "username": "u_emqx"}"#;
    check("t_ctx_connected", sql, context, &["clientid", "username", "keepalive", "is_bridge"], &[]);
    let sql = r#"SELECT clientid, username, reason, disconnected_at, node FROM "$events/client_disconnected""#;
    let context =
        r#"{"clientid": "c_emqx", "event_type": "client_disconnected", "reason": "normal", "username": "u_emqx"}"#;
    check("t_ctx_disconnected", sql, context, &["clientid", "username", "reason"], &["disconnected_at", "node"]);
    let sql = r#"SELECT clientid, username, reason_code, node FROM "$events/client_connack""#;
    let context = r#"{"clean_start": true, "clientid": "c_emqx", "event_type": "client_connack", "reason_code": "sucess", "username": "u_emqx"}"#;
    check("t_ctx_connack", sql, context, &["clientid", "username", "reason_code"], &["node"]);
}

#[test]
fn t_ctx_check_authz_complete_and_delivery_dropped() {
    let sql = "SELECT clientid, username, topic, action, result,\nauthz_source, node FROM \"$events/client_check_authz_complete\"";
    let context = r#"{"action": "publish", "clientid": "c_emqx", "event_type": "client_check_authz_complete", "result": "allow", "topic": "t/1", "username": "u_emqx"}"#;
    check(
        "t_ctx_check_authz_complete",
        sql,
        context,
        &["clientid", "username", "topic", "action"],
        &["authz_source", "node", "result"],
    );
    let sql = r#"SELECT from_clientid, from_username, reason, topic, qos FROM "$events/delivery_dropped""#;
    let context = r#"{"clientid": "c_emqx_2", "event_type": "delivery_dropped", "from_clientid": "c_emqx_1", "from_username": "u_emqx_1", "payload": "{\"msg\": \"hello\"}", "qos": 1, "reason": "queue_full", "topic": "t/a", "username": "u_emqx_2"}"#;
    check("t_ctx_delivery_dropped", sql, context, &["from_clientid", "from_username", "reason", "qos", "topic"], &[]);
}

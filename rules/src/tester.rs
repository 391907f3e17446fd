//! Testing a rule against a made-up message, as EMQX's rule tester does
//! (`POST /api/v5/rule_test`, `weir rule test`): the context supplies the message's columns over
//! EMQX's defaults, and the answer is the output, "not match", or a bad request.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use tokio::sync::{oneshot, Semaphore};
use weir_types::topic;

use crate::ast::Rule;
use crate::eval::{evaluate, Outcome};
use crate::event_kind::EventKind;
use crate::value::Columns;
use crate::value::Value;
use crate::{parse_rule, Clause, EvalError, Failure};

/// What testing a rule gave.
#[derive(Debug, Clone, PartialEq)]
pub enum TestOutcome {
    /// The rule's output: an object for SELECT, an array for FOREACH.
    Output(Value),
    /// The topic did not match FROM, or WHERE was false (EMQX: 412 `NOT_MATCH`).
    NotMatch,
    /// The SQL did not parse or the context is unusable (EMQX: 400 `BAD_REQUEST`).
    BadRequest(String),
    /// The rule failed on the message (EMQX: 400 `BAD_REQUEST`, with
    /// [`Failure::emqx_message`] as its message).
    Failed(Failure),
}

/// Rule tests that run at once, each on a thread of its own; more wait for a slot.
const TESTERS: usize = 2;
/// How long a rule test may take, waiting for a slot included: `jq`'s default budget (10 s) and
/// a margin. Every function is bounded on its own; this bounds the caller's wait whatever runs.
pub const TEST_BUDGET: Duration = Duration::from_secs(15);

/// [`test_rule`] off the caller's runtime, on a thread of its own (with the rule thread's stack),
/// at most [`TESTERS`] at once, answering within [`TEST_BUDGET`]. The API calls this: a test is
/// CPU work that must never hold up the connections' workers.
pub async fn test_rule_bounded(sql: String, context: Value) -> TestOutcome {
    static SLOTS: Semaphore = Semaphore::const_new(TESTERS);
    let late = || TestOutcome::BadRequest(format!("the test took longer than {} s", TEST_BUDGET.as_secs()));
    let deadline = tokio::time::Instant::now() + TEST_BUDGET;
    let Ok(Ok(slot)) = tokio::time::timeout_at(deadline, SLOTS.acquire()).await else { return late() };
    let (answer, answered) = oneshot::channel();
    let spawned =
        std::thread::Builder::new().name("weir-rule-test".into()).stack_size(crate::pipeline::STACK).spawn(move || {
            let _slot = slot;
            let _ = answer.send(test_rule(&sql, &context));
        });
    if let Err(e) = spawned {
        return TestOutcome::BadRequest(format!("cannot start the test: {e}"));
    }
    match tokio::time::timeout_at(deadline, answered).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => TestOutcome::BadRequest("the test failed on an internal error (logged)".into()),
        Err(_) => late(),
    }
}

/// Runs `sql` on the message described by `context` (a JSON object; `event_type` defaults to
/// `message_publish`; the others are the [`EventKind`] names).
pub fn test_rule(sql: &str, context: &Value) -> TestOutcome {
    let rule = match parse_rule(sql) {
        Ok(r) => r,
        // EMQX's parser says "syntax error" too, which is what its API suite looks for.
        Err(e) => return TestOutcome::BadRequest(format!("syntax error at {e}")),
    };
    let Value::Map(ctx) = context else {
        return TestOutcome::BadRequest("the context must be a JSON object".into());
    };
    let now_ms = crate::now_ms();
    let event_type = match ctx.get("event_type") {
        None => "message_publish",
        Some(Value::Str(t)) => t.as_str(),
        Some(_) => "",
    };
    let event = match (event_type, EventKind::from_name(event_type)) {
        ("message_publish", _) => None,
        (_, Some(kind)) => Some(kind),
        (_, None) => {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
            let given = ctx.get("event_type").and_then(|v| v.to_json().ok()).unwrap_or_default();
            return TestOutcome::BadRequest(format!(
                "unknown event_type {given}: use message_publish or one of {}",
                known.join(", ")
            ));
        }
    };
    let (mut columns, matched) = match event {
        None => publish(&rule, now_ms, ctx),
        Some(kind) => {
            let event_topic = kind.topic();
            (kind.tester_columns(now_ms), rule.from.iter().any(|f| topic::matches(f, &event_topic)))
        }
    };
    if !matched {
        return TestOutcome::NotMatch;
    }
    for (k, v) in ctx {
        if k != "event_type" {
            columns.insert(k.clone(), v.clone());
        }
    }
    let evaluated = catch_unwind(AssertUnwindSafe(|| evaluate(&rule, &columns))).unwrap_or_else(|_| {
        tracing::error!(sql, "a rule test panicked; please report this with the rule and its context");
        Err(Failure { clause: Clause::Select, error: EvalError::Panicked })
    });
    match evaluated {
        Ok(Outcome::Row(v)) => TestOutcome::Output(v),
        Ok(Outcome::Rows(rows)) => TestOutcome::Output(Value::List(rows)),
        Ok(Outcome::NoMatch) => TestOutcome::NotMatch,
        Err(failure) => TestOutcome::Failed(failure),
    }
}

/// The columns of a `message.publish` (EMQX's rule-tester defaults, then the context's topic),
/// and whether that topic matches one of the rule's topic filters.
fn publish(rule: &Rule, now_ms: i64, ctx: &BTreeMap<String, Value>) -> (Columns, bool) {
    let text = |s: &str| Value::Str(s.to_string());
    let columns = Columns::from([
        ("clientid".into(), text("c_emqx")),
        ("username".into(), text("u_emqx")),
        ("payload".into(), text(r#"{"msg": "hello"}"#)),
        ("peerhost".into(), text("127.0.0.1")),
        ("topic".into(), text("t/a")),
        ("qos".into(), Value::Int(1)),
        ("publish_received_at".into(), Value::Int(now_ms)),
        ("timestamp".into(), Value::Int(now_ms)),
        ("event".into(), text("message.publish")),
        ("node".into(), text("weir@127.0.0.1")),
        ("id".into(), text(&format!("{now_ms:016X}"))),
        (
            "flags".into(),
            Value::Map(BTreeMap::from([("dup".into(), Value::Bool(false)), ("retain".into(), Value::Bool(false))])),
        ),
        ("pub_props".into(), Value::Map(BTreeMap::new())),
    ]);
    let matched = match ctx.get("topic").or(columns.get("topic")) {
        Some(Value::Str(t)) => rule.from.iter().any(|f| !f.starts_with("$events/") && topic::matches(f, t)),
        _ => false,
    };
    (columns, matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(json: &str) -> Value {
        Value::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn the_emqx_documentation_example() {
        let out = test_rule(
            r#"SELECT payload.msg as msg, clientid, username, payload, topic, qos FROM "t/#""#,
            &ctx(
                r#"{"clientid":"c_emqx","event_type":"message_publish","payload":"{\"msg\": \"hello\"}","qos":1,"topic":"t/a","username":"u_emqx"}"#,
            ),
        );
        let TestOutcome::Output(v) = out else { panic!("{out:?}") };
        assert_eq!(
            v.to_json().unwrap(),
            r#"{"clientid":"c_emqx","msg":"hello","payload":"{\"msg\": \"hello\"}","qos":1,"topic":"t/a","username":"u_emqx"}"#
        );
    }

    #[test]
    fn not_match_and_bad_request() {
        assert_eq!(test_rule(r#"SELECT * FROM "x/#""#, &ctx("{}")), TestOutcome::NotMatch, "topic t/a");
        assert_eq!(test_rule(r#"SELECT * FROM "t/#" WHERE qos = 2"#, &ctx("{}")), TestOutcome::NotMatch);
        assert!(matches!(
            test_rule("SELECT", &ctx("{}")),
            TestOutcome::BadRequest(m) if m.starts_with("syntax error at line 1")
        ));
        let failed = test_rule(r#"SELECT payload.x as x FROM "t/#""#, &ctx(r#"{"payload": "not json"}"#));
        let TestOutcome::Failed(failure) = failed else { panic!("{failed:?}") };
        assert_eq!(failure.emqx_message(), r#"{"select_and_transform_error":"decode_json_failed"}"#);
        assert!(failure.to_string().contains("not valid JSON"), "{failure}");
        assert!(matches!(
            test_rule(r#"SELECT * FROM "t/#""#, &ctx(r#"{"event_type": "client_exploded"}"#)),
            TestOutcome::BadRequest(m) if m.contains("client_connected")
        ));
    }

    #[test]
    fn events_are_selected_by_event_type() {
        let sql = r#"SELECT clientid, event, reason FROM "$events/client_disconnected""#;
        let out =
            test_rule(sql, &ctx(r#"{"event_type": "client_disconnected", "clientid": "c1", "reason": "kicked"}"#));
        let TestOutcome::Output(v) = out else { panic!("{out:?}") };
        assert_eq!(v.to_json().unwrap(), r#"{"clientid":"c1","event":"client.disconnected","reason":"kicked"}"#);
        // The publish context does not reach an event rule, nor an event a topic rule.
        assert_eq!(test_rule(sql, &ctx("{}")), TestOutcome::NotMatch);
        let topic_rule = r#"SELECT * FROM "t/#""#;
        assert_eq!(test_rule(topic_rule, &ctx(r#"{"event_type": "session_subscribed"}"#)), TestOutcome::NotMatch);
        // Wildcards work on event topics; both FROM kinds may be mixed (worked example 14).
        let out = test_rule(r#"SELECT topic, qos FROM "$events/+""#, &ctx(r#"{"event_type": "session_subscribed"}"#));
        assert!(matches!(out, TestOutcome::Output(_)), "{out:?}");
        let mixed = r#"select clientid, topic as tp from "t/tt", "$events/client_connected""#;
        let out = test_rule(mixed, &ctx(r#"{"clientid": "abc", "topic": "t/tt"}"#));
        let TestOutcome::Output(v) = out else { panic!("{out:?}") };
        assert_eq!(v.to_json().unwrap(), r#"{"clientid":"abc","tp":"t/tt"}"#);
        // Anonymous until Weir has authentication (emqx-5.md, the event table).
        let authn =
            r#"SELECT is_anonymous, is_superuser, reason_code, event FROM "$events/client_check_authn_complete""#;
        let out = test_rule(authn, &ctx(r#"{"event_type": "client_check_authn_complete"}"#));
        let TestOutcome::Output(v) = out else { panic!("{out:?}") };
        assert_eq!(
            v.to_json().unwrap(),
            r#"{"event":"client.check_authn_complete","is_anonymous":true,"is_superuser":false,"reason_code":"success"}"#
        );
    }
}

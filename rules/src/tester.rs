//! Testing a rule against a made-up message, as EMQX's rule tester does
//! (`POST /api/v5/rule_test`, `weir rule test`): the context supplies the message's columns over
//! EMQX's defaults, and the answer is the output, "not match", or a bad request.

use std::collections::BTreeMap;

use crate::eval::{evaluate, Columns, Outcome};
use crate::value::Value;
use crate::{parse_rule, topic};

/// What testing a rule gave.
#[derive(Debug, Clone, PartialEq)]
pub enum TestOutcome {
    /// The rule's output: an object for SELECT, an array for FOREACH.
    Output(Value),
    /// The topic did not match FROM, or WHERE was false (EMQX: 412 `NOT_MATCH`).
    NotMatch,
    /// The SQL did not parse, the context is unusable, or evaluation failed (EMQX: 400).
    BadRequest(String),
}

/// Runs `sql` on the message described by `context` (a JSON object; `event_type` defaults to
/// `message_publish`, the only one supported so far).
pub fn test_rule(sql: &str, context: &Value) -> TestOutcome {
    let rule = match parse_rule(sql) {
        Ok(r) => r,
        Err(e) => return TestOutcome::BadRequest(format!("invalid SQL: {e}")),
    };
    let Value::Map(ctx) = context else {
        return TestOutcome::BadRequest("the context must be a JSON object".into());
    };
    match ctx.get("event_type") {
        None => {}
        Some(Value::Str(t)) if t == "message_publish" => {}
        Some(other) => {
            return TestOutcome::BadRequest(format!(
                "event_type {} is not supported yet; use message_publish",
                other.to_text().unwrap_or_default()
            ))
        }
    }
    let columns = publish_columns(ctx);
    let matched = match columns.get("topic") {
        Some(Value::Str(t)) => rule.from.iter().any(|f| !f.starts_with("$events/") && topic::matches(f, t)),
        _ => false,
    };
    if !matched {
        return TestOutcome::NotMatch;
    }
    match evaluate(&rule, &columns) {
        Ok(Outcome::Row(v)) => TestOutcome::Output(v),
        Ok(Outcome::Rows(rows)) => TestOutcome::Output(Value::List(rows)),
        Ok(Outcome::NoMatch) => TestOutcome::NotMatch,
        Err(e) => TestOutcome::BadRequest(format!("the rule failed on this message: {e}")),
    }
}

/// The columns of a `message.publish`: EMQX's rule-tester defaults, overridden by the context.
fn publish_columns(ctx: &BTreeMap<String, Value>) -> Columns {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let text = |s: &str| Value::Str(s.to_string());
    let mut columns = Columns::from([
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
    for (k, v) in ctx {
        if k != "event_type" {
            columns.insert(k.clone(), v.clone());
        }
    }
    columns
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
        assert!(matches!(test_rule("SELECT", &ctx("{}")), TestOutcome::BadRequest(m) if m.contains("line 1")));
        assert!(matches!(
            test_rule(r#"SELECT payload.x as x FROM "t/#""#, &ctx(r#"{"payload": "not json"}"#)),
            TestOutcome::BadRequest(m) if m.contains("not valid JSON")
        ));
        assert!(matches!(
            test_rule(r#"SELECT * FROM "t/#""#, &ctx(r#"{"event_type": "client_connected"}"#)),
            TestOutcome::BadRequest(_)
        ));
    }
}

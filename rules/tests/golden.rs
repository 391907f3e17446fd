//! Golden tests: each `golden/*.sql` file holds cases of a rule, an input message and the
//! output EMQX gives, written from `shared/reference/emqx-rule-sql.md` (section 2.8 of
//! `emqx-5.md` numbers the worked examples they come from). Case format:
//!
//! ```text
//! -- case: name
//! -- payload: {"x": 1}                     (optional; other columns: -- context: {...})
//! SELECT ... FROM "t/#"
//! -- expect: {"y": 1}                     (or: nomatch | error | error: MESSAGE | subset: {...} |
//!                                          rows-subset: [...])
//! -- detail: WORDS                         (optional, after `error: MESSAGE`)
//! ```
//!
//! An error's MESSAGE is what EMQX 5.8's rule tester answers (`{"select_and_transform_error":
//! "decode_json_failed"}`, see `weir_rules::failure`); WORDS are Weir's, as its log and the
//! API's `detail` give them.
//!
//! The message is EMQX's rule-tester default (topic `t/a`, clientid `c_emqx`, ...) with the
//! payload and context applied. Outputs compare as JSON, where `undefined` prints as "undefined".

use std::collections::BTreeMap;

use weir_rules::eval::{evaluate, Outcome};
use weir_rules::value::Value;

struct Case {
    file: String,
    name: String,
    sql: String,
    payload: Option<String>,
    context: Option<String>,
    expect: String,
    detail: Option<String>,
}

fn cases() -> Vec<Case> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut out = Vec::new();
    for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "sql")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let fname = file.file_name().unwrap().to_string_lossy().into_owned();
        for chunk in text.split("-- case: ").skip(1) {
            let (name, body) = chunk.split_once('\n').unwrap();
            let mut case = Case {
                file: fname.clone(),
                name: name.trim().to_string(),
                sql: String::new(),
                payload: None,
                context: None,
                expect: String::new(),
                detail: None,
            };
            for line in body.lines() {
                if let Some(p) = line.strip_prefix("-- payload: ") {
                    case.payload = Some(p.to_string());
                } else if let Some(c) = line.strip_prefix("-- context: ") {
                    case.context = Some(c.to_string());
                } else if let Some(e) = line.strip_prefix("-- expect: ") {
                    case.expect = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("-- detail: ") {
                    case.detail = Some(d.trim().to_string());
                } else if !line.starts_with("--") {
                    case.sql.push_str(line);
                    case.sql.push('\n');
                }
            }
            assert!(!case.expect.is_empty(), "{fname}: case {} has no expectation", case.name);
            out.push(case);
        }
    }
    out
}

fn columns(case: &Case) -> BTreeMap<String, Value> {
    let mut c: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in [("clientid", "c_emqx"), ("username", "u_emqx"), ("topic", "t/a"), ("peerhost", "127.0.0.1")] {
        c.insert(k.into(), Value::Str(v.into()));
    }
    c.insert("qos".into(), Value::Int(1));
    c.insert("payload".into(), Value::Str(case.payload.clone().unwrap_or_else(|| r#"{"msg": "hello"}"#.into())));
    if let Some(ctx) = &case.context {
        if let Some(Value::Map(m)) = Value::from_json(ctx.as_bytes()) {
            c.extend(m);
        }
    }
    c
}

fn json(v: &Value) -> serde_json::Value {
    serde_json::from_str(&v.to_json().expect("output is JSON")).unwrap()
}

/// Whether every key of `want` is in `got` with the same value.
fn subset(want: &serde_json::Value, got: &serde_json::Value) -> bool {
    match (want, got) {
        (serde_json::Value::Object(w), serde_json::Value::Object(g)) => w.iter().all(|(k, v)| g.get(k) == Some(v)),
        _ => false,
    }
}

#[test]
fn golden_cases() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} golden cases found", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let label = format!("{} / {}", case.file, case.name);
        let outcome = weir_rules::parse_rule(&case.sql).map_err(|e| format!("parse error: {e}")).and_then(|rule| {
            evaluate(&rule, &columns(case)).map_err(|f| format!("error: {} -- detail: {f}", f.emqx_message()))
        });
        let ok = match (case.expect.as_str(), &outcome) {
            ("nomatch", Ok(Outcome::NoMatch)) => true,
            ("error", Err(e)) => !e.starts_with("parse error"),
            (want, Err(e)) if want.starts_with("error: ") => {
                let (message, detail) = e.split_once(" -- detail: ").unwrap_or((e, ""));
                message == want && case.detail.as_ref().is_none_or(|d| d == detail)
            }
            (e, Ok(Outcome::Row(v))) if e.starts_with("subset: ") => {
                subset(&serde_json::from_str(&e["subset: ".len()..]).unwrap(), &json(v))
            }
            (e, Ok(Outcome::Rows(rows))) if e.starts_with("rows-subset: ") => {
                let want: Vec<serde_json::Value> = serde_json::from_str(&e["rows-subset: ".len()..]).unwrap();
                want.len() == rows.len() && want.iter().zip(rows).all(|(w, g)| subset(w, &json(g)))
            }
            (e, Ok(Outcome::Row(v))) => serde_json::from_str::<serde_json::Value>(e).ok() == Some(json(v)),
            (e, Ok(Outcome::Rows(rows))) => {
                serde_json::from_str::<serde_json::Value>(e).ok()
                    == Some(serde_json::Value::Array(rows.iter().map(json).collect()))
            }
            _ => false,
        };
        if !ok {
            let got = match &outcome {
                Ok(Outcome::Row(v)) => v.to_json().unwrap_or_default(),
                Ok(Outcome::Rows(r)) => Value::List(r.clone()).to_json().unwrap_or_default(),
                Ok(Outcome::NoMatch) => "nomatch".into(),
                Err(e) => e.clone(),
            };
            let detail = case.detail.as_ref().map_or(String::new(), |d| format!(" -- detail: {d}"));
            failures.push(format!("{label}\n  expected: {}{detail}\n  got:      {got}", case.expect));
        }
    }
    assert!(failures.is_empty(), "{} of {} golden cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// The golden files call every function of the catalogue at least once.
#[test]
fn every_function_has_a_golden_case() {
    let sql: String = cases().iter().map(|c| c.sql.to_lowercase()).collect::<Vec<_>>().join("\n");
    // A call is the name followed by `(`, not preceded by a letter (`zip(` is not in `gzip(`).
    let called = |name: &str| {
        let needle = format!("{name}(");
        sql.match_indices(&needle)
            .any(|(at, _)| !sql[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    let missing: Vec<&str> = weir_rules::functions::all().map(|f| f.name).filter(|name| !called(name)).collect();
    assert!(missing.is_empty(), "functions without a golden case: {missing:?}");
}

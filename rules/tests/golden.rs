//! Golden tests: each `golden/*.sql` and `golden/sequences/*.sql` file holds cases of a rule, its
//! input and the output EMQX gives, written from `shared/reference/emqx-rule-sql.md` (section
//! 2.8 of `emqx-5.md` numbers the worked examples they come from) and EMQX's own test suites.
//! One driver runs them all. A case is one message through the rule tester:
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
//! or a sequence, for what one message cannot show (windows, joins, events): messages and events
//! in order, with reference tables and a clock, through the rule as the engine runs it:
//!
//! ```text
//! -- case: name
//! -- table devices: [{"id": "c1", "max": 30}]           (JOIN's rows; optional, repeatable)
//! -- message: {"timestamp": 1000, "payload": "{...}"}   (columns over the tester's defaults)
//! -- event: client_connected {"clientid": "c1"}         (an event's columns, over its defaults)
//! -- close: 20000                                        (the clock: windows ending by then close)
//! SELECT ... FROM "t/#" ...
//! -- expect: [{...}, ...]                                (every row, in the order they came)
//! ```
//!
//! The message is EMQX's rule-tester default (topic `t/a`, clientid `c_emqx`, ...) with the
//! given columns applied; a sequence's messages and events reach the rule only if its FROM
//! matches their topic, as in the broker. Outputs compare as JSON, where `undefined` prints as
//! "undefined". An error's MESSAGE is what EMQX 5.8's rule tester answers
//! (`{"select_and_transform_error":"decode_json_failed"}`, see `weir_rules::failure`); WORDS are
//! Weir's, as its log and the API's `detail` give them.

use std::path::Path;
use std::sync::Arc;

use weir_rules::active_rule::ActiveRule;
use weir_rules::eval::{evaluate, Outcome};
use weir_rules::event_kind::EventKind;
use weir_rules::files::LoadedRule;
use weir_rules::tables::{Table, Tables};
use weir_rules::value::{Columns, Value};

/// One input of a sequence.
enum Step {
    Message(Columns),
    Close(i64),
}

struct Case {
    label: String,
    sql: String,
    /// The single message's columns over the tester's defaults (`-- payload:`, `-- context:`).
    single: Columns,
    /// A sequence's tables and inputs; a case with inputs is a sequence.
    tables: Vec<(String, Vec<Columns>)>,
    steps: Vec<Step>,
    expect: String,
    detail: Option<String>,
}

fn map_of(json: &str, what: &str) -> Columns {
    match Value::from_json(json.as_bytes()) {
        Some(Value::Map(m)) => m,
        _ => panic!("{what}: not a JSON object: {json}"),
    }
}

/// The rule tester's message columns under `given`.
fn message(given: Columns) -> Columns {
    let text = |s: &str| Value::Str(s.into());
    let mut c = Columns::from([
        ("topic".to_string(), text("t/a")),
        ("clientid".to_string(), text("c_emqx")),
        ("username".to_string(), text("u_emqx")),
        ("peerhost".to_string(), text("127.0.0.1")),
        ("qos".to_string(), Value::Int(1)),
        ("payload".to_string(), text(r#"{"msg": "hello"}"#)),
    ]);
    c.extend(given);
    c
}

/// A sequence's message: the tester's, with an empty payload, a time and its event name, under
/// `given`.
fn sequence_message(given: Columns) -> Columns {
    let mut c = Columns::from([
        ("payload".to_string(), Value::Str("{}".into())),
        ("timestamp".to_string(), Value::Int(0)),
        ("event".to_string(), Value::Str("message.publish".into())),
    ]);
    c.extend(given);
    message(c)
}

fn table(label: &str, rest: &str) -> (String, Vec<Columns>) {
    let (name, rows) = rest.split_once(": ").expect("-- table NAME: [rows]");
    let rows = match Value::from_json(rows.as_bytes()) {
        Some(Value::List(rows)) => rows.into_iter().map(|r| map_of(&r.to_json().unwrap(), "a table row")).collect(),
        _ => panic!("{label}: table rows are a JSON array"),
    };
    (name.to_string(), rows)
}

fn event(label: &str, e: &str) -> Step {
    let (name, given) = e.split_once(' ').unwrap_or((e, "{}"));
    let kind = EventKind::from_name(name).unwrap_or_else(|| panic!("{label}: no event {name}"));
    let mut columns = kind.tester_columns(0);
    columns.insert("topic_of_event".into(), Value::Str(kind.topic()));
    columns.extend(map_of(given, label));
    Step::Message(columns)
}

fn parse(label: String, body: &str) -> Case {
    let mut case = Case {
        label,
        sql: String::new(),
        single: Columns::new(),
        tables: Vec::new(),
        steps: Vec::new(),
        expect: String::new(),
        detail: None,
    };
    let label = case.label.clone();
    for line in body.lines() {
        if let Some(p) = line.strip_prefix("-- payload: ") {
            case.single.insert("payload".into(), Value::Str(p.to_string()));
        } else if let Some(c) = line.strip_prefix("-- context: ") {
            case.single.extend(map_of(c, &label));
        } else if let Some(rest) = line.strip_prefix("-- table ") {
            case.tables.push(table(&label, rest));
        } else if let Some(m) = line.strip_prefix("-- message: ") {
            case.steps.push(Step::Message(sequence_message(map_of(m, &label))));
        } else if let Some(e) = line.strip_prefix("-- event: ") {
            case.steps.push(event(&label, e));
        } else if let Some(t) = line.strip_prefix("-- close: ") {
            case.steps.push(Step::Close(t.trim().parse().expect("-- close: MS")));
        } else if let Some(e) = line.strip_prefix("-- expect: ") {
            case.expect = e.trim().to_string();
        } else if let Some(d) = line.strip_prefix("-- detail: ") {
            case.detail = Some(d.trim().to_string());
        } else if !line.starts_with("--") {
            case.sql.push_str(line);
            case.sql.push('\n');
        }
    }
    assert!(!case.expect.is_empty(), "{label}: no expectation");
    case
}

/// The cases of every `.sql` file in `golden/` and `golden/sequences/`.
fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("sequences")] {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        files
            .extend(entries.map(|e| e.expect("an entry").path()).filter(|f| f.extension().is_some_and(|e| e == "sql")));
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a golden file");
        let name = file.strip_prefix(&root).expect("under golden/").display().to_string();
        for chunk in text.split("-- case: ").skip(1) {
            let (title, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            out.push(parse(format!("{name} / {}", title.trim()), body));
        }
    }
    out
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

/// A single message through the rule tester's evaluation: `None` if it gave what the case
/// expects, else what it gave.
fn single(case: &Case) -> Option<String> {
    let outcome = weir_rules::parse_rule(&case.sql).map_err(|e| format!("parse error: {e}")).and_then(|rule| {
        evaluate(&rule, &message(case.single.clone()))
            .map_err(|f| format!("error: {} -- detail: {f}", f.emqx_message()))
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
    (!ok).then(|| match outcome {
        Ok(Outcome::Row(v)) => v.to_json().unwrap_or_default(),
        Ok(Outcome::Rows(r)) => Value::List(r).to_json().unwrap_or_default(),
        Ok(Outcome::NoMatch) => "nomatch".into(),
        Err(e) => e,
    })
}

/// Whether the rule's FROM takes this message or event.
fn wanted(rule: &ActiveRule, columns: &Columns) -> bool {
    let topic = match columns.get("topic_of_event").or_else(|| columns.get("topic")) {
        Some(Value::Str(t)) => t.clone(),
        _ => return false,
    };
    rule.statement.rule.from.iter().any(|f| weir_types::topic::matches(f, &topic))
}

/// A sequence through the rule as the engine runs it: `None` if its rows are the ones the case
/// expects, else what it gave.
async fn sequence(case: &Case) -> Option<String> {
    let tables = Arc::new(Tables::default());
    for (name, rows) in &case.tables {
        tables.set(name, Table::new(rows.clone()));
    }
    let statement = match weir_rules::parse_file(&case.sql) {
        Ok(mut statements) => statements.remove(0),
        Err(e) => return Some(format!("parse error: {e:?}")),
    };
    let rule = ActiveRule::new(LoadedRule { id: "seq".into(), statement }, Arc::default(), tables);
    let mut rows = Vec::new();
    for step in &case.steps {
        match step {
            Step::Message(columns) if wanted(&rule, columns) => {
                let mut columns = columns.clone();
                columns.remove("topic_of_event");
                rows.extend(rule.run(&columns));
            }
            Step::Message(_) => {}
            Step::Close(now) => rows.extend(rule.close_windows(*now).await),
        }
    }
    let got = Value::List(rows).to_json().unwrap_or_default();
    let want: Option<serde_json::Value> = serde_json::from_str(&case.expect).ok();
    (serde_json::from_str::<serde_json::Value>(&got).ok() != want).then_some(got)
}

#[tokio::test]
async fn golden_cases() {
    let cases = cases();
    let sequences = cases.iter().filter(|c| !c.steps.is_empty()).count();
    assert!(cases.len() - sequences >= 300 && sequences >= 10, "{} cases, {sequences} sequences", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = if case.steps.is_empty() { single(case) } else { sequence(case).await };
        if let Some(got) = got {
            let detail = case.detail.as_ref().map_or(String::new(), |d| format!(" -- detail: {d}"));
            failures.push(format!("{}\n  expected: {}{detail}\n  got:      {got}", case.label, case.expect));
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

//! Golden sequences: a rule run on a series of messages and events, with reference tables and a
//! clock, for what one message cannot show: windows, joins, events. Each `golden/sequences/*.sql`
//! file holds cases:
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
//! Messages and events reach the rule only if its FROM matches their topic, as in the broker.
//! Rows compare as JSON, where `undefined` prints as "undefined".

use std::sync::Arc;

use weir_rules::active_rule::ActiveRule;
use weir_rules::event_kind::EventKind;
use weir_rules::files::LoadedRule;
use weir_rules::tables::{Table, Tables};
use weir_rules::value::{Columns, Value};

/// One step of a sequence.
enum Step {
    Message(Columns),
    Close(i64),
}

struct Case {
    label: String,
    sql: String,
    tables: Vec<(String, Vec<Columns>)>,
    steps: Vec<Step>,
    expect: String,
}

fn map_of(json: &str, what: &str) -> Columns {
    match Value::from_json(json.as_bytes()) {
        Some(Value::Map(m)) => m,
        _ => panic!("{what}: not a JSON object: {json}"),
    }
}

/// The tester's message columns (`t/a`, `c_emqx`, ...) under `given`.
fn message(given: Columns) -> Columns {
    let mut c = Columns::from([
        ("topic".to_string(), Value::Str("t/a".into())),
        ("clientid".to_string(), Value::Str("c_emqx".into())),
        ("username".to_string(), Value::Str("u_emqx".into())),
        ("qos".to_string(), Value::Int(1)),
        ("payload".to_string(), Value::Str("{}".into())),
        ("timestamp".to_string(), Value::Int(0)),
        ("event".to_string(), Value::Str("message.publish".into())),
    ]);
    c.extend(given);
    c
}

fn parse(label: &str, body: &str) -> Case {
    let mut case = Case {
        label: label.to_string(),
        sql: String::new(),
        tables: Vec::new(),
        steps: Vec::new(),
        expect: String::new(),
    };
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("-- table ") {
            let (name, rows) = rest.split_once(": ").expect("-- table NAME: [rows]");
            let rows = match Value::from_json(rows.as_bytes()) {
                Some(Value::List(rows)) => {
                    rows.into_iter().map(|r| map_of(&r.to_json().unwrap(), "a table row")).collect()
                }
                _ => panic!("{label}: table rows are a JSON array"),
            };
            case.tables.push((name.to_string(), rows));
        } else if let Some(m) = line.strip_prefix("-- message: ") {
            case.steps.push(Step::Message(message(map_of(m, label))));
        } else if let Some(e) = line.strip_prefix("-- event: ") {
            let (name, given) = e.split_once(' ').unwrap_or((e, "{}"));
            let kind = EventKind::from_name(name).unwrap_or_else(|| panic!("{label}: no event {name}"));
            let mut columns = kind.tester_columns(0);
            columns.insert("topic_of_event".into(), Value::Str(kind.topic()));
            columns.extend(map_of(given, label));
            case.steps.push(Step::Message(columns));
        } else if let Some(t) = line.strip_prefix("-- close: ") {
            case.steps.push(Step::Close(t.trim().parse().expect("-- close: MS")));
        } else if let Some(e) = line.strip_prefix("-- expect: ") {
            case.expect = e.trim().to_string();
        } else if !line.starts_with("--") {
            case.sql.push_str(line);
            case.sql.push('\n');
        }
    }
    assert!(!case.expect.is_empty(), "{label}: no expectation");
    case
}

fn cases() -> Vec<Case> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sequences");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("golden/sequences").map(|e| e.expect("entry").path()).collect();
    files.sort();
    let mut out = Vec::new();
    for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "sql")) {
        let text = std::fs::read_to_string(&file).expect("read");
        let name = file.file_name().expect("name").to_string_lossy().into_owned();
        for chunk in text.split("-- case: ").skip(1) {
            let (title, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            out.push(parse(&format!("{name} / {}", title.trim()), body));
        }
    }
    out
}

/// Whether the rule's FROM takes this message or event.
fn wanted(rule: &ActiveRule, columns: &Columns) -> bool {
    let topic = match columns.get("topic_of_event").or_else(|| columns.get("topic")) {
        Some(Value::Str(t)) => t.clone(),
        _ => return false,
    };
    rule.statement.rule.from.iter().any(|f| weir_types::topic::matches(f, &topic))
}

async fn run(case: &Case) -> Result<Vec<Value>, String> {
    let tables = Arc::new(Tables::default());
    for (name, rows) in &case.tables {
        tables.set(name, Table::new(rows.clone()));
    }
    let statement = weir_rules::parse_file(&case.sql).map_err(|e| format!("parse error: {e:?}"))?.remove(0);
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
    Ok(rows)
}

#[tokio::test]
async fn golden_sequences() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let got = run(case).await;
        let got_json = got.as_ref().map(|rows| Value::List(rows.clone()).to_json().unwrap_or_default());
        let want: Option<serde_json::Value> = serde_json::from_str(&case.expect).ok();
        let same = got_json.as_ref().ok().and_then(|g| serde_json::from_str::<serde_json::Value>(g).ok()) == want;
        if !same {
            failures.push(format!("{}\n  expected: {}\n  got:      {got_json:?}", case.label, case.expect));
        }
    }
    assert!(cases.len() >= 10, "{} sequences", cases.len());
    assert!(failures.is_empty(), "{} of {} sequences failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

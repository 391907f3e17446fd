use serde_json::{json, Value};

use super::{SqliteConfig, SqliteSink};
use crate::row::Row;
use crate::sink::{Sink, WriteError};

fn rows(v: Value) -> Vec<Row> {
    v.as_array().unwrap().iter().map(|r| Row::from(r.as_object().unwrap().clone())).collect()
}

fn config(url: &str, table: Option<&str>, sql: Option<&str>, init: &[&str]) -> SqliteConfig {
    SqliteConfig {
        url: url.to_string(),
        table: table.map(str::to_string),
        sql: sql.map(str::to_string),
        init_sql: init.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn sqlite_table_and_template_modes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    let create = "CREATE TABLE IF NOT EXISTS r (id INTEGER PRIMARY KEY, device TEXT NOT NULL, temp REAL, meta TEXT, at TEXT DEFAULT 'now')";
    let table = SqliteSink::open("t", &config(&url, Some("r"), None, &[create])).unwrap();
    table
        .write(&rows(json!([
            {"device": "d1", "temp": 21.5, "meta": {"a": 1}, "extra": 1},
            {"device": "it's'); DROP TABLE r; --", "temp": null}
        ])))
        .await
        .unwrap();
    assert!(matches!(table.write(&rows(json!([{"temp": 1}]))).await, Err(WriteError::Rejected { .. })));
    let template = SqliteSink::open(
        "t2",
        &config(&url, None, Some("INSERT INTO r (device, temp) VALUES (${clientid}, ${payload.t})"), &[]),
    )
    .unwrap();
    template.write(&rows(json!([{"clientid": "d3", "payload": "{\"t\": 7}"}]))).await.unwrap();
    let p = &table.db().pool;
    let got: Vec<(String, Option<f64>, Option<String>, String)> =
        sqlx::query_as("SELECT device, temp, meta, at FROM r ORDER BY id").fetch_all(p).await.unwrap();
    assert_eq!(
        got,
        vec![
            ("d1".into(), Some(21.5), Some(r#"{"a":1}"#.into()), "now".into()),
            ("it's'); DROP TABLE r; --".into(), None, None, "now".into()),
            ("d3".into(), Some(7.0), None, "now".into()),
        ]
    );
}

#[tokio::test]
async fn sqlite_binds_each_json_type_as_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    let create = "CREATE TABLE IF NOT EXISTS u (id INTEGER PRIMARY KEY, v)";
    let table = SqliteSink::open("t", &config(&url, Some("u"), None, &[create])).unwrap();
    let values = json!(["a \"q\" é", 42, -1.5, 1e3, 18446744073709551615u64, true, null, {"a": [1]}]);
    let batch: Vec<Value> = values.as_array().unwrap().iter().map(|v| json!({"v": v})).collect();
    table.write(&rows(Value::Array(batch))).await.unwrap();
    let p = &table.db().pool;
    let got: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT typeof(v), CAST(v AS TEXT) FROM u ORDER BY id").fetch_all(p).await.unwrap();
    let want = [
        ("text", Some("a \"q\" é")),
        ("integer", Some("42")),
        ("real", Some("-1.5")),
        ("real", Some("1000.0")),
        ("real", Some("1.84467440737096e+19")),
        ("integer", Some("1")),
        ("null", None),
        ("text", Some(r#"{"a":[1]}"#)),
    ];
    let want: Vec<(String, Option<String>)> =
        want.iter().map(|(t, v)| (t.to_string(), v.map(str::to_string))).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_missing_table_keeps_rows_for_later() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    let sink = SqliteSink::open("t", &config(&url, Some("nope"), None, &[])).unwrap();
    let err = sink.write(&rows(json!([{"a": 1}]))).await.unwrap_err();
    assert!(matches!(&err, WriteError::Transient { reason, .. } if reason.contains("nope")), "{err:?}");
}

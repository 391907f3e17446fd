use serde_json::{json, Value};
use sqlx::Row as _;

use super::{PostgresConfig, PostgresSink};
use crate::row::Row;
use crate::sink::{Sink, WriteError};

fn rows(v: Value) -> Vec<Row> {
    v.as_array().unwrap().iter().map(|r| Row::from(r.as_object().unwrap().clone())).collect()
}

fn config(url: &str, table: Option<&str>, sql: Option<&str>, init: &[&str]) -> PostgresConfig {
    PostgresConfig {
        url: url.to_string(),
        table: table.map(str::to_string),
        sql: sql.map(str::to_string),
        init_sql: init.iter().map(|s| s.to_string()).collect(),
    }
}

fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .expect("TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
}

#[tokio::test]
async fn postgres_casts_text_to_each_column_and_refuses_bad_rows() {
    let url = postgres_url();
    let create = "CREATE TABLE IF NOT EXISTS sink_sql_test (id serial PRIMARY KEY, device varchar(8) NOT NULL, \
                  temp double precision, n integer, meta jsonb, at timestamptz DEFAULT now())";
    let table = PostgresSink::open(
        "t",
        &config(&url, Some("sink_sql_test"), None, &["DROP TABLE IF EXISTS sink_sql_test", create]),
        2,
    )
    .unwrap();
    table
        .write(&rows(json!([
            {"device": "d1", "temp": 21.5, "n": 3, "meta": {"a": [1, 2]}},
            {"device": "x'); DROP TABLE sink_sql_test; --", "n": null}
        ])))
        .await
        .unwrap_err();
    table
        .write(&rows(
            json!([{"device": "d1", "temp": 21.5, "n": 3, "meta": {"a": [1, 2]}}, {"device": "'; --", "n": null}]),
        ))
        .await
        .unwrap();
    // A type error and a too-long value are the data's fault: refused, not retried.
    let r = table.write(&rows(json!([{"device": "d2", "n": "many"}]))).await;
    assert!(
        matches!(&r, Err(WriteError::Rejected { reason }) if reason.starts_with("field `n` = \"many\" does not fit column `n` (integer) of `sink_sql_test`: invalid input syntax")),
        "{r:?}"
    );
    for bad in [json!([{"device": "d2", "n": "many"}]), json!([{"device": "far too long"}])] {
        let r = table.write(&rows(bad)).await;
        assert!(matches!(r, Err(WriteError::Rejected { .. })), "{r:?}");
    }
    let template = PostgresSink::open(
        "t2",
        &config(&url, None, Some("INSERT INTO sink_sql_test (device, n, at) VALUES (${clientid}, ${payload.n}, to_timestamp(${ts} / 1000.0))"), &[]),
        2,
    )
    .unwrap();
    template.write(&rows(json!([{"clientid": "d3", "payload": "{\"n\": 9}", "ts": 1700000000000i64}]))).await.unwrap();
    let p = &table.db().pool;
    type Stored = (String, Option<f64>, Option<i32>, Option<String>, i64);
    let got: Vec<Stored> = sqlx::query_as(
        "SELECT device, temp, n, meta::text, extract(epoch from at)::bigint FROM sink_sql_test ORDER BY id",
    )
    .fetch_all(p)
    .await
    .unwrap();
    assert_eq!(got[0].0, "d1");
    assert_eq!((got[0].1, got[0].2, got[0].3.as_deref()), (Some(21.5), Some(3), Some(r#"{"a": [1, 2]}"#)));
    assert_eq!((got[1].0.as_str(), got[1].2), ("'; --", None));
    assert_eq!((got[2].0.as_str(), got[2].2, got[2].4), ("d3", Some(9), 1_700_000_000));
    assert_eq!(got.len(), 3);
}

#[tokio::test]
async fn postgres_reads_back_what_binary_and_text_copy_wrote() {
    let url = postgres_url();
    let create = "CREATE TABLE sink_copy_test (id serial PRIMARY KEY, t text, c char(3), s smallint, i integer, \
                  b bigint, r real, d double precision, ok boolean, j json, jb jsonb)";
    let sink = PostgresSink::open(
        "c",
        &config(&url, Some("sink_copy_test"), None, &["DROP TABLE IF EXISTS sink_copy_test", create]),
        2,
    )
    .unwrap();
    let all = json!({"t": "tab\there \\ \"é\"\n", "c": "ab", "s": -3, "i": "12", "b": 9007199254740993i64,
                     "r": 1.5, "d": -2.25e-300, "ok": false, "j": {"z": 1, "a": [true]}, "jb": {"k": "v"}});
    // The first batch goes in binary; in the second, " 7" is for the server to read, so
    // the batch goes as text.
    sink.write(&rows(json!([all, {"t": null, "i": 5}]))).await.unwrap();
    sink.write(&rows(json!([{"b": " 7", "ok": "yes", "d": 1}]))).await.unwrap();
    let p = &sink.db().pool;
    type Stored = (Option<String>, Option<String>, Option<i16>, Option<i32>, Option<i64>, Option<f32>);
    type More = (Option<f64>, Option<bool>, Option<String>, Option<String>);
    let got: Vec<(Stored, More)> =
        sqlx::query("SELECT t, c, s, i, b, r, d, ok, j::text, jb::text FROM sink_copy_test ORDER BY id")
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                ((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)), (r.get(6), r.get(7), r.get(8), r.get(9)))
            })
            .collect();
    assert_eq!(
        got[0],
        (
            (
                Some("tab\there \\ \"é\"\n".into()),
                Some("ab ".into()),
                Some(-3),
                Some(12),
                Some(9007199254740993),
                Some(1.5)
            ),
            (Some(-2.25e-300), Some(false), Some(r#"{"a":[true],"z":1}"#.into()), Some(r#"{"k": "v"}"#.into()))
        )
    );
    assert_eq!(got[1], ((None, None, None, Some(5), None, None), (None, None, None, None)));
    assert_eq!(got[2], ((None, None, None, None, Some(7), None), (Some(1.0), Some(true), None, None)));
    assert_eq!(got.len(), 3);
}

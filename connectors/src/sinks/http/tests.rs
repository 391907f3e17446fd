use std::collections::BTreeMap as Headers;

use serde_json::json;

use super::{HttpConfig, HttpSink};
use crate::row::Row;

fn sink(body: Option<&str>, format: &str, batch_size: usize) -> HttpSink {
    let config = HttpConfig {
        url: "http://127.0.0.1:9/in/${clientid}".into(),
        method: "post".into(),
        headers: Headers::from([("x-topic".into(), "${topic}".into())]),
        body: body.map(str::to_string),
        format: format.into(),
        request_timeout: 5,
        ssl: None,
    };
    HttpSink::new("h", &config, batch_size).unwrap()
}

fn rows() -> Vec<Row> {
    [
        json!({"clientid": "a", "topic": "t/1", "v": 1}),
        json!({"clientid": "a", "topic": "t/1", "v": "x\"y"}),
        json!({"clientid": "b", "topic": "t/2", "v": 3}),
    ]
    .into_iter()
    .map(|v| Row::from(v.as_object().unwrap().clone()))
    .collect()
}

#[test]
fn rows_with_one_url_share_a_request_and_bodies_stay_json() {
    let reqs = sink(Some(r#"{"value": ${v}, "text": "v=${v}"}"#), "json", 100).requests(&rows());
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].0, "http://127.0.0.1:9/in/a");
    assert_eq!(reqs[0].1[0].1, "t/1");
    let first: serde_json::Value = serde_json::from_str(&reqs[0].2).unwrap();
    assert_eq!(first, json!([{"value": 1, "text": "v=1"}, {"value": "x\"y", "text": "v=x\"y"}]));
    let second: serde_json::Value = serde_json::from_str(&reqs[1].2).unwrap();
    assert_eq!(second, json!([{"value": 3, "text": "v=3"}]));
    let nd = sink(None, "ndjson", 100).requests(&rows());
    assert_eq!(nd[0].2.lines().count(), 2);
    let one = sink(None, "json", 1).requests(&rows()[2..]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&one[0].2).unwrap(),
        json!({"clientid": "b", "topic": "t/2", "v": 3})
    );
}

#[test]
fn bad_settings_are_named() {
    let mut config = HttpConfig {
        url: "ftp://x".into(),
        method: "POST".into(),
        headers: Headers::new(),
        body: None,
        format: "json".into(),
        request_timeout: 5,
        ssl: None,
    };
    let err = |c: &HttpConfig| HttpSink::new("h", c, 1).err().unwrap().to_string();
    assert!(err(&config).contains("url"), "{}", err(&config));
    config.url = "http://x".into();
    config.method = "FETCH".into();
    assert!(err(&config).contains("method"));
    config.method = "POST".into();
    config.body = Some(r#"{"a": ${a} "b"}"#.into());
    assert!(err(&config).contains("body"));
}

//! Waiting on sinks through the API and reading what reached PostgreSQL, for the tests that
//! write into real destinations.

use std::time::Duration;

use super::http::get;
use super::{psql_rows, Weir};

/// Polls `f` every 100 ms for up to 60 s until it returns `Some`.
pub async fn until<T>(what: &str, weir: &Weir, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}; log:\n{}", weir.log());
}

/// The sink's counters and status from the API.
pub async fn sink(weir: &Weir, name: &str) -> serde_json::Value {
    let (status, body) = get(weir.api.expect("API"), &format!("/api/v5/sinks/{name}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

pub fn count(url: &str, table: &str) -> u64 {
    psql_rows(url, &format!("SELECT count(*) FROM {table}")).trim().parse().expect("a count")
}

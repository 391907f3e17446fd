//! One sink that cannot take rows holds back only its own rules and their publishers: the other
//! rules keep writing into their sinks, and other topics keep routing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::http::get;
use common::proxy::Proxy;
use common::sinks::{count, until};
use common::{addr_of, postgres_url, psql, psql_rows, publish_qos1, with_addr, Subscriber, Weir};

/// Messages published into the sink that is down: more than the rows held for a full sink
/// before its publishers pause (65,536).
const N: usize = 80_000;

/// Waits until `acked` stops moving for two seconds, short of `n`; returns where it stopped.
async fn paused(acked: &AtomicUsize, n: usize) -> usize {
    let (mut last, mut still) = (0, 0);
    for _ in 0..240 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = acked.load(Ordering::Relaxed);
        still = if now == last && now > 0 { still + 1 } else { 0 };
        last = now;
        if still >= 8 {
            break;
        }
    }
    assert!(still >= 8 && last < n, "the publisher was not paused: {last} of {n} acknowledged");
    last
}

/// Sink `down` (PostgreSQL behind a cut proxy, a 64 KiB buffer that blocks) fills, its rows are
/// held, and past the bound its publisher pauses. Meanwhile rule `up` writes 20,000 rows into
/// sink `up` (the same PostgreSQL, reached directly) and a plain subscriber gets its messages.
/// Once `down` is back, every one of its rows arrives.
#[tokio::test]
async fn a_full_sink_holds_back_only_its_own_rules_and_publishers() {
    let url = postgres_url();
    psql(&url, "DROP TABLE IF EXISTS iso_down; CREATE TABLE iso_down (seq integer)");
    psql(&url, "DROP TABLE IF EXISTS iso_up; CREATE TABLE iso_up (seq integer)");
    let proxy = Proxy::start(addr_of(&url)).await;
    proxy.cut();
    let config = format!(
        "[sinks.down]\ntype = \"postgres\"\nurl = \"{}\"\ntable = \"iso_down\"\nmax_buffer_bytes = 65536\nmax_retry_backoff_ms = 300\n\
         [sinks.up]\ntype = \"postgres\"\nurl = \"{url}\"\ntable = \"iso_up\"\n",
        with_addr(&url, proxy.addr)
    );
    let rules = [
        ("down.sql", r#"INSERT INTO down SELECT payload.seq AS seq FROM "down/#""#),
        ("up.sql", r#"INSERT INTO up SELECT payload.seq AS seq FROM "up/#""#),
    ];
    let weir = Weir::start_with_rules(&config, &rules);
    let acked = Arc::new(AtomicUsize::new(0));
    let message = |i| ("down/1".to_string(), format!(r#"{{"seq": {i}}}"#));
    let publisher = tokio::spawn(common::publish_qos1_counted(weir.tcp, "downer".into(), N, message, acked.clone()));
    let stopped_at = paused(&acked, N).await;
    let (_, text) = get(weir.api.unwrap(), "/api/v5/prometheus/stats").await;
    let metric = |name: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).expect(name)
    };
    assert!(metric("weir_rule_engine_held_rows") >= 65_536, "{text}");
    assert!(metric("weir_rule_engine_queued") < 65_536, "the rules' queue keeps moving");

    // The other rule, its sink and its publisher are not held back; nor is routing.
    let mut sub = Subscriber::start(weir.tcp, "watcher", "other/#").await;
    publish_qos1(weir.tcp, "upper", 20_000, |i| ("up/1".into(), format!(r#"{{"seq": {i}}}"#))).await;
    until("every row of the other rule", &weir, async || (count(&url, "iso_up") >= 20_000).then_some(())).await;
    publish_qos1(weir.tcp, "other", 10, |i| ("other/x".into(), format!("{i}"))).await;
    assert_eq!(sub.collect(10, Duration::from_secs(10)).await.len(), 10);
    assert_eq!(acked.load(Ordering::Relaxed), stopped_at, "the paused publisher stays paused meanwhile");

    proxy.restore();
    publisher.await.expect("publisher");
    until("every row of the full sink", &weir, async || (count(&url, "iso_down") >= N as u64).then_some(())).await;
    assert_eq!(psql_rows(&url, "SELECT count(DISTINCT seq) FROM iso_down").trim(), N.to_string());
    assert_eq!(psql_rows(&url, "SELECT count(DISTINCT seq) FROM iso_up").trim(), "20000");
}

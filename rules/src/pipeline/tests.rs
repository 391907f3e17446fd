//! The pipeline without a broker or a socket: messages offered to the intake, rules from a
//! rules directory, rows into a destination in memory.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use weir_connectors::buffer::FullPolicy;
use weir_connectors::driver::DeliveryConfig;
use weir_types::QoS;

use super::testing::MemoryPipeline;
use super::*;
use crate::value::Value;

/// A published message as a test makes it.
#[derive(Debug)]
struct Msg {
    topic: String,
    payload: Vec<u8>,
    /// Its topic panics when read (see [`poisoned`]).
    poisoned: bool,
    /// Its id in the broker's write-ahead, if written ahead.
    kept: Option<u64>,
}

impl Published for Msg {
    fn topic(&self) -> &str {
        assert!(!self.poisoned, "a poisoned message, for the supervisor's test");
        &self.topic
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
    fn qos(&self) -> QoS {
        QoS::AtLeastOnce
    }
    fn publisher(&self) -> Option<&str> {
        Some("c")
    }
    fn retain(&self) -> bool {
        false
    }
    fn received_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH
    }
    fn origin(&self) -> Option<&str> {
        None
    }
    fn properties(&self) -> Option<Value> {
        None
    }
    fn write_ahead(&self) -> Option<u64> {
        self.kept
    }
}

fn msg(topic: &str, payload: String) -> Message {
    Arc::new(Msg { topic: topic.into(), payload: payload.into_bytes(), poisoned: false, kept: None })
}

/// A message whose topic cannot be read: it panics the runner itself, outside any rule.
fn poisoned() -> Message {
    Arc::new(Msg { topic: String::new(), payload: Vec::new(), poisoned: true, kept: None })
}

/// A pipeline running `rule`, which may write into `mem`, a destination in memory.
fn start(rule: &str, delivery: DeliveryConfig, queue: usize) -> MemoryPipeline {
    MemoryPipeline::start(&[("rule.sql", rule)], &BTreeMap::new(), &delivery, queue)
}

/// One batch in flight at a time, so that rows arrive in order.
fn delivery() -> DeliveryConfig {
    DeliveryConfig { batch_time_ms: 1, max_retry_backoff_ms: 50, max_inflight: 1, ..DeliveryConfig::default() }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Messages go through in order, the rule runs on batches, and the sink writes batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_become_rows_in_order_in_batches() {
    let h = start(r#"INSERT INTO mem SELECT payload.n AS n FROM "t/#""#, delivery(), intake::QUEUE);
    let intake = h.pipeline.intake();
    assert!(intake.wants("t/1") && !intake.wants("u/1"));
    for burst in 0..30 {
        let _ = intake.offer((0..100).map(|i| msg("t/1", format!(r#"{{"n": {}}}"#, burst * 100 + i))).collect());
    }
    until("3000 rows", || h.mem.len() == 3000).await;
    let ns: Vec<i64> = h.mem.rows.lock().iter().map(|r| r.get("n").and_then(|v| v.as_i64()).unwrap()).collect();
    let first_out_of_order = ns.iter().zip(0..).find(|(n, i)| **n != *i);
    assert_eq!(first_out_of_order, None, "rows in the order of their messages");
    let writes = h.mem.writes.load(Ordering::Relaxed);
    assert!(writes < 100, "rows reach the destination in batches, not in {writes} writes");
    let rule = h.pipeline.rules().rules[0].clone();
    assert_eq!(rule.metrics.matched.load(Ordering::Relaxed), 3000);
    assert_eq!(rule.metrics.actions_success.load(Ordering::Relaxed), 3000);
    until("an empty queue", || intake.queued() == 0).await;
    h.pipeline.stop().await;
}

/// Rows the destination refuses are counted as failed; the others are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_rows_fail_alone() {
    let rule = r#"INSERT INTO mem SELECT payload.n AS n, payload.bad AS bad FROM "t/#""#;
    let h = start(rule, delivery(), intake::QUEUE);
    let payload = |n: i32| match n % 10 {
        0 => format!(r#"{{"n": {n}, "bad": true}}"#),
        _ => format!(r#"{{"n": {n}}}"#),
    };
    let _ = h.pipeline.intake().offer((0..100).map(|n| msg("t/a", payload(n))).collect());
    until("every row confirmed or refused", || h.sink_metric("mem", "success") + h.sink_metric("mem", "failed") == 100)
        .await;
    assert_eq!(h.sink_metric("mem", "failed"), 10);
    assert_eq!(h.mem.len(), 90);
    assert!(h.mem.rows.lock().iter().all(|r| r.get("bad").is_none()));
    h.pipeline.stop().await;
}

/// A destination that is down fills its buffer; the rules then wait and their queue fills, so
/// the intake stays full and a publisher that honours it stops. When the destination comes
/// back, every row is delivered and the queue empties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_pushes_back_to_the_intake_and_loses_nothing() {
    let small = DeliveryConfig { max_buffer_bytes: 64 * 1024, buffer_full: FullPolicy::Block, ..delivery() };
    let h = start(r#"INSERT INTO mem SELECT payload AS p FROM "t/#""#, small, 256);
    h.mem.down.store(true, Ordering::Relaxed);
    let intake = h.pipeline.intake();
    let text = "x".repeat(200);
    let burst = |from: usize| (from..from + 100).map(|i| msg("t/a", format!(r#"{{"i": {i}, "s": "{text}"}}"#)));
    // A publisher: it offers a burst, then waits while the intake is full or the sink its
    // messages feed holds too many rows.
    let mut feeds = Vec::new();
    let room = async |patience: Duration, feeds: &[String]| {
        let deadline = tokio::time::Instant::now() + patience;
        let waits = |feeds: &[String]| intake.is_full() || intake.is_blocked_by(feeds);
        while waits(feeds) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        !waits(feeds)
    };
    let mut offered = 0;
    while offered < 4000 && room(Duration::from_secs(1), &feeds).await {
        feeds = h.pipeline.intake().offer(burst(offered).collect());
        offered += 100;
    }
    assert!(offered < 4000, "a destination that is down holds the rules' rows, then stops the publisher");
    assert_eq!(feeds, ["mem"]);
    assert!(h.mem.is_empty());
    assert!(intake.held() >= 256, "{}", intake.held());
    h.mem.down.store(false, Ordering::Relaxed);
    while offered < 4000 {
        assert!(room(Duration::from_secs(30), &feeds).await, "the intake has room again");
        feeds = h.pipeline.intake().offer(burst(offered).collect());
        offered += 100;
    }
    until("4000 rows", || h.mem.len() == 4000).await;
    until("an empty queue", || h.pipeline.intake().queued() == 0).await;
    until("no rows held", || h.pipeline.intake().held() == 0).await;
    assert_eq!(h.sink_metric("mem", "dropped"), 0);
    h.pipeline.stop().await;
}

/// Events reach the rules that select them, and only those are built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_rules_that_select_them() {
    let rule = r#"INSERT INTO mem SELECT clientid, event FROM "$events/client_connected""#;
    let h = start(rule, delivery(), intake::QUEUE);
    let intake = h.pipeline.intake();
    assert!(intake.wants_event(crate::event_kind::EventKind::ClientConnected));
    assert!(!intake.wants_event(crate::event_kind::EventKind::ClientDisconnected));
    let columns = crate::value::Columns::from([("clientid".to_string(), Value::Str("dev-1".into()))]);
    intake.emit(crate::event_kind::EventKind::ClientConnected, columns);
    until("the event's row", || h.mem.len() == 1).await;
    let row = h.mem.rows.lock()[0].clone();
    assert_eq!(row.get("clientid").and_then(|v| v.as_str()), Some("dev-1"));
    assert_eq!(row.get("event").and_then(|v| v.as_str()), Some("client.connected"));
    h.pipeline.stop().await;
}

/// A rule that panics on a message fails that batch's rows alone, counted; the next batch runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_rule_fails_its_batch_and_the_rules_go_on() {
    let h = start(r#"INSERT INTO mem SELECT panic_in_test(payload.s) AS s FROM "t/#""#, delivery(), intake::QUEUE);
    let intake = h.pipeline.intake();
    let rule = h.pipeline.rules().rules[0].clone();
    let _ = intake.offer(vec![msg("t/1", r#"{"s": "a"}"#.into()), msg("t/1", r#"{"s": "boom"}"#.into())]);
    until("the first batch counted", || rule.metrics.matched.load(Ordering::Relaxed) == 2).await;
    assert_eq!(rule.metrics.failed_exception.load(Ordering::Relaxed), 2, "the whole batch failed");
    let _ = intake.offer(vec![msg("t/1", r#"{"s": "b"}"#.into()), msg("t/1", r#"{"s": "c"}"#.into())]);
    until("the next batch's rows", || h.mem.len() == 2).await;
    let got: Vec<String> =
        h.mem.rows.lock().iter().map(|r| r.get("s").and_then(|v| v.as_str()).unwrap().to_string()).collect();
    assert_eq!(got, ["b", "c"]);
    assert_eq!(intake.restarts(), 0, "caught in the rule, not by the supervisor");
    h.pipeline.stop().await;
}

/// A panic outside any rule ends the runner; its supervisor starts it again on the same queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_thread_restarts_after_a_panic() {
    let h = start(r#"INSERT INTO mem SELECT payload.n AS n FROM "t/#""#, delivery(), intake::QUEUE);
    let intake = h.pipeline.intake();
    let _ = intake.offer(vec![poisoned()]);
    until("a restart", || intake.restarts() == 1).await;
    let _ = intake.offer((0..10).map(|n| msg("t/1", format!(r#"{{"n": {n}}}"#))).collect());
    until("the rows after the restart", || h.mem.len() == 10).await;
    until("an empty queue", || intake.queued() == 0).await;
    h.pipeline.stop().await;
}

/// Stopping runs what is still queued into the sink's buffer first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_drains_the_queue_into_the_buffer() {
    let h = start(r#"INSERT INTO mem SELECT payload.n AS n FROM "t/#""#, delivery(), intake::QUEUE);
    h.mem.down.store(true, Ordering::Relaxed);
    let intake = h.pipeline.intake();
    for burst in 0..50 {
        let _ = intake.offer((0..100).map(|i| msg("t/1", format!(r#"{{"n": {}}}"#, burst * 100 + i))).collect());
    }
    h.pipeline.stop().await;
    let rule = h.pipeline.rules().rules[0].clone();
    assert_eq!(rule.metrics.matched.load(Ordering::Relaxed), 5000, "every queued message ran");
    assert_eq!(rule.metrics.actions_success.load(Ordering::Relaxed), 5000, "and its row is in the buffer");
    assert_eq!(intake.queued(), 0);
}

/// The queue counts bytes as well as messages: a few large payloads fill it long before the
/// message bound, and publishers pause until the rule thread takes them.
#[tokio::test]
async fn large_payloads_fill_the_queue_by_their_bytes() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sinks = Arc::new(Sinks::start(&BTreeMap::new(), dir.path().into()).expect("no sinks"));
    let book = Arc::new(RuleBook::load(dir.path().into(), sinks, Arc::default(), Vec::new()));
    // Nothing takes from this queue: the test plays the rule thread.
    let (intake, _queue) = Intake::new(book, intake::QUEUE);
    let mib = |n: usize| msg("t/1", "x".repeat(n * 1024 * 1024));
    let _ = intake.offer(vec![mib(40)]);
    assert!(!intake.is_full(), "40 MiB in 1 message");
    let _ = intake.offer(vec![mib(30)]);
    assert!(intake.is_full(), "70 MiB in 2 messages: {} bytes queued", intake.queued_bytes());
    assert_eq!(intake.queued(), 2);
    intake.taken(1, 40 * 1024 * 1024);
    assert!(!intake.is_full(), "the rule thread took 40 MiB");
    assert_eq!(intake.queued_bytes(), 30 * 1024 * 1024);
}

/// The broker's write-ahead, as the pipeline sees it: the ids it was told to forget.
#[derive(Debug, Default)]
struct Log(parking_lot::Mutex<Vec<u64>>);

impl write_ahead::InputLog for Log {
    fn ran(&self, ids: Vec<u64>) {
        self.0.lock().extend(ids);
    }
}

/// A written-ahead message is let go once its rows are in the sink's buffer, not while a full
/// buffer keeps them in memory; then each is let go once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_ahead_messages_are_let_go_once_their_rows_are_in_the_buffer() {
    let small = DeliveryConfig { max_buffer_bytes: 64 * 1024, buffer_full: FullPolicy::Block, ..delivery() };
    let h = start(r#"INSERT INTO mem SELECT payload AS p FROM "t/#""#, small, 100_000);
    let log = Arc::new(Log::default());
    h.pipeline.keep_input_in(log.clone());
    h.mem.down.store(true, Ordering::Relaxed);
    let intake = h.pipeline.intake();
    let text = "x".repeat(200);
    let kept = |id: u64| -> Message {
        let payload = format!(r#"{{"i": {id}, "s": "{text}"}}"#).into_bytes();
        Arc::new(Msg { topic: "t/a".into(), payload, poisoned: false, kept: Some(id) })
    };
    for burst in 0..20 {
        let _ = intake.offer((burst * 100..burst * 100 + 100).map(kept).collect());
    }
    until("rows held for the full buffer", || intake.held() > 0).await;
    tokio::time::sleep(write_ahead::SETTLE + Duration::from_millis(500)).await;
    let early = log.0.lock().len();
    assert!(early < 2000, "the rows held in memory keep their messages: {early} let go");
    h.mem.down.store(false, Ordering::Relaxed);
    until("2000 rows", || h.mem.len() == 2000).await;
    until("every message let go", || log.0.lock().len() >= 2000).await;
    let mut ids = log.0.lock().clone();
    ids.sort_unstable();
    assert_eq!(ids, (0..2000).collect::<Vec<u64>>(), "each once");
    h.pipeline.stop().await;
}

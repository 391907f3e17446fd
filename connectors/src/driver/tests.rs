//! The driver against a destination in memory.

use super::*;
use crate::testing::MemorySink as Memory;

fn delivery() -> DeliveryConfig {
    DeliveryConfig { batch_size: 10, batch_time_ms: 1, max_retry_backoff_ms: 50, ..DeliveryConfig::default() }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn push(h: &SinkHandle, rows: impl Iterator<Item = String>) {
    let rows: RowBatch = rows.collect();
    assert_eq!(h.push(&rows, 0), rows.len());
}

#[tokio::test]
async fn rows_wait_out_an_outage_and_refused_rows_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(Memory::default());
    mem.down.store(true, Ordering::Relaxed);
    let h = start("s", "memory", mem.clone(), &delivery(), &dir.path().join("s")).unwrap();
    let dl_mem = Arc::new(Memory::default());
    let dl = start("dl", "memory", dl_mem.clone(), &delivery(), &dir.path().join("dl")).unwrap();
    h.set_dead_letter(dl.clone());
    push(&h, (0..95).map(|i| if i == 42 { r#"{"bad":true}"#.to_string() } else { format!(r#"{{"i":{i}}}"#) }));
    until("a retry", || mem.writes.load(Ordering::Relaxed) > 2).await;
    assert_eq!(h.health(), Health::Disconnected);
    let m: BTreeMap<_, _> = h.snapshot().into_iter().collect();
    assert_eq!((m["inflight"], m["queuing"]), (10, 85), "one batch probes a destination that is down");
    assert!(mem.rows.lock().is_empty());
    mem.down.store(false, Ordering::Relaxed);
    until("delivery", || mem.rows.lock().len() == 94).await;
    until("the dead letter", || dl_mem.rows.lock().len() == 1).await;
    assert_eq!(h.health(), Health::Connected);
    let letter = dl_mem.rows.lock()[0].clone();
    assert_eq!(letter.get("reason").unwrap(), "bad row");
    assert_eq!(letter.get("row").unwrap(), &serde_json::json!({"bad": true}));
    let mut seen: Vec<i64> = mem.rows.lock().iter().map(|r| r.get("i").unwrap().as_i64().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..95).filter(|&i| i != 42).collect::<Vec<_>>());
    until("the buffer to empty", || h.buffer.pending().0 == 0).await;
    let m: BTreeMap<_, _> = h.snapshot().into_iter().collect();
    assert_eq!((m["matched"], m["success"], m["failed"], m["queuing"], m["inflight"]), (95, 94, 1, 0, 0));
    assert!(m["retried"] > 0);
}

/// A failure that is most likely the row's fault is retried a few times, not forever, and
/// the row then goes to the dead letter as refused rows do; the others are delivered.
#[tokio::test]
async fn suspect_rows_are_refused_after_a_few_tries() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(Memory::default());
    let h = start("s", "memory", mem.clone(), &delivery(), &dir.path().join("s")).unwrap();
    let dl_mem = Arc::new(Memory::default());
    let dl = start("dl", "memory", dl_mem.clone(), &delivery(), &dir.path().join("dl")).unwrap();
    h.set_dead_letter(dl.clone());
    push(&h, (0..20).map(|i| if i == 7 { r#"{"nowhere":7}"#.to_string() } else { format!(r#"{{"i":{i}}}"#) }));
    until("the dead letter", || dl_mem.rows.lock().len() == 1).await;
    until("delivery", || mem.rows.lock().len() == 19).await;
    assert_eq!(dl_mem.rows.lock()[0].get("reason").unwrap(), "unknown topic");
    let m: BTreeMap<_, _> = h.snapshot().into_iter().collect();
    assert_eq!((m["success"], m["failed"]), (19, 1));
    assert_eq!(m["retried"], u64::from(SUSPECT_TRIES - 1), "retried, but not forever");
}

/// A sink's directory where a stopped run left rows `{"i":0}` to `{"i":29}` undelivered.
async fn left_undelivered() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(Memory::default());
    mem.down.store(true, Ordering::Relaxed);
    let h = start("s", "memory", mem, &delivery(), dir.path()).unwrap();
    push(&h, (0..30).map(|i| format!(r#"{{"i":{i}}}"#)));
    h.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    dir
}

#[tokio::test]
async fn unconfirmed_rows_are_delivered_after_a_restart() {
    let dir = left_undelivered().await;
    let again = Arc::new(Memory::default());
    let h = start("s", "memory", again.clone(), &delivery(), dir.path()).unwrap();
    until("redelivery", || again.rows.lock().len() >= 30).await;
    assert_eq!(h.snapshot()[0], ("matched", 30));
}

#[tokio::test]
async fn rows_lost_to_a_damaged_disk_are_counted_and_the_rest_delivered() {
    let dir = left_undelivered().await;
    // A flipped bit in row 10 (rows 0..10 are 8 + 7 bytes each, "{"i":0}" to "{"i":9}").
    let segment = dir.path().join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[10 * 15 + 8 + 3] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let again = Arc::new(Memory::default());
    let h = start("s", "memory", again.clone(), &delivery(), dir.path()).unwrap();
    until("delivery", || again.rows.lock().len() >= 29).await;
    until("the buffer to empty", || h.buffer.pending().0 == 0).await;
    let seen: Vec<i64> = again.rows.lock().iter().map(|r| r.get("i").unwrap().as_i64().unwrap()).collect();
    assert_eq!(seen, (0..30).filter(|&i| i != 10).collect::<Vec<_>>());
    let m: BTreeMap<_, _> = h.snapshot().into_iter().collect();
    assert_eq!((m["matched"], m["success"], m["dropped.other"]), (30, 29, 1));
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter() {
    for (attempt, full) in [(0u32, 100u64), (1, 200), (3, 800), (12, 5000)] {
        let d = backoff(attempt, 5000).as_millis() as u64;
        assert!(d <= full && d >= full / 2, "attempt {attempt}: {d}");
    }
}

//! A sink's counters, named as EMQX names an action's:
//! `matched = success + failed + inflight + queuing + dropped`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one sink. Relaxed atomics: statistics, read by the API and Prometheus.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Rows handed to the sink (those a previous run left in the buffer included).
    pub matched: AtomicU64,
    /// Rows the destination confirmed.
    pub success: AtomicU64,
    /// Rows the destination refused for good (dead-lettered when a dead letter is configured).
    pub failed: AtomicU64,
    /// Rows in batches being written now.
    pub inflight: AtomicU64,
    /// Rows dropped because the buffer was full (policy `drop_oldest`).
    pub dropped_queue_full: AtomicU64,
    /// Rows that could not be written to the buffer (a disk error) or read back from it.
    pub dropped_other: AtomicU64,
    /// Batches written again after a transient error.
    pub retried: AtomicU64,
    /// Rows confirmed on a retry (part of `success`).
    pub retried_success: AtomicU64,
}

impl SinkMetrics {
    /// Adds `n` to one of the counters.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// `(name, value)` pairs in EMQX's naming; `queuing` is the buffer's rows waiting their turn
    /// and `bytes` its size on disk.
    pub fn snapshot(&self, queuing: u64, bytes: u64) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let inflight = get(&self.inflight);
        let (queue_full, other) = (get(&self.dropped_queue_full), get(&self.dropped_other));
        vec![
            ("matched", get(&self.matched)),
            ("success", get(&self.success)),
            ("failed", get(&self.failed)),
            ("inflight", inflight),
            ("queuing", queuing),
            ("queuing_bytes", bytes),
            ("dropped", queue_full + other),
            ("dropped.queue_full", queue_full),
            ("dropped.other", other),
            ("retried", get(&self.retried)),
            ("retried.success", get(&self.retried_success)),
        ]
    }
}

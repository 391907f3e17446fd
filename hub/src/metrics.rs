//! Broker-wide counters, named after EMQX's metrics; read by `$SYS` and the management API.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters and gauges. Relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    /// Messages dropped because a session queue was full (`messages.dropped.queue_full`).
    pub dropped_queue_full: AtomicU64,
    /// Messages dropped because they expired before delivery (`messages.dropped.expired`).
    pub dropped_expired: AtomicU64,
    /// Messages that matched no subscription (`messages.dropped.no_subscribers`).
    pub dropped_no_subscribers: AtomicU64,
    /// Messages larger than the receiving client's Maximum Packet Size (`delivery.dropped.too_large`).
    pub dropped_too_large: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
}

impl Metrics {
    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

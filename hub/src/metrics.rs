//! Broker-wide counters, named after EMQX's metrics; read by `$SYS` and the management API.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters and gauges. Relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Clients connected now (`connections.count`).
    pub connections: AtomicU64,
    /// Connections accepted since the start.
    pub connections_total: AtomicU64,
    /// PUBLISHes received from clients, and messages republished by sinks (`messages.received`).
    pub messages_received: AtomicU64,
    /// PUBLISHes sent to clients (`messages.sent`).
    pub messages_sent: AtomicU64,
    /// Messages dropped because a session queue was full (`messages.dropped.queue_full`).
    pub dropped_queue_full: AtomicU64,
    /// Messages dropped because they expired before delivery (`messages.dropped.expired`).
    pub dropped_expired: AtomicU64,
    /// Messages that matched no subscription (`messages.dropped.no_subscribers`).
    pub dropped_no_subscribers: AtomicU64,
    /// Messages larger than the receiving client's Maximum Packet Size (`delivery.dropped.too_large`).
    pub dropped_too_large: AtomicU64,
    /// Bytes read from clients (`bytes.received`).
    pub bytes_received: AtomicU64,
    /// Bytes written to clients (`bytes.sent`).
    pub bytes_sent: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

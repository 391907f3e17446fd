//! The delivery driver: the one loop between a sink's durable buffer and its destination.
//!
//! Rows are appended to the buffer by [`SinkHandle::push`]. The driver reads them back in
//! batches (by rows, bytes and time), writes up to `max_inflight` batches at once (one until
//! the destination has confirmed a write), and trims the buffer only up to the first batch not
//! yet confirmed, so that a crash delivers every unconfirmed row again. A transient error
//! retries the batch, waiting 100 ms, 200 ms, ... up to `max_retry_backoff_ms`, each wait
//! shortened at random by up to half (jitter), forever: the buffer's bound, not a timeout,
//! decides when rows stop coming. A refused batch is split until the refused rows are found;
//! each is counted as failed, its reason logged once, and written to the dead letter sink when
//! there is one. A failure that is most likely the rows' fault (a Kafka topic, named by the row,
//! that does not exist) is retried [`SUSPECT_TRIES`] times in all, then treated as a refusal.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::buffer::{Appended, Buffer, BufferError, BufferedBatch, FullPolicy, Reader};
use crate::metrics::SinkMetrics;
use crate::row::{Row, RowBatch};
use crate::sink::{Health, Sink, WriteError};

/// First wait before a retry; it doubles up to the configured maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often written rows are flushed to the disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How long a stopping driver lets the batches being written finish, so that a clean stop
/// delivers none of them twice after the restart; past it, they are abandoned (and delivered
/// again then).
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Tries of a batch whose failure is most likely its rows' fault ([`WriteError::Suspect`])
/// before it is treated as refused.
const SUSPECT_TRIES: u32 = 4;
/// Distinct refusal reasons logged per sink; past this, refusals are only counted.
const REASONS_LOGGED: usize = 100;

/// How rows reach any destination. Keys sit beside the destination's own in `[sinks.<name>]`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Rows per batch written to the destination (500; when not set, 2,000 for Kafka and
    /// 10,000 for PostgreSQL).
    pub batch_size: usize,
    /// A batch is closed once its rows reach this many bytes (as buffered JSON).
    pub batch_bytes: usize,
    /// How long a batch waits for more rows once its first row is in (milliseconds).
    pub batch_time_ms: u64,
    /// Batches written at the same time. More than 1 may reorder rows, as in EMQX.
    pub max_inflight: usize,
    /// Bound of the durable buffer on disk, in bytes.
    pub max_buffer_bytes: u64,
    /// When the buffer is full: `block` (pause the rules, then the publishers) or `drop_oldest`.
    pub buffer_full: FullPolicy,
    /// Another sink that receives the rows this one's destination refuses, with the reason.
    pub dead_letter: Option<String>,
    /// Seconds between two checks of the destination while nothing is written.
    pub health_check_interval: u64,
    /// Longest wait between two retries of a batch (milliseconds); waits double from 100 ms.
    pub max_retry_backoff_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            batch_size: 500,
            batch_bytes: 1024 * 1024,
            batch_time_ms: 10,
            max_inflight: 4,
            max_buffer_bytes: 256 * 1024 * 1024,
            buffer_full: FullPolicy::Block,
            dead_letter: None,
            health_check_interval: 15,
            max_retry_backoff_ms: 30_000,
        }
    }
}

/// A running sink, as the rule engine and the API see it.
#[derive(Debug)]
pub struct SinkHandle {
    /// The sink's name, from `[sinks.<name>]`.
    pub name: String,
    /// `kafka`, `postgres`, ...
    pub kind: &'static str,
    /// Its counters, as EMQX names an action's.
    pub metrics: SinkMetrics,
    buffer: Buffer,
    /// A [`Health`], as `u8`: read by the API while the driver writes it.
    health: AtomicU8,
    /// Where refused rows go, set once every sink exists.
    dead_letter: OnceLock<Arc<SinkHandle>>,
    /// Set by [`SinkHandle::stop`]; the driver then flushes the buffer and ends.
    stopped: AtomicBool,
    /// Wakes the driver when it is stopped.
    stop: Notify,
    /// Whether the last append failed on a disk error, so that the error is logged once.
    disk_failing: AtomicBool,
    /// The driver's task, taken by [`SinkHandle::stopped`] to wait for it.
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SinkHandle {
    /// Appends the rows of `rows` from row `from` on to the buffer; returns how many were
    /// taken. Under `block`, a full buffer takes fewer than all: wait with
    /// [`SinkHandle::wait_for_space`] and push the rest. So does a disk error (a full disk):
    /// it is logged when it starts and when it ends, and the caller tries again. Under
    /// `drop_oldest`, a row that cannot be written after the oldest rows were deleted for room
    /// is taken, counted as `dropped.other` and logged. A row larger than the whole buffer is
    /// always taken that way.
    pub fn push(&self, rows: &RowBatch, from: usize) -> usize {
        let mut taken = 0;
        while from + taken < rows.len() {
            let Appended { written, dropped, failed } = self.buffer.append(rows, from + taken);
            SinkMetrics::add(&self.metrics.matched, written as u64);
            SinkMetrics::add(&self.metrics.dropped_queue_full, dropped);
            taken += written;
            let Some(e) = failed else {
                if written > 0 && self.disk_failing.swap(false, Ordering::Relaxed) {
                    info!(sink = %self.name, "the sink buffer takes rows again");
                }
                break;
            };
            if matches!(e, BufferError::Io { .. }) && self.buffer.policy() == FullPolicy::Block {
                if !self.disk_failing.swap(true, Ordering::Relaxed) {
                    warn!(sink = %self.name, error = %e, "cannot write to the sink buffer: the rules that write into it wait, and then their publishers, until it can");
                }
                break;
            }
            SinkMetrics::add(&self.metrics.matched, 1);
            SinkMetrics::add(&self.metrics.dropped_other, 1);
            warn!(sink = %self.name, error = %e, "row not buffered: dropped");
            taken += 1;
        }
        taken
    }

    /// Resolves once the buffer has confirmed or dropped rows, so that room may have appeared.
    /// Create it before the push that found the buffer full, so no wake-up is missed.
    pub fn wait_for_space(&self) -> tokio::sync::futures::Notified<'_> {
        self.buffer.space.notified()
    }

    /// The destination's state, as the last write or check found it.
    pub fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }

    /// Sets the sink that receives this one's refused rows.
    pub fn set_dead_letter(&self, sink: Arc<SinkHandle>) {
        let _ = self.dead_letter.set(sink);
    }

    /// The counters in EMQX's naming, with the buffer's gauges.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let (_, bytes) = self.buffer.pending();
        self.metrics.snapshot(self.buffer.unread(), bytes)
    }

    /// How full the buffer is, from 0 to 1 (pending bytes over `max_buffer_bytes`).
    pub fn buffer_fill(&self) -> f64 {
        let (_, bytes) = self.buffer.pending();
        bytes as f64 / self.buffer.capacity().max(1) as f64
    }

    /// Stops delivering: the batches being written get [`STOP_GRACE`] to finish, and are then
    /// abandoned (their rows stay buffered); what was confirmed is recorded and the buffer
    /// flushed. [`SinkHandle::stopped`] waits for that.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.stop.notify_waiters();
    }

    /// Resolves once the driver has ended after [`SinkHandle::stop`], or after `limit`.
    pub async fn stopped(&self, limit: Duration) {
        let task = self.task.lock().take();
        if let Some(task) = task {
            if tokio::time::timeout(limit, task).await.is_err() {
                warn!(sink = %self.name, "the sink did not stop in time: stopping without it");
            }
        }
    }

    fn set_health(&self, h: Health) {
        let before = Health::from_u8(self.health.swap(h as u8, Ordering::Relaxed));
        if before != h {
            info!(sink = %self.name, from = before.as_str(), to = h.as_str(), "sink status");
        }
    }
}

/// Opens the sink's buffer in `dir` and starts delivering it to `sink` on the current runtime.
pub fn start<S: Sink>(
    name: &str,
    kind: &'static str,
    sink: S,
    delivery: &DeliveryConfig,
    dir: &Path,
) -> Result<Arc<SinkHandle>, BufferError> {
    let buffer = Buffer::open(dir, delivery.max_buffer_bytes, delivery.buffer_full)?;
    let (pending, _) = buffer.pending();
    if pending > 0 {
        info!(sink = name, rows = pending, "sink buffer holds rows from a previous run: delivering them");
    }
    let handle = Arc::new(SinkHandle {
        name: name.to_string(),
        kind,
        metrics: SinkMetrics::default(),
        buffer,
        health: AtomicU8::new(Health::Connecting as u8),
        dead_letter: OnceLock::new(),
        stopped: AtomicBool::new(false),
        stop: Notify::new(),
        disk_failing: AtomicBool::new(false),
        task: parking_lot::Mutex::new(None),
    });
    SinkMetrics::add(&handle.metrics.matched, pending);
    let driver =
        Driver { handle: handle.clone(), sink: Arc::new(sink), delivery: delivery.clone(), reasons: Arc::default() };
    *handle.task.lock() = Some(tokio::spawn(driver.run()));
    Ok(handle)
}

struct Driver<S> {
    handle: Arc<SinkHandle>,
    sink: Arc<S>,
    delivery: DeliveryConfig,
    /// Refusal reasons already logged, so that each is logged once.
    reasons: Arc<parking_lot::Mutex<HashSet<String>>>,
}

/// A batch read from the buffer: rows `first..end`.
struct Batch {
    first: u64,
    end: u64,
    rows: Vec<Row>,
}

/// Where the delivery of the buffer stands.
struct Progress {
    reader: Reader,
    /// Every row below this is confirmed (or dropped), and the buffer knows it.
    acked: u64,
    /// Batches being written; aborted if the driver stops.
    inflight: JoinSet<(u64, u64)>,
    /// Batches confirmed out of order, waiting for the ones before them: first → end.
    confirmed: BTreeMap<u64, u64>,
}

impl<S: Sink> Driver<S> {
    async fn run(self) {
        let h = &self.handle;
        let reader = h.buffer.reader();
        let mut p = Progress { acked: reader.position(), reader, inflight: JoinSet::new(), confirmed: BTreeMap::new() };
        let mut sync = tokio::time::interval(SYNC_EVERY);
        let mut health = tokio::time::interval(Duration::from_secs(self.delivery.health_check_interval.max(1)));
        loop {
            let data = h.buffer.data.notified();
            let stop = h.stop.notified();
            tokio::pin!(data, stop);
            data.as_mut().enable();
            stop.as_mut().enable();
            if h.stopped.load(Ordering::Relaxed) {
                self.finish(&mut p).await;
                return;
            }
            if h.buffer.end() > p.reader.position() && self.has_room(&p) {
                self.launch(&mut p).await;
                // A backlog would keep this branch busy: the batches' tasks and the rest of the
                // runtime get their turn after each launch.
                tokio::task::yield_now().await;
            } else {
                tokio::select! {
                    () = &mut stop => continue,
                    Some(Ok((first, end))) = p.inflight.join_next(), if !p.inflight.is_empty() => {
                        p.confirmed.insert(first, end);
                    }
                    () = &mut data => {}
                    _ = sync.tick() => self.sync(),
                    _ = health.tick() => {
                        if p.inflight.is_empty() {
                            let checked = self.sink.check().await;
                            h.set_health(if checked.is_ok() { Health::Connected } else { Health::Disconnected });
                        }
                    }
                }
            }
            self.settle(&mut p);
        }
    }

    /// Whether another batch may be written now. Until the destination is known to be up, one
    /// batch probes it and the rest wait in the buffer, where its bound and `drop_oldest`
    /// apply, instead of each retrying in memory.
    fn has_room(&self, p: &Progress) -> bool {
        let max_inflight = self.delivery.max_inflight.max(1);
        p.inflight.is_empty() || (p.inflight.len() < max_inflight && self.handle.health() == Health::Connected)
    }

    /// Reads the next batch (letting a short one fill for `batch_time_ms`) and starts writing it.
    async fn launch(&self, p: &mut Progress) {
        let h = &self.handle;
        let linger = Duration::from_millis(self.delivery.batch_time_ms);
        if (h.buffer.end() - p.reader.position()) < self.delivery.batch_size as u64 && !linger.is_zero() {
            tokio::time::sleep(linger).await;
        }
        let read = match h.buffer.read(&mut p.reader, self.delivery.batch_size, self.delivery.batch_bytes) {
            Ok(read) => read,
            Err(e) => {
                warn!(sink = %h.name, error = %e, "cannot read the sink buffer; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
                p.reader = h.buffer.reader();
                return;
            }
        };
        let Some(batch) = self.decode(read) else { return };
        if batch.rows.is_empty() {
            p.confirmed.insert(batch.first, batch.end);
            return;
        }
        SinkMetrics::add(&h.metrics.inflight, batch.rows.len() as u64);
        let (handle, sink, delivery, reasons) =
            (h.clone(), self.sink.clone(), self.delivery.clone(), self.reasons.clone());
        p.inflight.spawn(async move {
            let n = batch.rows.len() as u64;
            deliver(&handle, sink.as_ref(), &delivery, &reasons, batch.rows, SUSPECT_TRIES).await;
            handle.metrics.inflight.fetch_sub(n, Ordering::Relaxed);
            (batch.first, batch.end)
        });
    }

    /// Takes in the batches that finished and trims the buffer up to the first batch not yet
    /// confirmed.
    fn settle(&self, p: &mut Progress) {
        let h = &self.handle;
        while let Some(Ok((first, end))) = p.inflight.try_join_next() {
            p.confirmed.insert(first, end);
        }
        // Rows dropped from a full buffer (drop_oldest) are behind its own mark already.
        let before = p.acked;
        p.acked = p.acked.max(h.buffer.acked());
        while let Some((&first, &end)) = p.confirmed.first_key_value() {
            if first > p.acked {
                break;
            }
            p.acked = p.acked.max(end);
            p.confirmed.remove(&first);
        }
        if p.acked > before {
            if let Err(e) = h.buffer.ack(p.acked) {
                warn!(sink = %h.name, error = %e, "cannot record confirmed rows; they may be delivered again");
            }
        }
    }

    /// The batch's rows; a record that is not a JSON object (it cannot come from the engine) is
    /// counted as dropped and confirmed at once, as are rows the buffer lost to damage on disk.
    fn decode(&self, read: BufferedBatch) -> Option<Batch> {
        let (first, end) = (read.first, read.end());
        if first == end {
            return None;
        }
        if read.skipped > 0 {
            SinkMetrics::add(&self.handle.metrics.dropped_other, read.skipped);
            warn!(sink = %self.handle.name, rows = read.skipped, from = first, "rows lost to damage in the sink buffer: counted as dropped.other");
        }
        let mut rows = Vec::with_capacity(read.rows.len());
        let mut seq = first + read.skipped;
        Row::parse_all(read.rows, |row| {
            match row {
                Ok(row) => rows.push(row),
                Err(e) => {
                    SinkMetrics::add(&self.handle.metrics.dropped_other, 1);
                    warn!(sink = %self.handle.name, seq, error = %e, "unreadable row in the sink buffer: dropped");
                }
            }
            seq += 1;
        });
        Some(Batch { first, end, rows })
    }

    /// The end of a stop: lets the batches being written finish (within [`STOP_GRACE`]),
    /// records what was confirmed, and flushes the buffer.
    async fn finish(&self, p: &mut Progress) {
        let grace = tokio::time::sleep(STOP_GRACE);
        tokio::pin!(grace);
        while !p.inflight.is_empty() {
            tokio::select! {
                Some(Ok((first, end))) = p.inflight.join_next() => {
                    p.confirmed.insert(first, end);
                }
                () = &mut grace => break,
            }
        }
        self.settle(p);
        self.sync();
    }

    fn sync(&self) {
        if let Err(e) = self.handle.buffer.sync() {
            warn!(sink = %self.handle.name, error = %e, "cannot flush the sink buffer to disk");
        }
    }
}

/// Writes `rows` until the destination confirms or refuses each of them.
async fn deliver<S: Sink>(
    h: &Arc<SinkHandle>,
    sink: &S,
    delivery: &DeliveryConfig,
    reasons: &parking_lot::Mutex<HashSet<String>>,
    rows: Vec<Row>,
    suspect_tries: u32,
) {
    if rows.is_empty() {
        return;
    }
    let mut attempt = 0u32;
    loop {
        let written = match sink.write(&rows).await {
            // Retried as transient until tried enough; then the rows are at fault.
            Err(WriteError::Suspect { reason }) if attempt + 1 < suspect_tries => {
                Err(WriteError::Transient { reason, retry_after: None })
            }
            other => other,
        };
        match written {
            Ok(()) => {
                h.set_health(Health::Connected);
                SinkMetrics::add(&h.metrics.success, rows.len() as u64);
                if attempt > 0 {
                    SinkMetrics::add(&h.metrics.retried_success, rows.len() as u64);
                }
                return;
            }
            Err(WriteError::Transient { reason, retry_after }) => {
                h.set_health(Health::Disconnected);
                let wait = retry_after.unwrap_or_else(|| backoff(attempt, delivery.max_retry_backoff_ms));
                if attempt == 0 || attempt.is_power_of_two() {
                    warn!(sink = %h.name, rows = rows.len(), attempt, error = %reason, retry_in_ms = wait.as_millis() as u64, "sink write failed; the rows stay buffered and are retried");
                }
                SinkMetrics::add(&h.metrics.retried, 1);
                tokio::time::sleep(wait).await;
                attempt = attempt.saturating_add(1);
            }
            Err(WriteError::Rejected { reason } | WriteError::Suspect { reason }) if rows.len() > 1 => {
                // Split the batch to find the refused rows; the others are delivered.
                let mut rows = rows;
                let second = rows.split_off(rows.len() / 2);
                tracing::debug!(sink = %h.name, error = %reason, rows = rows.len() + second.len(), "batch refused: splitting it");
                // The halves were tried as part of the whole: a suspect failure refuses at once.
                Box::pin(deliver(h, sink, delivery, reasons, rows, 1)).await;
                Box::pin(deliver(h, sink, delivery, reasons, second, 1)).await;
                return;
            }
            Err(WriteError::Rejected { reason } | WriteError::Suspect { reason }) => {
                refused(h, reasons, &reason, rows.into_iter().next());
                return;
            }
        }
    }
}

/// One row the destination refused: counted as failed, its reason logged the first time, and
/// written to the dead letter sink if there is one.
fn refused(h: &SinkHandle, reasons: &parking_lot::Mutex<HashSet<String>>, reason: &str, row: Option<Row>) {
    h.set_health(Health::Connected);
    SinkMetrics::add(&h.metrics.failed, 1);
    let first_time = {
        let mut seen = reasons.lock();
        seen.len() < REASONS_LOGGED && seen.insert(reason.to_string())
    };
    if first_time {
        warn!(sink = %h.name, error = %reason, "the destination refused a row (counted as failed; later rows refused for the same reason are only counted)");
    }
    dead_letter(h, reason, row);
}

/// Writes a refused row to the dead letter sink, if there is one, with why and whence.
fn dead_letter(h: &SinkHandle, reason: &str, row: Option<Row>) {
    let (Some(dl), Some(row)) = (h.dead_letter.get(), row) else { return };
    let letter = serde_json::json!({
        "sink": h.name,
        "reason": reason,
        "row": serde_json::from_str::<serde_json::Value>(row.json()).unwrap_or_default(),
        "timestamp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
    });
    if dl.push(&[letter.to_string()].into_iter().collect(), 0) == 0 {
        warn!(sink = %h.name, dead_letter = %dl.name, "the dead letter sink is full: a refused row is not kept");
    }
}

/// The wait before retry number `attempt + 1`: doubling from [`FIRST_BACKOFF`], capped, minus up
/// to half at random so that many sinks do not retry in step.
fn backoff(attempt: u32, max_ms: u64) -> Duration {
    let full = FIRST_BACKOFF.as_millis() as u64 * 2u64.saturating_pow(attempt.min(20));
    let capped = full.min(max_ms.max(1));
    let jitter = rand::rng().random_range(0..=capped / 2);
    Duration::from_millis(capped - jitter)
}

#[cfg(test)]
mod tests;

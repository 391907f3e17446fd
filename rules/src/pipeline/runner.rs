//! The rule thread's loop: it takes the queue in batches (up to [`BATCH`] messages or
//! [`BATCH_BYTES`] of payloads, or what came within [`BATCH_WAIT`] of the first), runs each rule once per batch on the messages its FROM
//! matched, in arrival order, and hands the output rows to the rule's sink, through the
//! [`Backlog`] that holds what a full sink refuses. Windows are closed on a timer of their own.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use weir_connectors::driver::SinkHandle;
use weir_connectors::row::RowBatch;

use super::backlog::{self, Backlog};
use super::intake::{Input, Intake};
use super::ruleset::{RuleBook, RuleSet};
use super::write_ahead::Ran;
use crate::active_rule::ActiveRule;
use crate::event_kind::EventKind;
use crate::plan::publish_batch::{Publish, PublishBatch};
use crate::plan::{BatchOutcome, Input as Rows};
use crate::value::Columns;
use crate::value::Value;

/// Messages evaluated per batch.
pub const BATCH: usize = 1024;
/// Bytes of payloads per batch, past which a batch takes no more input: evaluating copies a
/// batch's payloads a few times over (columns, decoded values, function results), so a batch
/// of large payloads must stay small.
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// How long a batch waits to fill once its first message is in: a rule's output comes at most
/// this late, and each rule's fixed cost per batch is shared by more messages.
pub const BATCH_WAIT: Duration = Duration::from_millis(1);
/// How often windows are checked for closing: a window's rows come at most this late.
const WINDOW_TICK: Duration = Duration::from_millis(100);
/// How long stopping may spend running what is still queued into the sinks' buffers.
pub const DRAIN: Duration = Duration::from_secs(5);
/// How often rows held for full sinks are offered to them again.
const RETRY_HELD: Duration = Duration::from_millis(10);

/// The rule thread's state.
pub(super) struct Runner {
    pub(super) book: Arc<RuleBook>,
    pub(super) intake: Arc<Intake>,
    /// The node's name, for the `node` column of events.
    pub(super) node: String,
    /// Rows that full sinks refused, waiting their turn. Only the rule thread touches it, and
    /// never across an await.
    pub(super) backlog: RefCell<Backlog>,
    /// The written-ahead messages run, until their rows are safe in the sinks' buffers.
    pub(super) ran: RefCell<Ran>,
}

/// How much a batch holds, against [`BATCH`] and [`BATCH_BYTES`].
struct Size {
    messages: usize,
    bytes: usize,
}

impl Size {
    fn of(batch: &[Input]) -> Size {
        Size { messages: batch.iter().map(Input::messages).sum(), bytes: batch.iter().map(Input::bytes).sum() }
    }

    fn has_room(&self) -> bool {
        self.messages < BATCH && self.bytes < BATCH_BYTES
    }

    /// Adds to `batch` what the queue holds now, while the batch has room.
    fn take_ready(&mut self, rx: &mut mpsc::UnboundedReceiver<Input>, batch: &mut Vec<Input>) {
        while self.has_room() {
            let Ok(input) = rx.try_recv() else { return };
            self.messages += input.messages();
            self.bytes += input.bytes();
            batch.push(input);
        }
    }
}

/// Where a queued input went in a batch: a row of the publishes' input, or an event.
#[derive(Clone, Copy)]
enum Slot {
    Publish(u32),
    Event(usize),
}

/// A batch sorted out for the rules.
struct Sorted {
    /// The publishes some rule matched, as one input.
    publishes: Rows,
    /// The events some rule selects, with their columns.
    events: Vec<Columns>,
    /// For each rule, the rows of `publishes` and the positions in `events` it matched.
    per_rule: Vec<(Vec<u32>, Vec<usize>)>,
    /// The write-ahead ids of the batch's messages, matched or not (see `write_ahead`).
    written: Vec<u64>,
}

impl Runner {
    /// Evaluates queued messages in batches until the queue closes, or `stop` turns true: then
    /// what is queued runs too, within [`DRAIN`]. A batch in hand always finishes.
    pub(super) async fn run(&self, rx: &mut mpsc::UnboundedReceiver<Input>, stop: &mut watch::Receiver<bool>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut windows = tokio::time::interval(WINDOW_TICK);
        let mut retry = tokio::time::interval(RETRY_HELD);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let holding = !self.backlog.borrow().is_empty();
            tokio::select! {
                received = rx.recv() => {
                    let Some(first) = received else { return };
                    batch.push(first);
                    self.fill(rx, &mut batch).await;
                },
                _ = windows.tick() => {
                    self.close_windows().await;
                    self.let_go_of_run(false);
                    continue;
                }
                _ = retry.tick(), if holding => {
                    self.flush_held();
                    self.let_go_of_run(false);
                    continue;
                }
                () = stopping(stop) => {
                    self.drain(rx, batch).await;
                    return;
                }
            }
            self.flush_held();
            let set = self.book.current();
            self.run_batch(&set, &mut batch).await;
        }
    }

    /// Runs a batch through the rules, and accounts for its written-ahead messages.
    async fn run_batch(&self, set: &RuleSet, batch: &mut Vec<Input>) {
        let mut sorted = self.sort(set, batch.drain(..));
        self.evaluate(set, &sorted).await;
        self.ran.borrow_mut().add(std::mem::take(&mut sorted.written));
        self.let_go_of_run(false);
    }

    /// Tells the broker which written-ahead messages are safe in the sinks' buffers: those
    /// settled, or (`stopping`) all that are in them.
    fn let_go_of_run(&self, stopping: bool) {
        let Some(log) = self.intake.input_log() else { return };
        let mut ran = self.ran.borrow_mut();
        if self.backlog.borrow().is_empty() {
            ran.in_buffers(Instant::now());
        }
        let ids = if stopping { ran.all_in_buffers() } else { ran.settled(Instant::now()) };
        drop(ran);
        if !ids.is_empty() {
            log.ran(ids);
        }
    }

    /// Runs what is queued, batch by batch, for at most [`DRAIN`], and says what was left.
    async fn drain(&self, rx: &mut mpsc::UnboundedReceiver<Input>, mut batch: Vec<Input>) {
        let started = std::time::Instant::now();
        let ran = tokio::time::timeout(DRAIN, async {
            loop {
                let mut size = Size::of(&batch);
                size.take_ready(rx, &mut batch);
                if batch.is_empty() {
                    self.flush_held();
                    if self.backlog.borrow().is_empty() {
                        return;
                    }
                    tokio::time::sleep(RETRY_HELD).await;
                    continue;
                }
                self.intake.taken(size.messages, size.bytes);
                let set = self.book.current();
                self.run_batch(&set, &mut batch).await;
            }
        })
        .await;
        self.let_go_of_run(true);
        let (left, held) = (self.intake.queued(), self.backlog.borrow().rows());
        if held > 0 {
            tracing::warn!(
                held,
                "stopping: {held} rows for full sinks were not taken into their buffers, and are lost"
            );
        }
        if ran.is_ok() {
            tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                "stopping: every queued message ran through the rules"
            );
        } else {
            tracing::warn!(
                left,
                "stopping: {left} messages queued for the rules were not run within {} s (a sink's buffer is full?)",
                DRAIN.as_secs()
            );
        }
    }

    /// Takes what is ready; lets a short batch fill for [`BATCH_WAIT`] and takes what came
    /// without waiting more; tells the intake how much was taken.
    async fn fill(&self, rx: &mut mpsc::UnboundedReceiver<Input>, batch: &mut Vec<Input>) {
        let mut size = Size::of(batch);
        size.take_ready(rx, batch);
        if size.has_room() {
            tokio::time::sleep(BATCH_WAIT).await;
            size.take_ready(rx, batch);
        }
        self.intake.taken(size.messages, size.bytes);
    }

    /// Finds each input's rules and builds the batch's inputs: the publishes as one input built
    /// straight from the messages, the events with their columns.
    fn sort(&self, set: &RuleSet, batch: impl Iterator<Item = Input>) -> Sorted {
        let mut publishes = PublishBatch::new(&self.node, &set.publish_reads);
        let (mut published, mut events) = (0u32, Vec::new());
        // A connection stamps a whole read burst with one time: converted once.
        let mut stamp = (UNIX_EPOCH, 0);
        let mut matcher = Matcher { set, topic: String::new(), rules: Vec::new() };
        let mut per_rule = vec![Default::default(); set.rules.len()];
        let mut written = Vec::new();
        let logged = self.intake.input_log().is_some();
        for input in batch {
            match input {
                Input::Publishes(msgs) => {
                    for msg in msgs {
                        if let Some(id) = msg.write_ahead().filter(|_| logged) {
                            written.push(id);
                        }
                        if !matcher.assign(msg.topic(), msg.origin(), &mut per_rule, Slot::Publish(published)) {
                            continue;
                        }
                        if msg.received_at() != stamp.0 {
                            stamp = (msg.received_at(), unix_ms(msg.received_at()));
                        }
                        let properties = publishes.wants_properties().then(|| msg.properties()).flatten();
                        publishes.push(&Publish {
                            topic: msg.topic(),
                            payload: msg.payload(),
                            qos: msg.qos(),
                            clientid: msg.publisher(),
                            retain: msg.retain(),
                            properties: properties.as_ref(),
                            timestamp_ms: stamp.1,
                        });
                        published += 1;
                    }
                }
                Input::Event(kind, mut columns) => {
                    if matcher.assign(&kind.topic(), None, &mut per_rule, Slot::Event(events.len())) {
                        self.add_event_columns(kind, &mut columns);
                        events.push(*columns);
                    }
                }
            }
        }
        Sorted { publishes: publishes.finish(), events, per_rule, written }
    }

    /// Runs each rule once on the rows it matched, and hands its output to its sink.
    async fn evaluate(&self, set: &RuleSet, sorted: &Sorted) {
        for ((rule, target), (publish_rows, event_rows)) in set.rules.iter().zip(&set.targets).zip(&sorted.per_rule) {
            if !publish_rows.is_empty() {
                let all = publish_rows.len() == sorted.publishes.len();
                let out = rule.run_batch(&sorted.publishes, (!all).then_some(&publish_rows[..]));
                self.deliver(rule, target.as_ref(), &out).await;
            }
            if !event_rows.is_empty() {
                let rows: Vec<&Columns> = event_rows.iter().map(|&r| &sorted.events[r]).collect();
                for input in Rows::from_rows(&rows) {
                    let out = rule.run_batch(&input, None);
                    self.deliver(rule, target.as_ref(), &out).await;
                }
            }
        }
    }

    /// Hands a batch's output rows to the rule's sink, as JSON objects.
    async fn deliver(&self, rule: &ActiveRule, sink: Option<&Arc<SinkHandle>>, out: &BatchOutcome) {
        let Some(sink) = sink else { return };
        let mut rows = RowBatch::default();
        out.write_json_rows(&mut rows);
        self.write_rows(rule, sink, rows).await;
    }

    /// Writes rows into `sink`, or holds them while its buffer is full (policy `block`): the
    /// other rules go on. Past [`Runner::hard_limit`] rows held for it, waits for it.
    async fn write_rows(&self, rule: &ActiveRule, sink: &Arc<SinkHandle>, rows: RowBatch) {
        if rows.is_empty() {
            return;
        }
        let n = rows.len() as u64;
        rule.metrics.actions_total.fetch_add(n, Ordering::Relaxed);
        let held = self.backlog.borrow_mut().write(sink, rows);
        if held > 0 {
            self.intake.warn_behind(format_args!(
                "sink `{}` is full: its rules' rows are held, and past {} held rows the publishers feeding them pause",
                sink.name,
                self.intake.hold()
            ));
            self.intake.holding(&sink.name, held, self.backlog.borrow().rows());
        }
        rule.metrics.actions_success.fetch_add(n, Ordering::Relaxed);
        if held >= self.hard_limit() {
            self.wait_for_held().await;
        }
    }

    /// Offers the held rows to their sinks again, and tells the intake what each still holds.
    fn flush_held(&self) {
        let mut backlog = self.backlog.borrow_mut();
        if backlog.is_empty() {
            return;
        }
        let mut states = Vec::new();
        backlog.flush(|h| states.push((h.sink.to_string(), h.rows)));
        let total = backlog.rows();
        drop(backlog);
        for (sink, rows) in states {
            self.intake.holding(&sink, rows, total);
        }
    }

    /// Rows held for one sink past which the rule thread waits for it.
    fn hard_limit(&self) -> usize {
        self.intake.hold().saturating_mul(backlog::HARD_LIMIT)
    }

    /// Waits until no sink holds [`Runner::hard_limit`] rows: the last resort that keeps the
    /// rows held in memory bounded, when events (which nobody pauses) keep coming for a full sink.
    async fn wait_for_held(&self) {
        let limit = self.hard_limit();
        loop {
            let Some(sink) = self.backlog.borrow().over(limit) else { return };
            let space = sink.wait_for_space();
            tokio::pin!(space);
            space.as_mut().enable();
            self.flush_held();
            if self.backlog.borrow().over(limit).is_none() {
                return;
            }
            self.intake.warn_behind(format_args!(
                "sink `{}` is full and holds {limit} rows: the rules wait for it",
                sink.name
            ));
            tokio::select! {
                () = &mut space => {}
                () = tokio::time::sleep(RETRY_HELD) => {}
            }
        }
    }

    /// Emits the rows of the windows that have closed.
    async fn close_windows(&self) {
        let set = self.book.current();
        let now = crate::now_ms();
        for (rule, target) in set.rules.iter().zip(&set.targets).filter(|(r, _)| r.window.is_some()) {
            let values = rule.close_windows(now).await;
            if let Some(sink) = target {
                let mut rows = RowBatch::default();
                for v in &values {
                    rows.push_with(|buf| crate::plan::variant::value_json(v, buf));
                }
                self.write_rows(rule, sink, rows).await;
            }
        }
    }

    /// The columns every event has.
    fn add_event_columns(&self, kind: EventKind, columns: &mut Columns) {
        columns.insert("timestamp".into(), Value::Int(crate::now_ms()));
        columns.insert("node".into(), Value::Str(self.node.clone()));
        columns.insert("event".into(), Value::Str(kind.event_column().into()));
    }
}

/// Finds the rules an input's topic matches, remembering the last topic's: a connection's
/// burst often repeats one topic.
struct Matcher<'a> {
    set: &'a RuleSet,
    topic: String,
    rules: Vec<usize>,
}

impl Matcher<'_> {
    /// Adds `slot` to the rows of each rule that takes an input on `topic`; returns whether
    /// any does. A sink's own republish never reaches the rules that write into that sink.
    fn assign(
        &mut self,
        topic: &str,
        origin: Option<&str>,
        per_rule: &mut [(Vec<u32>, Vec<usize>)],
        slot: Slot,
    ) -> bool {
        if topic != self.topic || self.topic.is_empty() {
            self.rules.clear();
            self.set.index.for_each_match(topic, |ids| self.rules.extend_from_slice(ids));
            // A rule whose several FROM filters match runs once.
            self.rules.sort_unstable();
            self.rules.dedup();
            topic.clone_into(&mut self.topic);
        }
        let mut any = false;
        for &i in &self.rules {
            if origin.is_some_and(|o| self.set.targets[i].as_ref().is_some_and(|t| t.name == o)) {
                continue;
            }
            any = true;
            match slot {
                Slot::Publish(r) => per_rule[i].0.push(r),
                Slot::Event(r) => per_rule[i].1.push(r),
            }
        }
        any
    }
}

/// Resolves once `stop` turns true (or its sender is gone). The value's guard is let go at
/// once: held across the drain, it would block the sender.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

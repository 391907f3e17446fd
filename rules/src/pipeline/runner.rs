//! The rule thread's loop: it takes the queue in batches (up to [`BATCH`] messages, or what came
//! within [`BATCH_WAIT`] of the first), runs each rule once per batch on the messages its FROM
//! matched, in arrival order, and hands the output rows to the rule's sink. Windows are closed
//! on a timer of their own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use weir_connectors::driver::SinkHandle;
use weir_connectors::row::RowBatch;

use super::intake::{Input, Intake};
use super::ruleset::{RuleBook, RuleSet};
use crate::active_rule::ActiveRule;
use crate::event_kind::EventKind;
use crate::plan::publish_batch::{Publish, PublishBatch};
use crate::plan::{BatchOutcome, Input as Rows};
use crate::value::Columns;
use crate::value::Value;

/// Messages evaluated per batch.
pub const BATCH: usize = 1024;
/// How long a batch waits to fill once its first message is in: a rule's output comes at most
/// this late, and each rule's fixed cost per batch is shared by more messages.
pub const BATCH_WAIT: Duration = Duration::from_millis(1);
/// How often windows are checked for closing: a window's rows come at most this late.
const WINDOW_TICK: Duration = Duration::from_millis(100);
/// How long stopping may spend running what is still queued into the sinks' buffers.
pub const DRAIN: Duration = Duration::from_secs(5);

/// The rule thread's state.
pub(super) struct Runner {
    pub(super) book: Arc<RuleBook>,
    pub(super) intake: Arc<Intake>,
    /// The node's name, for the `node` column of events.
    pub(super) node: String,
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
}

impl Runner {
    /// Evaluates queued messages in batches until the queue closes, or `stop` turns true: then
    /// what is queued runs too, within [`DRAIN`]. A batch in hand always finishes.
    pub(super) async fn run(&self, rx: &mut mpsc::UnboundedReceiver<Input>, stop: &mut watch::Receiver<bool>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut windows = tokio::time::interval(WINDOW_TICK);
        loop {
            tokio::select! {
                received = rx.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        return;
                    }
                    self.fill(rx, &mut batch).await;
                },
                _ = windows.tick() => {
                    self.close_windows().await;
                    continue;
                }
                () = stopping(stop) => {
                    self.drain(rx, batch).await;
                    return;
                }
            }
            let set = self.book.current();
            let sorted = self.sort(&set, batch.drain(..));
            self.evaluate(&set, &sorted).await;
        }
    }

    /// Runs what is queued, batch by batch, for at most [`DRAIN`], and says what was left.
    async fn drain(&self, rx: &mut mpsc::UnboundedReceiver<Input>, mut batch: Vec<Input>) {
        let started = std::time::Instant::now();
        let ran = tokio::time::timeout(DRAIN, async {
            loop {
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(input) => batch.push(input),
                        Err(_) => break,
                    }
                }
                if batch.is_empty() {
                    return;
                }
                self.intake.taken(batch.iter().map(Input::messages).sum());
                let set = self.book.current();
                let sorted = self.sort(&set, batch.drain(..));
                self.evaluate(&set, &sorted).await;
            }
        })
        .await;
        let left = self.intake.queued();
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

    /// Lets a short batch fill for [`BATCH_WAIT`], takes what came without waiting more, and
    /// tells the intake how much was taken.
    async fn fill(&self, rx: &mut mpsc::UnboundedReceiver<Input>, batch: &mut Vec<Input>) {
        let mut messages: usize = batch.iter().map(Input::messages).sum();
        if messages < BATCH {
            tokio::time::sleep(BATCH_WAIT).await;
            while messages < BATCH {
                match rx.try_recv() {
                    Ok(input) => {
                        messages += input.messages();
                        batch.push(input);
                    }
                    Err(_) => break,
                }
            }
        }
        self.intake.taken(messages);
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
        for input in batch {
            match input {
                Input::Publishes(msgs) => {
                    for msg in msgs {
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
        Sorted { publishes: publishes.finish(), events, per_rule }
    }

    /// Runs each rule once on the rows it matched, and hands its output to its sink.
    async fn evaluate(&self, set: &RuleSet, sorted: &Sorted) {
        for ((rule, target), (publish_rows, event_rows)) in set.rules.iter().zip(&set.targets).zip(&sorted.per_rule) {
            if !publish_rows.is_empty() {
                let all = publish_rows.len() == sorted.publishes.len();
                let out = rule.run_batch(&sorted.publishes, (!all).then_some(&publish_rows[..]));
                self.deliver(rule, target.as_deref(), &out).await;
            }
            if !event_rows.is_empty() {
                let rows: Vec<&Columns> = event_rows.iter().map(|&r| &sorted.events[r]).collect();
                for input in Rows::from_rows(&rows) {
                    let out = rule.run_batch(&input, None);
                    self.deliver(rule, target.as_deref(), &out).await;
                }
            }
        }
    }

    /// Hands a batch's output rows to the rule's sink, as JSON objects.
    async fn deliver(&self, rule: &ActiveRule, sink: Option<&SinkHandle>, out: &BatchOutcome) {
        let Some(sink) = sink else { return };
        let mut rows = RowBatch::default();
        out.write_json_rows(&mut rows);
        self.write_rows(rule, sink, rows).await;
    }

    /// Writes rows into `sink`, waiting while its buffer is full (policy `block`): the queue
    /// then fills, and the publishers pause.
    async fn write_rows(&self, rule: &ActiveRule, sink: &SinkHandle, rows: RowBatch) {
        if rows.is_empty() {
            return;
        }
        rule.metrics.actions_total.fetch_add(rows.len() as u64, Ordering::Relaxed);
        let mut taken = 0;
        while taken < rows.len() {
            let space = sink.wait_for_space();
            tokio::pin!(space);
            space.as_mut().enable();
            taken += sink.push(&rows, taken);
            if taken < rows.len() {
                self.intake
                    .warn_behind(format_args!("sink `{}` is full: the rules wait, and publishers pause", sink.name));
                space.await;
            }
        }
        rule.metrics.actions_success.fetch_add(rows.len() as u64, Ordering::Relaxed);
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

//! The pipeline's one door for the broker: [`Intake`] says whether a topic or an event interests
//! a rule, and queues what does for the rule thread, without blocking.
//!
//! The queue's bound is [`QUEUE`] messages or [`QUEUE_BYTES`] of payloads, whichever comes first:
//! a count alone would let large payloads take gigabytes. A client's read burst is taken whole, whatever the
//! queue holds, and the client then waits while [`Intake::is_full`], or while a sink its
//! messages feed holds too many refused rows ([`Intake::is_blocked_by`]): back-pressure reaches
//! the publishers, not a drop, and only those of a full sink when one sink is full. Messages the broker makes itself, which nobody can pause, skip the
//! rules when the queue is full, and are counted.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::futures::Notified;
use tokio::sync::{mpsc, Notify};
use tracing::warn;

use super::published::Message;
use super::ruleset::{RuleBook, RuleMatch};
use super::write_ahead::InputLog;
use crate::event_kind::EventKind;
use crate::value::Columns;

/// Messages waiting for the rules. Past this, publishers whose messages go to the rules pause
/// until the engine catches up; messages the broker makes itself skip the rules, counted.
pub const QUEUE: usize = 64 * 1024;
/// Bytes of payloads waiting for the rules, past which publishers pause as they do
/// past [`QUEUE`]: 64 messages of the largest size the broker takes by default.
pub const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// At most one "behind" warning per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What the rules are fed.
#[derive(Debug)]
pub enum Input {
    /// Published messages, handed over together (a connection's read burst): their columns are
    /// built once per batch, for all the rules they match.
    Publishes(Vec<Message>),
    /// A broker event with its own columns (`timestamp`, `node` and `event` are added).
    Event(EventKind, Box<Columns>),
}

impl Input {
    /// How many messages it holds.
    pub(super) fn messages(&self) -> usize {
        match self {
            Input::Publishes(m) => m.len(),
            Input::Event(..) => 1,
        }
    }

    /// The bytes of its payloads, which the queue's byte bound counts (topics are short next
    /// to them, and an event's columns are counted as a message only).
    pub(super) fn bytes(&self) -> usize {
        match self {
            Input::Publishes(m) => bytes(m),
            Input::Event(..) => 0,
        }
    }
}

fn bytes(msgs: &[Message]) -> usize {
    msgs.iter().map(|m| m.payload().len()).sum()
}

/// The broker's interface to the rules.
#[derive(Debug)]
pub struct Intake {
    /// The rules in force, asked which topics and events interest them.
    book: Arc<RuleBook>,
    /// Unbounded as a channel: the bound is `bound` messages, kept by `waiting`.
    queue: mpsc::UnboundedSender<Input>,
    /// Messages the queue holds before publishers pause ([`QUEUE`]).
    bound: usize,
    /// Messages queued and not yet taken: the queue's bound counts messages, not hand-overs.
    waiting: AtomicUsize,
    /// Bytes of the payloads of the messages in `waiting`.
    waiting_bytes: AtomicUsize,
    /// Signalled when the rule thread takes a batch: paused publishers look again.
    room: Notify,
    /// Messages that skipped the rules: the broker's own (`$SYS`, events) that found the queue
    /// full, and any message once the rule thread has ended.
    skipped: AtomicU64,
    /// Set when the rule thread has ended: nothing is queued, and nobody waits, any more.
    closed: AtomicBool,
    /// How often the rule thread's supervisor restarted the runner after a panic.
    restarts: AtomicU64,
    /// Sinks holding [`Intake::hold`] rows or more (see [`super::backlog`]): publishers whose
    /// messages feed their rules pause until they are back under half of it.
    blocked: RwLock<Vec<String>>,
    /// Whether `blocked` has any sink: the publish path reads this, and the list only if set.
    any_blocked: AtomicBool,
    /// Rows held for sinks that refused them, for every sink.
    held: AtomicUsize,
    /// When the pipeline last warned that it is behind (seconds since `started`; `u64::MAX`:
    /// never), so that the warning comes at most every [`WARN_EVERY`].
    last_warning: AtomicU64,
    started: Instant,
    /// Where the broker wrote ahead the messages it hands over, if it keeps them on disk.
    input_log: OnceLock<Arc<dyn InputLog>>,
}

impl Intake {
    /// An intake over `book`, and the receiving end of its queue, for the rule thread.
    pub(super) fn new(book: Arc<RuleBook>, bound: usize) -> (Arc<Intake>, mpsc::UnboundedReceiver<Input>) {
        let (queue, rx) = mpsc::unbounded_channel();
        let intake = Intake {
            book,
            queue,
            bound,
            waiting: AtomicUsize::new(0),
            waiting_bytes: AtomicUsize::new(0),
            room: Notify::new(),
            skipped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            blocked: RwLock::new(Vec::new()),
            any_blocked: AtomicBool::new(false),
            held: AtomicUsize::new(0),
            last_warning: AtomicU64::new(u64::MAX),
            started: Instant::now(),
            input_log: OnceLock::new(),
        };
        (Arc::new(intake), rx)
    }

    /// Sets where the broker wrote ahead the messages it hands over (once).
    pub(super) fn keep_input_in(&self, log: Arc<dyn InputLog>) {
        let _ = self.input_log.set(log);
    }

    /// Where the broker wrote ahead the messages it hands over, if it does.
    pub(super) fn input_log(&self) -> Option<&Arc<dyn InputLog>> {
        self.input_log.get()
    }

    /// Whether some rule's FROM matches `topic`: only then is a message handed over.
    pub fn wants(&self, topic: &str) -> bool {
        self.book.matches(topic)
    }

    /// [`Intake::wants`], remembered in `memo` for the last topic asked about: a client mostly
    /// publishes to the same few topics.
    pub fn wants_remembered(&self, topic: &str, memo: &mut RuleMatch) -> bool {
        self.book.matches_remembered(topic, memo)
    }

    /// Queues a client's messages that the rules want, in one hand-over, whatever the queue
    /// holds: the client then waits while [`Intake::is_full`], or while a sink these messages
    /// feed holds too many rows: those sinks are returned, to ask [`Intake::is_blocked_by`].
    /// The republish path of an MQTT sink comes through here too: the rule thread may be
    /// waiting for that very sink's buffer to drain, so refusing its messages would deadlock;
    /// what it adds is bounded by the sink's buffer.
    pub fn offer(&self, msgs: Vec<Message>) -> Vec<String> {
        if msgs.is_empty() {
            return Vec::new();
        }
        let feeds = self.blocked_fed_by(&msgs);
        let (n, size) = (msgs.len(), bytes(&msgs));
        self.waiting.fetch_add(n, Ordering::Relaxed);
        self.waiting_bytes.fetch_add(size, Ordering::Relaxed);
        if self.queue.send(Input::Publishes(msgs)).is_err() {
            self.taken(n, size);
            self.skipped.fetch_add(n as u64, Ordering::Relaxed);
        }
        feeds
    }

    /// The blocked sinks that some of `msgs` feed; no lookup while no sink is blocked.
    fn blocked_fed_by(&self, msgs: &[Message]) -> Vec<String> {
        let mut feeds = Vec::new();
        if !self.any_blocked.load(Ordering::Acquire) {
            return feeds;
        }
        let blocked = self.blocked.read();
        let set = self.book.current();
        let mut last_topic = "";
        for msg in msgs {
            if msg.topic() == last_topic {
                continue;
            }
            last_topic = msg.topic();
            set.index.for_each_match(last_topic, |rules| {
                let sinks = rules.iter().filter_map(|&r| set.targets[r].as_ref());
                for sink in sinks.filter(|s| blocked.contains(&s.name)) {
                    if !feeds.contains(&sink.name) {
                        feeds.push(sink.name.clone());
                    }
                }
            });
        }
        feeds
    }

    /// Whether one of `sinks` (from [`Intake::offer`]) still holds too many rows.
    pub fn is_blocked_by(&self, sinks: &[String]) -> bool {
        self.any_blocked.load(Ordering::Acquire)
            && !self.closed.load(Ordering::Acquire)
            && self.blocked.read().iter().any(|b| sinks.contains(b))
    }

    /// Rows held for sinks whose buffers are full.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Rows held for one full sink before the publishers feeding it pause: as many as the
    /// queue holds messages.
    pub fn hold(&self) -> usize {
        self.bound
    }

    /// The rule thread holds `rows` rows for `sink` (and `total` for all sinks): the sink's
    /// publishers pause from [`Intake::hold`] rows, and go on under half of that.
    pub(super) fn holding(&self, sink: &str, rows: usize, total: usize) {
        self.held.store(total, Ordering::Relaxed);
        let listed = self.any_blocked.load(Ordering::Acquire) && self.blocked.read().iter().any(|b| b == sink);
        if rows >= self.bound && !listed {
            let mut blocked = self.blocked.write();
            blocked.push(sink.to_string());
            self.any_blocked.store(true, Ordering::Release);
            warn!(
                sink,
                rows, "the rows held for a full sink reached their bound: the publishers feeding its rules pause"
            );
        } else if rows < self.bound / 2 && listed {
            let mut blocked = self.blocked.write();
            blocked.retain(|b| b != sink);
            self.any_blocked.store(!blocked.is_empty(), Ordering::Release);
            drop(blocked);
            self.room.notify_waiters();
        }
    }

    /// Queues a message the broker made itself; it skips the rules if the queue is full.
    pub fn offer_own(&self, msg: Message) {
        self.enqueue(Input::Publishes(vec![msg]), 1);
    }

    /// Whether some rule selects `kind`: the broker builds an event's columns only then.
    pub fn wants_event(&self, kind: EventKind) -> bool {
        self.book.wants(kind)
    }

    /// Hands an event to the rules that select it.
    pub fn emit(&self, kind: EventKind, columns: Columns) {
        if self.wants_event(kind) {
            self.enqueue(Input::Event(kind, Box::new(columns)), 1);
        }
    }

    /// Whether publishers that feed the rules should wait for [`Intake::room`]. Never once the
    /// rule thread has ended: there is nothing to wait for.
    pub fn is_full(&self) -> bool {
        let full = self.queued() >= self.bound || self.queued_bytes() >= QUEUE_BYTES;
        full && !self.closed.load(Ordering::Acquire)
    }

    /// Resolves when the rule thread next takes a batch, or a sink stops blocking. Create it
    /// before checking [`Intake::is_full`] and [`Intake::is_blocked_by`], so that no wake-up is
    /// missed.
    pub fn room(&self) -> Notified<'_> {
        self.room.notified()
    }

    /// Messages waiting for the rules.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Bytes of the payloads waiting for the rules.
    pub fn queued_bytes(&self) -> usize {
        self.waiting_bytes.load(Ordering::Relaxed)
    }

    /// Messages that skipped the rules: the broker's own when the queue was full, and any once
    /// the rule thread has ended.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// How often the rule thread restarted after a panic.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// The rule thread restarted after a panic.
    pub(super) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// The rule thread has ended: publishers waiting for room are let go, and what comes next
    /// skips the rules. (So are those paused for a sink: the rows held for it are gone.)
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
    }

    /// The rule thread took `messages` messages, of `bytes` bytes, off the queue.
    pub(super) fn taken(&self, messages: usize, bytes: usize) {
        self.waiting.fetch_sub(messages, Ordering::Relaxed);
        self.waiting_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.room.notify_waiters();
    }

    /// Queues `messages` messages without waiting; past the bound they skip the rules,
    /// counted.
    fn enqueue(&self, input: Input, messages: usize) {
        let size = input.bytes();
        let waiting = self.waiting.fetch_add(messages, Ordering::Relaxed);
        let waiting_bytes = self.waiting_bytes.fetch_add(size, Ordering::Relaxed);
        let within = waiting + messages <= self.bound && waiting_bytes + size <= QUEUE_BYTES;
        if within && self.queue.send(input).is_ok() {
            return;
        }
        self.waiting.fetch_sub(messages, Ordering::Relaxed);
        self.waiting_bytes.fetch_sub(size, Ordering::Relaxed);
        let skipped = self.skipped.fetch_add(messages as u64, Ordering::Relaxed) + messages as u64;
        self.warn_behind(format_args!(
            "the rule engine is behind: {skipped} messages of the broker's own skipped the rules so far (weir_rule_engine_skipped)"
        ));
    }

    /// Warns that the pipeline is behind, at most once per [`WARN_EVERY`].
    pub(super) fn warn_behind(&self, what: std::fmt::Arguments<'_>) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_warning.load(Ordering::Relaxed);
        let due = last == u64::MAX || now >= last + WARN_EVERY.as_secs();
        if due && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            warn!("{what}");
        }
    }
}

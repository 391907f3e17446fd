//! Feeding published messages to the rules of `rules_dir`.
//!
//! The publish path only looks the topic up in the rule index (the broker's topic trie, over
//! every rule's FROM filters) and, if any rule matches, queues the message without blocking.
//! A thread of its own (`weir-rules`, started by the server) takes the queue in batches (up to
//! 1024 messages, or what came within 1 ms of the first) and runs each rule once per batch on
//! the messages that matched it. Broker events (`$events/client_connected`, ...) take the same queue, their columns
//! built by the broker only when a rule selects them ([`RuleEngine::wants`]). The rules directory is re-read when its files change; a file that no longer parses is
//! reported with file, line and column and its previous rules keep running.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use ntex_bytes::ByteString;
use tokio::sync::{mpsc, Notify};
use tracing::{info, warn};
use weir_connectors::driver::SinkHandle;
use weir_connectors::row::RowBatch;
use weir_rules::ast::Statement;
use weir_rules::engine::{ActiveRule, RuleMetrics};
use weir_rules::eval::Columns;
use weir_rules::events::{EventKind, Publish, PublishBatch};
use weir_rules::files::{load_dir, FileError};
use weir_rules::plan::Input as RowsInput;
use weir_rules::tables::Tables;
use weir_rules::value::Value;

use crate::message::Message;
use crate::sinks::Sinks;
use weir_types::trie::Trie;

/// Messages waiting for the rules. Past this, publishers whose messages go to the rules pause
/// until the engine catches up; messages the broker makes itself skip the rules, counted.
const QUEUE: usize = 64 * 1024;
/// Messages evaluated per batch.
const BATCH: usize = 1024;
/// How long a batch waits to fill once its first message is in: a rule's output comes at most
/// this late, and each rule's fixed cost per batch is shared by more messages.
const BATCH_WAIT: Duration = Duration::from_millis(1);
/// At most one "behind" warning per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// How often windows are checked for closing: a window's rows come at most this late.
const WINDOW_TICK: Duration = Duration::from_millis(100);
/// How often the rules directory is checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What the rules are fed.
#[derive(Debug)]
pub enum Input {
    /// Published messages, handed over together (a connection's read burst): their columns are
    /// built once per batch, for all the rules they match.
    Publishes(Vec<Arc<Message>>),
    /// A broker event with its own columns (`timestamp`, `node` and `event` are added).
    Event(EventKind, Box<Columns>),
}

impl Input {
    /// How many messages it holds.
    fn messages(&self) -> usize {
        match self {
            Input::Publishes(m) => m.len(),
            Input::Event(..) => 1,
        }
    }
}

/// Where a queued input goes in a batch: a row of the publishes' input, or an event.
#[derive(Clone, Copy)]
enum Row {
    Publish(u32),
    Event(usize),
}

/// The rules in force, and what failed to load.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Arc<ActiveRule>>,
    /// Each rule's sink (`INSERT INTO`), by position in `rules`.
    targets: Vec<Option<Arc<SinkHandle>>>,
    /// FROM filter → positions in `rules`.
    index: Trie<Vec<usize>>,
    /// The rules that came from each file, to keep them when the file breaks.
    by_file: HashMap<PathBuf, Vec<Arc<ActiveRule>>>,
    /// Files that could not be loaded, with the reason (`line L, column C: ...`).
    pub errors: Vec<(PathBuf, String)>,
    /// The events some rule selects, as [`EventKind::bit`]s.
    events: u16,
    /// The publish columns some rule reads: the others are not built.
    publish_reads: Vec<bool>,
}

/// The rule engine of a node.
#[derive(Debug)]
pub struct RuleEngine {
    dir: PathBuf,
    node: String,
    set: ArcSwap<RuleSet>,
    /// Unbounded as a channel: the bound is [`QUEUE`] messages, kept by `waiting`.
    queue: mpsc::UnboundedSender<Input>,
    /// Signalled when the engine takes a batch: paused publishers look again.
    pub room: Notify,
    /// Where `INSERT INTO` rules write.
    pub sinks: Arc<Sinks>,
    /// A copy of the rule set's `events`, read on the broker's hot paths without a lock.
    events: AtomicU16,
    /// Messages made by the broker (`$SYS`, events) that found the queue full, so skipped the rules.
    pub skipped: AtomicU64,
    /// Messages queued and not yet taken: the queue's bound counts messages, not hand-overs.
    waiting: AtomicUsize,
    /// When the engine last warned that it is behind (seconds since `started`; `u64::MAX`:
    /// never), so that the warning comes at most every [`WARN_EVERY`].
    last_warning: AtomicU64,
    started: Instant,
    /// The reference tables rules JOIN, loaded by [`crate::tables`].
    pub tables: Arc<Tables>,
    /// The names of the configured tables: a rule joining another is refused.
    table_names: Vec<String>,
    /// The rules directory as the last load found it, taken before reading it: the watcher
    /// reloads when the directory differs, so a file written while a load runs is not missed.
    loaded_from: parking_lot::Mutex<Fingerprint>,
    /// Counts loads of the rules, so that remembered matches ([`RuleMatch`]) know they are stale.
    generation: AtomicU64,
}

impl RuleEngine {
    /// Loads the rules of `dir`; returns the engine and the receiving end of its queue, for
    /// [`RuleEngine::run`].
    pub fn new(
        dir: PathBuf,
        node: String,
        table_names: Vec<String>,
        sinks: Arc<Sinks>,
    ) -> (Arc<RuleEngine>, mpsc::UnboundedReceiver<Input>) {
        let (queue, rx) = mpsc::unbounded_channel();
        let engine = Arc::new(RuleEngine {
            dir,
            node,
            set: ArcSwap::default(),
            queue,
            room: Notify::new(),
            sinks,
            events: AtomicU16::new(0),
            skipped: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            last_warning: AtomicU64::new(u64::MAX),
            started: Instant::now(),
            tables: Arc::default(),
            table_names,
            loaded_from: parking_lot::Mutex::default(),
            generation: AtomicU64::new(0),
        });
        engine.reload();
        (engine, rx)
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.set.load_full()
    }

    /// Whether some rule's FROM matches the message's topic: only then is it handed over.
    pub fn matches(&self, msg: &Message) -> bool {
        let set = self.set.load();
        if set.rules.is_empty() || msg.topic.starts_with("$events/") {
            return false;
        }
        let mut any = false;
        set.index.for_each_match(&msg.topic, |_| any = true);
        any
    }

    /// [`RuleEngine::matches`], remembered for the last topic: a client mostly publishes to the
    /// same few topics, and the lookup took about 3% of the process in PostgreSQL benchmarks.
    pub fn matches_remembered(&self, msg: &Message, memo: &mut RuleMatch) -> bool {
        // Read before the rules: a reload in between leaves the memo already out of date.
        let generation = self.generation.load(Ordering::Acquire);
        if memo.generation != generation || memo.topic != msg.topic {
            *memo = RuleMatch { generation, topic: msg.topic.clone(), any: self.matches(msg) };
        }
        memo.any
    }

    /// Queues a client's messages that [`RuleEngine::matches`], in one hand-over, whatever the
    /// queue holds: the client then waits while [`RuleEngine::is_full`].
    pub fn offer(&self, msgs: Vec<Arc<Message>>) {
        if !msgs.is_empty() {
            self.waiting.fetch_add(msgs.len(), Ordering::Relaxed);
            let _ = self.queue.send(Input::Publishes(msgs));
        }
    }

    /// Queues a message the broker made itself; it skips the rules if the queue is full.
    pub fn offer_own(&self, msg: Arc<Message>) {
        self.enqueue(Input::Publishes(vec![msg]), 1);
    }

    /// Whether publishers that feed the rules should wait for [`RuleEngine::room`].
    pub fn is_full(&self) -> bool {
        self.queued() >= QUEUE
    }

    /// Messages waiting for the rules.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Whether some rule selects `kind`: the broker builds an event's columns only then.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.load(Ordering::Relaxed) & kind.bit() != 0
    }

    /// Hands an event to the rules that select it.
    pub fn emit(&self, kind: EventKind, columns: Columns) {
        if self.wants(kind) {
            self.enqueue(Input::Event(kind, Box::new(columns)), 1);
        }
    }

    /// Queues `messages` messages without waiting; past [`QUEUE`] waiting messages they skip
    /// the rules, counted.
    fn enqueue(&self, input: Input, messages: usize) {
        let waiting = self.waiting.fetch_add(messages, Ordering::Relaxed);
        if waiting + messages <= QUEUE && self.queue.send(input).is_ok() {
            return;
        }
        self.waiting.fetch_sub(messages, Ordering::Relaxed);
        let skipped = self.skipped.fetch_add(messages as u64, Ordering::Relaxed) + messages as u64;
        self.warn_behind(format_args!(
            "the rule engine is behind: {skipped} messages of the broker's own skipped the rules so far (weir_rule_engine_skipped)"
        ));
    }

    /// Warns that the engine is behind, at most once per [`WARN_EVERY`].
    fn warn_behind(&self, what: std::fmt::Arguments<'_>) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_warning.load(Ordering::Relaxed);
        let due = last == u64::MAX || now >= last + WARN_EVERY.as_secs();
        if due && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            warn!("{what}");
        }
    }

    /// Evaluates queued messages in batches until the queue closes.
    pub async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut matched = Vec::new();
        let mut windows = tokio::time::interval(WINDOW_TICK);
        loop {
            tokio::select! {
                received = rx.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        return;
                    }
                    let mut messages: usize = batch.iter().map(Input::messages).sum();
                    if messages < BATCH {
                        // Let the batch fill for a moment, then take what came, without waiting more.
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
                    self.waiting.fetch_sub(messages, Ordering::Relaxed);
                    self.room.notify_waiters();
                },
                _ = windows.tick() => {
                    self.close_windows().await;
                    continue;
                }
            }
            let set = self.rules();
            // Each rule runs once per batch, on the messages that matched it, in arrival order:
            // the publishes as one input built straight from the messages, events by kind.
            let mut publishes = PublishBatch::new(&self.node, &set.publish_reads);
            let mut published = 0u32;
            let mut events = Vec::new();
            // A connection stamps a whole read burst with one time: converted once.
            let mut stamp = (UNIX_EPOCH, 0);
            let mut per_rule: Vec<(Vec<u32>, Vec<usize>)> = vec![Default::default(); set.rules.len()];
            // A connection's burst often repeats one topic: its rules are looked up once.
            let mut matched_topic = String::new();
            let mut add = |topic: &str, origin: Option<&str>, per_rule: &mut Vec<(Vec<u32>, Vec<usize>)>, row: Row| {
                if topic != matched_topic || matched_topic.is_empty() {
                    matched.clear();
                    set.index.for_each_match(topic, |ids| matched.extend_from_slice(ids));
                    // A rule whose several FROM filters match runs once.
                    matched.sort_unstable();
                    matched.dedup();
                    topic.clone_into(&mut matched_topic);
                }
                let mut any = false;
                for &i in &matched {
                    // A sink's own republish never reaches the rules that write into it.
                    if origin.is_some_and(|o| set.targets[i].as_ref().is_some_and(|t| t.name == o)) {
                        continue;
                    }
                    any = true;
                    match row {
                        Row::Publish(r) => per_rule[i].0.push(r),
                        Row::Event(r) => per_rule[i].1.push(r),
                    }
                }
                any
            };
            for input in batch.drain(..) {
                match input {
                    Input::Publishes(msgs) => {
                        for msg in msgs {
                            if !add(&msg.topic, msg.origin.as_deref(), &mut per_rule, Row::Publish(published)) {
                                continue;
                            }
                            let properties = publishes.wants_properties().then(|| publish_properties(&msg)).flatten();
                            publishes.push(&Publish {
                                topic: &msg.topic,
                                payload: &msg.payload,
                                qos: msg.qos,
                                clientid: msg.publisher.as_deref(),
                                retain: msg.retain,
                                properties: properties.as_ref(),
                                timestamp_ms: {
                                    if msg.timestamp != stamp.0 {
                                        stamp = (msg.timestamp, unix_ms(msg.timestamp));
                                    }
                                    stamp.1
                                },
                            });
                            published += 1;
                        }
                    }
                    Input::Event(kind, mut columns) => {
                        if add(&kind.topic(), None, &mut per_rule, Row::Event(events.len())) {
                            self.add_event_columns(kind, &mut columns);
                            events.push(*columns);
                        }
                    }
                }
            }
            let publishes = publishes.finish();
            for ((rule, target), (publish_rows, event_rows)) in set.rules.iter().zip(&set.targets).zip(&per_rule) {
                if !publish_rows.is_empty() {
                    let all = publish_rows.len() == publishes.len();
                    let out = rule.run_batch(&publishes, (!all).then_some(&publish_rows[..]));
                    self.deliver(rule, target.as_deref(), &out).await;
                }
                if !event_rows.is_empty() {
                    let rows: Vec<&Columns> = event_rows.iter().map(|&r| &events[r]).collect();
                    for input in RowsInput::from_rows(&rows) {
                        let out = rule.run_batch(&input, None);
                        self.deliver(rule, target.as_deref(), &out).await;
                    }
                }
            }
        }
    }

    /// Hands a batch's output rows to the rule's sink, as JSON objects.
    async fn deliver(&self, rule: &ActiveRule, sink: Option<&SinkHandle>, out: &weir_rules::plan::BatchOutcome) {
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
                self.warn_behind(format_args!("sink `{}` is full: the rules wait, and publishers pause", sink.name));
                space.await;
            }
        }
        rule.metrics.actions_success.fetch_add(rows.len() as u64, Ordering::Relaxed);
    }

    /// Emits the rows of the windows that have closed.
    async fn close_windows(&self) {
        let set = self.rules();
        let now = weir_rules::now_ms();
        for (rule, target) in set.rules.iter().zip(&set.targets).filter(|(r, _)| r.window.is_some()) {
            let values = rule.close_windows(now).await;
            if let Some(sink) = target {
                let mut rows = RowBatch::default();
                for v in &values {
                    rows.push_with(|buf| weir_rules::plan::variant::value_json(v, buf));
                }
                self.write_rows(rule, sink, rows).await;
            }
        }
    }

    /// The columns every event has.
    fn add_event_columns(&self, kind: EventKind, columns: &mut Columns) {
        columns.insert("timestamp".into(), Value::Int(weir_rules::now_ms()));
        columns.insert("node".into(), Value::Str(self.node.clone()));
        columns.insert("event".into(), Value::Str(kind.event_column().into()));
    }

    /// Re-reads the rules directory whenever its files change (checked every second).
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        loop {
            tick.tick().await;
            if fingerprint(&self.dir) != *self.loaded_from.lock() {
                self.reload();
            }
        }
    }

    /// Loads every rule file again. Counters follow rule ids; a file that fails keeps the rules
    /// it had before.
    pub fn reload(&self) {
        *self.loaded_from.lock() = fingerprint(&self.dir);
        let previous = self.rules();
        let files = match load_dir(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                if previous.rules.is_empty() {
                    info!(dir = %self.dir.display(), error = %e, "no rules directory: running without rules");
                } else {
                    warn!(dir = %self.dir.display(), error = %e, "cannot read the rules directory: keeping the rules in force");
                }
                return;
            }
        };
        let metrics: HashMap<&str, Arc<RuleMetrics>> =
            previous.rules.iter().map(|r| (r.id.as_str(), r.metrics.clone())).collect();
        let mut set = RuleSet::default();
        for file in files {
            let loaded =
                file.outcome.and_then(|rules| match rules.iter().find_map(|r| self.unresolved(&r.statement)) {
                    Some(e) => Err(FileError::Syntax(e)),
                    None => Ok(rules),
                });
            let active: Vec<Arc<ActiveRule>> = match loaded {
                Ok(rules) => rules
                    .into_iter()
                    .map(|r| {
                        let m = metrics.get(r.id.as_str()).cloned().unwrap_or_default();
                        Arc::new(ActiveRule::new(r, m, self.tables.clone()))
                    })
                    .collect(),
                Err(e) => {
                    let kept = previous.by_file.get(&file.path).cloned().unwrap_or_default();
                    warn!(
                        file = %file.path.display(),
                        error = %e,
                        kept_rules = kept.len(),
                        "rule file not loaded; its previous rules keep running"
                    );
                    set.errors.push((file.path.clone(), e.to_string()));
                    kept
                }
            };
            set.by_file.insert(file.path, active.clone());
            set.rules.extend(active);
        }
        set.targets = set
            .rules
            .iter()
            .map(|r| r.statement.sink.as_ref().and_then(|name| self.sinks.get(name).ok().flatten()))
            .collect();
        for (i, rule) in set.rules.iter().enumerate() {
            for filter in &rule.statement.rule.from {
                set.index.update(filter, |ids| ids.push(i));
                for kind in EventKind::ALL {
                    if weir_types::topic::matches(filter, &kind.topic()) {
                        set.events |= kind.bit();
                    }
                }
            }
        }
        for rule in &set.rules {
            let reads = rule.publish_reads();
            set.publish_reads.resize(reads.len(), false);
            set.publish_reads.iter_mut().zip(reads).for_each(|(all, r)| *all |= r);
        }
        self.events.store(set.events, Ordering::Relaxed);
        info!(rules = set.rules.len(), errors = set.errors.len(), dir = %self.dir.display(), "rules loaded");
        self.set.store(Arc::new(set));
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// A topic's answer from [`RuleEngine::matches_remembered`], for one generation of the rules.
#[derive(Debug, Clone)]
pub struct RuleMatch {
    generation: u64,
    topic: ByteString,
    any: bool,
}

impl Default for RuleMatch {
    fn default() -> RuleMatch {
        RuleMatch { generation: u64::MAX, topic: ByteString::default(), any: false }
    }
}

impl RuleEngine {
    /// A sink or table the statement names but the config does not define, as an error at
    /// the statement's position.
    fn unresolved(&self, st: &Statement) -> Option<weir_rules::ParseError> {
        let sink = st.sink.as_ref().and_then(|sink| match self.sinks.get(sink) {
            Ok(Some(_)) => None,
            Ok(None) => Some(format!("unknown sink `{sink}`: define [sinks.{sink}] in the config")),
            Err(e) => Some(format!("sink `{sink}` cannot start: {e}")),
        });
        let message = sink.or_else(|| {
            let j = st.rule.joins.iter().find(|j| !self.table_names.contains(&j.table))?;
            Some(format!("unknown table `{0}`: define [tables.{0}] in the config", j.table))
        })?;
        Some(weir_rules::ParseError { line: st.line, column: st.column, message })
    }
}

/// What identifies the directory's state: each rule file's name, size and modification time.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The rules directory's [`Fingerprint`], sorted; empty if it cannot be read.
fn fingerprint(dir: &Path) -> Fingerprint {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()))
        })
        .collect();
    v.sort();
    v
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `pub_props` as EMQX shows them, if the message has any.
fn publish_properties(msg: &Message) -> Option<Value> {
    let text = |s: &str| Value::Str(s.to_string());
    let mut props = BTreeMap::new();
    if !msg.properties.user_properties.is_empty() {
        let pairs = msg.properties.user_properties.iter().map(|(k, v)| (k.to_string(), text(v))).collect();
        props.insert("User-Property".to_string(), Value::Map(pairs));
    }
    if let Some(ct) = &msg.properties.content_type {
        props.insert("Content-Type".to_string(), text(ct));
    }
    if let Some(rt) = &msg.properties.response_topic {
        props.insert("Response-Topic".to_string(), text(rt));
    }
    (!props.is_empty()).then_some(Value::Map(props))
}

/// The columns EMQX gives a `message.publish` rule, for the message events that carry them.
pub fn columns_of(msg: &Message, node: &str) -> Columns {
    let ms = unix_ms(msg.timestamp);
    let text = |s: &str| Value::Str(s.to_string());
    Columns::from([
        ("topic".into(), text(&msg.topic)),
        ("payload".into(), Value::from_bytes(&msg.payload)),
        ("qos".into(), Value::Int(i64::from(u8::from(msg.qos)))),
        ("clientid".into(), msg.publisher.as_deref().map_or(Value::Undefined, text)),
        (
            "flags".into(),
            Value::Map(BTreeMap::from([
                ("dup".into(), Value::Bool(false)),
                ("retain".into(), Value::Bool(msg.retain)),
            ])),
        ),
        ("pub_props".into(), publish_properties(msg).unwrap_or_else(|| Value::Map(BTreeMap::new()))),
        ("timestamp".into(), Value::Int(ms)),
        ("publish_received_at".into(), Value::Int(ms)),
        ("event".into(), text("message.publish")),
        ("node".into(), text(node)),
    ])
}

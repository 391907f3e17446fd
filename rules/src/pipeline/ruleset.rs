//! The rules in force: loaded from `rules_dir`, each resolved to its sink and indexed by its
//! FROM filters, and loaded again when a file changes. A file that no longer parses is reported
//! with file, line and column, and the rules it held before keep running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tracing::{info, warn};
use weir_connectors::driver::SinkHandle;
use weir_types::trie::Trie;

use super::sinks::Sinks;
use crate::active_rule::{ActiveRule, RuleMetrics};
use crate::ast::Statement;
use crate::event_kind::EventKind;
use crate::files::{load_dir, FileError, RuleFile};
use crate::tables::Tables;
use crate::ParseError;

/// How often the rules directory is checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// One load of the rules directory.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// The rules, in file order.
    pub rules: Vec<Arc<ActiveRule>>,
    /// Each rule's sink (`INSERT INTO`), by position in `rules`.
    pub(super) targets: Vec<Option<Arc<SinkHandle>>>,
    /// FROM filter → positions in `rules`.
    pub(super) index: Trie<Vec<usize>>,
    /// The rules that came from each file, to keep them when the file breaks.
    by_file: HashMap<PathBuf, Vec<Arc<ActiveRule>>>,
    /// Files that could not be loaded, with the reason (`line L, column C: ...`).
    pub errors: Vec<(PathBuf, String)>,
    /// The events some rule selects, as [`EventKind::bit`]s.
    events: u16,
    /// The publish columns some rule reads: the others are not built.
    pub(super) publish_reads: Vec<bool>,
}

/// The rules directory and what was last loaded from it, shared by the broker's side (which
/// asks whether a topic or an event interests a rule) and the rule thread (which runs them).
#[derive(Debug)]
pub struct RuleBook {
    dir: PathBuf,
    set: ArcSwap<RuleSet>,
    /// A copy of the rule set's `events`, read on the broker's hot paths without a lock.
    events: AtomicU16,
    /// Counts loads, so that remembered matches ([`RuleMatch`]) know when they are stale.
    generation: AtomicU64,
    /// The directory as the last load found it, taken before reading it: the watcher reloads
    /// when the directory differs, so a file written while a load runs is not missed.
    loaded_from: Mutex<Fingerprint>,
    /// Where `INSERT INTO` rules write: a rule naming a sink that is not there is refused.
    sinks: Arc<Sinks>,
    /// The reference tables rules JOIN.
    tables: Arc<Tables>,
    /// The names of the configured tables: a rule joining another is refused.
    table_names: Vec<String>,
}

/// A topic's answer from [`RuleBook::matches_remembered`], for one load of the rules.
#[derive(Debug, Clone)]
pub struct RuleMatch {
    generation: u64,
    topic: String,
    any: bool,
}

impl Default for RuleMatch {
    fn default() -> RuleMatch {
        RuleMatch { generation: u64::MAX, topic: String::new(), any: false }
    }
}

impl RuleBook {
    /// Loads the rules of `dir`.
    pub fn load(dir: PathBuf, sinks: Arc<Sinks>, tables: Arc<Tables>, table_names: Vec<String>) -> RuleBook {
        let book = RuleBook {
            dir,
            set: ArcSwap::default(),
            events: AtomicU16::new(0),
            generation: AtomicU64::new(0),
            loaded_from: Mutex::default(),
            sinks,
            tables,
            table_names,
        };
        book.reload();
        book
    }

    /// The rules in force.
    pub fn current(&self) -> Arc<RuleSet> {
        self.set.load_full()
    }

    /// Whether some rule's FROM matches `topic`. `$events/...` are not messages: no rule takes
    /// a message published there.
    pub fn matches(&self, topic: &str) -> bool {
        let set = self.set.load();
        if set.rules.is_empty() || topic.starts_with("$events/") {
            return false;
        }
        let mut any = false;
        set.index.for_each_match(topic, |_| any = true);
        any
    }

    /// [`RuleBook::matches`], remembered for the last topic: a client mostly publishes to the
    /// same few topics, and this runs for every message.
    pub fn matches_remembered(&self, topic: &str, memo: &mut RuleMatch) -> bool {
        // Read before the rules: a reload in between leaves the memo already out of date.
        let generation = self.generation.load(Ordering::Acquire);
        if memo.generation != generation || memo.topic != topic {
            memo.generation = generation;
            topic.clone_into(&mut memo.topic);
            memo.any = self.matches(topic);
        }
        memo.any
    }

    /// Whether some rule selects `kind`: the broker builds an event's columns only then.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.load(Ordering::Relaxed) & kind.bit() != 0
    }

    /// Re-reads the rules directory whenever its files change (checked every second). Reading
    /// the files and compiling the rules is blocking work: it runs on tokio's blocking threads,
    /// never on the workers that serve connections.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        loop {
            tick.tick().await;
            let book = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if fingerprint(&book.dir) != *book.loaded_from.lock() {
                    book.reload();
                }
            })
            .await;
        }
    }

    /// Loads every rule file again. Counters follow rule ids; a file that fails keeps the rules
    /// it had before.
    pub fn reload(&self) {
        *self.loaded_from.lock() = fingerprint(&self.dir);
        let previous = self.current();
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
        // Counters follow rule ids across loads.
        let metrics: HashMap<&str, &Arc<RuleMetrics>> =
            previous.rules.iter().map(|r| (r.id.as_str(), &r.metrics)).collect();
        let mut set = RuleSet::default();
        for file in files {
            self.add_file(&mut set, &previous, &metrics, file);
        }
        self.index(&mut set);
        self.events.store(set.events, Ordering::Relaxed);
        info!(rules = set.rules.len(), errors = set.errors.len(), dir = %self.dir.display(), "rules loaded");
        self.set.store(Arc::new(set));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Adds one file's rules to `set`, or the rules it had in `previous` when it fails to load.
    fn add_file(
        &self,
        set: &mut RuleSet,
        previous: &RuleSet,
        metrics: &HashMap<&str, &Arc<RuleMetrics>>,
        file: RuleFile,
    ) {
        let loaded = file.outcome.and_then(|rules| match rules.iter().find_map(|r| self.unresolved(&r.statement)) {
            Some(e) => Err(FileError::Syntax(e)),
            None => Ok(rules),
        });
        let active: Vec<Arc<ActiveRule>> = match loaded {
            Ok(rules) => rules
                .into_iter()
                .map(|r| {
                    let m = metrics.get(r.id.as_str()).map_or_else(Default::default, |m| Arc::clone(m));
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

    /// Resolves each rule's sink, and indexes the rules by FROM filter, by event and by the
    /// publish columns they read.
    fn index(&self, set: &mut RuleSet) {
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
    }

    /// A sink or table the statement names but the config does not define, as an error at
    /// the statement's position.
    fn unresolved(&self, st: &Statement) -> Option<ParseError> {
        let sink = st.sink.as_ref().and_then(|sink| match self.sinks.get(sink) {
            Ok(Some(_)) => None,
            Ok(None) => Some(format!("unknown sink `{sink}`: define [sinks.{sink}] in the config")),
            Err(e) => Some(format!("sink `{sink}` cannot start: {e}")),
        });
        let message = sink.or_else(|| {
            let j = st.rule.joins.iter().find(|j| !self.table_names.contains(&j.table))?;
            Some(format!("unknown table `{0}`: define [tables.{0}] in the config", j.table))
        })?;
        Some(ParseError { line: st.line, column: st.column, message })
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

//! The rule pipeline: published messages and broker events in, rows into sinks out, off the
//! MQTT path. It knows the broker only through what it is handed: messages as [`Published`],
//! and the broker that MQTT sinks publish into as a [`LocalBroker`].
//!
//! How a message travels through it:
//!
//! - [`intake`]: the broker asks [`Intake`] whether a rule wants a topic (or an event) and hands
//!   over what one does, a read burst at a time, into a bounded queue;
//! - `runner`, on the rule thread (`thread`), takes the queue in batches and runs each
//!   rule of the [`ruleset`] once per batch on the messages its FROM matched;
//! - each rule's output rows go, as one [`RowBatch`](weir_connectors::row::RowBatch), into the
//!   durable buffer of its sink, from the registry of [`sinks`]; `backlog` holds what a full
//!   sink refuses, so that it holds back only its own rules and their publishers;
//! - [`write_ahead`]: a message the broker kept on disk before acknowledging it is let go once
//!   its rows are safe in the sinks' buffers.
//!
//! [`Pipeline`] starts it all (the rules directory's watcher and the reference tables' loaders
//! included) and stops it.

mod backlog;
pub mod intake;
pub mod published;
pub mod ruleset;
mod runner;
pub mod sinks;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod thread;
pub mod write_ahead;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::JoinSet;
use weir_connectors::driver::SinkHandle;
use weir_connectors::sinks::mqtt::LocalBroker;
use weir_connectors::sinks::{SinkConfig, SinkError};

use crate::tables::load::{keep_loaded, TableConfig};
use crate::tables::Tables;
pub use intake::Intake;
pub use published::{Message, Published};
use ruleset::RuleBook;
pub use ruleset::{RuleMatch, RuleSet};
use runner::Runner;
pub use sinks::Sinks;
use thread::RuleThread;
pub(crate) use thread::STACK;

/// What a pipeline is made of: the parts of the node's config it reads.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig<'a> {
    /// The directory of `*.sql` rule files.
    pub rules_dir: &'a Path,
    /// Where the sinks' buffers (and the built-in SQLite database) live.
    pub data_dir: &'a Path,
    /// The node's name, for the `node` column.
    pub node: &'a str,
    /// `[tables.<name>]`: the reference tables rules JOIN.
    pub tables: &'a BTreeMap<String, TableConfig>,
    /// `[sinks.<name>]`: the destinations of `INSERT INTO`.
    pub sinks: &'a BTreeMap<String, SinkConfig>,
    /// Messages the rules' queue holds before the publishers that feed it pause: normally
    /// [`intake::QUEUE`].
    pub queue: usize,
}

/// Why a pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configured sink could not start.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The rule thread could not be started.
    #[error("cannot start the rule engine's thread: {0}")]
    Thread(std::io::Error),
}

/// A running pipeline.
pub struct Pipeline {
    /// The rules in force.
    book: Arc<RuleBook>,
    /// The broker's door in.
    intake: Arc<Intake>,
    /// Where rules write; stopped last, once no rule writes into them.
    sinks: Arc<Sinks>,
    /// Taken by [`Pipeline::stop`].
    thread: Mutex<Option<RuleThread>>,
    /// Tasks that run until the pipeline stops: the rules directory's watcher, the reference
    /// tables' loaders.
    background: Mutex<JoinSet<()>>,
}

impl Pipeline {
    /// Starts the sinks, loads the rules and starts the rule thread. Call it on the tokio
    /// runtime that the sinks, the watcher and the table loaders should run on.
    pub fn start(config: PipelineConfig<'_>) -> Result<Arc<Pipeline>, StartError> {
        let sinks = Sinks::start(config.sinks, config.data_dir.to_path_buf())?;
        Pipeline::with_sinks(config, sinks)
    }

    /// [`Pipeline::start`] with sinks already started (some perhaps not from the config, as
    /// tests add a destination in memory).
    pub fn with_sinks(config: PipelineConfig<'_>, sinks: Sinks) -> Result<Arc<Pipeline>, StartError> {
        let sinks = Arc::new(sinks);
        let tables = Arc::new(Tables::default());
        let table_names = config.tables.keys().cloned().collect();
        let book = Arc::new(RuleBook::load(config.rules_dir.to_path_buf(), sinks.clone(), tables.clone(), table_names));
        let (intake, queue) = Intake::new(book.clone(), config.queue);
        let runner = Runner {
            book: book.clone(),
            intake: intake.clone(),
            node: config.node.to_string(),
            backlog: Default::default(),
            ran: Default::default(),
        };
        let thread = RuleThread::start(runner, queue).map_err(StartError::Thread)?;
        let mut background = JoinSet::new();
        for (name, table) in config.tables {
            background.spawn(keep_loaded(name.clone(), table.clone(), tables.clone()));
        }
        background.spawn(book.clone().watch());
        Ok(Arc::new(Pipeline {
            book,
            intake,
            sinks,
            thread: Mutex::new(Some(thread)),
            background: Mutex::new(background),
        }))
    }

    /// The broker's door in.
    pub fn intake(&self) -> Arc<Intake> {
        self.intake.clone()
    }

    /// Sets where the broker wrote ahead the messages it hands over (see [`write_ahead`]).
    pub fn keep_input_in(&self, log: Arc<dyn write_ahead::InputLog>) {
        self.intake.keep_input_in(log);
    }

    /// Sets the broker that MQTT sinks without a `server` publish into.
    pub fn connect(&self, broker: Arc<dyn LocalBroker>) {
        self.sinks.connect(broker);
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.book.current()
    }

    /// The sinks started so far (the built-in one starts when a rule first writes into it).
    pub fn sinks(&self) -> Vec<Arc<SinkHandle>> {
        self.sinks.running()
    }

    /// Stops the watcher and the table loaders, then the rule thread, then the sinks: their
    /// buffers keep what was not delivered.
    pub async fn stop(&self) {
        self.background.lock().abort_all();
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            thread.stop().await;
        }
        self.sinks.stop().await;
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("intake", &self.intake).field("sinks", &self.sinks).finish_non_exhaustive()
    }
}

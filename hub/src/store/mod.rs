//! Durable state under `data_dir`: what the broker keeps across a restart or a crash.
//!
//! - [`DataDirLock`] (`lock.rs`): one process per `data_dir`, or a clear error.
//! - [`Store`]: a redb database at `data_dir/weir.redb`. redb is a pure-Rust, crash-safe B-tree
//!   store with ACID transactions and a choice of fsync per commit, which builds with no system
//!   package; one file, no background compaction to tune.
//! - `writer`: the one thread that writes. Changes queue to it; it commits whatever has queued
//!   in one transaction (a group commit, across connections), and says how far it got.
//! - `load`: what the store kept, read once at start (before the writer owns the database).
//! - `record`: a message as stored.
//! - `session`: a persistent session as stored (its fields, and one key per subscription).
//!
//! The store keeps the built-in database's users and the API's keys, retained messages and persistent sessions: their fields, subscriptions,
//! delayed wills, each QoS 1/2 delivery until the subscriber acknowledges it (the message once,
//! in `messages`; a record per delivery, in `queued`), and the incoming QoS 2 packet ids
//! between PUBREC and PUBREL (`awaiting_rel`); and the rules' input: a read burst's QoS 1/2
//! messages that rules want, from before their publisher's acknowledgement until the rows the
//! rules made of them are safe in the sinks' buffers (`rule_input`, see
//! `weir_rules::pipeline::write_ahead`). What it keeps is acknowledged (the publisher's PUBACK
//! or PUBREC, CONNACK, SUBACK, UNSUBACK) once its commit is fsynced (`[durability] mode =
//! "sync"`), or at once while the writer commits it in the background, at least every
//! `interval` (`"async"`); `"off"` keeps nothing on disk.

mod load;
mod lock;
pub mod record;
pub mod session;
mod writer;

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use redb::{Database, TableDefinition};
use serde::Deserialize;
use tokio::sync::watch;
use tracing::info;

pub use load::{Burst, Loaded};
pub use lock::DataDirLock;
use writer::{Change, Progress, Writer};

use crate::message::Message;
use crate::session::SubOptions;

/// Retained messages: topic → [`record`] bytes.
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
/// Persistent sessions: client id → their fields ([`session`]).
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Their subscriptions: [`session::sub_key`] → options.
const SUBSCRIPTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("subscriptions");
/// Messages that persistent sessions' queues hold: id → [`record`] bytes, once per message.
const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
/// Their queues: [`session::queue_key`] → the delivery ([`session::encode_queued`]).
const QUEUED: TableDefinition<&str, &[u8]> = TableDefinition::new("queued");
/// Their incoming QoS 2 packet ids between PUBREC and PUBREL: [`session::rel_key`] → nothing.
const AWAITING_REL: TableDefinition<&str, &[u8]> = TableDefinition::new("awaiting_rel");
/// The rules' input, written ahead: id → the framed [`record`]s of a read burst's QoS 1/2
/// messages that rules want, until the rules' rows of them are safe in the sinks' buffers.
const RULE_INPUT: TableDefinition<u64, &[u8]> = TableDefinition::new("rule_input");

/// Small tables of named records, kept whole: see [`Named`].
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");

/// The tables of named records that the store keeps for other parts of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// The built-in database's users: user id → [`crate::auth::builtin::User`] (postcard).
    Users,
    /// The management API's keys: name → [`crate::api::keys::ApiKey`] (postcard).
    ApiKeys,
}

impl Named {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Named::Users => USERS,
            Named::ApiKeys => API_KEYS,
        }
    }
}

/// Changes waiting for the writer, past which a change is refused (and its publish is not
/// acknowledged): a disk that cannot keep up must not make the queue grow without bound.
const QUEUED_CHANGES: usize = 64 * 1024;
/// In `"async"`, how far the writer may fall behind before acknowledgements wait for it: well
/// under [`QUEUED_CHANGES`], so that publishers slow down before anything is refused.
const ASYNC_LAG: u64 = 16 * 1024;

/// How acknowledgements wait for the disk: `[durability]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Acknowledge once the change is committed and fsynced (group commit).
    #[default]
    Sync,
    /// Acknowledge at once; the writer commits (and fsyncs) in the background, at least every
    /// `interval`: a crash loses the changes its last commit had not taken yet.
    Async,
    /// Keep nothing on disk (before Weir had a store).
    Off,
}

/// `[durability]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DurabilityConfig {
    /// `"sync"`, `"async"` or `"off"`.
    pub mode: Mode,
    /// In `"async"`, the longest the writer gathers changes before it commits and fsyncs them,
    /// in milliseconds (it commits sooner once it has `writer::MAX_BATCH`): the most a crash
    /// loses, with at most `ASYNC_LAG` changes. At least 1.
    pub interval: u64,
}

impl Default for DurabilityConfig {
    fn default() -> Self {
        DurabilityConfig { mode: Mode::Sync, interval: 100 }
    }
}

/// Why the store could not open or keep a change.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data directory.
    #[error("the data directory {dir} is in use by another Weir process{holder}: give each node its own data_dir")]
    Locked {
        /// The data directory.
        dir: String,
        /// " (pid N)" when the lock file says.
        holder: String,
    },
    /// The data directory or its lock file could not be made.
    #[error("cannot use the data directory {dir}: {source}")]
    Dir {
        /// The data directory.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database file could not be opened.
    #[error("cannot open the store {path}: {source} (move the file away to start with an empty store)")]
    Open {
        /// The database file.
        path: String,
        /// Why.
        source: Box<redb::Error>,
    },
    /// A change could not be committed, or was refused because too many wait.
    #[error("the store could not keep the change: {0}")]
    NotKept(String),
}

/// The ticket of the last change queued, and the writer's queue.
type Queue = (u64, std::sync::mpsc::SyncSender<(u64, Change)>);

/// The durable state of a node. Cheap to share: clones use the same database and writer.
#[derive(Clone)]
pub struct Store {
    mode: Mode,
    /// The writer's queue, with the ticket of the last change queued: taken together, so that
    /// tickets reach the writer in order.
    queue: Arc<Mutex<Queue>>,
    progress: watch::Receiver<Progress>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, which a [`DataDirLock`] holds, and reads what it
    /// kept. `None` in mode `"off"`.
    pub fn open(dir: &Path, config: &DurabilityConfig) -> Result<Option<(Store, Loaded)>, StoreError> {
        if config.mode == Mode::Off {
            return Ok(None);
        }
        let path = dir.join("weir.redb");
        let db = Database::create(&path)
            .map_err(|e| StoreError::Open { path: path.display().to_string(), source: Box::new(e.into()) })?;
        let loaded = load::load(&db);
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUED_CHANGES);
        let (progress_tx, progress) = watch::channel(Progress::default());
        let gather = match config.mode {
            Mode::Async => std::time::Duration::from_millis(config.interval.max(1)),
            Mode::Sync | Mode::Off => std::time::Duration::ZERO,
        };
        Writer { path: path.clone(), db: Some(db), progress: progress_tx, gather }
            .spawn(rx)
            .map_err(|source| StoreError::Dir { dir: dir.display().to_string(), source })?;
        info!(path = %path.display(), mode = ?config.mode, "store opened");
        Ok(Some((Store { mode: config.mode, queue: Arc::new(Mutex::new((0, tx))), progress }, loaded)))
    }

    /// Queues `change`; returns its ticket for [`Store::kept`].
    fn queue(&self, change: Change) -> Result<u64, StoreError> {
        let mut queue = self.queue.lock();
        let ticket = queue.0 + 1;
        queue.1.try_send((ticket, change)).map_err(|e| StoreError::NotKept(format!("the writer is behind ({e})")))?;
        queue.0 = ticket;
        Ok(ticket)
    }

    /// Keeps `msg` as its topic's retained message.
    pub fn put_retained(&self, msg: &Message) -> Result<u64, StoreError> {
        self.queue(Change::PutRetained(msg.topic.to_string(), record::encode(msg)))
    }

    /// Forgets the retained message of `topic`.
    pub fn delete_retained(&self, topic: &str) -> Result<u64, StoreError> {
        self.queue(Change::DeleteRetained(topic.to_string()))
    }

    /// Keeps a persistent session's fields (see [`session::encode_meta`]).
    pub fn put_session(&self, client_id: &str, meta: Vec<u8>) -> Result<u64, StoreError> {
        self.queue(Change::PutSession(client_id.to_string(), meta))
    }

    /// Forgets a session and its subscriptions.
    pub fn delete_session(&self, client_id: &str) -> Result<u64, StoreError> {
        self.queue(Change::DeleteSession(client_id.to_string()))
    }

    /// Keeps a session's subscription to `filter`, or forgets it (`None`).
    pub fn put_subscription(
        &self,
        client_id: &str,
        filter: &str,
        opts: Option<&SubOptions>,
    ) -> Result<u64, StoreError> {
        let key = session::sub_key(client_id, filter);
        self.queue(match opts {
            Some(o) => Change::PutSubscription(key, session::encode_sub(o)),
            None => Change::DeleteSubscription(key),
        })
    }

    /// Keeps a QoS 1/2 delivery queued for a persistent session (and its message, the first
    /// time a session queues it: `message` then holds its bytes).
    pub fn put_queued(
        &self,
        client_id: &str,
        place: u64,
        message: Option<(u64, Vec<u8>)>,
        delivery: Vec<u8>,
    ) -> Result<u64, StoreError> {
        let key = session::queue_key(client_id, place);
        if let Some((id, bytes)) = message {
            self.queue(Change::PutMessage(id, bytes))?;
        }
        self.queue(Change::PutQueued(key, delivery))
    }

    /// Keeps only the PUBREL of a QoS 2 delivery the subscriber answered with PUBREC, and
    /// forgets its message if no other delivery holds it (`last`).
    pub fn release_queued(
        &self,
        client_id: &str,
        place: u64,
        packet_id: u16,
        last: Option<u64>,
    ) -> Result<u64, StoreError> {
        let released = session::Queued {
            message: 0,
            qos: 2,
            retain: false,
            subscription_id: None,
            released: Some(packet_id),
            share: None,
        };
        let key = session::queue_key(client_id, place);
        self.queue(Change::ReleaseQueued(key, session::encode_queued(&released), last))
    }

    /// Forgets a delivery (acknowledged, dropped or expired), and its message if no other
    /// delivery holds it (`last`).
    pub fn delete_queued(&self, client_id: &str, place: u64, last: Option<u64>) -> Result<u64, StoreError> {
        self.queue(Change::DeleteQueued(session::queue_key(client_id, place), last))
    }

    /// Keeps (or forgets) an incoming QoS 2 packet id between PUBREC and PUBREL, so that a
    /// PUBLISH sent again after a restart is not routed twice.
    pub fn put_awaiting_rel(&self, client_id: &str, packet_id: u16, awaiting: bool) -> Result<u64, StoreError> {
        let key = session::rel_key(client_id, packet_id);
        self.queue(if awaiting { Change::PutRel(key) } else { Change::DeleteRel(key) })
    }

    /// Keeps the messages of a read burst that rules want ([`record::append_framed`]), before
    /// their publisher's acknowledgement: the write-ahead.
    pub fn put_rule_input(&self, id: u64, framed: Vec<u8>) -> Result<u64, StoreError> {
        self.queue(Change::PutRuleInput(id, framed))
    }

    /// Forgets bursts whose messages the rules have run (their rows are safe in the sinks'
    /// buffers).
    pub fn delete_rule_input(&self, ids: Vec<u64>) -> Result<u64, StoreError> {
        self.queue(Change::DeleteRuleInput(ids))
    }

    /// Keeps a named record in `table`, or forgets it (`None`).
    pub fn put_named(&self, table: Named, name: &str, record: Option<Vec<u8>>) -> Result<u64, StoreError> {
        self.queue(Change::Named(table, name.to_string(), record))
    }

    /// Resolves once every change queued so far is settled, or after `limit`: a clean stop
    /// lets the writer finish first.
    pub async fn settle(&self, limit: std::time::Duration) {
        let last = self.queue.lock().0;
        let mut progress = self.progress.clone();
        if tokio::time::timeout(limit, progress.wait_for(|p| p.settled >= last)).await.is_err() {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "stopping before the store's writer caught up");
        }
    }

    /// Resolves once the change with `ticket` is kept as the mode says, or fails if the writer
    /// could not commit it. In `"async"` it resolves at once unless the writer is more than
    /// `ASYNC_LAG` changes behind: then it waits until it is not (back-pressure, which also
    /// bounds what a crash can lose).
    pub async fn kept(&self, ticket: u64) -> Result<(), StoreError> {
        let lag = match self.mode {
            Mode::Sync => 0,
            Mode::Async => ASYNC_LAG,
            Mode::Off => return Ok(()),
        };
        if self.progress.borrow().settled + lag >= ticket {
            return Ok(());
        }
        let mut progress = self.progress.clone();
        let seen = progress
            .wait_for(|p| p.settled + lag >= ticket)
            .await
            .map_err(|_| StoreError::NotKept("the writer has stopped".into()))?;
        match seen.lost(ticket).filter(|_| lag == 0) {
            None => Ok(()),
            Some(why) => Err(StoreError::NotKept(why.to_string())),
        }
    }
}

//! The store's one writer: a thread that takes every change queued since its last commit and
//! commits them in one fsynced transaction (a group commit: one fsync for a whole read burst,
//! and for every connection that wrote meanwhile), then publishes how far it got.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, Durability};
use tokio::sync::watch;
use tracing::warn;

use super::{RETAINED, SESSIONS, SUBSCRIPTIONS};

/// A change to the durable state.
pub(super) enum Change {
    /// Topic, and the message's [`super::record`] bytes.
    PutRetained(String, Vec<u8>),
    DeleteRetained(String),
    /// Client id, and the session's fields ([`super::session`]).
    PutSession(String, Vec<u8>),
    /// A session and all its subscriptions.
    DeleteSession(String),
    /// A subscription's key ([`super::session::sub_key`]) and options.
    PutSubscription(String, Vec<u8>),
    DeleteSubscription(String),
}

/// How far the writer got.
#[derive(Debug, Clone, Default)]
pub(super) struct Progress {
    /// Every change up to this ticket is committed.
    pub(super) committed: u64,
    /// Why the last commit failed, until one succeeds.
    pub(super) failing: Option<String>,
}

/// Changes in one commit, at most: a long queue is taken in several commits, so that the first
/// of them are acknowledged early.
const MAX_BATCH: usize = 4096;
/// The longest wait before a failed commit is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub(super) struct Writer {
    pub(super) db: Arc<Database>,
    pub(super) progress: watch::Sender<Progress>,
}

impl Writer {
    /// Runs on a thread of its own until every sender of `changes` is gone.
    pub(super) fn spawn(self, changes: Receiver<(u64, Change)>) -> std::io::Result<()> {
        std::thread::Builder::new().name("weir-store".into()).spawn(move || self.run(&changes)).map(|_| ())
    }

    fn run(&self, changes: &Receiver<(u64, Change)>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Ok(first) = changes.recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                let Ok(next) = changes.try_recv() else { break };
                batch.push(next);
            }
            // A failed commit (a full disk) is tried again: the changes are never dropped, and
            // nobody is told they are kept until they are.
            let mut backoff = Duration::from_millis(10);
            while let Err(e) = self.commit(&batch) {
                warn!(error = %e, changes = batch.len(), "the store cannot commit; acknowledgements wait, trying again");
                self.progress.send_modify(|p| p.failing = Some(e.to_string()));
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            let last = batch.last().map_or(0, |(ticket, _)| *ticket);
            batch.clear();
            self.progress.send_modify(|p| {
                p.committed = last;
                p.failing = None;
            });
        }
    }

    fn commit(&self, batch: &[(u64, Change)]) -> Result<(), redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut retained = txn.open_table(RETAINED)?;
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut subscriptions = txn.open_table(SUBSCRIPTIONS)?;
            for (_, change) in batch {
                match change {
                    Change::PutRetained(topic, bytes) => {
                        retained.insert(topic.as_str(), bytes.as_slice())?;
                    }
                    Change::DeleteRetained(topic) => {
                        retained.remove(topic.as_str())?;
                    }
                    Change::PutSession(client_id, bytes) => {
                        sessions.insert(client_id.as_str(), bytes.as_slice())?;
                    }
                    Change::DeleteSession(client_id) => {
                        sessions.remove(client_id.as_str())?;
                        let (from, to) = super::session::sub_range(client_id);
                        subscriptions.retain_in(from.as_str()..to.as_str(), |_, _| false)?;
                    }
                    Change::PutSubscription(key, bytes) => {
                        subscriptions.insert(key.as_str(), bytes.as_slice())?;
                    }
                    Change::DeleteSubscription(key) => {
                        subscriptions.remove(key.as_str())?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

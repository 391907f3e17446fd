//! The store's one writer: a thread that takes every change queued since its last commit and
//! commits them in one fsynced transaction (a group commit: one fsync for a whole read burst,
//! and for every connection that wrote meanwhile), then publishes how far it got. In
//! `"async"`, where nobody waits for it, a commit first gathers changes for up to `interval`.
//!
//! A commit that fails (a full disk) is tried [`ATTEMPTS`] times, then its changes are given up
//! and reported: whoever waits for them is told they were not kept, so their acknowledgements
//! never go out, and the writer goes on with the next changes (which may fit, once something
//! was deleted) instead of blocking behind the one that cannot.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use tokio::sync::watch;
use tracing::{error, warn};

use super::{AWAITING_REL, MESSAGES, QUEUED, RETAINED, RULE_INPUT, SESSIONS, SUBSCRIPTIONS};

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
    /// A message queued for persistent sessions: its id and [`super::record`] bytes.
    PutMessage(u64, Vec<u8>),
    /// A delivery's key ([`super::session::queue_key`]) and what it is.
    PutQueued(String, Vec<u8>),
    /// A delivery done with, and its message's id if no other delivery holds it.
    DeleteQueued(String, Option<u64>),
    /// A QoS 2 delivery answered with PUBREC: its record replaced by the PUBREL's, and its
    /// message's id if no other delivery holds it.
    ReleaseQueued(String, Vec<u8>, Option<u64>),
    /// An incoming QoS 2 packet id awaiting PUBREL ([`super::session::rel_key`]), and its end.
    PutRel(String),
    DeleteRel(String),
    /// A burst's messages that rules want, written ahead: its id and framed
    /// [`super::record`]s.
    PutRuleInput(u64, Vec<u8>),
    /// Bursts whose messages the rules have run.
    DeleteRuleInput(Vec<u64>),
    /// A named record of one of the [`super::Named`] tables, or its deletion.
    Named(super::Named, String, Option<Vec<u8>>),
}

/// How far the writer got.
#[derive(Debug, Clone, Default)]
pub(super) struct Progress {
    /// Every change up to this ticket is committed, or given up and listed in `lost`.
    pub(super) settled: u64,
    /// The latest ranges of tickets given up (first, last, why), at most [`LOST_KEPT`]: a
    /// waiter looks here once `settled` passes its ticket, which happens within moments.
    pub(super) lost: std::collections::VecDeque<(u64, u64, String)>,
}

impl Progress {
    /// Why `ticket` was given up, if it was.
    pub(super) fn lost(&self, ticket: u64) -> Option<&str> {
        self.lost.iter().find(|(first, last, _)| (*first..=*last).contains(&ticket)).map(|(_, _, why)| why.as_str())
    }
}

/// Tries of one commit before its changes are given up.
const ATTEMPTS: u32 = 3;
/// Given-up ranges remembered.
const LOST_KEPT: usize = 256;

/// Changes in one commit, at most: a long queue is taken in several commits, so that the first
/// of them are acknowledged early.
pub(super) const MAX_BATCH: usize = 4096;

pub(super) struct Writer {
    /// The database file, to open again after an I/O error (redb refuses every transaction
    /// after one until then).
    pub(super) path: PathBuf,
    /// The database; only the writer holds it once the store has been read at start. `None`
    /// while it cannot be opened again after an I/O error: commits then fail, and are tried.
    pub(super) db: Option<Database>,
    pub(super) progress: watch::Sender<Progress>,
    /// How long a commit waits for more changes after its first, unless it has [`MAX_BATCH`]:
    /// zero in `"sync"` (whoever waits, waits for this commit), `interval` in `"async"`
    /// (nobody waits, and fewer, larger commits cost less).
    pub(super) gather: Duration,
}

impl Writer {
    /// Runs on a thread of its own until every sender of `changes` is gone.
    pub(super) fn spawn(self, changes: Receiver<(u64, Change)>) -> std::io::Result<()> {
        std::thread::Builder::new().name("weir-store".into()).spawn(move || self.run(&changes)).map(|_| ())
    }

    fn run(mut self, changes: &Receiver<(u64, Change)>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Ok(first) = changes.recv() {
            let until = (!self.gather.is_zero()).then(|| Instant::now() + self.gather);
            batch.push(first);
            while batch.len() < MAX_BATCH {
                let next = match until.and_then(|u| u.checked_duration_since(Instant::now())) {
                    Some(left) if !left.is_zero() => changes.recv_timeout(left).ok(),
                    _ => changes.try_recv().ok(),
                };
                let Some(next) = next else { break };
                batch.push(next);
            }
            let (first, last) = (batch[0].0, batch.last().map_or(0, |(ticket, _)| *ticket));
            let failed = self.commit_with_retries(&batch);
            batch.clear();
            self.progress.send_modify(|p| {
                p.settled = last;
                if let Some(why) = failed {
                    if p.lost.len() == LOST_KEPT {
                        p.lost.pop_front();
                    }
                    p.lost.push_back((first, last, why));
                }
            });
        }
    }

    /// Commits `batch`, trying [`ATTEMPTS`] times; says why if it could not.
    fn commit_with_retries(&mut self, batch: &[(u64, Change)]) -> Option<String> {
        let mut wait = Duration::from_millis(10);
        for attempt in 1..=ATTEMPTS {
            let outcome = self.commit(batch);
            if outcome.is_err() {
                // After an I/O error (a full disk), redb answers every transaction with
                // `PreviousIo` until the database is opened again.
                self.reopen();
            }
            match outcome {
                Ok(()) => return None,
                Err(e) if attempt == ATTEMPTS => {
                    error!(error = %e, changes = batch.len(), "the store could not commit: these changes are not kept, and were not acknowledged");
                    return Some(e.to_string());
                }
                Err(e) => warn!(error = %e, attempt, "the store could not commit; trying again"),
            }
            std::thread::sleep(wait);
            wait *= 10;
        }
        None
    }

    fn reopen(&mut self) {
        // The old handle goes first: one process may hold the file once.
        self.db = None;
        match Database::create(&self.path) {
            Ok(db) => self.db = Some(db),
            Err(e) => error!(error = %e, path = %self.path.display(), "the store cannot be opened again"),
        }
    }

    fn commit(&self, batch: &[(u64, Change)]) -> Result<(), redb::Error> {
        let db = self.db.as_ref().ok_or(redb::Error::PreviousIo)?;
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut retained = txn.open_table(RETAINED)?;
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut subscriptions = txn.open_table(SUBSCRIPTIONS)?;
            let mut messages = txn.open_table(MESSAGES)?;
            let mut queued = txn.open_table(QUEUED)?;
            let mut awaiting_rel = txn.open_table(AWAITING_REL)?;
            let mut rule_input = txn.open_table(RULE_INPUT)?;
            let mut users = txn.open_table(super::Named::Users.table())?;
            let mut api_keys = txn.open_table(super::Named::ApiKeys.table())?;
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
                        // Subscription and queue keys share the `client_id \0` prefix. The
                        // messages its queue held go at the next start if nothing else holds them.
                        let (from, to) = super::session::sub_range(client_id);
                        subscriptions.retain_in(from.as_str()..to.as_str(), |_, _| false)?;
                        queued.retain_in(from.as_str()..to.as_str(), |_, _| false)?;
                        awaiting_rel.retain_in(from.as_str()..to.as_str(), |_, _| false)?;
                    }
                    Change::PutRel(key) => {
                        awaiting_rel.insert(key.as_str(), &[][..])?;
                    }
                    Change::DeleteRel(key) => {
                        awaiting_rel.remove(key.as_str())?;
                    }
                    Change::PutMessage(id, bytes) => {
                        messages.insert(*id, bytes.as_slice())?;
                    }
                    Change::PutQueued(key, bytes) => {
                        queued.insert(key.as_str(), bytes.as_slice())?;
                    }
                    Change::DeleteQueued(key, last) => {
                        queued.remove(key.as_str())?;
                        if let Some(id) = last {
                            messages.remove(*id)?;
                        }
                    }
                    Change::ReleaseQueued(key, bytes, last) => {
                        queued.insert(key.as_str(), bytes.as_slice())?;
                        if let Some(id) = last {
                            messages.remove(*id)?;
                        }
                    }
                    Change::PutRuleInput(id, bytes) => {
                        rule_input.insert(*id, bytes.as_slice())?;
                    }
                    Change::DeleteRuleInput(ids) => {
                        for id in ids {
                            rule_input.remove(*id)?;
                        }
                    }
                    Change::PutSubscription(key, bytes) => {
                        subscriptions.insert(key.as_str(), bytes.as_slice())?;
                    }
                    Change::DeleteSubscription(key) => {
                        subscriptions.remove(key.as_str())?;
                    }
                    Change::Named(which, name, record) => {
                        let table = match which {
                            super::Named::Users => &mut users,
                            super::Named::ApiKeys => &mut api_keys,
                        };
                        match record {
                            Some(bytes) => table.insert(name.as_str(), bytes.as_slice())?,
                            None => table.remove(name.as_str())?,
                        };
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

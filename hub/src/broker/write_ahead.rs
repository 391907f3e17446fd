//! The rules' input written ahead (`crate::store`, table `rule_input`): the QoS 1/2 messages of
//! a read burst that some rule wants are in the store before their publisher gets PUBACK (or
//! PUBREC), as one record per burst in the same group commit as the rest of the burst, and stay
//! there until the rule thread says that the rows made of every one of them are safe in the
//! sinks' buffers (`weir_rules::pipeline::write_ahead`). At start, what the rules had not run is
//! handed to them again. QoS 0 messages, and messages no rule wants, never touch the store.
//!
//! One record per burst rather than per message: the writer's cost is per record (a B-tree
//! insert, then a removal), and a burst of a busy publisher holds tens of messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::{info, warn};
use weir_rules::pipeline::write_ahead::InputLog;

use super::persist::Kept;
use super::Broker;
use crate::message::Message;
use crate::store::record;

/// How long a clean stop waits for the store's writer.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The records written ahead that the rules have not let go of.
#[derive(Debug, Default)]
pub(super) struct RuleInput {
    /// The last record id given.
    last: AtomicU64,
    /// Each record's messages that the rules have yet to run.
    pending: Mutex<HashMap<u64, u32>>,
}

/// What a read burst writes ahead for the rules, built as its messages come.
#[derive(Debug, Default)]
pub struct Ahead {
    /// The record's id, given at the burst's first message that is written ahead.
    id: u64,
    /// Its messages so far.
    count: u32,
    /// Its messages, framed ([`record::append_framed`]).
    bytes: Vec<u8>,
}

impl Broker {
    /// Adds `msg`, which a rule wants, to what its burst writes ahead.
    pub(super) fn write_ahead(&self, msg: &Message, ahead: &mut Ahead) {
        if self.store.is_none() {
            return;
        }
        if ahead.count == 0 {
            ahead.id = self.rule_input.last.fetch_add(1, Ordering::Relaxed) + 1;
        }
        let _ = msg.store.rule_input.set(ahead.id);
        record::append_framed(msg, &mut ahead.bytes);
        ahead.count += 1;
    }

    /// Writes what a burst wrote ahead into the store, before the rules get its messages; the
    /// burst's acknowledgements wait for it.
    pub(super) fn keep_ahead(&self, ahead: &mut Ahead) -> Kept {
        let Some(store) = self.store.as_ref().filter(|_| ahead.count > 0) else { return Ok(None) };
        self.rule_input.pending.lock().insert(ahead.id, std::mem::take(&mut ahead.count));
        let kept = store.put_rule_input(ahead.id, std::mem::take(&mut ahead.bytes));
        kept.map(Some).inspect_err(|e| warn!(error = %e, "messages for the rules not kept"))
    }

    /// Hands the rules, in order, the messages written ahead that they had not run when the
    /// node stopped (by record); they let each record go once they have run it again. Call it
    /// once, at start, before clients connect.
    pub fn replay_rule_input(self: &Arc<Self>, kept: Vec<crate::store::Burst>) {
        let last = kept.iter().map(|(id, _)| *id).max().unwrap_or(0);
        self.rule_input.last.store(last, Ordering::Relaxed);
        let Some(rules) = self.rules.clone().filter(|_| !kept.is_empty()) else { return };
        let count: usize = kept.iter().map(|(_, msgs)| msgs.len()).sum();
        self.rule_input.pending.lock().extend(kept.iter().map(|(id, msgs)| (*id, msgs.len() as u32)));
        info!(count, "messages the rules had not run came back from the store: running them");
        tokio::spawn(async move {
            for (_, msgs) in kept {
                loop {
                    let room = rules.room();
                    if !rules.is_full() {
                        break;
                    }
                    room.await;
                }
                rules.offer(msgs.into_iter().map(|m| m as weir_rules::pipeline::Message).collect());
            }
        });
    }

    /// Waits (a bounded while) for the store's writer to commit what is queued: the last
    /// step of a clean stop, after the rules let go of what they ran.
    pub async fn settle_store(&self) {
        if let Some(store) = &self.store {
            store.settle(SETTLE_LIMIT).await;
        }
    }
}

impl InputLog for Broker {
    /// `ids` has a record's id once per message of it that ran; a record goes once all have.
    fn ran(&self, mut ids: Vec<u64>) {
        let Some(store) = &self.store else { return };
        ids.sort_unstable();
        let mut done = Vec::new();
        {
            let mut pending = self.rule_input.pending.lock();
            for run in ids.chunk_by(|a, b| a == b) {
                let Some(left) = pending.get_mut(&run[0]) else { continue };
                *left = left.saturating_sub(run.len() as u32);
                if *left == 0 {
                    pending.remove(&run[0]);
                    done.push(run[0]);
                }
            }
        }
        if done.is_empty() {
            return;
        }
        if let Err(e) = store.delete_rule_input(done) {
            // Kept a while longer: a crash before the next start runs them again.
            warn!(error = %e, "messages the rules have run are still in the store");
        }
    }
}

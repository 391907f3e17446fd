//! The rules' input written ahead (`crate::store`, table `rule_input`): a QoS 1/2 message that
//! a rule wants is in the store before its publisher gets PUBACK (or PUBREC), group-committed
//! with the rest of its read burst, and stays there until the rule thread says that the rows
//! made of it are safe in the sinks' buffers (`weir_rules::pipeline::write_ahead`). At start,
//! what the rules had not run is handed to them again. QoS 0 messages, and messages no rule
//! wants, never touch the store.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::{info, warn};
use weir_rules::pipeline::write_ahead::InputLog;

use super::persist::Kept;
use super::Broker;
use crate::message::Message;

/// Messages handed to the rules at once when the kept input runs again at start: the rules'
/// queue bound then holds the rest back, as it holds back publishers.
const REPLAY_CHUNK: usize = 1024;
/// How long a clean stop waits for the store's writer.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Broker {
    /// Writes `msg`, which a rule wants, ahead into the store; the burst's acknowledgements
    /// wait for it.
    pub(super) fn write_ahead(&self, msg: &Message) -> Kept {
        let Some(store) = &self.store else { return Ok(None) };
        let id = self.next_rule_input.fetch_add(1, Ordering::Relaxed);
        let _ = msg.store.rule_input.set(id);
        store.put_rule_input(id, msg).map(Some).inspect_err(|e| warn!(error = %e, "a message for the rules not kept"))
    }

    /// Hands the rules, in order, the messages written ahead that they had not run when the
    /// node stopped; they let each go once they have run it again. Call it once, at start,
    /// before clients connect.
    pub fn replay_rule_input(self: &Arc<Self>, kept: Vec<Arc<Message>>) {
        let last = kept.iter().filter_map(|m| m.store.rule_input.get().copied()).max();
        self.next_rule_input.store(last.map_or(1, |id| id + 1), Ordering::Relaxed);
        let Some(rules) = self.rules.clone().filter(|_| !kept.is_empty()) else { return };
        info!(count = kept.len(), "messages the rules had not run came back from the store: running them");
        tokio::spawn(async move {
            for chunk in kept.chunks(REPLAY_CHUNK) {
                loop {
                    let room = rules.room();
                    if !rules.is_full() {
                        break;
                    }
                    room.await;
                }
                rules.offer(chunk.iter().map(|m| m.clone() as weir_rules::pipeline::Message).collect());
            }
        });
    }
}

impl Broker {
    /// Waits (a bounded while) for the store's writer to commit what is queued: the last
    /// step of a clean stop, after the rules let go of what they ran.
    pub async fn settle_store(&self) {
        if let Some(store) = &self.store {
            store.settle(SETTLE_LIMIT).await;
        }
    }
}

impl InputLog for Broker {
    fn ran(&self, ids: Vec<u64>) {
        let Some(store) = &self.store else { return };
        if let Err(e) = store.delete_rule_input(ids) {
            // Kept a while longer: a crash before the next start runs them again.
            warn!(error = %e, "messages the rules have run are still in the store");
        }
    }
}

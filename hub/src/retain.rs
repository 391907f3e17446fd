//! Retained messages: the last retained message of each topic, handed to new subscribers,
//! within `[retainer]`'s bounds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ntex_bytes::ByteString;
use parking_lot::RwLock;
use weir_types::topic;

use crate::config::RetainerConfig;
use crate::message::Message;
use crate::store::Store;

/// The retained messages of this node, by topic.
#[derive(Debug, Default)]
pub struct RetainStore {
    by_topic: RwLock<HashMap<ByteString, Arc<Message>>>,
    /// Its bounds.
    limits: RetainerConfig,
    /// Where changes are kept across restarts; `None` keeps them in memory only.
    store: Option<Store>,
}

/// What [`RetainStore::set`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retained {
    /// Stored as its topic's retained message; with a store, the ticket of its change there
    /// ([`Store::kept`]).
    Stored(Option<u64>),
    /// Its empty payload deleted the topic's retained message (the same ticket).
    Deleted(Option<u64>),
    /// Stored in memory, but the store refused it (its writer is too far behind): not kept.
    NotKept,
    /// Not retained: its payload is over `max_payload_size`.
    PayloadTooLarge,
    /// Not retained: it would be a new topic past `max_retained_messages`.
    StoreFull,
}

impl RetainStore {
    /// An empty store within `limits`, kept in memory only.
    pub fn new(limits: RetainerConfig) -> RetainStore {
        RetainStore { by_topic: RwLock::default(), limits, store: None }
    }

    /// The retained messages `store` kept (`kept`, within `limits`), keeping changes there.
    pub fn restore(limits: RetainerConfig, store: Store, kept: Vec<Message>) -> RetainStore {
        let mut by_topic = HashMap::new();
        for msg in kept.into_iter().take(limits.max_retained_messages) {
            by_topic.insert(msg.topic.clone(), Arc::new(msg));
        }
        if !by_topic.is_empty() {
            tracing::info!(count = by_topic.len(), "retained messages restored from the store");
        }
        RetainStore { by_topic: RwLock::new(by_topic), limits, store: Some(store) }
    }

    /// Hands a change to the store, if there is one: its ticket, or `Err` if it was refused.
    fn keep(&self, change: impl FnOnce(&Store) -> Result<u64, crate::store::StoreError>) -> Result<Option<u64>, ()> {
        match &self.store {
            None => Ok(None),
            Some(store) => change(store).map(Some).map_err(|e| tracing::warn!(error = %e, "retained message not kept")),
        }
    }

    /// Stores `msg` as its topic's retained message (a copy that owns its bytes, so that it
    /// costs its own size), or deletes it when the payload is empty; within the bounds.
    pub fn set(&self, msg: &Message) -> Retained {
        if msg.payload.is_empty() {
            self.by_topic.write().remove(&msg.topic);
            return self.keep(|s| s.delete_retained(&msg.topic)).map_or(Retained::NotKept, Retained::Deleted);
        }
        if msg.payload.len() > self.limits.max_payload_size {
            return Retained::PayloadTooLarge;
        }
        let stored = Arc::new(msg.detached());
        let mut map = self.by_topic.write();
        if map.len() >= self.limits.max_retained_messages && !map.contains_key(&msg.topic) {
            return Retained::StoreFull;
        }
        // The change is queued under the map's lock: two publishes to one topic reach the store
        // in the order they replaced each other here.
        let kept = self.keep(|s| s.put_retained(&stored));
        map.insert(stored.topic.clone(), stored);
        kept.map_or(Retained::NotKept, Retained::Stored)
    }

    /// The unexpired retained messages whose topic matches `filter`; expired ones are removed.
    pub fn matching(&self, filter: &str) -> Vec<Arc<Message>> {
        let now = Instant::now();
        let mut expired = Vec::new();
        let found = {
            let map = self.by_topic.read();
            map.values()
                .filter(|m| topic::matches(filter, &m.topic))
                .filter(|m| {
                    let gone = m.is_expired(now);
                    if gone {
                        expired.push(m.topic.clone());
                    }
                    !gone
                })
                .cloned()
                .collect()
        };
        if !expired.is_empty() {
            let mut map = self.by_topic.write();
            for t in expired {
                map.remove(&t);
            }
        }
        found
    }

    /// The number of topics with a retained message.
    pub fn len(&self) -> usize {
        self.by_topic.read().len()
    }

    /// Whether no topic has one.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

/// The retained messages of this node, by topic.
#[derive(Debug, Default)]
pub struct RetainStore {
    by_topic: RwLock<HashMap<ByteString, Arc<Message>>>,
    /// Its bounds.
    limits: RetainerConfig,
}

/// What [`RetainStore::set`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retained {
    /// Stored as its topic's retained message.
    Stored,
    /// Its empty payload deleted the topic's retained message.
    Deleted,
    /// Not retained: its payload is over `max_payload_size`.
    PayloadTooLarge,
    /// Not retained: it would be a new topic past `max_retained_messages`.
    StoreFull,
}

impl RetainStore {
    /// An empty store within `limits`.
    pub fn new(limits: RetainerConfig) -> RetainStore {
        RetainStore { by_topic: RwLock::default(), limits }
    }

    /// Stores `msg` as its topic's retained message (a copy that owns its bytes, so that it
    /// costs its own size), or deletes it when the payload is empty; within the bounds.
    pub fn set(&self, msg: &Message) -> Retained {
        if msg.payload.is_empty() {
            self.by_topic.write().remove(&msg.topic);
            return Retained::Deleted;
        }
        if msg.payload.len() > self.limits.max_payload_size {
            return Retained::PayloadTooLarge;
        }
        let stored = Arc::new(msg.detached());
        let mut map = self.by_topic.write();
        if map.len() >= self.limits.max_retained_messages && !map.contains_key(&msg.topic) {
            return Retained::StoreFull;
        }
        map.insert(stored.topic.clone(), stored);
        Retained::Stored
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

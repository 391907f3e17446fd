//! Retained messages: the last retained message of each topic, handed to new subscribers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ntex_bytes::ByteString;
use parking_lot::RwLock;
use weir_types::topic;

use crate::message::Message;

/// The retained messages of this node, by topic.
#[derive(Debug, Default)]
pub struct RetainStore {
    by_topic: RwLock<HashMap<ByteString, Arc<Message>>>,
}

impl RetainStore {
    /// Stores `msg` as its topic's retained message, or deletes it when the payload is empty.
    pub fn set(&self, msg: &Arc<Message>) {
        let mut map = self.by_topic.write();
        if msg.payload.is_empty() {
            map.remove(&msg.topic);
        } else {
            map.insert(msg.topic.clone(), msg.clone());
        }
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

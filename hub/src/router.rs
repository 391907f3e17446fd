//! The subscription table of this node: filter → sessions, answered through the topic trie.
//!
//! Each filter's slot holds its direct subscribers and its shared-subscription groups; a group
//! gives each message to one member, round robin, preferring members that are connected.
//! [`Router::route`] yields each destination of a message as a [`Route`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use weir_types::trie::{Slot, Trie};

use crate::message::{Delivery, Message, ShareRef};
use crate::session::{Session, SubOptions};

/// Where a message that matched goes: the one seam between routing and delivery. Today each
/// destination is a session on this node; a cluster adds the nodes that have matching
/// subscribers here, and only the broker's publish path has to learn of them.
#[derive(Debug)]
pub enum Route<'a> {
    /// A session on this node, with the delivery its subscription's options make.
    Session(&'a Arc<Session>, Delivery),
}

/// A session subscribed to a filter, with its options.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The subscriber's session.
    pub session: Arc<Session>,
    /// The options it subscribed with.
    pub opts: SubOptions,
}

/// The members of one `$share/<group>/<filter>`.
#[derive(Debug)]
pub struct SharedGroup {
    /// The group's name and filter, carried by each delivery it makes.
    share: ShareRef,
    members: Vec<Subscriber>,
    /// Round-robin cursor; atomic so that routing needs only a read lock.
    next: AtomicUsize,
}

impl SharedGroup {
    /// The member that gets the next message: round robin over the connected members, or over
    /// all of them when none is connected (their queues keep the message). `exclude` skips a
    /// member that is leaving.
    fn pick(&self, exclude: Option<u64>) -> Option<&Subscriber> {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let eligible = |s: &&Subscriber| Some(s.session.uid) != exclude;
        (0..n)
            .map(|i| &self.members[(start + i) % n])
            .filter(eligible)
            .find(|s| s.session.is_connected())
            .or_else(|| (0..n).map(|i| &self.members[(start + i) % n]).find(eligible))
    }
}

/// Everything subscribed to one filter.
#[derive(Debug, Default)]
pub struct FilterSubs {
    direct: HashMap<u64, Subscriber>,
    groups: HashMap<Arc<str>, SharedGroup>,
}

impl Slot for FilterSubs {
    fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.groups.is_empty()
    }
}

/// The node's subscription table.
#[derive(Debug, Default)]
pub struct Router {
    trie: RwLock<Trie<FilterSubs>>,
}

impl Router {
    /// Adds or replaces a subscription; returns whether it existed before (for Retain Handling 1).
    pub fn subscribe(&self, filter: &str, group: Option<&str>, sub: Subscriber) -> bool {
        self.trie.write().update(filter, |slot| {
            let uid = sub.session.uid;
            match group {
                None => slot.direct.insert(uid, sub).is_some(),
                Some(g) => {
                    let group = slot.groups.entry(g.into()).or_insert_with(|| SharedGroup {
                        share: ShareRef { group: g.into(), filter: filter.into() },
                        members: Vec::new(),
                        next: AtomicUsize::new(0),
                    });
                    if let Some(m) = group.members.iter_mut().find(|m| m.session.uid == uid) {
                        m.opts = sub.opts;
                        true
                    } else {
                        group.members.push(sub);
                        false
                    }
                }
            }
        })
    }

    /// Removes a subscription; returns whether it existed.
    pub fn unsubscribe(&self, filter: &str, group: Option<&str>, session_uid: u64) -> bool {
        self.trie.write().update(filter, |slot| match group {
            None => slot.direct.remove(&session_uid).is_some(),
            Some(g) => {
                let Some(group) = slot.groups.get_mut(g) else {
                    return false;
                };
                let before = group.members.len();
                group.members.retain(|m| m.session.uid != session_uid);
                let removed = group.members.len() != before;
                if group.members.is_empty() {
                    slot.groups.remove(g);
                }
                removed
            }
        })
    }

    /// Number of distinct filters subscribed on this node.
    pub fn filter_count(&self) -> usize {
        self.trie.read().len()
    }

    /// Calls `deliver` once per matching subscription (one member per shared group).
    pub fn route(&self, msg: &Arc<Message>, mut deliver: impl FnMut(Route<'_>)) {
        let trie = self.trie.read();
        trie.for_each_match(&msg.topic, |slot| {
            for sub in slot.direct.values() {
                if sub.opts.no_local && msg.publisher.as_deref() == Some(&*sub.session.client_id) {
                    continue;
                }
                deliver(Route::Session(&sub.session, delivery_for(msg, &sub.opts, None)));
            }
            for group in slot.groups.values() {
                if let Some(sub) = group.pick(None) {
                    deliver(Route::Session(&sub.session, delivery_for(msg, &sub.opts, Some(group.share.clone()))));
                }
            }
        });
    }

    /// Gives a delivery that a leaving member of `share` did not acknowledge to another member:
    /// returns that member and the delivery for it, or `None` when no other member exists.
    pub fn redispatch(&self, share: &ShareRef, leaving: u64, d: &Delivery) -> Option<(Arc<Session>, Delivery)> {
        let trie = self.trie.read();
        let sub = trie
            .get(&share.filter)
            .and_then(|slot| slot.groups.get(&share.group))
            .and_then(|g| g.pick(Some(leaving)))?;
        let mut redelivered = delivery_for(&d.msg, &sub.opts, Some(share.clone()));
        redelivered.qos = redelivered.qos.min(d.qos);
        Some((sub.session.clone(), redelivered))
    }
}

fn delivery_for(msg: &Arc<Message>, opts: &SubOptions, share: Option<ShareRef>) -> Delivery {
    Delivery {
        msg: msg.clone(),
        qos: msg.qos.min(opts.qos),
        retain: msg.retain && opts.retain_as_published,
        subscription_id: opts.subscription_id,
        share,
        stored: None,
    }
}

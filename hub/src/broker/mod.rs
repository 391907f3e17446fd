//! The broker of one node, and its front door: everything a connection asks of the node goes
//! through [`Broker`]'s operations, and a connection never touches the router, the retained
//! store or the rule queue itself.
//!
//! - `sessions`: [`Broker::connect`] (open a session, or take it over from another
//!   connection), [`Broker::disconnect`] (the will, then end or park the session), the session
//!   registry and its expiry timers; `connect_lock`, the lock per client id they take.
//! - `subscriptions`: [`Broker::subscribe`] (with the retained messages it brings) and
//!   [`Broker::unsubscribe`].
//! - `publish`: [`Broker::publish`] and the read [`Burst`] it counts into, with the
//!   back-pressure verdict ([`Broker::must_wait`], [`Broker::relieved`]); messages the broker
//!   makes itself ([`Broker::dispatch`]) and a sink's republish. Routing ends at a
//!   [`Route`](crate::router::Route), where each matching destination is served.
//! - `persist`: persistent sessions, their deliveries and QoS 2 state, kept in the store and
//!   taken back at start; `write_ahead`: the rules' input, kept before it is acknowledged.
//!
//! Broker events go to the rules through [`Broker::event`], built only when a rule selects them.

mod connect_lock;
mod persist;
mod publish;
mod sessions;
mod subscriptions;
mod write_ahead;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use ntex_bytes::{ByteString, Bytes};
use parking_lot::Mutex;
use weir_connectors::sinks::mqtt::{LocalBroker, RepublishError};
use weir_rules::event_kind::EventKind;
use weir_rules::pipeline::Intake;
use weir_rules::value::Columns;
use weir_types::QoS;

use crate::config::Config;
use crate::message::{ClientId, Message};
use crate::metrics::Metrics;
use crate::retain::RetainStore;
use crate::router::Router;
use crate::session::Session;
use connect_lock::ConnectLocks;
pub use publish::Burst;
pub use sessions::Connected;
pub use subscriptions::SubscribeError;

/// Shared state of one broker node.
#[derive(Debug)]
pub struct Broker {
    /// The node's configuration, read by connections for their limits.
    pub config: Config,
    /// Counters, named as EMQX's metrics.
    pub metrics: Metrics,
    /// Filter → local subscriptions.
    router: Router,
    /// The last retained message of each topic.
    retained: RetainStore,
    /// The rules' door in; `None` runs without rules.
    rules: Option<Arc<Intake>>,
    /// Live and offline-but-unexpired sessions, by client id.
    sessions: Mutex<HashMap<ClientId, Arc<Session>>>,
    /// Serialises session opening per client id, so that two CONNECTs with one client id
    /// cannot both win.
    connect_locks: ConnectLocks,
    /// The next session's [`Session::uid`].
    next_uid: AtomicU64,
    /// When the node started, for `$SYS` uptime.
    pub started: Instant,
    /// The node's alarms, active and past.
    pub alarms: crate::alarm::Alarms,
    /// Durable state; `None` in `[durability] mode = "off"` and in tests.
    store: Option<crate::store::Store>,
    /// The messages persistent sessions' queues hold in the store.
    queues: persist::Queues,
    /// The rules' input written ahead and not let go of yet.
    rule_input: write_ahead::RuleInput,
    /// Who may connect, and what they may do. Boxed: read at CONNECT and by the connections
    /// that have something to check, it stays out of the way of the fields every PUBLISH reads.
    pub access: Box<crate::auth::Access>,
}

impl Broker {
    /// A broker with no client yet, feeding `rules` if given, keeping nothing on disk.
    pub fn new(config: Config, rules: Option<Arc<Intake>>) -> Arc<Broker> {
        Broker::with_store(config, rules, None, crate::auth::Access::open_to_all())
    }

    /// A broker with the retained messages a store kept, keeping its changes there, and
    /// `access` deciding who may connect and do what. The
    /// sessions it kept come back with [`Broker::restore_sessions`].
    pub fn with_store(
        config: Config,
        rules: Option<Arc<Intake>>,
        store: Option<(crate::store::Store, Vec<crate::message::Message>)>,
        access: crate::auth::Access,
    ) -> Arc<Broker> {
        let (retained, store) = match store {
            Some((s, kept)) => (RetainStore::restore(config.retainer.clone(), s.clone(), kept), Some(s)),
            None => (RetainStore::new(config.retainer.clone()), None),
        };
        Arc::new(Broker {
            config,
            metrics: Metrics::default(),
            router: Router::default(),
            retained,
            rules,
            sessions: Mutex::default(),
            connect_locks: ConnectLocks::default(),
            next_uid: AtomicU64::new(1),
            started: Instant::now(),
            alarms: crate::alarm::Alarms::default(),
            store,
            queues: persist::Queues::default(),
            rule_input: write_ahead::RuleInput::default(),
            access: Box::new(access),
        })
    }

    /// Hands an event to the rules, building its columns only if a rule selects it.
    pub fn event(&self, kind: EventKind, build: impl FnOnce() -> Columns) {
        if let Some(rules) = self.rules.as_deref().filter(|r| r.wants_event(kind)) {
            rules.emit(kind, build());
        }
    }

    /// Distinct filters subscribed on this node.
    pub fn topic_count(&self) -> usize {
        self.router.filter_count()
    }

    /// Retained messages held.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Messages waiting for the rules.
    pub fn rules_queued(&self) -> usize {
        self.rules.as_ref().map_or(0, |r| r.queued())
    }

    /// Bytes of payloads waiting for the rules.
    pub fn rules_queued_bytes(&self) -> usize {
        self.rules.as_ref().map_or(0, |r| r.queued_bytes())
    }

    /// Rows the rules hold for sinks whose buffers are full (see
    /// [`weir_rules::pipeline::Intake::held`]).
    pub fn rules_held(&self) -> usize {
        self.rules.as_ref().map_or(0, |r| r.held())
    }

    /// Messages that skipped the rules (see [`weir_rules::pipeline::Intake::skipped`]).
    pub fn rules_skipped(&self) -> u64 {
        self.rules.as_ref().map_or(0, |r| r.skipped())
    }

    /// How often the rule engine restarted after a panic.
    pub fn rules_restarts(&self) -> u64 {
        self.rules.as_ref().map_or(0, |r| r.restarts())
    }
}

/// The way back in for MQTT sinks: a rule's republish.
impl LocalBroker for Broker {
    fn publish(
        &self,
        origin: &str,
        topic: &str,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), RepublishError> {
        let mut msg = Message::new(ByteString::from(topic), Bytes::from(payload), qos, retain);
        msg.origin = Some(origin.into());
        self.republish(Arc::new(msg)).map(|_| ())
    }
}

#[cfg(test)]
mod tests;

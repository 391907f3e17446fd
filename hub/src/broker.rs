//! The broker of one node: the session registry, the router, retained messages and metrics, and
//! the publish path that ties them together.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ntex_bytes::{ByteString, Bytes};
use parking_lot::Mutex;
use tracing::{debug, info};
use weir_connectors::sinks::mqtt::{LocalBroker, RepublishError};
use weir_rules::event_kind::EventKind;
use weir_rules::pipeline::{Intake, RuleMatch};
use weir_types::QoS;

use crate::config::Config;
use crate::events;
use crate::message::{ClientId, Delivery, Message};
use crate::metrics::Metrics;
use crate::retain::RetainStore;
use crate::router::Router;
use crate::session::{Enqueued, Inflight, Kick, Session};
use weir_types::topic;

/// A session expiry interval that means "never".
pub const NEVER_EXPIRE: u32 = u32::MAX;

/// How long a new connection waits for the connection it takes a session from to let go.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// What one read of a client's publishes adds up to, handed over at its end
/// ([`Broker::end_burst`]): the rules get their messages together, and the shared counters one
/// update each instead of one per message (two connections adding to the same counter per
/// message cost 2% of the publish path).
#[derive(Default)]
pub struct Burst {
    /// The burst's messages that some rule wants.
    for_rules: Vec<weir_rules::pipeline::Message>,
    /// Messages received.
    received: u64,
    /// Messages no subscription wanted.
    no_subscribers: u64,
    /// Whether the rules want the client's last topic.
    rules_match: RuleMatch,
}

/// Shared state of one broker node.
#[derive(Debug)]
pub struct Broker {
    pub config: Config,
    pub router: Router,
    pub retained: RetainStore,
    pub metrics: Metrics,
    /// The rules of `rules_dir`, fed every published message; `None` runs without rules.
    pub rules: Option<Arc<Intake>>,
    /// Live and offline-but-unexpired sessions, by client id.
    sessions: Mutex<HashMap<ClientId, Arc<Session>>>,
    /// Serialises session opening, so that two CONNECTs with one client id cannot both win.
    connect_lock: tokio::sync::Mutex<()>,
    next_uid: AtomicU64,
    pub started: Instant,
}

impl Broker {
    pub fn new(config: Config, rules: Option<Arc<Intake>>) -> Arc<Broker> {
        Arc::new(Broker {
            config,
            router: Router::default(),
            retained: RetainStore::default(),
            metrics: Metrics::default(),
            rules,
            sessions: Mutex::new(HashMap::new()),
            connect_lock: tokio::sync::Mutex::new(()),
            next_uid: AtomicU64::new(1),
            started: Instant::now(),
        })
    }

    /// A message from a client: routed, and counted in `burst`. Sessions whose queue went over
    /// its bound are added to `congested`: the caller should pause until they drain.
    /// The caller ends the burst with [`Broker::end_burst`] once its read is handled.
    /// Returns the number of subscriptions the message was queued for.
    pub fn publish(&self, msg: Arc<Message>, congested: &mut Vec<Arc<Session>>, burst: &mut Burst) -> usize {
        burst.received += 1;
        if self.rules.as_ref().is_some_and(|r| r.wants_remembered(&msg.topic, &mut burst.rules_match)) {
            burst.for_rules.push(msg.clone());
        }
        let matched = self.route(msg, Some(congested));
        burst.no_subscribers += u64::from(matched == 0);
        matched
    }

    /// Hands a read burst's messages to the rules, in one go, and adds up its counts. Returns
    /// whether the burst fed the rules.
    pub fn end_burst(&self, burst: &mut Burst) -> bool {
        Metrics::add(&self.metrics.messages_received, std::mem::take(&mut burst.received));
        Metrics::add(&self.metrics.dropped_no_subscribers, std::mem::take(&mut burst.no_subscribers));
        match &self.rules {
            Some(rules) if !burst.for_rules.is_empty() => {
                rules.offer(std::mem::take(&mut burst.for_rules));
                true
            }
            _ => false,
        }
    }

    /// A message an MQTT sink republishes: routed, and handed to the rules except those that
    /// write into that sink, even when their queue is full (see [`Intake::offer`]).
    pub fn republish(&self, msg: Arc<Message>) -> Result<usize, RepublishError> {
        if let Err(reason) = topic::validate_name(&msg.topic) {
            return Err(RepublishError::Topic { topic: msg.topic.to_string(), reason });
        }
        if let Some(rules) = self.rules.as_ref().filter(|r| r.wants(&msg.topic)) {
            rules.offer(vec![msg.clone()]);
        }
        Metrics::incr(&self.metrics.messages_received);
        Ok(self.route_counted(msg))
    }

    /// A message the broker makes itself (`$SYS`, wills): routed, never paused for.
    pub fn dispatch(&self, msg: Arc<Message>) -> usize {
        if let Some(rules) = self.rules.as_ref().filter(|r| r.wants(&msg.topic)) {
            rules.offer_own(msg.clone());
        }
        self.route_counted(msg)
    }

    /// Routes a message that is not part of a client's burst, counting it at once if it had no
    /// subscriber.
    fn route_counted(&self, msg: Arc<Message>) -> usize {
        let matched = self.route(msg, None);
        if matched == 0 {
            Metrics::incr(&self.metrics.dropped_no_subscribers);
        }
        matched
    }

    /// Queues the message for each matching subscription and returns how many there were;
    /// the caller counts a message nobody wanted.
    fn route(&self, msg: Arc<Message>, mut congested: Option<&mut Vec<Arc<Session>>>) -> usize {
        if msg.retain {
            self.retained.set(&msg);
        }
        let mut matched = 0;
        self.router.route(&msg, |session, delivery| {
            matched += 1;
            match session.enqueue(delivery, congested.is_some()) {
                Enqueued::Queued => {}
                Enqueued::Congested => {
                    if let Some(list) = congested.as_deref_mut() {
                        if !list.iter().any(|s| s.uid == session.uid) {
                            list.push(session.clone());
                        }
                    }
                }
                dropped => self.dropped(session, dropped),
            }
        });
        if matched == 0 {
            if let Some(rules) = self.listening(EventKind::MessageDropped).filter(|_| !events::ignored(&msg)) {
                let columns = events::with_reason(events::columns_of(&msg, &self.config.node.name), "no_subscribers");
                rules.emit(EventKind::MessageDropped, columns);
            }
        }
        matched
    }

    /// Queues a delivery that nobody waits on (retained messages on subscribe, redispatch).
    pub fn enqueue_detached(&self, session: &Session, d: Delivery) {
        let outcome = session.enqueue(d, false);
        self.dropped(session, outcome);
    }

    /// Counts a delivery a session's queue could not keep, and tells the rules.
    fn dropped(&self, session: &Session, outcome: Enqueued) {
        let (d, reason) = match outcome {
            Enqueued::Queued | Enqueued::Congested => return,
            Enqueued::DroppedOldest(d) => (d, "queue_full"),
            Enqueued::DroppedQos0(d) => (d, "qos0_msg"),
        };
        Metrics::incr(&self.metrics.dropped_queue_full);
        self.delivery_dropped(&d.msg, &session.client_id, reason);
    }

    /// `$events/delivery_dropped`, if a rule selects it.
    pub fn delivery_dropped(&self, msg: &Message, receiver: &str, reason: &str) {
        if let Some(rules) = self.listening(EventKind::DeliveryDropped).filter(|_| !events::ignored(msg)) {
            let columns = events::delivery_of(msg, receiver, &self.config.node.name);
            rules.emit(EventKind::DeliveryDropped, events::with_reason(columns, reason));
        }
    }

    /// The rule engine, when one of its rules selects `kind`: events are built only then.
    pub fn listening(&self, kind: EventKind) -> Option<&Intake> {
        self.rules.as_deref().filter(|r| r.wants_event(kind))
    }

    /// Finds or creates the session for a CONNECT. An owning connection is asked to leave first
    /// (session takeover). Returns the session and whether it was resumed (`session_present`).
    pub async fn open_session(&self, client_id: &ClientId, clean_start: bool) -> (Arc<Session>, bool) {
        let _serial = self.connect_lock.lock().await;
        let existing = self.sessions.lock().get(client_id).cloned();
        if let Some(old) = existing {
            if old.is_connected() {
                info!(client_id = %client_id, "session taken over by a new connection");
                if tokio::time::timeout(TAKEOVER_TIMEOUT, old.kick(Kick::TakenOver)).await.is_err() {
                    old.detach();
                }
            }
            // The old connection may have ended the session while leaving.
            let still_there = self.sessions.lock().get(client_id).is_some_and(|s| s.uid == old.uid);
            if still_there {
                if !clean_start {
                    return (old, true);
                }
                self.discard(&old);
            }
        }
        let uid = self.next_uid.fetch_add(1, Ordering::Relaxed);
        let cfg = &self.config.mqtt;
        let session = Arc::new(Session::new(
            uid,
            client_id.clone(),
            cfg.max_mqueue_len,
            cfg.mqueue_store_qos0,
            cfg.backpressure_timeout > 0,
        ));
        self.sessions.lock().insert(client_id.clone(), session.clone());
        (session, false)
    }

    /// Called by a connection as it ends, before it detaches: ends the session now or arms its
    /// expiry timer.
    pub fn session_closed(self: &Arc<Self>, session: &Arc<Session>, expiry: u32) {
        if expiry == 0 {
            self.discard(session);
            return;
        }
        if expiry == NEVER_EXPIRE {
            return;
        }
        let generation = session.generation();
        let broker = self.clone();
        let session = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(expiry))).await;
            if !session.is_connected() && session.generation() == generation {
                debug!(client_id = %session.client_id, "session expired");
                broker.discard(&session);
            }
        });
    }

    /// Publishes a will after `delay` seconds, unless the session is resumed before then.
    pub fn schedule_will(self: &Arc<Self>, session: &Arc<Session>, will: Message, delay: u32) {
        let will = Arc::new(will);
        if delay == 0 {
            self.dispatch(will);
            return;
        }
        let generation = session.generation();
        let broker = self.clone();
        let session = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
            if session.generation() == generation && !session.is_connected() {
                broker.dispatch(will);
            }
        });
    }

    /// Ends a session: forgets it, drops its subscriptions, and gives the messages it holds for
    /// shared subscriptions to other members of their groups.
    pub fn discard(&self, session: &Arc<Session>) {
        {
            let mut sessions = self.sessions.lock();
            if sessions.get(&session.client_id).is_some_and(|s| s.uid == session.uid) {
                sessions.remove(&session.client_id);
            }
        }
        let (subscriptions, inflight) = {
            let mut st = session.state.lock();
            (std::mem::take(&mut st.subscriptions), std::mem::take(&mut st.inflight))
        };
        for raw in subscriptions.keys() {
            if let Ok(parsed) = topic::parse_subscription(raw) {
                self.router.unsubscribe(parsed.filter, parsed.group, session.uid);
            }
        }
        let pending = inflight
            .into_iter()
            .filter_map(|(_, f)| match f {
                Inflight::Publish(d) => Some(d),
                Inflight::Released => None,
            })
            .chain(session.drain_queue());
        for d in pending {
            if let Some(share) = d.share.clone() {
                if let Some((member, d)) = self.router.redispatch(&share, session.uid, d) {
                    self.enqueue_detached(&member, d);
                }
            }
        }
    }

    /// Asks every connection to close (v5 reason 0x8B) and waits for them.
    pub async fn disconnect_all(&self) {
        let sessions: Vec<Arc<Session>> = self.sessions.lock().values().cloned().collect();
        for s in sessions.iter().filter(|s| s.is_connected()) {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.kick(Kick::Shutdown)).await;
        }
    }

    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
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

//! The publish path: a message routed to every [`Route`] that matches it, handed to the rules
//! that want it, and the back-pressure its publisher gets when a subscriber or the rules fall
//! behind.
//!
//! A client's messages are counted into a [`Burst`], one read's worth: the rules get its
//! messages in one hand-over, and the shared counters one update each, at
//! [`Broker::end_burst`]. While a subscriber's queue is over its bound, or the rules' queue is
//! full, [`Broker::must_wait`] says the publisher stops reading (TCP then slows the client), and
//! [`Broker::relieved`] resolves when it may go on.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::{info, warn};
use weir_connectors::sinks::mqtt::RepublishError;
use weir_rules::event_kind::EventKind;
use weir_rules::pipeline::RuleMatch;
use weir_types::{topic, QoS};

use super::Broker;
use crate::events;
use crate::message::{Delivery, Message};
use crate::metrics::Metrics;
use crate::retain::Retained;
use crate::router::Route;
use crate::session::{Enqueued, Session};

/// What one read of a client's publishes adds up to, handed over at its end
/// ([`Broker::end_burst`]): the rules get their messages together, and the shared counters one
/// update each instead of one per message.
#[derive(Debug, Default)]
pub struct Burst {
    /// The burst's messages that some rule wants.
    for_rules: Vec<weir_rules::pipeline::Message>,
    /// Those of QoS 1/2, written ahead for the rules at the burst's end.
    ahead: super::write_ahead::Ahead,
    /// Messages received.
    received: u64,
    /// Messages no subscription wanted.
    no_subscribers: u64,
    /// Whether the rules want the client's last topic.
    rules_match: RuleMatch,
    /// Whether the last burst fed the rules: only such a publisher waits for the rules' queue,
    /// never a subscriber.
    fed_rules: bool,
    /// The sinks holding too many rows that the last burst fed: the publisher waits for them.
    fed_blocked: Vec<String>,
    /// Subscribers whose queues this client's publishes overfilled: it waits for them.
    congested: Vec<Arc<Session>>,
    /// The store's ticket of the burst's last change that must be kept before its
    /// acknowledgements go out ([`Broker::kept`]).
    to_keep: Option<u64>,
    /// A change of the burst that the store refused: its acknowledgements must not go out.
    unkept: bool,
}

impl Burst {
    /// Makes the burst's acknowledgements wait for a change the store took (`Ok(Some)`), or
    /// withholds them if it refused one (`Err`).
    pub fn keep(&mut self, kept: super::persist::Kept) {
        match kept {
            Ok(Some(ticket)) => self.to_keep = Some(self.to_keep.map_or(ticket, |t| t.max(ticket))),
            Ok(None) => {}
            Err(_) => self.unkept = true,
        }
    }

    /// Whether a publish overfilled a subscriber's queue: the connection handles no more of
    /// what it read until [`Broker::relieved`].
    pub fn is_congested(&self) -> bool {
        !self.congested.is_empty()
    }
}

impl Broker {
    /// A message from a client: routed, and counted in `burst`. Returns the number of
    /// subscriptions it was queued for. The caller ends the burst with [`Broker::end_burst`]
    /// once its read is handled.
    pub fn publish(&self, msg: Arc<Message>, burst: &mut Burst) -> usize {
        burst.received += 1;
        if msg.retain {
            let kept = self.retain(&msg);
            if msg.qos > QoS::AtMostOnce {
                burst.keep(kept);
            }
        }
        if self.rules.as_ref().is_some_and(|r| r.wants_remembered(&msg.topic, &mut burst.rules_match)) {
            if msg.qos > QoS::AtMostOnce {
                self.write_ahead(&msg, &mut burst.ahead);
            }
            burst.for_rules.push(msg.clone());
        }
        let matched = self.route(msg, Some(burst));
        burst.no_subscribers += u64::from(matched == 0);
        matched
    }

    /// Hands a read burst's messages to the rules, in one go, and adds up its counts.
    pub fn end_burst(&self, burst: &mut Burst) {
        Metrics::add(&self.metrics.messages_received, std::mem::take(&mut burst.received));
        Metrics::add(&self.metrics.dropped_no_subscribers, std::mem::take(&mut burst.no_subscribers));
        let kept = self.keep_ahead(&mut burst.ahead);
        burst.keep(kept);
        burst.fed_rules = match &self.rules {
            Some(rules) if !burst.for_rules.is_empty() => {
                burst.fed_blocked = rules.offer(std::mem::take(&mut burst.for_rules));
                true
            }
            _ => false,
        };
    }

    /// The back-pressure verdict: whether the publisher of `burst` must stop reading until
    /// [`Broker::relieved`].
    pub fn must_wait(&self, burst: &Burst) -> bool {
        burst.is_congested()
            || (burst.fed_rules
                && self.rules.as_ref().is_some_and(|r| r.is_full() || r.is_blocked_by(&burst.fed_blocked)))
    }

    /// Resolves once the publisher of `burst` may read again: each subscriber it congested has
    /// drained below its bound, or has been behind for `backpressure_timeout` and is marked
    /// stalled (its queue then drops its oldest messages instead, until it has caught up); and
    /// the rules' queue, if the burst fed it, has room, and the sinks it fed hold few enough rows
    /// (see `weir_rules::pipeline::backlog`). The time counts from when the subscriber
    /// fell behind, not per wait: one that takes a message now and then still runs out of it.
    /// Cancel-safe: the caller may serve its own deliveries meanwhile and call again. `own` is the publisher's session,
    /// which its own publishes never make it wait for.
    pub async fn relieved(&self, burst: &mut Burst, own: &Session) {
        while let Some(target) = burst.congested.last().cloned() {
            let drained = target.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if target.uid == own.uid || target.accepts_more() {
                burst.congested.pop();
                continue;
            }
            let timeout = std::time::Duration::from_millis(self.config.mqtt.backpressure_timeout);
            let deadline = target.behind_since().map_or_else(Instant::now, Instant::from_std) + timeout;
            tokio::select! {
                _ = &mut drained => {}
                _ = tokio::time::sleep_until(deadline) => {
                    warn!(
                        subscriber = %target.client_id,
                        publisher = %own.client_id,
                        queued = target.queue_len(),
                        "subscriber stays behind; its queue drops the oldest messages instead of pausing publishers until it catches up"
                    );
                    target.mark_stalled();
                    burst.congested.pop();
                }
            }
        }
        let Some(rules) = self.rules.as_ref().filter(|_| burst.fed_rules) else { return };
        loop {
            let room = rules.room();
            tokio::pin!(room);
            room.as_mut().enable();
            if !rules.is_full() && !rules.is_blocked_by(&burst.fed_blocked) {
                burst.fed_blocked.clear();
                return;
            }
            room.await;
        }
    }

    /// A message an MQTT sink republishes: routed, and handed to the rules except those that
    /// write into that sink, even when their queue is full (see
    /// [`weir_rules::pipeline::Intake::offer`]).
    pub fn republish(&self, msg: Arc<Message>) -> Result<usize, RepublishError> {
        if let Err(reason) = topic::validate_name(&msg.topic) {
            return Err(RepublishError::Topic { topic: msg.topic.to_string(), reason });
        }
        if let Some(rules) = self.rules.as_ref().filter(|r| r.wants(&msg.topic)) {
            // Never paused for: see `offer`.
            let _ = rules.offer(vec![msg.clone()]);
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

    /// Resolves once the changes of `burst` that its acknowledgements promise are kept (see
    /// `crate::store`); `Err` if one was not, and the acknowledgements must not go out.
    pub async fn kept(&self, burst: &mut Burst) -> Result<(), crate::store::StoreError> {
        if std::mem::take(&mut burst.unkept) {
            return Err(crate::store::StoreError::NotKept("the store refused a change".into()));
        }
        match (burst.to_keep.take(), &self.store) {
            (Some(ticket), Some(store)) => store.kept(ticket).await,
            _ => Ok(()),
        }
    }

    /// Whether the acknowledgements of `burst` wait for the store.
    pub fn must_keep(&self, burst: &Burst) -> bool {
        burst.to_keep.is_some() || burst.unkept
    }

    /// Routes a message that is not part of a client's burst (retaining it if it says so),
    /// counting it at once if it had no subscriber.
    fn route_counted(&self, msg: Arc<Message>) -> usize {
        if msg.retain {
            let _ = self.retain(&msg);
        }
        let matched = self.route(msg, None);
        if matched == 0 {
            Metrics::incr(&self.metrics.dropped_no_subscribers);
        }
        matched
    }

    /// Serves each [`Route`] that matches the message; returns how many there were. A publisher
    /// that can pause passes its `burst`, where sessions whose queue went over its bound are
    /// added, and the store's tickets for the deliveries kept for persistent sessions.
    fn route(&self, msg: Arc<Message>, mut burst: Option<&mut Burst>) -> usize {
        let mut matched = 0;
        // The copy kept by queues that may hold a message a while, made once per message.
        let mut detached: Option<Arc<Message>> = None;
        self.router.route(&msg, |route| {
            matched += 1;
            match route {
                Route::Session(session, mut delivery) => {
                    if session.holds_long() {
                        delivery.msg = detached.get_or_insert_with(|| Arc::new(msg.detached())).clone();
                    }
                    let kept = self.keep_delivery(session, &msg, &mut delivery);
                    if let Some(b) = burst.as_deref_mut() {
                        b.keep(kept);
                    }
                    match session.enqueue(delivery, burst.is_some()) {
                        Enqueued::Queued => {}
                        Enqueued::Congested => {
                            if let Some(list) = burst.as_deref_mut().map(|b| &mut b.congested) {
                                if !list.iter().any(|s| s.uid == session.uid) {
                                    list.push(session.clone());
                                }
                            }
                        }
                        dropped => self.dropped(session, dropped),
                    }
                }
            }
        });
        if matched == 0 && !events::ignored(&msg) {
            self.event(EventKind::MessageDropped, || {
                events::with_reason(events::columns_of(&msg, &self.config.node.name), "no_subscribers")
            });
        }
        matched
    }

    /// Stores a retained message, or says why it was not (it is routed all the same). Returns
    /// the store's ticket for it, if there is a store; `Err` if the store refused it.
    fn retain(&self, msg: &Message) -> super::persist::Kept {
        let why = match self.retained.set(msg) {
            Retained::Stored(ticket) | Retained::Deleted(ticket) => return Ok(ticket),
            Retained::NotKept => return Err(crate::store::StoreError::NotKept("the store refused it".into())),
            Retained::PayloadTooLarge => "its payload is over retainer.max_payload_size",
            Retained::StoreFull => "retainer.max_retained_messages topics are retained already",
        };
        let publisher = msg.publisher.as_deref().unwrap_or("");
        info!(topic = %&*msg.topic, publisher, size = msg.payload.len(), "message not retained: {why}");
        Ok(None)
    }

    /// Queues a delivery that nobody waits on (retained messages on subscribe, redispatch),
    /// kept in the store for a persistent session at QoS 1/2.
    pub(super) fn enqueue_detached(&self, session: &Session, mut d: Delivery) {
        let msg = d.msg.clone();
        let _ = self.keep_delivery(session, &msg, &mut d);
        let outcome = session.enqueue(d, false);
        self.dropped(session, outcome);
    }

    /// Counts a delivery a session's queue could not keep, and tells the rules.
    pub(super) fn dropped(&self, session: &Session, outcome: Enqueued) {
        let (d, reason) = match outcome {
            Enqueued::Queued | Enqueued::Congested => return,
            Enqueued::DroppedOldest(d) => (d, "queue_full"),
            Enqueued::DroppedQos0(d) => (d, "qos0_msg"),
        };
        self.forget_delivery(session, &d);
        Metrics::incr(&self.metrics.dropped_queue_full);
        self.delivery_dropped(&d.msg, &session.client_id, reason);
    }

    /// A delivery that expired in `session`'s queue before it could be sent: counted, the rules
    /// told, and forgotten in the store.
    pub fn expired(&self, session: &Session, d: &Delivery) {
        Metrics::incr(&self.metrics.dropped_expired);
        self.forget_delivery(session, d);
        self.delivery_dropped(&d.msg, &session.client_id, "expired");
    }

    /// `$events/delivery_dropped`, if a rule selects it.
    fn delivery_dropped(&self, msg: &Message, receiver: &str, reason: &str) {
        if !events::ignored(msg) {
            self.event(EventKind::DeliveryDropped, || {
                events::with_reason(events::delivery_of(msg, receiver, &self.config.node.name), reason)
            });
        }
    }
}

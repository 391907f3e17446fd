//! A client's session: what outlives its network connection.
//!
//! The [`Session`] is shared: publishers push [`Delivery`]s into its mailbox from any task, and the
//! connection that currently owns it drains the mailbox onto the socket. Its [`SessionState`]
//! (subscriptions, packets in flight both ways, packet-id allocation) is touched only by the
//! owning connection, and stays in memory between connections while the session has not expired.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use ntex_mqtt::v5::codec::RetainHandling;
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};
use weir_types::QoS;

use crate::message::{ClientId, Delivery, PacketId};

/// The options a client subscribed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOptions {
    /// The highest QoS it receives messages at (granted, so already capped).
    pub qos: QoS,
    /// MQTT 5 No Local: its own publishes are not sent back to it.
    pub no_local: bool,
    /// MQTT 5 Retain As Published: live messages keep their RETAIN flag.
    pub retain_as_published: bool,
    /// MQTT 5 Retain Handling: when retained messages come with the subscription.
    pub retain_handling: RetainHandling,
    /// MQTT 5 Subscription Identifier, sent back with each message it matches.
    pub subscription_id: Option<NonZeroU32>,
}

/// An outgoing QoS 1/2 message not yet fully acknowledged.
#[derive(Debug, Clone)]
pub enum Inflight {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Publish(Delivery),
    /// PUBREC received and PUBREL sent, waiting for PUBCOMP; with the delivery's place in a
    /// persistent session's queue in the store, which now remembers only the PUBREL.
    Released(Option<std::num::NonZeroU64>),
}

/// State the owning connection works on.
#[derive(Debug, Default)]
pub struct SessionState {
    /// Subscriptions as the client wrote them (with any `$share/` prefix).
    pub subscriptions: HashMap<String, SubOptions>,
    /// Outgoing messages in flight, in the order they were first sent.
    pub inflight: VecDeque<(PacketId, Inflight)>,
    /// Incoming QoS 2 packet ids between PUBREC and PUBREL: a resent PUBLISH with one of them is
    /// not routed twice.
    pub awaiting_rel: HashSet<u16>,
    /// Seconds the session outlives its connection (0: it ends with the connection).
    pub expiry_interval: u32,
    next_packet_id: u16,
}

impl SessionState {
    /// The next free packet identifier: never one still in flight.
    pub fn next_packet_id(&mut self) -> PacketId {
        loop {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            let Some(id) = NonZeroU16::new(self.next_packet_id) else {
                continue;
            };
            if !self.inflight.iter().any(|(p, _)| *p == id) {
                return id;
            }
        }
    }

    /// Where the message in flight with packet id `id` is, if one is.
    pub fn inflight_position(&self, id: PacketId) -> Option<usize> {
        self.inflight.iter().position(|(p, _)| *p == id)
    }
}

/// Why the owning connection is asked to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Another connection with the same client id took the session over (v5 reason 0x8E).
    TakenOver,
    /// The broker is shutting down (v5 reason 0x8B).
    Shutdown,
}

/// Messages waiting for the connection, bounded by `max_mqueue_len`.
#[derive(Debug, Default)]
struct Mailbox {
    queue: VecDeque<Delivery>,
    /// Messages taken since the episode of being behind began (see [`Session::progress`]):
    /// counted under the lock every take holds anyway.
    taken: u64,
}

/// Outcome of [`Session::enqueue`].
#[derive(Debug)]
pub enum Enqueued {
    /// Queued, within the bound.
    Queued,
    /// Queued beyond `max_mqueue_len` for a connected client: the publisher should pause until
    /// [`Session::drained`] fires (back-pressure instead of loss).
    Congested,
    /// The queue was full; the oldest message, returned, was dropped to make room.
    DroppedOldest(Delivery),
    /// A QoS 0 message for an offline session, returned, not kept (`mqueue_store_qos0 = false`).
    DroppedQos0(Delivery),
}

/// A session, shared between the connection that owns it, the router and the registry.
#[derive(Debug)]
pub struct Session {
    /// Unique for the broker's lifetime; distinguishes a session from an earlier one with the same client id.
    pub uid: u64,
    /// The client id it belongs to.
    pub client_id: ClientId,
    /// Deliveries waiting for the connection.
    mailbox: Mutex<Mailbox>,
    /// Wakes the owning connection when the mailbox gets a message.
    pub notify: Notify,
    /// What the owning connection works on.
    pub state: Mutex<SessionState>,
    /// Set while a connection owns the session: how to ask it to leave.
    owner: Mutex<Option<oneshot::Sender<Kick>>>,
    /// `true` while a connection owns the session.
    attached: AtomicBool,
    /// Fired when the owning connection lets go; a taker waits on it.
    released: Notify,
    /// Bumped on each attach, so that timers armed at a disconnect (expiry, delayed will) can
    /// tell whether the session has been resumed since.
    generation: AtomicU64,
    /// Soft bound of the mailbox: past it, offline sessions drop the oldest message and
    /// connected ones push back on publishers. Twice this is the hard bound in every case.
    max_queue: usize,
    store_qos0: bool,
    /// Whether publishers may be paused for this session at all (`backpressure_timeout > 0`).
    backpressure: bool,
    /// Set when this session stayed behind for longer than `backpressure_timeout`: it is
    /// treated like an offline one (drop oldest) until its queue is under its bound again.
    stalled: AtomicBool,
    /// When the queue first reached its soft bound in this episode of being behind, in
    /// milliseconds since [`clock_base`] plus one; 0 while it is not behind.
    behind_since: AtomicU64,
    /// Fired when the queue falls below the soft bound, for paused publishers.
    pub drained: Notify,
    /// The timers armed when its connection went (expiry, delayed will): cancelled when a
    /// connection takes it again, so that connect/disconnect loops leave none behind. (A
    /// session that ends keeps them: they find it ended, and a due will still goes out.)
    timers: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Whether the store holds this session (a persistent one): its QoS 1/2 deliveries are kept
    /// there too, and ending it forgets it there. Clean sessions never touch the store.
    pub persisted: AtomicBool,
    /// The next place in its queue in the store.
    pub next_stored: AtomicU64,
}

/// The origin of [`Session::behind_since`]'s clock.
fn clock_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

impl Session {
    /// A session with an empty mailbox bounded at `max_queue`, owned by no connection yet.
    pub fn new(uid: u64, client_id: ClientId, max_queue: usize, store_qos0: bool, backpressure: bool) -> Session {
        Session {
            uid,
            client_id,
            mailbox: Mutex::new(Mailbox::default()),
            notify: Notify::new(),
            state: Mutex::new(SessionState::default()),
            owner: Mutex::new(None),
            attached: AtomicBool::new(false),
            released: Notify::new(),
            generation: AtomicU64::new(0),
            max_queue: max_queue.max(1),
            store_qos0,
            backpressure,
            stalled: AtomicBool::new(false),
            behind_since: AtomicU64::new(0),
            drained: Notify::new(),
            timers: Mutex::new(Vec::new()),
            persisted: AtomicBool::new(false),
            next_stored: AtomicU64::new(1),
        }
    }

    /// Whether a connection owns it.
    pub fn is_connected(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }

    /// How many times a connection took it: a timer armed at a disconnect compares it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Makes a connection the owner; returns the receiver on which it will be asked to leave,
    /// and the generation that names this ownership (see [`Session::release`]).
    pub fn attach(&self) -> (oneshot::Receiver<Kick>, u64) {
        let (tx, rx) = oneshot::channel();
        let mut owner = self.owner.lock();
        *owner = Some(tx);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.attached.store(true, Ordering::Release);
        (rx, generation)
    }

    /// Called by a connection as it ends: if it still owns the session (no other connection
    /// took it since `generation`), runs `settle` and lets go, and returns `true`. A stale
    /// connection, whose session another connection owns by now, touches nothing. The owner's
    /// lock is held throughout, so that a takeover cannot come in between.
    pub fn release(&self, generation: u64, settle: impl FnOnce()) -> bool {
        let mut owner = self.owner.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        settle();
        *owner = None;
        self.attached.store(false, Ordering::Release);
        self.released.notify_waiters();
        true
    }

    /// Lets go of the session whoever owns it: a takeover whose old connection did not leave
    /// in time. That connection is stale from here on (see [`Session::release`]).
    pub fn force_release(&self) {
        let _owner = self.owner.lock();
        self.attached.store(false, Ordering::Release);
        self.released.notify_waiters();
    }

    /// Asks the owning connection (if any) to leave, and waits until it has.
    pub async fn kick(&self, why: Kick) {
        if let Some(tx) = self.owner.lock().take() {
            let _ = tx.send(why);
        }
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if !self.is_connected() {
                return;
            }
            released.await;
        }
    }

    /// Queues a delivery for the client and wakes its connection. `may_push_back` says whether the
    /// sender can pause (a client connection) or not (`$SYS`, wills, redispatch).
    pub fn enqueue(&self, d: Delivery, may_push_back: bool) -> Enqueued {
        let connected = self.is_connected();
        if d.qos == QoS::AtMostOnce && !self.store_qos0 && !connected {
            return Enqueued::DroppedQos0(d);
        }
        let push_back = may_push_back && connected && self.backpressure && !self.stalled.load(Ordering::Relaxed);
        let outcome = {
            let mut mb = self.mailbox.lock();
            let len = mb.queue.len();
            let oldest = if len >= 2 * self.max_queue || (!push_back && len >= self.max_queue) {
                mb.queue.pop_front()
            } else {
                None
            };
            let outcome = if let Some(dropped) = oldest {
                Enqueued::DroppedOldest(dropped)
            } else if len >= self.max_queue {
                Enqueued::Congested
            } else {
                Enqueued::Queued
            };
            mb.queue.push_back(d);
            (outcome, len == 0)
        };
        let (outcome, was_empty) = outcome;
        if matches!(outcome, Enqueued::Congested) && self.behind_since.load(Ordering::Relaxed) == 0 {
            let since = clock_base().elapsed().as_millis() as u64 + 1;
            if self.behind_since.compare_exchange(0, since, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                self.mailbox.lock().taken = 0;
            }
        }
        // The connection takes all it can each time it wakes, and again after each
        // acknowledgement: only a message that finds the queue empty needs to wake it. (A
        // subscriber behind its window would otherwise be woken for every message, in vain.)
        if was_empty {
            self.notify.notify_one();
        }
        outcome
    }

    /// Since when this session has been behind (its queue at its soft bound, not caught up
    /// since), if it is.
    pub fn behind_since(&self) -> Option<Instant> {
        match self.behind_since.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(clock_base() + std::time::Duration::from_millis(ms - 1)),
        }
    }

    /// Whether a message queued now may stay a while: the session is offline, and its queue
    /// lasts as long as the session. Such a queue gets a copy of the message that shares no
    /// memory with its publisher's read buffer (see
    /// [`Message::detached`](crate::message::Message::detached)). A connected one shares the
    /// buffer, even when behind or stalled: its queue turns over (a stalled one drops its
    /// oldest), and a copy per message there cost its publishers a sixth of their rate.
    pub fn holds_long(&self) -> bool {
        !self.is_connected()
    }

    /// Whether a paused publisher may go on: the queue is back under its soft bound, or it is
    /// stalled, or nobody is there to drain it.
    pub fn accepts_more(&self) -> bool {
        !self.is_connected() || self.stalled.load(Ordering::Relaxed) || self.queue_len() < self.max_queue
    }

    /// Messages a subscriber must take, since it fell behind, for the episode to end: an eighth
    /// of its bound. One that keeps up, even slower than its publishers, takes that in moments;
    /// one that takes a message now and then does not, and runs out of `backpressure_timeout`.
    fn progress(&self) -> u64 {
        (self.max_queue / 8).max(1) as u64
    }

    /// Keeps `timer` until [`Session::disarm`].
    pub fn arm(&self, timer: tokio::task::AbortHandle) {
        self.timers.lock().push(timer);
    }

    /// Timers armed and not cancelled.
    #[cfg(test)]
    pub fn armed(&self) -> usize {
        self.timers.lock().len()
    }

    /// Cancels the timers armed for it.
    pub fn disarm(&self) {
        for timer in self.timers.lock().drain(..) {
            timer.abort();
        }
    }

    /// Whether it is stalled: its queue drops the oldest instead of pausing publishers.
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// A publisher gave up waiting: stop pushing back until the queue has drained.
    pub fn mark_stalled(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    /// Called by the owning connection after it took messages out: wakes paused publishers once
    /// the queue is under its soft bound (ending a stall), and ends the episode of being behind
    /// once the subscriber has made `Session::progress` since it began.
    pub fn after_drain(&self) {
        let len = {
            let mut mb = self.mailbox.lock();
            if mb.taken >= self.progress() {
                mb.taken = 0;
                self.behind_since.store(0, Ordering::Relaxed);
            }
            mb.queue.len()
        };
        if len < self.max_queue {
            self.stalled.store(false, Ordering::Relaxed);
            self.drained.notify_waiters();
        }
    }

    /// Takes the next queued delivery if `admit` accepts it (the inflight window decides).
    pub fn dequeue_if(&self, admit: impl FnOnce(&Delivery) -> bool) -> Option<Delivery> {
        let mut mb = self.mailbox.lock();
        if mb.queue.front().is_some_and(admit) {
            mb.taken += 1;
            mb.queue.pop_front()
        } else {
            None
        }
    }

    /// Empties the mailbox (the session ends, or its messages go to another group member).
    pub fn drain_queue(&self) -> Vec<Delivery> {
        self.mailbox.lock().queue.drain(..).collect()
    }

    /// Deliveries waiting in the mailbox.
    pub fn queue_len(&self) -> usize {
        self.mailbox.lock().queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use ntex_bytes::{ByteString, Bytes};
    use std::sync::Arc;

    fn delivery(n: u8) -> Delivery {
        Delivery {
            msg: Arc::new(Message::new(
                ByteString::from_static("t"),
                Bytes::copy_from_slice(&[n]),
                QoS::AtLeastOnce,
                false,
            )),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_id: None,
            share: None,
            stored: None,
        }
    }

    #[test]
    fn full_queue_drops_oldest() {
        let s = Session::new(1, "c".into(), 2, true, true);
        assert!(matches!(s.enqueue(delivery(1), true), Enqueued::Queued));
        assert!(matches!(s.enqueue(delivery(2), true), Enqueued::Queued));
        assert!(matches!(s.enqueue(delivery(3), true), Enqueued::DroppedOldest(_)), "offline: no back-pressure");
        let left: Vec<u8> = s.drain_queue().iter().map(|d| d.msg.payload[0]).collect();
        assert_eq!(left, vec![2, 3]);
    }

    #[test]
    fn connected_queue_pushes_back_up_to_the_hard_bound() {
        let s = Session::new(1, "c".into(), 2, true, true);
        let _kick = s.attach();
        assert!(matches!(s.enqueue(delivery(1), true), Enqueued::Queued));
        assert!(matches!(s.enqueue(delivery(2), true), Enqueued::Queued));
        assert!(matches!(s.enqueue(delivery(3), true), Enqueued::Congested));
        assert!(!s.accepts_more());
        assert!(matches!(s.enqueue(delivery(4), false), Enqueued::DroppedOldest(_)), "senders that cannot pause");
        assert!(matches!(s.enqueue(delivery(5), true), Enqueued::Congested));
        assert!(matches!(s.enqueue(delivery(6), true), Enqueued::DroppedOldest(_)), "hard bound");
        s.mark_stalled();
        assert!(s.accepts_more());
        s.drain_queue();
        s.after_drain();
        assert!(matches!(s.enqueue(delivery(7), true), Enqueued::Queued));
    }

    #[test]
    fn packet_ids_skip_inflight_and_zero() {
        let mut st = SessionState::default();
        let first = st.next_packet_id();
        assert_eq!(first.get(), 1);
        st.inflight.push_back((NonZeroU16::new(2).unwrap(), Inflight::Released(None)));
        assert_eq!(st.next_packet_id().get(), 3);
        st.next_packet_id = u16::MAX;
        assert_eq!(st.next_packet_id().get(), 1);
    }
}

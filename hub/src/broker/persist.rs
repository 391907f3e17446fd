//! Persistent sessions in the store (`crate::store`): a session whose expiry interval is not 0
//! is written when its client connects, subscribes, unsubscribes and leaves, and forgotten when
//! it ends; at start, the broker takes back the sessions kept, offline, with their
//! subscriptions, their expiry and their delayed wills counting down through the downtime.
//! Clean sessions never touch the store.

use std::collections::HashMap;
use std::num::{NonZeroU16, NonZeroU32, NonZeroU64};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use weir_types::QoS;

use tracing::{info, warn};

use super::sessions::NEVER_EXPIRE;
use super::Broker;
use crate::message::{Delivery, Message, ShareRef};
use crate::session::{Inflight, Session, SubOptions};
use crate::store::record;
use crate::store::session::{encode_meta, encode_queued, Queued, StoredSession};
use crate::store::StoreError;

/// A store's answer for a change: its ticket (`None` without a store), or why it was refused.
pub type Kept = Result<Option<u64>, StoreError>;

fn refused(e: StoreError) -> StoreError {
    warn!(error = %e, "session state not kept");
    e
}

impl Broker {
    /// Keeps `session` as connected now, if it is persistent, or forgets it in the store if it
    /// was persistent and no longer is.
    pub(super) fn keep_connected(&self, session: &Session) -> Kept {
        let Some(store) = &self.store else { return Ok(None) };
        let expiry = session.state.lock().expiry_interval;
        if expiry == 0 {
            if !session.persisted.swap(false, Ordering::Relaxed) {
                return Ok(None);
            }
            return store.delete_session(&session.client_id).map(Some).map_err(refused);
        }
        session.persisted.store(true, Ordering::Relaxed);
        store.put_session(&session.client_id, encode_meta(expiry, None, None)).map(Some).map_err(refused)
    }

    /// Keeps a persistent session as left at this moment, with its will if it waits for a delay.
    pub(super) fn keep_left(&self, session: &Session, will: Option<(&Message, u32)>) {
        let Some(store) = &self.store else { return };
        if !session.persisted.load(Ordering::Relaxed) {
            return;
        }
        let st = session.state.lock();
        let now = SystemTime::now();
        let will = will
            .filter(|(_, delay)| *delay > 0)
            .map(|(m, delay)| (m, now + std::time::Duration::from_secs(u64::from(delay))));
        let _ =
            store.put_session(&session.client_id, encode_meta(st.expiry_interval, Some(now), will)).map_err(refused);
    }

    /// Forgets a session that ends, if the store holds it.
    pub(super) fn forget(&self, session: &Session) {
        let Some(store) = &self.store else { return };
        if session.persisted.swap(false, Ordering::Relaxed) {
            let _ = store.delete_session(&session.client_id).map_err(refused);
        }
    }

    /// Keeps a persistent session's subscription to `raw` (`None`: its removal).
    pub fn keep_subscription(&self, session: &Session, raw: &str, opts: Option<&SubOptions>) -> Kept {
        let Some(store) = &self.store else { return Ok(None) };
        if !session.persisted.load(Ordering::Relaxed) {
            return Ok(None);
        }
        store.put_subscription(&session.client_id, raw, opts).map(Some).map_err(refused)
    }

    /// Keeps (`awaiting`) or forgets a persistent session's incoming QoS 2 packet id between
    /// PUBREC and PUBREL; the PUBREC (or the PUBCOMP) waits for it.
    pub fn keep_awaiting_rel(&self, session: &Session, packet_id: u16, awaiting: bool) -> Kept {
        let Some(store) = &self.store else { return Ok(None) };
        if !session.persisted.load(Ordering::Relaxed) {
            return Ok(None);
        }
        store.put_awaiting_rel(&session.client_id, packet_id, awaiting).map(Some).map_err(refused)
    }

    /// Takes back the persistent sessions the store kept: offline, subscribed, their expiry and
    /// delayed wills armed with what is left of them. A session that expired during the downtime
    /// is forgotten, after its will, if it had one.
    pub fn restore_sessions(self: &Arc<Self>, kept: Vec<StoredSession>, messages: &HashMap<u64, Arc<Message>>) {
        if self.store.is_none() {
            return;
        }
        self.queues.next_message.store(messages.keys().max().map_or(1, |m| m + 1), Ordering::Relaxed);
        let (now, mut restored) = (SystemTime::now(), 0);
        for stored in kept {
            let client_id: crate::message::ClientId = stored.client_id.as_str().into();
            let since = |t: SystemTime| now.duration_since(t).unwrap_or_default().as_secs();
            let away = stored.disconnected_at.map_or(0, since);
            let uid = self.next_uid.fetch_add(1, Ordering::Relaxed);
            let session = Arc::new(self.new_session(uid, &client_id));
            {
                let mut st = session.state.lock();
                st.expiry_interval = stored.expiry_interval;
                st.awaiting_rel.extend(stored.awaiting_rel.iter().copied());
            }
            session.persisted.store(true, Ordering::Relaxed);
            self.sessions.lock().insert(client_id.clone(), session.clone());
            for (raw, opts) in &stored.subscriptions {
                if let Err(e) = self.restore_subscription(&session, raw, *opts) {
                    warn!(client_id = %client_id, filter = raw, error = %e, "a kept subscription is not valid any more: dropped");
                }
            }
            self.restore_queue(&session, stored.queued, messages);
            if let Some((will, due)) = stored.will {
                let delay = due.duration_since(now).map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32);
                self.schedule_will(&session, will, delay);
            }
            let expiry = stored.expiry_interval;
            if expiry != NEVER_EXPIRE && away >= u64::from(expiry) {
                self.discard(&session);
                continue;
            }
            let left = if expiry == NEVER_EXPIRE { NEVER_EXPIRE } else { expiry - away as u32 };
            self.session_closed(&session, left);
            restored += 1;
        }
        if restored > 0 {
            info!(count = restored, "persistent sessions restored from the store");
        }
    }
}

/// What the broker knows of the messages its persistent sessions' queues hold in the store.
#[derive(Debug, Default)]
pub(super) struct Queues {
    /// The next message id.
    next_message: AtomicU64,
    /// How many deliveries hold each message: the last one to go takes the message with it.
    holders: Mutex<HashMap<u64, u32>>,
}

impl Broker {
    /// Keeps a QoS 1/2 delivery to a persistent session in the store, with `msg` the first time
    /// one does; marks `d` with its place. The publisher's acknowledgement waits for it. `d`
    /// may carry a detached copy of `msg`: both learn the message's id. A QoS 0 delivery, or
    /// one to a session that is not persistent, is not kept (`Ok(None)`).
    pub(super) fn keep_delivery(&self, session: &Session, msg: &Message, d: &mut Delivery) -> Kept {
        let Some(store) = &self.store else { return Ok(None) };
        if d.qos == QoS::AtMostOnce || !session.persisted.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut fresh = None;
        let id = *msg.store.queued.get_or_init(|| {
            let id = self.queues.next_message.fetch_add(1, Ordering::Relaxed);
            fresh = Some(id);
            id
        });
        let _ = d.msg.store.queued.set(id);
        *self.queues.holders.lock().entry(id).or_default() += 1;
        let place = session.next_stored.fetch_add(1, Ordering::Relaxed);
        d.stored = NonZeroU64::new(place);
        let queued = Queued {
            message: id,
            qos: d.qos as u8,
            retain: d.retain,
            subscription_id: d.subscription_id.map(NonZeroU32::get),
            released: None,
            share: d.share.as_ref().map(|s| (s.group.to_string(), s.filter.to_string())),
        };
        let message = fresh.map(|id| (id, record::encode(msg)));
        store.put_queued(&session.client_id, place, message, encode_queued(&queued)).map(Some).map_err(refused)
    }

    /// Forgets a delivery kept for `session` (acknowledged, dropped, expired), and its message
    /// with the last delivery that held it.
    pub fn forget_delivery(&self, session: &Session, d: &Delivery) {
        let (Some(store), Some(place)) = (&self.store, d.stored) else { return };
        let Some(&id) = d.msg.store.queued.get() else { return };
        let last = self.let_go(id);
        let _ = store.delete_queued(&session.client_id, place.get(), last).map_err(refused);
    }

    /// Keeps only the PUBREL of a QoS 2 delivery the subscriber answered with PUBREC (its
    /// message goes with the last delivery that held it); the PUBREL waits for it.
    pub fn release_delivery(&self, session: &Session, d: &Delivery, packet_id: NonZeroU16) -> Kept {
        let (Some(store), Some(place)) = (&self.store, d.stored) else { return Ok(None) };
        let Some(&id) = d.msg.store.queued.get() else { return Ok(None) };
        let last = self.let_go(id);
        store.release_queued(&session.client_id, place.get(), packet_id.get(), last).map(Some).map_err(refused)
    }

    /// Forgets a QoS 2 delivery's PUBREL at PUBCOMP.
    pub fn forget_release(&self, session: &Session, place: NonZeroU64) {
        let Some(store) = &self.store else { return };
        let _ = store.delete_queued(&session.client_id, place.get(), None).map_err(refused);
    }

    /// One delivery less holds message `id`; returns it if that was the last one.
    fn let_go(&self, id: u64) -> Option<u64> {
        let mut holders = self.queues.holders.lock();
        let left = holders.get_mut(&id).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == Some(0) {
            holders.remove(&id);
        }
        (left.unwrap_or(0) == 0).then_some(id)
    }

    /// Puts the deliveries the store kept for `session` back into its queue, in order.
    fn restore_queue(&self, session: &Session, queued: Vec<(u64, Queued)>, messages: &HashMap<u64, Arc<Message>>) {
        let mut next = 1;
        for (place, q) in queued {
            next = next.max(place + 1);
            if let Some(packet_id) = q.released.and_then(NonZeroU16::new) {
                // Answered with PUBREC before the restart: its PUBREL goes out on reconnect.
                session.state.lock().inflight.push_back((packet_id, Inflight::Released(NonZeroU64::new(place))));
                continue;
            }
            let Some(msg) = messages.get(&q.message) else { continue };
            *self.queues.holders.lock().entry(q.message).or_default() += 1;
            let d = Delivery {
                msg: msg.clone(),
                qos: QoS::try_from(q.qos).unwrap_or(QoS::AtLeastOnce),
                retain: q.retain,
                subscription_id: q.subscription_id.and_then(NonZeroU32::new),
                share: q.share.map(|(group, filter)| ShareRef { group: group.into(), filter: filter.into() }),
                stored: NonZeroU64::new(place),
            };
            let outcome = session.enqueue(d, false);
            self.dropped(session, outcome);
        }
        session.next_stored.store(next, Ordering::Relaxed);
    }
}

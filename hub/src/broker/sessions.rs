//! Sessions: opening one for a CONNECT (taking it over from the connection that holds it),
//! settling it when its connection ends (the will, the expiry timer), and ending it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::Broker;
use crate::message::{ClientId, Message, Will};
use crate::metrics::Metrics;
use crate::session::{Inflight, Kick, Session};

/// A session expiry interval that means "never".
pub(super) const NEVER_EXPIRE: u32 = u32::MAX;

/// How long a new connection waits for the connection it takes a session from to let go. An
/// old connection lets go as soon as it sees the kick, before any goodbye I/O, and sees it even
/// while writing; this bounds a task that does not run at all.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for the connections, all at once, to let go of their sessions.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// A CONNECT the broker took: the session, now owned by the connection.
#[derive(Debug)]
pub struct Connected {
    /// The session, attached to the connection.
    pub session: Arc<Session>,
    /// Whether an existing session was resumed (CONNACK's Session Present).
    pub present: bool,
    /// Fires when the connection is asked to leave (takeover, shutdown).
    pub kick: oneshot::Receiver<Kick>,
    /// Names this connection's ownership of the session, for [`Broker::disconnect`].
    pub generation: u64,
    /// The store's ticket for the session, which CONNACK waits for (see `broker/persist.rs`).
    pub kept: super::persist::Kept,
}

impl Broker {
    /// Opens the session of a CONNECT and attaches it to the calling connection. A connection
    /// that owns the session is asked to leave first (takeover); `clean_start` discards an
    /// existing session. `expiry` is the session's expiry interval, in seconds.
    pub async fn connect(&self, client_id: &ClientId, clean_start: bool, expiry: u32) -> Connected {
        let _serial = self.connect_locks.lock(client_id).await;
        let (session, present) = self.open_session(client_id, clean_start).await;
        // Its expiry and delayed will are off: it is connected again.
        session.disarm();
        // Attached before the lock goes, so that the next CONNECT for this id sees the owner.
        let (kick, generation) = session.attach();
        session.state.lock().expiry_interval = expiry;
        let kept = self.keep_connected(&session);
        Metrics::incr(&self.metrics.connections);
        Metrics::incr(&self.metrics.connections_total);
        Connected { session, present, kick, generation, kept }
    }

    /// Finds or creates the session; returns it and whether it was resumed. Called under the
    /// connect lock.
    async fn open_session(&self, client_id: &ClientId, clean_start: bool) -> (Arc<Session>, bool) {
        let existing = self.sessions.lock().get(client_id).cloned();
        if let Some(old) = existing {
            if old.is_connected() {
                info!(client_id = %client_id, "session taken over by a new connection");
                if tokio::time::timeout(TAKEOVER_TIMEOUT, old.kick(Kick::TakenOver)).await.is_err() {
                    warn!(client_id = %client_id, "the old connection did not let go in time: taking its session anyway");
                    old.force_release();
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
        let session = Arc::new(self.new_session(uid, client_id));
        self.sessions.lock().insert(client_id.clone(), session.clone());
        (session, false)
    }

    /// A new session with the configured queue bounds, owned by no connection.
    pub(super) fn new_session(&self, uid: u64, client_id: &ClientId) -> Session {
        let cfg = &self.config.mqtt;
        Session::new(uid, client_id.clone(), cfg.max_mqueue_len, cfg.mqueue_store_qos0, cfg.backpressure_timeout > 0)
    }

    /// Called by a connection as it ends, with the `generation` its CONNECT got: publishes or
    /// schedules `will`, if it is to be published, then ends the session or keeps it for its
    /// expiry interval, and lets it go. A connection whose session another one has taken since
    /// touches neither the session nor the will.
    pub fn disconnect(self: &Arc<Self>, session: &Arc<Session>, generation: u64, will: Option<Will>) {
        self.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        let expiry = session.state.lock().expiry_interval;
        // End or park the session before letting a waiting taker in (see `Broker::connect`).
        let released = session.release(generation, || {
            // A will waits no longer than the session lives.
            let will = will.map(|w| (w.message, if expiry == NEVER_EXPIRE { w.delay } else { w.delay.min(expiry) }));
            self.keep_left(session, will.as_ref().map(|(m, delay)| (m, *delay)));
            if let Some((message, delay)) = will {
                self.schedule_will(session, message, delay);
            }
            self.session_closed(session, expiry);
        });
        if !released {
            debug!(client_id = %session.client_id, "a connection ended after its session was taken over");
        }
    }

    /// Ends the session now, or arms its expiry timer.
    pub(super) fn session_closed(self: &Arc<Self>, session: &Arc<Session>, expiry: u32) {
        match expiry {
            0 => self.discard(session),
            NEVER_EXPIRE => {}
            secs => self.unless_resumed(session, secs, |broker, session| {
                debug!(client_id = %session.client_id, "session expired");
                broker.discard(session);
            }),
        }
    }

    /// Publishes a will after `delay` seconds, unless the session is resumed before then.
    pub(super) fn schedule_will(self: &Arc<Self>, session: &Arc<Session>, will: Message, delay: u32) {
        let will = Arc::new(will);
        match delay {
            0 => {
                self.dispatch(will);
            }
            secs => self.unless_resumed(session, secs, move |broker, _| {
                broker.dispatch(will);
            }),
        }
    }

    /// Runs `then` in `secs` seconds if no connection has taken `session` since.
    fn unless_resumed(
        self: &Arc<Self>,
        session: &Arc<Session>,
        secs: u32,
        then: impl FnOnce(&Arc<Broker>, &Arc<Session>) + Send + 'static,
    ) {
        let generation = session.generation();
        let (broker, owner) = (self.clone(), session.clone());
        let timer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
            if owner.generation() == generation && !owner.is_connected() {
                then(&broker, &owner);
            }
        });
        session.arm(timer.abort_handle());
    }

    /// Ends a session: forgets it (in the store too), drops its subscriptions, and gives the
    /// messages it holds for shared subscriptions to other members of their groups.
    pub(super) fn discard(&self, session: &Arc<Session>) {
        {
            let mut sessions = self.sessions.lock();
            if sessions.get(&session.client_id).is_some_and(|s| s.uid == session.uid) {
                sessions.remove(&session.client_id);
            }
        }
        self.unsubscribe_all(session);
        let inflight = std::mem::take(&mut session.state.lock().inflight);
        let pending = inflight
            .into_iter()
            .filter_map(|(_, f)| match f {
                Inflight::Publish(d) => Some(d),
                Inflight::Released(_) => None,
            })
            .chain(session.drain_queue());
        for d in pending {
            // Kept for the new member before it is forgotten for this one: a crash in between
            // must not lose it, and the message stays held throughout.
            if let Some((member, moved)) = d.share.as_ref().and_then(|s| self.router.redispatch(s, session.uid, &d)) {
                self.enqueue_detached(&member, moved);
            }
            self.forget_delivery(session, &d);
        }
        // Last: the store commits in order, so a crash never sees the session gone while the
        // deliveries it handed to other members are not kept for them yet.
        self.forget(session);
    }

    /// Asks every connection to close (v5 reason 0x8B) and waits for them.
    pub async fn disconnect_all(&self) {
        let sessions: Vec<Arc<Session>> = self.sessions.lock().values().filter(|s| s.is_connected()).cloned().collect();
        let kicks = sessions.iter().map(|s| s.kick(Kick::Shutdown));
        if tokio::time::timeout(SHUTDOWN_WAIT, futures_util::future::join_all(kicks)).await.is_err() {
            let left = sessions.iter().filter(|s| s.is_connected()).count();
            warn!(left, "shutdown: {left} connections did not let go in time; closing anyway");
        }
    }

    /// Sessions held, connected or not.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }
}

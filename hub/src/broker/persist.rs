//! Persistent sessions in the store (`crate::store`): a session whose expiry interval is not 0
//! is written when its client connects, subscribes, unsubscribes and leaves, and forgotten when
//! it ends; at start, the broker takes back the sessions kept, offline, with their
//! subscriptions, their expiry and their delayed wills counting down through the downtime.
//! Clean sessions never touch the store.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{info, warn};

use super::sessions::NEVER_EXPIRE;
use super::Broker;
use crate::message::Message;
use crate::session::{Session, SubOptions};
use crate::store::session::{encode_meta, StoredSession};
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
        let mut st = session.state.lock();
        if st.expiry_interval == 0 {
            if !std::mem::take(&mut st.persisted) {
                return Ok(None);
            }
            return store.delete_session(&session.client_id).map(Some).map_err(refused);
        }
        st.persisted = true;
        store.put_session(&session.client_id, encode_meta(st.expiry_interval, None, None)).map(Some).map_err(refused)
    }

    /// Keeps a persistent session as left at this moment, with its will if it waits for a delay.
    pub(super) fn keep_left(&self, session: &Session, will: Option<(&Message, u32)>) {
        let Some(store) = &self.store else { return };
        let st = session.state.lock();
        if !st.persisted {
            return;
        }
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
        if std::mem::take(&mut session.state.lock().persisted) {
            let _ = store.delete_session(&session.client_id).map_err(refused);
        }
    }

    /// Keeps a persistent session's subscription to `raw` (`None`: its removal).
    pub fn keep_subscription(&self, session: &Session, raw: &str, opts: Option<&SubOptions>) -> Kept {
        let Some(store) = &self.store else { return Ok(None) };
        if !session.state.lock().persisted {
            return Ok(None);
        }
        store.put_subscription(&session.client_id, raw, opts).map(Some).map_err(refused)
    }

    /// Takes back the persistent sessions the store kept: offline, subscribed, their expiry and
    /// delayed wills armed with what is left of them. A session that expired during the downtime
    /// is forgotten, after its will, if it had one.
    pub fn restore_sessions(self: &Arc<Self>, kept: Vec<StoredSession>) {
        if self.store.is_none() {
            return;
        }
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
                st.persisted = true;
            }
            self.sessions.lock().insert(client_id.clone(), session.clone());
            for (raw, opts) in &stored.subscriptions {
                if let Err(e) = self.restore_subscription(&session, raw, *opts) {
                    warn!(client_id = %client_id, filter = raw, error = %e, "a kept subscription is not valid any more: dropped");
                }
            }
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

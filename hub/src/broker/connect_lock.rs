//! The connect lock, one per client id. Two CONNECTs with one client id are serialised, so that
//! they cannot both win the session; CONNECTs with other ids go on meanwhile, so a takeover that
//! waits for a slow old connection holds up its own client id and nobody else.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::message::ClientId;

/// Past this many entries, the next lock sweeps those nobody holds or waits for (a waiter that
/// gave up leaves its entry behind).
const SWEEP_PAST: usize = 1024;

/// The locks of the client ids being connected.
#[derive(Debug, Default)]
pub(super) struct ConnectLocks {
    /// One lock per client id in a CONNECT right now; an entry goes with its last user.
    held: Mutex<HashMap<ClientId, Arc<AsyncMutex<()>>>>,
}

/// The lock of one client id, held until dropped.
pub(super) struct ConnectGuard<'a> {
    locks: &'a ConnectLocks,
    client_id: ClientId,
    guard: Option<OwnedMutexGuard<()>>,
}

impl ConnectLocks {
    /// Waits for, and takes, the lock of `client_id`.
    pub(super) async fn lock(&self, client_id: &ClientId) -> ConnectGuard<'_> {
        let lock = {
            let mut held = self.held.lock();
            if held.len() > SWEEP_PAST {
                held.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            held.entry(client_id.clone()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        ConnectGuard { locks: self, client_id: client_id.clone(), guard: Some(guard) }
    }

    /// Client ids with an entry: the ones being connected, and any left by a waiter that gave
    /// up, until the next sweep.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.held.lock().len()
    }
}

impl Drop for ConnectGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock();
        drop(self.guard.take());
        // The map's own reference is the last: nobody holds or waits for this id.
        if held.get(&self.client_id).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            held.remove(&self.client_id);
        }
    }
}

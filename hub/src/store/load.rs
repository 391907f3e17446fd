//! What the store kept, read once at start: the retained messages and the persistent sessions.
//! Records that do not decode are reported and skipped, so that one bad record never keeps the
//! rest from coming back.

use redb::{Database, ReadableDatabase, ReadableTable};
use tracing::warn;

use super::session::{self, StoredSession};
use super::{record, RETAINED, SESSIONS, SUBSCRIPTIONS};
use crate::message::Message;

/// What the store kept.
pub struct Loaded {
    /// Retained messages, unexpired.
    pub retained: Vec<Message>,
    /// Persistent sessions.
    pub sessions: Vec<StoredSession>,
}

pub(super) fn load(db: &Database) -> Loaded {
    Loaded { retained: retained(db), sessions: sessions(db) }
}

/// The retained messages kept, unexpired; records that do not decode are reported and
/// skipped.
fn retained(db: &Database) -> Vec<Message> {
    let read = || -> Result<Vec<Message>, redb::Error> {
        let txn = db.begin_read()?;
        let table = match txn.open_table(RETAINED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (topic, bytes) = entry?;
            match record::decode(bytes.value()) {
                // After decoding: a deadline already past comes back as the decoder's now.
                Some(msg) if !msg.is_expired(std::time::Instant::now()) => out.push(msg),
                Some(_) => {}
                None => warn!(topic = topic.value(), "a retained message in the store does not decode: skipped"),
            }
        }
        Ok(out)
    };
    read().unwrap_or_else(|e| {
        warn!(error = %e, "the retained messages in the store cannot be read: starting without them");
        Vec::new()
    })
}

/// The persistent sessions kept; records that do not decode are reported and skipped.
fn sessions(db: &Database) -> Vec<StoredSession> {
    let read = || -> Result<Vec<StoredSession>, redb::Error> {
        let txn = db.begin_read()?;
        let (metas, subs) = match (txn.open_table(SESSIONS), txn.open_table(SUBSCRIPTIONS)) {
            (Ok(m), Ok(s)) => (m, s),
            (Err(redb::TableError::TableDoesNotExist(_)), _) | (_, Err(redb::TableError::TableDoesNotExist(_))) => {
                return Ok(Vec::new())
            }
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in metas.iter()? {
            let (client_id, meta) = entry?;
            let (from, to) = session::sub_range(client_id.value());
            let mut own = Vec::new();
            for sub in subs.range(from.as_str()..to.as_str())? {
                let (key, bytes) = sub?;
                own.push((key.value().to_string(), bytes.value().to_vec()));
            }
            match session::decode(client_id.value(), meta.value(), &own) {
                Some(s) => out.push(s),
                None => warn!(client_id = client_id.value(), "a session in the store does not decode: skipped"),
            }
        }
        Ok(out)
    };
    read().unwrap_or_else(|e| {
        warn!(error = %e, "the sessions in the store cannot be read: starting without them");
        Vec::new()
    })
}

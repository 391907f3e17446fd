//! What the store kept, read once at start: the built-in users, the retained messages, the persistent sessions, the
//! messages their queues hold, and the rules' input written ahead. Records that do not decode are reported and skipped, so that
//! one bad record never keeps the rest from coming back; messages no queue holds any more (a
//! session that ended) are deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tracing::warn;

use super::session::{self, StoredSession};
use super::Named;
use super::{record, AWAITING_REL, MESSAGES, QUEUED, RETAINED, RULE_INPUT, SESSIONS, SUBSCRIPTIONS};
use crate::message::Message;

/// What the store kept.
pub struct Loaded {
    /// Retained messages, unexpired.
    pub retained: Vec<Message>,
    /// Persistent sessions, with their queues.
    pub sessions: Vec<StoredSession>,
    /// The messages their queues hold, by id.
    pub messages: HashMap<u64, Arc<Message>>,
    /// The bursts written ahead for the rules whose messages they had not all run, in order.
    pub rule_input: Vec<Burst>,
    /// The built-in database's users: id and what is kept of each.
    pub users: Vec<(String, Vec<u8>)>,
    /// The management API's keys: name and what is kept of each.
    pub api_keys: Vec<(String, Vec<u8>)>,
}

/// A burst written ahead for the rules: its id, and its messages.
pub type Burst = (u64, Vec<Arc<Message>>);

pub(super) fn load(db: &Database) -> Loaded {
    let mut sessions = sessions(db);
    let mut wanted = HashSet::new();
    for s in &mut sessions {
        s.queued = queue(db, &s.client_id);
        s.awaiting_rel = awaiting_rel(db, &s.client_id);
        wanted.extend(s.queued.iter().filter(|(_, q)| q.released.is_none()).map(|(_, q)| q.message));
    }
    let messages = messages(db, &wanted);
    let named = |table: Named, what: &str| {
        let mut out = Vec::new();
        each_value(db, table.table(), what, |name, bytes| out.push((name.to_string(), bytes.to_vec())));
        out
    };
    let users = named(Named::Users, "the built-in users");
    let api_keys = named(Named::ApiKeys, "the API keys");
    Loaded { retained: retained(db), sessions, messages, rule_input: rule_input(db), users, api_keys }
}

/// The entries of `table` under `client_id`'s prefix, each as what its key holds after the
/// NUL and its value's bytes.
fn of_session(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    client_id: &str,
    what: &str,
) -> Vec<(String, Vec<u8>)> {
    let read = || -> Result<Vec<(String, Vec<u8>)>, redb::Error> {
        let txn = db.begin_read()?;
        let table = match txn.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let (from, to) = session::sub_range(client_id);
        let mut out = Vec::new();
        for entry in table.range(from.as_str()..to.as_str())? {
            let (key, value) = entry?;
            let rest = key.value().split_once('\0').map_or("", |(_, rest)| rest).to_string();
            out.push((rest, value.value().to_vec()));
        }
        Ok(out)
    };
    read().unwrap_or_else(|e| {
        warn!(error = %e, client_id, "{what} in the store cannot be read: starting without it");
        Vec::new()
    })
}

/// `client_id`'s queue, in order.
fn queue(db: &Database, client_id: &str) -> Vec<(u64, session::Queued)> {
    let entries = of_session(db, QUEUED, client_id, "a session's queue");
    entries
        .into_iter()
        .filter_map(|(place, bytes)| {
            let found = u64::from_str_radix(&place, 16).ok().zip(session::decode_queued(&bytes));
            if found.is_none() {
                warn!(client_id, place, "a queued delivery in the store does not decode: skipped");
            }
            found
        })
        .collect()
}

/// `client_id`'s incoming QoS 2 packet ids awaiting PUBREL.
fn awaiting_rel(db: &Database, client_id: &str) -> Vec<u16> {
    let entries = of_session(db, AWAITING_REL, client_id, "a session's QoS 2 state");
    entries.into_iter().filter_map(|(id, _)| u16::from_str_radix(&id, 16).ok()).collect()
}

/// The messages in `wanted`; deletes the others, which no queue holds any more.
fn messages(db: &Database, wanted: &HashSet<u64>) -> HashMap<u64, Arc<Message>> {
    let read = || -> Result<HashMap<u64, Arc<Message>>, redb::Error> {
        let txn = db.begin_write()?;
        let mut out = HashMap::new();
        {
            let mut table = txn.open_table(MESSAGES)?;
            table.retain(|id, _| wanted.contains(&id))?;
            for entry in table.iter()? {
                let (id, bytes) = entry?;
                match record::decode(bytes.value()) {
                    Some(msg) => {
                        // Its deliveries, acknowledged, forget it by this id.
                        let _ = msg.store.queued.set(id.value());
                        out.insert(id.value(), Arc::new(msg));
                    }
                    None => warn!(id = id.value(), "a queued message in the store does not decode: skipped"),
                }
            }
        }
        txn.commit()?;
        Ok(out)
    };
    read().unwrap_or_else(|e| {
        warn!(error = %e, "the queued messages in the store cannot be read: starting without them");
        HashMap::new()
    })
}

/// The bursts written ahead for the rules, by id (the order they came in), with their
/// messages; what does not decode is reported and skipped.
fn rule_input(db: &Database) -> Vec<Burst> {
    let mut out = Vec::new();
    each_value(db, RULE_INPUT, "the rules' input", |id, bytes| {
        let (msgs, whole) = record::decode_framed(bytes);
        if !whole {
            warn!(
                id,
                decoded = msgs.len(),
                "a burst written ahead for the rules does not decode to its end: the rest is skipped"
            );
        }
        // The rules let it go by this id once they have run its messages again.
        let msgs = msgs
            .into_iter()
            .map(|m| {
                let _ = m.store.rule_input.set(id);
                Arc::new(m)
            })
            .collect();
        out.push((id, msgs));
    });
    out
}

/// The retained messages kept, unexpired.
fn retained(db: &Database) -> Vec<Message> {
    let mut out = Vec::new();
    each_value(db, RETAINED, "the retained messages", |topic, bytes| match record::decode(bytes) {
        // After decoding: a deadline already past comes back as the decoder's now.
        Some(msg) if !msg.is_expired(std::time::Instant::now()) => out.push(msg),
        Some(_) => {}
        None => warn!(topic, "a retained message in the store does not decode: skipped"),
    });
    out
}

/// Calls `f` with each key and value of `table`, in key order; reports `what` as not read (and
/// goes on without the rest of it) if the table cannot be read.
fn each_value<K: redb::Key + 'static>(
    db: &Database,
    table: TableDefinition<K, &'static [u8]>,
    what: &str,
    mut f: impl FnMut(K::SelfType<'_>, &[u8]),
) {
    let mut read = || -> Result<(), redb::Error> {
        let txn = db.begin_read()?;
        let table = match txn.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for entry in table.iter()? {
            let (k, v) = entry?;
            f(k.value(), v.value());
        }
        Ok(())
    };
    if let Err(e) = read() {
        warn!(error = %e, "{what} in the store cannot be read: starting without them");
    }
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

#[cfg(test)]
mod tests {
    use ntex_bytes::Bytes;
    use weir_types::QoS;

    use super::*;

    #[test]
    fn a_record_that_does_not_decode_is_skipped_and_the_rest_loads() {
        let dir = tempfile::tempdir().expect("a directory");
        let db = Database::create(dir.path().join("weir.redb")).expect("a database");
        let good = Message::new("t/good".into(), Bytes::from_static(b"ok"), QoS::AtLeastOnce, true);
        let txn = db.begin_write().expect("a transaction");
        {
            let mut retained = txn.open_table(RETAINED).expect("the table");
            retained.insert("t/good", record::encode(&good).as_slice()).expect("insert");
            retained.insert("t/bad", &b"\xff\xff\xff\xff"[..]).expect("insert");
            let mut sessions = txn.open_table(SESSIONS).expect("the table");
            sessions.insert("broken", &b"\xff"[..]).expect("insert");
            let mut messages = txn.open_table(MESSAGES).expect("the table");
            messages.insert(7, record::encode(&good).as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
        let loaded = load(&db);
        let topics: Vec<&str> = loaded.retained.iter().map(|m| &*m.topic).collect();
        assert_eq!(topics, ["t/good"]);
        assert!(loaded.sessions.is_empty(), "the broken session is skipped");
        assert!(loaded.messages.is_empty(), "message 7 is held by no queue: deleted");
        let txn = db.begin_read().expect("a transaction");
        assert!(txn.open_table(MESSAGES).expect("the table").get(7).expect("read").is_none());
    }
}

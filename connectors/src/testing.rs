//! What tests of the crates above need to drive the delivery path without a real destination
//! (feature `testing`): [`MemorySink`], a destination in memory that fails as told.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::row::Row;
use crate::sink::{CheckError, Sink, WriteError};

/// A destination in memory: it keeps the rows it confirms. While `down`, every write fails as
/// a destination that is down does (transient); a batch with a row that has a `"bad"` field is
/// refused, as a destination refuses rows that break its constraints; one with a row that has a
/// `"nowhere"` field fails as suspect, as a Kafka topic named by a row that does not exist.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// The rows confirmed, in the order written.
    pub rows: Mutex<Vec<Row>>,
    /// Whether writes fail as transient errors.
    pub down: AtomicBool,
    /// Write calls so far, failed ones included.
    pub writes: AtomicUsize,
}

impl MemorySink {
    /// How many rows it has confirmed.
    pub fn len(&self) -> usize {
        self.rows.lock().len()
    }

    /// Whether it has confirmed no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Sink for Arc<MemorySink> {
    async fn write(&self, rows: &[Row]) -> Result<(), WriteError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        if self.down.load(Ordering::Relaxed) {
            return Err(WriteError::transient("connection refused"));
        }
        if rows.iter().any(|r| r.get("bad").is_some()) {
            return Err(WriteError::rejected("bad row"));
        }
        if rows.iter().any(|r| r.get("nowhere").is_some()) {
            return Err(WriteError::suspect("unknown topic"));
        }
        self.rows.lock().extend_from_slice(rows);
        Ok(())
    }

    async fn check(&self) -> Result<(), CheckError> {
        match self.down.load(Ordering::Relaxed) {
            true => Err(CheckError::new("connection refused")),
            false => Ok(()),
        }
    }
}

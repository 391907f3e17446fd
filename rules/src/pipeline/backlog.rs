//! Rows held for sinks whose buffers are full, so that one sink that cannot take rows holds
//! back only the rules that write into it.
//!
//! A sink with `buffer_full = "block"` refuses rows while its buffer is full (or its disk
//! fails). The rule thread does not wait for it: it keeps the refused rows here, in order, and
//! goes on with the other rules; rows that come later for that sink queue behind them. Every
//! pass of the rule thread, and a timer while anything is held, hands held rows to their sink
//! as far as it takes them. Past as many rows for one sink as the rules' queue holds messages
//! ([`Intake::hold`](super::Intake::hold)), the intake pauses the publishers whose messages feed
//! its rules (and only those), until it is back under half of that. Rows still come from what
//! was queued before the pause, and from broker events, which nobody can pause; past
//! [`HARD_LIMIT`] times the bound, the rule thread waits for the sink after all, so that memory
//! stays bounded.

use std::collections::VecDeque;
use std::sync::Arc;

use weir_connectors::driver::SinkHandle;
use weir_connectors::row::RowBatch;

/// Rows held for one sink before the rule thread itself waits for it, in multiples of the rows
/// at which its publishers pause.
pub(super) const HARD_LIMIT: usize = 4;

/// The rows held for one sink.
struct Held {
    sink: Arc<SinkHandle>,
    /// Batches in arrival order; the sink took the first `taken` rows of the first one already.
    batches: VecDeque<RowBatch>,
    taken: usize,
    /// Rows held, across the batches.
    rows: usize,
}

/// The rows held, per sink that refused them.
#[derive(Default)]
pub(super) struct Backlog {
    held: Vec<Held>,
}

/// A sink's state after a write or a flush: the rows held for it.
pub(super) struct Holding<'a> {
    pub(super) sink: &'a str,
    pub(super) rows: usize,
}

impl Backlog {
    /// Hands `rows` to `sink`, behind any rows held for it; returns the rows held for it now.
    pub(super) fn write(&mut self, sink: &Arc<SinkHandle>, rows: RowBatch) -> usize {
        let i = self.held.iter().position(|h| Arc::ptr_eq(&h.sink, sink));
        let taken = match i {
            Some(_) => 0,
            None => sink.push(&rows, 0),
        };
        if taken == rows.len() {
            return i.map_or(0, |i| self.held[i].rows);
        }
        let i = i.unwrap_or_else(|| {
            self.held.push(Held { sink: sink.clone(), batches: VecDeque::new(), taken: 0, rows: 0 });
            self.held.len() - 1
        });
        let held = &mut self.held[i];
        held.rows += rows.len() - taken;
        if held.batches.is_empty() {
            held.taken = taken;
        }
        held.batches.push_back(rows);
        held.rows
    }

    /// Hands held rows to their sinks, as far as each takes them, and calls `after` with each
    /// sink's state; sinks that took everything are forgotten.
    pub(super) fn flush(&mut self, mut after: impl FnMut(Holding<'_>)) {
        for held in &mut self.held {
            while let Some(batch) = held.batches.front() {
                let took = held.sink.push(batch, held.taken);
                held.taken += took;
                held.rows -= took;
                if held.taken < batch.len() {
                    break;
                }
                held.batches.pop_front();
                held.taken = 0;
            }
            after(Holding { sink: &held.sink.name, rows: held.rows });
        }
        self.held.retain(|h| h.rows > 0);
    }

    /// Whether any rows are held.
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Rows held, for all sinks.
    pub(super) fn rows(&self) -> usize {
        self.held.iter().map(|h| h.rows).sum()
    }

    /// A sink with `limit` rows held or more, if there is one.
    pub(super) fn over(&self, limit: usize) -> Option<Arc<SinkHandle>> {
        self.held.iter().find(|h| h.rows >= limit).map(|h| h.sink.clone())
    }
}

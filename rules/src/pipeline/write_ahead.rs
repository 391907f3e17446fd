//! The rules' side of the broker's write-ahead: a message the broker kept on disk before it
//! acknowledged it ([`Published::write_ahead`](super::Published::write_ahead)) stays there
//! until the rows the rules made of it are safe in their sinks' buffers; then the pipeline
//! tells the broker ([`InputLog::ran`]), which forgets it.
//!
//! Safe means three things: the rule thread has run the message; none of its rows is held in
//! memory for a full sink (see `backlog`), so all are in the sinks' buffers; and the buffers
//! have been fsynced since, which their drivers do every second ([`SETTLE`] waits longer than
//! that). A crash before then runs the message again at the next start: its rows may reach a
//! sink twice, as QoS 1 allows, never zero times.
//!
//! The rows of a window that has not closed are in memory only: a crash loses the open window's
//! share of its messages, as it would in EMQX.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long after its rows reached the sinks' buffers a message is forgotten: past the
/// drivers' fsync interval (1 s), so that a power loss does not lose rows the log let go of.
pub const SETTLE: Duration = Duration::from_millis(1500);

/// Where the broker keeps the messages it wrote ahead for the rules.
pub trait InputLog: std::fmt::Debug + Send + Sync + 'static {
    /// The rules have run these messages and their rows are safe in the sinks' buffers:
    /// they can be forgotten.
    fn ran(&self, ids: Vec<u64>);
}

/// The rule thread's account of the written-ahead messages it has run.
#[derive(Debug, Default)]
pub(super) struct Ran {
    /// Run, with rows perhaps still held for a full sink.
    held: Vec<u64>,
    /// Run with every row in a sink's buffer, since then: forgotten once [`SETTLE`] has passed.
    settling: VecDeque<(Instant, Vec<u64>)>,
}

impl Ran {
    /// A batch has run these messages.
    pub(super) fn add(&mut self, ids: Vec<u64>) {
        if self.held.is_empty() {
            self.held = ids;
        } else {
            self.held.extend(ids);
        }
    }

    /// No row is held for a full sink any more: what has run is in the buffers from `now`.
    pub(super) fn in_buffers(&mut self, now: Instant) {
        if !self.held.is_empty() {
            self.settling.push_back((now, std::mem::take(&mut self.held)));
        }
    }

    /// The messages whose rows have been in the buffers for [`SETTLE`] by `now`.
    pub(super) fn settled(&mut self, now: Instant) -> Vec<u64> {
        let mut due = Vec::new();
        while let Some((since, _)) = self.settling.front() {
            if now.duration_since(*since) < SETTLE {
                break;
            }
            if let Some((_, ids)) = self.settling.pop_front() {
                due.extend(ids);
            }
        }
        due
    }

    /// Everything in the buffers, settled or not: at a clean stop, the sinks sync their
    /// buffers as they stop.
    pub(super) fn all_in_buffers(&mut self) -> Vec<u64> {
        self.settling.drain(..).flat_map(|(_, ids)| ids).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_let_go_only_once_its_rows_left_memory_and_settled() {
        let mut ran = Ran::default();
        let t0 = Instant::now();
        ran.add(vec![1, 2]);
        assert!(ran.settled(t0 + SETTLE * 2).is_empty(), "rows may still be held for a full sink");
        ran.in_buffers(t0);
        ran.add(vec![3]);
        assert!(ran.settled(t0 + SETTLE / 2).is_empty(), "not fsynced by the sinks yet");
        assert_eq!(ran.settled(t0 + SETTLE), vec![1, 2]);
        ran.in_buffers(t0 + SETTLE);
        assert_eq!(ran.all_in_buffers(), vec![3]);
        assert!(ran.settled(t0 + SETTLE * 3).is_empty());
    }
}

//! A sink's durable buffer: an append-only log of rows on disk, in segment files, trimmed only
//! when the destination has confirmed them.
//!
//! Layout under the sink's directory (`data_dir/sinks/<name>/`):
//! - `<first sequence number, 20 digits>.log`: segments, each a run of records
//!   `[length: u32 LE][CRC-32 of the data: u32 LE][data]`;
//! - `acked`: the sequence number below which every row was confirmed (8 bytes LE, then their
//!   CRC-32), replaced atomically (written aside, then renamed), at most every 100 ms and at
//!   each sync: after a crash, the rows confirmed since are delivered again.
//!
//! At open, every segment is read back and checked (`recover`). Rows at or after `acked` are
//! delivered again: at least once. A reader skips a record that fails its checksum, moves past
//! the gaps that damage leaves in the sequence numbers, skips the rest of a segment it cannot
//! read on, and counts the rows it skips ([`BufferedBatch::skipped`]), which are logged.
//! The newest appends (4 MiB) are also kept in memory, and a reader keeping up takes them from
//! there; the disk is read only by a reader that fell behind, and after a restart.
//!
//! Durability. Records are written with one `write` per append and are in the page cache at
//! once, so a killed process loses nothing. [`Buffer::sync`] (the driver calls it every second)
//! fsyncs the segment being written and those finished since the last sync, writes `acked`
//! aside, fsyncs it and renames it, and fsyncs the directory when files were created or deleted:
//! a power loss loses at most the last second of rows, and delivers some confirmed rows again.
//! The fsyncs run outside the buffer's lock, so appends do not wait for the disk.
//!
//! A failed append (a full disk, for example) is cut back out of the segment, so the file stays
//! a run of whole records, and is reported in [`Appended::failed`]: under
//! [`FullPolicy::Block`] the caller waits and tries again, under [`FullPolicy::DropOldest`] the
//! oldest segments are deleted to make room, one at a time, and the write tried again.
//!
//! The files are `files`' business, reading back `read`'s.
//!
//! The bound counts the segment files' bytes. Past it, [`FullPolicy::Block`] refuses the append
//! (the caller waits on [`Buffer::space`]) and [`FullPolicy::DropOldest`] deletes the oldest
//! segment, counting its unconfirmed rows as dropped. This is a log of our own rather than an
//! embedded key-value store because a FIFO needs neither keys nor compaction, and a store's
//! files would not keep to a byte bound.

mod files;
mod read;
mod recover;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::row::RowBatch;
use files::{open_append, read_acked, segment_path, sync_dir, write_acked};
pub use read::Reader;
use recover::recover_segment;

/// Bytes of a record's header: length and checksum.
const HEADER: u64 = 8;
/// Segments never get smaller than this, so that a small bound still has few files.
const MIN_SEGMENT: u64 = 64 * 1024;
/// Nor larger than this: opening reads each segment whole to check it.
const MAX_SEGMENT: u64 = 64 * 1024 * 1024;
/// A bound is split into about this many segments: dropping the oldest frees this fraction.
const SEGMENTS_PER_BOUND: u64 = 16;
/// Bytes read from a segment per call: a batch of thousands of rows in a few calls.
const READ_CHUNK: usize = 256 * 1024;
/// The newest rows kept in memory as well, so that a reader keeping up never reads them back.
const RECENT_BYTES: usize = 4 * 1024 * 1024;
/// The `acked` file is rewritten at most this often.
const ACK_EVERY: Duration = Duration::from_millis(100);

/// What happens to a new row when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullPolicy {
    /// Refuse it: the rule engine waits, and then the publishers (QoS ≥ 1 back-pressure).
    Block,
    /// Delete the oldest segment of rows, counted as `dropped.queue_full`.
    DropOldest,
}

/// Why the buffer could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// A file of the buffer could not be read or written.
    #[error("sink buffer {path}: {source}")]
    Io {
        /// The file or the buffer's directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// One row is larger than the whole buffer may be.
    #[error("a row of {size} bytes cannot fit in a sink buffer of at most {max} bytes: raise max_buffer_bytes")]
    TooLarge {
        /// The row's size on disk, header included.
        size: u64,
        /// The buffer's bound.
        max: u64,
    },
}

/// Rows read back from the buffer: a batch, and the span of the log it covers.
#[derive(Debug, Default)]
pub struct BufferedBatch {
    /// Where the span starts: the reader's position before the read.
    pub first: u64,
    /// Rows lost to damage on disk, skipped before the first row; they are part of the span.
    pub skipped: u64,
    /// The rows, one after the other.
    pub rows: RowBatch,
}

impl BufferedBatch {
    /// The sequence number after the span: after the last row.
    pub fn end(&self) -> u64 {
        self.first + self.skipped + self.rows.len() as u64
    }

    /// Each row's sequence number and data.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        (self.first + self.skipped..).zip(self.rows.iter())
    }
}

/// The result of an append.
#[derive(Debug, Default)]
pub struct Appended {
    /// How many of the given rows were written, from the first: fewer when a blocking buffer
    /// filled up, or when `failed`.
    pub written: usize,
    /// Unconfirmed rows deleted to make room ([`FullPolicy::DropOldest`]).
    pub dropped: u64,
    /// Why row number `written` could not be written (too large, or a disk error).
    pub failed: Option<BufferError>,
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    records: u64,
    bytes: u64,
}

/// Rows appended together, as written to the disk (headers included).
#[derive(Debug)]
struct Chunk {
    first_seq: u64,
    records: u64,
    bytes: Vec<u8>,
}

#[derive(Debug)]
struct State {
    /// Oldest first; the last one is being written.
    segments: VecDeque<Segment>,
    writer: File,
    /// The sequence number the next row gets.
    next_seq: u64,
    /// Every row below this is confirmed (or dropped).
    acked: u64,
    /// Every row below this was read by the reader (and is being delivered, or was).
    read: u64,
    /// Sum of the segments' bytes: what the bound limits.
    bytes: u64,
    /// Whether writes happened since the last sync.
    dirty: bool,
    /// Segments finished since the last sync, to be fsynced by it.
    finished: Vec<u64>,
    /// Whether segment files were created or deleted since the last sync.
    dir_dirty: bool,
    /// The `acked` last written to the `acked` file, and when: the file is rewritten at most
    /// every [`ACK_EVERY`] (and at each sync), since a crash only delivers a few rows again.
    acked_on_disk: u64,
    acked_written: Instant,
    /// The newest appends, oldest first, at most [`RECENT_BYTES`] in all: a reader that keeps
    /// up reads them from here, without read calls and checksums.
    recent: VecDeque<Chunk>,
    recent_bytes: usize,
    /// The allocation of a chunk no longer kept, for the next append to fill: a fresh one
    /// costs page faults with zeroing, each time.
    spare: Vec<u8>,
}

impl State {
    /// Keeps `bytes`, just written, in memory, forgetting the oldest chunks past the bound.
    fn keep_recent(&mut self, first_seq: u64, records: u64, bytes: Vec<u8>) {
        self.recent_bytes += bytes.len();
        self.recent.push_back(Chunk { first_seq, records, bytes });
        while self.recent_bytes > RECENT_BYTES {
            let Some(c) = self.recent.pop_front() else { break };
            self.forget(c);
        }
    }

    /// Forgets kept chunks whose rows are all confirmed or dropped.
    fn forget_acked(&mut self) {
        while self.recent.front().is_some_and(|c| c.first_seq + c.records <= self.acked) {
            if let Some(c) = self.recent.pop_front() {
                self.forget(c);
            }
        }
    }

    fn forget(&mut self, chunk: Chunk) {
        self.recent_bytes -= chunk.bytes.len();
        if chunk.bytes.capacity() > self.spare.capacity() {
            self.spare = chunk.bytes;
        }
    }
}

/// A sink's durable buffer; see the module documentation.
#[derive(Debug)]
pub struct Buffer {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    policy: FullPolicy,
    state: Mutex<State>,
    /// Signalled when rows are appended.
    pub data: Notify,
    /// Signalled when rows are confirmed or dropped, so room may have appeared.
    pub space: Notify,
}

impl Buffer {
    /// Opens (or creates) the buffer in `dir`, recovering what a previous run left.
    pub fn open(dir: &Path, max_bytes: u64, policy: FullPolicy) -> Result<Buffer, BufferError> {
        let io_err = |source| BufferError::Io { path: dir.to_path_buf(), source };
        fs::create_dir_all(dir).map_err(io_err)?;
        let segment_bytes = (max_bytes / SEGMENTS_PER_BOUND).clamp(MIN_SEGMENT, MAX_SEGMENT).min(max_bytes.max(1));
        let names: Vec<String> =
            fs::read_dir(dir).map_err(io_err)?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        // A rewrite that a crash interrupted: the segment itself is whole, and checked again.
        for aside in names.iter().filter(|n| n.ends_with(".log.new")) {
            let _ = fs::remove_file(dir.join(aside));
        }
        let mut firsts: Vec<u64> = names.iter().filter_map(|n| n.strip_suffix(".log")?.parse().ok()).collect();
        firsts.sort_unstable();
        let acked = read_acked(dir).unwrap_or(0);
        let mut segments = VecDeque::new();
        for first_seq in firsts {
            let path = segment_path(dir, first_seq);
            let found = recover_segment(&path).map_err(|source| BufferError::Io { path: path.clone(), source })?;
            segments.push_back(Segment { first_seq, records: found.records, bytes: found.bytes });
        }
        // Segments wholly below `acked` were confirmed but not yet deleted when the process stopped.
        while segments.len() > 1 && segments.get(1).is_some_and(|s| s.first_seq <= acked) {
            if let Some(s) = segments.pop_front() {
                let _ = fs::remove_file(segment_path(dir, s.first_seq));
            }
        }
        let next_seq = segments.back().map_or(acked, |s| s.first_seq + s.records);
        let acked = acked.max(segments.front().map_or(acked, |s| s.first_seq)).min(next_seq);
        if segments.is_empty() {
            segments.push_back(Segment { first_seq: next_seq, records: 0, bytes: 0 });
        }
        let last = segments.back().map_or(next_seq, |s| s.first_seq);
        let writer = open_append(&segment_path(dir, last)).map_err(io_err)?;
        let bytes = segments.iter().map(|s| s.bytes).sum();
        let state = State {
            segments,
            writer,
            next_seq,
            acked,
            read: acked,
            bytes,
            dirty: false,
            finished: Vec::new(),
            dir_dirty: false,
            acked_on_disk: acked,
            acked_written: Instant::now(),
            recent: VecDeque::new(),
            recent_bytes: 0,
            spare: Vec::new(),
        };
        Ok(Buffer {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes,
            policy,
            state: Mutex::new(state),
            data: Notify::new(),
            space: Notify::new(),
        })
    }

    /// Appends the rows of `rows` from row `from` on, in order, as many as the bound lets a
    /// blocking buffer take. Under [`FullPolicy::DropOldest`], a write that fails (a full disk)
    /// deletes the oldest segments, one at a time, until it succeeds.
    pub fn append(&self, rows: &RowBatch, from: usize) -> Appended {
        let mut out = self.append_once(rows, from);
        // Each round frees a segment; a bound on them, since each may start one too.
        for _ in 0..=SEGMENTS_PER_BOUND {
            if self.policy != FullPolicy::DropOldest || !matches!(out.failed, Some(BufferError::Io { .. })) {
                break;
            }
            let mut st = self.state.lock();
            if st.segments.len() < 2 {
                break;
            }
            out.dropped += self.drop_oldest(&mut st);
            drop(st);
            let again = self.append_once(rows, from + out.written);
            out.written += again.written;
            out.dropped += again.dropped;
            out.failed = again.failed;
        }
        out
    }

    fn append_once(&self, rows: &RowBatch, from: usize) -> Appended {
        let mut out = Appended::default();
        let rows = || rows.iter().skip(from);
        let mut st = self.state.lock();
        // Sized up front: grown from empty, it would be copied over again as it doubles.
        let size = rows().map(|r| HEADER as usize + r.len()).sum::<usize>();
        let mut pending = std::mem::take(&mut st.spare);
        pending.clear();
        pending.reserve(size.min(self.segment_bytes as usize));
        // Rows in `pending`, not yet written to the file.
        let mut pending_rows = 0;
        let mut result = Ok(());
        for row in rows() {
            let size = HEADER + row.len() as u64;
            if size > self.max_bytes {
                result = Err(BufferError::TooLarge { size, max: self.max_bytes });
                break;
            }
            let current = st.segments.back().map_or(0, |s| s.bytes) + pending.len() as u64;
            if current > 0 && current + size > self.segment_bytes {
                if let Err(e) = self.write_pending(&mut st, &mut pending) {
                    out.written -= std::mem::take(&mut pending_rows);
                    result = Err(e);
                    break;
                }
                pending_rows = 0;
                if let Err(e) = self.rotate(&mut st) {
                    result = Err(e);
                    break;
                }
            }
            if st.bytes + pending.len() as u64 + size > self.max_bytes {
                match self.policy {
                    FullPolicy::Block => break,
                    FullPolicy::DropOldest => {
                        while st.bytes + pending.len() as u64 + size > self.max_bytes && st.segments.len() > 1 {
                            out.dropped += self.drop_oldest(&mut st);
                        }
                        if st.bytes + pending.len() as u64 + size > self.max_bytes {
                            // Only the segment being written is left: start a new one and drop it.
                            if let Err(e) =
                                self.write_pending(&mut st, &mut pending).and_then(|()| self.rotate(&mut st))
                            {
                                result = Err(e);
                                break;
                            }
                            out.dropped += self.drop_oldest(&mut st);
                        }
                    }
                }
            }
            pending.extend_from_slice(&(row.len() as u32).to_le_bytes());
            pending.extend_from_slice(&crc32fast::hash(row).to_le_bytes());
            pending.extend_from_slice(row);
            if let Some(s) = st.segments.back_mut() {
                s.records += 1;
            }
            out.written += 1;
            pending_rows += 1;
        }
        if let Err(e) = self.write_pending(&mut st, &mut pending) {
            out.written -= pending_rows;
            result = result.and(Err(e));
        }
        drop(st);
        if out.written > 0 {
            self.data.notify_one();
        }
        out.failed = result.err();
        out
    }

    /// Writes the bytes gathered for the current segment in one call.
    fn write_pending(&self, st: &mut State, pending: &mut Vec<u8>) -> Result<(), BufferError> {
        if pending.is_empty() {
            return Ok(());
        }
        let n = pending.len() as u64;
        let records_before = st.next_seq;
        let last = st.segments.back().map_or(records_before, |s| s.first_seq + s.records);
        match st.writer.write_all(pending) {
            Ok(()) => {
                if let Some(s) = st.segments.back_mut() {
                    s.bytes += n;
                }
                st.bytes += n;
                st.next_seq = last;
                st.dirty = true;
                st.keep_recent(records_before, last - records_before, std::mem::take(pending));
                Ok(())
            }
            Err(source) => {
                // Forget the records counted for these bytes, and cut off what part of them
                // reached the file: later appends must follow whole records.
                let whole = st.segments.back_mut().map_or(0, |s| {
                    s.records -= last - records_before;
                    s.bytes
                });
                if let Err(e) = st.writer.set_len(whole) {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "sink buffer: cannot cut a failed write off its segment; it is cut at the next start");
                }
                pending.clear();
                Err(BufferError::Io { path: self.dir.clone(), source })
            }
        }
    }

    fn rotate(&self, st: &mut State) -> Result<(), BufferError> {
        let first_seq = st.next_seq;
        let path = segment_path(&self.dir, first_seq);
        st.writer = open_append(&path).map_err(|source| BufferError::Io { path, source })?;
        if let Some(done) = st.segments.back().filter(|s| s.records > 0) {
            let done = done.first_seq;
            st.finished.push(done);
        }
        st.segments.push_back(Segment { first_seq, records: 0, bytes: 0 });
        st.dir_dirty = true;
        Ok(())
    }

    /// Deletes the oldest segment; returns how many of its rows were neither confirmed nor read.
    /// Rows already read are being delivered: they are confirmed or refused in the end.
    fn drop_oldest(&self, st: &mut State) -> u64 {
        let Some(s) = st.segments.pop_front() else {
            return 0;
        };
        let end = s.first_seq + s.records;
        let dropped = end.saturating_sub(st.acked.max(st.read).max(s.first_seq));
        st.acked = st.acked.max(end);
        st.read = st.read.max(end);
        st.bytes -= s.bytes;
        st.forget_acked();
        let _ = fs::remove_file(segment_path(&self.dir, s.first_seq));
        st.dir_dirty = true;
        let _ = self.write_acked(st);
        dropped
    }

    /// Confirms every row below `upto`: they leave the buffer, and wholly confirmed segments are
    /// deleted.
    pub fn ack(&self, upto: u64) -> Result<(), BufferError> {
        let mut st = self.state.lock();
        if upto <= st.acked {
            return Ok(());
        }
        st.acked = upto.min(st.next_seq);
        st.forget_acked();
        while st.segments.len() > 1 && st.segments.get(1).is_some_and(|s| s.first_seq <= st.acked) {
            if let Some(s) = st.segments.pop_front() {
                st.bytes -= s.bytes;
                let _ = fs::remove_file(segment_path(&self.dir, s.first_seq));
                st.dir_dirty = true;
            }
        }
        // All confirmed: start the log afresh rather than keep a segment of delivered rows.
        if st.acked == st.next_seq && st.segments.back().is_some_and(|s| s.records > 0) {
            if let Some(old) = st.segments.pop_back() {
                if let Err(e) = self.rotate(&mut st) {
                    st.segments.push_back(old);
                    return Err(e);
                }
                st.bytes -= old.bytes;
                let _ = fs::remove_file(segment_path(&self.dir, old.first_seq));
            }
        }
        let written = if st.acked_written.elapsed() >= ACK_EVERY { self.write_acked(&mut st) } else { Ok(()) };
        drop(st);
        self.space.notify_waiters();
        written
    }

    /// Records `acked` in the `acked` file (not fsynced: [`Buffer::sync`] does that).
    fn write_acked(&self, st: &mut State) -> Result<(), BufferError> {
        st.acked_written = Instant::now();
        if st.acked_on_disk == st.acked {
            return Ok(());
        }
        write_acked(&self.dir, st.acked, false)
            .map_err(|source| BufferError::Io { path: self.dir.join("acked"), source })?;
        st.acked_on_disk = st.acked;
        Ok(())
    }

    /// Makes what was written durable, by the policy in the module documentation: the segments
    /// written since the last call, the confirmed mark, the directory. The lock is held only to
    /// see what needs it; the fsyncs run without it.
    pub fn sync(&self) -> Result<(), BufferError> {
        let io_err = |source| BufferError::Io { path: self.dir.clone(), source };
        let (writer, finished, dir_dirty, acked) = {
            let mut st = self.state.lock();
            let writer =
                if std::mem::take(&mut st.dirty) { Some(st.writer.try_clone().map_err(io_err)?) } else { None };
            st.acked_written = Instant::now();
            let acked = (st.acked_on_disk != st.acked).then_some(st.acked);
            (writer, std::mem::take(&mut st.finished), std::mem::take(&mut st.dir_dirty), acked)
        };
        if let Some(writer) = writer {
            writer.sync_data().map_err(io_err)?;
        }
        for first_seq in finished {
            // Deleted since (confirmed): nothing to keep.
            if let Ok(f) = File::open(segment_path(&self.dir, first_seq)) {
                f.sync_data().map_err(io_err)?;
            }
        }
        if let Some(acked) = acked {
            write_acked(&self.dir, acked, true).map_err(io_err)?;
            let mut st = self.state.lock();
            st.acked_on_disk = st.acked_on_disk.max(acked);
        }
        if dir_dirty || acked.is_some() {
            sync_dir(&self.dir).map_err(io_err)?;
        }
        Ok(())
    }

    /// Rows not yet confirmed, and the bytes the buffer holds on disk.
    pub fn pending(&self) -> (u64, u64) {
        let st = self.state.lock();
        (st.next_seq - st.acked, st.bytes)
    }

    /// Rows not yet read by the reader: those waiting their turn.
    pub fn unread(&self) -> u64 {
        let st = self.state.lock();
        st.next_seq - st.read.max(st.acked)
    }

    /// Every row below this is confirmed or dropped.
    pub fn acked(&self) -> u64 {
        self.state.lock().acked
    }

    /// The most bytes it holds (`max_buffer_bytes`).
    pub fn capacity(&self) -> u64 {
        self.max_bytes
    }

    /// What a full buffer does.
    pub fn policy(&self) -> FullPolicy {
        self.policy
    }

    /// The sequence number the next appended row gets.
    pub fn end(&self) -> u64 {
        self.state.lock().next_seq
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // A clean stop records every confirmed row; a crash delivers the last ones again.
        let _ = self.sync();
    }
}

//! Reading the buffer back: a [`Reader`] takes the newest rows from memory and older ones from
//! the segment files.

use std::fs::File;
use std::io::{self, BufReader};

use super::files::{read_record, segment_path};
use super::{Buffer, BufferError, BufferedBatch, State, HEADER, READ_CHUNK};
use crate::row::RowBatch;

/// Where a reader is in the log: the next row it reads.
#[derive(Debug)]
pub struct Reader {
    pub(super) seq: u64,
    /// The segment it reads from the disk: its first sequence number, the open file, and the
    /// sequence number of the record the file is at (behind `seq` after reads from memory).
    pub(super) segment: Option<(u64, BufReader<File>, u64)>,
}

impl Reader {
    /// The sequence number of the next row this reader reads.
    pub fn position(&self) -> u64 {
        self.seq
    }
}

/// How much one read may still take: `max_rows` rows, and rows until `max_bytes` (at least one).
struct Limit {
    max_rows: usize,
    max_bytes: usize,
    taken: usize,
    bytes: usize,
}

impl Limit {
    fn more(&self) -> bool {
        self.taken < self.max_rows && (self.taken == 0 || self.bytes < self.max_bytes)
    }

    fn took(&mut self, bytes: usize) {
        self.taken += 1;
        self.bytes += bytes;
    }
}

impl Buffer {
    /// A reader at the oldest unconfirmed row.
    pub fn reader(&self) -> Reader {
        Reader { seq: self.state.lock().acked, segment: None }
    }

    /// Reads up to `max_rows` rows (and about `max_bytes`, at least one row) from `reader`'s
    /// position. Rows dropped since the reader's last read are skipped; so are rows lost to
    /// damage on disk, counted in [`BufferedBatch::skipped`] and logged.
    pub fn read(&self, reader: &mut Reader, max_rows: usize, max_bytes: usize) -> Result<BufferedBatch, BufferError> {
        // Held throughout, so that dropping the oldest segment (under the same lock) never counts
        // rows as dropped that this read hands on for delivery. Reads come from the page cache.
        let mut st = self.state.lock();
        if reader.seq < st.acked {
            reader.seq = st.acked;
            reader.segment = None;
        }
        let (first, end) = (reader.seq, st.next_seq);
        let rows = max_rows.min(end.saturating_sub(reader.seq) as usize);
        // Room for the rows as long as the newest ones, up to `max_bytes`: growing the vector
        // row by row copied it over and over.
        let typical = st.recent.back().map_or(0, |c| c.bytes.len() / c.records.max(1) as usize);
        let mut out = BufferedBatch {
            first,
            skipped: 0,
            rows: RowBatch::with_capacity(rows, max_bytes.min(rows.saturating_mul(typical))),
        };
        let mut limit = Limit { max_rows, max_bytes, taken: 0, bytes: 0 };
        skip_gap(&st, reader);
        while reader.seq < end && limit.more() {
            if read_recent(&st, reader, &mut limit, &mut out.rows) {
                continue;
            }
            match self.read_segment(&st, reader, &mut limit, &mut out.rows) {
                Ok(true) => {}
                Ok(false) => break,
                // The rows of a span follow each other: the damaged part is skipped at the
                // start of the next read.
                Err(_) if limit.taken > 0 => {
                    reader.segment = None;
                    break;
                }
                Err(Damaged { error, segment_end }) => {
                    tracing::warn!(dir = %self.dir.display(), seq = reader.seq, %error, "sink buffer: a segment cannot be read on; the rest of it on disk is skipped");
                    reader.segment = None;
                    // To the segment's end, or to its newest rows if memory holds them.
                    let in_memory =
                        st.recent.iter().map(|c| c.first_seq).filter(|&f| f > reader.seq && f < segment_end);
                    reader.seq = in_memory.min().unwrap_or(segment_end);
                    skip_gap(&st, reader);
                }
            }
        }
        out.skipped = reader.seq - first - out.rows.len() as u64;
        st.read = st.read.max(reader.seq);
        Ok(out)
    }

    /// Reads from the segment file that holds the reader's next row; `false` if none does.
    fn read_segment(
        &self,
        st: &State,
        reader: &mut Reader,
        limit: &mut Limit,
        out: &mut RowBatch,
    ) -> Result<bool, Damaged> {
        let Some(segment) = st.segments.iter().find(|s| (s.first_seq..s.first_seq + s.records).contains(&reader.seq))
        else {
            return Ok(false);
        };
        let (first, segment_end) = (segment.first_seq, segment.first_seq + segment.records);
        let path = segment_path(&self.dir, first);
        let damaged = |source| Damaged { error: BufferError::Io { path: path.clone(), source }, segment_end };
        // Reopen when the reader moved to another segment, else skip what memory gave.
        if reader.segment.as_ref().is_none_or(|(f, _, at)| *f != first || *at > reader.seq) {
            let file = File::open(&path).map_err(damaged)?;
            reader.segment = Some((first, BufReader::with_capacity(READ_CHUNK, file), first));
        }
        let Some((_, file, at)) = reader.segment.as_mut() else { return Ok(false) };
        let data = out.data_mut();
        let kept = data.len();
        while *at < reader.seq {
            // Records stepped over: one that fails its checksum is stepped over as well.
            match read_record(file, data) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {}
                Err(e) => return Err(damaged(e)),
            }
            data.truncate(kept);
            *at += 1;
        }
        while reader.seq < segment_end && limit.more() {
            match read_record(file, out.data_mut()) {
                Ok(len) => {
                    out.end_row();
                    limit.took(len);
                }
                // A record that fails its checksum is skipped where it stands, before the
                // span's first row: the rows of a span follow each other.
                Err(e) if e.kind() == io::ErrorKind::InvalidData && limit.taken == 0 => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    reader.segment = None;
                    return Ok(false);
                }
                Err(e) => return Err(damaged(e)),
            }
            reader.seq += 1;
            *at += 1;
        }
        if reader.seq == segment_end {
            reader.segment = None;
        }
        Ok(true)
    }
}

/// A segment that could not be read on: why, and where it ends.
struct Damaged {
    error: BufferError,
    segment_end: u64,
}

/// Moves the reader past rows that exist nowhere (lost to damage found when the buffer was
/// opened): to the next row in memory or in a segment, or to the end.
fn skip_gap(st: &State, reader: &mut Reader) {
    let seq = reader.seq;
    let held = |first: u64, records: u64| (first..first + records).contains(&seq);
    if st.recent.iter().any(|c| held(c.first_seq, c.records))
        || st.segments.iter().any(|s| held(s.first_seq, s.records))
    {
        return;
    }
    let next_segment = st.segments.iter().filter(|s| s.records > 0 && s.first_seq > seq).map(|s| s.first_seq).min();
    let next_recent = st.recent.iter().filter(|c| c.first_seq > seq).map(|c| c.first_seq).min();
    reader.seq = next_segment.into_iter().chain(next_recent).min().unwrap_or(st.next_seq).max(seq);
    reader.segment = None;
}

/// Reads from the newest rows kept in memory, if the reader's next row is among them; returns
/// whether it took any.
fn read_recent(st: &State, reader: &mut Reader, limit: &mut Limit, out: &mut RowBatch) -> bool {
    let from = reader.seq;
    let Some(chunk) = st.recent.iter().find(|c| (c.first_seq..c.first_seq + c.records).contains(&from)) else {
        return false;
    };
    let mut at = 0;
    for seq in chunk.first_seq..chunk.first_seq + chunk.records {
        let Some(header) = chunk.bytes.get(at..at + HEADER as usize) else { break };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let data = at + HEADER as usize..at + HEADER as usize + len;
        at = data.end;
        if seq < reader.seq {
            continue;
        }
        if !limit.more() {
            break;
        }
        out.push(&chunk.bytes[data]);
        limit.took(len);
        reader.seq += 1;
    }
    reader.seq > from
}

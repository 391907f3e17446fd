//! Reading the buffer back: a [`Reader`] takes the newest rows from memory and older ones from
//! the segment files.

use std::fs::File;
use std::io::BufReader;

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
    /// position. Rows dropped since the reader's last read are skipped.
    pub fn read(&self, reader: &mut Reader, max_rows: usize, max_bytes: usize) -> Result<BufferedBatch, BufferError> {
        // Held throughout, so that dropping the oldest segment (under the same lock) never counts
        // rows as dropped that this read hands on for delivery. Reads come from the page cache.
        let mut st = self.state.lock();
        if reader.seq < st.acked {
            reader.seq = st.acked;
            reader.segment = None;
        }
        let end = st.next_seq;
        let rows = max_rows.min(end.saturating_sub(reader.seq) as usize);
        // Room for the rows as long as the newest ones, up to `max_bytes`: growing the vector
        // row by row copied it over and over.
        let typical = st.recent.back().map_or(0, |c| c.bytes.len() / c.records.max(1) as usize);
        let mut out = BufferedBatch {
            first: reader.seq,
            rows: RowBatch::with_capacity(rows, max_bytes.min(rows.saturating_mul(typical))),
        };
        let mut limit = Limit { max_rows, max_bytes, taken: 0, bytes: 0 };
        while reader.seq < end && limit.more() {
            if read_recent(&st, reader, &mut limit, &mut out.rows) {
                continue;
            }
            if !self.read_segment(&st, reader, &mut limit, &mut out.rows)? {
                break;
            }
        }
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
    ) -> Result<bool, BufferError> {
        let Some(segment) = st.segments.iter().find(|s| (s.first_seq..s.first_seq + s.records).contains(&reader.seq))
        else {
            return Ok(false);
        };
        let (first, seg_end) = (segment.first_seq, segment.first_seq + segment.records);
        let path = segment_path(&self.dir, first);
        let io_err = |source| BufferError::Io { path: path.clone(), source };
        // Reopen when the reader moved to another segment, else skip what memory gave.
        if reader.segment.as_ref().is_none_or(|(f, _, at)| *f != first || *at > reader.seq) {
            let file = File::open(&path).map_err(io_err)?;
            reader.segment = Some((first, BufReader::with_capacity(READ_CHUNK, file), first));
        }
        let Some((_, file, at)) = reader.segment.as_mut() else { return Ok(false) };
        let data = out.data_mut();
        let kept = data.len();
        while *at < reader.seq {
            read_record(file, data).map_err(io_err)?;
            data.truncate(kept);
            *at += 1;
        }
        while reader.seq < seg_end && limit.more() {
            let len = read_record(file, out.data_mut()).map_err(io_err)?;
            out.end_row();
            limit.took(len);
            reader.seq += 1;
            *at += 1;
        }
        if reader.seq == seg_end {
            reader.segment = None;
        }
        Ok(true)
    }
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

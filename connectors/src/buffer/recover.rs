//! Opening a buffer that a previous run left: each segment is read back whole and checked.
//!
//! A record whose length is sound (it fits in the file, and what follows it is another record
//! or the end) but whose data fails its checksum keeps its place: it holds its sequence number,
//! and the reader skips it and counts it. A record whose length is not sound cannot be stepped
//! over: the segment is cut before it, and the sequence numbers of what was lost become a gap
//! before the next segment, which the reader skips and counts too. In the newest segment this
//! is a write torn by a crash; anywhere else, damage to the disk. Sequence numbers never shift,
//! so the `acked` mark keeps meaning the rows it meant.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use super::HEADER;

/// What a segment holds once recovered.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Recovered {
    /// Its good records.
    pub records: u64,
    /// The bytes they take: the file's size now.
    pub bytes: u64,
}

/// Checks the segment at `path`, cutting it before a record that cannot be stepped over, and
/// logs what it found.
pub(super) fn recover_segment(path: &Path) -> io::Result<Recovered> {
    let data = fs::read(path)?;
    let (mut at, mut records, mut damaged) = (0, 0u64, 0u64);
    while at < data.len() {
        match record_at(&data, at) {
            Some((len, good)) => {
                records += 1;
                damaged += u64::from(!good);
                at += HEADER as usize + len;
            }
            None => break,
        }
    }
    if damaged > 0 {
        tracing::warn!(segment = %path.display(), records, damaged, "sink buffer: records fail their checksum; they are skipped, counted as dropped.other");
    }
    if at < data.len() {
        tracing::warn!(segment = %path.display(), records, lost_bytes = data.len() - at, "sink buffer: cutting a segment before a torn or damaged record");
        OpenOptions::new().write(true).open(path)?.set_len(at as u64)?;
    }
    Ok(Recovered { records, bytes: at as u64 })
}

/// The record at `at`, if its length is sound: its data length, and whether the data matches
/// its checksum. A length is sound when it is not zero (no row is empty, and a zeroed block
/// must not read as records), it fits in `data`, and what follows is the end or a header whose
/// length fits too.
fn record_at(data: &[u8], at: usize) -> Option<(usize, bool)> {
    let (len, crc) = header_at(data, at)?;
    let start = at + HEADER as usize;
    let body = data.get(start..start.checked_add(len)?)?;
    let good = crc32fast::hash(body) == crc;
    let next = start + len;
    (good || next == data.len() || header_at(data, next).is_some_and(|(l, _)| next + HEADER as usize + l <= data.len()))
        .then_some((len, good))
}

/// The length (if not zero) and the checksum in the header at `at`.
fn header_at(data: &[u8], at: usize) -> Option<(usize, u32)> {
    let header = data.get(at..at.checked_add(HEADER as usize)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    (len > 0).then_some((len, crc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: &[u8]) -> Vec<u8> {
        let mut r = (data.len() as u32).to_le_bytes().to_vec();
        r.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        r.extend_from_slice(data);
        r
    }

    fn scan(data: &[u8]) -> Vec<(usize, bool)> {
        let mut found = Vec::new();
        let mut at = 0;
        while let Some((len, good)) = record_at(data, at) {
            found.push((len, good));
            at += HEADER as usize + len;
        }
        found
    }

    #[test]
    fn a_record_that_fails_its_checksum_keeps_its_place() {
        let (a, b, c) = (record(b"{\"a\":1}"), record(b"{\"b\":2}"), record(b"{\"c\":3}"));
        let mut data = [a.clone(), b, c].concat();
        data[a.len() + 9] ^= 0x20;
        assert_eq!(scan(&data), vec![(7, true), (7, false), (7, true)]);
    }

    #[test]
    fn zeroes_garbage_and_torn_lengths_are_not_records() {
        assert_eq!(scan(&[0u8; 4096]), vec![]);
        let garbage: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert!(scan(&garbage).len() < 2);
        let torn = [record(b"{}"), record(b"{\"x\":1}")[..9].to_vec()].concat();
        assert_eq!(scan(&torn), vec![(2, true)]);
    }
}

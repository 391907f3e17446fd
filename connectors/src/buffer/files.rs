//! The buffer's files: segment names, records (`[length][CRC-32][data]`) read and checked, and
//! the `acked` file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{HEADER, READ_CHUNK};

pub(super) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.log"))
}

pub(super) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Reads one record, checking its checksum.
/// Appends the data of the record at `r` to `out` and returns its length; on error, `out` is
/// left as it was.
pub(super) fn read_record(r: &mut impl Read, out: &mut Vec<u8>) -> io::Result<usize> {
    let mut header = [0u8; HEADER as usize];
    r.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    // Read into spare capacity (zeroing it first would be work for nothing), reserved up to a
    // chunk so that a torn length cannot ask for gigabytes.
    let start = out.len();
    out.reserve(len.min(READ_CHUNK));
    let read = r.by_ref().take(len as u64).read_to_end(out);
    let error = match read {
        Ok(n) if n < len => Some(io::ErrorKind::UnexpectedEof.into()),
        Ok(_) if crc32fast::hash(&out[start..]) != crc => {
            Some(io::Error::new(io::ErrorKind::InvalidData, "record checksum mismatch"))
        }
        Ok(_) => None,
        Err(e) => Some(e),
    };
    match error {
        Some(e) => {
            out.truncate(start);
            Err(e)
        }
        None => Ok(len),
    }
}

pub(super) fn read_acked(dir: &Path) -> Option<u64> {
    let bytes = fs::read(dir.join("acked")).ok()?;
    let (seq, crc) = (bytes.get(..8)?, bytes.get(8..12)?);
    (crc32fast::hash(seq).to_le_bytes() == crc).then(|| u64::from_le_bytes(seq.try_into().unwrap_or_default()))
}

/// Replaces the `acked` file: written aside, then renamed over it. `durable` fsyncs the new
/// file before the rename (the caller then fsyncs the directory).
pub(super) fn write_acked(dir: &Path, acked: u64, durable: bool) -> io::Result<()> {
    let seq = acked.to_le_bytes();
    let mut bytes = seq.to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&seq).to_le_bytes());
    // Apart from each other: a sync and an ack may both be writing one.
    let aside = dir.join(if durable { "acked.sync" } else { "acked.new" });
    let mut f = File::create(&aside)?;
    f.write_all(&bytes)?;
    if durable {
        f.sync_data()?;
    }
    fs::rename(aside, dir.join("acked"))
}

/// Makes the directory's entries (files created, renamed, deleted) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

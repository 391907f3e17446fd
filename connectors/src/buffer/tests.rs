use super::*;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

fn rows(n: usize) -> RowBatch {
    (0..n).map(|i| format!("{{\"i\":{i}}}")).collect()
}

fn one(row: &[u8]) -> RowBatch {
    [row].into_iter().collect()
}

fn many(row: &[u8], n: usize) -> RowBatch {
    std::iter::repeat_n(row, n).collect()
}

fn read_all(b: &Buffer) -> RowBatch {
    let mut r = b.reader();
    b.read(&mut r, usize::MAX, usize::MAX).unwrap().rows
}

#[test]
fn rows_survive_a_restart_until_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    let all = rows(10);
    assert_eq!(b.append(&all, 0).written, 10);
    b.ack(4).unwrap();
    drop(b);
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    assert_eq!(read_all(&b), all.iter().skip(4).collect());
    assert_eq!(b.pending().0, 6);
    b.append(&one(b"more"), 0);
    let read = read_all(&b);
    assert_eq!(read.get(read.len() - 1), Some(&b"more"[..]));
}

#[test]
fn a_torn_tail_is_cut_off_and_writing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    b.append(&rows(3), 0);
    drop(b);
    let seg = segment_path(dir.path(), 0);
    let len = fs::metadata(&seg).unwrap().len();
    // A crash in the middle of the third record's write.
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 3).unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    assert_eq!(read_all(&b), rows(2));
    b.append(&one(b"next"), 0);
    drop(b);
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    assert_eq!(read_all(&b), rows(2).iter().chain([&b"next"[..]]).collect());
}

#[test]
fn a_damaged_record_fails_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    b.append(&rows(3), 0);
    drop(b);
    let seg = segment_path(dir.path(), 0);
    let mut bytes = fs::read(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&seg, bytes).unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    assert_eq!(read_all(&b), rows(2));
}

#[test]
fn the_bound_blocks_or_drops_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let row = vec![b'x'; 1000];
    let max = 200 * 1024;
    let b = Buffer::open(&dir.path().join("block"), max, FullPolicy::Block).unwrap();
    let written = b.append(&many(&row, 1000), 0).written;
    assert!(written > 150 && written < 205, "{written}");
    assert_eq!(b.append(&one(&row), 0).written, 0);
    assert!(b.pending().1 <= max);
    b.ack(100).unwrap();
    assert!(b.append(&one(&row), 0).written == 1);

    let d = Buffer::open(&dir.path().join("drop"), max, FullPolicy::DropOldest).unwrap();
    let out = d.append(&many(&row, 1000), 0);
    assert_eq!(out.written, 1000);
    let (pending, bytes) = d.pending();
    assert!(bytes <= max, "{bytes}");
    assert_eq!(pending + out.dropped, 1000);
    // The newest rows are the ones kept.
    let mut r = d.reader();
    let kept = d.read(&mut r, usize::MAX, usize::MAX).unwrap();
    assert_eq!(kept.end(), 1000);
    let on_disk: u64 =
        fs::read_dir(dir.path().join("drop")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(on_disk <= max + 64, "{on_disk}");
}

#[test]
fn reading_in_batches_follows_segments() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    let row = vec![b'y'; 10_000];
    b.append(&many(&row, 30), 0);
    assert!(fs::read_dir(dir.path()).unwrap().count() > 3, "several segments");
    let mut r = b.reader();
    let mut seqs = Vec::new();
    loop {
        let out = b.read(&mut r, 7, usize::MAX).unwrap();
        if out.rows.is_empty() {
            break;
        }
        assert!(out.rows.len() <= 7);
        seqs.extend(out.iter().map(|(seq, _)| seq));
    }
    assert_eq!(seqs, (0..30).collect::<Vec<_>>());
    b.ack(30).unwrap();
    assert_eq!(b.pending(), (0, 0), "confirmed segments are deleted");
    assert_eq!(
        fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
            .count(),
        1
    );
    b.append(&one(b"after"), 0);
    assert_eq!(read_all(&b), one(b"after"));
}

#[test]
fn a_reader_behind_the_rows_kept_in_memory_reads_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 64 << 20, FullPolicy::Block).unwrap();
    let row = |i: usize| format!("{i:0>1000}").into_bytes();
    // 6 MB in appends of 100 rows: the oldest are only on the disk.
    for start in (0..6000).step_by(100) {
        b.append(&(start..start + 100).map(row).collect(), 0);
    }
    let mut r = b.reader();
    let mut seen = Vec::new();
    while seen.len() < 6000 {
        let out = b.read(&mut r, 333, usize::MAX).unwrap();
        // Appends between reads: the reader moves between the disk and memory.
        if seen.len() == 2997 {
            b.append(&one(&row(6000)), 0);
        }
        seen.extend(out.iter().map(|(seq, data)| (seq, data.to_vec())));
    }
    let out = b.read(&mut r, usize::MAX, usize::MAX).unwrap();
    seen.extend(out.iter().map(|(seq, data)| (seq, data.to_vec())));
    assert_eq!(seen.len(), 6001);
    for (i, rec) in seen.iter().enumerate() {
        assert_eq!(rec, &(i as u64, row(i)));
    }
    // The newest rows come from memory: they are read even with the files gone.
    for e in fs::read_dir(dir.path()).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    let mut r = Reader { seq: 5990, segment: None };
    let out = b.read(&mut r, usize::MAX, usize::MAX).unwrap();
    assert_eq!(out.iter().map(|(seq, _)| seq).collect::<Vec<_>>(), (5990..6001).collect::<Vec<_>>());
}

#[test]
fn an_append_can_start_inside_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    let all = rows(5);
    assert_eq!(b.append(&all, 3).written, 2);
    assert_eq!(b.append(&all, 5).written, 0);
    assert_eq!(read_all(&b), all.iter().skip(3).collect());
}

/// The segment files, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

/// Reads everything, batch by batch, as a driver would: (sequence number, row) pairs and the
/// rows skipped.
fn drain(b: &Buffer) -> (Vec<(u64, Vec<u8>)>, u64) {
    let mut r = b.reader();
    let (mut seen, mut skipped) = (Vec::new(), 0);
    loop {
        let out = b.read(&mut r, 7, usize::MAX).unwrap();
        if out.first == out.end() {
            return (seen, skipped);
        }
        skipped += out.skipped;
        seen.extend(out.iter().map(|(seq, data)| (seq, data.to_vec())));
    }
}

/// Rows of 10 KB, `i` in each, 100 of them: about 16 segments in a 1 MiB buffer.
fn big_rows() -> RowBatch {
    (0..100).map(|i| format!("{i:0>10000}")).collect()
}

fn is_row(seq: u64, data: &[u8]) -> bool {
    data == format!("{seq:0>10000}").as_bytes()
}

#[test]
fn a_segment_cut_in_the_middle_loses_its_tail_and_reading_goes_on_past_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    assert_eq!(b.append(&big_rows(), 0).written, 100);
    drop(b);
    let files = segments(dir.path());
    assert!(files.len() > 4, "{files:?}");
    // An old segment loses its second half, in the middle of a record.
    let len = fs::metadata(&files[1]).unwrap().len();
    OpenOptions::new().write(true).open(&files[1]).unwrap().set_len(len / 2 + 3).unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    let (seen, skipped) = drain(&b);
    assert!(seen.iter().all(|(seq, data)| is_row(*seq, data)), "every row read is whole and where it was");
    assert!(skipped > 0 && skipped < 10, "{skipped}");
    assert_eq!(seen.len() as u64 + skipped, 100);
    assert_eq!(seen.last().map(|(s, _)| *s), Some(99), "the newest rows are all read");
}

#[test]
fn a_corrupt_record_in_an_old_segment_is_skipped_and_its_neighbours_kept() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    b.append(&big_rows(), 0);
    drop(b);
    let first = &segments(dir.path())[0];
    let mut bytes = fs::read(first).unwrap();
    // A flipped bit in the data of the segment's second record.
    bytes[HEADER as usize + 10_000 + HEADER as usize + 5_000] ^= 0x04;
    fs::write(first, bytes).unwrap();
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    let (seen, skipped) = drain(&b);
    assert_eq!(skipped, 1);
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..100).filter(|&s| s != 1).collect::<Vec<_>>());
    assert_eq!(seen.len(), 99);
    assert!(seen.iter().all(|(seq, data)| is_row(*seq, data)));
    // Rewritten without the damage: a second start finds nothing to repair.
    drop(b);
    let b = Buffer::open(dir.path(), 1 << 20, FullPolicy::Block).unwrap();
    assert_eq!(drain(&b).1, 1);
}

#[test]
fn damage_found_while_running_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(dir.path(), 64 << 20, FullPolicy::Block).unwrap();
    // 10 MB in segments of 4 MiB: the oldest rows are only on disk, past what memory keeps.
    for start in (0..1000).step_by(100) {
        b.append(&(start..start + 100).map(|i| format!("{i:0>10000}")).collect(), 0);
    }
    let files = segments(dir.path());
    assert_eq!(files.len(), 3);
    // A flipped bit in the first row, and the second segment cut short.
    let mut bytes = fs::read(&files[0]).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&files[0], bytes).unwrap();
    let cut = fs::metadata(&files[1]).unwrap().len() / 4;
    OpenOptions::new().write(true).open(&files[1]).unwrap().set_len(cut).unwrap();
    let (seen, skipped) = drain(&b);
    assert_eq!(seen.first().map(|(s, _)| *s), Some(1), "the damaged row alone is skipped");
    assert!(skipped > 1, "and the rest of the cut segment: {skipped}");
    assert_eq!(seen.len() as u64 + skipped, 1000);
    assert!(seen.iter().all(|(seq, data)| is_row(*seq, data)));
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_blocks_or_drops_the_oldest_and_never_tears_the_log() {
    // Mounting needs root, as CI has; elsewhere there is nothing to test this on.
    let Some(disk) = SmallDisk::mount("1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let row = vec![b'z'; 1000];
    let block = Buffer::open(&disk.0.path().join("block"), 64 << 20, FullPolicy::Block).unwrap();
    let mut written = 0;
    let failed = loop {
        let out = block.append(&many(&row, 100), 0);
        written += out.written;
        assert_eq!(out.dropped, 0);
        if let Some(e) = out.failed {
            break e;
        }
        assert!(written < 2000, "a 1 MiB disk took {written} KB");
    };
    assert!(matches!(failed, BufferError::Io { .. }), "{failed}");
    assert!(written > 500, "{written}");
    // What was written reads back whole, after a restart too.
    assert_eq!(read_all(&block).len(), written);
    drop(block);
    let block = Buffer::open(&disk.0.path().join("block"), 64 << 20, FullPolicy::Block).unwrap();
    assert_eq!(block.pending().0, written as u64);
    // Delivered rows free the disk, and appends go on.
    block.ack(written as u64).unwrap();
    assert_eq!(block.append(&many(&row, 100), 0).written, 100);
    drop(block);
    fs::remove_dir_all(disk.0.path().join("block")).unwrap();

    // A bound above the disk's size, in segments of 128 KiB: the disk fills first.
    let drop_oldest = Buffer::open(&disk.0.path().join("drop"), 2 << 20, FullPolicy::DropOldest).unwrap();
    let (mut written, mut dropped) = (0, 0);
    for _ in 0..30 {
        let out = drop_oldest.append(&many(&row, 100), 0);
        assert!(out.failed.is_none(), "room is made by dropping the oldest rows: {:?}", out.failed);
        written += out.written as u64;
        dropped += out.dropped;
    }
    assert_eq!(written, 3000);
    assert!(dropped > 0);
    assert_eq!(drop_oldest.pending().0 + dropped, 3000);
}

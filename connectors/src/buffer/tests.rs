use super::*;
use std::fs::OpenOptions;

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

//! Helpers shared by the file-log tests.

use std::path::{Path, PathBuf};

use taquilla_log::file::{FileLog, FileLogOptions, SEGMENT_HEADER_BYTES, frame};
use taquilla_log::{Append, EventLog, LogError, Lsn, Record};

pub fn small_opts() -> FileLogOptions {
    FileLogOptions {
        segment_size_bytes: 1024,
        index_interval_records: 4,
        ..FileLogOptions::default()
    }
}

pub fn open(dir: &Path, opts: &FileLogOptions) -> FileLog {
    FileLog::open(dir, opts.clone()).expect("open").0
}

pub fn payload(lsn: Lsn) -> Vec<u8> {
    format!("record number {lsn} with some padding").into_bytes()
}

/// Appends `count` records (partition = lsn % 3, so seqs interleave) in batches of
/// `batch_records`, flushes; returns the last LSN.
pub fn fill(log: &FileLog, count: u64, batch_records: u64) -> Lsn {
    let mut last = log.last_lsn();
    let mut left = count;
    while left > 0 {
        let n = left.min(batch_records);
        let payloads: Vec<Vec<u8>> = (last + 1..=last + n).map(payload).collect();
        let mut next: std::collections::HashMap<u64, u64> = Default::default();
        let batch: Vec<Append<'_>> = payloads
            .iter()
            .zip(last + 1..)
            .map(|(p, lsn)| {
                let partition = lsn % 3;
                let seq = next.entry(partition).or_insert_with(|| log.next_seq(partition));
                let rec = Append {
                    partition,
                    expected_seq: *seq,
                    timestamp_ms: lsn as i64,
                    correlation_id: Some("t"),
                    payload: p,
                };
                *seq += 1;
                rec
            })
            .collect();
        last = log.append(&batch).expect("append");
        left -= n;
    }
    log.flush(last).expect("flush");
    last
}

pub fn read_all(log: &dyn EventLog) -> Vec<Record> {
    log.read(0, usize::MAX).expect("read")
}

/// Asserts `records` are exactly LSNs 1..=n as written by `fill`.
pub fn assert_prefix(records: &[Record]) {
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.lsn, i as u64 + 1);
        assert_eq!(r.payload, payload(r.lsn));
    }
}

/// Segment files of a log dir, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// Byte offsets of the frames in a segment file, and where its data ends (the file's end, or
/// the zeros of a preallocated segment).
pub fn frames_and_end(path: &Path) -> (Vec<u64>, u64) {
    let bytes = std::fs::read(path).expect("read segment");
    let mut pos = SEGMENT_HEADER_BYTES as usize;
    let mut out = Vec::new();
    while pos < bytes.len() && !bytes[pos..].starts_with(&[0u8; frame::FRAME_HEADER_BYTES]) {
        let (_, n) = frame::decode(&bytes[pos..]).expect("valid frame");
        out.push(pos as u64);
        pos += n;
    }
    assert!(bytes[pos..].iter().all(|&b| b == 0), "only zeros after the data");
    (out, pos as u64)
}

/// Byte offsets of the frames in a segment file.
pub fn frame_offsets(path: &Path) -> Vec<u64> {
    frames_and_end(path).0
}

/// Where a segment's data ends.
pub fn data_end(path: &Path) -> u64 {
    frames_and_end(path).1
}

/// Writes `bytes` at `offset` of a file, in place.
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).expect("open");
    f.write_all_at(bytes, offset).expect("write");
}

/// The same options without preallocation: segments grow by appends (the older layout).
pub fn unprepared(opts: FileLogOptions) -> FileLogOptions {
    FileLogOptions {
        preallocate: false,
        ..opts
    }
}

pub fn flip_bit(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset as usize] ^= 0x10;
    std::fs::write(path, bytes).expect("write");
}

/// Opens a log that must be found corrupt: the segment, offset and reason of the error.
pub fn open_corrupt(dir: &Path, opts: FileLogOptions) -> (PathBuf, u64, String) {
    match FileLog::open(dir, opts) {
        Err(LogError::Corrupt {
            segment,
            offset,
            reason,
        }) => (segment, offset, reason),
        other => panic!("expected Corrupt, got {:?}", other.map(|(_, r)| r)),
    }
}

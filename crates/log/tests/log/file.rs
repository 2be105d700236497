//! File-log specifics: segments, recovery of torn tails, corruption detection, the dir lock.

use std::io::Write;

use taquilla_log::file::{FileLog, FileLogOptions, PREPARED_FILE_NAME, SEGMENT_HEADER_BYTES, frame, segment_file_name};
use taquilla_log::{Append, EventLog, LogError};

use crate::util::*;

#[test]
fn segments_roll_and_are_named_by_first_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_opts();
    let log = open(dir.path(), &opts);
    let last = fill(&log, 200, 3);
    let segs = segments(dir.path());
    assert!(segs.len() > 5, "expected several segments, got {}", segs.len());
    assert_eq!(segs, log.segment_paths());
    // Each segment is named by its first LSN, starts with the magic, and rolled near the size.
    let mut expected_first = 1;
    for seg in &segs {
        let name = seg.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, segment_file_name(expected_first));
        let bytes = std::fs::read(seg).unwrap();
        assert_eq!(&bytes[..8], b"TQLOG\0\0\x01");
        let frames = frame_offsets(seg);
        let (first, _) = frame::decode(&bytes[frames[0] as usize..]).unwrap();
        assert_eq!(first.lsn, expected_first);
        expected_first += frames.len() as u64;
        assert!(
            bytes.len() as u64 <= opts.segment_size_bytes + 512,
            "segment grew well past its size"
        );
        if seg != segs.last().unwrap() {
            assert_eq!(bytes.len() as u64, data_end(seg), "a sealed segment is cut to its data");
        }
    }
    assert_eq!(expected_first, last + 1);
    assert_prefix(&read_all(&log));
    assert_eq!(read_all(&log).len(), 200);
    drop(log);

    let (log, report) = FileLog::open(dir.path(), opts).unwrap();
    assert_eq!(report.segments, segs.len());
    assert_eq!(report.records, 200);
    assert_eq!(report.last_lsn, 200);
    assert_eq!(report.truncated, None);
    assert_eq!(log.next_seq(0), 200 / 3 + 1);
    // Scans from every position (through the rebuilt sparse index) start at the right record.
    for after in 0..=200 {
        let got = log.read(after, 3).unwrap();
        let want: Vec<u64> = (after + 1..=(after + 3).min(200)).collect();
        assert_eq!(got.iter().map(|r| r.lsn).collect::<Vec<_>>(), want);
    }
    fill(&log, 10, 10);
    assert_prefix(&read_all(&log));
}

#[test]
fn a_new_log_is_preallocated_and_leaves_no_preparation_behind() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions {
        segment_size_bytes: 64 * 1024,
        ..FileLogOptions::default()
    };
    let log = open(dir.path(), &opts);
    let seg = segments(dir.path()).pop().unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), opts.segment_size_bytes);
    fill(&log, 10, 3);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), opts.segment_size_bytes);
    // The next segment is not prepared while this one is less than half full...
    let prepared = dir.path().join(PREPARED_FILE_NAME);
    assert!(!prepared.exists());
    let mut written = 10;
    while data_end(&seg) <= opts.segment_size_bytes / 2 {
        fill(&log, 50, 50);
        written += 50;
    }
    // ...and is from then on (polled, with a bound: it runs on its own thread).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !prepared.exists() {
        assert!(std::time::Instant::now() < deadline, "no preparation after half full");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(log);
    assert!(!prepared.exists(), "a dropped log leaves no preparation behind");
    // A preparation cut off by a crash is deleted at open (here by a log that prepares
    // nothing itself, so the file's absence proves it).
    std::fs::write(dir.path().join(PREPARED_FILE_NAME), b"partial").unwrap();
    let (log, report) = FileLog::open(dir.path(), unprepared(opts)).unwrap();
    assert!(!dir.path().join(PREPARED_FILE_NAME).exists());
    assert_eq!((report.records, report.truncated), (written, None));
    assert_prefix(&read_all(&log));
}

#[test]
fn an_unprepared_active_segment_is_left_once_a_prepared_one_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions {
        segment_size_bytes: 64 * 1024,
        ..FileLogOptions::default()
    };
    // Written by a log without preallocation: the segment is exactly its data.
    let log = open(dir.path(), &unprepared(opts.clone()));
    fill(&log, 10, 3);
    drop(log);
    let first = segments(dir.path()).pop().unwrap();
    let first_len = std::fs::metadata(&first).unwrap().len();
    assert_eq!(first_len, data_end(&first));

    let log = open(dir.path(), &opts);
    // The next segment is prepared in the background; the first append after it is ready
    // rolls to it. Poll for that, with a bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut written = 10;
    while segments(dir.path()).len() == 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "never rolled to a prepared segment"
        );
        fill(&log, 1, 1);
        written += 1;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 2);
    // Left early, not because it was full.
    assert!(data_end(&first) < opts.segment_size_bytes / 2, "rolled only when full");
    assert_eq!(std::fs::metadata(&segs[1]).unwrap().len(), opts.segment_size_bytes);
    assert_eq!(std::fs::metadata(&first).unwrap().len(), data_end(&first));
    drop(log);
    let (log, report) = FileLog::open(dir.path(), opts).unwrap();
    assert_eq!((report.records, report.truncated), (written, None));
    assert_prefix(&read_all(&log));
}

#[test]
fn batch_larger_than_a_segment_stays_in_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_opts());
    fill(&log, 100, 100);
    fill(&log, 1, 1);
    assert_eq!(segments(dir.path()).len(), 2);
    assert_prefix(&read_all(&log));
}

fn frame_of(lsn: u64, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    frame::encode(
        &mut buf,
        lsn,
        &Append {
            partition: lsn % 3,
            expected_seq: lsn / 3 + 1,
            timestamp_ms: 0,
            correlation_id: None,
            payload,
        },
    );
    buf
}

fn half_of_a_frame(lsn: u64) -> Vec<u8> {
    let mut buf = frame_of(lsn, b"never acknowledged");
    buf.truncate(buf.len() / 2);
    buf
}

/// A default (preallocated) log holding 10 records, closed: its options, its one segment and
/// where the segment's data ends.
fn ten_records_preallocated(dir: &std::path::Path) -> (FileLogOptions, std::path::PathBuf, u64) {
    let opts = FileLogOptions::default();
    let log = open(dir, &opts);
    fill(&log, 10, 4);
    drop(log);
    let seg = segments(dir).pop().unwrap();
    let end = data_end(&seg);
    (opts, seg, end)
}

#[test]
fn torn_tail_inside_a_preallocated_segment_is_zeroed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (opts, seg, end) = ten_records_preallocated(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    assert_eq!(len, opts.segment_size_bytes, "the segment is preallocated");
    // Half of the next batch's frame made it to disk, over the zeros.
    let torn = half_of_a_frame(11);
    write_at(&seg, end, &torn);

    let (log, report) = FileLog::open(dir.path(), opts.clone()).unwrap();
    let t = report.truncated.clone().expect("torn tail reported");
    assert_eq!((t.segment, t.offset, t.bytes), (seg.clone(), end, torn.len() as u64));
    assert_eq!(report.last_lsn, 10);
    // Zeroed in place: the segment stays preallocated and its data ends where it did.
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
    assert_eq!(data_end(&seg), end);
    fill(&log, 5, 5);
    drop(log);
    let (log, report) = FileLog::open(dir.path(), opts).unwrap();
    assert_eq!(report.truncated, None);
    assert_eq!(read_all(&log).len(), 15);
    assert_prefix(&read_all(&log));
}

#[test]
fn frames_behind_an_unwritten_sector_are_a_torn_write_and_dropped() {
    // Power lost during a flush: in a preallocated file, the pages of the unacknowledged
    // batches reach the disk in any order, so a later frame can be there behind zeros. No
    // record after such a hole was acknowledged; recovery drops them all, durably.
    let dir = tempfile::tempdir().unwrap();
    let (opts, seg, end) = ten_records_preallocated(dir.path());
    let stale = frame_of(11, b"behind a hole");
    write_at(&seg, end + 4096, &stale);
    let (log, report) = FileLog::open(dir.path(), opts.clone()).unwrap();
    let t = report.truncated.expect("torn tail reported");
    assert_eq!((t.offset, t.bytes), (end, 4096 + stale.len() as u64));
    assert_eq!(report.last_lsn, 10);
    assert_eq!(data_end(&seg), end);
    // New records take lsn 11 on; the stale frame can never come back after them.
    fill(&log, 5, 5);
    drop(log);
    let (log, report) = FileLog::open(dir.path(), opts).unwrap();
    assert_eq!((report.records, report.truncated), (15, None));
    assert_prefix(&read_all(&log));
}

#[test]
fn damage_in_written_bytes_with_a_frame_after_it_is_corrupt() {
    // Non-zero bytes that are not a frame, then a valid frame, with no unwritten sector in
    // between: a record was damaged on disk, not torn. Recovery stops instead of guessing.
    let dir = tempfile::tempdir().unwrap();
    let (opts, seg, end) = ten_records_preallocated(dir.path());
    let mut bytes = b"\x05\x00\x00\x00garbage!".to_vec();
    bytes.extend_from_slice(&frame_of(11, b"after damage"));
    write_at(&seg, end, &bytes);
    let (_, offset, reason) = open_corrupt(dir.path(), opts);
    assert_eq!(offset, end);
    assert!(reason.contains("valid frame follows"), "{reason}");
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let opts = unprepared(FileLogOptions::default());
    let log = open(dir.path(), &opts);
    fill(&log, 10, 4);
    drop(log);
    let seg = segments(dir.path()).pop().unwrap();
    let good_len = std::fs::metadata(&seg).unwrap().len();
    // Half of the next batch's frame made it to disk.
    let torn = half_of_a_frame(11);
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&torn).unwrap();
    drop(f);

    let (log, report) = FileLog::open(dir.path(), opts.clone()).unwrap();
    let t = report.truncated.clone().expect("truncated tail reported");
    assert_eq!(t.segment, seg);
    assert_eq!(t.offset, good_len);
    assert_eq!(t.bytes, torn.len() as u64);
    assert_eq!(report.last_lsn, 10);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len);
    assert_eq!(log.durable_lsn(), 10);
    // Appends continue after the cut.
    fill(&log, 5, 5);
    assert_prefix(&read_all(&log));
    drop(log);
    let (log, report) = FileLog::open(dir.path(), opts).unwrap();
    assert_eq!(report.truncated, None);
    assert_eq!(read_all(&log).len(), 15);
}

#[test]
fn garbage_tails_are_truncated_and_zero_tails_kept() {
    let opts = unprepared(small_opts());
    for tail in [
        vec![0u8; 4096],
        vec![0u8; 3],
        vec![0xffu8; 3],
        b"\x05\x00\x00\x00garbage!".to_vec(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), &opts);
        fill(&log, 20, 7);
        drop(log);
        let seg = segments(dir.path()).pop().unwrap();
        let good_len = std::fs::metadata(&seg).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&tail)
            .unwrap();
        let (log, report) = FileLog::open(dir.path(), opts.clone()).unwrap();
        if tail.iter().all(|&b| b == 0) {
            // What a preallocated segment looks like: nothing to report.
            assert_eq!(report.truncated, None);
        } else {
            let t = report.truncated.expect("truncated");
            assert_eq!((t.offset, t.bytes), (good_len, tail.len() as u64));
        }
        assert_eq!(read_all(&log).len(), 20);
        fill(&log, 2, 2);
        drop(log);
        let (log, _) = FileLog::open(dir.path(), opts.clone()).unwrap();
        assert_eq!(read_all(&log).len(), 22);
        assert_prefix(&read_all(&log));
    }
}

#[test]
fn torn_segment_header_after_a_roll_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_opts());
    fill(&log, 50, 5);
    drop(log);
    // A crash right after creating the next segment: only part of its magic is there.
    let next = dir.path().join(segment_file_name(51));
    std::fs::write(&next, b"TQL").unwrap();
    let log = open(dir.path(), &small_opts());
    assert_eq!(log.last_lsn(), 50);
    fill(&log, 5, 5);
    assert_prefix(&read_all(&log));
    assert_eq!(read_all(&log).len(), 55);
}

#[test]
fn flipped_bit_in_the_middle_of_the_last_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &FileLogOptions::default());
    fill(&log, 100, 10);
    drop(log);
    let seg = segments(dir.path()).pop().unwrap();
    let offsets = frame_offsets(&seg);
    let bad = offsets[49];
    flip_bit(&seg, bad + 20);
    let (segment, offset, reason) = open_corrupt(dir.path(), FileLogOptions::default());
    assert_eq!((segment, offset), (seg, bad));
    assert!(reason.contains("valid frame follows"), "{reason}");
}

#[test]
fn flipped_bit_in_an_earlier_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_opts());
    fill(&log, 100, 2);
    drop(log);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    // Even the last frame of a non-last segment: only the log's very tail may be torn.
    let offsets = frame_offsets(&segs[1]);
    let bad = *offsets.last().unwrap();
    flip_bit(&segs[1], bad + 9);
    let (segment, offset, _) = open_corrupt(dir.path(), small_opts());
    assert_eq!((segment, offset), (segs[1].clone(), bad));
}

#[test]
fn bad_segment_header_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_opts());
    fill(&log, 40, 2);
    drop(log);
    let segs = segments(dir.path());
    flip_bit(&segs[0], 2);
    let (segment, offset, _) = open_corrupt(dir.path(), small_opts());
    assert_eq!((segment, offset), (segs[0].clone(), 0));
}

#[test]
fn missing_middle_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_opts());
    fill(&log, 100, 2);
    drop(log);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[1]).unwrap();
    let (segment, offset, reason) = open_corrupt(dir.path(), small_opts());
    assert_eq!(
        segment, segs[2],
        "the gap is found at the segment after the missing one"
    );
    assert_eq!(offset, 0);
    assert!(reason.contains("missing segment"), "{reason}");
}

#[test]
fn missing_first_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_opts());
    fill(&log, 60, 2);
    drop(log);
    let segs = segments(dir.path());
    std::fs::remove_file(&segs[0]).unwrap();
    assert!(
        matches!(FileLog::open(dir.path(), small_opts()), Err(LogError::Corrupt { segment, .. }) if segment == segs[1])
    );
}

#[test]
fn seq_gap_in_a_partition_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &FileLogOptions::default());
    fill(&log, 3, 3);
    drop(log);
    // A frame with a valid CRC and the right LSN but a skipped seq.
    let seg = segments(dir.path()).pop().unwrap();
    let mut buf = Vec::new();
    frame::encode(
        &mut buf,
        4,
        &Append {
            partition: 1,
            expected_seq: 7,
            timestamp_ms: 0,
            correlation_id: None,
            payload: b"x",
        },
    );
    let end = data_end(&seg);
    write_at(&seg, end, &buf);
    let (_, offset, reason) = open_corrupt(dir.path(), FileLogOptions::default());
    assert_eq!(offset, end);
    assert!(reason.contains("seq"), "{reason}");
}

#[test]
fn second_open_is_locked_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &FileLogOptions::default());
    match FileLog::open(dir.path(), FileLogOptions::default()) {
        Err(LogError::Locked(path)) => assert_eq!(path, dir.path().join("LOCK")),
        other => panic!("expected Locked, got {:?}", other.map(|(_, r)| r)),
    }
    drop(log);
    let _log = open(dir.path(), &FileLogOptions::default());
}

const LOCK_CHILD_ENV: &str = "TAQUILLA_LOG_TEST_LOCKED_DIR";

/// Run by `lock_is_held_against_another_process` in a child process: the open must fail.
#[test]
fn lock_child_helper() {
    let Some(dir) = std::env::var_os(LOCK_CHILD_ENV) else {
        return;
    };
    match FileLog::open(std::path::Path::new(&dir), FileLogOptions::default()) {
        Err(LogError::Locked(_)) => {}
        other => panic!("expected Locked in the child, got {:?}", other.map(|(_, r)| r)),
    }
}

#[test]
fn lock_is_held_against_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let _log = open(dir.path(), &FileLogOptions::default());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["file::lock_child_helper", "--exact", "--test-threads=1"])
        .env(LOCK_CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child could open a locked log (or failed otherwise): {stdout}"
    );
    // Make sure the helper really ran (a filter matching nothing also exits 0).
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let bad = FileLogOptions {
        segment_size_bytes: SEGMENT_HEADER_BYTES,
        ..FileLogOptions::default()
    };
    assert!(matches!(
        FileLog::open(dir.path(), bad),
        Err(LogError::InvalidOptions(_))
    ));
}

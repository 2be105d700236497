//! The one test suite every [`EventLog`] implementation must pass.
//!
//! Shaped after restate's `loglet_tests.rs`: an implementation's tests provide a [`Harness`]
//! and call each `pub fn` check (one `#[test]` per check, so a failure names it), or
//! [`run_all`]. The checks panic on failure, like assertions in a test. They use no sleeps and
//! no wall-clock thresholds: waiting is done with `wait_durable` and joins; the only timeouts
//! are generous hang guards.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::cursor::CursorReader;
use crate::{Append, CORRELATION_ID_MAX_BYTES, EventLog, LogError, Lsn, PartitionId, RECORD_PAYLOAD_MAX_BYTES, Record};

/// A wait long enough that reaching it means the implementation hangs.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// How the suite gets logs.
pub trait Harness {
    /// A fresh, empty log.
    fn open(&mut self) -> Arc<dyn EventLog>;
    /// The log last returned by `open`/`reopen`, as a restart would find it. The suite drops
    /// every handle to the old log before calling this (a file log's lock must be free).
    fn reopen(&mut self) -> Arc<dyn EventLog>;
}

/// Runs every check, each on a fresh log.
pub fn run_all<H: Harness>(h: &mut H) {
    append_scan_round_trip(h);
    lsn_contiguity(h);
    per_partition_seqs(h);
    conditional_append_conflict_is_all_or_nothing(h);
    empty_batch(h);
    limits_rejected_without_writing(h);
    flush_makes_durable_and_readers_see_only_durable(h);
    read_respects_max(h);
    durability_across_reopen(h);
    concurrent_appenders_and_flushers(h);
    concurrent_appenders_same_partition_are_fenced(h);
    concurrent_readers_follow_writes(h);
    wait_durable_wakes_on_flush(h);
    cursor_reader_resumes_at_least_once(h);
}

fn payload_for(partition: PartitionId, seq: u64) -> Vec<u8> {
    format!("p{partition}-s{seq}").into_bytes()
}

/// Appends `count` records to `partition` (continuing its seqs) and flushes; returns last LSN.
fn append_simple(log: &dyn EventLog, partition: PartitionId, count: usize) -> Lsn {
    let first = log.next_seq(partition);
    let payloads: Vec<Vec<u8>> = (0..count as u64).map(|i| payload_for(partition, first + i)).collect();
    let batch: Vec<Append<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| Append {
            partition,
            expected_seq: first + i as u64,
            timestamp_ms: 1_000 + i as i64,
            correlation_id: None,
            payload: p,
        })
        .collect();
    let lsn = log.append(&batch).expect("append");
    log.flush(lsn).expect("flush");
    lsn
}

fn read_all(log: &dyn EventLog) -> Vec<Record> {
    let mut out = Vec::new();
    log.scan(0, &mut |r| {
        out.push(r.to_owned());
        true
    })
    .expect("scan");
    out
}

/// Records appended come back from `scan` and `read` identical, correlation ids included.
pub fn append_scan_round_trip<H: Harness>(h: &mut H) {
    let log = h.open();
    assert_eq!(log.last_lsn(), 0);
    assert_eq!(log.durable_lsn(), 0);
    assert!(read_all(&*log).is_empty());
    let big = vec![0xabu8; 100_000];
    let corr_max = "c".repeat(CORRELATION_ID_MAX_BYTES);
    let batch = [
        Append {
            partition: 7,
            expected_seq: 1,
            timestamp_ms: 1_700_000_000_000,
            correlation_id: Some("req-1"),
            payload: b"hello",
        },
        Append {
            partition: 7,
            expected_seq: 2,
            timestamp_ms: -42,
            correlation_id: None,
            payload: b"",
        },
        Append {
            partition: u64::MAX,
            expected_seq: 1,
            timestamp_ms: i64::MIN,
            correlation_id: Some("ñandú-✓"),
            payload: &big,
        },
        Append {
            partition: 0,
            expected_seq: 1,
            timestamp_ms: i64::MAX,
            correlation_id: Some(&corr_max),
            payload: b"x",
        },
    ];
    let lsn = log.append(&batch).expect("append");
    assert_eq!(lsn, 4);
    log.flush(lsn).expect("flush");
    let all = read_all(&*log);
    assert_eq!(all.len(), batch.len());
    for (i, (got, want)) in all.iter().zip(&batch).enumerate() {
        assert_eq!(got.lsn, i as u64 + 1);
        assert_eq!(got.partition, want.partition);
        assert_eq!(got.seq, want.expected_seq);
        assert_eq!(got.timestamp_ms, want.timestamp_ms);
        assert_eq!(got.correlation_id.as_deref(), want.correlation_id);
        assert_eq!(got.payload, want.payload);
    }
    assert_eq!(log.read(0, 100).expect("read"), all);
    assert_eq!(log.read(2, 1).expect("read"), all[2..3].to_vec());
    assert!(log.read(4, 10).expect("read").is_empty());
    // An empty correlation id is no correlation id.
    let lsn = log
        .append(&[Append {
            partition: 9,
            expected_seq: 1,
            timestamp_ms: 0,
            correlation_id: Some(""),
            payload: b"e",
        }])
        .expect("append");
    log.flush(lsn).expect("flush");
    assert_eq!(log.read(4, 1).expect("read")[0].correlation_id, None);
}

/// LSNs start at 1 and are contiguous across batches; append returns the batch's last LSN.
pub fn lsn_contiguity<H: Harness>(h: &mut H) {
    let log = h.open();
    let mut expected_last = 0;
    for (i, n) in [1usize, 5, 3, 100, 1].into_iter().enumerate() {
        let lsn = append_simple(&*log, i as u64 % 2, n);
        expected_last += n as u64;
        assert_eq!(lsn, expected_last);
        assert_eq!(log.last_lsn(), expected_last);
    }
    let all = read_all(&*log);
    assert_eq!(all.len() as u64, expected_last);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.lsn, i as u64 + 1);
    }
}

/// Each partition numbers its records 1, 2, 3… independently, also when interleaved in a batch.
pub fn per_partition_seqs<H: Harness>(h: &mut H) {
    let log = h.open();
    assert_eq!(log.next_seq(1), 1);
    let batch = [
        Append {
            partition: 1,
            expected_seq: 1,
            timestamp_ms: 0,
            correlation_id: None,
            payload: b"a",
        },
        Append {
            partition: 2,
            expected_seq: 1,
            timestamp_ms: 0,
            correlation_id: None,
            payload: b"b",
        },
        Append {
            partition: 1,
            expected_seq: 2,
            timestamp_ms: 0,
            correlation_id: None,
            payload: b"c",
        },
        Append {
            partition: 2,
            expected_seq: 2,
            timestamp_ms: 0,
            correlation_id: None,
            payload: b"d",
        },
        Append {
            partition: 1,
            expected_seq: 3,
            timestamp_ms: 0,
            correlation_id: None,
            payload: b"e",
        },
    ];
    let lsn = log.append(&batch).expect("append");
    log.flush(lsn).expect("flush");
    assert_eq!(log.next_seq(1), 4);
    assert_eq!(log.next_seq(2), 3);
    assert_eq!(log.next_seq(3), 1);
    append_simple(&*log, 2, 2);
    assert_eq!(log.next_seq(2), 5);
    let seqs: Vec<(u64, u64)> = read_all(&*log).iter().map(|r| (r.partition, r.seq)).collect();
    assert_eq!(seqs, vec![(1, 1), (2, 1), (1, 2), (2, 2), (1, 3), (2, 3), (2, 4)]);
}

/// A wrong expected seq anywhere in a batch fails the whole batch; nothing of it is written.
pub fn conditional_append_conflict_is_all_or_nothing<H: Harness>(h: &mut H) {
    let log = h.open();
    append_simple(&*log, 1, 3);
    let before = read_all(&*log);
    let rec = |partition, expected_seq| Append {
        partition,
        expected_seq,
        timestamp_ms: 0,
        correlation_id: None,
        payload: b"z",
    };
    let bad_batches: [&[Append<'_>]; 5] = [
        &[rec(1, 3)],                       // stale writer
        &[rec(1, 5)],                       // gap
        &[rec(2, 1), rec(1, 4), rec(1, 4)], // duplicate inside the batch, after valid records
        &[rec(2, 2)],                       // new partition must start at 1
        &[rec(1, 4), rec(2, 1), rec(2, 1)], // last record conflicts
    ];
    for batch in bad_batches {
        match log.append(batch) {
            Err(LogError::SeqConflict { .. }) => {}
            other => panic!("expected SeqConflict, got {other:?}"),
        }
        assert_eq!(log.last_lsn(), 3);
        assert_eq!(log.next_seq(1), 4);
        assert_eq!(log.next_seq(2), 1);
    }
    match log.append(&[rec(1, 4), rec(1, 9)]) {
        Err(LogError::SeqConflict {
            partition,
            expected,
            actual,
        }) => {
            assert_eq!((partition, expected, actual), (1, 9, 5));
        }
        other => panic!("expected SeqConflict, got {other:?}"),
    }
    // The log is still fine and the next valid append takes the next LSN.
    let lsn = log.append(&[rec(1, 4), rec(2, 1)]).expect("append");
    assert_eq!(lsn, 5);
    log.flush(lsn).expect("flush");
    let after = read_all(&*log);
    assert_eq!(&after[..3], &before[..]);
    assert_eq!(after.len(), 5);
}

/// An empty batch writes nothing and returns the current last LSN.
pub fn empty_batch<H: Harness>(h: &mut H) {
    let log = h.open();
    assert_eq!(log.append(&[]).expect("append"), 0);
    append_simple(&*log, 1, 2);
    assert_eq!(log.append(&[]).expect("append"), 2);
    assert_eq!(log.last_lsn(), 2);
    assert_eq!(read_all(&*log).len(), 2);
}

/// Oversized payloads and correlation ids are rejected before anything is written.
pub fn limits_rejected_without_writing<H: Harness>(h: &mut H) {
    let log = h.open();
    append_simple(&*log, 1, 1);
    let too_big = vec![0u8; RECORD_PAYLOAD_MAX_BYTES + 1];
    let too_long = "x".repeat(CORRELATION_ID_MAX_BYTES + 1);
    let ok = Append {
        partition: 1,
        expected_seq: 2,
        timestamp_ms: 0,
        correlation_id: None,
        payload: b"ok",
    };
    let big = Append {
        partition: 1,
        expected_seq: 3,
        timestamp_ms: 0,
        correlation_id: None,
        payload: &too_big,
    };
    let long = Append {
        partition: 1,
        expected_seq: 3,
        timestamp_ms: 0,
        correlation_id: Some(&too_long),
        payload: b"",
    };
    for batch in [[ok, big], [ok, long]] {
        match log.append(&batch) {
            Err(LogError::InvalidRecord(_)) => {}
            other => panic!("expected InvalidRecord, got {other:?}"),
        }
        assert_eq!(log.last_lsn(), 1);
        assert_eq!(log.next_seq(1), 2);
    }
    // Exactly at the limits is fine.
    let max_payload = vec![1u8; RECORD_PAYLOAD_MAX_BYTES];
    let max_corr = "y".repeat(CORRELATION_ID_MAX_BYTES);
    let lsn = log
        .append(&[
            ok,
            Append {
                partition: 1,
                expected_seq: 3,
                timestamp_ms: 0,
                correlation_id: Some(&max_corr),
                payload: &max_payload,
            },
        ])
        .expect("append at the limits");
    log.flush(lsn).expect("flush");
    let all = read_all(&*log);
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].payload.len(), RECORD_PAYLOAD_MAX_BYTES);
    assert_eq!(all[2].correlation_id.as_deref(), Some(max_corr.as_str()));
}

/// `flush` makes records durable; `scan`/`read` never return records past `durable_lsn`.
pub fn flush_makes_durable_and_readers_see_only_durable<H: Harness>(h: &mut H) {
    let log = h.open();
    log.flush(0).expect("flush of nothing");
    log.flush(10).expect("flush past the end of an empty log");
    assert_eq!(log.durable_lsn(), 0);
    let rec = |seq| Append {
        partition: 1,
        expected_seq: seq,
        timestamp_ms: 0,
        correlation_id: None,
        payload: b"d",
    };
    assert_eq!(log.append(&[rec(1), rec(2)]).expect("append"), 2);
    assert_eq!(log.last_lsn(), 2);
    assert!(log.durable_lsn() <= 2);
    // Whatever is durable is visible; nothing past it.
    let visible = read_all(&*log);
    assert_eq!(visible.len() as u64, log.durable_lsn().min(visible.len() as u64));
    assert!(visible.iter().all(|r| r.lsn <= log.durable_lsn()));
    log.flush(2).expect("flush");
    assert!(log.durable_lsn() >= 2);
    assert_eq!(read_all(&*log).len(), 2);
    assert_eq!(log.append(&[rec(3)]).expect("append"), 3);
    let durable = log.durable_lsn();
    assert!(log.read(0, 100).expect("read").iter().all(|r| r.lsn <= durable));
    // Flushing beyond the last LSN makes everything appended durable.
    log.flush(u64::MAX).expect("flush");
    assert_eq!(log.durable_lsn(), 3);
    assert_eq!(read_all(&*log).len(), 3);
    // Flushing again is a no-op.
    log.flush(3).expect("flush");
    assert_eq!(log.durable_lsn(), 3);
}

/// `read` returns at most `max` records, in order, after the given LSN.
pub fn read_respects_max<H: Harness>(h: &mut H) {
    let log = h.open();
    append_simple(&*log, 1, 50);
    assert!(log.read(0, 0).expect("read").is_empty());
    let mut after = 0;
    let mut seen = 0;
    loop {
        let page = log.read(after, 7).expect("read");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        for r in &page {
            assert_eq!(r.lsn, after + 1);
            after = r.lsn;
            seen += 1;
        }
    }
    assert_eq!(seen, 50);
}

/// Flushed records survive a reopen, next seqs are recovered and LSNs continue.
pub fn durability_across_reopen<H: Harness>(h: &mut H) {
    let log = h.open();
    append_simple(&*log, 1, 10);
    let flushed = append_simple(&*log, 2, 5);
    let before = read_all(&*log);
    drop(log);
    let log = h.reopen();
    assert!(log.last_lsn() >= flushed);
    assert_eq!(
        log.durable_lsn(),
        log.last_lsn(),
        "after recovery everything present is durable"
    );
    assert_eq!(&read_all(&*log)[..before.len()], &before[..]);
    assert_eq!(log.next_seq(1), 11);
    assert_eq!(log.next_seq(2), 6);
    let lsn = append_simple(&*log, 1, 1);
    assert_eq!(lsn, flushed + 1);
    drop(log);
    // Twice in a row, with nothing in between, too.
    let log = h.reopen();
    drop(log);
    let log = h.reopen();
    assert_eq!(log.last_lsn(), flushed + 1);
    assert_eq!(log.next_seq(1), 12);
    assert_eq!(read_all(&*log).len() as u64, flushed + 1);
}

/// Several threads append and flush at once (group commit); each sees its own records durable
/// after its flush, and the log ends up with unique, contiguous LSNs and per-partition seqs.
pub fn concurrent_appenders_and_flushers<H: Harness>(h: &mut H) {
    const THREADS: u64 = 4;
    const BATCHES: u64 = 50;
    const BATCH_RECORDS: u64 = 20;
    let log = h.open();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let partition = 100 + t;
                for b in 0..BATCHES {
                    let first = b * BATCH_RECORDS + 1;
                    let payloads: Vec<Vec<u8>> =
                        (0..BATCH_RECORDS).map(|i| payload_for(partition, first + i)).collect();
                    let batch: Vec<Append<'_>> = payloads
                        .iter()
                        .enumerate()
                        .map(|(i, p)| Append {
                            partition,
                            expected_seq: first + i as u64,
                            timestamp_ms: 0,
                            correlation_id: Some("writer"),
                            payload: p,
                        })
                        .collect();
                    let lsn = log.append(&batch).expect("append");
                    log.flush(lsn).expect("flush");
                    assert!(log.durable_lsn() >= lsn);
                    let mine = log.read(lsn - BATCH_RECORDS, BATCH_RECORDS as usize).expect("read");
                    assert_eq!(mine.len() as u64, BATCH_RECORDS);
                    for (r, p) in mine.iter().zip(&payloads) {
                        assert_eq!(r.partition, partition);
                        assert_eq!(&r.payload, p);
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("writer thread");
    }
    let total = THREADS * BATCHES * BATCH_RECORDS;
    assert_eq!(log.last_lsn(), total);
    assert_eq!(log.durable_lsn(), total);
    let all = read_all(&*log);
    assert_eq!(all.len() as u64, total);
    let mut next: std::collections::HashMap<PartitionId, u64> = Default::default();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.lsn, i as u64 + 1);
        let n = next.entry(r.partition).or_insert(1);
        assert_eq!(r.seq, *n);
        assert_eq!(r.payload, payload_for(r.partition, r.seq));
        *n += 1;
    }
    for t in 0..THREADS {
        assert_eq!(log.next_seq(100 + t), BATCHES * BATCH_RECORDS + 1);
    }
}

/// Writers racing on one partition are fenced by the expected seq: every record is written
/// exactly once and the partition's seqs stay contiguous.
pub fn concurrent_appenders_same_partition_are_fenced<H: Harness>(h: &mut H) {
    const THREADS: u64 = 3;
    const RECORDS_PER_THREAD: u64 = 100;
    let log = h.open();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut conflicts = 0u64;
                for i in 0..RECORDS_PER_THREAD {
                    let payload = format!("t{t}-{i}").into_bytes();
                    loop {
                        let seq = log.next_seq(5);
                        let rec = Append {
                            partition: 5,
                            expected_seq: seq,
                            timestamp_ms: 0,
                            correlation_id: None,
                            payload: &payload,
                        };
                        match log.append(&[rec]) {
                            Ok(lsn) => {
                                log.flush(lsn).expect("flush");
                                break;
                            }
                            Err(LogError::SeqConflict { .. }) => conflicts += 1,
                            Err(e) => panic!("append: {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("writer thread");
    }
    let all = read_all(&*log);
    assert_eq!(all.len() as u64, THREADS * RECORDS_PER_THREAD);
    let mut payloads = HashSet::new();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert!(payloads.insert(r.payload.clone()), "record written twice");
    }
}

/// Readers (`scan` followers and cursor readers) following the log while writes continue each
/// see every record exactly once, in order.
pub fn concurrent_readers_follow_writes<H: Harness>(h: &mut H) {
    const SCAN_READERS: usize = 3;
    const CURSOR_READERS: usize = 2;
    const BATCHES: u64 = 100;
    const BATCH_RECORDS: u64 = 30;
    const TOTAL: u64 = BATCHES * BATCH_RECORDS;
    let log = h.open();
    let checkpoints = tempfile::tempdir().expect("tempdir");

    let check = |r: &Record, expected_lsn: u64| {
        assert_eq!(r.lsn, expected_lsn, "records out of order or missing");
        assert_eq!(r.seq, r.lsn, "single partition: seq equals lsn");
        assert_eq!(r.payload, payload_for(1, r.seq));
    };

    thread::scope(|s| {
        for _ in 0..SCAN_READERS {
            let log = Arc::clone(&log);
            s.spawn(move || {
                let mut last = 0;
                while last < TOTAL {
                    let durable = log.wait_durable(last, HANG_GUARD);
                    assert!(durable > last, "reader starved: the log stopped advancing at {last}");
                    log.scan(last, &mut |r| {
                        check(&r.to_owned(), last + 1);
                        assert!(r.lsn <= log.durable_lsn());
                        last = r.lsn;
                        true
                    })
                    .expect("scan");
                }
                assert_eq!(last, TOTAL);
            });
        }
        for c in 0..CURSOR_READERS {
            let log = Arc::clone(&log);
            let dir = checkpoints.path().to_path_buf();
            s.spawn(move || {
                let mut cursor = CursorReader::open(log, &dir, &format!("follower-{c}")).expect("cursor");
                let mut last = 0;
                while last < TOTAL {
                    let records = cursor.poll(97, HANG_GUARD).expect("poll");
                    assert!(!records.is_empty(), "cursor starved at {last}");
                    for r in &records {
                        check(r, last + 1);
                        last = r.lsn;
                    }
                    cursor.commit().expect("commit");
                }
                assert_eq!(cursor.position(), TOTAL);
            });
        }
        let log = Arc::clone(&log);
        s.spawn(move || {
            for _ in 0..BATCHES {
                append_simple(&*log, 1, BATCH_RECORDS as usize);
            }
        });
    });
    assert_eq!(log.durable_lsn(), TOTAL);
}

/// `wait_durable` returns as soon as a flush moves `durable_lsn` past its argument, and returns
/// the current durable LSN when it times out.
pub fn wait_durable_wakes_on_flush<H: Harness>(h: &mut H) {
    let log = h.open();
    assert_eq!(log.wait_durable(0, Duration::from_millis(1)), 0);
    let waiter = {
        let log = Arc::clone(&log);
        thread::spawn(move || log.wait_durable(0, HANG_GUARD))
    };
    let lsn = log
        .append(&[Append {
            partition: 1,
            expected_seq: 1,
            timestamp_ms: 0,
            correlation_id: None,
            payload: b"w",
        }])
        .expect("append");
    log.flush(lsn).expect("flush");
    assert_eq!(waiter.join().expect("waiter"), 1);
    // Already past: returns at once.
    assert_eq!(log.wait_durable(0, HANG_GUARD), 1);
    assert_eq!(log.wait_durable(1, Duration::from_millis(1)), 1);
}

/// A cursor resumes after its last commit when reopened: records polled but not committed are
/// delivered again (at-least-once), committed ones are not.
pub fn cursor_reader_resumes_at_least_once<H: Harness>(h: &mut H) {
    let log = h.open();
    let dir: PathBuf = tempfile::tempdir().expect("tempdir").keep();
    assert!(matches!(
        CursorReader::open(Arc::clone(&log), &dir, "bad/name"),
        Err(crate::cursor::CursorError::InvalidName(_))
    ));
    assert!(CursorReader::open(Arc::clone(&log), &dir, "").is_err());
    assert!(CursorReader::open(Arc::clone(&log), &dir, &"a".repeat(65)).is_err());

    let mut cursor = CursorReader::open(Arc::clone(&log), &dir, "billing_v-1").expect("cursor");
    assert!(cursor.poll(10, Duration::from_millis(1)).expect("poll").is_empty());
    append_simple(&*log, 1, 25);
    let first = cursor.poll(10, HANG_GUARD).expect("poll");
    assert_eq!(
        first.iter().map(|r| r.lsn).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    cursor.commit().expect("commit");
    let second = cursor.poll(10, HANG_GUARD).expect("poll");
    assert_eq!(second[0].lsn, 11);
    assert_eq!(cursor.position(), 20);
    assert_eq!(cursor.committed(), 10);
    drop(cursor);
    drop(log);

    let log = h.reopen();
    let mut cursor = CursorReader::open(Arc::clone(&log), &dir, "billing_v-1").expect("cursor");
    assert_eq!(cursor.position(), 10);
    let again = cursor.poll(100, HANG_GUARD).expect("poll");
    assert_eq!(
        again.iter().map(|r| r.lsn).collect::<Vec<_>>(),
        (11..=25).collect::<Vec<_>>()
    );
    assert_eq!(again[..10], second[..]);
    cursor.commit().expect("commit");
    // Another name is independent.
    let mut other = CursorReader::open(Arc::clone(&log), &dir, "other").expect("cursor");
    assert_eq!(other.poll(1, HANG_GUARD).expect("poll")[0].lsn, 1);
    drop((cursor, other, log));
    let log = h.reopen();
    let cursor = CursorReader::open(log, &dir, "billing_v-1").expect("cursor");
    assert_eq!(cursor.position(), 25);
    drop(cursor);
    let _ = std::fs::remove_dir_all(&dir);
}

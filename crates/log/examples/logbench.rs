//! Quick throughput check of the file log: append + group commit of large batches, then a
//! full replay scan and a cursor-style scan from the middle. Not a test; prints figures.
//!
//! `cargo run --release -p taquilla-log --example logbench -- [records] [dir]`

use std::time::Instant;

use taquilla_log::file::{FileLog, FileLogOptions};
use taquilla_log::{Append, EventLog};

const BATCH_RECORDS: usize = 4096;
const PAYLOAD_BYTES: usize = 40;
const PARTITIONS: u64 = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2_000_000);
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());

    let (log, _) = FileLog::open(&dir, FileLogOptions::default())?;
    let payload = [0x5au8; PAYLOAD_BYTES];
    let mut next_seq = vec![1u64; PARTITIONS as usize];
    let mut batch: Vec<Append<'_>> = Vec::with_capacity(BATCH_RECORDS);

    let mut append_secs = 0.0;
    let start = Instant::now();
    let mut written = 0;
    while written < total {
        batch.clear();
        let n = BATCH_RECORDS.min(total - written);
        for i in 0..n {
            let p = ((written + i) as u64 / 64) % PARTITIONS;
            let seq = &mut next_seq[p as usize];
            batch.push(Append {
                partition: p,
                expected_seq: *seq,
                timestamp_ms: 1_700_000_000_000,
                correlation_id: Some("req-0123456789"),
                payload: &payload,
            });
            *seq += 1;
        }
        let t = Instant::now();
        let lsn = log.append(&batch)?;
        append_secs += t.elapsed().as_secs_f64();
        log.flush(lsn)?;
        written += n;
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes: u64 = log
        .segment_paths()
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "append+flush: {total} records in {secs:.3}s = {:.0} records/s ({:.1} MB/s, {} fsyncs); append alone {:.1} ns/record",
        total as f64 / secs,
        bytes as f64 / secs / 1e6,
        total.div_ceil(BATCH_RECORDS),
        append_secs * 1e9 / total as f64
    );

    for round in 0..2 {
        let t = Instant::now();
        let mut count = 0u64;
        let mut sum = 0u64;
        log.scan(0, &mut |r| {
            count += 1;
            sum += r.payload.len() as u64;
            true
        })?;
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(count as usize, total);
        println!(
            "scan (round {round}, page cache warm): {count} records in {secs:.3}s = {:.0} records/s ({sum} payload bytes)",
            count as f64 / secs
        );
    }

    drop(log);
    let t = Instant::now();
    let (log, report) = FileLog::open(&dir, FileLogOptions::default())?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "recovery (open): {} records, {} segments in {secs:.3}s = {:.0} records/s",
        report.records,
        report.segments,
        report.records as f64 / secs
    );

    // Cursor-style: many small reads from the middle (sparse index).
    let t = Instant::now();
    let reads = 10_000u64;
    let mut got = 0;
    for i in 0..reads {
        let after = (i * 7919) % (total as u64);
        got += log.read(after, 10)?.len();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "random reads of 10 records: {:.1} µs each ({got} records)",
        secs * 1e6 / reads as f64
    );

    // Follower-style: consecutive small reads (what a cursor does).
    let t = Instant::now();
    let mut after = total as u64 / 2 + 17;
    for _ in 0..reads {
        let page = log.read(after, 10)?;
        after = page.last().map_or(after, |r| r.lsn);
    }
    let secs = t.elapsed().as_secs_f64();
    println!("follower reads of 10 records: {:.1} µs each", secs * 1e6 / reads as f64);

    // Encoding alone, into a reused buffer.
    let mut buf = Vec::with_capacity(1 << 20);
    let t = Instant::now();
    let rounds = 200;
    for r in 0..rounds {
        buf.clear();
        for (i, rec) in batch.iter().enumerate() {
            taquilla_log::file::frame::encode(&mut buf, (r * BATCH_RECORDS + i + 1) as u64, rec);
        }
        std::hint::black_box(&buf);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "frame encoding alone: {:.1} ns/record",
        secs * 1e9 / (rounds * batch.len()) as f64
    );
    Ok(())
}

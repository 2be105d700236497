//! Snapshots off the shard thread: a failing snapshot backs off on the engine's clock, gives
//! up after a bounded number of retries, and never holds up a command; the thread runs at
//! background priority and writes in parts.

use std::sync::atomic::Ordering;

use taquilla_engine::{Engine, EngineConfig, limits};

use crate::support::*;

fn attempts(engine: &Engine) -> (u64, u64) {
    let s = engine.stats();
    (
        s.snapshots.load(Ordering::Relaxed),
        s.snapshot_failures.load(Ordering::Relaxed),
    )
}

/// Places a hold and waits until the shard has asked for whatever snapshot it made due and
/// the snapshot thread has run what is due by the clock.
async fn hold_and_settle(engine: &Engine, buyer: &str) {
    let sale = taquilla_domain::SaleId(1);
    engine.submit(env(sale, hold_cmd(buyer, 1))).unwrap().await.unwrap();
    settle(engine).await;
}

async fn settle(engine: &Engine) {
    // A tick passes through the shard's loop after the batch before it, so the requests that
    // batch made due were sent; a second one lets the shard read outcomes sent meanwhile.
    engine.tick().await.unwrap();
    engine.sync_snapshots().await.unwrap();
    engine.tick().await.unwrap();
}

#[tokio::test]
async fn a_failing_snapshot_backs_off_gives_up_and_resumes_at_the_next_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        snapshot_every_records: 5,
        snapshot_on_shutdown: false,
        ..config()
    };
    let clock = clock();
    let engine = Engine::open(dir.path(), cfg.clone(), clock.clone()).unwrap();
    // The fault: the snapshot directory is gone, so every save fails (as on a full disk).
    let snapshots = dir.path().join("snapshots");
    std::fs::remove_dir_all(&snapshots).unwrap();
    let sale = open_sale(&engine, 100).await; // 4 records
    assert_eq!(sale.0, 1);
    hold_and_settle(&engine, "b0").await; // the 5th record: a snapshot is due
    assert_eq!(attempts(&engine), (0, 1), "asked once, failed once");

    let mut delay_ms = limits::SNAPSHOT_RETRY_FIRST_MS as i64;
    for retry in 1..=limits::SNAPSHOT_RETRIES_MAX {
        clock.advance_ms(delay_ms - 1);
        settle(&engine).await;
        assert_eq!(attempts(&engine), (0, u64::from(retry)), "no retry before its delay");
        clock.advance_ms(1);
        settle(&engine).await;
        assert_eq!(
            attempts(&engine),
            (0, u64::from(retry) + 1),
            "retry {retry} after {delay_ms} ms"
        );
        if retry == 1 {
            // The writer does not wait for any of it.
            hold_and_settle(&engine, "b1").await; // record 6
        }
        delay_ms *= 2;
    }
    let failures = 1 + u64::from(limits::SNAPSHOT_RETRIES_MAX);
    clock.advance_ms(3_600_000);
    settle(&engine).await;
    assert_eq!(attempts(&engine), (0, failures), "given up: no more attempts");

    // Space is back. The next snapshot is due one interval after giving up (6 + 5 records).
    std::fs::create_dir(&snapshots).unwrap();
    for i in 2..6 {
        hold_and_settle(&engine, &format!("b{i}")).await; // records 7..=10
    }
    assert_eq!(attempts(&engine), (0, failures), "not due before the next trigger");
    hold_and_settle(&engine, "b6").await; // record 11
    assert_eq!(attempts(&engine), (1, failures));
    engine.shutdown();
    let engine = Engine::open(dir.path(), cfg, clock).unwrap();
    assert_eq!(engine.recovery().snapshots_loaded, 1);
    assert_eq!(
        engine.recovery().records_replayed,
        0,
        "the snapshot covers all 11 records"
    );
}

/// The nice value of this process's thread named `name` (as `/proc` shows it: 15 bytes).
fn nice_of_thread(name: &str) -> Option<i32> {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(task.join("comm")) else {
            continue;
        };
        if comm.trim_end() == name {
            let stat = std::fs::read_to_string(task.join("stat")).unwrap();
            // After the name: state (3), ..., priority (18), nice (19).
            let nice = stat.rsplit_once(')').unwrap().1.split_whitespace().nth(16).unwrap();
            return Some(nice.parse().unwrap());
        }
    }
    None
}

#[tokio::test]
async fn the_snapshot_thread_runs_at_background_priority_and_writes_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        snapshot_every_records: 20,
        snapshot_on_shutdown: false,
        // Parts far smaller than the snapshot: it is written in many.
        snapshot_write_chunk_bytes: 16,
        ..config()
    };
    let engine = Engine::open(dir.path(), cfg.clone(), clock()).unwrap();
    // The thread names and lowers itself when it starts: it has once it answers.
    engine.sync_snapshots().await.unwrap();
    assert_eq!(
        nice_of_thread("taquilla-snapsh"),
        Some(taquilla_os::process::BACKGROUND_NICE),
        "the snapshot thread yields its core to the writers"
    );
    let sale = open_sale(&engine, 100).await;
    // "taquilla-shard-0", cut to 15 bytes.
    assert_eq!(
        nice_of_thread("taquilla-shard-"),
        Some(0),
        "the writer keeps its priority"
    );
    for i in 0..16 {
        hold_and_settle(&engine, &format!("b{i}")).await; // records 5..=20
    }
    assert_eq!(attempts(&engine), (1, 0));
    let path = dir.path().join("snapshots").join(format!("p-{}.snap", sale.0));
    assert!(
        std::fs::metadata(&path).unwrap().len() > 16 * 16,
        "the snapshot spans many parts"
    );
    let live = engine.read(sale, |s| s.clone()).unwrap();
    engine.shutdown();
    let engine = Engine::open(dir.path(), cfg, clock()).unwrap();
    assert_eq!(engine.recovery().snapshots_loaded, 1);
    assert_eq!(
        engine.recovery().records_replayed,
        0,
        "the snapshot covers all 20 records"
    );
    assert_eq!(engine.read(sale, |s| s.clone()).unwrap(), live, "read back whole");
}

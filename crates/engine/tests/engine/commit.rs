//! Group commit, acknowledgement only after durability, backpressure, reads during writes.

use std::sync::Arc;

use futures_util::FutureExt;
use taquilla_domain::{Outcome, TicketTypeId};
use taquilla_engine::{Engine, EngineError};
use taquilla_log::mem::MemLog;
use taquilla_log::snapshot::SnapshotStore;

use crate::support::*;

fn gated_engine() -> (Engine, Arc<GatedLog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = GatedLog::new(Arc::new(MemLog::new()));
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    let engine = Engine::start(log.clone(), snaps, config(), clock()).unwrap();
    (engine, log, dir)
}

#[tokio::test]
async fn a_reply_waits_for_the_flush_and_reads_do_not() {
    let (engine, log, _dir) = gated_engine();
    let sale = open_sale(&engine, 10).await;
    let gate = log.close_guarded();
    let mut reply = Box::pin(engine.submit(env(sale, hold_cmd("ana", 2))).unwrap());
    log.wait_in_flush();
    // The shard has applied the hold and is inside flush: no reply may exist yet.
    assert!(reply.as_mut().now_or_never().is_none(), "acknowledged before durable");
    // Reads are served from memory while the writer waits on the disk.
    let available = engine.read(sale, |s| s.available(TicketTypeId(0))).unwrap();
    assert_eq!(available, 8);
    drop(gate);
    assert!(matches!(reply.await, Ok(Outcome::Hold(_))));
}

#[tokio::test]
async fn a_full_queue_answers_overloaded_at_once_and_recovers() {
    let (engine, log, _dir) = gated_engine();
    let sale = open_sale(&engine, 1_000).await;
    // Gate the append, which the shard makes itself: the shard is then stuck with the first
    // command and its queue is all that is left.
    log.gate_appends.store(true, std::sync::atomic::Ordering::SeqCst);
    let gate = log.close_guarded();
    let first = engine.submit(env(sale, hold_cmd("b0", 1))).unwrap();
    log.wait_in_flush();
    let mut queued = Vec::new();
    for i in 0..engine.queue_capacity() {
        queued.push(
            engine
                .submit(env(sale, hold_cmd(&format!("q{i}"), 1)))
                .expect("room in the queue"),
        );
    }
    assert_eq!(engine.queue_depths(), vec![engine.queue_capacity()]);
    for _ in 0..3 {
        // Refused at once, and again: a state, not a wait.
        assert!(matches!(
            engine.submit(env(sale, hold_cmd("late", 1))),
            Err(EngineError::Overloaded)
        ));
    }
    drop(gate);
    assert!(first.await.is_ok());
    for q in queued {
        assert!(q.await.is_ok());
    }
    // Room again, and exactly the accepted commands took tickets.
    assert!(engine.submit(env(sale, hold_cmd("after", 1))).unwrap().await.is_ok());
    assert_eq!(
        engine.read(sale, |s| s.available(TicketTypeId(0))).unwrap(),
        1_000 - 2 - engine.queue_capacity() as u32
    );
}

#[tokio::test]
async fn a_slow_disk_backs_up_into_overloaded_too() {
    let (engine, log, _dir) = gated_engine();
    let sale = open_sale(&engine, 100_000).await;
    let gate = log.close_guarded();
    let first = engine.submit(env(sale, hold_cmd("b0", 1))).unwrap();
    log.wait_in_flush();
    // The fsync is stuck; the shard goes on deciding until the flusher's queue is full, then
    // waits, and its own queue fills. This many submissions must meet the bound: batches
    // queued for the flusher, one being flushed, one blocked handing over, the queue.
    let bound = (taquilla_engine::FLUSH_QUEUE_BATCHES + 2) * config().batch_max + engine.queue_capacity() + 1;
    let mut accepted = Vec::new();
    let mut overloaded = 0;
    for i in 0..bound {
        match engine.submit(env(sale, hold_cmd(&format!("q{i}"), 1))) {
            Ok(f) => accepted.push(f),
            Err(EngineError::Overloaded) => overloaded += 1,
            Err(e) => panic!("expected Overloaded, got {e:?}"),
        }
    }
    assert!(
        overloaded > 0,
        "{bound} submissions against a stuck disk never met the queue bound"
    );
    drop(gate);
    assert!(first.await.is_ok());
    let n = accepted.len() as u32;
    for f in accepted {
        assert!(f.await.is_ok());
    }
    assert_eq!(
        engine.read(sale, |s| s.available(TicketTypeId(0))).unwrap(),
        100_000 - 1 - n
    );
}

#[tokio::test]
async fn many_concurrent_commands_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), taquilla_engine::EngineConfig::default(), clock()).unwrap();
    let sale = open_sale(&engine, 100_000).await;
    let flushes_before = engine.stats().flushes.load(std::sync::atomic::Ordering::Relaxed);
    let futs: Vec<_> = (0..2_000)
        .map(|i| engine.submit(env(sale, hold_cmd(&format!("b{i}"), 1))).unwrap())
        .collect();
    for f in futs {
        assert!(matches!(f.await, Ok(Outcome::Hold(_))));
    }
    let flushes = engine.stats().flushes.load(std::sync::atomic::Ordering::Relaxed) - flushes_before;
    // All 2,000 were queued before the first could finish, so they share batches.
    assert!(
        flushes < 2_000 / 4,
        "{flushes} fsyncs for 2000 commands: no group commit"
    );
    assert_eq!(
        engine.read(sale, |s| s.available(TicketTypeId(0))).unwrap(),
        100_000 - 2_000
    );
}

#[tokio::test]
async fn a_failed_fsync_stops_the_engine_and_acknowledges_nothing() {
    let (engine, log, _dir) = gated_engine();
    let sale = open_sale(&engine, 10).await;
    log.fail_flush.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = engine.submit(env(sale, hold_cmd("ana", 1))).unwrap().await;
    assert!(matches!(r, Err(EngineError::Stopped)), "{r:?}");
    assert!(engine.has_failed());
    assert!(matches!(
        engine.submit(env(sale, hold_cmd("bob", 1))),
        Err(EngineError::Stopped)
    ));
}

#[tokio::test]
async fn a_panic_on_a_shard_stops_the_engine_and_every_waiter_hears_stopped() {
    let (engine, log, _dir) = gated_engine();
    let sale = open_sale(&engine, 10).await;
    log.panic_appends.store(true, std::sync::atomic::Ordering::SeqCst);
    // The first command's append panics on the shard thread; the others are in the same
    // batch or still queued. None of them is appended, so none may be acknowledged.
    let replies: Vec<_> = (0..3)
        .map(|i| engine.submit(env(sale, hold_cmd(&format!("b{i}"), 1))).unwrap())
        .collect();
    for reply in replies {
        let r = reply.await;
        assert!(matches!(r, Err(EngineError::Stopped)), "{r:?}");
        // Set before any waiter hears `Stopped`: the server, which polls it, exits.
        assert!(engine.has_failed());
    }
    assert!(matches!(
        engine.submit(env(sale, hold_cmd("late", 1))),
        Err(EngineError::Stopped)
    ));
    assert_eq!(
        log.inner.durable_lsn(),
        log.inner.last_lsn(),
        "nothing appended after the panic"
    );
}

#[test]
fn a_config_out_of_bounds_is_refused_with_the_bound_in_the_message() {
    use taquilla_engine::limits::{BATCH_COMMANDS_MAX, QUEUE_CAPACITY_MAX, SHARDS_MAX};
    use taquilla_engine::{ConfigError, EngineConfig};
    assert_eq!(EngineConfig::default().validate(), Ok(()));
    let bad = |c: EngineConfig| c.validate().unwrap_err();
    let shards = bad(EngineConfig {
        shards: SHARDS_MAX + 1,
        ..EngineConfig::default()
    });
    assert_eq!(shards, ConfigError::Shards(SHARDS_MAX + 1));
    assert_eq!(
        shards.to_string(),
        format!("shards must be between 1 and {SHARDS_MAX}, not {}", SHARDS_MAX + 1)
    );
    assert_eq!(
        bad(EngineConfig {
            shards: 0,
            ..EngineConfig::default()
        }),
        ConfigError::Shards(0)
    );
    assert_eq!(
        bad(EngineConfig {
            queue_capacity: QUEUE_CAPACITY_MAX + 1,
            ..EngineConfig::default()
        }),
        ConfigError::QueueCapacity(QUEUE_CAPACITY_MAX + 1)
    );
    let batch = bad(EngineConfig {
        batch_max: 0,
        ..EngineConfig::default()
    });
    assert_eq!(batch, ConfigError::BatchMax(0));
    assert!(batch.to_string().contains(&BATCH_COMMANDS_MAX.to_string()));
    assert_eq!(
        bad(EngineConfig {
            snapshot_write_chunk_bytes: 0,
            ..EngineConfig::default()
        }),
        ConfigError::SnapshotWriteChunk(0)
    );
    // The engine refuses to start on it.
    let dir = tempfile::tempdir().unwrap();
    let started = Engine::start(
        Arc::new(MemLog::new()),
        SnapshotStore::open(dir.path()).unwrap(),
        EngineConfig {
            batch_max: 0,
            ..config()
        },
        clock(),
    );
    assert!(matches!(started, Err(EngineError::Config(ConfigError::BatchMax(0)))));
}

#[tokio::test]
async fn unknown_sale_and_oversized_batch_are_refused() {
    let (engine, _log, _dir) = gated_engine();
    assert!(matches!(
        engine.submit(env(taquilla_domain::SaleId(999), hold_cmd("x", 1))),
        Err(EngineError::SaleNotFound)
    ));
    let sale = open_sale(&engine, 10).await;
    let too_many = (0..taquilla_engine::SUBMIT_BATCH_MAX + 1)
        .map(|_| env(sale, hold_cmd("x", 1)))
        .collect();
    assert!(matches!(engine.submit_batch(too_many), Err(EngineError::BatchTooLarge)));
    // A batch is decided in order: the 11th ticket is refused, the first ten are not.
    let batch = (0..11).map(|i| env(sale, hold_cmd(&format!("b{i}"), 1))).collect();
    let results = engine.submit_batch(batch).unwrap().await.unwrap();
    assert!(results[..10].iter().all(|r| r.is_ok()));
    assert!(matches!(&results[10], Err(EngineError::Rejected(r)) if r.code() == "sold_out"));
}

#[tokio::test]
async fn the_version_moves_with_every_applied_command_and_only_then() {
    let (engine, _log, _dir) = gated_engine();
    let sale = open_sale(&engine, 2).await;
    let v0 = engine.version(sale).expect("the sale exists");
    assert_eq!(engine.read_versioned(sale, |_| ()).map(|(v, _)| v), Some(v0));

    engine.submit(env(sale, hold_cmd("ana", 2))).unwrap().await.unwrap();
    let v1 = engine.version(sale).unwrap();
    assert!(v1 > v0, "an applied command moves the version: {v0} -> {v1}");
    let (v, available) = engine.read_versioned(sale, |s| s.available(TicketTypeId(0))).unwrap();
    assert_eq!(
        (v, available),
        (v1, 0),
        "the version names the state read under the same lock"
    );

    // A rejection changes nothing, so the version stays: a cached view is still right.
    let refused = engine.submit(env(sale, hold_cmd("bob", 1))).unwrap().await;
    assert!(refused.is_err(), "sold out: {refused:?}");
    assert_eq!(engine.version(sale), Some(v1));
    assert_eq!(engine.version(taquilla_domain::SaleId(9_999)), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_on_several_shards_never_pass_the_sales_limit() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = SnapshotStore::open(dir.path()).unwrap();
    let cfg = taquilla_engine::EngineConfig {
        shards: 4,
        sales_max: 5,
        ..config()
    };
    let engine = Arc::new(Engine::start(Arc::new(MemLog::new()), snaps, cfg, clock()).unwrap());
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.create_sale(sale_spec(), None).await })
        })
        .collect();
    let mut created = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok(_) => created += 1,
            Err(EngineError::TooManySales) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(created, 5, "exactly the limit is created");
    assert_eq!(engine.sales().len(), 5);
    assert!(matches!(
        engine.create_sale(sale_spec(), None).await,
        Err(EngineError::TooManySales)
    ));
}

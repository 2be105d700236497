//! Restart rebuilds exactly the same state, from the log alone and from snapshots + tail.

use std::error::Error as _;
use std::sync::Arc;

use taquilla_domain::{Command, CreateSale, Currency, Event, HoldId, Name, Outcome, SaleState, codec};
use taquilla_engine::{Engine, EngineConfig, EngineError, RecoveryError};
use taquilla_log::mem::MemLog;
use taquilla_log::snapshot::SnapshotStore;
use taquilla_log::{Append, EventLog};

use crate::support::*;

async fn workload(engine: &Engine) -> taquilla_domain::SaleId {
    let sale = open_sale(engine, 50).await;
    for i in 0..30 {
        let Outcome::Hold(h) = engine
            .submit(env(sale, hold_cmd(&format!("b{i}"), 1)))
            .unwrap()
            .await
            .unwrap()
        else {
            panic!()
        };
        if i % 3 == 0 {
            let buyer = taquilla_domain::BuyerId::parse(&format!("b{i}")).unwrap();
            engine
                .submit(env(
                    sale,
                    Command::Checkout {
                        buyer,
                        hold: h,
                        idempotency_key: None,
                    },
                ))
                .unwrap()
                .await
                .unwrap();
        }
    }
    sale
}

fn state(engine: &Engine, sale: taquilla_domain::SaleId) -> SaleState {
    engine.read(sale, |s| s.clone()).unwrap()
}

#[tokio::test]
async fn restart_without_snapshots_replays_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        snapshot_on_shutdown: false,
        snapshot_every_records: u64::MAX,
        ..config()
    };
    let engine = Engine::open(dir.path(), cfg.clone(), clock()).unwrap();
    let sale = workload(&engine).await;
    let before = state(&engine, sale);
    engine.shutdown();
    let engine = Engine::open(dir.path(), cfg, clock()).unwrap();
    assert_eq!(engine.recovery().snapshots_loaded, 0);
    assert!(engine.recovery().records_replayed > 30);
    assert_eq!(state(&engine, sale), before);
}

#[tokio::test]
async fn restart_from_snapshots_and_tail_gives_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        snapshot_every_records: 7,
        snapshot_on_shutdown: false,
        ..config()
    };
    let engine = Engine::open(dir.path(), cfg.clone(), clock()).unwrap();
    let sale = workload(&engine).await;
    let before = state(&engine, sale);
    let records = engine.stats().records.load(std::sync::atomic::Ordering::Relaxed);
    engine.shutdown();
    let engine = Engine::open(dir.path(), cfg.clone(), clock()).unwrap();
    assert_eq!(engine.recovery().snapshots_loaded, 1);
    // Snapshots are taken off the shard thread, one per sale at a time, so how far the last
    // one got depends on that thread's pace: recovery replays only what it does not cover.
    assert!(
        engine.recovery().records_replayed + 7 <= records,
        "replayed {} of {records} records",
        engine.recovery().records_replayed
    );
    assert_eq!(state(&engine, sale), before);
    // New work continues the sequence after a snapshot-based start.
    engine.submit(env(sale, hold_cmd("late", 1))).unwrap().await.unwrap();
    assert!(engine.read(sale, |s| s.holds.contains_key(&HoldId(31))).unwrap());
    let after = state(&engine, sale);
    engine.shutdown();
    let engine = Engine::open(dir.path(), cfg, clock()).unwrap();
    assert_eq!(state(&engine, sale), after);
}

#[tokio::test]
async fn a_corrupt_snapshot_is_ignored_and_the_log_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        snapshot_on_shutdown: true,
        ..config()
    };
    let engine = Engine::open(dir.path(), cfg.clone(), clock()).unwrap();
    let sale = workload(&engine).await;
    let before = state(&engine, sale);
    engine.shutdown();
    for e in std::fs::read_dir(dir.path().join("snapshots")).unwrap() {
        let path = e.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
    }
    let engine = Engine::open(dir.path(), cfg, clock()).unwrap();
    assert_eq!(engine.recovery().snapshots_loaded, 0);
    assert_eq!(engine.recovery().snapshots_ignored, 1);
    assert_eq!(state(&engine, sale), before);
}

#[tokio::test]
async fn a_second_engine_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _engine = Engine::open(dir.path(), config(), clock()).unwrap();
    assert!(Engine::open(dir.path(), config(), clock()).is_err());
}

/// A log holding sale 1's records, each the given events (or raw bytes), made durable.
fn log_of(records: &[Result<Vec<Event>, &[u8]>]) -> Arc<MemLog> {
    let log = Arc::new(MemLog::new());
    for (i, record) in records.iter().enumerate() {
        let mut payload = Vec::new();
        match record {
            Ok(events) => codec::encode_events(events, &mut payload),
            Err(bytes) => payload.extend_from_slice(bytes),
        }
        let lsn = log
            .append(&[Append {
                partition: 1,
                expected_seq: i as u64 + 1,
                timestamp_ms: 0,
                correlation_id: None,
                payload: &payload,
            }])
            .unwrap();
        log.flush(lsn).unwrap();
    }
    log
}

fn sale_created() -> Event {
    let c = CreateSale {
        name: Name::parse("crafted").unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        hold_ttl_ms: 60_000,
        max_tickets_per_buyer: None,
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    };
    Event::SaleCreated {
        name: c.name,
        currency: c.currency,
        hold_ttl_ms: c.hold_ttl_ms,
        max_tickets_per_buyer: c.max_tickets_per_buyer,
        opens_at: c.opens_at,
        closes_at: c.closes_at,
        offline_payment_ttl_ms: c.offline_payment_ttl_ms,
    }
}

fn start(log: Arc<MemLog>) -> Result<Engine, EngineError> {
    let dir = tempfile::tempdir().unwrap();
    Engine::start(log, SnapshotStore::open(dir.path()).unwrap(), config(), clock())
}

#[test]
fn an_impossible_event_in_the_log_fails_recovery_naming_the_record() {
    // The log contradicts its own history: it releases a hold that was never placed.
    let log = log_of(&[
        Ok(vec![sale_created()]),
        Ok(vec![Event::HoldReleased { hold: HoldId(7) }]),
    ]);
    let err = match start(log) {
        Err(EngineError::Recovery(e)) => e,
        other => panic!("expected a recovery error, got {:?}", other.map(|_| ())),
    };
    match &err {
        RecoveryError::ImpossibleEvent {
            sale,
            lsn,
            seq,
            message,
        } => {
            assert_eq!((*sale, *lsn, *seq), (1, 2, 2));
            assert!(message.contains("HoldReleased"), "{message}");
            assert!(message.contains("hold 7 does not exist"), "{message}");
        }
        other => panic!("expected ImpossibleEvent, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("sale 1") && text.contains("lsn 2"), "{text}");
}

#[test]
fn an_undecodable_record_fails_recovery_with_the_codec_error_as_source() {
    let log = log_of(&[Ok(vec![sale_created()]), Err(&[1, 99, 1, 0])]);
    let err = match start(log) {
        Err(EngineError::Recovery(e)) => e,
        other => panic!("expected a recovery error, got {:?}", other.map(|_| ())),
    };
    assert!(
        matches!(
            err,
            RecoveryError::Undecodable {
                sale: 1,
                lsn: 2,
                seq: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let source = err.source().expect("the codec error as source");
    assert!(source.to_string().contains("unknown event tag 99"), "{source}");
}

#[test]
fn a_clean_crafted_log_recovers() {
    // The same helpers with a consistent history: recovery succeeds, so the failures above
    // come from the records, not the setup.
    let engine = start(log_of(&[Ok(vec![sale_created()])])).unwrap();
    assert_eq!(engine.sales().len(), 1);
}

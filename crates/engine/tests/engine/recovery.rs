//! Restart rebuilds exactly the same state, from the log alone and from snapshots + tail.

use taquilla_domain::{Command, HoldId, Outcome, SaleState};
use taquilla_engine::{Engine, EngineConfig};

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
    engine.shutdown();
    let engine = Engine::open(dir.path(), cfg.clone(), clock()).unwrap();
    assert_eq!(engine.recovery().snapshots_loaded, 1);
    assert!(
        engine.recovery().records_replayed < 7,
        "replayed {}",
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

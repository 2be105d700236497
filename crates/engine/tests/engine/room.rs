//! The waiting room's tick, driven by the shard's timer on a manual clock, and a restart in
//! the middle of a queued sale.

use std::sync::Arc;

use taquilla_domain::room::{self, RoomConfig};
use taquilla_domain::{BuyerId, Command, RoomStanding, SaleId, Timestamp};
use taquilla_engine::Engine;

use crate::support::*;

fn room_config(admit_per_sec: u32) -> RoomConfig {
    RoomConfig {
        prequeue_opens_at: T0,
        opens_at: Timestamp(T0.0 + 10_000),
        admit_per_sec,
        session_ms: 120_000,
        queue_max: 1_000,
    }
}

fn buyer(i: usize) -> BuyerId {
    BuyerId::parse(&format!("buyer-{i}")).unwrap()
}

async fn join_all(engine: &Engine, sale: SaleId, n: usize) {
    for i in 0..n {
        let join = Command::JoinRoom { buyer: buyer(i) };
        engine.submit(env(sale, join)).unwrap().await.unwrap();
    }
}

fn standings(engine: &Engine, sale: SaleId, n: usize, now: Timestamp) -> Vec<RoomStanding> {
    engine
        .read(sale, |s| {
            (0..n)
                .map(|i| room::status(s, &buyer(i), now).unwrap().standing)
                .collect()
        })
        .unwrap()
}

fn admitted(engine: &Engine, sale: SaleId) -> u64 {
    engine.read(sale, |s| s.room.as_ref().unwrap().counts.admitted).unwrap()
}

#[tokio::test]
async fn the_timer_shuffles_at_opens_at_and_admits_at_the_rate_cap() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = Engine::open(dir.path(), config(), clock.clone()).unwrap();
    let sale = open_sale(&engine, 100).await;
    engine
        .submit(env(sale, Command::ConfigureRoom(room_config(10))))
        .unwrap()
        .await
        .unwrap();
    join_all(&engine, sale, 50).await;
    clock.advance_ms(9_999);
    engine.tick().await.unwrap();
    assert!(!engine.read(sale, |s| s.room.as_ref().unwrap().shuffled).unwrap());
    clock.advance_ms(1);
    engine.tick().await.unwrap();
    assert!(engine.read(sale, |s| s.room.as_ref().unwrap().shuffled).unwrap());
    assert_eq!(admitted(&engine, sale), 0, "no credit at the start");
    // 10 per second: after 1 s, 10 admitted (in ticks of at least 100 ms).
    for _ in 0..10 {
        clock.advance_ms(100);
        engine.tick().await.unwrap();
    }
    assert_eq!(admitted(&engine, sale), 10);
    // A hold without admission is refused; with one it is placed.
    let now = taquilla_engine::Clock::now(clock.as_ref());
    let (queued, admitted_buyer) = engine
        .read(sale, |s| {
            let r = s.room.as_ref().unwrap();
            let a = (0..50).find(|i| r.admission(&buyer(*i), now).is_some()).unwrap();
            let q = (0..50).find(|i| r.admission(&buyer(*i), now).is_none()).unwrap();
            (q, a)
        })
        .unwrap();
    let refused = engine
        .submit(env(sale, hold_cmd(&format!("buyer-{queued}"), 1)))
        .unwrap()
        .await;
    assert!(format!("{refused:?}").contains("AdmissionRequired"), "{refused:?}");
    engine
        .submit(env(sale, hold_cmd(&format!("buyer-{admitted_buyer}"), 1)))
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_restart_resumes_the_queue_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let sale;
    let before;
    {
        let engine = Engine::open(dir.path(), config(), clock.clone()).unwrap();
        sale = open_sale(&engine, 100).await;
        engine
            .submit(env(sale, Command::ConfigureRoom(room_config(10))))
            .unwrap()
            .await
            .unwrap();
        join_all(&engine, sale, 40).await;
        clock.advance_ms(10_500);
        engine.tick().await.unwrap();
        clock.advance_ms(500);
        engine.tick().await.unwrap();
        before = standings(&engine, sale, 40, taquilla_engine::Clock::now(clock.as_ref()));
        assert!(admitted(&engine, sale) > 0);
        engine.shutdown();
    }
    let engine = Engine::open(dir.path(), config(), clock.clone() as Arc<_>).unwrap();
    assert_eq!(
        standings(&engine, sale, 40, taquilla_engine::Clock::now(clock.as_ref())),
        before
    );
    // And the queue moves on from there.
    let was = admitted(&engine, sale);
    clock.advance_ms(1_000);
    engine.tick().await.unwrap();
    assert_eq!(admitted(&engine, sale), was + 10);
}

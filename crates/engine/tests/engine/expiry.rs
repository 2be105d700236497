//! Hold expiry driven by the shard's timer, on a manual clock.

use std::sync::Arc;

use taquilla_domain::{HoldId, HoldState, Outcome, TicketTypeId};
use taquilla_engine::Engine;

use crate::support::*;

#[tokio::test]
async fn a_hold_expires_on_time_and_returns_its_tickets_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = Engine::open(dir.path(), config(), clock.clone()).unwrap();
    let sale = open_sale(&engine, 5).await;
    let Outcome::Hold(hold) = engine.submit(env(sale, hold_cmd("ana", 3))).unwrap().await.unwrap() else {
        panic!("no hold")
    };
    clock.advance_ms(999);
    engine.tick().await.unwrap();
    assert_eq!(engine.read(sale, |s| s.holds[&hold].state).unwrap(), HoldState::Active);
    clock.advance_ms(1);
    engine.tick().await.unwrap();
    assert_eq!(engine.read(sale, |s| s.holds[&hold].state).unwrap(), HoldState::Expired);
    assert_eq!(engine.read(sale, |s| s.available(TicketTypeId(0))).unwrap(), 5);
    // Another tick changes nothing: expiry happened exactly once.
    engine.tick().await.unwrap();
    assert_eq!(engine.read(sale, |s| s.available(TicketTypeId(0))).unwrap(), 5);
}

#[tokio::test]
async fn holds_that_fell_due_while_down_expire_right_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let sale;
    {
        let engine = Engine::open(dir.path(), config(), clock.clone()).unwrap();
        sale = open_sale(&engine, 5).await;
        engine.submit(env(sale, hold_cmd("ana", 2))).unwrap().await.unwrap();
        engine.shutdown();
    }
    clock.advance_ms(60_000);
    let engine = Engine::open(dir.path(), config(), clock.clone() as Arc<_>).unwrap();
    engine.tick().await.unwrap();
    assert_eq!(
        engine.read(sale, |s| s.holds[&HoldId(1)].state).unwrap(),
        HoldState::Expired
    );
    assert_eq!(engine.read(sale, |s| s.available(TicketTypeId(0))).unwrap(), 5);
}

#[tokio::test]
async fn expiries_alone_become_durable_without_waiting_for_another_command() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = Engine::open(dir.path(), config(), clock.clone()).unwrap();
    let sale = open_sale(&engine, 5).await;
    engine.submit(env(sale, hold_cmd("ana", 1))).unwrap().await.unwrap();
    let before = engine.log().durable_lsn();
    clock.advance_ms(1_000);
    // No tick and no command: the shard's own timer (it re-reads the clock at least every
    // 250 ms) expires the hold in a batch with no reply in it.
    let log = engine.log().clone();
    let durable = tokio::task::spawn_blocking(move || log.wait_durable(before, std::time::Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(durable, before + 1, "the expiry record was not flushed");
}

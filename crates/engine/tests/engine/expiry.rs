//! Hold expiry driven by the shard's timer, on a manual clock.

use std::sync::Arc;

use taquilla_domain::{HoldId, HoldState, Outcome, TicketTypeId};
use taquilla_engine::{Clock, Engine, ManualClock, ManualMonotonic, PacedClock};

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
    assert!(
        engine.read(sale, |s| s.holds.ended(&hold)).unwrap(),
        "expired, and gone"
    );
    assert_eq!(
        engine
            .read(sale, |s| s.counts.holds[HoldState::Expired.kind()])
            .unwrap(),
        1
    );
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
        engine
            .read(sale, |s| s.counts.holds[HoldState::Expired.kind()])
            .unwrap(),
        1
    );
    assert!(engine.read(sale, |s| s.holds.ended(&HoldId(1))).unwrap());
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

// ---------------------------------------------------------------------------------------------
// Clock steps: the engine runs on `PacedClock`, paced by a monotonic clock and slewing towards
// the wall clock by at most a tenth of the time elapsed (`limits::CLOCK_SLEW_DIVISOR`).

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// A 15-minute hold: under the policy it lasts 15 / 1.1 to 15 / 0.9 minutes of real time.
const TTL_MS: u64 = 15 * MINUTE_MS;

struct Stepped {
    wall: Arc<ManualClock>,
    mono: Arc<ManualMonotonic>,
    clock: Arc<PacedClock>,
}

fn stepped() -> Stepped {
    let wall = clock();
    let mono = Arc::new(ManualMonotonic::default());
    let clock = Arc::new(PacedClock::new(wall.clone(), mono.clone()));
    Stepped { wall, mono, clock }
}

impl Stepped {
    /// Real time passes: both clocks move.
    fn real_minutes(&self, n: u64) {
        self.mono.advance_ms(n * MINUTE_MS);
        self.wall.advance_ms((n * MINUTE_MS) as i64);
    }
}

/// Places a hold at engine time, steps the wall clock by `step_ms`, and returns the number of
/// whole real minutes (ticking each) after which it was expired.
async fn minutes_until_expiry(step_ms: i64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let c = stepped();
    let engine = Engine::open(dir.path(), config(), c.clock.clone()).unwrap();
    let sale = open_sale_with_ttl(&engine, 5, TTL_MS).await;
    let Outcome::Hold(hold) = engine.submit(env(sale, hold_cmd("ana", 1))).unwrap().await.unwrap() else {
        panic!("no hold")
    };
    c.wall.advance_ms(step_ms);
    for minute in 0..=30 {
        if minute > 0 {
            c.real_minutes(1);
        }
        engine.tick().await.unwrap();
        if engine.read(sale, |s| s.holds.ended(&hold)).unwrap() {
            return minute;
        }
    }
    panic!("the hold never expired");
}

#[tokio::test]
async fn without_a_step_a_hold_expires_after_its_ttl() {
    assert_eq!(minutes_until_expiry(0).await, 15);
}

#[tokio::test]
async fn a_wall_clock_step_forward_of_an_hour_expires_nothing_early() {
    // Engine time runs at most 1.1 times real time: 15 min / 1.1 = 13.6, so minute 14.
    assert_eq!(minutes_until_expiry(HOUR_MS).await, 14);
}

#[tokio::test]
async fn a_wall_clock_step_back_of_an_hour_does_not_freeze_expiry() {
    // Engine time runs at least 0.9 times real time: 15 min / 0.9 = 16.7, so minute 17.
    assert_eq!(minutes_until_expiry(-HOUR_MS).await, 17);
}

#[test]
fn engine_time_never_steps_never_goes_back_and_catches_up_with_the_wall_clock() {
    let c = stepped();
    let start = c.clock.now();
    assert_eq!(start, T0);
    for step in [HOUR_MS, -HOUR_MS] {
        c.wall.advance_ms(step);
        let mut last = c.clock.now();
        assert_eq!(last, start.max(last), "no jump on the step itself");
        // Ten hours and a bit of real time absorb a one-hour step (a tenth per reading).
        for _ in 0..(11 * 60) {
            c.real_minutes(1);
            let now = c.clock.now();
            assert!(now > last, "engine time moves forward");
            assert!(now.0 - last.0 <= (MINUTE_MS + MINUTE_MS / 10) as i64, "and never steps");
            last = now;
        }
        assert_eq!(c.clock.wall_gap_ms(), 0, "the step of {step} ms was absorbed");
    }
}

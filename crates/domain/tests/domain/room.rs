//! The waiting room: given/when/then per command, the codec of its events, and a property test
//! of random join/leave/tick/hold/checkout sequences (invariants after every step, the
//! admission rule at every admission, no join admitted twice, replay equality).

use std::collections::{HashMap, HashSet};

use proptest::collection::vec;
use proptest::prelude::*;
use taquilla_domain::codec::{decode_events, encode_events};
use taquilla_domain::room::{self, RoomConfig, Slot};
use taquilla_domain::{
    Command, Ctx, Decision, Event, HoldId, Odds, Outcome, Rejection, RoomStanding, SaleState, Timestamp, decide,
    evolve, invariants,
};

use crate::support::*;

const PRE: i64 = 1_000;
const OPENS: i64 = 10_000;
const SESSION_MS: u64 = 60_000;

fn config(admit_per_sec: u32, queue_max: u32) -> RoomConfig {
    RoomConfig {
        prequeue_opens_at: Timestamp(PRE),
        opens_at: Timestamp(OPENS),
        admit_per_sec,
        session_ms: SESSION_MS,
        queue_max,
    }
}

fn configured(admit_per_sec: u32, queue_max: u32) -> Event {
    Event::RoomConfigured {
        config: config(admit_per_sec, queue_max),
        seed: [7; 32],
    }
}

fn joined(who: &str, at: i64) -> Event {
    Event::BuyerJoined {
        buyer: buyer(who),
        at: Timestamp(at),
    }
}

fn room_sale() -> Vec<Event> {
    with(open_sale(), [configured(1000, 100)])
}

#[test]
fn configuring_draws_a_seed_and_publishes_only_its_hash() {
    let mut state = fold(&open_sale());
    let d = decide_at(&state, Command::ConfigureRoom(config(10, 100)), 0).unwrap();
    apply(&mut state, &d);
    let room = state.room.as_ref().unwrap();
    assert_ne!(room.seed_sha256, [0; 32]);
    assert_eq!(
        room.revealed_seed(&state, Timestamp(OPENS)),
        None,
        "secret while the sale runs"
    );
    evolve(
        &mut state,
        &Event::SaleStatusChanged {
            status: taquilla_domain::SaleStatus::Closed,
        },
    );
    let seed = state
        .room
        .as_ref()
        .unwrap()
        .revealed_seed(&state, Timestamp(OPENS))
        .unwrap();
    use sha2::Digest;
    assert_eq!(
        <[u8; 32]>::from(sha2::Sha256::digest(seed)),
        state.room.as_ref().unwrap().seed_sha256
    );
}

#[test]
fn bad_configurations_are_invalid() {
    for c in [
        RoomConfig {
            admit_per_sec: 0,
            ..config(1, 1)
        },
        RoomConfig {
            session_ms: 1,
            ..config(1, 1)
        },
        RoomConfig {
            queue_max: 0,
            ..config(1, 1)
        },
        RoomConfig {
            prequeue_opens_at: Timestamp(OPENS + 1),
            ..config(1, 1)
        },
    ] {
        given(open_sale())
            .when(Command::ConfigureRoom(c), 0)
            .then_reject("invalid");
    }
    given(with(room_sale(), [joined("ana", PRE)]))
        .when(Command::ConfigureRoom(config(5, 5)), PRE)
        .then_rejection(Rejection::Conflict(taquilla_domain::ConflictReason::RoomInUse));
}

#[test]
fn joining_before_the_prequeue_opens_is_refused_and_joining_twice_changes_nothing() {
    given(room_sale())
        .when(Command::JoinRoom { buyer: buyer("ana") }, PRE - 1)
        .then_rejection(Rejection::Conflict(taquilla_domain::ConflictReason::RoomNotOpen));
    given(room_sale())
        .when(Command::JoinRoom { buyer: buyer("ana") }, PRE)
        .then(vec![joined("ana", PRE)]);
    given(with(room_sale(), [joined("ana", PRE)]))
        .when(Command::JoinRoom { buyer: buyer("ana") }, PRE + 5)
        .then(vec![]);
}

#[test]
fn a_join_after_opens_at_shuffles_first_and_queues_behind() {
    given(with(room_sale(), [joined("ana", PRE)]))
        .when(Command::JoinRoom { buyer: buyer("bob") }, OPENS)
        .then(vec![
            Event::PrequeueShuffled { at: Timestamp(OPENS) },
            joined("bob", OPENS),
        ]);
}

#[test]
fn a_full_queue_refuses_joins() {
    given(with(
        with(open_sale(), [configured(10, 2)]),
        [joined("a", PRE), joined("b", PRE)],
    ))
    .when(Command::JoinRoom { buyer: buyer("c") }, PRE)
    .then_rejection(Rejection::QueueFull);
}

#[test]
fn a_hold_needs_a_live_admission() {
    let then = given(with(room_sale(), [joined("ana", PRE)]))
        .when(
            Command::PlaceHold {
                buyer: buyer("ana"),
                items: items(&[(0, 1)]),
                idempotency_key: None,
            },
            OPENS,
        )
        .then_reject("admission_required");
    assert_eq!(then, Rejection::AdmissionRequired);
}

#[test]
fn the_tick_shuffles_then_admits_by_rate_and_stock() {
    let mut state = fold(&room_sale());
    for i in 0..30 {
        apply_cmd(
            &mut state,
            Command::JoinRoom {
                buyer: buyer(&format!("b{i}")),
            },
            PRE + i,
        );
    }
    assert_eq!(room::next_tick(&state), Some(Timestamp(OPENS)));
    let d = apply_cmd(&mut state, Command::RoomTick, OPENS);
    assert_eq!(d.events, vec![Event::PrequeueShuffled { at: Timestamp(OPENS) }]);
    let order = state.room.as_ref().unwrap().queue_order();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..30).collect::<Vec<u32>>(), "the shuffle is a permutation");
    assert_ne!(order, sorted, "and not the join order (for this seed)");
    // 1000/s over 100 ms would be 100 buyers, but the hall has 10 tickets (1 each assumed).
    let next = room::next_tick(&state).unwrap();
    assert_eq!(next, Timestamp(OPENS + 1), "one buyer's worth of rate after the start");
    let d = apply_cmd(&mut state, Command::RoomTick, OPENS + 100);
    assert_eq!(
        d.events,
        vec![Event::BuyersAdmitted {
            count: 10,
            at: Timestamp(OPENS + 100)
        }]
    );
    // Nothing more to admit until stock returns: no tick for admission.
    assert_eq!(
        room::next_tick(&state),
        Some(Timestamp(OPENS + 100 + SESSION_MS as i64))
    );
    let first = state.room.as_ref().unwrap().queue_order();
    assert_eq!(first.len(), 20);
    let st = room::status(&state, &buyer("b0"), Timestamp(OPENS + 100)).unwrap();
    assert!(matches!(
        st.standing,
        RoomStanding::Admitted { .. } | RoomStanding::Queued { .. }
    ));
}

#[test]
fn admitted_buyers_shop_check_out_and_the_rest_hear_sold_out() {
    let mut state = fold(&with(open_sale(), [configured(1000, 100)]));
    for i in 0..12 {
        apply_cmd(
            &mut state,
            Command::JoinRoom {
                buyer: buyer(&format!("b{i}")),
            },
            PRE + i,
        );
    }
    apply_cmd(&mut state, Command::RoomTick, OPENS);
    apply_cmd(&mut state, Command::RoomTick, OPENS + 100);
    let now = OPENS + 200;
    let admitted: Vec<String> = (0..12)
        .map(|i| format!("b{i}"))
        .filter(|b| {
            state
                .room
                .as_ref()
                .unwrap()
                .admission(&buyer(b), Timestamp(now))
                .is_some()
        })
        .collect();
    assert_eq!(admitted.len(), 10);
    for b in &admitted {
        let d = apply_cmd(
            &mut state,
            Command::PlaceHold {
                buyer: buyer(b),
                items: items(&[(0, 1)]),
                idempotency_key: None,
            },
            now,
        );
        let Outcome::Hold(hold) = d.outcome else { panic!() };
        let d = apply_cmd(
            &mut state,
            Command::Checkout {
                buyer: buyer(b),
                hold,
                idempotency_key: None,
            },
            now,
        );
        assert!(d.events.contains(&Event::AdmissionUsed { buyer: buyer(b) }));
    }
    // Ten orders await payment: not sold out yet (they may expire), but unlikely.
    let queued = (0..12)
        .map(|i| format!("b{i}"))
        .find(|b| !admitted.contains(b))
        .unwrap();
    let st = room::status(&state, &buyer(&queued), Timestamp(now)).unwrap();
    assert_eq!(st.odds, Odds::Unlikely);
    // The orders expire: stock returns and admission re-opens.
    apply_cmd(&mut state, Command::ExpireDue, OPENS + 200 + TTL_MS as i64);
    assert!(room::next_tick(&state).is_some());
    let d = apply_cmd(&mut state, Command::RoomTick, OPENS + 300 + TTL_MS as i64);
    assert!(
        d.events.contains(&Event::BuyersAdmitted {
            count: 2,
            at: Timestamp(OPENS + 300 + TTL_MS as i64)
        }),
        "{:?}",
        d.events
    );
}

#[test]
fn sold_out_is_told_at_once_when_nothing_can_come_back() {
    let mut state = fold(&with(open_sale(), [configured(1000, 100)]));
    for i in 0..12 {
        apply_cmd(
            &mut state,
            Command::JoinRoom {
                buyer: buyer(&format!("b{i}")),
            },
            PRE + i,
        );
    }
    apply_cmd(&mut state, Command::RoomTick, OPENS);
    apply_cmd(&mut state, Command::RoomTick, OPENS + 100);
    let now = OPENS + 200;
    for i in 0..12 {
        let b = format!("b{i}");
        if state
            .room
            .as_ref()
            .unwrap()
            .admission(&buyer(&b), Timestamp(now))
            .is_none()
        {
            continue;
        }
        let d = apply_cmd(
            &mut state,
            Command::PlaceHold {
                buyer: buyer(&b),
                items: items(&[(0, 1)]),
                idempotency_key: None,
            },
            now,
        );
        let Outcome::Hold(hold) = d.outcome else { panic!() };
        let Outcome::Order(order) = apply_cmd(
            &mut state,
            Command::Checkout {
                buyer: buyer(&b),
                hold,
                idempotency_key: None,
            },
            now,
        )
        .outcome
        else {
            panic!()
        };
        apply_cmd(
            &mut state,
            Command::ConfirmPayment {
                order,
                payment_ref: pay_ref(&format!("p{i}")),
            },
            now,
        );
    }
    assert!(room::sold_out(&state));
    for i in 0..12 {
        let st = room::status(&state, &buyer(&format!("b{i}")), Timestamp(now)).unwrap();
        assert_eq!(st.odds, Odds::SoldOut, "b{i}: {st:?}");
    }
}

#[test]
fn an_unused_admission_expires_as_a_no_show() {
    let mut state = fold(&with(room_sale(), [joined("ana", PRE)]));
    apply_cmd(&mut state, Command::RoomTick, OPENS);
    apply_cmd(&mut state, Command::RoomTick, OPENS + 100);
    assert!(
        state
            .room
            .as_ref()
            .unwrap()
            .admission(&buyer("ana"), Timestamp(OPENS + 100))
            .is_some()
    );
    let end = OPENS + 100 + SESSION_MS as i64;
    assert_eq!(room::next_tick(&state), Some(Timestamp(end)));
    let d = apply_cmd(&mut state, Command::RoomTick, end);
    assert_eq!(
        d.events,
        vec![Event::AdmissionsExpired {
            count: 1,
            at: Timestamp(end)
        }]
    );
    let room = state.room.as_ref().unwrap();
    assert_eq!((room.counts.expired, room.counts.no_shows), (1, 1));
    assert_eq!(room.slot(&buyer("ana")), Some(Slot::Expired));
    // Joining again queues at the back.
    apply_cmd(&mut state, Command::JoinRoom { buyer: buyer("ana") }, end + 1);
    assert!(matches!(
        state.room.as_ref().unwrap().slot(&buyer("ana")),
        Some(Slot::Queued { .. })
    ));
}

#[test]
fn leaving_moves_everyone_behind_forward() {
    let mut state = fold(&with(open_sale(), [configured(1000, 5000)]));
    apply_cmd(&mut state, Command::RoomTick, OPENS);
    // Paused: nobody is admitted, positions only move by leaving.
    evolve(
        &mut state,
        &Event::SaleStatusChanged {
            status: taquilla_domain::SaleStatus::Paused,
        },
    );
    for i in 0..3000 {
        apply_cmd(
            &mut state,
            Command::JoinRoom {
                buyer: buyer(&format!("b{i}")),
            },
            OPENS + 1,
        );
    }
    for i in (0..2000).step_by(2) {
        apply_cmd(
            &mut state,
            Command::LeaveRoom {
                buyer: buyer(&format!("b{i}")),
            },
            OPENS + 2,
        );
    }
    let st = room::status(&state, &buyer("b2999"), Timestamp(OPENS + 3)).unwrap();
    assert_eq!(
        st.standing,
        RoomStanding::Queued {
            position: 2000,
            ahead: 1999,
            wait_ms: Some(1999)
        }
    );
    invariants::check(&state).unwrap();
}

fn decide_at(state: &SaleState, command: Command, now: i64) -> Result<Decision, Rejection> {
    // Fresh codes for every decision of a test, so paying several orders draws no collision.
    static DECISIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = DECISIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut entropy = CounterEntropy(CODE_BASE + u128::from(n) * 1000);
    let mut ctx = Ctx {
        now: Timestamp(now),
        entropy: &mut entropy,
        correlation_id: None,
    };
    decide(state, command, &mut ctx)
}

fn apply(state: &mut SaleState, d: &Decision) {
    for e in &d.events {
        evolve(state, e);
    }
}

#[track_caller]
fn apply_cmd(state: &mut SaleState, command: Command, now: i64) -> Decision {
    let d = decide_at(state, command.clone(), now).unwrap_or_else(|r| panic!("{command:?}: {r:?}"));
    apply(state, &d);
    if let Err(e) = invariants::check(state) {
        panic!("{command:?} broke an invariant: {e}");
    }
    d
}

// --- codec ----------------------------------------------------------------------------------

fn arb_room_event() -> impl Strategy<Value = Event> {
    let time = any::<i64>().prop_map(Timestamp);
    let who = "[a-z0-9]{1,20}".prop_map(|s| buyer(&s));
    prop_oneof![
        (
            time.clone(),
            time.clone(),
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(p, o, rate, session_ms, queue_max, seed)| Event::RoomConfigured {
                config: RoomConfig {
                    prequeue_opens_at: p,
                    opens_at: o,
                    admit_per_sec: rate,
                    session_ms,
                    queue_max,
                },
                seed,
            }),
        (who.clone(), time.clone()).prop_map(|(buyer, at)| Event::BuyerJoined { buyer, at }),
        (who.clone(), time.clone()).prop_map(|(buyer, at)| Event::BuyerLeft { buyer, at }),
        time.clone().prop_map(|at| Event::PrequeueShuffled { at }),
        (any::<u32>(), time.clone()).prop_map(|(count, at)| Event::BuyersAdmitted { count, at }),
        (any::<u32>(), time).prop_map(|(count, at)| Event::AdmissionsExpired { count, at }),
        who.prop_map(|buyer| Event::AdmissionUsed { buyer }),
    ]
}

proptest! {
    #[test]
    fn room_events_round_trip(events in vec(arb_room_event(), 0..10)) {
        let mut out = Vec::new();
        encode_events(&events, &mut out);
        prop_assert_eq!(decode_events(&out), Ok(events));
    }

    #[test]
    fn the_shuffle_is_a_permutation(n in 0usize..2000, seed in any::<[u8; 32]>()) {
        let mut items: Vec<usize> = (0..n).collect();
        room::shuffle(&mut items, &seed);
        let mut again: Vec<usize> = (0..n).collect();
        room::shuffle(&mut again, &seed);
        prop_assert_eq!(&items, &again, "the same seed draws the same order");
        items.sort_unstable();
        prop_assert_eq!(items, (0..n).collect::<Vec<_>>());
    }
}

// --- property test --------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Join(u8),
    Leave(u8),
    Advance(u16),
    Tick,
    Hold(u8, u8),
    Checkout(u8),
    Release(u8),
    Expire,
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..24).prop_map(Step::Join),
        1 => (0u8..24).prop_map(Step::Leave),
        3 => (1u16..20_000).prop_map(Step::Advance),
        4 => Just(Step::Tick),
        3 => (0u8..24, 1u8..4).prop_map(|(b, q)| Step::Hold(b, q)),
        2 => (0u8..24).prop_map(Step::Checkout),
        1 => (0u8..24).prop_map(Step::Release),
        1 => Just(Step::Expire),
    ]
}

struct Run {
    state: SaleState,
    log: Vec<Event>,
    now: i64,
    holds: HashMap<u8, HoldId>,
    /// Joins by buyer, and the joins admitted: no join is admitted twice.
    joins: HashMap<String, u32>,
    admitted: HashSet<(String, u32)>,
}

impl Run {
    fn exec(&mut self, command: Command) -> Result<Decision, Rejection> {
        let before = self.state.clone();
        let d = decide_at(&self.state, command, self.now)?;
        for e in &d.events {
            evolve(&mut self.state, e);
            self.log.push(e.clone());
            match e {
                Event::BuyerJoined { buyer, .. } => *self.joins.entry(buyer.as_str().into()).or_default() += 1,
                Event::BuyersAdmitted { .. } => self.check_admission(&before),
                _ => {}
            }
        }
        Ok(d)
    }

    /// Every buyer now admitted is admitted for a join never admitted before; and shoppers
    /// without a hold stay within what the stock serves at the no-show allowance.
    fn check_admission(&mut self, before: &SaleState) {
        let room = self.state.room.as_ref().unwrap();
        for i in 0..24u8 {
            let b = format!("b{i}");
            let was = before.room.as_ref().unwrap().slot(&buyer(&b));
            let is = room.slot(&buyer(&b));
            if matches!(is, Some(Slot::Admitted { .. })) && !matches!(was, Some(Slot::Admitted { .. })) {
                let join = self.joins[&b];
                assert!(
                    self.admitted.insert((b.clone(), join)),
                    "{b} admitted twice for join {join}"
                );
            }
        }
        let allowance = 1000 - taquilla_domain::limits::ROOM_NO_SHOW_MAX_PER_MILLE;
        let shopping = room.counts.shopping_without_hold;
        assert!(
            shopping * allowance <= room::sellable(&self.state) * 1000,
            "{shopping} shoppers without a hold for {} tickets",
            room::sellable(&self.state)
        );
    }
}

fn run_steps(steps: &[Step]) {
    let mut run = Run {
        state: SaleState::default(),
        log: Vec::new(),
        now: 0,
        holds: HashMap::new(),
        joins: HashMap::new(),
        admitted: HashSet::new(),
    };
    for e in with(open_sale(), [configured(20, 16)]) {
        evolve(&mut run.state, &e);
        run.log.push(e);
    }
    run.now = PRE;
    let mut prequeue: Option<Vec<String>> = None;
    for step in steps {
        let b = |i: &u8| buyer(&format!("b{i}"));
        let _ = match step {
            Step::Join(i) => run.exec(Command::JoinRoom { buyer: b(i) }),
            Step::Leave(i) => run.exec(Command::LeaveRoom { buyer: b(i) }),
            Step::Advance(ms) => {
                run.now += i64::from(*ms);
                Ok(taquilla_domain::Decision {
                    events: vec![],
                    outcome: Outcome::Done,
                })
            }
            Step::Tick => {
                let due = room::next_tick(&run.state).is_some_and(|t| t.0 <= run.now);
                let was_shuffled = run.state.room.as_ref().unwrap().shuffled;
                let queued_before: Vec<u32> = run.state.room.as_ref().unwrap().queue_order();
                let d = run.exec(Command::RoomTick).unwrap();
                assert_eq!(due, !d.events.is_empty(), "a due tick always acts, an early one never");
                if !was_shuffled && run.state.room.as_ref().unwrap().shuffled {
                    let mut after = run.state.room.as_ref().unwrap().queue_order();
                    let mut before = queued_before;
                    after.sort_unstable();
                    before.sort_unstable();
                    assert_eq!(after, before, "the shuffle is a permutation of the pre-queue");
                    prequeue = Some(vec![]);
                }
                Ok(d)
            }
            Step::Hold(i, q) => {
                let r = run.exec(Command::PlaceHold {
                    buyer: b(i),
                    items: items(&[(0, u32::from(*q))]),
                    idempotency_key: None,
                });
                if let Ok(Decision {
                    outcome: Outcome::Hold(h),
                    ..
                }) = &r
                {
                    run.holds.insert(*i, *h);
                }
                r
            }
            Step::Checkout(i) => match run.holds.get(i) {
                Some(h) => run.exec(Command::Checkout {
                    buyer: b(i),
                    hold: *h,
                    idempotency_key: None,
                }),
                None => continue,
            },
            Step::Release(i) => match run.holds.get(i) {
                Some(h) => run.exec(Command::ReleaseHold { buyer: b(i), hold: *h }),
                None => continue,
            },
            Step::Expire => run.exec(Command::ExpireDue),
        };
        if let Err(e) = invariants::check(&run.state) {
            panic!("after {step:?}: {e}");
        }
    }
    let _ = prequeue;
    // Replay equality, and through the codec.
    let mut bytes = Vec::new();
    encode_events(&run.log, &mut bytes);
    let replayed = fold(&decode_events(&bytes).unwrap());
    assert_eq!(replayed, run.state);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_room_sequences_keep_the_invariants(steps in vec(arb_step(), 1..120)) {
        run_steps(&steps);
    }
}

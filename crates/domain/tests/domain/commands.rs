//! Given / when / then: each command's success path and each of its rejections.

use taquilla_domain::limits::{DEADLINES_SLACK, EXPIRE_BATCH_MAX, IDEMPOTENCY_TTL_MS_DEFAULT};
use taquilla_domain::{
    Actor, Command, ConflictReason, CreateSale, Deadline, Entity, Event, HoldId, HoldState, IssuedTicket, OrderId,
    OrderState, Outcome, QuotaId, Rejection, SaleStatus, TicketCode, TicketTypeId, Timestamp,
};
use taquilla_domain::{evolve, invariants};

use super::support::*;

fn create(hold_ttl_ms: u64, limit: Option<u32>, opens_at: Option<i64>, closes_at: Option<i64>) -> Command {
    Command::CreateSale(CreateSale {
        name: name("Concert"),
        currency: eur(),
        hold_ttl_ms,
        max_tickets_per_buyer: limit,
        opens_at: opens_at.map(Timestamp),
        closes_at: closes_at.map(Timestamp),
        offline_payment_ttl_ms: None,
    })
}

fn place(who: &str, lines: &[(u32, u32)]) -> Command {
    Command::PlaceHold {
        buyer: buyer(who),
        items: items(lines),
        idempotency_key: None,
    }
}

fn place_keyed(who: &str, lines: &[(u32, u32)], k: &str) -> Command {
    Command::PlaceHold {
        buyer: buyer(who),
        items: items(lines),
        idempotency_key: Some(key(k)),
    }
}

fn checkout(who: &str, hold: u64) -> Command {
    Command::Checkout {
        buyer: buyer(who),
        hold: HoldId(hold),
        idempotency_key: None,
    }
}

fn pay(order: u64, reference: &str) -> Command {
    Command::ConfirmPayment {
        order: OrderId(order),
        payment_ref: pay_ref(reference),
    }
}

/// Alice holds 2 General + 1 VIP (hold 1) and checks out (order 1, total 7000).
fn alice_order() -> Vec<Event> {
    with(
        open_sale(),
        [hold_placed(1, "alice", &[(0, 2), (1, 1)]), order_placed(1, 1, 7_000)],
    )
}

/// Alice's order 1 paid: tickets 1, 2 (General) and 3 (VIP).
fn alice_paid() -> Vec<Event> {
    with(alice_order(), [order_paid(1, "pay-1", 1, &[GENERAL, GENERAL, VIP])])
}

// ---------------------------------------------------------------------------------------------
// CreateSale

#[test]
fn create_sale_starts_a_draft() {
    let then = given([])
        .when(create(TTL_MS, Some(LIMIT), None, None), 0)
        .then(vec![sale_created()]);
    let then = then.then_outcome(Outcome::SaleCreated);
    assert_eq!(then.state().sale.as_ref().map(|s| s.status), Some(SaleStatus::Draft));
}

#[test]
fn create_sale_twice_is_rejected() {
    given([sale_created()])
        .when(create(TTL_MS, None, None, None), 0)
        .then_rejection(Rejection::AlreadyExists);
}

#[test]
fn create_sale_checks_its_values() {
    given([]).when(create(999, None, None, None), 0).then_reject("invalid");
    given([])
        .when(create(24 * 3_600_000 + 1, None, None, None), 0)
        .then_reject("invalid");
    given([])
        .when(create(TTL_MS, None, Some(10), Some(10)), 0)
        .then_reject("invalid");
    given([])
        .when(create(TTL_MS, Some(0), None, None), 0)
        .then_reject("invalid");
}

#[test]
fn any_other_command_needs_a_sale() {
    given([])
        .when(Command::SetStatus(SaleStatus::Open), 0)
        .then_rejection(Rejection::NotFound(Entity::Sale));
    given([])
        .when(place("alice", &[(0, 1)]), 0)
        .then_rejection(Rejection::NotFound(Entity::Sale));
    given([])
        .when(Command::ExpireDue, 0)
        .then_rejection(Rejection::NotFound(Entity::Sale));
}

// ---------------------------------------------------------------------------------------------
// AddTicketType, AddQuota

#[test]
fn ticket_types_are_numbered_in_order() {
    given([sale_created()])
        .when(
            Command::AddTicketType {
                name: name("General"),
                price: money(100),
                max_per_order: Some(4),
            },
            0,
        )
        .then(vec![Event::TicketTypeAdded {
            id: TicketTypeId(0),
            name: name("General"),
            price: money(100),
            max_per_order: Some(4),
        }])
        .then_outcome(Outcome::TicketTypeAdded(TicketTypeId(0)));
    given(catalog())
        .when(
            Command::AddTicketType {
                name: name("Late"),
                price: money(1),
                max_per_order: None,
            },
            0,
        )
        .then_outcome(Outcome::TicketTypeAdded(TicketTypeId(3)));
}

#[test]
fn add_ticket_type_rejections() {
    let add = |max| Command::AddTicketType {
        name: name("X"),
        price: money(1),
        max_per_order: max,
    };
    given([sale_created()]).when(add(Some(0)), 0).then_reject("invalid");
    given([sale_created()]).when(add(Some(101)), 0).then_reject("invalid");
    let closed = with(
        catalog(),
        [Event::SaleStatusChanged {
            status: SaleStatus::Closed,
        }],
    );
    given(closed)
        .when(add(None), 0)
        .then_rejection(Rejection::Conflict(ConflictReason::SaleClosed));
}

#[test]
fn a_new_quota_starts_with_what_its_types_hold_and_sold() {
    // Alice holds 2 General; Bob bought 1 VIP. A new quota over both starts at held 2, sold 1.
    let events = with(
        open_sale(),
        [
            hold_placed(1, "alice", &[(0, 2)]),
            hold_placed(2, "bob", &[(1, 1)]),
            order_placed(1, 2, VIP_PRICE),
            order_paid(1, "p", 1, &[VIP]),
        ],
    );
    let then = given(events.clone())
        .when(
            Command::AddQuota {
                name: name("Floor"),
                capacity: 3,
                ticket_types: vec![GENERAL, VIP],
            },
            0,
        )
        .then(vec![Event::QuotaAdded {
            id: QuotaId(2),
            name: name("Floor"),
            capacity: 3,
            ticket_types: vec![GENERAL, VIP],
        }])
        .then_outcome(Outcome::QuotaAdded(QuotaId(2)));
    let q = &then.state().quotas[2];
    assert_eq!((q.held, q.sold, q.available()), (2, 1, 0));
    assert_eq!(then.state().available(GENERAL), 0);
    // One less capacity than in use: refused.
    given(events)
        .when(
            Command::AddQuota {
                name: name("Floor"),
                capacity: 2,
                ticket_types: vec![GENERAL, VIP],
            },
            0,
        )
        .then_rejection(Rejection::Conflict(ConflictReason::CapacityBelowUsage));
}

#[test]
fn add_quota_rejections() {
    let add = |capacity, types: Vec<u32>| Command::AddQuota {
        name: name("Q"),
        capacity,
        ticket_types: types.into_iter().map(TicketTypeId).collect(),
    };
    given(catalog()).when(add(5, vec![]), 0).then_reject("invalid");
    given(catalog()).when(add(5, vec![0, 0]), 0).then_reject("invalid");
    given(catalog())
        .when(add(5, vec![0, 9]), 0)
        .then_rejection(Rejection::NotFound(Entity::TicketType));
    given(catalog())
        .when(add(100_000_001, vec![0]), 0)
        .then_reject("invalid");
    given(catalog())
        .when(add(5, (0..65).collect()), 0)
        .then_reject("invalid");
    let closed = with(
        catalog(),
        [Event::SaleStatusChanged {
            status: SaleStatus::Closed,
        }],
    );
    given(closed)
        .when(add(5, vec![0]), 0)
        .then_rejection(Rejection::Conflict(ConflictReason::SaleClosed));
}

// ---------------------------------------------------------------------------------------------
// SetStatus

#[test]
fn status_transitions() {
    use SaleStatus::*;
    let status = |s| Event::SaleStatusChanged { status: s };
    for (from, to) in [
        (Draft, Open),
        (Open, Paused),
        (Paused, Open),
        (Draft, Closed),
        (Open, Closed),
        (Paused, Closed),
        (Draft, Archived),
        (Paused, Archived),
        (Closed, Archived),
    ] {
        let mut events = catalog();
        match from {
            Draft => {}
            Open => events.push(status(Open)),
            Paused => events.extend([status(Open), status(Paused)]),
            Closed => events.push(status(Closed)),
            Archived => unreachable!(),
        }
        given(events)
            .when(Command::SetStatus(to), 0)
            .then(vec![status(to)])
            .then_outcome(Outcome::Done);
    }
    for (path, to) in [
        (vec![], Paused),
        (vec![Closed], Open),
        (vec![Closed], Draft),
        (vec![Open], Draft),
        (vec![Open], Archived),
        (vec![Archived], Open),
        (vec![Archived], Closed),
    ] {
        let events = with(catalog(), path.into_iter().map(status));
        given(events).when(Command::SetStatus(to), 0).then_reject("conflict");
    }
}

#[test]
fn setting_the_same_status_is_a_no_op() {
    given(open_sale())
        .when(Command::SetStatus(SaleStatus::Open), 0)
        .then(vec![])
        .then_outcome(Outcome::Done);
    let closed = with(
        catalog(),
        [Event::SaleStatusChanged {
            status: SaleStatus::Closed,
        }],
    );
    given(closed)
        .when(Command::SetStatus(SaleStatus::Closed), 0)
        .then(vec![]);
}

// ---------------------------------------------------------------------------------------------
// PlaceHold

#[test]
fn place_hold_takes_inventory_on_every_quota_of_each_type() {
    let then = given(open_sale())
        .when(place("alice", &[(0, 2), (1, 1)]), 0)
        .then(vec![hold_placed(1, "alice", &[(0, 2), (1, 1)])])
        .then_outcome(Outcome::Hold(HoldId(1)));
    let s = then.state();
    assert_eq!((s.quotas[0].held, s.quotas[1].held), (3, 1));
    assert_eq!((s.ticket_types[0].held, s.ticket_types[1].held), (2, 1));
    assert_eq!(s.available(GENERAL), 7);
    assert_eq!(s.available(VIP), 2);
    assert_eq!(s.buyer_tickets.get(&buyer("alice")), Some(&3));
    assert_eq!(s.holds[&HoldId(1)].total, money(2 * GENERAL_PRICE + VIP_PRICE));
    assert_eq!(s.next_deadline(), Some(Timestamp(TTL_MS as i64)));
}

#[test]
fn place_hold_needs_an_open_sale_within_its_window() {
    given(catalog())
        .when(place("alice", &[(0, 1)]), 0)
        .then_rejection(Rejection::SaleNotOpen);
    let paused = with(
        open_sale(),
        [Event::SaleStatusChanged {
            status: SaleStatus::Paused,
        }],
    );
    given(paused)
        .when(place("alice", &[(0, 1)]), 0)
        .then_rejection(Rejection::SaleNotOpen);
    let mut windowed = open_sale();
    windowed[0] = Event::SaleCreated {
        name: name("Concert"),
        currency: eur(),
        hold_ttl_ms: TTL_MS,
        max_tickets_per_buyer: None,
        opens_at: Some(Timestamp(100)),
        closes_at: Some(Timestamp(200)),
        offline_payment_ttl_ms: None,
    };
    given(windowed.clone())
        .when(place("alice", &[(0, 1)]), 99)
        .then_rejection(Rejection::SaleNotOpen);
    given(windowed.clone())
        .when(place("alice", &[(0, 1)]), 100)
        .then_outcome(Outcome::Hold(HoldId(1)));
    given(windowed)
        .when(place("alice", &[(0, 1)]), 200)
        .then_rejection(Rejection::SaleNotOpen);
}

#[test]
fn place_hold_checks_its_lines() {
    given(open_sale()).when(place("alice", &[]), 0).then_reject("invalid");
    let seventeen: Vec<(u32, u32)> = (0..17).map(|i| (i, 1)).collect();
    given(open_sale())
        .when(place("alice", &seventeen), 0)
        .then_reject("invalid");
    given(open_sale())
        .when(place("alice", &[(0, 1), (0, 1)]), 0)
        .then_reject("invalid");
    given(open_sale())
        .when(place("alice", &[(7, 1)]), 0)
        .then_rejection(Rejection::NotFound(Entity::TicketType));
    // VIP allows at most 2 per order.
    given(open_sale())
        .when(place("alice", &[(1, 3)]), 0)
        .then_reject("invalid");
}

#[test]
fn a_type_in_no_quota_is_sold_out() {
    given(open_sale())
        .when(place("alice", &[(0, 1), (2, 1)]), 0)
        .then_rejection(Rejection::SoldOut { ticket_type: ORPHAN });
}

#[test]
fn sold_out_when_a_quota_of_the_type_is_full() {
    // The VIP area (3) is full; General is still available in the hall.
    let events = with(
        open_sale(),
        [hold_placed(1, "bob", &[(1, 2)]), hold_placed(2, "carol", &[(1, 1)])],
    );
    given(events.clone())
        .when(place("alice", &[(0, 1), (1, 1)]), 0)
        .then_rejection(Rejection::SoldOut { ticket_type: VIP });
    given(events)
        .when(place("alice", &[(0, 1)]), 0)
        .then_outcome(Outcome::Hold(HoldId(3)));
}

#[test]
fn insufficient_inventory_is_all_or_nothing_across_shared_quotas() {
    // Hall has 10: 6 held leaves 4; 3 General + 2 VIP need 5 from the hall.
    let events = with(open_sale(), [hold_placed(1, "bob", &[(0, 6)])]);
    given(events.clone())
        .when(place("alice", &[(0, 3), (1, 2)]), 0)
        .then_rejection(Rejection::InsufficientInventory {
            ticket_type: GENERAL,
            available: 4,
        });
    given(events)
        .when(place("alice", &[(0, 2), (1, 2)]), 0)
        .then_outcome(Outcome::Hold(HoldId(2)));
}

#[test]
fn the_buyer_limit_counts_holds_orders_and_tickets() {
    // Alice has 3 paid tickets; the limit is 6.
    given(alice_paid())
        .when(place("alice", &[(0, 4)]), 0)
        .then_rejection(Rejection::LimitExceeded {
            limit: LIMIT,
            current: 3,
        });
    given(alice_paid())
        .when(place("alice", &[(0, 3)]), 0)
        .then_outcome(Outcome::Hold(HoldId(2)));
    given(alice_paid())
        .when(place("bob", &[(0, 6)]), 0)
        .then_outcome(Outcome::Hold(HoldId(2)));
}

#[test]
fn a_retried_hold_returns_the_original_outcome_without_events() {
    let first = given(open_sale())
        .when(place_keyed("alice", &[(0, 2)], "k1"), 0)
        .then(vec![Event::HoldPlaced {
            hold: HoldId(1),
            buyer: buyer("alice"),
            items: items(&[(0, 2)]),
            expires_at: Timestamp(TTL_MS as i64),
            idempotency_key: Some(key("k1")),
        }]);
    let events = with(open_sale(), [first_event(&first)]);
    // Even after the sale is paused, the retry answers what happened.
    let paused = with(
        events.clone(),
        [Event::SaleStatusChanged {
            status: SaleStatus::Paused,
        }],
    );
    given(paused)
        .when(place_keyed("alice", &[(0, 2)], "k1"), 5)
        .then(vec![])
        .then_outcome(Outcome::Hold(HoldId(1)));
    given(events.clone())
        .when(place_keyed("alice", &[(0, 3)], "k1"), 5)
        .then_rejection(Rejection::IdempotencyConflict);
    // Keys are scoped per buyer.
    given(events)
        .when(place_keyed("bob", &[(0, 3)], "k1"), 5)
        .then_outcome(Outcome::Hold(HoldId(2)));
}

#[test]
fn an_idempotency_key_is_remembered_for_its_ttl_then_forgotten() {
    let day = IDEMPOTENCY_TTL_MS_DEFAULT as i64;
    let events = with(open_sale(), [keyed_hold_placed(1, "alice", 0, "k1")]);
    // A retry just inside the TTL answers the original hold (here, released since).
    let released = with(events.clone(), [Event::HoldReleased { hold: HoldId(1) }]);
    given(released.clone())
        .when(place_keyed("alice", &[(0, 2)], "k1"), day - 1)
        .then(vec![])
        .then_outcome(Outcome::Hold(HoldId(1)));
    // From the TTL on it is a new command, even with another body (no conflict).
    given(released)
        .when(place_keyed("alice", &[(0, 3)], "k1"), day)
        .then_outcome(Outcome::Hold(HoldId(2)));
}

#[test]
fn expired_keys_are_forgotten_a_few_per_key_remembered() {
    // Keys k0..k9 at times 0..9 ms, then one more a TTL after k5: k0..k3 go (four per key,
    // oldest first), k4 and k5 expired but wait for the next keys, the rest are young.
    let day = IDEMPOTENCY_TTL_MS_DEFAULT as i64;
    let mut events = open_sale();
    for i in 0..10u64 {
        events.push(keyed_hold_placed(i + 1, "alice", i as i64, &format!("k{i}")));
        events.push(Event::HoldReleased { hold: HoldId(i + 1) });
    }
    events.push(keyed_hold_placed(11, "alice", day + 5, "late"));
    let s = fold(&events);
    let mut kept: Vec<String> = s.idempotency.iter().map(|(k, _)| k.1.as_str().to_string()).collect();
    kept.sort();
    assert_eq!(kept, ["k4", "k5", "k6", "k7", "k8", "k9", "late"]);
    // Whatever is still in the table, a key past its TTL is not honoured.
    let k4 = (buyer("alice"), key("k4"));
    assert!(s.idempotency.get(&k4, Timestamp(day + 5)).is_none());
    assert!(s.idempotency.get(&k4, Timestamp(day + 3)).is_some());
}

/// `hold_placed` with a key, placed at `at_ms` (one unit of type 0... of two, as `place_keyed`
/// asks).
fn keyed_hold_placed(id: u64, who: &str, at_ms: i64, k: &str) -> Event {
    Event::HoldPlaced {
        hold: HoldId(id),
        buyer: buyer(who),
        items: items(&[(0, 2)]),
        expires_at: Timestamp(at_ms + TTL_MS as i64),
        idempotency_key: Some(key(k)),
    }
}

#[test]
fn a_hold_release_loop_leaves_the_tables_as_small_as_it_found_them() {
    // The shape of the RSS benchmark: one buyer holds and releases, over and over, while an
    // earlier hold of another buyer keeps the front of the deadline index live (so released
    // entries cannot simply fall off the front).
    let mut state = fold(&with(open_sale(), [hold_placed(1, "bob", &[(1, 1)])]));
    let cycles = 20 * DEADLINES_SLACK as u64;
    for i in 2..=cycles + 1 {
        evolve(&mut state, &hold_placed(i, "alice", &[(0, 1)]));
        evolve(&mut state, &Event::HoldReleased { hold: HoldId(i) });
        assert!(
            state.deadlines.len() <= 2 + DEADLINES_SLACK + 1,
            "cycle {i}: {}",
            state.deadlines.len()
        );
    }
    invariants::check(&state).expect("invariants");
    assert_eq!(state.holds.len(), 1, "released holds leave the table; bob's stays");
    assert_eq!(state.buyer_tickets.len(), 1);
    assert_eq!(state.holds.placed(), cycles + 1);
    assert_eq!(state.counts.holds[HoldState::Released.kind()], cycles);
    assert!(state.holds.ended(&HoldId(2)) && !state.holds.ended(&HoldId(1)));
    assert!(!state.holds.ended(&HoldId(cycles + 2)), "never placed");
}

fn first_event(then: &Then) -> Event {
    let hold = &then.state().holds[&HoldId(1)];
    Event::HoldPlaced {
        hold: HoldId(1),
        buyer: hold.buyer.clone(),
        items: hold.items.clone(),
        expires_at: hold.expires_at,
        idempotency_key: Some(key("k1")),
    }
}

#[test]
fn a_rejected_keyed_request_is_not_remembered() {
    given(catalog())
        .when(place_keyed("alice", &[(0, 2)], "k1"), 0)
        .then_rejection(Rejection::SaleNotOpen);
    // Same key once the sale opens: evaluated afresh.
    given(open_sale())
        .when(place_keyed("alice", &[(0, 2)], "k1"), 0)
        .then_outcome(Outcome::Hold(HoldId(1)));
}

// ---------------------------------------------------------------------------------------------
// ReleaseHold

#[test]
fn release_returns_inventory_and_the_buyers_count() {
    let then = given(with(open_sale(), [hold_placed(1, "alice", &[(0, 2)])]))
        .when(
            Command::ReleaseHold {
                buyer: buyer("alice"),
                hold: HoldId(1),
            },
            5,
        )
        .then(vec![Event::HoldReleased { hold: HoldId(1) }])
        .then_outcome(Outcome::Done);
    assert_eq!(then.state().available(GENERAL), 10);
    assert!(then.state().buyer_tickets.is_empty());
    assert_eq!(then.state().next_deadline(), None);
}

#[test]
fn release_rejections() {
    let release = |who: &str| Command::ReleaseHold {
        buyer: buyer(who),
        hold: HoldId(1),
    };
    let held = with(open_sale(), [hold_placed(1, "alice", &[(0, 2)])]);
    given(held.clone())
        .when(release("bob"), 5)
        .then_rejection(Rejection::NotFound(Entity::Hold));
    given(open_sale())
        .when(release("alice"), 5)
        .then_rejection(Rejection::NotFound(Entity::Hold));
    // Ended holds are not kept: whoever names one hears that it ended.
    let released = with(held.clone(), [Event::HoldReleased { hold: HoldId(1) }]);
    given(released.clone())
        .when(release("alice"), 5)
        .then_rejection(Rejection::HoldEnded);
    given(released)
        .when(release("bob"), 5)
        .then_rejection(Rejection::HoldEnded);
    let expired = with(held.clone(), [Event::HoldExpired { hold: HoldId(1) }]);
    given(expired)
        .when(release("alice"), 5)
        .then_rejection(Rejection::HoldEnded);
    let converted = with(held, [order_placed(1, 1, 2_000)]);
    given(converted)
        .when(release("alice"), 5)
        .then_rejection(Rejection::HoldEnded);
}

// ---------------------------------------------------------------------------------------------
// ExpireDue

#[test]
fn expire_due_expires_holds_and_orders_in_deadline_order() {
    let later = Event::HoldPlaced {
        hold: HoldId(3),
        buyer: buyer("carol"),
        items: items(&[(0, 1)]),
        expires_at: Timestamp(TTL_MS as i64 + 1),
        idempotency_key: None,
    };
    let events = with(
        open_sale(),
        [
            hold_placed(1, "alice", &[(0, 1)]),
            hold_placed(2, "bob", &[(0, 1)]),
            later,
            order_placed(1, 2, 1_000),
        ],
    );
    given(events.clone())
        .when(Command::ExpireDue, TTL_MS as i64 - 1)
        .then(vec![])
        .then_outcome(Outcome::Done);
    let then = given(events).when(Command::ExpireDue, TTL_MS as i64).then(vec![
        Event::HoldExpired { hold: HoldId(1) },
        Event::OrderExpired {
            order: OrderId(1),
            at: Timestamp(TTL_MS as i64),
        },
    ]);
    let s = then.state();
    assert!(s.holds.ended(&HoldId(1)), "an expired hold leaves the table");
    assert_eq!(s.counts.holds[HoldState::Expired.kind()], 1);
    assert_eq!(s.orders[&OrderId(1)].state, OrderState::Expired);
    assert_eq!(s.available(GENERAL), 9);
    assert_eq!(s.next_deadline(), Some(Timestamp(TTL_MS as i64 + 1)));
}

#[test]
fn expire_due_is_bounded_per_command() {
    let mut events = open_sale();
    events[0] = Event::SaleCreated {
        name: name("Big"),
        currency: eur(),
        hold_ttl_ms: TTL_MS,
        max_tickets_per_buyer: None,
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: None,
    };
    events[4] = Event::QuotaAdded {
        id: QuotaId(0),
        name: name("Hall"),
        capacity: 5_000,
        ticket_types: vec![GENERAL, VIP],
    };
    let n = EXPIRE_BATCH_MAX as u64 + 3;
    events.extend((1..=n).map(|i| hold_placed(i, "alice", &[(0, 1)])));
    let mut state = fold(&events);
    let mut entropy = CounterEntropy::default();
    let mut ctx = taquilla_domain::Ctx {
        now: Timestamp(TTL_MS as i64),
        entropy: &mut entropy,
        correlation_id: None,
    };
    let first = taquilla_domain::decide(&state, Command::ExpireDue, &mut ctx).expect("expire");
    assert_eq!(first.events.len(), EXPIRE_BATCH_MAX);
    for e in &first.events {
        taquilla_domain::evolve(&mut state, e);
    }
    let second = taquilla_domain::decide(&state, Command::ExpireDue, &mut ctx).expect("expire");
    assert_eq!(second.events.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Checkout

#[test]
fn checkout_turns_the_hold_into_an_order_with_its_deadline() {
    let then = given(with(open_sale(), [hold_placed(1, "alice", &[(0, 2), (1, 1)])]))
        .when(checkout("alice", 1), 10)
        .then(vec![order_placed(1, 1, 7_000)])
        .then_outcome(Outcome::Order(OrderId(1)));
    let s = then.state();
    assert!(s.holds.ended(&HoldId(1)), "a converted hold leaves the table");
    assert_eq!(s.counts.holds[HoldState::Converted(OrderId(1)).kind()], 1);
    assert_eq!(s.orders[&OrderId(1)].expires_at, Timestamp(TTL_MS as i64));
    assert_eq!(
        Vec::from(s.deadlines.clone()),
        vec![(Timestamp(TTL_MS as i64), Deadline::Order(OrderId(1)))],
        "the order takes the hold's deadline entry over"
    );
    assert_eq!(s.available(GENERAL), 7, "inventory stays held");
    assert_eq!(s.buyer_tickets[&buyer("alice")], 3);
}

#[test]
fn checkout_rejections() {
    let held = with(open_sale(), [hold_placed(1, "alice", &[(0, 2)])]);
    given(held.clone())
        .when(checkout("bob", 1), 10)
        .then_rejection(Rejection::NotFound(Entity::Hold));
    given(held.clone())
        .when(checkout("alice", 2), 10)
        .then_rejection(Rejection::NotFound(Entity::Hold));
    // Deadline passed, expiry not yet run: still expired.
    given(held.clone())
        .when(checkout("alice", 1), TTL_MS as i64)
        .then_rejection(Rejection::HoldExpired);
    let expired = with(held.clone(), [Event::HoldExpired { hold: HoldId(1) }]);
    given(expired)
        .when(checkout("alice", 1), 10)
        .then_rejection(Rejection::HoldEnded);
    let released = with(held.clone(), [Event::HoldReleased { hold: HoldId(1) }]);
    given(released)
        .when(checkout("alice", 1), 10)
        .then_rejection(Rejection::HoldEnded);
    let converted = with(held.clone(), [order_placed(1, 1, 2_000)]);
    given(converted)
        .when(checkout("alice", 1), 10)
        .then_rejection(Rejection::HoldEnded);
    let closed = with(
        held,
        [Event::SaleStatusChanged {
            status: SaleStatus::Closed,
        }],
    );
    given(closed)
        .when(checkout("alice", 1), 10)
        .then_rejection(Rejection::SaleNotOpen);
}

#[test]
fn a_retried_checkout_returns_the_original_order() {
    let keyed = |hold| Command::Checkout {
        buyer: buyer("alice"),
        hold: HoldId(hold),
        idempotency_key: Some(key("c")),
    };
    let events = with(
        open_sale(),
        [
            hold_placed(1, "alice", &[(0, 2)]),
            hold_placed(2, "alice", &[(0, 1)]),
            Event::OrderPlaced {
                order: OrderId(1),
                hold: HoldId(1),
                total: money(2_000),
                at: Timestamp(10),
                idempotency_key: Some(key("c")),
            },
        ],
    );
    given(events.clone())
        .when(keyed(1), 20)
        .then(vec![])
        .then_outcome(Outcome::Order(OrderId(1)));
    given(events.clone())
        .when(keyed(2), 20)
        .then_rejection(Rejection::IdempotencyConflict);
    // A key used for a checkout cannot be reused for a hold.
    given(events)
        .when(place_keyed("alice", &[(0, 1)], "c"), 20)
        .then_rejection(Rejection::IdempotencyConflict);
}

// ---------------------------------------------------------------------------------------------
// ConfirmPayment

#[test]
fn payment_issues_one_ticket_per_seat_and_moves_held_to_sold() {
    let expected = Event::OrderPaid {
        order: OrderId(1),
        payment_ref: pay_ref("pay-1"),
        tickets: vec![
            IssuedTicket {
                code: TicketCode(CODE_BASE + 1),
                ticket_type: GENERAL,
            },
            IssuedTicket {
                code: TicketCode(CODE_BASE + 2),
                ticket_type: GENERAL,
            },
            IssuedTicket {
                code: TicketCode(CODE_BASE + 3),
                ticket_type: VIP,
            },
        ],
        reinstated: false,
        at: Timestamp(20),
    };
    let then = given(alice_order())
        .when(pay(1, "pay-1"), 20)
        .then(vec![expected])
        .then_outcome(Outcome::Done);
    let s = then.state();
    assert_eq!((s.quotas[0].held, s.quotas[0].sold), (0, 3));
    assert_eq!((s.ticket_types[1].held, s.ticket_types[1].sold), (0, 1));
    assert_eq!(s.tickets.len(), 3);
    assert_eq!(s.orders[&OrderId(1)].state, OrderState::Paid);
    assert_eq!(s.buyer_tickets[&buyer("alice")], 3);
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn a_repeated_confirmation_is_idempotent_and_another_reference_conflicts() {
    given(alice_paid())
        .when(pay(1, "pay-1"), 30)
        .then(vec![])
        .then_outcome(Outcome::Done);
    given(alice_paid())
        .when(pay(1, "pay-2"), 30)
        .then_rejection(Rejection::Conflict(ConflictReason::OrderPaid));
    given(alice_paid())
        .when(pay(2, "pay-1"), 30)
        .then_rejection(Rejection::NotFound(Entity::Order));
}

#[test]
fn a_late_payment_is_reinstated_when_inventory_allows() {
    let expired = with(
        alice_order(),
        [Event::OrderExpired {
            order: OrderId(1),
            at: Timestamp(TTL_MS as i64),
        }],
    );
    let then = given(expired)
        .when(pay(1, "pay-1"), 100_000)
        .then(vec![Event::OrderPaid {
            order: OrderId(1),
            payment_ref: pay_ref("pay-1"),
            tickets: vec![
                IssuedTicket {
                    code: TicketCode(CODE_BASE + 1),
                    ticket_type: GENERAL,
                },
                IssuedTicket {
                    code: TicketCode(CODE_BASE + 2),
                    ticket_type: GENERAL,
                },
                IssuedTicket {
                    code: TicketCode(CODE_BASE + 3),
                    ticket_type: VIP,
                },
            ],
            reinstated: true,
            at: Timestamp(100_000),
        }]);
    assert_eq!(then.state().buyer_tickets[&buyer("alice")], 3);
    assert_eq!(then.state().quotas[1].sold, 1);
}

#[test]
fn a_late_payment_without_inventory_requires_a_refund() {
    // After expiry Bob took the whole VIP area.
    let events = with(
        alice_order(),
        [
            Event::OrderExpired {
                order: OrderId(1),
                at: Timestamp(TTL_MS as i64),
            },
            hold_placed(2, "bob", &[(1, 2)]),
            hold_placed(3, "bob", &[(1, 1)]),
        ],
    );
    let then = given(events)
        .when(pay(1, "pay-1"), 100_000)
        .then(vec![Event::OrderRefundRequired {
            order: OrderId(1),
            payment_ref: pay_ref("pay-1"),
            at: Timestamp(100_000),
        }]);
    assert_eq!(then.state().orders[&OrderId(1)].state, OrderState::RefundRequired);
    let settled = with(
        alice_order(),
        [
            Event::OrderExpired {
                order: OrderId(1),
                at: Timestamp(TTL_MS as i64),
            },
            Event::OrderRefundRequired {
                order: OrderId(1),
                payment_ref: pay_ref("pay-1"),
                at: Timestamp(100_000),
            },
        ],
    );
    given(settled.clone()).when(pay(1, "pay-1"), 100_001).then(vec![]);
    given(settled).when(pay(1, "pay-2"), 100_001).then_reject("conflict");
}

#[test]
fn a_late_payment_over_the_buyer_limit_requires_a_refund() {
    // After expiry Alice held 4 more: 4 + 3 > 6.
    let events = with(
        alice_order(),
        [
            Event::OrderExpired {
                order: OrderId(1),
                at: Timestamp(TTL_MS as i64),
            },
            hold_placed(2, "alice", &[(0, 4)]),
        ],
    );
    given(events)
        .when(pay(1, "pay-1"), 100_000)
        .then(vec![Event::OrderRefundRequired {
            order: OrderId(1),
            payment_ref: pay_ref("pay-1"),
            at: Timestamp(100_000),
        }]);
}

#[test]
fn payment_of_a_cancelled_or_failed_order_conflicts() {
    let cancelled = with(
        alice_order(),
        [Event::OrderCancelled {
            order: OrderId(1),
            at: Timestamp(20),
        }],
    );
    given(cancelled)
        .when(pay(1, "pay-1"), 20)
        .then_rejection(Rejection::Conflict(ConflictReason::OrderCancelled));
    let failed = with(
        alice_order(),
        [Event::OrderPaymentFailed {
            order: OrderId(1),
            reason: reason("declined"),
        }],
    );
    given(failed)
        .when(pay(1, "pay-1"), 20)
        .then_rejection(Rejection::Conflict(ConflictReason::OrderPaymentFailed));
}

// ---------------------------------------------------------------------------------------------
// OrderPaymentFailed (written by versions that had a FailPayment command), CancelOrder

#[test]
fn a_failed_payment_from_older_logs_returns_inventory() {
    let failed = with(
        alice_order(),
        [Event::OrderPaymentFailed {
            order: OrderId(1),
            reason: reason("declined"),
        }],
    );
    let state = fold(&failed);
    assert_eq!(state.available(GENERAL), 10);
    assert!(state.buyer_tickets.is_empty());
    assert!(state.deadlines.is_empty());
    assert_eq!(state.orders[&OrderId(1)].state, OrderState::PaymentFailed);
}

#[test]
fn the_buyer_or_an_admin_cancels_an_unpaid_order() {
    let cancel = |actor| Command::CancelOrder {
        actor,
        order: OrderId(1),
    };
    let then = given(alice_order())
        .when(cancel(Actor::Buyer(buyer("alice"))), 20)
        .then(vec![Event::OrderCancelled {
            order: OrderId(1),
            at: Timestamp(20),
        }]);
    assert_eq!(then.state().available(VIP), 3);
    given(alice_order())
        .when(cancel(Actor::Admin), 20)
        .then(vec![Event::OrderCancelled {
            order: OrderId(1),
            at: Timestamp(20),
        }]);
    given(alice_order())
        .when(cancel(Actor::Buyer(buyer("bob"))), 20)
        .then_rejection(Rejection::NotFound(Entity::Order));
    given(alice_paid())
        .when(cancel(Actor::Admin), 20)
        .then_rejection(Rejection::Conflict(ConflictReason::OrderNotAwaitingPayment));
}

// ---------------------------------------------------------------------------------------------
// Refund

/// Money of an order paid outside any provider goes back by the organiser's hand.
fn manual_refund(refund: u32, amount: i64, at: i64) -> Event {
    Event::RefundRequested {
        order: OrderId(1),
        refund,
        attempt: None,
        amount: money(amount),
        at: Timestamp(at),
    }
}

fn refund(tickets: Option<Vec<u128>>) -> Command {
    Command::Refund {
        order: OrderId(1),
        tickets: tickets.map(|c| c.into_iter().map(TicketCode).collect()),
    }
}

#[test]
fn refunding_everything_returns_all_tickets() {
    // Paid by the organiser's confirmation: the money goes back by hand (`Manual`).
    let then = given(alice_paid()).when(refund(None), 40).then(vec![
        Event::OrderRefunded {
            order: OrderId(1),
            tickets: vec![TicketCode(1), TicketCode(2), TicketCode(3)],
            amount: money(7_000),
            at: Timestamp(40),
        },
        manual_refund(1, 7_000, 40),
    ]);
    let s = then.state();
    assert_eq!(
        s.orders[&OrderId(1)].refunds[0].state,
        taquilla_domain::RefundState::Manual
    );
    assert_eq!(s.orders[&OrderId(1)].state, OrderState::Refunded);
    assert_eq!(s.orders[&OrderId(1)].refunded, money(7_000));
    assert_eq!((s.quotas[0].sold, s.quotas[1].sold), (0, 0));
    assert!(s.buyer_tickets.is_empty());
}

#[test]
fn partial_refunds_until_nothing_is_left() {
    let then = given(alice_paid()).when(refund(Some(vec![3])), 40).then(vec![
        Event::OrderRefunded {
            order: OrderId(1),
            tickets: vec![TicketCode(3)],
            amount: money(VIP_PRICE),
            at: Timestamp(40),
        },
        manual_refund(1, VIP_PRICE, 40),
    ]);
    assert_eq!(then.state().orders[&OrderId(1)].state, OrderState::Paid);
    assert_eq!(then.state().buyer_tickets[&buyer("alice")], 2);
    assert_eq!(then.state().available(VIP), 3);
    let partly = with(
        alice_paid(),
        [
            Event::OrderRefunded {
                order: OrderId(1),
                tickets: vec![TicketCode(3)],
                amount: money(VIP_PRICE),
                at: Timestamp(40),
            },
            manual_refund(1, VIP_PRICE, 40),
        ],
    );
    given(partly.clone())
        .when(refund(Some(vec![3])), 50)
        .then_rejection(Rejection::Conflict(ConflictReason::TicketRefunded));
    let then = given(partly).when(refund(None), 50).then(vec![
        Event::OrderRefunded {
            order: OrderId(1),
            tickets: vec![TicketCode(1), TicketCode(2)],
            amount: money(2 * GENERAL_PRICE),
            at: Timestamp(50),
        },
        manual_refund(2, 2 * GENERAL_PRICE, 50),
    ]);
    assert_eq!(then.state().orders[&OrderId(1)].state, OrderState::Refunded);
    assert_eq!(then.state().orders[&OrderId(1)].refunded, money(7_000));
}

#[test]
fn refund_rejections() {
    let checked_in = with(
        alice_paid(),
        [Event::TicketCheckedIn {
            code: TicketCode(2),
            at: Timestamp(30),
        }],
    );
    given(checked_in.clone())
        .when(refund(Some(vec![2])), 40)
        .then_rejection(Rejection::AlreadyCheckedIn { at: Timestamp(30) });
    // Refunding "everything" never refunds a used ticket by accident.
    given(checked_in)
        .when(refund(None), 40)
        .then_rejection(Rejection::AlreadyCheckedIn { at: Timestamp(30) });
    given(alice_paid())
        .when(refund(Some(vec![])), 40)
        .then_reject("invalid");
    given(alice_paid())
        .when(refund(Some(vec![1, 1])), 40)
        .then_reject("invalid");
    given(alice_paid())
        .when(refund(Some(vec![99])), 40)
        .then_rejection(Rejection::NotFound(Entity::Ticket));
    given(alice_paid())
        .when(refund(Some((0..1_001).collect())), 40)
        .then_reject("invalid");
    given(alice_order())
        .when(refund(None), 40)
        .then_rejection(Rejection::Conflict(ConflictReason::OrderNotPaid));
    given(open_sale())
        .when(refund(None), 40)
        .then_rejection(Rejection::NotFound(Entity::Order));
    let refunded = with(
        alice_paid(),
        [Event::OrderRefunded {
            order: OrderId(1),
            tickets: vec![TicketCode(1), TicketCode(2), TicketCode(3)],
            amount: money(7_000),
            at: Timestamp(40),
        }],
    );
    given(refunded)
        .when(refund(None), 40)
        .then_rejection(Rejection::Conflict(ConflictReason::OrderNotPaid));
}

#[test]
fn a_ticket_of_another_order_is_not_found() {
    let events = with(
        alice_paid(),
        [
            hold_placed(2, "bob", &[(0, 1)]),
            order_placed(2, 2, GENERAL_PRICE),
            order_paid(2, "pay-2", 10, &[GENERAL]),
        ],
    );
    given(events)
        .when(refund(Some(vec![10])), 40)
        .then_rejection(Rejection::NotFound(Entity::Ticket));
}

#[test]
fn a_refund_required_order_is_settled_whole() {
    let events = with(
        alice_order(),
        [
            Event::OrderExpired {
                order: OrderId(1),
                at: Timestamp(TTL_MS as i64),
            },
            Event::OrderRefundRequired {
                order: OrderId(1),
                payment_ref: pay_ref("pay-1"),
                at: Timestamp(100),
            },
        ],
    );
    let then = given(events.clone())
        .when(refund(None), 200)
        .then(vec![Event::OrderRefunded {
            order: OrderId(1),
            tickets: vec![],
            amount: money(7_000),
            at: Timestamp(200),
        }]);
    assert_eq!(then.state().orders[&OrderId(1)].state, OrderState::Refunded);
    given(events).when(refund(Some(vec![1])), 200).then_reject("invalid");
}

// ---------------------------------------------------------------------------------------------
// CheckIn

#[test]
fn check_in_once() {
    let code = TicketCode(2);
    let then = given(alice_paid())
        .when(Command::CheckIn { code }, 30)
        .then(vec![Event::TicketCheckedIn {
            code,
            at: Timestamp(30),
        }])
        .then_outcome(Outcome::CheckedIn {
            code,
            at: Timestamp(30),
        });
    assert_eq!(then.state().tickets[&code].checked_in_at, Some(Timestamp(30)));
    let checked_in = with(
        alice_paid(),
        [Event::TicketCheckedIn {
            code,
            at: Timestamp(30),
        }],
    );
    given(checked_in)
        .when(Command::CheckIn { code }, 31)
        .then_rejection(Rejection::AlreadyCheckedIn { at: Timestamp(30) });
    given(alice_paid())
        .when(Command::CheckIn { code: TicketCode(77) }, 31)
        .then_rejection(Rejection::NotFound(Entity::Ticket));
    let refunded = with(
        alice_paid(),
        [Event::OrderRefunded {
            order: OrderId(1),
            tickets: vec![code],
            amount: money(GENERAL_PRICE),
            at: Timestamp(25),
        }],
    );
    given(refunded)
        .when(Command::CheckIn { code }, 31)
        .then_rejection(Rejection::Conflict(ConflictReason::TicketRefunded));
}

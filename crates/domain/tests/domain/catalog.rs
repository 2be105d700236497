//! Catalog edits after creation: a ticket type's name, price and per-order maximum, a quota's
//! capacity (never below what it holds and sold), in given/when/then form.

use taquilla_domain::{
    Command, ConflictReason, Entity, Event, HoldId, IssuedTicket, OrderId, Outcome, QuotaId, Rejection, SaleStatus,
    TicketCode, Timestamp,
};

use crate::support::*;

fn edit(name_: Option<&str>, price: Option<i64>, max_per_order: Option<Option<u32>>) -> Command {
    Command::EditTicketType {
        ticket_type: GENERAL,
        name: name_.map(name),
        price: price.map(money),
        max_per_order,
    }
}

fn capacity(quota: u32, capacity: u32) -> Command {
    Command::SetQuotaCapacity {
        quota: QuotaId(quota),
        capacity,
    }
}

#[test]
fn editing_a_ticket_type_changes_only_what_is_named() {
    let then = given(open_sale())
        .when(edit(None, Some(1_500), None), 0)
        .then(vec![Event::TicketTypeEdited {
            id: GENERAL,
            name: name("General"),
            price: money(1_500),
            max_per_order: None,
        }])
        .then_outcome(Outcome::Done);
    let t = &then.state().ticket_types[0];
    assert_eq!((t.price, t.max_per_order), (money(1_500), None));
    given(open_sale())
        .when(edit(Some("Early bird"), None, Some(Some(4))), 0)
        .then(vec![Event::TicketTypeEdited {
            id: GENERAL,
            name: name("Early bird"),
            price: money(GENERAL_PRICE),
            max_per_order: Some(4),
        }]);
    // Nothing to change: no event.
    given(open_sale())
        .when(edit(Some("General"), Some(GENERAL_PRICE), Some(None)), 0)
        .then(vec![])
        .then_outcome(Outcome::Done);
}

#[test]
fn a_new_price_applies_to_later_holds_and_refunds_give_back_what_was_paid() {
    // Alice holds 2 General at 1000 (hold 1); the price becomes 1500; Bob holds 1 (hold 2).
    let events = with(
        open_sale(),
        [
            hold_placed(1, "alice", &[(0, 2)]),
            Event::TicketTypeEdited {
                id: GENERAL,
                name: name("General"),
                price: money(1_500),
                max_per_order: None,
            },
            hold_placed(2, "bob", &[(0, 1)]),
        ],
    );
    let s = fold(&events);
    assert_eq!(s.holds.get(&HoldId(1)).map(|h| h.total), Some(money(2_000)));
    assert_eq!(s.holds.get(&HoldId(2)).map(|h| h.total), Some(money(1_500)));
    assert_eq!(s.ticket_types[0].price_for(HoldId(1)), money(1_000));
    assert_eq!(s.ticket_types[0].price_for(HoldId(2)), money(1_500));
    // Alice's order is paid at 1000 each; refunding one ticket gives back 1000, not 1500.
    let paid = with(
        events,
        [
            order_placed(1, 1, 2_000),
            Event::OrderPaid {
                order: OrderId(1),
                payment_ref: pay_ref("p"),
                tickets: vec![
                    IssuedTicket {
                        code: TicketCode(1),
                        ticket_type: GENERAL,
                    },
                    IssuedTicket {
                        code: TicketCode(2),
                        ticket_type: GENERAL,
                    },
                ],
                reinstated: false,
                at: Timestamp(20),
            },
        ],
    );
    let then = given(paid).when(
        Command::Refund {
            order: OrderId(1),
            tickets: Some(vec![TicketCode(1)]),
        },
        30,
    );
    match &then.events()[0] {
        Event::OrderRefunded { amount, .. } => assert_eq!(*amount, money(1_000)),
        other => panic!("expected OrderRefunded, got {other:?}"),
    }
}

#[test]
fn edit_ticket_type_rejections() {
    given(open_sale())
        .when(
            Command::EditTicketType {
                ticket_type: taquilla_domain::TicketTypeId(9),
                name: None,
                price: None,
                max_per_order: None,
            },
            0,
        )
        .then_rejection(Rejection::NotFound(Entity::TicketType));
    given(open_sale())
        .when(edit(None, None, Some(Some(0))), 0)
        .then_reject("invalid");
    given(open_sale())
        .when(edit(None, None, Some(Some(101))), 0)
        .then_reject("invalid");
    for status in [SaleStatus::Closed, SaleStatus::Archived] {
        let done = with(open_sale(), [Event::SaleStatusChanged { status }]);
        given(done)
            .when(edit(None, Some(1), None), 0)
            .then_rejection(Rejection::Conflict(ConflictReason::SaleClosed));
    }
    // The price history is bounded.
    let mut events = open_sale();
    for i in 0..taquilla_domain::limits::PRICE_CHANGES_MAX as i64 {
        events.push(Event::TicketTypeEdited {
            id: GENERAL,
            name: name("General"),
            price: money(2_000 + i),
            max_per_order: None,
        });
    }
    given(events.clone())
        .when(edit(None, Some(1), None), 0)
        .then_reject("invalid");
    // A rename is not a price change.
    given(events)
        .when(edit(Some("GA"), None, None), 0)
        .then(vec![Event::TicketTypeEdited {
            id: GENERAL,
            name: name("GA"),
            price: money(2_000 + taquilla_domain::limits::PRICE_CHANGES_MAX as i64 - 1),
            max_per_order: None,
        }]);
}

#[test]
fn a_capacity_is_raised_freely_and_cut_only_down_to_what_is_held_and_sold() {
    // Hall (10): alice holds 2 General + 1 VIP and paid them; bob holds 2 General.
    let events = with(alice_paid_events(), [hold_placed(2, "bob", &[(0, 2)])]);
    let s = fold(&events);
    assert_eq!((s.quotas[0].held, s.quotas[0].sold), (2, 3));
    let then = given(events.clone())
        .when(capacity(0, 20), 0)
        .then(vec![Event::QuotaCapacitySet {
            id: QuotaId(0),
            capacity: 20,
        }]);
    assert_eq!(then.state().available(GENERAL), 15);
    given(events.clone())
        .when(capacity(0, 5), 0)
        .then(vec![Event::QuotaCapacitySet {
            id: QuotaId(0),
            capacity: 5,
        }]);
    given(events.clone())
        .when(capacity(0, 4), 0)
        .then_rejection(Rejection::Conflict(ConflictReason::CapacityBelowUsage));
    given(events.clone()).when(capacity(0, 10), 0).then(vec![]);
    given(events.clone())
        .when(capacity(7, 10), 0)
        .then_rejection(Rejection::NotFound(Entity::Quota));
    given(events)
        .when(capacity(0, taquilla_domain::limits::CAPACITY_MAX + 1), 0)
        .then_reject("invalid");
}

/// Alice's order 1 for 2 General + 1 VIP, paid (tickets 1, 2, 3).
fn alice_paid_events() -> Vec<Event> {
    with(
        open_sale(),
        [
            hold_placed(1, "alice", &[(0, 2), (1, 1)]),
            order_placed(1, 1, 7_000),
            order_paid(1, "pay-1", 1, &[GENERAL, GENERAL, VIP]),
        ],
    )
}

#[test]
fn an_organiser_key_answers_a_retry_with_the_first_outcome() {
    let add = |price| Command::Keyed {
        key: key("tt"),
        command: Box::new(Command::AddTicketType {
            name: name("Late"),
            price: money(price),
            max_per_order: None,
        }),
    };
    let then = given(catalog())
        .when(add(700), 5)
        .then(vec![
            Event::TicketTypeAdded {
                id: taquilla_domain::TicketTypeId(3),
                name: name("Late"),
                price: money(700),
                max_per_order: None,
            },
            Event::OrganiserKeyUsed {
                key: key("tt"),
                fingerprint: match &then_events(add(700))[1] {
                    Event::OrganiserKeyUsed { fingerprint, .. } => *fingerprint,
                    other => panic!("{other:?}"),
                },
                outcome: Outcome::TicketTypeAdded(taquilla_domain::TicketTypeId(3)),
                at: Timestamp(5),
            },
        ])
        .then_outcome(Outcome::TicketTypeAdded(taquilla_domain::TicketTypeId(3)));
    let mut events = catalog();
    events.extend(then_events(add(700)));
    given(events.clone())
        .when(add(700), 10)
        .then(vec![])
        .then_outcome(Outcome::TicketTypeAdded(taquilla_domain::TicketTypeId(3)));
    given(events.clone())
        .when(add(800), 10)
        .then_rejection(Rejection::IdempotencyConflict);
    // A buyer's key of the same text is another scope.
    assert!(then.state().idempotency.len() == 1);
    let hold = Command::Keyed {
        key: key("h"),
        command: Box::new(Command::PlaceHold {
            buyer: buyer("alice"),
            items: items(&[(0, 1)]),
            idempotency_key: None,
        }),
    };
    given(open_sale()).when(hold, 0).then_reject("invalid");
    // A rejected keyed command is not remembered: its retry is decided afresh.
    let closed = with(
        catalog(),
        [Event::SaleStatusChanged {
            status: SaleStatus::Closed,
        }],
    );
    given(closed)
        .when(add(700), 0)
        .then_rejection(Rejection::Conflict(ConflictReason::SaleClosed));
}

/// The events `command` decides on the catalog at time 5.
fn then_events(command: Command) -> Vec<Event> {
    given(catalog()).when(command, 5).events().to_vec()
}

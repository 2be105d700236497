//! `evolve` crashes on an event that cannot apply to the state (a bug upstream: `decide`
//! emitted it, or the log contradicts its own history), naming the event and what is missing,
//! instead of skipping it and leaving a state no replay reproduces.

use taquilla_domain::{Event, HoldId, OrderId, TicketCode, Timestamp};

use super::support::*;

#[test]
#[should_panic(expected = "impossible event HoldReleased: hold 9 does not exist")]
fn releasing_a_hold_that_does_not_exist() {
    fold(&with(open_sale(), [Event::HoldReleased { hold: HoldId(9) }]));
}

#[test]
#[should_panic(expected = "impossible event HoldExpired: hold 1 does not exist (or has ended)")]
fn ending_a_hold_twice() {
    fold(&with(
        open_sale(),
        [
            hold_placed(1, "alice", &[(0, 1)]),
            Event::HoldReleased { hold: HoldId(1) },
            Event::HoldExpired { hold: HoldId(1) },
        ],
    ));
}

#[test]
#[should_panic(expected = "impossible event HoldPlaced: hold 1 names missing ticket type 7")]
fn holding_a_ticket_type_that_does_not_exist() {
    fold(&with(open_sale(), [hold_placed(1, "alice", &[(7, 1)])]));
}

#[test]
#[should_panic(expected = "impossible event HoldPlaced: hold 2 but the next hold is 1")]
fn a_hold_out_of_sequence() {
    fold(&with(open_sale(), [hold_placed(2, "alice", &[(0, 1)])]));
}

#[test]
#[should_panic(expected = "impossible event OrderPaid: order 1 paid in state Paid")]
fn paying_an_order_twice() {
    let paid = order_paid(1, "pay-1", 1, &[GENERAL]);
    fold(&with(
        open_sale(),
        [
            hold_placed(1, "alice", &[(0, 1)]),
            order_placed(1, 1, GENERAL_PRICE),
            paid.clone(),
            paid,
        ],
    ));
}

#[test]
#[should_panic(expected = "impossible event OrderCancelled: order 3 does not exist")]
fn cancelling_an_order_that_does_not_exist() {
    fold(&with(
        open_sale(),
        [Event::OrderCancelled {
            order: OrderId(3),
            at: taquilla_domain::Timestamp(1),
        }],
    ));
}

#[test]
#[should_panic(expected = "impossible event TicketCheckedIn: ticket")]
fn checking_in_a_ticket_that_does_not_exist() {
    fold(&with(
        open_sale(),
        [Event::TicketCheckedIn {
            code: TicketCode(42),
            at: Timestamp(1),
        }],
    ));
}

#[test]
#[should_panic(expected = "impossible event SaleCreated: the sale already exists")]
fn creating_the_sale_twice() {
    fold(&with(open_sale(), [sale_created()]));
}

//! Given / when / then for payments: a buyer's request, every report a provider can make in
//! every state that matters (twice, late, out of order), expiry and cancellation of a payment
//! under way, refunds through the provider, free orders.

use taquilla_domain::{
    Actor, Command, ConflictReason, Entity, Event, HoldId, IssuedTicket, OrderId, OrderState, Outcome, PaymentMethod,
    PaymentState, PaymentUpdate, RefundState, RefundUpdate, Rejection, TicketCode, TicketTypeId, Timestamp,
};

use super::support::*;

const ORDER: OrderId = OrderId(1);
/// Alice's order (2 General + 1 VIP) as in `commands.rs`.
const TOTAL: i64 = 2 * GENERAL_PRICE + VIP_PRICE;

fn alice_order() -> Vec<Event> {
    with(
        open_sale(),
        [hold_placed(1, "alice", &[(0, 2), (1, 1)]), order_placed(1, 1, TOTAL)],
    )
}

fn request(method: PaymentMethod) -> Command {
    Command::RequestPayment {
        buyer: buyer("alice"),
        order: ORDER,
        method,
    }
}

fn report(attempt: u32, update: PaymentUpdate) -> Command {
    Command::RecordPayment {
        order: ORDER,
        attempt,
        update,
    }
}

fn requested(attempt: u32, method: PaymentMethod, at: i64) -> Event {
    Event::PaymentRequested {
        order: ORDER,
        attempt,
        method,
        amount: money(TOTAL),
        expires_at: Timestamp(TTL_MS as i64),
        at: Timestamp(at),
        correlation_id: None,
    }
}

fn authorised(attempt: u32, intent: &str, reinstated: bool, at: i64) -> Event {
    Event::PaymentAuthorised {
        order: ORDER,
        attempt,
        intent: pay_ref(intent),
        reinstated,
        at: Timestamp(at),
        correlation_id: None,
    }
}

fn captured(attempt: u32, intent: &str, at: i64) -> Event {
    Event::PaymentCaptured {
        order: ORDER,
        attempt,
        intent: pay_ref(intent),
        at: Timestamp(at),
        correlation_id: None,
    }
}

fn void_required(attempt: u32, at: i64) -> Event {
    Event::PaymentVoidRequired {
        order: ORDER,
        attempt,
        at: Timestamp(at),
        correlation_id: None,
    }
}

fn created(attempt: u32, intent: &str, at: i64) -> Event {
    Event::PaymentCreated {
        order: ORDER,
        attempt,
        intent: pay_ref(intent),
        client_secret: None,
        at: Timestamp(at),
        correlation_id: None,
    }
}

fn tickets_issued(at: i64, intent: &str) -> Event {
    Event::OrderPaid {
        order: ORDER,
        payment_ref: pay_ref(intent),
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
        at: Timestamp(at),
    }
}

fn pending() -> Vec<Event> {
    with(alice_order(), [requested(1, PaymentMethod::Test, 20)])
}

fn capturing() -> Vec<Event> {
    with(pending(), [authorised(1, "pi_1", false, 30)])
}

fn payment_states(then: &Then, order: OrderId) -> Vec<PaymentState> {
    then.state().orders[&order].payments.iter().map(|p| p.state).collect()
}

#[test]
fn a_request_starts_an_attempt_and_a_repeat_answers_it_again() {
    let then = given(alice_order())
        .when(request(PaymentMethod::Test), 20)
        .then(vec![requested(1, PaymentMethod::Test, 20)])
        .then_outcome(Outcome::Payment {
            order: ORDER,
            attempt: 1,
        });
    assert_eq!(then.state().orders[&ORDER].state, OrderState::PaymentPending);
    assert_eq!(then.state().available(GENERAL), 7, "the tickets stay held");
    given(pending())
        .when(request(PaymentMethod::Test), 25)
        .then(vec![])
        .then_outcome(Outcome::Payment {
            order: ORDER,
            attempt: 1,
        });
    given(pending())
        .when(request(PaymentMethod::Stripe), 25)
        .then_rejection(Rejection::Conflict(ConflictReason::PaymentInProgress));
}

#[test]
fn a_request_needs_the_buyer_a_live_order_and_an_offered_method() {
    given(alice_order())
        .when(
            Command::RequestPayment {
                buyer: buyer("bob"),
                order: ORDER,
                method: PaymentMethod::Test,
            },
            20,
        )
        .then_rejection(Rejection::NotFound(Entity::Order));
    given(alice_order())
        .when(request(PaymentMethod::Test), TTL_MS as i64)
        .then_rejection(Rejection::HoldExpired);
    given(alice_order())
        .when(request(PaymentMethod::Offline), 20)
        .then_rejection(Rejection::Conflict(ConflictReason::PaymentMethodNotOffered));
}

#[test]
fn created_then_authorised_then_captured_pays_the_order_once() {
    let then = given(pending())
        .when(
            report(
                1,
                PaymentUpdate::Created {
                    intent: pay_ref("pi_1"),
                    client_secret: None,
                },
            ),
            21,
        )
        .then(vec![created(1, "pi_1", 21)]);
    assert_eq!(payment_states(&then, ORDER), [PaymentState::AwaitingBuyer]);
    let with_intent = with(pending(), [created(1, "pi_1", 21)]);
    given(with_intent.clone())
        .when(
            report(
                1,
                PaymentUpdate::Created {
                    intent: pay_ref("pi_1"),
                    client_secret: None,
                },
            ),
            22,
        )
        .then(vec![]);
    given(with_intent.clone())
        .when(
            report(
                1,
                PaymentUpdate::Authorised {
                    intent: pay_ref("pi_2"),
                },
            ),
            22,
        )
        .then_rejection(Rejection::Conflict(ConflictReason::PaymentIntentMismatch));
    given(with_intent)
        .when(
            report(
                1,
                PaymentUpdate::Authorised {
                    intent: pay_ref("pi_1"),
                },
            ),
            30,
        )
        .then(vec![authorised(1, "pi_1", false, 30)]);
    let then = given(capturing())
        .when(
            report(
                1,
                PaymentUpdate::Captured {
                    intent: pay_ref("pi_1"),
                },
            ),
            40,
        )
        .then(vec![captured(1, "pi_1", 40), tickets_issued(40, "pi_1")]);
    assert_eq!(then.state().orders[&ORDER].state, OrderState::Paid);
    assert_eq!(then.state().quotas[0].sold, 3);
    let paid = with(capturing(), [captured(1, "pi_1", 40), tickets_issued(40, "pi_1")]);
    given(paid)
        .when(
            report(
                1,
                PaymentUpdate::Captured {
                    intent: pay_ref("pi_1"),
                },
            ),
            50,
        )
        .then(vec![]);
}

#[test]
fn a_decline_lets_the_buyer_try_again_until_the_attempts_run_out() {
    let declined = Event::PaymentDeclined {
        order: ORDER,
        attempt: 1,
        reason: reason("card declined"),
        at: Timestamp(25),
        correlation_id: None,
    };
    let then = given(pending())
        .when(
            report(
                1,
                PaymentUpdate::Declined {
                    reason: reason("card declined"),
                },
            ),
            25,
        )
        .then(vec![declined.clone()]);
    assert_eq!(then.state().orders[&ORDER].state, OrderState::AwaitingPayment);
    assert_eq!(then.state().available(GENERAL), 7, "still held until the deadline");
    given(with(pending(), [declined]))
        .when(request(PaymentMethod::Test), 26)
        .then(vec![requested(2, PaymentMethod::Test, 26)]);
    let mut exhausted = alice_order();
    for attempt in 1..=taquilla_domain::limits::PAYMENT_ATTEMPTS_MAX {
        exhausted.push(requested(attempt, PaymentMethod::Test, 20));
        exhausted.push(Event::PaymentFailed {
            order: ORDER,
            attempt,
            reason: reason("refused"),
            at: Timestamp(21),
            correlation_id: None,
        });
    }
    given(exhausted)
        .when(request(PaymentMethod::Test), 30)
        .then_rejection(Rejection::Conflict(ConflictReason::PaymentAttemptsExhausted));
}

#[test]
fn the_deadline_ends_a_payment_under_way_but_not_one_being_captured() {
    let then = given(pending()).when(Command::ExpireDue, TTL_MS as i64).then(vec![
        Event::OrderExpired {
            order: ORDER,
            at: Timestamp(TTL_MS as i64),
        },
        void_required(1, TTL_MS as i64),
    ]);
    assert_eq!(then.state().available(GENERAL), 10);
    assert_eq!(payment_states(&then, ORDER), [PaymentState::VoidRequired]);
    let then = given(capturing())
        .when(Command::ExpireDue, TTL_MS as i64 + 1)
        .then(vec![]);
    assert_eq!(then.state().orders[&ORDER].state, OrderState::PaymentPending);
    assert_eq!(then.state().next_deadline(), None, "a capture has no deadline");
}

#[test]
fn a_refused_capture_leaves_a_void_and_the_deadline_counts_again() {
    let then = given(capturing())
        .when(
            report(
                1,
                PaymentUpdate::Failed {
                    reason: reason("expired authorisation"),
                },
            ),
            70_000,
        )
        .then(vec![void_required(1, 70_000)]);
    assert_eq!(then.state().orders[&ORDER].state, OrderState::AwaitingPayment);
    // Its deadline (60 s) has passed while it was capturing: it is due at once.
    assert_eq!(then.state().next_deadline(), Some(Timestamp(TTL_MS as i64)));
    let after = with(capturing(), [void_required(1, 70_000)]);
    given(after)
        .when(Command::ExpireDue, 70_001)
        .then(vec![Event::OrderExpired {
            order: ORDER,
            at: Timestamp(70_001),
        }]);
}

fn expired_pending() -> Vec<Event> {
    with(
        pending(),
        [
            Event::OrderExpired {
                order: ORDER,
                at: Timestamp(TTL_MS as i64),
            },
            void_required(1, TTL_MS as i64),
        ],
    )
}

#[test]
fn a_late_authorisation_takes_back_free_tickets_and_is_captured() {
    let then = given(expired_pending())
        .when(
            report(
                1,
                PaymentUpdate::Authorised {
                    intent: pay_ref("pi_1"),
                },
            ),
            70_000,
        )
        .then(vec![authorised(1, "pi_1", true, 70_000)]);
    assert_eq!(then.state().orders[&ORDER].state, OrderState::PaymentPending);
    assert_eq!(then.state().available(GENERAL), 7, "held again");
    let reinstated = with(expired_pending(), [authorised(1, "pi_1", true, 70_000)]);
    given(reinstated)
        .when(
            report(
                1,
                PaymentUpdate::Captured {
                    intent: pay_ref("pi_1"),
                },
            ),
            70_100,
        )
        .then(vec![captured(1, "pi_1", 70_100), tickets_issued(70_100, "pi_1")]);
}

#[test]
fn a_late_authorisation_without_tickets_is_voided_not_paid() {
    // After expiry Bob took the whole VIP area.
    let gone = with(
        expired_pending(),
        [hold_placed(2, "bob", &[(1, 2)]), hold_placed(3, "bob", &[(1, 1)])],
    );
    let then = given(gone.clone())
        .when(
            report(
                1,
                PaymentUpdate::Authorised {
                    intent: pay_ref("pi_1"),
                },
            ),
            70_000,
        )
        .then(vec![created(1, "pi_1", 70_000)]);
    assert_eq!(payment_states(&then, ORDER), [PaymentState::VoidRequired]);
    assert_eq!(then.state().orders[&ORDER].state, OrderState::Expired);
    let voided = Event::PaymentVoided {
        order: ORDER,
        attempt: 1,
        at: Timestamp(70_100),
        correlation_id: None,
    };
    given(with(gone.clone(), [created(1, "pi_1", 70_000)]))
        .when(report(1, PaymentUpdate::Voided), 70_100)
        .then(vec![voided.clone()]);
    // The authorisation's report delivered again after the void (out of order): nothing.
    let after_void = given(with(gone, [created(1, "pi_1", 70_000), voided]))
        .when(
            report(
                1,
                PaymentUpdate::Authorised {
                    intent: pay_ref("pi_1"),
                },
            ),
            70_200,
        )
        .then(vec![]);
    assert_eq!(payment_states(&after_void, ORDER), [PaymentState::Voided]);
}

#[test]
fn money_captured_for_an_order_without_tickets_goes_back() {
    let gone = with(
        expired_pending(),
        [hold_placed(2, "bob", &[(1, 2)]), hold_placed(3, "bob", &[(1, 1)])],
    );
    let then = given(gone)
        .when(
            report(
                1,
                PaymentUpdate::Captured {
                    intent: pay_ref("pi_1"),
                },
            ),
            70_000,
        )
        .then(vec![
            captured(1, "pi_1", 70_000),
            Event::RefundRequested {
                order: ORDER,
                refund: 1,
                attempt: Some(1),
                amount: money(TOTAL),
                at: Timestamp(70_000),
            },
        ]);
    let o = &then.state().orders[&ORDER];
    assert_eq!(o.state, OrderState::Expired);
    assert_eq!(o.refunds[0].state, RefundState::Requested);
}

#[test]
fn cancelling_voids_a_payment_under_way_but_not_one_being_captured() {
    let cancel = Command::CancelOrder {
        actor: Actor::Buyer(buyer("alice")),
        order: ORDER,
    };
    let then = given(pending()).when(cancel.clone(), 30).then(vec![
        Event::OrderCancelled {
            order: ORDER,
            at: Timestamp(30),
        },
        void_required(1, 30),
    ]);
    assert_eq!(then.state().available(GENERAL), 10);
    given(capturing())
        .when(cancel, 40)
        .then_rejection(Rejection::Conflict(ConflictReason::PaymentInProgress));
}

#[test]
fn an_offline_payment_keeps_the_tickets_longer_and_a_card_may_replace_it() {
    let mut sale = alice_order();
    sale[0] = Event::SaleCreated {
        name: name("Concert"),
        currency: eur(),
        hold_ttl_ms: TTL_MS,
        max_tickets_per_buyer: Some(LIMIT),
        opens_at: None,
        closes_at: None,
        offline_payment_ttl_ms: Some(3_600_000),
    };
    let offline = Event::PaymentRequested {
        order: ORDER,
        attempt: 1,
        method: PaymentMethod::Offline,
        amount: money(TOTAL),
        expires_at: Timestamp(3_600_020),
        at: Timestamp(20),
        correlation_id: None,
    };
    let then = given(sale.clone())
        .when(request(PaymentMethod::Offline), 20)
        .then(vec![offline.clone()]);
    assert_eq!(then.state().orders[&ORDER].state, OrderState::AwaitingPayment);
    assert_eq!(then.state().next_deadline(), Some(Timestamp(3_600_020)));
    let waiting = with(sale, [offline]);
    given(waiting.clone())
        .when(Command::ExpireDue, TTL_MS as i64)
        .then(vec![]);
    let then = given(waiting.clone())
        .when(
            Command::ConfirmPayment {
                order: ORDER,
                payment_ref: pay_ref("bank-42"),
            },
            90_000,
        )
        .then(vec![tickets_issued(90_000, "bank-42")]);
    assert_eq!(payment_states(&then, ORDER), [PaymentState::Captured]);
    let then = given(waiting).when(request(PaymentMethod::Test), 30).then(vec![
        Event::PaymentVoided {
            order: ORDER,
            attempt: 1,
            at: Timestamp(30),
            correlation_id: None,
        },
        Event::PaymentRequested {
            order: ORDER,
            attempt: 2,
            method: PaymentMethod::Test,
            amount: money(TOTAL),
            expires_at: Timestamp(3_600_020),
            at: Timestamp(30),
            correlation_id: None,
        },
    ]);
    assert_eq!(
        payment_states(&then, ORDER),
        [PaymentState::Voided, PaymentState::Requested]
    );
}

#[test]
fn a_refund_of_a_provider_payment_goes_through_the_provider() {
    let paid = with(capturing(), [captured(1, "pi_1", 40), tickets_issued(40, "pi_1")]);
    let refund_requested = Event::RefundRequested {
        order: ORDER,
        refund: 1,
        attempt: Some(1),
        amount: money(VIP_PRICE),
        at: Timestamp(50),
    };
    let then = given(paid.clone())
        .when(
            Command::Refund {
                order: ORDER,
                tickets: Some(vec![TicketCode(CODE_BASE + 3)]),
            },
            50,
        )
        .then(vec![
            Event::OrderRefunded {
                order: ORDER,
                tickets: vec![TicketCode(CODE_BASE + 3)],
                amount: money(VIP_PRICE),
                at: Timestamp(50),
            },
            refund_requested.clone(),
        ]);
    assert_eq!(then.state().available(VIP), 3);
    let refunding = with(
        paid,
        [
            Event::OrderRefunded {
                order: ORDER,
                tickets: vec![TicketCode(CODE_BASE + 3)],
                amount: money(VIP_PRICE),
                at: Timestamp(50),
            },
            refund_requested,
        ],
    );
    let issued = Command::RecordRefund {
        order: ORDER,
        refund: 1,
        update: RefundUpdate::Issued {
            provider_ref: pay_ref("re_1"),
        },
    };
    let then = given(refunding.clone())
        .when(issued.clone(), 60)
        .then(vec![Event::RefundIssued {
            order: ORDER,
            refund: 1,
            provider_ref: pay_ref("re_1"),
            at: Timestamp(60),
            correlation_id: None,
        }]);
    assert_eq!(then.state().orders[&ORDER].refunds[0].state, RefundState::Issued);
    let issued_event = Event::RefundIssued {
        order: ORDER,
        refund: 1,
        provider_ref: pay_ref("re_1"),
        at: Timestamp(60),
        correlation_id: None,
    };
    given(with(refunding, [issued_event])).when(issued, 70).then(vec![]);
}

#[test]
fn a_free_order_is_paid_at_checkout() {
    // A free ticket type (id 3) in a quota of its own (id 2), before the sale opens.
    let mut events = catalog();
    events.push(Event::TicketTypeAdded {
        id: TicketTypeId(3),
        name: name("Free"),
        price: money(0),
        max_per_order: None,
    });
    events.push(Event::QuotaAdded {
        id: taquilla_domain::QuotaId(2),
        name: name("Free seats"),
        capacity: 5,
        ticket_types: vec![TicketTypeId(3)],
    });
    events.push(Event::SaleStatusChanged {
        status: taquilla_domain::SaleStatus::Open,
    });
    events.push(hold_placed(1, "alice", &[(3, 2)]));
    let then = given(events)
        .when(
            Command::Checkout {
                buyer: buyer("alice"),
                hold: HoldId(1),
                idempotency_key: None,
            },
            10,
        )
        .then(vec![
            order_placed(1, 1, 0),
            Event::OrderPaid {
                order: ORDER,
                payment_ref: pay_ref("free"),
                tickets: vec![
                    IssuedTicket {
                        code: TicketCode(CODE_BASE + 1),
                        ticket_type: TicketTypeId(3),
                    },
                    IssuedTicket {
                        code: TicketCode(CODE_BASE + 2),
                        ticket_type: TicketTypeId(3),
                    },
                ],
                reinstated: false,
                at: Timestamp(10),
            },
        ]);
    assert_eq!(then.state().orders[&ORDER].state, OrderState::Paid);
}

#[test]
fn a_late_decline_does_not_end_a_payment_that_must_be_voided() {
    // Expired with its payment under way: the void is required. The first card's decline,
    // delivered late, changes nothing; the void still happens.
    let then = given(expired_pending())
        .when(
            report(
                1,
                PaymentUpdate::Declined {
                    reason: reason("insufficient_funds"),
                },
            ),
            70_000,
        )
        .then(vec![]);
    assert_eq!(payment_states(&then, ORDER), [PaymentState::VoidRequired]);
}

//! `evolve` for payments and refunds: each attempt's state and history, and what an attempt's
//! end does to its order. As in `evolve.rs`, an event that does not fit the state is a bug
//! and crashes.
//!
//! The order follows its current attempt: a provider attempt makes it `payment_pending` (its
//! tickets stay held); when that attempt ends without being captured (declined, failed,
//! voided, or needing a void) the order awaits payment again, under the same deadline.

use crate::event::Event;
use crate::evolve::{
    Change, Counter, Deadlines, buyer_add, count, find_deadline, impossible, insert_deadline, quantity, set_order_state,
};
use crate::ids::OrderId;
use crate::payment::{Payment, PaymentMethod, PaymentState, PaymentStep, Refund, RefundState};
use crate::state::{Deadline, Order, OrderState, SaleState};
use crate::values::{ClientSecret, CorrelationId, MoneyMinor, PaymentRef, Reason, Timestamp};

/// Folds a payment or refund event (the caller folds every other event).
pub(crate) fn evolve(state: &mut SaleState, event: &Event) {
    match event {
        Event::PaymentRequested {
            order,
            attempt,
            method,
            amount,
            expires_at,
            at,
            correlation_id,
        } => requested(
            state,
            *order,
            *attempt,
            *method,
            *amount,
            *expires_at,
            step(*at, correlation_id),
        ),
        Event::PaymentCreated {
            order,
            attempt,
            intent,
            client_secret,
            at,
            correlation_id,
        } => created(
            state,
            *order,
            *attempt,
            intent,
            client_secret,
            step(*at, correlation_id),
        ),
        Event::PaymentAuthorised {
            order,
            attempt,
            intent,
            reinstated,
            at,
            correlation_id,
        } => authorised(state, *order, *attempt, intent, *reinstated, step(*at, correlation_id)),
        Event::PaymentCaptured {
            order,
            attempt,
            intent,
            at,
            correlation_id,
        } => {
            let p = payment_mut(state, *order, *attempt, "PaymentCaptured");
            p.intent = Some(intent.clone());
            move_to(p, PaymentState::Captured, step(*at, correlation_id), "PaymentCaptured");
        }
        Event::PaymentVoidRequired {
            order,
            attempt,
            at,
            correlation_id,
        } => ended(
            state,
            *order,
            *attempt,
            PaymentState::VoidRequired,
            None,
            step(*at, correlation_id),
        ),
        Event::PaymentVoided {
            order,
            attempt,
            at,
            correlation_id,
        } => ended(
            state,
            *order,
            *attempt,
            PaymentState::Voided,
            None,
            step(*at, correlation_id),
        ),
        Event::PaymentDeclined {
            order,
            attempt,
            reason,
            at,
            correlation_id,
        } => ended(
            state,
            *order,
            *attempt,
            PaymentState::Declined,
            Some(reason),
            step(*at, correlation_id),
        ),
        Event::PaymentFailed {
            order,
            attempt,
            reason,
            at,
            correlation_id,
        } => ended(
            state,
            *order,
            *attempt,
            PaymentState::Failed,
            Some(reason),
            step(*at, correlation_id),
        ),
        _ => evolve_refund(state, event),
    }
}

fn evolve_refund(state: &mut SaleState, event: &Event) {
    match event {
        Event::RefundRequested {
            order,
            refund,
            attempt,
            amount,
            at,
        } => refund_requested(state, *order, *refund, *attempt, *amount, *at),
        Event::RefundIssued {
            order,
            refund,
            provider_ref,
            at,
            ..
        } => {
            let r = refund_mut(state, *order, *refund, "RefundIssued");
            r.state = RefundState::Issued;
            r.provider_ref = Some(provider_ref.clone());
            r.settled_at = Some(*at);
        }
        Event::RefundFailed {
            order,
            refund,
            reason,
            at,
            ..
        } => {
            let r = refund_mut(state, *order, *refund, "RefundFailed");
            r.state = RefundState::Failed;
            r.reason = Some(reason.clone());
            r.settled_at = Some(*at);
        }
        other => impossible!("(payment)", "{other:?} is not a payment or refund event"),
    }
}

fn step(at: Timestamp, correlation_id: &Option<CorrelationId>) -> PaymentStep {
    PaymentStep {
        at,
        state: PaymentState::Requested,
        correlation_id: correlation_id.clone(),
    }
}

fn order_mut<'a>(state: &'a mut SaleState, order: OrderId, event: &'static str) -> &'a mut Order {
    match state.orders.get_mut(&order) {
        Some(o) => o,
        None => impossible!(event, "order {} does not exist", order.0),
    }
}

fn payment_mut<'a>(state: &'a mut SaleState, order: OrderId, attempt: u32, event: &'static str) -> &'a mut Payment {
    let o = order_mut(state, order, event);
    let found = attempt.checked_sub(1).and_then(|i| o.payments.get_mut(i as usize));
    match found {
        Some(p) => p,
        None => impossible!(event, "order {} has no payment attempt {attempt}", order.0),
    }
}

fn refund_mut<'a>(state: &'a mut SaleState, order: OrderId, refund: u32, event: &'static str) -> &'a mut Refund {
    let o = order_mut(state, order, event);
    let found = refund.checked_sub(1).and_then(|i| o.refunds.get_mut(i as usize));
    match found {
        Some(r) if r.state == RefundState::Requested => r,
        Some(r) => impossible!(event, "refund {refund} of order {} is already {:?}", order.0, r.state),
        None => impossible!(event, "order {} has no refund {refund}", order.0),
    }
}

/// Records the step and moves the payment to `to`.
fn move_to(p: &mut Payment, to: PaymentState, mut step: PaymentStep, event: &'static str) {
    if p.state == PaymentState::Captured && to != PaymentState::Captured {
        impossible!(
            event,
            "payment attempt {} was captured and cannot become {to:?}",
            p.attempt
        );
    }
    step.state = to;
    p.state = to;
    p.steps.push(step);
}

#[allow(clippy::too_many_arguments)]
fn requested(
    state: &mut SaleState,
    order: OrderId,
    attempt: u32,
    method: PaymentMethod,
    amount: MoneyMinor,
    expires_at: Timestamp,
    step: PaymentStep,
) {
    let SaleState {
        orders,
        deadlines,
        counts,
        ..
    } = state;
    let Some(o) = orders.get_mut(&order) else {
        impossible!("PaymentRequested", "order {} does not exist", order.0);
    };
    if o.state != OrderState::AwaitingPayment {
        impossible!(
            "PaymentRequested",
            "order {} is {:?}, not awaiting payment",
            order.0,
            o.state
        );
    }
    if attempt as usize != o.payments.len() + 1 {
        impossible!(
            "PaymentRequested",
            "order {} attempt {attempt} after {} attempts",
            order.0,
            o.payments.len()
        );
    }
    if o.payments.last().is_some_and(|p| p.state.is_open()) {
        impossible!("PaymentRequested", "order {} has a payment under way", order.0);
    }
    let first = if method.is_provider() {
        PaymentState::Requested
    } else {
        PaymentState::AwaitingOffline
    };
    let mut payment = Payment {
        attempt,
        method,
        amount,
        state: first,
        intent: None,
        client_secret: None,
        reason: None,
        steps: Vec::with_capacity(4),
    };
    move_to(&mut payment, first, step, "PaymentRequested");
    o.payments.push(payment);
    if method.is_provider() {
        set_order_state(counts, o, OrderState::PaymentPending);
    }
    if expires_at != o.expires_at {
        move_deadline(deadlines, order, o.expires_at, expires_at);
        o.expires_at = expires_at;
    }
}

fn created(
    state: &mut SaleState,
    order: OrderId,
    attempt: u32,
    intent: &PaymentRef,
    client_secret: &Option<ClientSecret>,
    step: PaymentStep,
) {
    let p = payment_mut(state, order, attempt, "PaymentCreated");
    if p.intent.is_some() {
        impossible!(
            "PaymentCreated",
            "order {} attempt {attempt} was created before",
            order.0
        );
    }
    p.intent = Some(intent.clone());
    p.client_secret = client_secret.clone();
    if p.state == PaymentState::Requested {
        move_to(p, PaymentState::AwaitingBuyer, step, "PaymentCreated");
    }
}

/// Authorised while the order holds its tickets; `reinstated`: the expired order takes its
/// tickets (and the buyer's count) back, then holds them for the capture.
fn authorised(
    state: &mut SaleState,
    order: OrderId,
    attempt: u32,
    intent: &PaymentRef,
    reinstated: bool,
    step: PaymentStep,
) {
    let SaleState {
        orders,
        ticket_types,
        quotas,
        buyer_tickets,
        counts,
        ..
    } = state;
    let Some(o) = orders.get_mut(&order) else {
        impossible!("PaymentAuthorised", "order {} does not exist", order.0);
    };
    match (o.state, reinstated) {
        (OrderState::PaymentPending, false) => {}
        (OrderState::Expired, true) => {
            count(
                ticket_types,
                quotas,
                &o.items,
                Counter::Held,
                Change::Add,
                "PaymentAuthorised",
            );
            buyer_add(buyer_tickets, &o.buyer, quantity(&o.items));
            set_order_state(counts, o, OrderState::PaymentPending);
        }
        (from, _) => impossible!(
            "PaymentAuthorised",
            "order {} in state {from:?} (reinstated: {reinstated})",
            order.0
        ),
    }
    let Some(p) = o.payments.last_mut().filter(|p| p.attempt == attempt) else {
        impossible!(
            "PaymentAuthorised",
            "attempt {attempt} is not order {}'s current one",
            order.0
        );
    };
    p.intent = Some(intent.clone());
    move_to(p, PaymentState::Authorised, step, "PaymentAuthorised");
}

/// An attempt ends without a capture (or needs its authorisation voided): an order pending on
/// it awaits payment again, and its deadline counts again.
fn ended(
    state: &mut SaleState,
    order: OrderId,
    attempt: u32,
    to: PaymentState,
    reason: Option<&Reason>,
    step: PaymentStep,
) {
    let event = match to {
        PaymentState::VoidRequired => "PaymentVoidRequired",
        PaymentState::Voided => "PaymentVoided",
        PaymentState::Declined => "PaymentDeclined",
        _ => "PaymentFailed",
    };
    let SaleState {
        orders,
        deadlines,
        counts,
        ..
    } = state;
    let Some(o) = orders.get_mut(&order) else {
        impossible!(event, "order {} does not exist", order.0);
    };
    let current = o.payments.last().map(|p| p.attempt) == Some(attempt);
    let Some(p) = attempt.checked_sub(1).and_then(|i| o.payments.get_mut(i as usize)) else {
        impossible!(event, "order {} has no payment attempt {attempt}", order.0);
    };
    if reason.is_some() {
        p.reason = reason.cloned();
    }
    move_to(p, to, step, event);
    if current && o.state == OrderState::PaymentPending {
        set_order_state(counts, o, OrderState::AwaitingPayment);
        ensure_deadline(deadlines, o.expires_at, order);
    }
}

fn refund_requested(
    state: &mut SaleState,
    order: OrderId,
    refund: u32,
    attempt: Option<u32>,
    amount: MoneyMinor,
    at: Timestamp,
) {
    let o = order_mut(state, order, "RefundRequested");
    if refund as usize != o.refunds.len() + 1 {
        impossible!(
            "RefundRequested",
            "order {} refund {refund} after {}",
            order.0,
            o.refunds.len()
        );
    }
    if let Some(a) = attempt
        && !o
            .payments
            .iter()
            .any(|p| p.attempt == a && p.state == PaymentState::Captured)
    {
        impossible!(
            "RefundRequested",
            "order {} refunds attempt {a}, which was not captured",
            order.0
        );
    }
    o.refunds.push(Refund {
        number: refund,
        amount,
        attempt,
        state: if attempt.is_some() {
            RefundState::Requested
        } else {
            RefundState::Manual
        },
        provider_ref: None,
        reason: None,
        requested_at: at,
        settled_at: None,
    });
}

/// An order paid with an offline payment under way: that payment is the one captured.
pub(crate) fn offline_paid(o: &mut Order, at: Timestamp) {
    if let Some(p) = o
        .payments
        .last_mut()
        .filter(|p| p.state == PaymentState::AwaitingOffline)
    {
        move_to(
            p,
            PaymentState::Captured,
            PaymentStep {
                at,
                state: PaymentState::Captured,
                correlation_id: None,
            },
            "OrderPaid",
        );
    }
}

/// The order's deadline entry at `at`, added back if it left the index (it is pruned while
/// the order's payment is being captured).
fn ensure_deadline(deadlines: &mut Deadlines, at: Timestamp, order: OrderId) {
    if find_deadline(deadlines, at, Deadline::Order(order)).is_none() {
        insert_deadline(deadlines, at, Deadline::Order(order));
    }
}

/// The order's deadline entry moves from `from` to `to` (each order has one entry at most).
fn move_deadline(deadlines: &mut Deadlines, order: OrderId, from: Timestamp, to: Timestamp) {
    if let Some(i) = find_deadline(deadlines, from, Deadline::Order(order)) {
        deadlines.remove(i);
    }
    insert_deadline(deadlines, to, Deadline::Order(order));
}

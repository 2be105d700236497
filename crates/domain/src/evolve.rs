//! `evolve`: folds one event into the state. It runs on every accepted command and on every
//! replayed event (millions per second on restart), so it trusts the event (`decide` checked
//! it), does no validation beyond `debug_assert!`, and never panics: an event that does not
//! fit the state (impossible for a sequence `decide` produced) is skipped in release builds.
//!
//! It maintains every derived counter: held/sold per ticket type and per quota, tickets per
//! buyer, the deadline index, and remembered idempotent requests.

use std::collections::VecDeque;

type BuyerTickets = hashbrown::HashMap<BuyerId, u32, rustc_hash::FxBuildHasher>;

use crate::command::{Item, SaleStatus};
use crate::event::Event;
use crate::fingerprint;
use crate::ids::{HoldId, OrderId};
use crate::state::{
    Hold, HoldState, IdempotencyEntry, Order, OrderState, Outcome, Quota, Sale, SaleState, Ticket, TicketType,
};
use crate::values::{BuyerId, MoneyMinor, Timestamp};

pub fn evolve(state: &mut SaleState, event: &Event) {
    apply_event(state, event);
    prune_deadlines(state);
}

fn apply_event(state: &mut SaleState, event: &Event) {
    match event {
        Event::SaleCreated {
            name,
            currency,
            hold_ttl_ms,
            max_tickets_per_buyer,
            opens_at,
            closes_at,
        } => {
            debug_assert!(state.sale.is_none(), "sale created twice");
            state.sale = Some(Sale {
                name: name.clone(),
                currency: *currency,
                status: SaleStatus::Draft,
                hold_ttl_ms: *hold_ttl_ms,
                max_tickets_per_buyer: *max_tickets_per_buyer,
                opens_at: *opens_at,
                closes_at: *closes_at,
            });
        }
        Event::TicketTypeAdded {
            id,
            name,
            price,
            max_per_order,
        } => {
            debug_assert_eq!(id.0 as usize, state.ticket_types.len(), "ticket type ids are indices");
            state.ticket_types.push(TicketType {
                id: *id,
                name: name.clone(),
                price: *price,
                max_per_order: *max_per_order,
                quotas: Default::default(),
                held: 0,
                sold: 0,
            });
        }
        Event::QuotaAdded {
            id,
            name,
            capacity,
            ticket_types,
        } => {
            debug_assert_eq!(id.0 as usize, state.quotas.len(), "quota ids are indices");
            let (mut held, mut sold) = (0u32, 0u32);
            for tt in ticket_types {
                if let Some(t) = state.ticket_types.get_mut(tt.0 as usize) {
                    held = held.saturating_add(t.held);
                    sold = sold.saturating_add(t.sold);
                    t.quotas.push(*id);
                }
            }
            state.quotas.push(Quota {
                id: *id,
                name: name.clone(),
                capacity: *capacity,
                ticket_types: ticket_types.clone(),
                held,
                sold,
            });
        }
        Event::SaleStatusChanged { status } => {
            if let Some(sale) = state.sale.as_mut() {
                sale.status = *status;
            }
            if *status == SaleStatus::Open {
                state.reserve_for_capacity();
            }
        }
        Event::HoldPlaced {
            hold,
            buyer,
            items,
            expires_at,
            idempotency_key,
        } => {
            let mut total = MoneyMinor::ZERO;
            let mut quantity = 0;
            for item in items {
                if let Some(tt) = state.ticket_types.get(item.ticket_type.0 as usize) {
                    total = total.plus(tt.price.times(item.quantity.get()));
                }
                quantity += item.quantity.get();
            }
            count(
                &mut state.ticket_types,
                &mut state.quotas,
                items,
                Counter::Held,
                Change::Add,
            );
            buyer_add(&mut state.buyer_tickets, buyer, quantity);
            insert_deadline(&mut state.deadlines, *expires_at, *hold);
            if let Some(key) = idempotency_key {
                let entry = IdempotencyEntry {
                    fingerprint: fingerprint::place_hold(items),
                    outcome: Outcome::Hold(*hold),
                };
                state.idempotency.insert((buyer.clone(), key.clone()), entry);
            }
            state.holds.push(
                *hold,
                Hold {
                    id: *hold,
                    buyer: buyer.clone(),
                    items: items.clone(),
                    total,
                    expires_at: *expires_at,
                    state: HoldState::Active,
                },
            );
        }
        Event::HoldReleased { hold } => end_hold(state, *hold, HoldState::Released),
        Event::HoldExpired { hold } => end_hold(state, *hold, HoldState::Expired),
        Event::OrderPlaced {
            order,
            hold,
            total,
            at,
            idempotency_key,
        } => {
            let Some(h) = state.holds.get_mut(hold) else {
                debug_assert!(false, "order placed from unknown hold");
                return;
            };
            debug_assert_eq!(h.state, HoldState::Active, "only an active hold is checked out");
            h.state = HoldState::Converted(*order);
            // The order inherits the hold's deadline: its entry in `deadlines` now expires it.
            if let Some(key) = idempotency_key {
                let entry = IdempotencyEntry {
                    fingerprint: fingerprint::checkout(*hold),
                    outcome: Outcome::Order(*order),
                };
                state.idempotency.insert((h.buyer.clone(), key.clone()), entry);
            }
            state.orders.push(
                *order,
                Order {
                    id: *order,
                    hold: *hold,
                    buyer: h.buyer.clone(),
                    items: h.items.clone(),
                    total: *total,
                    created_at: *at,
                    expires_at: h.expires_at,
                    state: OrderState::AwaitingPayment,
                    payment_ref: None,
                    paid_at: None,
                    tickets: Vec::new(),
                    refunded: MoneyMinor::ZERO,
                },
            );
        }
        Event::OrderPaid {
            order,
            payment_ref,
            tickets,
            reinstated,
            at,
        } => {
            let SaleState {
                orders,
                ticket_types,
                quotas,
                buyer_tickets,
                tickets: all,
                ..
            } = state;
            let Some(o) = orders.get_mut(order) else {
                debug_assert!(false, "unknown order paid");
                return;
            };
            match o.state {
                OrderState::AwaitingPayment => {
                    debug_assert!(!reinstated);
                    count(ticket_types, quotas, &o.items, Counter::Held, Change::Remove);
                    count(ticket_types, quotas, &o.items, Counter::Sold, Change::Add);
                }
                OrderState::Expired => {
                    // Reinstated: its inventory and the buyer's count went back on expiry.
                    debug_assert!(reinstated);
                    count(ticket_types, quotas, &o.items, Counter::Sold, Change::Add);
                    buyer_add(buyer_tickets, &o.buyer, quantity(&o.items));
                }
                _ => {
                    debug_assert!(false, "order paid in state {:?}", o.state);
                    return;
                }
            }
            o.state = OrderState::Paid;
            o.payment_ref = Some(payment_ref.clone());
            o.paid_at = Some(*at);
            o.tickets = tickets.iter().map(|t| t.code).collect();
            all.reserve(tickets.len());
            for t in tickets {
                all.insert(
                    t.code,
                    Ticket {
                        code: t.code,
                        order: *order,
                        ticket_type: t.ticket_type,
                        refunded: false,
                        checked_in_at: None,
                    },
                );
            }
        }
        Event::OrderPaymentFailed { order, .. } => end_order(state, *order, OrderState::PaymentFailed),
        Event::OrderExpired { order } => end_order(state, *order, OrderState::Expired),
        Event::OrderCancelled { order } => end_order(state, *order, OrderState::Cancelled),
        Event::OrderRefundRequired { order, payment_ref, at } => {
            if let Some(o) = state.orders.get_mut(order) {
                debug_assert_eq!(o.state, OrderState::Expired);
                o.state = OrderState::RefundRequired;
                o.payment_ref = Some(payment_ref.clone());
                o.paid_at = Some(*at);
            }
        }
        Event::OrderRefunded {
            order, tickets, amount, ..
        } => {
            let SaleState {
                orders,
                ticket_types,
                quotas,
                buyer_tickets,
                tickets: all,
                ..
            } = state;
            let Some(o) = orders.get_mut(order) else {
                debug_assert!(false, "unknown order refunded");
                return;
            };
            o.refunded = o.refunded.plus(*amount);
            if o.state == OrderState::RefundRequired {
                o.state = OrderState::Refunded;
                return;
            }
            debug_assert_eq!(o.state, OrderState::Paid);
            let mut returned = 0;
            for code in tickets {
                let Some(t) = all.get_mut(code) else { continue };
                if t.refunded {
                    continue;
                }
                t.refunded = true;
                returned += 1;
                if let Some(tt) = ticket_types.get_mut(t.ticket_type.0 as usize) {
                    tt.sold = sub(tt.sold, 1);
                    for q in &tt.quotas {
                        if let Some(quota) = quotas.get_mut(q.0 as usize) {
                            quota.sold = sub(quota.sold, 1);
                        }
                    }
                }
            }
            buyer_sub(buyer_tickets, &o.buyer, returned);
            if o.tickets.iter().all(|c| all.get(c).is_none_or(|t| t.refunded)) {
                o.state = OrderState::Refunded;
            }
        }
        Event::TicketCheckedIn { code, at } => {
            if let Some(t) = state.tickets.get_mut(code) {
                debug_assert!(t.checked_in_at.is_none());
                t.checked_in_at.get_or_insert(*at);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Counter {
    Held,
    Sold,
}

#[derive(Clone, Copy)]
enum Change {
    Add,
    Remove,
}

/// Adds or removes `items` on a counter of their ticket types and of every quota of each type.
fn count(types: &mut [TicketType], quotas: &mut [Quota], items: &[Item], counter: Counter, change: Change) {
    for item in items {
        let Some(tt) = types.get_mut(item.ticket_type.0 as usize) else {
            continue;
        };
        let n = item.quantity.get();
        apply(counter_of(&mut tt.held, &mut tt.sold, counter), n, change);
        for q in &tt.quotas {
            if let Some(quota) = quotas.get_mut(q.0 as usize) {
                apply(counter_of(&mut quota.held, &mut quota.sold, counter), n, change);
            }
        }
    }
}

fn counter_of<'a>(held: &'a mut u32, sold: &'a mut u32, counter: Counter) -> &'a mut u32 {
    match counter {
        Counter::Held => held,
        Counter::Sold => sold,
    }
}

fn apply(value: &mut u32, n: u32, change: Change) {
    *value = match change {
        Change::Add => value.saturating_add(n),
        Change::Remove => sub(*value, n),
    };
}

/// Counters never go below zero on a sequence `decide` produced; saturate in release builds
/// rather than wrap around to four billion free tickets.
fn sub(value: u32, n: u32) -> u32 {
    debug_assert!(value >= n, "counter underflow: {value} - {n}");
    value.saturating_sub(n)
}

fn quantity(items: &[Item]) -> u32 {
    items.iter().map(|i| i.quantity.get()).sum()
}

fn buyer_add(buyer_tickets: &mut BuyerTickets, buyer: &BuyerId, n: u32) {
    if n == 0 {
        return;
    }
    *buyer_tickets.entry_ref(buyer).or_insert(0) += n;
}

/// Buyers back at zero are removed so that the map holds only buyers with tickets.
fn buyer_sub(buyer_tickets: &mut BuyerTickets, buyer: &BuyerId, n: u32) {
    if n == 0 {
        return;
    }
    let Some(count) = buyer_tickets.get_mut(buyer) else {
        debug_assert!(false, "buyer without tickets gives some back");
        return;
    };
    *count = sub(*count, n);
    if *count == 0 {
        buyer_tickets.remove(buyer);
    }
}

/// A hold released or expired: its inventory and the buyer's count go back, its deadline goes.
fn end_hold(state: &mut SaleState, hold: HoldId, to: HoldState) {
    let SaleState {
        holds,
        ticket_types,
        quotas,
        buyer_tickets,
        ..
    } = state;
    let Some(h) = holds.get_mut(&hold) else {
        debug_assert!(false, "unknown hold ended");
        return;
    };
    if h.state != HoldState::Active {
        debug_assert!(false, "hold {hold:?} ended twice");
        return;
    }
    h.state = to;
    count(ticket_types, quotas, &h.items, Counter::Held, Change::Remove);
    buyer_sub(buyer_tickets, &h.buyer, quantity(&h.items));
}

/// An unpaid order failed, expired or was cancelled: like `end_hold`.
fn end_order(state: &mut SaleState, order: OrderId, to: OrderState) {
    let SaleState {
        orders,
        ticket_types,
        quotas,
        buyer_tickets,
        ..
    } = state;
    let Some(o) = orders.get_mut(&order) else {
        debug_assert!(false, "unknown order ended");
        return;
    };
    if o.state != OrderState::AwaitingPayment {
        debug_assert!(false, "order {order:?} ended in state {:?}", o.state);
        return;
    }
    o.state = to;
    count(ticket_types, quotas, &o.items, Counter::Held, Change::Remove);
    buyer_sub(buyer_tickets, &o.buyer, quantity(&o.items));
}

/// Keeps `deadlines` sorted by time. Holds arrive in time order, so this is a push to the
/// back unless the clock stepped backwards.
fn insert_deadline(deadlines: &mut VecDeque<(Timestamp, HoldId)>, at: Timestamp, hold: HoldId) {
    match deadlines.back() {
        Some(&(last, _)) if last > at => {
            let i = deadlines.partition_point(|&(t, _)| t <= at);
            deadlines.insert(i, (at, hold));
        }
        _ => deadlines.push_back((at, hold)),
    }
}

/// Drops stale entries (holds released, orders paid or ended) from the front, so that the
/// front entry, if any, is live and `next_deadline` is exact.
fn prune_deadlines(state: &mut SaleState) {
    while let Some(&(at, hold)) = state.deadlines.front() {
        if state.live_deadline(at, hold).is_some() {
            break;
        }
        state.deadlines.pop_front();
    }
}

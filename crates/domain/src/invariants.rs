//! Whole-state invariants, recomputed from scratch. `evolve` keeps counters incrementally for
//! speed; this module recomputes them the slow, obvious way and compares. Used by the property
//! tests after every step, and by the engine after recovery (it is O(state), not for the hot
//! path).

use rustc_hash::FxHashMap;

use crate::command::Item;
use crate::payment::PaymentState;
use crate::state::{Hold, HoldState, Order, OrderState, SaleState};
use crate::values::BuyerId;

/// The first invariant found broken, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

macro_rules! broken {
    ($($arg:tt)+) => {
        return Err(Violation(format!($($arg)+)))
    };
}

/// What the holds, orders and tickets say the counters must be.
struct Recount<'a> {
    /// Per ticket type: tickets in active holds and unpaid orders.
    held: Vec<u64>,
    /// Per ticket type: tickets paid and not refunded.
    sold: Vec<u64>,
    buyers: FxHashMap<&'a BuyerId, u64>,
    /// Active holds and unpaid orders: each must have exactly one live deadline entry.
    pending_deadlines: usize,
}

/// Checks every invariant; the error names the first one broken.
pub fn check(state: &SaleState) -> Result<(), Violation> {
    let n_types = state.ticket_types.len();
    let mut recount = Recount {
        held: vec![0; n_types],
        sold: vec![0; n_types],
        buyers: FxHashMap::default(),
        pending_deadlines: 0,
    };
    recount.buyers.reserve(state.buyer_tickets.len());
    check_catalog(state)?;
    for (id, h) in state.holds.iter() {
        check_hold(state, id.0, h, &mut recount)?;
    }
    for (id, o) in state.orders.iter() {
        check_order(state, id.0, o, &mut recount)?;
    }
    check_tickets(state, &mut recount)?;
    check_type_counters(state, &recount)?;
    check_quotas(state)?;
    check_buyers(state, &mut recount)?;
    check_deadline_index(state, recount.pending_deadlines)
}

/// Ticket types and quotas are stored at their id, and agree on which covers which.
fn check_catalog(state: &SaleState) -> Result<(), Violation> {
    if state.sale.is_none() && (!state.ticket_types.is_empty() || !state.quotas.is_empty() || !state.holds.is_empty()) {
        broken!("catalog or holds without a sale");
    }
    for (i, tt) in state.ticket_types.iter().enumerate() {
        if tt.id.0 as usize != i {
            broken!("ticket type at index {i} has id {}", tt.id.0);
        }
        for q in &tt.quotas {
            let Some(quota) = state.quotas.get(q.0 as usize) else {
                broken!("ticket type {i} names missing quota {}", q.0);
            };
            if !quota.ticket_types.contains(&tt.id) {
                broken!("ticket type {i} and quota {} disagree on membership", q.0);
            }
        }
    }
    Ok(())
}

fn check_hold<'a>(state: &SaleState, id: u64, h: &'a Hold, recount: &mut Recount<'a>) -> Result<(), Violation> {
    if h.id.0 != id {
        broken!("hold {} stored as hold {id}", h.id.0);
    }
    for item in &h.items {
        if item.ticket_type.0 as usize >= state.ticket_types.len() {
            broken!("hold {id} names missing ticket type {}", item.ticket_type.0);
        }
    }
    match h.state {
        HoldState::Active => {
            add_items(&mut recount.held, &h.items);
            *recount.buyers.entry(&h.buyer).or_default() += u64::from(h.quantity());
            recount.pending_deadlines += 1;
        }
        HoldState::Converted(order) => match state.orders.get(&order) {
            Some(o) if o.hold == h.id => {}
            _ => broken!("hold {id} converted into missing order {}", order.0),
        },
        HoldState::Released | HoldState::Expired => {}
    }
    Ok(())
}

fn check_order<'a>(state: &SaleState, id: u64, o: &'a Order, recount: &mut Recount<'a>) -> Result<(), Violation> {
    if o.id.0 != id {
        broken!("order {} stored as order {id}", o.id.0);
    }
    match state.holds.get(&o.hold) {
        Some(h) if h.state == HoldState::Converted(o.id) && h.buyer == o.buyer && h.items == o.items => {}
        _ => broken!("order {id} does not match its hold {}", o.hold.0),
    }
    let quantity: u32 = o.items.iter().map(|i| i.quantity.get()).sum();
    check_payments(id, o)?;
    match o.state {
        OrderState::AwaitingPayment | OrderState::PaymentPending => {
            add_items(&mut recount.held, &o.items);
            *recount.buyers.entry(&o.buyer).or_default() += u64::from(quantity);
            if !o.is_capturing() {
                recount.pending_deadlines += 1;
            }
        }
        // A refunded order either had all its tickets refunded or settled a late payment
        // with none issued.
        OrderState::Paid | OrderState::Refunded if !o.tickets.is_empty() && o.tickets.len() != quantity as usize => {
            broken!("order {id} has {} tickets for {quantity} items", o.tickets.len());
        }
        _ => {}
    }
    if o.state == OrderState::Paid && o.tickets.is_empty() {
        broken!("paid order {id} without tickets");
    }
    Ok(())
}

/// Attempts and refunds are numbered 1, 2, 3…; only the last attempt may be under way, and an
/// order is pending exactly on a provider attempt under way (one awaiting payment has none, or
/// an offline one). A refund of a provider payment names a captured attempt.
fn check_payments(id: u64, o: &Order) -> Result<(), Violation> {
    for (i, p) in o.payments.iter().enumerate() {
        if p.attempt as usize != i + 1 {
            broken!("order {id}: payment attempt {} stored as attempt {}", p.attempt, i + 1);
        }
        if p.state.is_open() && i + 1 != o.payments.len() {
            broken!("order {id}: attempt {} is {:?} but is not the last", p.attempt, p.state);
        }
        if p.steps.last().map(|s| s.state) != Some(p.state) {
            broken!("order {id}: attempt {}'s history does not end in its state", p.attempt);
        }
    }
    let open = o.payment().filter(|p| p.state.is_open());
    let consistent = match o.state {
        OrderState::PaymentPending => open.is_some_and(|p| p.method.is_provider()),
        OrderState::AwaitingPayment => open.is_none_or(|p| p.state == PaymentState::AwaitingOffline),
        _ => open.is_none(),
    };
    if !consistent {
        broken!("order {id} is {:?} with payment {:?}", o.state, open.map(|p| p.state));
    }
    for (i, r) in o.refunds.iter().enumerate() {
        if r.number as usize != i + 1 {
            broken!("order {id}: refund {} stored as refund {}", r.number, i + 1);
        }
        let captured = |a: u32| {
            o.payments
                .iter()
                .any(|p| p.attempt == a && p.state == PaymentState::Captured)
        };
        if r.attempt.is_some_and(|a| !captured(a)) {
            broken!("order {id}: refund {} of an attempt that was not captured", r.number);
        }
    }
    Ok(())
}

/// Every ticket belongs to a paid (or refunded) order that lists it; valid ones count as sold.
fn check_tickets<'a>(state: &'a SaleState, recount: &mut Recount<'a>) -> Result<(), Violation> {
    for (code, t) in &state.tickets {
        if t.code != *code {
            broken!("ticket {code} stored under another code");
        }
        let Some(o) = state.orders.get(&t.order) else {
            broken!("ticket {code} of missing order {}", t.order.0);
        };
        if !matches!(o.state, OrderState::Paid | OrderState::Refunded) || !o.tickets.contains(code) {
            broken!("ticket {code} not listed by a paid order");
        }
        if o.state == OrderState::Refunded && !t.refunded {
            broken!("ticket {code} valid in refunded order {}", o.id.0);
        }
        let Some(s) = recount.sold.get_mut(t.ticket_type.0 as usize) else {
            broken!("ticket {code} of missing ticket type {}", t.ticket_type.0);
        };
        if !t.refunded {
            *s += 1;
            *recount.buyers.entry(&o.buyer).or_default() += 1;
        }
    }
    Ok(())
}

fn check_type_counters(state: &SaleState, recount: &Recount<'_>) -> Result<(), Violation> {
    for (i, tt) in state.ticket_types.iter().enumerate() {
        let (held, sold) = (recount.held[i], recount.sold[i]);
        if u64::from(tt.held) != held || u64::from(tt.sold) != sold {
            broken!(
                "ticket type {i}: held {} sold {}, recomputed held {held} sold {sold}",
                tt.held,
                tt.sold
            );
        }
    }
    Ok(())
}

/// Each quota's counters are the sums over its types, within its capacity (no oversell).
fn check_quotas(state: &SaleState) -> Result<(), Violation> {
    for (i, q) in state.quotas.iter().enumerate() {
        if q.id.0 as usize != i {
            broken!("quota at index {i} has id {}", q.id.0);
        }
        let (mut qh, mut qs) = (0u64, 0u64);
        for tt in &q.ticket_types {
            let Some(t) = state.ticket_types.get(tt.0 as usize) else {
                broken!("quota {i} names missing ticket type {}", tt.0);
            };
            if !t.quotas.contains(&q.id) {
                broken!("quota {i} and ticket type {} disagree on membership", tt.0);
            }
            qh += u64::from(t.held);
            qs += u64::from(t.sold);
        }
        if u64::from(q.held) != qh || u64::from(q.sold) != qs {
            broken!("quota {i}: held {} sold {}, sums over types {qh} {qs}", q.held, q.sold);
        }
        if qh + qs > u64::from(q.capacity) {
            broken!("quota {i} oversold: held {qh} + sold {qs} > capacity {}", q.capacity);
        }
    }
    Ok(())
}

/// The per-buyer counts are exactly the recomputed ones, each within the sale's limit.
fn check_buyers(state: &SaleState, recount: &mut Recount<'_>) -> Result<(), Violation> {
    let limit = state.sale.as_ref().and_then(|s| s.max_tickets_per_buyer);
    recount.buyers.retain(|_, n| *n > 0);
    if recount.buyers.len() != state.buyer_tickets.len() {
        broken!(
            "{} buyers counted, {} recomputed",
            state.buyer_tickets.len(),
            recount.buyers.len()
        );
    }
    for (buyer, &n) in &recount.buyers {
        let counted = state.buyer_tickets.get(*buyer).copied().unwrap_or(0);
        if u64::from(counted) != n {
            broken!("buyer {}: counted {counted}, recomputed {n}", buyer.as_str());
        }
        if limit.is_some_and(|l| n > u64::from(l)) {
            broken!("buyer {} over the limit with {n}", buyer.as_str());
        }
    }
    Ok(())
}

/// The deadline index is sorted by time, names each hold at most once, has a live entry at
/// its front, and its live entries are exactly the active holds and unpaid orders: every live
/// entry is one of them (`live_deadline` checks that), no hold twice, and as many as there are.
fn check_deadline_index(state: &SaleState, pending: usize) -> Result<(), Violation> {
    let index = &state.deadlines;
    if index.iter().zip(index.iter().skip(1)).any(|(a, b)| a.0 > b.0) {
        broken!("deadline index not sorted by time");
    }
    if let Some(&(at, hold)) = index.front()
        && state.live_deadline(at, hold).is_none()
    {
        broken!("stale deadline of hold {} at the front", hold.0);
    }
    let mut seen = vec![false; state.holds.len()];
    let mut live = 0usize;
    for &(at, hold) in index {
        let Some(slot) = hold.0.checked_sub(1).and_then(|i| seen.get_mut(i as usize)) else {
            broken!("deadline of missing hold {}", hold.0);
        };
        if std::mem::replace(slot, true) {
            broken!("hold {} indexed twice", hold.0);
        }
        if state.live_deadline(at, hold).is_some() {
            live += 1;
        }
    }
    if live != pending {
        broken!("deadlines: {live} live in the index, {pending} active holds and unpaid orders");
    }
    Ok(())
}

fn add_items(counts: &mut [u64], items: &[Item]) {
    for item in items {
        if let Some(c) = counts.get_mut(item.ticket_type.0 as usize) {
            *c += u64::from(item.quantity.get());
        }
    }
}

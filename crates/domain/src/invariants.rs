//! Whole-state invariants, recomputed from scratch. `evolve` keeps counters incrementally for
//! speed; this module recomputes them the slow, obvious way and compares. Used by the property
//! tests after every step, and by the engine after recovery (it is O(state), not for the hot
//! path).

use rustc_hash::{FxHashMap, FxHashSet};

use crate::command::Item;
use crate::payment::PaymentState;
use crate::state::{Counts, Hold, HoldState, Order, OrderState, SaleState};
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
    /// What `SaleState::counts` must say of what the tables still show.
    counts: Counts,
}

/// Checks every invariant; the error names the first one broken.
pub fn check(state: &SaleState) -> Result<(), Violation> {
    let n_types = state.ticket_types.len();
    let mut recount = Recount {
        held: vec![0; n_types],
        sold: vec![0; n_types],
        buyers: FxHashMap::default(),
        pending_deadlines: 0,
        counts: Counts::default(),
    };
    recount.buyers.reserve(state.buyer_tickets.len());
    check_catalog(state)?;
    for (id, h) in state.holds.iter() {
        check_hold(state, id.0, h, &mut recount)?;
    }
    if state.holds.len() as u64 > state.holds.placed() {
        broken!("{} live holds of {} placed", state.holds.len(), state.holds.placed());
    }
    for (id, o) in state.orders.iter() {
        check_order(state, id.0, o, &mut recount)?;
    }
    check_tickets(state, &mut recount)?;
    check_counts(state, &recount.counts)?;
    check_type_counters(state, &recount)?;
    check_quotas(state)?;
    check_buyers(state, &mut recount)?;
    if let Some(room) = &state.room
        && let Err(e) = room.check()
    {
        broken!("waiting room: {e}");
    }
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
    // Ended holds leave the table.
    if h.state != HoldState::Active {
        broken!("hold {id} is kept but {:?}", h.state);
    }
    add_items(&mut recount.held, &h.items);
    *recount.buyers.entry(&h.buyer).or_default() += u64::from(h.quantity());
    recount.pending_deadlines += 1;
    recount.counts.holds[HoldState::Active.kind()] += 1;
    Ok(())
}

fn check_order<'a>(state: &SaleState, id: u64, o: &'a Order, recount: &mut Recount<'a>) -> Result<(), Violation> {
    if o.id.0 != id {
        broken!("order {} stored as order {id}", o.id.0);
    }
    // Its hold ended on checkout.
    if !state.holds.ended(&o.hold) {
        broken!("order {id}'s hold {} is still kept, or never was", o.hold.0);
    }
    recount.counts.orders[o.state as usize] += 1;
    recount.counts.holds[HoldState::Converted(o.id).kind()] += 1;
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
            recount.counts.tickets_valid += 1;
            recount.counts.tickets_checked_in += u64::from(t.checked_in_at.is_some());
        }
    }
    Ok(())
}

/// The incremental counts equal what the tables show: active holds and holds converted (one
/// per order), orders by state, tickets; released and expired holds, gone from the table, make
/// up the rest of the holds ever placed.
fn check_counts(state: &SaleState, recount: &Counts) -> Result<(), Violation> {
    let c = &state.counts;
    let (active, converted) = (HoldState::Active.kind(), HoldState::Converted(crate::OrderId(0)).kind());
    for i in [active, converted] {
        if c.holds[i] != recount.holds[i] {
            broken!(
                "holds of kind {i}: counted {}, recomputed {}",
                c.holds[i],
                recount.holds[i]
            );
        }
    }
    if c.holds.iter().sum::<u64>() != state.holds.placed() {
        broken!(
            "hold counts {:?} do not add up to {} placed",
            c.holds,
            state.holds.placed()
        );
    }
    if c.orders != recount.orders {
        broken!(
            "orders by state: counted {:?}, recomputed {:?}",
            c.orders,
            recount.orders
        );
    }
    if (c.tickets_valid, c.tickets_checked_in) != (recount.tickets_valid, recount.tickets_checked_in) {
        broken!(
            "tickets valid/checked in: counted {}/{}, recomputed {}/{}",
            c.tickets_valid,
            c.tickets_checked_in,
            recount.tickets_valid,
            recount.tickets_checked_in
        );
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

/// The deadline index is sorted by time, names each hold or order at most once, has a live
/// entry at its front, its live entries are exactly the active holds and unpaid orders (every
/// live entry is one of them, `live_deadline` checks that, none twice, and as many as there
/// are), and its stale entries are bounded (compaction).
fn check_deadline_index(state: &SaleState, pending: usize) -> Result<(), Violation> {
    let index = &state.deadlines;
    if index.iter().zip(index.iter().skip(1)).any(|(a, b)| a.0 > b.0) {
        broken!("deadline index not sorted by time");
    }
    if let Some(&(at, what)) = index.front()
        && state.live_deadline(at, what).is_none()
    {
        broken!("stale deadline of {what:?} at the front");
    }
    let mut seen = FxHashSet::default();
    let mut live = 0usize;
    for &(at, what) in index {
        if !seen.insert(what) {
            broken!("{what:?} indexed twice");
        }
        if state.live_deadline(at, what).is_some() {
            live += 1;
        }
    }
    if live != pending {
        broken!("deadlines: {live} live in the index, {pending} active holds and unpaid orders");
    }
    let bound = crate::evolve::deadlines_bound(state);
    if index.len() > bound {
        broken!("deadline index of {} entries, beyond its bound {bound}", index.len());
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

//! Whole-state invariants, recomputed from scratch. `evolve` keeps counters incrementally for
//! speed; this module recomputes them the slow, obvious way and compares. Used by the property
//! tests after every step, and by the engine after recovery (it is O(state), not for the hot
//! path).

use rustc_hash::FxHashMap;

use crate::state::{HoldState, OrderState, SaleState};
use crate::values::BuyerId;

/// Checks every invariant; the error names the first one broken.
pub fn check(state: &SaleState) -> Result<(), String> {
    let n_types = state.ticket_types.len();
    let mut held = vec![0u64; n_types];
    let mut sold = vec![0u64; n_types];
    let mut buyers: FxHashMap<&BuyerId, u64> = FxHashMap::default();
    buyers.reserve(state.buyer_tickets.len());
    // Active holds and unpaid orders: each must have exactly one live deadline entry.
    let mut pending_deadlines = 0usize;

    if state.sale.is_none() && (!state.ticket_types.is_empty() || !state.quotas.is_empty() || !state.holds.is_empty()) {
        return Err("catalog or holds without a sale".into());
    }

    for (i, tt) in state.ticket_types.iter().enumerate() {
        if tt.id.0 as usize != i {
            return Err(format!("ticket type at index {i} has id {}", tt.id.0));
        }
        for q in &tt.quotas {
            let Some(quota) = state.quotas.get(q.0 as usize) else {
                return Err(format!("ticket type {i} names missing quota {}", q.0));
            };
            if !quota.ticket_types.contains(&tt.id) {
                return Err(format!("ticket type {i} and quota {} disagree on membership", q.0));
            }
        }
    }

    for (id, h) in state.holds.iter() {
        if h.id != id {
            return Err(format!("hold {} stored as hold {}", h.id.0, id.0));
        }
        for item in &h.items {
            if item.ticket_type.0 as usize >= n_types {
                return Err(format!(
                    "hold {} names missing ticket type {}",
                    id.0, item.ticket_type.0
                ));
            }
        }
        match h.state {
            HoldState::Active => {
                add_items(&mut held, &h.items);
                *buyers.entry(&h.buyer).or_default() += u64::from(h.quantity());
                pending_deadlines += 1;
            }
            HoldState::Converted(order) => match state.orders.get(&order) {
                Some(o) if o.hold == h.id => {}
                _ => {
                    return Err(format!("hold {} converted into missing order {}", id.0, order.0));
                }
            },
            HoldState::Released | HoldState::Expired => {}
        }
    }
    for (id, o) in state.orders.iter() {
        if o.id != id {
            return Err(format!("order {} stored as order {}", o.id.0, id.0));
        }
        match state.holds.get(&o.hold) {
            Some(h) if h.state == HoldState::Converted(o.id) && h.buyer == o.buyer && h.items == o.items => {}
            _ => {
                return Err(format!("order {} does not match its hold {}", id.0, o.hold.0));
            }
        }
        let quantity: u32 = o.items.iter().map(|i| i.quantity.get()).sum();
        match o.state {
            OrderState::AwaitingPayment => {
                add_items(&mut held, &o.items);
                *buyers.entry(&o.buyer).or_default() += u64::from(quantity);
                pending_deadlines += 1;
            }
            // A refunded order either had all its tickets refunded or settled a late payment
            // with none issued.
            OrderState::Paid | OrderState::Refunded
                if !o.tickets.is_empty() && o.tickets.len() != quantity as usize =>
            {
                return Err(format!(
                    "order {} has {} tickets for {quantity} items",
                    id.0,
                    o.tickets.len()
                ));
            }
            _ => {}
        }
        if o.state == OrderState::Paid && o.tickets.is_empty() {
            return Err(format!("paid order {} without tickets", id.0));
        }
    }
    for (code, t) in &state.tickets {
        if t.code != *code {
            return Err(format!("ticket {code} stored under another code"));
        }
        let Some(o) = state.orders.get(&t.order) else {
            return Err(format!("ticket {code} of missing order {}", t.order.0));
        };
        if !matches!(o.state, OrderState::Paid | OrderState::Refunded) || !o.tickets.contains(code) {
            return Err(format!("ticket {code} not listed by a paid order"));
        }
        if o.state == OrderState::Refunded && !t.refunded {
            return Err(format!("ticket {code} valid in refunded order {}", o.id.0));
        }
        let Some(s) = sold.get_mut(t.ticket_type.0 as usize) else {
            return Err(format!("ticket {code} of missing ticket type {}", t.ticket_type.0));
        };
        if !t.refunded {
            *s += 1;
            *buyers.entry(&o.buyer).or_default() += 1;
        }
    }

    for (i, tt) in state.ticket_types.iter().enumerate() {
        if u64::from(tt.held) != held[i] || u64::from(tt.sold) != sold[i] {
            return Err(format!(
                "ticket type {i}: held {} sold {}, recomputed held {} sold {}",
                tt.held, tt.sold, held[i], sold[i]
            ));
        }
    }

    for (i, q) in state.quotas.iter().enumerate() {
        if q.id.0 as usize != i {
            return Err(format!("quota at index {i} has id {}", q.id.0));
        }
        let (mut qh, mut qs) = (0u64, 0u64);
        for tt in &q.ticket_types {
            let Some(t) = state.ticket_types.get(tt.0 as usize) else {
                return Err(format!("quota {i} names missing ticket type {}", tt.0));
            };
            if !t.quotas.contains(&q.id) {
                return Err(format!("quota {i} and ticket type {} disagree on membership", tt.0));
            }
            qh += u64::from(t.held);
            qs += u64::from(t.sold);
        }
        if u64::from(q.held) != qh || u64::from(q.sold) != qs {
            return Err(format!(
                "quota {i}: held {} sold {}, sums over types {qh} {qs}",
                q.held, q.sold
            ));
        }
        if qh + qs > u64::from(q.capacity) {
            return Err(format!(
                "quota {i} oversold: held {qh} + sold {qs} > capacity {}",
                q.capacity
            ));
        }
    }

    let limit = state.sale.as_ref().and_then(|s| s.max_tickets_per_buyer);
    buyers.retain(|_, n| *n > 0);
    if buyers.len() != state.buyer_tickets.len() {
        return Err(format!(
            "{} buyers counted, {} recomputed",
            state.buyer_tickets.len(),
            buyers.len()
        ));
    }
    for (buyer, &n) in &buyers {
        let counted = state.buyer_tickets.get(*buyer).copied().unwrap_or(0);
        if u64::from(counted) != n {
            return Err(format!("buyer {}: counted {counted}, recomputed {n}", buyer.as_str()));
        }
        if limit.is_some_and(|l| n > u64::from(l)) {
            return Err(format!("buyer {} over the limit with {n}", buyer.as_str()));
        }
    }

    check_deadline_index(state, pending_deadlines)
}

/// The deadline index is sorted by time, names each hold at most once, has a live entry at
/// its front, and its live entries are exactly the active holds and unpaid orders: every live
/// entry is one of them (`live_deadline` checks that), no hold twice, and as many as there are.
fn check_deadline_index(state: &SaleState, pending: usize) -> Result<(), String> {
    let index = &state.deadlines;
    if index.iter().zip(index.iter().skip(1)).any(|(a, b)| a.0 > b.0) {
        return Err("deadline index not sorted by time".into());
    }
    if let Some(&(at, hold)) = index.front()
        && state.live_deadline(at, hold).is_none()
    {
        return Err(format!("stale deadline of hold {} at the front", hold.0));
    }
    let mut seen = vec![false; state.holds.len()];
    let mut live = 0usize;
    for &(at, hold) in index {
        let Some(slot) = hold.0.checked_sub(1).and_then(|i| seen.get_mut(i as usize)) else {
            return Err(format!("deadline of missing hold {}", hold.0));
        };
        if std::mem::replace(slot, true) {
            return Err(format!("hold {} indexed twice", hold.0));
        }
        if state.live_deadline(at, hold).is_some() {
            live += 1;
        }
    }
    if live != pending {
        return Err(format!(
            "deadlines: {live} live in the index, {pending} active holds and unpaid orders"
        ));
    }
    Ok(())
}

fn add_items(counts: &mut [u64], items: &[crate::command::Item]) {
    for item in items {
        if let Some(c) = counts.get_mut(item.ticket_type.0 as usize) {
            *c += u64::from(item.quantity.get());
        }
    }
}

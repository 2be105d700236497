//! `evolve`: folds one event into the state, with one function per event. It runs on every
//! accepted command and on every replayed event (millions per second on restart), so it does
//! not re-validate what `decide` checked; it only looks up what the event names and checks
//! that the state is the one the event presumes (cheap integer compares).
//!
//! **An impossible event is a bug, and `evolve` crashes on it.** An event that does not fit
//! the state (a hold that does not exist, an order paid twice, a counter going below zero)
//! means either that `decide` emitted what `evolve` cannot apply or that the log contradicts
//! its own history. Skipping it would leave a state that no replay reproduces and whose
//! counters (no oversell) can no longer be trusted, so `evolve` panics with a message naming
//! the event and what was missing. The engine turns that panic into a stopped engine (on a
//! shard) or a recovery error (at start).
//!
//! It maintains every derived counter: held/sold per ticket type and per quota, tickets per
//! buyer, holds, orders and tickets by state (`Counts`), the deadline index, and remembered
//! idempotent requests.
//!
//! **Ended holds leave.** A hold released, expired or checked out is removed from the hold
//! table here, deterministically, so replay rebuilds the same table; its deadline entry goes
//! stale (or, on checkout, becomes its order's), and the index is compacted when stale entries
//! pile up. Orders stay: they are money records (see `SaleState::orders`).

use std::collections::VecDeque;

type BuyerTickets = hashbrown::HashMap<BuyerId, u32, rustc_hash::FxBuildHasher>;

use crate::command::{Item, Items, SaleStatus};
use crate::event::{Event, IssuedTicket};
use crate::fingerprint;
use crate::ids::{HoldId, OrderId, QuotaId, TicketCode, TicketTypeId};
use crate::limits;
use crate::state::{
    Counts, Deadline, Hold, HoldState, IdempotencyEntry, Order, OrderState, Outcome, Quota, Sale, SaleState, Ticket,
    TicketType,
};
use crate::values::{BuyerId, IdempotencyKey, MoneyMinor, Name, PaymentRef, Quantity, Timestamp};

/// Folds `event` into `state`. Panics on an event that cannot apply to `state` (see the
/// module docs): that is a bug upstream, never an input error.
pub fn evolve(state: &mut SaleState, event: &Event) {
    match event {
        Event::SaleCreated {
            name,
            currency,
            hold_ttl_ms,
            max_tickets_per_buyer,
            opens_at,
            closes_at,
            offline_payment_ttl_ms,
        } => sale_created(
            state,
            Sale {
                name: name.clone(),
                currency: *currency,
                status: SaleStatus::Draft,
                hold_ttl_ms: *hold_ttl_ms,
                max_tickets_per_buyer: *max_tickets_per_buyer,
                opens_at: *opens_at,
                closes_at: *closes_at,
                offline_payment_ttl_ms: *offline_payment_ttl_ms,
            },
        ),
        Event::TicketTypeAdded {
            id,
            name,
            price,
            max_per_order,
        } => ticket_type_added(state, *id, name, *price, *max_per_order),
        Event::QuotaAdded {
            id,
            name,
            capacity,
            ticket_types,
        } => quota_added(state, *id, name, *capacity, ticket_types),
        Event::SaleStatusChanged { status } => sale_status_changed(state, *status),
        Event::TicketTypeEdited {
            id,
            name,
            price,
            max_per_order,
        } => ticket_type_edited(state, *id, name, *price, *max_per_order),
        Event::QuotaCapacitySet { id, capacity } => quota_capacity_set(state, *id, *capacity),
        Event::OrganiserKeyUsed {
            key,
            fingerprint,
            outcome,
            at,
        } => {
            let entry = IdempotencyEntry {
                fingerprint: *fingerprint,
                outcome: *outcome,
                at: *at,
            };
            state.idempotency.remember(&BuyerId::organiser(), key, entry);
        }
        Event::HoldPlaced {
            hold,
            buyer,
            items,
            expires_at,
            idempotency_key,
        } => hold_placed(state, *hold, buyer, items, *expires_at, idempotency_key.as_ref()),
        Event::HoldReleased { hold } => end_hold(state, *hold, HoldState::Released, "HoldReleased"),
        Event::HoldExpired { hold } => end_hold(state, *hold, HoldState::Expired, "HoldExpired"),
        Event::OrderPlaced {
            order,
            hold,
            total,
            at,
            idempotency_key,
        } => order_placed(state, *order, *hold, *total, *at, idempotency_key.as_ref()),
        Event::OrderPaid {
            order,
            payment_ref,
            tickets,
            reinstated,
            at,
        } => order_paid(state, *order, payment_ref, tickets, *reinstated, *at),
        Event::OrderPaymentFailed { order, .. } => {
            end_order(state, *order, OrderState::PaymentFailed, "OrderPaymentFailed")
        }
        Event::OrderExpired { order, .. } => end_order(state, *order, OrderState::Expired, "OrderExpired"),
        Event::OrderCancelled { order, .. } => end_order(state, *order, OrderState::Cancelled, "OrderCancelled"),
        Event::OrderRefundRequired { order, payment_ref, at } => order_refund_required(state, *order, payment_ref, *at),
        Event::OrderRefunded {
            order, tickets, amount, ..
        } => order_refunded(state, *order, tickets, *amount),
        Event::TicketCheckedIn { code, at } => ticket_checked_in(state, *code, *at),
        Event::RoomConfigured { config, seed } => {
            state.room = Some(Box::new(crate::room::Room::new(*config, *seed)));
        }
        Event::BuyerJoined { buyer, .. } => room_mut(state, "BuyerJoined").join(buyer),
        Event::BuyerLeft { buyer, .. } => room_mut(state, "BuyerLeft").leave(buyer),
        Event::PrequeueShuffled { .. } => room_mut(state, "PrequeueShuffled").shuffle(),
        Event::BuyersAdmitted { count, at } => room_mut(state, "BuyersAdmitted").admit(*count, *at),
        Event::AdmissionsExpired { count, .. } => room_mut(state, "AdmissionsExpired").expire(*count),
        Event::AdmissionUsed { buyer } => room_mut(state, "AdmissionUsed").used(buyer),
        payment => crate::evolve_payment::evolve(state, payment),
    }
    prune_deadlines(state);
}

fn room_mut<'a>(state: &'a mut SaleState, event: &'static str) -> &'a mut crate::room::Room {
    match state.room.as_deref_mut() {
        Some(room) => room,
        None => impossible!(event, "the sale has no waiting room"),
    }
}

/// Stops at an event that cannot be applied: `impossible!("HoldReleased", "hold {} ...", h)`.
macro_rules! impossible {
    ($event:expr, $($what:tt)+) => {
        $crate::evolve::impossible_event($event, format_args!($($what)+))
    };
}
pub(crate) use impossible;

#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn impossible_event(event: &str, what: std::fmt::Arguments<'_>) -> ! {
    panic!("evolve: impossible event {event}: {what}")
}

fn sale_created(state: &mut SaleState, sale: Sale) {
    if state.sale.is_some() {
        impossible!("SaleCreated", "the sale already exists");
    }
    state.sale = Some(sale);
}

fn ticket_type_added(
    state: &mut SaleState,
    id: TicketTypeId,
    name: &Name,
    price: MoneyMinor,
    max_per_order: Option<u32>,
) {
    if id.0 as usize != state.ticket_types.len() {
        impossible!(
            "TicketTypeAdded",
            "ticket type {} but the next id is {}",
            id.0,
            state.ticket_types.len()
        );
    }
    state.ticket_types.push(TicketType {
        id,
        name: name.clone(),
        price,
        max_per_order,
        earlier_prices: Vec::new(),
        quotas: Default::default(),
        held: 0,
        sold: 0,
    });
}

/// The new quota starts with what its ticket types already hold and sold.
fn quota_added(state: &mut SaleState, id: QuotaId, name: &Name, capacity: u32, ticket_types: &[TicketTypeId]) {
    if id.0 as usize != state.quotas.len() {
        impossible!("QuotaAdded", "quota {} but the next id is {}", id.0, state.quotas.len());
    }
    let (mut held, mut sold) = (0u32, 0u32);
    for tt in ticket_types {
        let Some(t) = state.ticket_types.get_mut(tt.0 as usize) else {
            impossible!("QuotaAdded", "quota {} names missing ticket type {}", id.0, tt.0);
        };
        held = held.saturating_add(t.held);
        sold = sold.saturating_add(t.sold);
        t.quotas.push(id);
    }
    state.quotas.push(Quota {
        id,
        name: name.clone(),
        capacity,
        ticket_types: ticket_types.to_vec(),
        held,
        sold,
    });
}

/// A new price applies to holds placed from now on: the one it replaces is remembered for the
/// holds placed before (`TicketType::price_for`).
fn ticket_type_edited(
    state: &mut SaleState,
    id: TicketTypeId,
    name: &Name,
    price: MoneyMinor,
    max_per_order: Option<u32>,
) {
    let next_hold = state.holds.next_id();
    let Some(t) = state.ticket_types.get_mut(id.0 as usize) else {
        impossible!("TicketTypeEdited", "no ticket type {}", id.0);
    };
    if price != t.price {
        t.earlier_prices.push((next_hold, t.price));
        t.price = price;
    }
    t.name = name.clone();
    t.max_per_order = max_per_order;
}

fn quota_capacity_set(state: &mut SaleState, id: QuotaId, capacity: u32) {
    let Some(q) = state.quotas.get_mut(id.0 as usize) else {
        impossible!("QuotaCapacitySet", "no quota {}", id.0);
    };
    if u64::from(q.held) + u64::from(q.sold) > u64::from(capacity) {
        impossible!(
            "QuotaCapacitySet",
            "quota {} holds {} and sold {}, more than the capacity {capacity}",
            id.0,
            q.held,
            q.sold
        );
    }
    q.capacity = capacity;
}

fn sale_status_changed(state: &mut SaleState, status: SaleStatus) {
    let Some(sale) = state.sale.as_mut() else {
        impossible!("SaleStatusChanged", "no sale to change to {}", status.as_str());
    };
    sale.status = status;
    if status == SaleStatus::Open {
        state.reserve_for_capacity();
    }
}

/// The hot path (with `decide`'s `place_hold`): one lookup per line, counters, the buyer's
/// count, the deadline, the hold.
fn hold_placed(
    state: &mut SaleState,
    hold: HoldId,
    buyer: &BuyerId,
    items: &Items,
    expires_at: Timestamp,
    idempotency_key: Option<&IdempotencyKey>,
) {
    if hold != state.holds.next_id() {
        impossible!(
            "HoldPlaced",
            "hold {} but the next hold is {}",
            hold.0,
            state.holds.next_id().0
        );
    }
    let mut total = MoneyMinor::ZERO;
    for item in items {
        let Some(tt) = state.ticket_types.get(item.ticket_type.0 as usize) else {
            impossible!(
                "HoldPlaced",
                "hold {} names missing ticket type {}",
                hold.0,
                item.ticket_type.0
            );
        };
        total = total.plus(tt.price.times(item.quantity.get()));
    }
    count(
        &mut state.ticket_types,
        &mut state.quotas,
        items,
        Counter::Held,
        Change::Add,
        "HoldPlaced",
    );
    buyer_add(&mut state.buyer_tickets, buyer, quantity(items));
    if let Some(room) = state.room.as_deref_mut() {
        room.hold_placed(buyer, quantity(items));
    }
    insert_deadline(&mut state.deadlines, expires_at, Deadline::Hold(hold));
    state.counts.holds[HoldState::Active.kind()] += 1;
    if let Some(key) = idempotency_key {
        // Placed at `expires_at - ttl`: the event carries only the deadline.
        let ttl_ms = state.sale.as_ref().map_or(0, |s| s.hold_ttl_ms);
        let entry = IdempotencyEntry {
            fingerprint: fingerprint::place_hold(items),
            outcome: Outcome::Hold(hold),
            at: Timestamp(expires_at.0.saturating_sub_unsigned(ttl_ms)),
        };
        state.idempotency.remember(buyer, key, entry);
    }
    state.holds.push(
        hold,
        Hold {
            id: hold,
            buyer: buyer.clone(),
            items: items.clone(),
            total,
            expires_at,
            state: HoldState::Active,
        },
    );
}

/// Checkout: the hold becomes an order. The order inherits the hold's deadline entry.
fn order_placed(
    state: &mut SaleState,
    order: OrderId,
    hold: HoldId,
    total: MoneyMinor,
    at: Timestamp,
    idempotency_key: Option<&IdempotencyKey>,
) {
    if order != state.orders.next_id() {
        impossible!(
            "OrderPlaced",
            "order {} but the next order is {}",
            order.0,
            state.orders.next_id().0
        );
    }
    // The hold ends here: its order carries its buyer, items and deadline on.
    let Some(h) = state.holds.remove(&hold) else {
        impossible!("OrderPlaced", "order {} from missing hold {}", order.0, hold.0);
    };
    if h.state != HoldState::Active {
        impossible!(
            "OrderPlaced",
            "order {} from hold {} in state {:?}",
            order.0,
            hold.0,
            h.state
        );
    }
    hand_deadline_to_order(&mut state.deadlines, h.expires_at, hold, order);
    let counts = &mut state.counts;
    counts.holds[HoldState::Active.kind()] -= 1;
    counts.holds[HoldState::Converted(order).kind()] += 1;
    counts.orders[OrderState::AwaitingPayment as usize] += 1;
    if let Some(key) = idempotency_key {
        let entry = IdempotencyEntry {
            fingerprint: fingerprint::checkout(hold),
            outcome: Outcome::Order(order),
            at,
        };
        state.idempotency.remember(&h.buyer, key, entry);
    }
    state.orders.push(
        order,
        Order {
            id: order,
            hold,
            buyer: h.buyer,
            items: h.items,
            total,
            created_at: at,
            expires_at: h.expires_at,
            state: OrderState::AwaitingPayment,
            payment_ref: None,
            paid_at: None,
            tickets: Vec::new(),
            refunded: MoneyMinor::ZERO,
            payments: Vec::new(),
            refunds: Vec::new(),
        },
    );
}

/// Tickets issued: held becomes sold, or (reinstated after expiry) sold is taken again.
fn order_paid(
    state: &mut SaleState,
    order: OrderId,
    payment_ref: &PaymentRef,
    tickets: &[IssuedTicket],
    reinstated: bool,
    at: Timestamp,
) {
    let SaleState {
        orders,
        ticket_types,
        quotas,
        buyer_tickets,
        tickets: all,
        counts,
        ..
    } = state;
    let Some(o) = orders.get_mut(&order) else {
        impossible!("OrderPaid", "order {} does not exist", order.0);
    };
    if tickets.len() != quantity(&o.items) as usize {
        impossible!(
            "OrderPaid",
            "order {} issues {} tickets for {} items",
            order.0,
            tickets.len(),
            quantity(&o.items)
        );
    }
    match (o.state, reinstated) {
        (OrderState::AwaitingPayment | OrderState::PaymentPending, false) => {
            count(
                ticket_types,
                quotas,
                &o.items,
                Counter::Held,
                Change::Remove,
                "OrderPaid",
            );
            count(ticket_types, quotas, &o.items, Counter::Sold, Change::Add, "OrderPaid");
        }
        // Reinstated: its inventory and the buyer's count went back on expiry.
        (OrderState::Expired, true) => {
            count(ticket_types, quotas, &o.items, Counter::Sold, Change::Add, "OrderPaid");
            buyer_add(buyer_tickets, &o.buyer, quantity(&o.items));
        }
        (from, _) => impossible!(
            "OrderPaid",
            "order {} paid in state {from:?} (reinstated: {reinstated})",
            order.0
        ),
    }
    set_order_state(counts, o, OrderState::Paid);
    counts.tickets_valid += tickets.len() as u64;
    o.payment_ref = Some(payment_ref.clone());
    o.paid_at = Some(at);
    crate::evolve_payment::offline_paid(o, at);
    o.tickets = tickets.iter().map(|t| t.code).collect();
    all.reserve(tickets.len());
    for t in tickets {
        let ticket = Ticket {
            code: t.code,
            order,
            ticket_type: t.ticket_type,
            refunded: false,
            checked_in_at: None,
        };
        if all.insert(t.code, ticket).is_some() {
            impossible!("OrderPaid", "order {} issues ticket {} twice", order.0, t.code);
        }
    }
}

/// Payment for an expired order that could not be reinstated: it is owed back.
fn order_refund_required(state: &mut SaleState, order: OrderId, payment_ref: &PaymentRef, at: Timestamp) {
    let Some(o) = state.orders.get_mut(&order) else {
        impossible!("OrderRefundRequired", "order {} does not exist", order.0);
    };
    if o.state != OrderState::Expired {
        impossible!("OrderRefundRequired", "order {} in state {:?}", order.0, o.state);
    }
    set_order_state(&mut state.counts, o, OrderState::RefundRequired);
    o.payment_ref = Some(payment_ref.clone());
    o.paid_at = Some(at);
}

/// Tickets of a paid order return to inventory; a `refund_required` order is settled.
fn order_refunded(state: &mut SaleState, order: OrderId, tickets: &[TicketCode], amount: MoneyMinor) {
    let SaleState {
        orders,
        ticket_types,
        quotas,
        buyer_tickets,
        tickets: all,
        counts,
        ..
    } = state;
    let Some(o) = orders.get_mut(&order) else {
        impossible!("OrderRefunded", "order {} does not exist", order.0);
    };
    match o.state {
        OrderState::RefundRequired if tickets.is_empty() => {
            o.refunded = o.refunded.plus(amount);
            set_order_state(counts, o, OrderState::Refunded);
            return;
        }
        OrderState::Paid => {}
        from => impossible!(
            "OrderRefunded",
            "order {} in state {from:?} refunds {} tickets",
            order.0,
            tickets.len()
        ),
    }
    o.refunded = o.refunded.plus(amount);
    for code in tickets {
        let Some(t) = all.get_mut(code).filter(|t| t.order == order && !t.refunded) else {
            impossible!("OrderRefunded", "order {} has no valid ticket {code}", order.0);
        };
        t.refunded = true;
        let one = Item {
            ticket_type: t.ticket_type,
            quantity: Quantity::ONE,
        };
        count(
            ticket_types,
            quotas,
            &[one],
            Counter::Sold,
            Change::Remove,
            "OrderRefunded",
        );
    }
    buyer_sub(buyer_tickets, &o.buyer, tickets.len() as u32, "OrderRefunded");
    counts.tickets_valid -= tickets.len() as u64;
    if o.tickets.iter().all(|c| all.get(c).is_none_or(|t| t.refunded)) {
        set_order_state(counts, o, OrderState::Refunded);
    }
}

fn ticket_checked_in(state: &mut SaleState, code: TicketCode, at: Timestamp) {
    let Some(t) = state.tickets.get_mut(&code) else {
        impossible!("TicketCheckedIn", "ticket {code} does not exist");
    };
    if t.refunded || t.checked_in_at.is_some() {
        impossible!(
            "TicketCheckedIn",
            "ticket {code} refunded ({}) or already checked in ({:?})",
            t.refunded,
            t.checked_in_at
        );
    }
    t.checked_in_at = Some(at);
    state.counts.tickets_checked_in += 1;
}

/// A hold released or expired: its inventory and the buyer's count go back, and it leaves the
/// table (its deadline entry goes stale).
fn end_hold(state: &mut SaleState, hold: HoldId, to: HoldState, event: &'static str) {
    let SaleState {
        holds,
        ticket_types,
        quotas,
        buyer_tickets,
        counts,
        ..
    } = state;
    let Some(h) = holds.remove(&hold) else {
        impossible!(event, "hold {} does not exist (or has ended)", hold.0);
    };
    if h.state != HoldState::Active {
        impossible!(event, "hold {} is not active but {:?}", hold.0, h.state);
    }
    counts.holds[h.state.kind()] -= 1;
    counts.holds[to.kind()] += 1;
    count(ticket_types, quotas, &h.items, Counter::Held, Change::Remove, event);
    buyer_sub(buyer_tickets, &h.buyer, quantity(&h.items), event);
}

/// An unpaid order failed, expired or was cancelled: like `end_hold`. An order whose payment
/// is under way may end too, unless that payment is being captured.
fn end_order(state: &mut SaleState, order: OrderId, to: OrderState, event: &'static str) {
    let SaleState {
        orders,
        ticket_types,
        quotas,
        buyer_tickets,
        counts,
        ..
    } = state;
    let Some(o) = orders.get_mut(&order) else {
        impossible!(event, "order {} does not exist", order.0);
    };
    let waiting =
        o.state == OrderState::AwaitingPayment || (o.state == OrderState::PaymentPending && !o.is_capturing());
    if !waiting {
        impossible!(event, "order {} is not awaiting payment but {:?}", order.0, o.state);
    }
    set_order_state(counts, o, to);
    count(ticket_types, quotas, &o.items, Counter::Held, Change::Remove, event);
    buyer_sub(buyer_tickets, &o.buyer, quantity(&o.items), event);
}

/// Every change of an order's state goes through here, so that `Counts` stays exact.
#[inline]
pub(crate) fn set_order_state(counts: &mut Counts, o: &mut Order, to: OrderState) {
    counts.orders[o.state as usize] -= 1;
    counts.orders[to as usize] += 1;
    o.state = to;
}

#[derive(Clone, Copy)]
pub(crate) enum Counter {
    Held,
    Sold,
}

#[derive(Clone, Copy)]
pub(crate) enum Change {
    Add,
    Remove,
}

/// Adds or removes `items` on a counter of their ticket types and of every quota of each type.
#[inline]
pub(crate) fn count(
    types: &mut [TicketType],
    quotas: &mut [Quota],
    items: &[Item],
    counter: Counter,
    change: Change,
    event: &'static str,
) {
    for item in items {
        let Some(tt) = types.get_mut(item.ticket_type.0 as usize) else {
            impossible!(event, "ticket type {} does not exist", item.ticket_type.0);
        };
        let n = item.quantity.get();
        apply(counter_of(&mut tt.held, &mut tt.sold, counter), n, change, event);
        for q in &tt.quotas {
            let Some(quota) = quotas.get_mut(q.0 as usize) else {
                impossible!(event, "quota {} of ticket type {} does not exist", q.0, tt.id.0);
            };
            apply(counter_of(&mut quota.held, &mut quota.sold, counter), n, change, event);
        }
    }
}

#[inline]
fn counter_of<'a>(held: &'a mut u32, sold: &'a mut u32, counter: Counter) -> &'a mut u32 {
    match counter {
        Counter::Held => held,
        Counter::Sold => sold,
    }
}

/// Counters never go below zero on a sequence `decide` produced; one that would is a bug
/// (wrapping around would give four billion free tickets).
#[inline]
fn apply(value: &mut u32, n: u32, change: Change, event: &'static str) {
    *value = match change {
        Change::Add => value.saturating_add(n),
        Change::Remove => match value.checked_sub(n) {
            Some(v) => v,
            None => impossible!(event, "counter underflow: {} - {n}", *value),
        },
    };
}

pub(crate) fn quantity(items: &[Item]) -> u32 {
    items.iter().map(|i| i.quantity.get()).sum()
}

pub(crate) fn buyer_add(buyer_tickets: &mut BuyerTickets, buyer: &BuyerId, n: u32) {
    if n == 0 {
        return;
    }
    *buyer_tickets.entry_ref(buyer).or_insert(0) += n;
}

/// Buyers back at zero are removed so that the map holds only buyers with tickets.
fn buyer_sub(buyer_tickets: &mut BuyerTickets, buyer: &BuyerId, n: u32, event: &'static str) {
    if n == 0 {
        return;
    }
    let Some(count) = buyer_tickets.get_mut(buyer) else {
        impossible!(event, "buyer {} gives back {n} tickets but has none", buyer.as_str());
    };
    let Some(left) = count.checked_sub(n) else {
        impossible!(event, "buyer {} gives back {n} tickets but has {count}", buyer.as_str());
    };
    *count = left;
    if left == 0 {
        buyer_tickets.remove(buyer);
    }
}

pub(crate) type Deadlines = VecDeque<(Timestamp, Deadline)>;

/// Keeps `deadlines` sorted by time. Holds arrive in time order, so this is a push to the
/// back unless the clock stepped backwards.
#[inline]
pub(crate) fn insert_deadline(deadlines: &mut Deadlines, at: Timestamp, what: Deadline) {
    match deadlines.back() {
        Some(&(last, _)) if last > at => {
            let i = deadlines.partition_point(|&(t, _)| t <= at);
            deadlines.insert(i, (at, what));
        }
        _ => deadlines.push_back((at, what)),
    }
}

/// Where the index has the entry `(at, what)`: a binary search by time, then the entries at
/// that time.
pub(crate) fn find_deadline(deadlines: &Deadlines, at: Timestamp, what: Deadline) -> Option<usize> {
    let from = deadlines.partition_point(|&(t, _)| t < at);
    (from..deadlines.len())
        .take_while(|&i| deadlines[i].0 == at)
        .find(|&i| deadlines[i].1 == what)
}

/// On checkout the hold's entry becomes its order's, in place (same time, same position).
fn hand_deadline_to_order(deadlines: &mut Deadlines, at: Timestamp, hold: HoldId, order: OrderId) {
    match find_deadline(deadlines, at, Deadline::Hold(hold)) {
        Some(i) => deadlines[i].1 = Deadline::Order(order),
        None => impossible!("OrderPlaced", "active hold {} has no deadline entry", hold.0),
    }
}

/// Drops stale entries (holds ended, orders paid or ended) from the front, so that the front
/// entry, if any, is live and `next_deadline` is exact. Then, if stale entries outnumber the
/// live ones by [`limits::DEADLINES_SLACK`], drops them all: a run of releases (whose entries
/// would otherwise wait for their time to reach the front) costs O(1) memory per live entry.
fn prune_deadlines(state: &mut SaleState) {
    while let Some(&(at, what)) = state.deadlines.front() {
        if state.live_deadline(at, what).is_some() {
            break;
        }
        state.deadlines.pop_front();
    }
    if state.deadlines.len() > deadlines_bound(state) {
        compact_deadlines(state);
    }
}

/// The longest the index may be after any event: twice what may be live, plus the slack.
pub fn deadlines_bound(state: &SaleState) -> usize {
    state
        .pending()
        .saturating_mul(2)
        .saturating_add(limits::DEADLINES_SLACK)
}

#[cold]
#[inline(never)]
fn compact_deadlines(state: &mut SaleState) {
    let mut index = std::mem::take(&mut state.deadlines);
    index.retain(|&(at, what)| state.live_deadline(at, what).is_some());
    state.deadlines = index;
}

//! `decide`: the only place where a command is judged. It reads the state, never changes it,
//! and answers with the events to append (and what to tell the caller) or a [`Rejection`].
//!
//! Everything a command needs to be accepted is checked here, so that `evolve` can trust
//! events blindly. `PlaceHold` is the hot path (a million times a second in the engine
//! benchmark): it allocates only the returned `Vec<Event>` and never formats a string.
//!
//! Idempotency: `PlaceHold` and `Checkout` may carry a key, scoped per (buyer, key) within the
//! sale. Only *successful* commands are remembered (the entry is written by `evolve` from the
//! event), because a rejected command changed nothing: retrying it is evaluated afresh and may
//! now succeed. A retry of a remembered request answers the original outcome with no events,
//! whatever happened since (the hold may have expired meanwhile); the same key with a different
//! request is an `IdempotencyConflict`. A key is remembered for the idempotency TTL (engine
//! configuration, default 24 h) from when its command was decided; after that it is unknown
//! and the command is new.
//!
//! Ended holds (released, expired, checked out) are not kept: a command naming one is
//! `HoldEnded`, whoever sends it (hold ids are sequential, so that an id existed says nothing).

use smallvec::SmallVec;

use crate::command::{Command, CreateSale, Item, Items, SaleStatus};
use crate::event::{Event, IssuedTicket};
use crate::fingerprint;
use crate::ids::{HoldId, OrderId, QuotaId, TicketCode, TicketTypeId};
use crate::limits;
use crate::rejection::{ConflictReason, Entity, Rejection};
use crate::state::{Deadline, Hold, HoldState, Order, OrderState, Outcome, Sale, SaleState};
use crate::text::{Text, at_most, between};
use crate::values::{BuyerId, IdempotencyKey, MoneyMinor, Name, PaymentRef, Timestamp};
use crate::{Ctx, Decision, Entropy, decide_payment, decide_room};

/// Judges `command` against `state` at `ctx.now`. Pure apart from drawing ticket codes from
/// `ctx.entropy` (only `ConfirmPayment` does).
pub fn decide(state: &SaleState, command: Command, ctx: &mut Ctx) -> Result<Decision, Rejection> {
    let Some(sale) = &state.sale else {
        return match command {
            Command::CreateSale(c) => create_sale(c),
            _ => Err(Rejection::NotFound(Entity::Sale)),
        };
    };
    let now = ctx.now;
    match command {
        Command::CreateSale(_) => Err(Rejection::AlreadyExists),
        Command::AddTicketType {
            name,
            price,
            max_per_order,
        } => add_ticket_type(state, sale, name, price, max_per_order),
        Command::AddQuota {
            name,
            capacity,
            ticket_types,
        } => add_quota(state, sale, name, capacity, ticket_types),
        Command::EditTicketType {
            ticket_type,
            name,
            price,
            max_per_order,
        } => crate::decide_catalog::edit_ticket_type(state, sale, ticket_type, name, price, max_per_order),
        Command::SetQuotaCapacity { quota, capacity } => {
            crate::decide_catalog::set_quota_capacity(state, sale, quota, capacity)
        }
        Command::Keyed { key, command } => crate::decide_catalog::keyed(state, key, *command, ctx),
        Command::SetStatus(to) => set_status(sale, to),
        Command::PlaceHold {
            buyer,
            items,
            idempotency_key,
        } => place_hold(state, sale, buyer, items, idempotency_key, now),
        Command::ReleaseHold { buyer, hold } => release_hold(state, &buyer, hold),
        Command::ExpireDue => Ok(expire_due(state, now)),
        Command::Checkout {
            buyer,
            hold,
            idempotency_key,
        } => checkout(state, sale, buyer, hold, idempotency_key, now, &mut *ctx.entropy),
        Command::ConfirmPayment { order, payment_ref } => {
            confirm_payment(state, sale, order, payment_ref, now, &mut *ctx.entropy)
        }
        Command::RequestPayment { buyer, order, method } => {
            decide_payment::request(state, sale, &buyer, order, method, ctx)
        }
        Command::RecordPayment { order, attempt, update } => {
            decide_payment::record(state, sale, order, attempt, update, ctx)
        }
        Command::RecordRefund { order, refund, update } => {
            decide_payment::record_refund(state, order, refund, update, ctx)
        }
        Command::CancelOrder { actor, order } => decide_payment::cancel(state, &actor, order, ctx),
        Command::Refund { order, tickets } => refund(state, order, tickets, now),
        Command::CheckIn { code } => check_in(state, code, now),
        Command::ConfigureRoom(config) => decide_room::configure(state, sale, config, ctx),
        Command::JoinRoom { buyer } => decide_room::join(state, sale, buyer, now),
        Command::LeaveRoom { buyer } => decide_room::leave(state, buyer, now),
        Command::RoomTick => Ok(decide_room::tick(state, now)),
    }
}

pub(crate) fn one(event: Event, outcome: Outcome) -> Decision {
    Decision {
        events: vec![event],
        outcome,
    }
}

pub(crate) fn done(event: Event) -> Decision {
    one(event, Outcome::Done)
}

pub(crate) fn nothing(outcome: Outcome) -> Decision {
    Decision {
        events: Vec::new(),
        outcome,
    }
}

fn create_sale(c: CreateSale) -> Result<Decision, Rejection> {
    if !(limits::HOLD_TTL_MS_MIN..=limits::HOLD_TTL_MS_MAX).contains(&c.hold_ttl_ms) {
        static TTL: Text = between(limits::HOLD_TTL_MS_MIN, limits::HOLD_TTL_MS_MAX);
        return Err(Rejection::invalid("hold_ttl_ms", TTL.as_str()));
    }
    if let (Some(opens_at), Some(closes_at)) = (c.opens_at, c.closes_at)
        && opens_at >= closes_at
    {
        return Err(Rejection::invalid("closes_at", "must be after opens_at"));
    }
    if c.max_tickets_per_buyer == Some(0) {
        return Err(Rejection::invalid("max_tickets_per_buyer", "must be at least 1"));
    }
    if let Some(ttl) = c.offline_payment_ttl_ms
        && !(limits::HOLD_TTL_MS_MIN..=limits::OFFLINE_PAYMENT_TTL_MS_MAX).contains(&ttl)
    {
        static OFFLINE_TTL: Text = between(limits::HOLD_TTL_MS_MIN, limits::OFFLINE_PAYMENT_TTL_MS_MAX);
        return Err(Rejection::invalid("offline_payment_ttl_ms", OFFLINE_TTL.as_str()));
    }
    Ok(one(
        Event::SaleCreated {
            name: c.name,
            currency: c.currency,
            hold_ttl_ms: c.hold_ttl_ms,
            max_tickets_per_buyer: c.max_tickets_per_buyer,
            opens_at: c.opens_at,
            closes_at: c.closes_at,
            offline_payment_ttl_ms: c.offline_payment_ttl_ms,
        },
        Outcome::SaleCreated,
    ))
}

fn add_ticket_type(
    state: &SaleState,
    sale: &Sale,
    name: Name,
    price: MoneyMinor,
    max_per_order: Option<u32>,
) -> Result<Decision, Rejection> {
    if sale.status.is_final() {
        return Err(Rejection::Conflict(ConflictReason::SaleClosed));
    }
    if state.ticket_types.len() >= limits::TICKET_TYPES_MAX {
        static TYPES: Text = at_most(limits::TICKET_TYPES_MAX as u64, " ticket types per sale");
        return Err(Rejection::invalid("ticket_types", TYPES.as_str()));
    }
    if let Some(max) = max_per_order
        && !(1..=limits::QUANTITY_MAX).contains(&max)
    {
        static RANGE: Text = between(1, limits::QUANTITY_MAX as u64);
        return Err(Rejection::invalid("max_per_order", RANGE.as_str()));
    }
    let id = TicketTypeId(state.ticket_types.len() as u32);
    Ok(one(
        Event::TicketTypeAdded {
            id,
            name,
            price,
            max_per_order,
        },
        Outcome::TicketTypeAdded(id),
    ))
}

fn add_quota(
    state: &SaleState,
    sale: &Sale,
    name: Name,
    capacity: u32,
    ticket_types: Vec<TicketTypeId>,
) -> Result<Decision, Rejection> {
    if sale.status.is_final() {
        return Err(Rejection::Conflict(ConflictReason::SaleClosed));
    }
    if state.quotas.len() >= limits::QUOTAS_MAX {
        static QUOTAS: Text = at_most(limits::QUOTAS_MAX as u64, " quotas per sale");
        return Err(Rejection::invalid("quotas", QUOTAS.as_str()));
    }
    if capacity > limits::CAPACITY_MAX {
        static CAPACITY: Text = at_most(limits::CAPACITY_MAX as u64, "");
        return Err(Rejection::invalid("capacity", CAPACITY.as_str()));
    }
    if ticket_types.is_empty() {
        return Err(Rejection::invalid("ticket_types", "must not be empty"));
    }
    if ticket_types.len() > limits::QUOTA_TYPES_MAX {
        static TYPES: Text = at_most(limits::QUOTA_TYPES_MAX as u64, " per quota");
        return Err(Rejection::invalid("ticket_types", TYPES.as_str()));
    }
    if has_duplicates(&ticket_types) {
        return Err(Rejection::invalid("ticket_types", "must not repeat a ticket type"));
    }
    // The new quota starts with what its types already hold and sold (N:M: a ticket counts
    // against every quota of its type), so it may already be over capacity.
    let (mut held, mut sold) = (0u64, 0u64);
    for tt in &ticket_types {
        let t = state
            .ticket_types
            .get(tt.0 as usize)
            .ok_or(Rejection::NotFound(Entity::TicketType))?;
        held += u64::from(t.held);
        sold += u64::from(t.sold);
    }
    if held + sold > u64::from(capacity) {
        return Err(Rejection::Conflict(ConflictReason::CapacityBelowUsage));
    }
    let id = QuotaId(state.quotas.len() as u32);
    Ok(one(
        Event::QuotaAdded {
            id,
            name,
            capacity,
            ticket_types,
        },
        Outcome::QuotaAdded(id),
    ))
}

fn has_duplicates(ids: &[TicketTypeId]) -> bool {
    // At most 64 entries: quadratic is cheaper than hashing.
    ids.iter().enumerate().any(|(i, a)| ids[..i].contains(a))
}

fn set_status(sale: &Sale, to: SaleStatus) -> Result<Decision, Rejection> {
    use SaleStatus::*;
    if sale.status == to {
        return Ok(nothing(Outcome::Done));
    }
    match (sale.status, to) {
        (Draft, Open)
        | (Open, Paused)
        | (Paused, Open)
        | (Draft | Open | Paused, Closed)
        | (Draft | Paused | Closed, Archived) => Ok(done(Event::SaleStatusChanged { status: to })),
        _ => Err(Rejection::Conflict(ConflictReason::StatusTransition)),
    }
}

/// Looks up a remembered idempotent request. Takes the buyer and key by value (they are
/// moved into the map's key type for the lookup, without allocating) and hands them back.
#[allow(clippy::type_complexity)]
pub(crate) fn recall(
    state: &SaleState,
    buyer: BuyerId,
    key: Option<IdempotencyKey>,
    now: Timestamp,
    fingerprint: impl FnOnce() -> u64,
) -> Result<(BuyerId, Option<IdempotencyKey>), Result<Decision, Rejection>> {
    let Some(key) = key else {
        return Ok((buyer, None));
    };
    if state.idempotency.is_empty() {
        return Ok((buyer, Some(key)));
    }
    let scoped = (buyer, key);
    match state.idempotency.get(&scoped, now) {
        None => Ok((scoped.0, Some(scoped.1))),
        Some(entry) if entry.fingerprint == fingerprint() => Err(Ok(nothing(entry.outcome))),
        Some(_) => Err(Err(Rejection::IdempotencyConflict)),
    }
}

fn is_open(sale: &Sale, now: Timestamp) -> bool {
    sale.status == SaleStatus::Open && sale.opens_at.is_none_or(|t| t <= now) && sale.closes_at.is_none_or(|t| now < t)
}

/// Sum of needs per quota over `items`. Sixteen lines over a few quotas each fit on the stack.
type Needs = SmallVec<[(QuotaId, u32); 16]>;

fn needs_per_quota(state: &SaleState, items: &[Item]) -> Needs {
    let mut needs = Needs::new();
    for item in items {
        let Some(tt) = state.ticket_types.get(item.ticket_type.0 as usize) else {
            continue;
        };
        for &q in &tt.quotas {
            match needs.iter_mut().find(|(id, _)| *id == q) {
                Some((_, need)) => *need += item.quantity.get(),
                None => needs.push((q, item.quantity.get())),
            }
        }
    }
    needs
}

/// All or nothing: first any type with nothing left (`SoldOut`), then any quota that cannot
/// cover the summed needs of the lines that count against it (`InsufficientInventory`, naming
/// the first such line's type and how many of that type alone could be held now).
pub(crate) fn check_inventory(state: &SaleState, items: &[Item]) -> Result<(), Rejection> {
    for item in items {
        if state.available(item.ticket_type) == 0 {
            return Err(Rejection::SoldOut {
                ticket_type: item.ticket_type,
            });
        }
    }
    let needs = needs_per_quota(state, items);
    for item in items {
        let Some(tt) = state.ticket_types.get(item.ticket_type.0 as usize) else {
            continue;
        };
        for q in &tt.quotas {
            let need = needs.iter().find(|(id, _)| id == q).map_or(0, |(_, n)| *n);
            let short = state
                .quotas
                .get(q.0 as usize)
                .is_none_or(|quota| need > quota.available());
            if short {
                return Err(Rejection::InsufficientInventory {
                    ticket_type: item.ticket_type,
                    available: state.available(item.ticket_type),
                });
            }
        }
    }
    Ok(())
}

pub(crate) fn check_buyer_limit(
    state: &SaleState,
    sale: &Sale,
    buyer: &BuyerId,
    quantity: u32,
) -> Result<(), Rejection> {
    if let Some(limit) = sale.max_tickets_per_buyer {
        let current = state.buyer_tickets.get(buyer).copied().unwrap_or(0);
        if current.saturating_add(quantity) > limit {
            return Err(Rejection::LimitExceeded { limit, current });
        }
    }
    Ok(())
}

fn place_hold(
    state: &SaleState,
    sale: &Sale,
    buyer: BuyerId,
    items: Items,
    idempotency_key: Option<IdempotencyKey>,
    now: Timestamp,
) -> Result<Decision, Rejection> {
    let (buyer, idempotency_key) = match recall(state, buyer, idempotency_key, now, || fingerprint::place_hold(&items))
    {
        Ok(fresh) => fresh,
        Err(remembered) => return remembered,
    };
    if !is_open(sale, now) {
        return Err(Rejection::SaleNotOpen);
    }
    decide_room::check_admission(state, &buyer, now)?;
    if items.is_empty() {
        return Err(Rejection::invalid("items", "must not be empty"));
    }
    if items.len() > limits::HOLD_ITEMS_MAX {
        static LINES: Text = at_most(limits::HOLD_ITEMS_MAX as u64, " lines per hold");
        return Err(Rejection::invalid("items", LINES.as_str()));
    }
    let mut quantity = 0u32;
    for (i, item) in items.iter().enumerate() {
        if items[..i].iter().any(|o| o.ticket_type == item.ticket_type) {
            return Err(Rejection::invalid("items", "must not repeat a ticket type"));
        }
        let tt = state
            .ticket_types
            .get(item.ticket_type.0 as usize)
            .ok_or(Rejection::NotFound(Entity::TicketType))?;
        if tt.max_per_order.is_some_and(|max| item.quantity.get() > max) {
            return Err(Rejection::invalid(
                "quantity",
                "exceeds the ticket type's max_per_order",
            ));
        }
        quantity += item.quantity.get();
    }
    check_inventory(state, &items)?;
    check_buyer_limit(state, sale, &buyer, quantity)?;
    let hold = state.holds.next_id();
    Ok(one(
        Event::HoldPlaced {
            hold,
            buyer,
            items,
            expires_at: now.plus_ms(sale.hold_ttl_ms),
            idempotency_key,
        },
        Outcome::Hold(hold),
    ))
}

/// The buyer's active hold: only active holds are kept; one that ended is `HoldEnded`.
fn buyers_hold<'a>(state: &'a SaleState, buyer: &BuyerId, hold: HoldId) -> Result<&'a Hold, Rejection> {
    match state.holds.get(&hold) {
        Some(h) if h.buyer == *buyer => Ok(h),
        Some(_) => Err(Rejection::NotFound(Entity::Hold)),
        None if state.holds.ended(&hold) => Err(Rejection::HoldEnded),
        None => Err(Rejection::NotFound(Entity::Hold)),
    }
}

fn release_hold(state: &SaleState, buyer: &BuyerId, hold: HoldId) -> Result<Decision, Rejection> {
    let h = buyers_hold(state, buyer, hold)?;
    // Releasing a hold whose deadline passed but whose expiry has not run yet is fine: the
    // inventory returns either way.
    debug_assert!(h.state == HoldState::Active, "only active holds are kept");
    Ok(done(Event::HoldReleased { hold }))
}

fn expire_due(state: &SaleState, now: Timestamp) -> Decision {
    let mut events = Vec::new();
    let due = state
        .deadlines
        .iter()
        .take_while(|(at, _)| *at <= now)
        // Stale entries (released holds, paid orders) are skipped; they leave the index when
        // they reach its front.
        .filter_map(|&(at, what)| state.live_deadline(at, what))
        .take(limits::EXPIRE_BATCH_MAX);
    for what in due {
        match what {
            Deadline::Hold(hold) => events.push(Event::HoldExpired { hold }),
            Deadline::Order(order) => {
                events.push(Event::OrderExpired { order, at: now });
                // The deadline names a live order: it exists.
                if let Some(o) = state.orders.get(&order) {
                    events.extend(decide_payment::end_open_payment(o, now, None));
                }
            }
        }
    }
    Decision {
        events,
        outcome: Outcome::Done,
    }
}

fn checkout(
    state: &SaleState,
    sale: &Sale,
    buyer: BuyerId,
    hold: HoldId,
    idempotency_key: Option<IdempotencyKey>,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> Result<Decision, Rejection> {
    let (buyer, idempotency_key) = match recall(state, buyer, idempotency_key, now, || fingerprint::checkout(hold)) {
        Ok(fresh) => fresh,
        Err(remembered) => return remembered,
    };
    // A held ticket may be checked out while the sale is paused (the buyer already has it),
    // but a closed sale sells nothing more.
    if sale.status.is_final() {
        return Err(Rejection::SaleNotOpen);
    }
    let h = buyers_hold(state, &buyer, hold)?;
    // The deadline is what counts, not whether the expiry timer has fired yet.
    if now >= h.expires_at {
        return Err(Rejection::HoldExpired);
    }
    let order = state.orders.next_id();
    let placed = Event::OrderPlaced {
        order,
        hold,
        total: h.total,
        at: now,
        idempotency_key,
    };
    let used = decide_room::use_admission(state, &buyer);
    if h.total != MoneyMinor::ZERO {
        let mut events = vec![placed];
        events.extend(used);
        return Ok(Decision {
            events,
            outcome: Outcome::Order(order),
        });
    }
    // Nothing to pay: the tickets are issued at checkout, with no provider involved.
    let paid = Event::OrderPaid {
        order,
        payment_ref: free_payment_ref(),
        tickets: issue_tickets(state, &h.items, entropy)?,
        reinstated: false,
        at: now,
    };
    let mut events = vec![placed, paid];
    events.extend(used);
    Ok(Decision {
        events,
        outcome: Outcome::Order(order),
    })
}

/// The payment reference of an order that cost nothing.
fn free_payment_ref() -> PaymentRef {
    PaymentRef::parse("free").unwrap_or_else(|_| unreachable!("a valid literal"))
}

pub(crate) fn find_order(state: &SaleState, order: OrderId) -> Result<&Order, Rejection> {
    state.orders.get(&order).ok_or(Rejection::NotFound(Entity::Order))
}

fn confirm_payment(
    state: &SaleState,
    sale: &Sale,
    order: OrderId,
    payment_ref: PaymentRef,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> Result<Decision, Rejection> {
    let o = find_order(state, order)?;
    let same_ref = o.payment_ref.as_ref() == Some(&payment_ref);
    let reinstated = match o.state {
        OrderState::AwaitingPayment => false,
        // Payment arrived after expiry. The sale's status does not matter: the buyer ordered
        // while it was open and has paid; only inventory and the buyer's limit can say no.
        OrderState::Expired => {
            let quantity = o.items.iter().map(|i| i.quantity.get()).sum();
            if check_inventory(state, &o.items).is_err() || check_buyer_limit(state, sale, &o.buyer, quantity).is_err()
            {
                return Ok(done(Event::OrderRefundRequired {
                    order,
                    payment_ref,
                    at: now,
                }));
            }
            true
        }
        // The provider re-delivering the same confirmation is not an error.
        OrderState::Paid | OrderState::RefundRequired | OrderState::Refunded if same_ref => {
            return Ok(nothing(Outcome::Done));
        }
        OrderState::Paid => return Err(Rejection::Conflict(ConflictReason::OrderPaid)),
        OrderState::PaymentPending => return Err(Rejection::Conflict(ConflictReason::PaymentInProgress)),
        OrderState::RefundRequired => return Err(Rejection::Conflict(ConflictReason::OrderRefundRequired)),
        OrderState::Refunded => return Err(Rejection::Conflict(ConflictReason::OrderRefunded)),
        OrderState::Cancelled => return Err(Rejection::Conflict(ConflictReason::OrderCancelled)),
        OrderState::PaymentFailed => return Err(Rejection::Conflict(ConflictReason::OrderPaymentFailed)),
    };
    let tickets = issue_tickets(state, &o.items, entropy)?;
    Ok(done(Event::OrderPaid {
        order,
        payment_ref,
        tickets,
        reinstated,
        at: now,
    }))
}

pub(crate) fn issue_tickets(
    state: &SaleState,
    items: &[Item],
    entropy: &mut dyn Entropy,
) -> Result<Vec<IssuedTicket>, Rejection> {
    let count: u32 = items.iter().map(|i| i.quantity.get()).sum();
    let mut tickets = Vec::with_capacity(count as usize);
    for item in items {
        for _ in 0..item.quantity.get() {
            let code = fresh_code(state, &tickets, entropy)?;
            tickets.push(IssuedTicket {
                code,
                ticket_type: item.ticket_type,
            });
        }
    }
    Ok(tickets)
}

fn fresh_code(state: &SaleState, issued: &[IssuedTicket], entropy: &mut dyn Entropy) -> Result<TicketCode, Rejection> {
    for _ in 0..limits::CODE_DRAWS_MAX {
        let code = entropy.ticket_code();
        // `issued` holds at most 1,600 codes (16 lines × 100); a linear scan is fine off the
        // hot path.
        if !state.tickets.contains_key(&code) && !issued.iter().any(|t| t.code == code) {
            return Ok(code);
        }
    }
    Err(Rejection::Conflict(ConflictReason::TicketCodeCollision))
}

fn refund(
    state: &SaleState,
    order: OrderId,
    tickets: Option<Vec<TicketCode>>,
    now: Timestamp,
) -> Result<Decision, Rejection> {
    let o = find_order(state, order)?;
    match o.state {
        OrderState::Paid => {}
        OrderState::RefundRequired => {
            if tickets.is_some() {
                return Err(Rejection::invalid(
                    "tickets",
                    "a refund_required order is refunded whole",
                ));
            }
            return Ok(done(Event::OrderRefunded {
                order,
                tickets: Vec::new(),
                amount: o.total,
                at: now,
            }));
        }
        _ => return Err(Rejection::Conflict(ConflictReason::OrderNotPaid)),
    }
    let codes = match tickets {
        None => remaining_tickets(state, o),
        Some(codes) => check_named_tickets(codes)?,
    };
    let amount = refund_amount(state, order, &codes)?;
    let money_back = decide_payment::refund_for_tickets(o, amount, now)?;
    let mut events = vec![Event::OrderRefunded {
        order,
        tickets: codes,
        amount,
        at: now,
    }];
    events.extend(money_back);
    Ok(Decision {
        events,
        outcome: Outcome::Done,
    })
}

/// All the order's tickets not refunded yet. A checked-in one among them rejects the whole
/// refund (in `refund_amount`): the organiser must name the tickets to refund the rest, so
/// money for a used ticket never goes back by accident.
fn remaining_tickets(state: &SaleState, o: &Order) -> Vec<TicketCode> {
    o.tickets
        .iter()
        .filter(|c| state.tickets.get(c).is_some_and(|t| !t.refunded))
        .copied()
        .collect()
}

/// The codes a refund names: some, within the limit, none twice.
fn check_named_tickets(codes: Vec<TicketCode>) -> Result<Vec<TicketCode>, Rejection> {
    if codes.is_empty() {
        return Err(Rejection::invalid("tickets", "must not be empty"));
    }
    if codes.len() > limits::REFUND_CODES_MAX {
        static CODES: Text = at_most(limits::REFUND_CODES_MAX as u64, " codes per refund");
        return Err(Rejection::invalid("tickets", CODES.as_str()));
    }
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(Rejection::invalid("tickets", "must not repeat a code"));
    }
    Ok(codes)
}

/// The money a refund of `codes` gives back; each must be a valid, unused ticket of `order`.
fn refund_amount(state: &SaleState, order: OrderId, codes: &[TicketCode]) -> Result<MoneyMinor, Rejection> {
    let mut amount = MoneyMinor::ZERO;
    for code in codes {
        let t = state
            .tickets
            .get(code)
            .filter(|t| t.order == order)
            .ok_or(Rejection::NotFound(Entity::Ticket))?;
        if t.refunded {
            return Err(Rejection::Conflict(ConflictReason::TicketRefunded));
        }
        if let Some(at) = t.checked_in_at {
            return Err(Rejection::AlreadyCheckedIn { at });
        }
        // What was paid: the price when the order's hold was placed.
        let hold = state.orders.get(&order).map(|o| o.hold).unwrap_or(HoldId(0));
        let price = state
            .ticket_types
            .get(t.ticket_type.0 as usize)
            .map_or(MoneyMinor::ZERO, |tt| tt.price_for(hold));
        amount = amount.plus(price);
    }
    Ok(amount)
}

fn check_in(state: &SaleState, code: TicketCode, now: Timestamp) -> Result<Decision, Rejection> {
    let t = state.tickets.get(&code).ok_or(Rejection::NotFound(Entity::Ticket))?;
    if t.refunded {
        return Err(Rejection::Conflict(ConflictReason::TicketRefunded));
    }
    if let Some(at) = t.checked_in_at {
        return Err(Rejection::AlreadyCheckedIn { at });
    }
    Ok(one(
        Event::TicketCheckedIn { code, at: now },
        Outcome::CheckedIn { code, at: now },
    ))
}

//! Catalog edits after creation, decided like any command: a ticket type's name, price and
//! per-order maximum, and a quota's capacity. They never touch what is held or sold: a price
//! applies to holds placed from now on (see `TicketType::price_for`), and a capacity is never
//! set below what its quota holds and sold, so no oversell follows from an edit (invariant 1).

use crate::command::Command;
use crate::decide::{done, nothing, recall};
use crate::event::Event;
use crate::fingerprint;
use crate::ids::{QuotaId, TicketTypeId};
use crate::limits;
use crate::rejection::{ConflictReason, Entity, Rejection};
use crate::state::{Outcome, Sale, SaleState};
use crate::text::{Text, at_most, between};
use crate::values::{BuyerId, IdempotencyKey, MoneyMinor, Name};
use crate::{Ctx, Decision};

pub(crate) fn edit_ticket_type(
    state: &SaleState,
    sale: &Sale,
    id: TicketTypeId,
    name: Option<Name>,
    price: Option<MoneyMinor>,
    max_per_order: Option<Option<u32>>,
) -> Result<Decision, Rejection> {
    let t = state
        .ticket_types
        .get(id.0 as usize)
        .ok_or(Rejection::NotFound(Entity::TicketType))?;
    if sale.status.is_final() {
        return Err(Rejection::Conflict(ConflictReason::SaleClosed));
    }
    if let Some(Some(max)) = max_per_order
        && !(1..=limits::QUANTITY_MAX).contains(&max)
    {
        static RANGE: Text = between(1, limits::QUANTITY_MAX as u64);
        return Err(Rejection::invalid("max_per_order", RANGE.as_str()));
    }
    let name = name.unwrap_or_else(|| t.name.clone());
    let price = price.unwrap_or(t.price);
    let max_per_order = max_per_order.unwrap_or(t.max_per_order);
    if name == t.name && price == t.price && max_per_order == t.max_per_order {
        return Ok(nothing(Outcome::Done));
    }
    if price != t.price && t.earlier_prices.len() >= limits::PRICE_CHANGES_MAX {
        static CHANGES: Text = at_most(limits::PRICE_CHANGES_MAX as u64, " price changes per ticket type");
        return Err(Rejection::invalid("price_minor", CHANGES.as_str()));
    }
    Ok(done(Event::TicketTypeEdited {
        id,
        name,
        price,
        max_per_order,
    }))
}

pub(crate) fn set_quota_capacity(
    state: &SaleState,
    sale: &Sale,
    id: QuotaId,
    capacity: u32,
) -> Result<Decision, Rejection> {
    let q = state
        .quotas
        .get(id.0 as usize)
        .ok_or(Rejection::NotFound(Entity::Quota))?;
    if sale.status.is_final() {
        return Err(Rejection::Conflict(ConflictReason::SaleClosed));
    }
    if capacity > limits::CAPACITY_MAX {
        static CAPACITY: Text = at_most(limits::CAPACITY_MAX as u64, "");
        return Err(Rejection::invalid("capacity", CAPACITY.as_str()));
    }
    if capacity == q.capacity {
        return Ok(nothing(Outcome::Done));
    }
    // What is held (active holds, unpaid orders) and sold stays; only the room left shrinks.
    if u64::from(capacity) < u64::from(q.held) + u64::from(q.sold) {
        return Err(Rejection::Conflict(ConflictReason::CapacityBelowUsage));
    }
    Ok(done(Event::QuotaCapacitySet { id, capacity }))
}

/// An organiser's catalog command under an idempotency key (scoped to the organiser in the
/// sale's key table): a retry answers the first outcome; the key with another request is a
/// conflict; a first success records the key in the same log record as its events.
pub(crate) fn keyed(
    state: &SaleState,
    key: IdempotencyKey,
    command: Command,
    ctx: &mut Ctx,
) -> Result<Decision, Rejection> {
    let Some(print) = fingerprint::organiser(&command) else {
        return Err(Rejection::invalid("idempotency_key", "not taken by this command"));
    };
    let key = match recall(state, BuyerId::organiser(), Some(key), ctx.now, || print) {
        Ok((_, key)) => key,
        Err(answer) => return answer,
    };
    let mut decision = crate::decide(state, command, ctx)?;
    if let Some(key) = key
        && !decision.events.is_empty()
    {
        decision.events.push(Event::OrganiserKeyUsed {
            key,
            fingerprint: print,
            outcome: decision.outcome,
            at: ctx.now,
        });
    }
    Ok(decision)
}

//! `decide` for the waiting room (see `room.rs`): configuring it, joining, leaving, the
//! engine's tick, and the admission a hold needs.

use crate::command::SaleStatus;
use crate::decide::{done, nothing};
use crate::event::Event;
use crate::limits;
use crate::rejection::{ConflictReason, Rejection};
use crate::room::{self, RoomConfig, Slot};
use crate::state::{Outcome, Sale, SaleState};
use crate::text::{Text, between};
use crate::values::{BuyerId, Timestamp};
use crate::{Ctx, Decision};

pub(crate) fn configure(
    state: &SaleState,
    sale: &Sale,
    config: RoomConfig,
    ctx: &mut Ctx,
) -> Result<Decision, Rejection> {
    if sale.status == SaleStatus::Closed {
        return Err(Rejection::Conflict(ConflictReason::SaleClosed));
    }
    if state.room.as_ref().is_some_and(|r| r.buyers() > 0) {
        return Err(Rejection::Conflict(ConflictReason::RoomInUse));
    }
    if config.prequeue_opens_at > config.opens_at {
        return Err(Rejection::invalid("prequeue_opens_at", "must not be after opens_at"));
    }
    if !(1..=limits::ROOM_ADMIT_PER_SEC_MAX).contains(&config.admit_per_sec) {
        static RATE: Text = between(1, limits::ROOM_ADMIT_PER_SEC_MAX as u64);
        return Err(Rejection::invalid("admit_per_sec", RATE.as_str()));
    }
    if !(limits::ROOM_SESSION_MS_MIN..=limits::ROOM_SESSION_MS_MAX).contains(&config.session_ms) {
        static SESSION: Text = between(limits::ROOM_SESSION_MS_MIN, limits::ROOM_SESSION_MS_MAX);
        return Err(Rejection::invalid("session_ms", SESSION.as_str()));
    }
    if !(1..=limits::ROOM_QUEUE_MAX).contains(&config.queue_max) {
        static QUEUE: Text = between(1, limits::ROOM_QUEUE_MAX as u64);
        return Err(Rejection::invalid("queue_max", QUEUE.as_str()));
    }
    Ok(done(Event::RoomConfigured {
        config,
        seed: ctx.entropy.seed(),
    }))
}

pub(crate) fn join(state: &SaleState, sale: &Sale, buyer: BuyerId, now: Timestamp) -> Result<Decision, Rejection> {
    let Some(room) = state.room.as_deref() else {
        return Err(Rejection::NotFound(crate::Entity::Sale));
    };
    if sale.status == SaleStatus::Closed || sale.closes_at.is_some_and(|c| now >= c) {
        return Err(Rejection::Conflict(ConflictReason::SaleClosed));
    }
    if now < room.config.prequeue_opens_at {
        return Err(Rejection::Conflict(ConflictReason::RoomNotOpen));
    }
    match room.slot(&buyer) {
        Some(Slot::Queued { .. }) => return Ok(nothing(Outcome::Done)),
        Some(Slot::Admitted { expires_at, .. }) if now < expires_at => return Ok(nothing(Outcome::Done)),
        // An admission past its end that the tick has not expired yet: wait for it.
        Some(Slot::Admitted { .. }) => return Ok(nothing(Outcome::Done)),
        Some(_) => {}
        None if room.buyers() >= limits::ROOM_BUYERS_MAX => return Err(Rejection::QueueFull),
        None => {}
    }
    if room.counts.queued >= u64::from(room.config.queue_max) {
        return Err(Rejection::QueueFull);
    }
    let mut events = Vec::with_capacity(2);
    // The shuffle is due at `opens_at`: a join after it queues behind the shuffled pre-queue
    // even when the engine's tick has not run yet.
    if !room.shuffled && now >= room.config.opens_at {
        events.push(Event::PrequeueShuffled { at: now });
    }
    events.push(Event::BuyerJoined { buyer, at: now });
    Ok(Decision {
        events,
        outcome: Outcome::Done,
    })
}

pub(crate) fn leave(state: &SaleState, buyer: BuyerId, now: Timestamp) -> Result<Decision, Rejection> {
    let Some(room) = state.room.as_deref() else {
        return Err(Rejection::NotFound(crate::Entity::Sale));
    };
    match room.slot(&buyer) {
        Some(Slot::Queued { .. } | Slot::Admitted { .. }) => Ok(done(Event::BuyerLeft { buyer, at: now })),
        _ => Err(Rejection::Conflict(ConflictReason::NotInRoom)),
    }
}

/// The engine's tick: shuffle, expiries and a batch of admissions, in one record.
pub(crate) fn tick(state: &SaleState, now: Timestamp) -> Decision {
    let Some((shuffle, expire, admit)) = room::tick_plan(state, now) else {
        return nothing(Outcome::Done);
    };
    let mut events = Vec::new();
    if shuffle {
        events.push(Event::PrequeueShuffled { at: now });
    }
    if expire > 0 {
        events.push(Event::AdmissionsExpired { count: expire, at: now });
    }
    if admit > 0 {
        events.push(Event::BuyersAdmitted { count: admit, at: now });
    }
    Decision {
        events,
        outcome: Outcome::Done,
    }
}

/// A hold needs a live admission when the sale has a room.
pub(crate) fn check_admission(state: &SaleState, buyer: &BuyerId, now: Timestamp) -> Result<(), Rejection> {
    match state.room.as_deref() {
        Some(room) if room.admission(buyer, now).is_none() => Err(Rejection::AdmissionRequired),
        _ => Ok(()),
    }
}

/// The event that ends `buyer`'s admission at checkout, if they hold one.
pub(crate) fn use_admission(state: &SaleState, buyer: &BuyerId) -> Option<Event> {
    let room = state.room.as_deref()?;
    matches!(room.slot(buyer), Some(Slot::Admitted { .. })).then(|| Event::AdmissionUsed { buyer: buyer.clone() })
}

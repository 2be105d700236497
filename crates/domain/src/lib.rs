//! The sales domain of taquilla, pure: no I/O, no clock, no randomness. Time and fresh
//! ticket codes come in through [`Ctx`].
//!
//! A sale is changed only by [`decide`], which turns a [`Command`] into
//! [`Event`]s or a [`Rejection`] without touching state, and [`evolve`], which folds one event
//! into [`SaleState`]. Replaying a sale's events through `evolve` rebuilds the same state.

pub mod codec;
pub mod command;
mod decide;
mod decide_catalog;
mod decide_payment;
mod decide_room;
pub mod event;
mod evolve;
mod evolve_payment;
mod fingerprint;
pub mod ids;
pub mod invariants;
pub mod limits;
pub mod payment;
pub mod rejection;
pub mod room;
pub mod state;
mod text;
pub mod values;

pub use command::{Actor, Command, CreateSale, Item, Items, SaleStatus};
pub use decide::decide;
pub use event::{Event, IssuedTicket};
pub use evolve::evolve;
pub use ids::{HoldId, OrderId, QuotaId, SaleId, TicketCode, TicketTypeId};
pub use payment::{
    Payment, PaymentMethod, PaymentState, PaymentStep, PaymentUpdate, Refund, RefundState, RefundUpdate,
};
pub use rejection::{ConflictReason, Entity, Rejection};
pub use room::{Odds, Room, RoomConfig, RoomStanding, RoomStatus};
pub use state::{
    Counts, Deadline, Hold, HoldState, Order, OrderState, Outcome, Quota, Sale, SaleState, Ticket, TicketType,
};
pub use values::{
    BuyerId, ClientSecret, CorrelationId, Currency, IdempotencyKey, InvalidValue, MoneyMinor, Name, PaymentRef,
    Quantity, Reason, Timestamp,
};

/// Where fresh ticket codes come from. The engine uses the OS's random generator; tests use a
/// counter.
pub trait Entropy {
    fn ticket_code(&mut self) -> TicketCode;
    /// A secret seed (the waiting room's shuffle): 256 bits from two ticket codes.
    fn seed(&mut self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(&self.ticket_code().0.to_le_bytes());
        seed[16..].copy_from_slice(&self.ticket_code().0.to_le_bytes());
        seed
    }
}

/// Everything `decide` may know about the world besides the state and the command.
pub struct Ctx<'a> {
    pub now: Timestamp,
    pub entropy: &'a mut dyn Entropy,
    /// The id of the request (or saga step) the command comes from; payment events record it
    /// for the order's timeline.
    pub correlation_id: Option<&'a str>,
}

/// What `decide` concluded: the events to append (empty for an idempotent retry or a no-op)
/// and what to tell the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub events: Vec<Event>,
    pub outcome: Outcome,
}

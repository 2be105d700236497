//! Why `decide` refused a command. Each variant has a stable snake_case `code()` that the API
//! maps to an HTTP status in one table.

use crate::ids::TicketTypeId;
use crate::values::{InvalidValue, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No ticket left for (at least) one requested ticket type.
    #[error("sold out: ticket type {} has no tickets left", .ticket_type.0)]
    SoldOut { ticket_type: TicketTypeId },
    /// Some tickets left, but fewer than requested.
    #[error("only {available} tickets of type {} left", .ticket_type.0)]
    InsufficientInventory { ticket_type: TicketTypeId, available: u32 },
    /// The buyer would exceed the sale's per-buyer limit.
    #[error("limit of {limit} tickets per buyer; buyer already has {current}")]
    LimitExceeded { limit: u32, current: u32 },
    /// The sale is not open (status or sale window).
    #[error("the sale is not open")]
    SaleNotOpen,
    /// The hold's (or order's) deadline has passed.
    #[error("the hold has expired")]
    HoldExpired,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invalid: {0}")]
    Invalid(InvalidValue),
    /// The partition already has a sale.
    #[error("the sale already exists")]
    AlreadyExists,
    #[error("ticket already checked in at {} ms", .at.0)]
    AlreadyCheckedIn { at: Timestamp },
    /// The same idempotency key was used before with a different request.
    #[error("idempotency key already used for a different request")]
    IdempotencyConflict,
    /// The command does not apply in the current state (e.g. paying a cancelled order).
    #[error("conflict: {0}")]
    Conflict(&'static str),
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::SoldOut { .. } => "sold_out",
            Rejection::InsufficientInventory { .. } => "insufficient_inventory",
            Rejection::LimitExceeded { .. } => "limit_exceeded",
            Rejection::SaleNotOpen => "sale_not_open",
            Rejection::HoldExpired => "hold_expired",
            Rejection::NotFound(_) => "not_found",
            Rejection::Invalid(_) => "invalid",
            Rejection::AlreadyExists => "already_exists",
            Rejection::AlreadyCheckedIn { .. } => "already_checked_in",
            Rejection::IdempotencyConflict => "idempotency_conflict",
            Rejection::Conflict(_) => "conflict",
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Rejection {
        Rejection::Invalid(InvalidValue { field, reason })
    }
}

impl From<InvalidValue> for Rejection {
    fn from(v: InvalidValue) -> Self {
        Rejection::Invalid(v)
    }
}

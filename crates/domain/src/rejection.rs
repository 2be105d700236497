//! Why `decide` refused a command. Each variant has a stable snake_case `code()` that the API
//! maps to an HTTP status in one table; a conflict also says which rule it broke
//! ([`ConflictReason`]) and a missing thing says what it was ([`Entity`]), each with a stable
//! snake_case name a client may branch on.

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
    /// The hold existed and has ended (released, expired, or checked out into an order);
    /// ended holds are not kept.
    #[error("the hold has ended (released, expired or checked out)")]
    HoldEnded,
    #[error("{0} not found")]
    NotFound(Entity),
    #[error("invalid: {0}")]
    Invalid(InvalidValue),
    /// The sale already exists.
    #[error("the sale already exists")]
    AlreadyExists,
    #[error("ticket already checked in at {} ms", .at.0)]
    AlreadyCheckedIn { at: Timestamp },
    /// The same idempotency key was used before with a different request.
    #[error("idempotency key already used for a different request")]
    IdempotencyConflict,
    /// The sale has a waiting room and the buyer holds no live admission from it.
    #[error("the sale has a waiting room: join it and wait to be admitted")]
    AdmissionRequired,
    /// The waiting room holds as many buyers as it may.
    #[error("the waiting room is full")]
    QueueFull,
    /// The command does not apply in the current state (e.g. paying a cancelled order).
    #[error("conflict: {0}")]
    Conflict(ConflictReason),
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::SoldOut { .. } => "sold_out",
            Rejection::InsufficientInventory { .. } => "insufficient_inventory",
            Rejection::LimitExceeded { .. } => "limit_exceeded",
            Rejection::SaleNotOpen => "sale_not_open",
            Rejection::HoldExpired => "hold_expired",
            Rejection::HoldEnded => "hold_ended",
            Rejection::NotFound(_) => "not_found",
            Rejection::Invalid(_) => "invalid",
            Rejection::AlreadyExists => "already_exists",
            Rejection::AlreadyCheckedIn { .. } => "already_checked_in",
            Rejection::IdempotencyConflict => "idempotency_conflict",
            Rejection::AdmissionRequired => "admission_required",
            Rejection::QueueFull => "queue_full",
            Rejection::Conflict(_) => "conflict",
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Rejection {
        Rejection::Invalid(crate::values::invalid(field, reason))
    }
}

impl From<InvalidValue> for Rejection {
    fn from(v: InvalidValue) -> Self {
        Rejection::Invalid(v)
    }
}

/// Which rule of the current state a command ran into ([`Rejection::Conflict`]). The
/// snake_case name ([`ConflictReason::as_str`]) is stable: the API puts it in the error body
/// and lists every one ([`ConflictReason::ALL`]) in its OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictReason {
    /// Failing or cancelling an order that no longer awaits payment.
    OrderNotAwaitingPayment,
    /// Adding to the catalog of a closed sale.
    SaleClosed,
    /// A new quota smaller than what its ticket types already hold and sold.
    CapacityBelowUsage,
    /// A status change the sale's life cycle does not allow (closed is final).
    StatusTransition,
    /// Confirming a payment for an order paid with another payment reference.
    OrderPaid,
    /// Confirming a payment for an order that awaits a refund, with another reference.
    OrderRefundRequired,
    /// Confirming a payment for a refunded order, with another reference.
    OrderRefunded,
    /// Confirming a payment for a cancelled order.
    OrderCancelled,
    /// Confirming a payment for an order whose payment failed.
    OrderPaymentFailed,
    /// No fresh ticket code after `limits::CODE_DRAWS_MAX` draws (a broken entropy source).
    TicketCodeCollision,
    /// Refunding an order that is not paid.
    OrderNotPaid,
    /// Refunding or checking in a ticket that was refunded.
    TicketRefunded,
    /// Paying, cancelling or confirming an order whose payment is under way (another
    /// method, or one already authorised and being captured).
    PaymentInProgress,
    /// A new payment attempt after `limits::PAYMENT_ATTEMPTS_MAX`.
    PaymentAttemptsExhausted,
    /// Paying offline for a sale that takes no offline payments.
    PaymentMethodNotOffered,
    /// A provider report naming another payment than the attempt's.
    PaymentIntentMismatch,
    /// A refund after `limits::REFUNDS_MAX`.
    RefundsExhausted,
    /// Joining a waiting room before its pre-queue opens.
    RoomNotOpen,
    /// Reconfiguring a waiting room someone has joined.
    RoomInUse,
    /// Leaving a waiting room one is not queued or admitted in.
    NotInRoom,
}

impl ConflictReason {
    /// Every reason, in declaration order (`reason as usize` indexes it).
    pub const ALL: [ConflictReason; 20] = [
        ConflictReason::OrderNotAwaitingPayment,
        ConflictReason::SaleClosed,
        ConflictReason::CapacityBelowUsage,
        ConflictReason::StatusTransition,
        ConflictReason::OrderPaid,
        ConflictReason::OrderRefundRequired,
        ConflictReason::OrderRefunded,
        ConflictReason::OrderCancelled,
        ConflictReason::OrderPaymentFailed,
        ConflictReason::TicketCodeCollision,
        ConflictReason::OrderNotPaid,
        ConflictReason::TicketRefunded,
        ConflictReason::PaymentInProgress,
        ConflictReason::PaymentAttemptsExhausted,
        ConflictReason::PaymentMethodNotOffered,
        ConflictReason::PaymentIntentMismatch,
        ConflictReason::RefundsExhausted,
        ConflictReason::RoomNotOpen,
        ConflictReason::RoomInUse,
        ConflictReason::NotInRoom,
    ];

    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConflictReason::OrderNotAwaitingPayment => "order_not_awaiting_payment",
            ConflictReason::SaleClosed => "sale_closed",
            ConflictReason::CapacityBelowUsage => "capacity_below_usage",
            ConflictReason::StatusTransition => "status_transition",
            ConflictReason::OrderPaid => "order_paid",
            ConflictReason::OrderRefundRequired => "order_refund_required",
            ConflictReason::OrderRefunded => "order_refunded",
            ConflictReason::OrderCancelled => "order_cancelled",
            ConflictReason::OrderPaymentFailed => "order_payment_failed",
            ConflictReason::TicketCodeCollision => "ticket_code_collision",
            ConflictReason::OrderNotPaid => "order_not_paid",
            ConflictReason::TicketRefunded => "ticket_refunded",
            ConflictReason::PaymentInProgress => "payment_in_progress",
            ConflictReason::PaymentAttemptsExhausted => "payment_attempts_exhausted",
            ConflictReason::PaymentMethodNotOffered => "payment_method_not_offered",
            ConflictReason::PaymentIntentMismatch => "payment_intent_mismatch",
            ConflictReason::RefundsExhausted => "refunds_exhausted",
            ConflictReason::RoomNotOpen => "room_not_open",
            ConflictReason::RoomInUse => "room_in_use",
            ConflictReason::NotInRoom => "not_in_room",
        }
    }

    /// What the reason means, in words.
    pub const fn message(self) -> &'static str {
        match self {
            ConflictReason::OrderNotAwaitingPayment => "the order is no longer awaiting payment",
            ConflictReason::SaleClosed => "the sale is closed",
            ConflictReason::CapacityBelowUsage => {
                "the capacity is below the tickets its ticket types already hold and sold"
            }
            ConflictReason::StatusTransition => "the sale cannot move from its current status to that one",
            ConflictReason::OrderPaid => "the order is already paid with another payment reference",
            ConflictReason::OrderRefundRequired => "the order awaits a refund of another payment",
            ConflictReason::OrderRefunded => "the order was refunded",
            ConflictReason::OrderCancelled => "the order was cancelled",
            ConflictReason::OrderPaymentFailed => "the order's payment failed",
            ConflictReason::TicketCodeCollision => "no fresh ticket code could be drawn",
            ConflictReason::OrderNotPaid => "the order is not paid",
            ConflictReason::TicketRefunded => "the ticket was refunded",
            ConflictReason::PaymentInProgress => "a payment of this order is under way",
            ConflictReason::PaymentAttemptsExhausted => "the order has made its last payment attempt",
            ConflictReason::PaymentMethodNotOffered => "this sale does not offer that payment method",
            ConflictReason::PaymentIntentMismatch => "the report names another payment than this attempt's",
            ConflictReason::RefundsExhausted => "the order has had its last refund",
            ConflictReason::RoomNotOpen => "the waiting room's pre-queue is not open yet",
            ConflictReason::RoomInUse => "buyers have joined the waiting room already",
            ConflictReason::NotInRoom => "the buyer is not queued or admitted in the waiting room",
        }
    }
}

impl std::fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// What a command named that does not exist ([`Rejection::NotFound`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Sale,
    TicketType,
    Hold,
    Order,
    Ticket,
    Payment,
    Refund,
    Quota,
}

impl Entity {
    /// Every entity, in declaration order (`entity as usize` indexes it).
    pub const ALL: [Entity; 8] = [
        Entity::Sale,
        Entity::TicketType,
        Entity::Hold,
        Entity::Order,
        Entity::Ticket,
        Entity::Payment,
        Entity::Refund,
        Entity::Quota,
    ];

    /// The stable snake_case name, also what messages say ("ticket_type not found").
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Sale => "sale",
            Entity::TicketType => "ticket_type",
            Entity::Hold => "hold",
            Entity::Order => "order",
            Entity::Ticket => "ticket",
            Entity::Payment => "payment",
            Entity::Refund => "refund",
            Entity::Quota => "quota",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Checked when compiling: each `ALL` is indexed by its enum, so it lists every value once.
const _: () = {
    let mut i = 0;
    while i < ConflictReason::ALL.len() {
        assert!(ConflictReason::ALL[i] as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < Entity::ALL.len() {
        assert!(Entity::ALL[i] as usize == i);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_messages_are_words() {
        let mut seen = std::collections::HashSet::new();
        for r in ConflictReason::ALL {
            let name = r.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
            assert!(r.to_string().contains(' '), "{name}: {r}");
        }
        for e in Entity::ALL {
            assert!(seen.insert(e.as_str()), "{} twice", e.as_str());
        }
        assert_eq!(
            Rejection::Conflict(ConflictReason::OrderPaid).to_string(),
            "conflict: the order is already paid with another payment reference"
        );
        assert_eq!(
            Rejection::NotFound(Entity::TicketType).to_string(),
            "ticket_type not found"
        );
    }
}

//! Events: facts that happened to a sale. The log stores them (see `codec`); `evolve` folds them
//! into state. Events carry every value `evolve` needs (ids, codes, times): replay never decides.

use serde::{Deserialize, Serialize};

use crate::command::{Items, SaleStatus};
use crate::ids::{HoldId, OrderId, QuotaId, TicketCode, TicketTypeId};
use crate::values::{BuyerId, Currency, IdempotencyKey, MoneyMinor, Name, PaymentRef, Reason, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IssuedTicket {
    pub code: TicketCode,
    pub ticket_type: TicketTypeId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    SaleCreated {
        name: Name,
        currency: Currency,
        hold_ttl_ms: u64,
        max_tickets_per_buyer: Option<u32>,
        opens_at: Option<Timestamp>,
        closes_at: Option<Timestamp>,
    },
    TicketTypeAdded {
        id: TicketTypeId,
        name: Name,
        price: MoneyMinor,
        max_per_order: Option<u32>,
    },
    QuotaAdded {
        id: QuotaId,
        name: Name,
        capacity: u32,
        ticket_types: Vec<TicketTypeId>,
    },
    SaleStatusChanged {
        status: SaleStatus,
    },
    HoldPlaced {
        hold: HoldId,
        buyer: BuyerId,
        items: Items,
        expires_at: Timestamp,
        idempotency_key: Option<IdempotencyKey>,
    },
    HoldReleased {
        hold: HoldId,
    },
    HoldExpired {
        hold: HoldId,
    },
    /// Checkout: the hold becomes an order awaiting payment; inventory stays taken and the
    /// order keeps the hold's deadline.
    OrderPlaced {
        order: OrderId,
        hold: HoldId,
        total: MoneyMinor,
        at: Timestamp,
        idempotency_key: Option<IdempotencyKey>,
    },
    /// Tickets issued. `reinstated` is true when payment arrived after the order expired and
    /// inventory (and the buyer's limit) still allowed taking the tickets again.
    OrderPaid {
        order: OrderId,
        payment_ref: PaymentRef,
        tickets: Vec<IssuedTicket>,
        reinstated: bool,
        at: Timestamp,
    },
    OrderPaymentFailed {
        order: OrderId,
        reason: Reason,
    },
    OrderExpired {
        order: OrderId,
    },
    OrderCancelled {
        order: OrderId,
    },
    /// Payment arrived for an expired order that could not be reinstated: money must go back.
    OrderRefundRequired {
        order: OrderId,
        payment_ref: PaymentRef,
        at: Timestamp,
    },
    /// Tickets refunded (they return to inventory), or a `refund_required` order settled
    /// (`tickets` empty). When no valid ticket remains the order is `refunded`.
    OrderRefunded {
        order: OrderId,
        tickets: Vec<TicketCode>,
        amount: MoneyMinor,
        at: Timestamp,
    },
    TicketCheckedIn {
        code: TicketCode,
        at: Timestamp,
    },
}

//! The state of one sale: the fold of its events. Owned by exactly one writer (the engine's
//! shard); readers see it through the engine's read path.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::command::{Items, SaleStatus};
use crate::ids::{HoldId, OrderId, QuotaId, TicketCode, TicketTypeId};
use crate::values::{BuyerId, Currency, IdempotencyKey, MoneyMinor, Name, PaymentRef, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    pub name: Name,
    pub currency: Currency,
    pub status: SaleStatus,
    pub hold_ttl_ms: u64,
    pub max_tickets_per_buyer: Option<u32>,
    pub opens_at: Option<Timestamp>,
    pub closes_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketType {
    pub id: TicketTypeId,
    pub name: Name,
    pub price: MoneyMinor,
    pub max_per_order: Option<u32>,
    /// Every quota this type counts against (N:M). Empty = not sellable.
    pub quotas: SmallVec<[QuotaId; 4]>,
    /// Tickets of this type in active holds and unpaid orders.
    pub held: u32,
    /// Tickets of this type paid and not refunded.
    pub sold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub id: QuotaId,
    pub name: Name,
    pub capacity: u32,
    pub ticket_types: Vec<TicketTypeId>,
    /// Invariant: `held + sold <= capacity`, and each equals the sum over its ticket types.
    pub held: u32,
    pub sold: u32,
}

impl Quota {
    pub fn available(&self) -> u32 {
        self.capacity.saturating_sub(self.held + self.sold)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HoldState {
    Active,
    Released,
    Expired,
    /// Checked out into this order.
    Converted(OrderId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: HoldId,
    pub buyer: BuyerId,
    pub items: Items,
    pub total: MoneyMinor,
    pub expires_at: Timestamp,
    pub state: HoldState,
}

impl Hold {
    pub fn quantity(&self) -> u32 {
        self.items.iter().map(|i| i.quantity.get()).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderState {
    AwaitingPayment,
    Paid,
    PaymentFailed,
    Cancelled,
    Expired,
    RefundRequired,
    /// Every ticket refunded, or a `refund_required` order settled.
    Refunded,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::AwaitingPayment => "awaiting_payment",
            OrderState::Paid => "paid",
            OrderState::PaymentFailed => "payment_failed",
            OrderState::Cancelled => "cancelled",
            OrderState::Expired => "expired",
            OrderState::RefundRequired => "refund_required",
            OrderState::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub hold: HoldId,
    pub buyer: BuyerId,
    pub items: Items,
    pub total: MoneyMinor,
    pub created_at: Timestamp,
    /// Payment deadline (the hold's). After it the order expires and inventory returns.
    pub expires_at: Timestamp,
    pub state: OrderState,
    pub payment_ref: Option<PaymentRef>,
    pub paid_at: Option<Timestamp>,
    /// Codes of the tickets issued on payment, in issue order.
    pub tickets: Vec<TicketCode>,
    pub refunded: MoneyMinor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub code: TicketCode,
    pub order: OrderId,
    pub ticket_type: TicketTypeId,
    pub refunded: bool,
    pub checked_in_at: Option<Timestamp>,
}

/// What a command produced, so that an idempotent retry can answer the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    SaleCreated,
    TicketTypeAdded(TicketTypeId),
    QuotaAdded(QuotaId),
    Hold(HoldId),
    Order(OrderId),
    CheckedIn {
        code: TicketCode,
        at: Timestamp,
    },
    /// Nothing to report beyond success (status change, release, payment, refund, expiry).
    Done,
}

/// A remembered idempotent command: a fingerprint of the request and what it produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyEntry {
    pub fingerprint: u64,
    pub outcome: Outcome,
}

/// Something with a deadline, ordered by time in `SaleState::deadlines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Deadline {
    Hold(HoldId),
    Order(OrderId),
}

/// The whole state of one sale. `Default` is the state of a partition before `SaleCreated`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleState {
    pub sale: Option<Sale>,
    /// Indexed by `TicketTypeId`.
    pub ticket_types: Vec<TicketType>,
    /// Indexed by `QuotaId`.
    pub quotas: Vec<Quota>,
    pub holds: FxHashMap<HoldId, Hold>,
    pub orders: FxHashMap<OrderId, Order>,
    pub tickets: FxHashMap<TicketCode, Ticket>,
    /// Tickets counted against each buyer's limit: active holds, unpaid and paid orders.
    pub buyer_tickets: FxHashMap<BuyerId, u32>,
    pub idempotency: FxHashMap<(BuyerId, IdempotencyKey), IdempotencyEntry>,
    /// Active holds and unpaid orders by deadline.
    pub deadlines: BTreeSet<(Timestamp, Deadline)>,
    pub last_hold: u64,
    pub last_order: u64,
}

impl SaleState {
    /// When the engine must next send `ExpireDue`, if anything is pending.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Tickets of this type that could be held now: the minimum over its quotas; 0 when the
    /// type belongs to no quota.
    pub fn available(&self, ticket_type: TicketTypeId) -> u32 {
        let Some(tt) = self.ticket_types.get(ticket_type.0 as usize) else {
            return 0;
        };
        tt.quotas
            .iter()
            .map(|q| self.quotas[q.0 as usize].available())
            .min()
            .unwrap_or(0)
    }
}

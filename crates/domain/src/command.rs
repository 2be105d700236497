//! Commands: what a caller asks a sale to do. Already parsed into valid values by the caller
//! (the API layer); `decide` checks everything that depends on state.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::ids::{HoldId, OrderId, QuotaId, TicketCode, TicketTypeId};
use crate::payment::{PaymentMethod, PaymentUpdate, RefundUpdate};
use crate::room::RoomConfig;
use crate::values::{BuyerId, Currency, IdempotencyKey, MoneyMinor, Name, PaymentRef, Quantity, Timestamp};

/// One line of a hold: so many tickets of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Item {
    pub ticket_type: TicketTypeId,
    pub quantity: Quantity,
}

/// The lines of a hold. Inline for the common case of up to four lines.
pub type Items = SmallVec<[Item; 4]>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SaleStatus {
    Draft,
    Open,
    Paused,
    Closed,
    /// Hidden: no longer shown to the public (a finished or abandoned sale). Final.
    Archived,
}

impl SaleStatus {
    /// Every status, in declaration order.
    pub const ALL: [SaleStatus; 5] = [
        SaleStatus::Draft,
        SaleStatus::Open,
        SaleStatus::Paused,
        SaleStatus::Closed,
        SaleStatus::Archived,
    ];

    /// Whether the public may see the sale: drafts and archived sales are the organiser's only.
    pub fn is_public(self) -> bool {
        !matches!(self, SaleStatus::Draft | SaleStatus::Archived)
    }

    /// Whether the catalog may still change (closed and archived sales are final).
    pub fn is_final(self) -> bool {
        matches!(self, SaleStatus::Closed | SaleStatus::Archived)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SaleStatus::Draft => "draft",
            SaleStatus::Open => "open",
            SaleStatus::Paused => "paused",
            SaleStatus::Closed => "closed",
            SaleStatus::Archived => "archived",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSale {
    pub name: Name,
    pub currency: Currency,
    /// Bounded by `limits::HOLD_TTL_MS_MIN..=HOLD_TTL_MS_MAX`; checked by `decide`.
    pub hold_ttl_ms: u64,
    /// Tickets one buyer may have in active holds, pending and paid orders together.
    pub max_tickets_per_buyer: Option<u32>,
    pub opens_at: Option<Timestamp>,
    pub closes_at: Option<Timestamp>,
    /// How long an order may wait for an offline payment once chosen (bounded by
    /// `limits::HOLD_TTL_MS_MIN..=OFFLINE_PAYMENT_TTL_MS_MAX`); `None`: no offline payments.
    pub offline_payment_ttl_ms: Option<u64>,
}

/// Who asks to cancel an order: its buyer, or the organiser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    Buyer(BuyerId),
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// First command of every sale.
    CreateSale(CreateSale),
    AddTicketType {
        name: Name,
        price: MoneyMinor,
        max_per_order: Option<u32>,
    },
    AddQuota {
        name: Name,
        capacity: u32,
        ticket_types: Vec<TicketTypeId>,
    },
    /// Changes a ticket type: its name, its price for holds placed from now on (holds and
    /// orders keep the total they were placed with), its per-order maximum (`Some(None)`
    /// removes it). `None` leaves a field as it is.
    EditTicketType {
        ticket_type: TicketTypeId,
        name: Option<Name>,
        price: Option<MoneyMinor>,
        max_per_order: Option<Option<u32>>,
    },
    /// Sets a quota's capacity: raised freely, lowered only down to what it holds and sold.
    SetQuotaCapacity {
        quota: QuotaId,
        capacity: u32,
    },
    /// An organiser's catalog command (`AddTicketType`, `AddQuota`, `EditTicketType`,
    /// `SetQuotaCapacity`) made safe to retry: the first success under `key` is remembered
    /// for the idempotency TTL, a retry with the same request answers its outcome, and the
    /// key with another request is `IdempotencyConflict`.
    Keyed {
        key: IdempotencyKey,
        command: Box<Command>,
    },
    /// draft→open, open↔paused, draft/open/paused→closed (final for selling),
    /// draft/paused/closed→archived (hidden from the public; final).
    SetStatus(SaleStatus),
    PlaceHold {
        buyer: BuyerId,
        items: Items,
        idempotency_key: Option<IdempotencyKey>,
    },
    ReleaseHold {
        buyer: BuyerId,
        hold: HoldId,
    },
    /// Issued by the engine's timer when `SaleState::next_deadline() <= now`: expires every
    /// hold and unpaid order whose deadline has passed (at most `limits::EXPIRE_BATCH_MAX` per command).
    ExpireDue,
    Checkout {
        buyer: BuyerId,
        hold: HoldId,
        idempotency_key: Option<IdempotencyKey>,
    },
    /// The buyer pays an order awaiting payment with `method`: a new payment attempt (or the
    /// one under way with the same method, again).
    RequestPayment {
        buyer: BuyerId,
        order: OrderId,
        method: PaymentMethod,
    },
    /// The payment saga, a provider's webhook or the reconciler report what the provider
    /// said about attempt `attempt`. Safe to repeat and to receive out of order.
    RecordPayment {
        order: OrderId,
        attempt: u32,
        update: PaymentUpdate,
    },
    /// The payment saga reports what the provider said about refund `refund`.
    RecordRefund {
        order: OrderId,
        refund: u32,
        update: RefundUpdate,
    },
    /// The organiser confirms a payment received outside any provider (bank transfer, cash
    /// at the box office), under their reference.
    ConfirmPayment {
        order: OrderId,
        payment_ref: PaymentRef,
    },
    CancelOrder {
        actor: Actor,
        order: OrderId,
    },
    /// Refund some tickets of a paid order (`None` = all remaining), or settle a
    /// `refund_required` order (then `tickets` must be `None`).
    Refund {
        order: OrderId,
        tickets: Option<Vec<TicketCode>>,
    },
    CheckIn {
        code: TicketCode,
    },
    /// The organiser puts a waiting room in front of the sale (or changes it before anyone
    /// joined).
    ConfigureRoom(RoomConfig),
    /// A buyer joins the waiting room (again after leaving or once their admission ended);
    /// joining while queued or admitted changes nothing.
    JoinRoom {
        buyer: BuyerId,
    },
    LeaveRoom {
        buyer: BuyerId,
    },
    /// Issued by the engine's timer when `room::next_tick` has passed: shuffles the pre-queue
    /// at `opens_at`, expires admissions that ran out, admits the next batch.
    RoomTick,
}

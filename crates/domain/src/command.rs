//! Commands: what a caller asks a sale to do. Already parsed into valid values by the caller
//! (the API layer); `decide` checks everything that depends on state.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::ids::{HoldId, OrderId, TicketCode, TicketTypeId};
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
}

impl SaleStatus {
    /// Every status, in declaration order.
    pub const ALL: [SaleStatus; 4] = [
        SaleStatus::Draft,
        SaleStatus::Open,
        SaleStatus::Paused,
        SaleStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SaleStatus::Draft => "draft",
            SaleStatus::Open => "open",
            SaleStatus::Paused => "paused",
            SaleStatus::Closed => "closed",
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
    /// draft→open, open↔paused, any→closed (closed is final).
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

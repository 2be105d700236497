//! Events: facts that happened to a sale. The log stores them (see `codec`); `evolve` folds them
//! into state. Events carry every value `evolve` needs (ids, codes, times): replay never decides.

use serde::{Deserialize, Serialize};

use crate::command::{Items, SaleStatus};
use crate::ids::{HoldId, OrderId, QuotaId, TicketCode, TicketTypeId};
use crate::payment::PaymentMethod;
use crate::room::RoomConfig;
use crate::state::Outcome;
use crate::values::{
    BuyerId, ClientSecret, CorrelationId, Currency, IdempotencyKey, MoneyMinor, Name, PaymentRef, Reason, Timestamp,
};

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
        offline_payment_ttl_ms: Option<u64>,
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
    /// A ticket type's new name, price (for holds placed from now on) and per-order maximum.
    TicketTypeEdited {
        id: TicketTypeId,
        name: Name,
        price: MoneyMinor,
        max_per_order: Option<u32>,
    },
    /// The organiser's idempotency key `key` was used for a request with this fingerprint,
    /// which produced `outcome` (the command's own events come before it in the record).
    OrganiserKeyUsed {
        key: IdempotencyKey,
        fingerprint: u64,
        outcome: Outcome,
        at: Timestamp,
    },
    /// A quota's new capacity, at least what it holds and sold when it was set.
    QuotaCapacitySet {
        id: QuotaId,
        capacity: u32,
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
    /// The order's deadline passed before it was paid: its tickets return.
    OrderExpired {
        order: OrderId,
        /// Unknown (`Timestamp(0)`) in records written before version 2.
        at: Timestamp,
    },
    /// Its buyer or the organiser cancelled the unpaid order: its tickets return.
    OrderCancelled {
        order: OrderId,
        /// Unknown (`Timestamp(0)`) in records written before version 2.
        at: Timestamp,
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
    /// A new payment attempt; the order's deadline is `expires_at` from now on (later than
    /// before for an offline payment).
    PaymentRequested {
        order: OrderId,
        attempt: u32,
        method: PaymentMethod,
        amount: MoneyMinor,
        expires_at: Timestamp,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// The provider created the payment.
    PaymentCreated {
        order: OrderId,
        attempt: u32,
        intent: PaymentRef,
        client_secret: Option<ClientSecret>,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// The payment is authorised while the order holds its tickets — again, when
    /// `reinstated`: the order had expired and took its still-free tickets back.
    PaymentAuthorised {
        order: OrderId,
        attempt: u32,
        intent: PaymentRef,
        reinstated: bool,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// The money moved. `OrderPaid` follows in the same record when the order held its
    /// tickets; otherwise a `RefundRequested` gives it back.
    PaymentCaptured {
        order: OrderId,
        attempt: u32,
        intent: PaymentRef,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// The payment may be authorised but the order no longer holds its tickets (expired,
    /// cancelled, superseded): the saga must void it.
    PaymentVoidRequired {
        order: OrderId,
        attempt: u32,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// Voided, abandoned or superseded: no money moved.
    PaymentVoided {
        order: OrderId,
        attempt: u32,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// The buyer's payment method was refused; the order awaits payment again.
    PaymentDeclined {
        order: OrderId,
        attempt: u32,
        reason: Reason,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// The provider refused the payment for good; the order awaits payment again.
    PaymentFailed {
        order: OrderId,
        attempt: u32,
        reason: Reason,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// Money goes back: `amount` of attempt `attempt`'s captured payment (through its
    /// provider), or of an offline payment (`attempt` `None`: the organiser pays it back).
    RefundRequested {
        order: OrderId,
        refund: u32,
        attempt: Option<u32>,
        amount: MoneyMinor,
        at: Timestamp,
    },
    RefundIssued {
        order: OrderId,
        refund: u32,
        provider_ref: PaymentRef,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    RefundFailed {
        order: OrderId,
        refund: u32,
        reason: Reason,
        at: Timestamp,
        correlation_id: Option<CorrelationId>,
    },
    /// The sale has a waiting room. `seed` (drawn by the engine) orders the pre-queue; its
    /// SHA-256 is public, the seed only once the sale has ended.
    RoomConfigured {
        config: RoomConfig,
        seed: [u8; 32],
    },
    /// The buyer's place is the back of the (pre-)queue.
    BuyerJoined {
        buyer: BuyerId,
        at: Timestamp,
    },
    /// A queued or admitted buyer left.
    BuyerLeft {
        buyer: BuyerId,
        at: Timestamp,
    },
    /// The pre-queue is ordered by the seed's permutation; joins from now on queue behind.
    PrequeueShuffled {
        at: Timestamp,
    },
    /// The next `count` queued buyers are admitted until `at` + the session length.
    BuyersAdmitted {
        count: u32,
        at: Timestamp,
    },
    /// The `count` oldest live admissions ran out unused.
    AdmissionsExpired {
        count: u32,
        at: Timestamp,
    },
    /// The buyer checked out under their admission, which ends.
    AdmissionUsed {
        buyer: BuyerId,
    },
}

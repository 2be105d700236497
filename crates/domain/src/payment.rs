//! Payments of an order: each attempt, the steps of its saga, and refunds.
//!
//! An order is paid through a **payment** (one attempt per method the buyer tries): requested
//! by the buyer, created at the provider, authorised (the money reserved), then captured (the
//! order is paid) — or declined, voided (no money moved) or failed. Every step is an event
//! decided by the sale's writer; the provider is called by the payment saga (a follower of the
//! log, outside the domain), which reports each outcome back as a `RecordPayment` command.
//!
//! The rule the saga's steps keep: **money is captured only while the order holds its
//! tickets**. An authorisation that arrives for an order that no longer holds them is voided
//! (no money moved), unless the tickets are still free, in which case the order takes them
//! again (reinstated) and the payment is captured.

use serde::{Deserialize, Serialize};

use crate::values::{ClientSecret, CorrelationId, MoneyMinor, PaymentRef, Reason, Timestamp};

/// How a buyer pays. Each provider method is served by its adapter; `Offline` is confirmed by
/// the organiser (bank transfer, pay at the venue's office).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PaymentMethod {
    /// Instant success (the demo and tests).
    Test,
    /// A provider with configurable latency and failures (the demo and the bench).
    Simulated,
    /// Stripe PaymentIntents with manual capture.
    Stripe,
    /// Paid outside any provider; the organiser confirms it.
    Offline,
}

impl PaymentMethod {
    pub const ALL: [PaymentMethod; 4] = [
        PaymentMethod::Test,
        PaymentMethod::Simulated,
        PaymentMethod::Stripe,
        PaymentMethod::Offline,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Test => "test",
            PaymentMethod::Simulated => "simulated",
            PaymentMethod::Stripe => "stripe",
            PaymentMethod::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentMethod> {
        PaymentMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether a payment provider (and so the saga) handles this method.
    pub const fn is_provider(self) -> bool {
        !matches!(self, PaymentMethod::Offline)
    }
}

/// Where one payment attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentState {
    /// The saga must create the payment at the provider.
    Requested,
    /// Created; the buyer confirms it with the provider (Stripe's front end, 3-D Secure).
    AwaitingBuyer,
    /// Authorised while the order holds its tickets: the saga captures it.
    Authorised,
    /// Captured: the money moved and the order is paid.
    Captured,
    /// Possibly authorised for an order that no longer holds its tickets: the saga voids it.
    VoidRequired,
    /// Voided, abandoned or superseded: no money moved.
    Voided,
    /// The buyer's payment method was refused; the buyer may try again.
    Declined,
    /// The provider refused the payment for good (not a decline).
    Failed,
    /// Waiting for an offline payment the organiser confirms.
    AwaitingOffline,
}

impl PaymentState {
    pub const ALL: [PaymentState; 9] = [
        PaymentState::Requested,
        PaymentState::AwaitingBuyer,
        PaymentState::Authorised,
        PaymentState::Captured,
        PaymentState::VoidRequired,
        PaymentState::Voided,
        PaymentState::Declined,
        PaymentState::Failed,
        PaymentState::AwaitingOffline,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentState::Requested => "requested",
            PaymentState::AwaitingBuyer => "awaiting_buyer",
            PaymentState::Authorised => "authorised",
            PaymentState::Captured => "captured",
            PaymentState::VoidRequired => "void_required",
            PaymentState::Voided => "voided",
            PaymentState::Declined => "declined",
            PaymentState::Failed => "failed",
            PaymentState::AwaitingOffline => "awaiting_offline",
        }
    }

    /// The saga has a provider call to make for a payment in this state.
    pub const fn needs_provider(self) -> bool {
        matches!(
            self,
            PaymentState::Requested | PaymentState::Authorised | PaymentState::VoidRequired
        )
    }

    /// The attempt is over: nothing will change it but a late report from the provider.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            PaymentState::Captured | PaymentState::Voided | PaymentState::Declined | PaymentState::Failed
        )
    }

    /// The attempt still stands between the buyer and a paid order (the order is pending on it).
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            PaymentState::Requested
                | PaymentState::AwaitingBuyer
                | PaymentState::Authorised
                | PaymentState::AwaitingOffline
        )
    }
}

/// One step of a payment's history, for the order's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentStep {
    pub at: Timestamp,
    pub state: PaymentState,
    /// The request, webhook or saga step that caused it.
    pub correlation_id: Option<CorrelationId>,
}

/// One payment attempt of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// 1 for the order's first attempt, contiguous.
    pub attempt: u32,
    pub method: PaymentMethod,
    pub amount: MoneyMinor,
    pub state: PaymentState,
    /// The provider's id of the payment, once created.
    pub intent: Option<PaymentRef>,
    /// What the buyer's front end needs to confirm the payment with the provider.
    pub client_secret: Option<ClientSecret>,
    /// Why it was declined or failed.
    pub reason: Option<Reason>,
    /// Every state it went through, oldest first (bounded by the states a payment can visit).
    pub steps: Vec<PaymentStep>,
}

/// What the saga, a webhook or the reconciler learned about a payment from its provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentUpdate {
    /// The provider created the payment; the buyer may have to confirm it.
    Created {
        intent: PaymentRef,
        client_secret: Option<ClientSecret>,
    },
    Authorised {
        intent: PaymentRef,
    },
    Captured {
        intent: PaymentRef,
    },
    /// Voided or cancelled at the provider: no money moved.
    Voided,
    /// The buyer's payment method was refused.
    Declined {
        reason: Reason,
    },
    /// The provider refused the step for good.
    Failed {
        reason: Reason,
    },
}

/// Where one refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefundState {
    /// The saga must ask the provider.
    Requested,
    /// The provider accepted it.
    Issued,
    /// The provider refused it for good: the organiser must settle it.
    Failed,
    /// Paid offline: the organiser pays it back outside taquilla.
    Manual,
}

impl RefundState {
    pub const ALL: [RefundState; 4] = [
        RefundState::Requested,
        RefundState::Issued,
        RefundState::Failed,
        RefundState::Manual,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RefundState::Requested => "requested",
            RefundState::Issued => "issued",
            RefundState::Failed => "failed",
            RefundState::Manual => "manual",
        }
    }
}

/// Money going back to the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// 1 for the order's first refund, contiguous.
    pub number: u32,
    pub amount: MoneyMinor,
    /// The attempt whose captured payment is refunded (`None`: paid offline or free).
    pub attempt: Option<u32>,
    pub state: RefundState,
    /// The provider's id of the refund, once issued.
    pub provider_ref: Option<PaymentRef>,
    pub reason: Option<Reason>,
    pub requested_at: Timestamp,
    pub settled_at: Option<Timestamp>,
}

/// What the saga learned about a refund from its provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundUpdate {
    Issued { provider_ref: PaymentRef },
    Failed { reason: Reason },
}

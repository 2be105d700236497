//! The provider port: what the saga asks a payment provider, and what it can answer.
//!
//! The model is Stripe's PaymentIntent with manual capture, which the other adapters follow:
//! a payment is first **authorised** (the money is reserved on the buyer's card; with Stripe
//! the buyer's front end confirms it, possibly through 3-D Secure), then **captured** (moved)
//! or **voided** (the reservation released, no money moved), and a captured payment can be
//! **refunded**, wholly or in part.

use std::fmt;

use taquilla_domain::{Currency, MoneyMinor};
use tower::util::BoxCloneSyncService;

/// A key that makes a provider call safe to repeat: the provider answers a repeated call with
/// the first one's result. Derived from (sale, order, attempt, step), never random, so a
/// retry after a crash sends the same key. At most 255 bytes (Stripe's limit).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Longest idempotency key a provider accepts.
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 255;

impl IdempotencyKey {
    /// `taquilla:<order>:a<attempt>:<step>`, e.g. `taquilla:ord_1_5:a2:capture`.
    pub fn new(order: &str, attempt: u32, step: &str) -> IdempotencyKey {
        let key = format!("taquilla:{order}:a{attempt}:{step}");
        assert!(
            key.len() <= IDEMPOTENCY_KEY_MAX_BYTES,
            "idempotency key too long: {key}"
        );
        IdempotencyKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The provider's id of one payment (Stripe: a PaymentIntent id, `pi_…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IntentId(pub String);

/// The provider's id of one refund (Stripe: `re_…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefundId(pub String);

/// A call to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderRequest {
    /// Creates a payment of `amount` to be captured later (manual capture). Repeating it with
    /// the same key returns the same payment.
    Authorise {
        key: IdempotencyKey,
        amount: MoneyMinor,
        currency: Currency,
        /// Our order's public id, stored with the payment (Stripe: `metadata[order_id]`) so a
        /// webhook or a reconciliation can find the order.
        order_ref: String,
        description: String,
    },
    /// Moves the authorised money (all of it).
    Capture { key: IdempotencyKey, intent: IntentId },
    /// Releases an authorisation that was not captured: no money moves.
    Void { key: IdempotencyKey, intent: IntentId },
    /// Gives back `amount` of a captured payment.
    Refund {
        key: IdempotencyKey,
        intent: IntentId,
        amount: MoneyMinor,
    },
    /// Where a payment stands now (the reconciler's question when an outcome is unknown).
    Status { intent: IntentId },
}

impl ProviderRequest {
    /// The operation's name, for metrics and logs.
    pub fn operation(&self) -> &'static str {
        match self {
            ProviderRequest::Authorise { .. } => "authorise",
            ProviderRequest::Capture { .. } => "capture",
            ProviderRequest::Void { .. } => "void",
            ProviderRequest::Refund { .. } => "refund",
            ProviderRequest::Status { .. } => "status",
        }
    }

    /// The idempotency key, for every request but `Status` (a read needs none).
    pub fn key(&self) -> Option<&IdempotencyKey> {
        match self {
            ProviderRequest::Authorise { key, .. }
            | ProviderRequest::Capture { key, .. }
            | ProviderRequest::Void { key, .. }
            | ProviderRequest::Refund { key, .. } => Some(key),
            ProviderRequest::Status { .. } => None,
        }
    }

    /// Whether the call changes anything at the provider (everything but `Status`): if such a
    /// call times out after it was sent, it may have taken effect, so its outcome is unknown.
    pub fn moves_money(&self) -> bool {
        self.key().is_some()
    }
}

/// Where a payment stands at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentStatus {
    /// Created; the buyer has not confirmed it yet (Stripe: `requires_payment_method`,
    /// `requires_confirmation`, `requires_action`, `processing`).
    AwaitingBuyer,
    /// Authorised, waiting for our capture or void (Stripe: `requires_capture`).
    Authorised,
    /// Captured: the money moved (Stripe: `succeeded`).
    Captured,
    /// Voided or abandoned: no money moved (Stripe: `canceled`).
    Voided,
    /// The buyer's payment method was refused; the payment can be retried with another.
    Declined { reason: String },
}

/// What a provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderResponse {
    /// The payment an `Authorise` created (or found, for a repeated key), with the secret the
    /// buyer's front end needs to confirm it when the provider asks the buyer (Stripe).
    Payment {
        intent: IntentId,
        client_secret: Option<String>,
        status: IntentStatus,
    },
    /// The payment's status after a `Capture`, `Void` or `Status`.
    Status(IntentStatus),
    /// A refund was accepted (`Refund`).
    Refunded { refund: RefundId },
}

/// Why a call did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The call certainly did not take effect and may be retried (a connection refused, a
    /// `429`, a `5xx` the provider says it did not act on).
    #[error("{provider}: temporary failure: {message}")]
    Transient { provider: &'static str, message: String },
    /// The call may or may not have taken effect (a timeout after sending, a dropped
    /// connection, an ambiguous `5xx`). Repeating it with the same key is safe; the
    /// reconciler asks for the status when retries run out.
    #[error("{provider}: outcome unknown: {message}")]
    Unknown { provider: &'static str, message: String },
    /// The provider refused the request as such (a `4xx` other than `429`): repeating it
    /// will not help (e.g. capturing a voided payment).
    #[error("{provider}: refused: {message}")]
    Refused { provider: &'static str, message: String },
    /// The provider is not being called now: its circuit breaker is open, or the retry
    /// budget is spent. Nothing was sent.
    #[error("{provider}: unavailable: {message}")]
    Unavailable { provider: &'static str, message: String },
}

impl ProviderError {
    /// Whether repeating the same call (same key) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::Transient { .. } | ProviderError::Unknown { .. })
    }

    /// The variant's name, for metrics and logs: `transient`, `unknown`, `refused`, `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Transient { .. } => "transient",
            ProviderError::Unknown { .. } => "unknown",
            ProviderError::Refused { .. } => "refused",
            ProviderError::Unavailable { .. } => "unavailable",
        }
    }

    /// The provider that answered (or was not called).
    pub fn provider(&self) -> &'static str {
        match self {
            ProviderError::Transient { provider, .. }
            | ProviderError::Unknown { provider, .. }
            | ProviderError::Refused { provider, .. }
            | ProviderError::Unavailable { provider, .. } => provider,
        }
    }
}

/// A provider with its resilience layers: the one shape the saga calls.
pub type PaymentService = BoxCloneSyncService<ProviderRequest, ProviderResponse, ProviderError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_order_attempt_and_step() {
        assert_eq!(
            IdempotencyKey::new("ord_1_5", 2, "capture").as_str(),
            "taquilla:ord_1_5:a2:capture"
        );
    }
}

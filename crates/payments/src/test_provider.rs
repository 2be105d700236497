//! The `test` provider: answers at once. `Authorise` is authorised immediately (no buyer step),
//! capture, void and refund succeed whenever the payment's state allows them. It keeps the same
//! idempotency and state rules as a real provider, in memory: the demo's and the tests'
//! provider.
//!
//! Its state is lost on restart. That is acceptable only because a restarted saga re-sends the
//! same keys, and the ledger is built for it: payment ids are derived from the `Authorise` key
//! (a re-sent key names the same payment; ids never repeat across restarts), and a payment id
//! of this provider's form that a fresh ledger does not know is adopted as `Authorised` (with
//! an unknown amount), so the saga's re-sent capture or void goes through. The saga's log, not
//! this provider, is what knows how far each payment got.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;
use tower::util::BoxCloneSyncService;

use crate::ledger::{Authorisation, Ledger};
use crate::provider::{IntentId, IntentStatus, PaymentService, ProviderError, ProviderRequest, ProviderResponse};

/// The provider's name in errors and metrics.
pub const NAME: &str = "test";

/// The `test` provider. Clones share one ledger.
#[derive(Debug, Clone)]
pub struct TestProvider {
    ledger: Arc<Ledger>,
}

impl Default for TestProvider {
    fn default() -> Self {
        TestProvider::new()
    }
}

impl TestProvider {
    pub fn new() -> TestProvider {
        TestProvider {
            ledger: Arc::new(Ledger::new(NAME)),
        }
    }

    /// This provider as the port's boxed service (no resilience layers: it cannot fail).
    pub fn service(&self) -> PaymentService {
        BoxCloneSyncService::new(self.clone())
    }

    /// Test control: from now on, `Authorise` for `order_ref` answers a payment in
    /// `Declined { reason: "card_declined" }`.
    pub fn decline_order(&self, order_ref: &str) {
        self.ledger.decline_order(order_ref);
    }

    /// Test control: undoes [`TestProvider::decline_order`].
    pub fn approve_order(&self, order_ref: &str) {
        self.ledger.approve_order(order_ref);
    }

    /// Test control: the buyer paid with another card after a decline (→ `Authorised`).
    pub fn confirm(&self, intent: &IntentId) -> Result<(), String> {
        self.ledger.confirm(intent)
    }

    /// The payments made for `order_ref`, oldest first, with their status.
    pub fn payments_of(&self, order_ref: &str) -> Vec<(IntentId, IntentStatus)> {
        self.ledger.payments_of(order_ref)
    }
}

impl Service<ProviderRequest> for TestProvider {
    type Response = ProviderResponse;
    type Error = ProviderError;
    type Future = Ready<Result<ProviderResponse, ProviderError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ProviderRequest) -> Self::Future {
        let authorisation = match &request {
            ProviderRequest::Authorise { order_ref, .. } if self.ledger.order_declined(order_ref) => {
                Authorisation::Declined
            }
            _ => Authorisation::Approved,
        };
        ready(self.ledger.apply(&request, authorisation))
    }
}

#[cfg(test)]
mod tests {
    use taquilla_domain::{Currency, MoneyMinor};
    use tower::ServiceExt;

    use super::*;
    use crate::provider::IdempotencyKey;

    async fn call(p: &TestProvider, request: ProviderRequest) -> Result<ProviderResponse, ProviderError> {
        p.clone().oneshot(request).await
    }

    fn authorise(order: &str) -> ProviderRequest {
        ProviderRequest::Authorise {
            key: IdempotencyKey::new(order, 1, "authorise"),
            amount: MoneyMinor::new(500).unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            order_ref: order.into(),
            description: String::new(),
        }
    }

    #[tokio::test]
    async fn after_a_restart_re_sent_keys_name_the_same_payments_and_captures_go_through() {
        let before = TestProvider::new();
        let Ok(ProviderResponse::Payment { intent: a, .. }) = call(&before, authorise("ord_a")).await else {
            panic!()
        };
        let Ok(ProviderResponse::Payment { intent: b, .. }) = call(&before, authorise("ord_b")).await else {
            panic!()
        };
        assert_ne!(a, b);
        let after = TestProvider::new();
        // The restarted saga re-sends b's authorise: the same payment id, not a fresh counter.
        let Ok(ProviderResponse::Payment { intent: b_again, .. }) = call(&after, authorise("ord_b")).await else {
            panic!()
        };
        assert_eq!(b_again, b);
        // a was authorised before the restart; its capture is re-sent and goes through.
        let capture = ProviderRequest::Capture {
            key: IdempotencyKey::new("ord_a", 1, "capture"),
            intent: a.clone(),
        };
        assert_eq!(
            call(&after, capture).await,
            Ok(ProviderResponse::Status(IntentStatus::Captured))
        );
        // Ids of another form are still unknown.
        let foreign = ProviderRequest::Status {
            intent: IntentId("simulated_pi_0123456789abcdef".into()),
        };
        assert!(matches!(
            call(&after, foreign).await,
            Err(ProviderError::Refused { .. })
        ));
    }
}

//! The `test` provider: answers at once. `Authorise` is authorised immediately (no buyer step),
//! capture, void and refund succeed whenever the payment's state allows them. It keeps the same
//! idempotency and state rules as a real provider (see [`crate::ledger`]), in memory: the demo's
//! and the tests' provider. Its state is lost on restart, which is acceptable only because a
//! restarted saga re-sends the same keys (the ledger's `//!` says what that costs).

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

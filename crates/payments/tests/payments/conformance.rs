//! The provider conformance suite against `test`, `simulated` (faults off) and `stripe` (the
//! fake Stripe on a real HTTP server), one `#[tokio::test]` per check and provider.

use std::collections::HashSet;

use taquilla_payments::conformance::Harness;
use taquilla_payments::simulated::{SimulatedConfig, SimulatedProvider};
use taquilla_payments::stripe::{StripeConfig, StripeProvider};
use taquilla_payments::test_provider::TestProvider;
use taquilla_payments::testing::{BuyerOutcome, FAKE_SECRET_KEY, FakeStripe};
use taquilla_payments::{IntentId, PaymentService};

#[derive(Default)]
pub struct TestHarness {
    current: Option<TestProvider>,
}

impl Harness for TestHarness {
    async fn provider(&mut self) -> PaymentService {
        let p = TestProvider::new();
        self.current = Some(p.clone());
        p.service()
    }

    fn arrange_decline(&mut self, order_ref: &str) {
        self.current.as_ref().expect("provider first").decline_order(order_ref);
    }

    async fn buyer_confirms(&mut self, _intent: &IntentId) {}
}

#[derive(Default)]
pub struct SimulatedHarness {
    current: Option<SimulatedProvider>,
}

impl Harness for SimulatedHarness {
    async fn provider(&mut self) -> PaymentService {
        let p = SimulatedProvider::new(SimulatedConfig::default()).expect("config");
        self.current = Some(p.clone());
        p.service()
    }

    fn arrange_decline(&mut self, order_ref: &str) {
        self.current.as_ref().expect("provider first").decline_order(order_ref);
    }

    async fn buyer_confirms(&mut self, _intent: &IntentId) {}
}

/// The Stripe adapter over HTTP against a fresh fake per provider.
#[derive(Default)]
pub struct StripeHarness {
    fake: Option<FakeStripe>,
    declined: HashSet<String>,
}

impl Harness for StripeHarness {
    async fn provider(&mut self) -> PaymentService {
        let fake = FakeStripe::start().await;
        let config = StripeConfig::new(FAKE_SECRET_KEY).with_api_base(fake.uri());
        self.fake = Some(fake);
        StripeProvider::new(&config).expect("client").service()
    }

    fn arrange_decline(&mut self, order_ref: &str) {
        self.declined.insert(order_ref.to_string());
    }

    async fn buyer_confirms(&mut self, intent: &IntentId) {
        let fake = self.fake.as_ref().expect("provider first");
        let order = fake.intent(&intent.0).and_then(|i| i.order_ref).unwrap_or_default();
        let outcome = if self.declined.contains(&order) {
            BuyerOutcome::Decline("insufficient_funds".into())
        } else {
            BuyerOutcome::Approve
        };
        fake.confirm(&intent.0, outcome).expect("confirm");
    }
}

/// One test per check, for one harness.
macro_rules! checks {
    ($harness:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let mut h = <$harness>::default();
                taquilla_payments::conformance::$check(&mut h).await;
            }
        )*
    };
}

/// Every check in the suite (keep in step with `conformance::run_all`).
macro_rules! suite {
    ($harness:ty) => {
        checks!($harness;
            authorise_then_capture,
            authorise_is_idempotent,
            capture_is_idempotent_and_happens_once,
            capture_needs_an_authorisation,
            void_releases_and_blocks_capture,
            void_before_the_buyer_confirms,
            captured_cannot_be_voided,
            refunds_up_to_the_captured_amount,
            refund_needs_a_capture,
            declined_payment_cannot_be_captured,
            unknown_payment_is_refused,
            concurrent_calls_with_one_key_make_one_payment,
        );
    };
}

mod test_provider {
    use super::*;
    suite!(TestHarness);
}

mod simulated {
    use super::*;
    suite!(SimulatedHarness);
}

mod stripe {
    use super::*;
    suite!(StripeHarness);

    /// `run_all` itself, once: the list above and the suite's stay in step.
    #[tokio::test]
    async fn run_all() {
        taquilla_payments::conformance::run_all(&mut StripeHarness::default()).await;
    }
}

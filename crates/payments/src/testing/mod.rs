//! Test doubles for other crates' tests (the `test-util` feature): a fake Stripe on a real
//! HTTP server.

pub mod fake_stripe;

pub use fake_stripe::{BuyerOutcome, Endpoint, FAKE_SECRET_KEY, FakeIntent, FakeStripe, Faults, signed_webhook};

//! Payments: one port for every payment provider, its adapters, and the resilience layers
//! that every call goes through.
//!
//! The port is a tower service ([`PaymentService`]) taking a [`ProviderRequest`] — authorise,
//! capture, void, refund, or fetch the status of a payment — and answering a
//! [`ProviderResponse`] or a [`ProviderError`]. Every request that moves money carries an
//! [`IdempotencyKey`] derived from (order, attempt, step), so a retry of any call can never
//! charge twice.
//!
//! Adapters: [`test_provider`] (instant), [`simulated`] (seeded latency and faults) and
//! [`stripe`] (Stripe's PaymentIntents over HTTP, plus its signed webhooks). All three pass
//! one conformance suite (`conformance`, with the `test-util` feature, which also brings a
//! fake Stripe on a real HTTP mock server in `testing`). [`resilience::stack`] wraps a provider
//! in a deadline, retries under a budget, a circuit breaker and metrics; [`config`] turns
//! the command line's payment flags into those providers ([`config::Providers`]).
//!
//! Nothing here is called from a buyer's request or from a shard thread: the payment saga
//! (a follower of the event log) calls the provider and reports each outcome back to the
//! engine as a command.

pub mod config;
#[cfg(feature = "test-util")]
pub mod conformance;
pub mod limits;
pub mod provider;
pub mod resilience;
pub mod simulated;
pub mod stripe;
pub mod test_provider;
#[cfg(feature = "test-util")]
pub mod testing;

mod ledger;
mod rng;

use std::future::Future;
use std::pin::Pin;

pub use provider::{
    IdempotencyKey, IntentId, IntentStatus, PaymentService, ProviderError, ProviderRequest, ProviderResponse, RefundId,
};

/// The future every boxed adapter and layer returns.
pub(crate) type ReplyFuture = Pin<Box<dyn Future<Output = Result<ProviderResponse, ProviderError>> + Send + 'static>>;

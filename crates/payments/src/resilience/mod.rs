//! Resilience as small tower layers around a provider, each with its own tests on paused
//! time: a per-attempt [`deadline`], [`retry`] with backoff, jitter and a budget, a circuit
//! [`breaker`], and [`metrics`]. [`stack`] assembles them; the saga only sees the resulting
//! [`PaymentService`].
//!
//! The order, outside in:
//!
//! ```text
//! metrics(call) → retry (budget) → breaker → metrics(attempt) → deadline → provider
//! ```
//!
//! - **The breaker sits inside the retries**, so it judges every attempt, not every call: a
//!   call that fails three times before succeeding counts three failures, so a retry storm
//!   cannot hold the breaker closed by hiding failures behind eventual successes. When it is
//!   open its `Unavailable` is not retryable, so the retry layer gives up at once — an open
//!   breaker answers immediately, with no backoff sleep.
//! - **The deadline sits inside the breaker**, so a hung attempt becomes `Unknown` and counts
//!   as the failure it is; each retry gets a fresh deadline.
//! - **The budget is in the retry layer**, shared by every clone of the stack: retries add at
//!   most a share of the calls, so an outage costs the provider about one attempt per call.
//! - **Metrics** are taken twice: what the saga saw (outside the retries) and what the
//!   provider was asked (inside the breaker, so its refusals are not attempts).

pub mod breaker;
pub mod deadline;
pub mod metrics;
pub mod retry;

use std::time::Duration;

use tower::Layer;
use tower::util::BoxCloneSyncService;

use crate::limits::{DEADLINE_MS_DEFAULT, DEADLINE_MS_MAX, DEADLINE_MS_MIN};
use crate::provider::PaymentService;
pub use breaker::{BreakerConfig, BreakerHandle, BreakerLayer, BreakerState};
pub use deadline::DeadlineLayer;
pub use metrics::{MetricsLayer, Scope};
pub use retry::{RetryConfig, RetryLayer};

/// Every knob of the stack; the defaults are in [`crate::limits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResilienceConfig {
    /// Per attempt.
    pub deadline: Duration,
    pub retry: RetryConfig,
    pub breaker: BreakerConfig,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        ResilienceConfig {
            deadline: Duration::from_millis(DEADLINE_MS_DEFAULT),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
        }
    }
}

impl ResilienceConfig {
    pub fn validate(&self) -> Result<(), String> {
        let deadline = Duration::from_millis(DEADLINE_MS_MIN)..=Duration::from_millis(DEADLINE_MS_MAX);
        if !deadline.contains(&self.deadline) {
            return Err(format!("the deadline is {DEADLINE_MS_MIN}–{DEADLINE_MS_MAX} ms"));
        }
        if self.deadline > self.breaker.cool_down {
            return Err("the deadline must not exceed the breaker's cool-down".into());
        }
        self.retry.validate()?;
        self.breaker.validate()
    }
}

/// `provider` behind the whole stack (see the module's `//!` for the order and why). Panics
/// on an invalid `config` ([`ResilienceConfig::validate`] first).
pub fn stack(name: &'static str, provider: PaymentService, config: &ResilienceConfig) -> PaymentService {
    stack_with_breaker(name, provider, config).0
}

/// [`stack`], also returning a handle on its breaker (the API's `503` + `Retry-After`).
pub fn stack_with_breaker(
    name: &'static str,
    provider: PaymentService,
    config: &ResilienceConfig,
) -> (PaymentService, BreakerHandle) {
    if let Err(e) = config.validate() {
        panic!("invalid resilience config for {name}: {e}");
    }
    let breaker = BreakerLayer::new(name, config.breaker.clone());
    let handle = breaker.handle();
    let s = BoxCloneSyncService::new(DeadlineLayer::new(name, config.deadline).layer(provider));
    let s = BoxCloneSyncService::new(MetricsLayer::new(name, Scope::Attempt).layer(s));
    let s = BoxCloneSyncService::new(breaker.layer(s));
    let s = BoxCloneSyncService::new(RetryLayer::new(name, config.retry.clone()).layer(s));
    let s = BoxCloneSyncService::new(MetricsLayer::new(name, Scope::Call).layer(s));
    (s, handle)
}
